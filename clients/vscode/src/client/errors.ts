// The one error type of the client module: every failed call becomes an
// OmniPanelError whose `kind` says what a person can do about it (start the
// agent, update one side, approve access, confirm an act, fix the address),
// with the gRPC code and the agent's google.rpc.ErrorInfo (reason and
// metadata, decoded from `grpc-status-details-bin`) kept for callers that
// need them.

import { Metadata, status as Code, type ServiceError } from "@grpc/grpc-js";
import { Status } from "../gen/google/rpc/status";
import { ErrorInfo } from "../gen/google/rpc/error_details";

export type ErrorKind =
  /** Nothing listens where the agent should be. */
  | "agent-not-running"
  /** The agent speaks another protocol version. */
  | "incompatible"
  /** The settings are wrong (bad address, unreadable CA file…). */
  | "config"
  /** No token, or a token the agent no longer accepts (TOKEN_INVALID). */
  | "unauthenticated"
  /** The agent refused the call (NOT_ADMITTED, PROJECT_NOT_GRANTED…). */
  | "permission-denied"
  /** The user denied the access request, or it expired unanswered. */
  | "access-refused"
  /** A destructive act waits for the user's confirmation (`confirmationId`). */
  | "confirmation-required"
  /** Retried before the user answered the confirmation. */
  | "confirmation-pending"
  /** The user denied the confirmation, or it expired or was used. */
  | "confirmation-denied"
  /** The call was cancelled by this side. */
  | "cancelled"
  /** Something answered but the connection failed (TLS, HTTP/2, timeout). */
  | "transport"
  /** Any other error the agent answered with. */
  | "rpc";

/** The ErrorInfo the agent attaches to every error. */
export interface ErrorDetails {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

export class OmniPanelError extends Error {
  readonly kind: ErrorKind;
  /** The gRPC status code (`@grpc/grpc-js` `status`), when a call failed. */
  readonly code: number | undefined;
  /** ErrorInfo.reason, e.g. "CONFIRMATION_REQUIRED"; "" when none came. */
  readonly reason: string;
  /** ErrorInfo.metadata. */
  readonly metadata: Record<string, string>;

  constructor(kind: ErrorKind, message: string, options: { code?: number; details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OmniPanelError";
    this.kind = kind;
    this.code = options.code;
    this.reason = options.details?.reason ?? "";
    this.metadata = options.details?.metadata ?? {};
  }

  /** The confirmation to answer, for kind "confirmation-required". */
  get confirmationId(): string | undefined {
    return this.metadata["confirmation_id"] || undefined;
  }
}

/** Decode google.rpc.Status from the trailers and return its ErrorInfo. */
export function errorDetails(metadata: Metadata | undefined): ErrorDetails | undefined {
  const raw = metadata?.get("grpc-status-details-bin")[0];
  if (raw === undefined || typeof raw === "string") return undefined;
  try {
    const status = Status.decode(raw);
    for (const any of status.details) {
      if (any.typeUrl.endsWith("/google.rpc.ErrorInfo")) {
        const info = ErrorInfo.decode(any.value);
        return { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } };
      }
    }
  } catch {
    // A trailer we cannot decode is no reason to hide the agent's message.
  }
  return undefined;
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err && "metadata" in err;
}

// What grpc-js says when the socket file is missing, nobody listens on it
// (a stale file left by a crash), or a TCP port is closed.
const NOT_LISTENING = /ENOENT|ECONNREFUSED|ENOTSOCK|No connection established|connect EACCES/;

/** Turn anything a call threw into an OmniPanelError for `target`. */
export function classify(err: unknown, target: string): OmniPanelError {
  if (err instanceof OmniPanelError) return err;
  if (!isServiceError(err)) {
    const message = err instanceof Error ? err.message : String(err);
    return new OmniPanelError("rpc", message, { cause: err });
  }
  const details = errorDetails(err.metadata);
  const reason = details?.reason ?? "";
  const message = err.details || Code[err.code] || "unknown error";
  const opts = { code: err.code, details, cause: err };
  switch (err.code) {
    case Code.UNAVAILABLE:
      // The agent's own UNAVAILABLE (e.g. Ollama still starting) carries
      // ErrorInfo; only a failed connection lacks it.
      if (details !== undefined) return new OmniPanelError("rpc", message, opts);
      if (NOT_LISTENING.test(message)) {
        return new OmniPanelError(
          "agent-not-running",
          target.startsWith("http")
            ? `The OmniPanel agent is not running (nothing answers at ${target}). Start it on that machine.`
            : `The OmniPanel agent is not running (nothing answers at ${target}). Start it with "OmniPanel: Start Agent" or \`omnipanel-agent\`.`,
          opts,
        );
      }
      return new OmniPanelError("transport", `Cannot talk to the OmniPanel agent at ${target}: ${message}`, opts);
    case Code.CANCELLED:
      return new OmniPanelError("cancelled", "Cancelled.", opts);
    case Code.UNAUTHENTICATED:
      return new OmniPanelError("unauthenticated", `Not admitted by the agent at ${target}: ${message}`, opts);
    case Code.PERMISSION_DENIED:
      if (reason === "CONFIRMATION_DENIED") return new OmniPanelError("confirmation-denied", message, opts);
      return new OmniPanelError("permission-denied", message, opts);
    case Code.FAILED_PRECONDITION:
      if (reason === "CONFIRMATION_REQUIRED") {
        const id = details?.metadata["confirmation_id"] ?? "";
        return new OmniPanelError(
          "confirmation-required",
          `${message} Allow it in the tray or panel, or run: omnipanel confirmations allow ${id}`,
          opts,
        );
      }
      if (reason === "CONFIRMATION_PENDING") return new OmniPanelError("confirmation-pending", message, opts);
      return new OmniPanelError("rpc", message, opts);
    case Code.DEADLINE_EXCEEDED:
      return new OmniPanelError("transport", `The agent at ${target} did not answer in time: ${message}`, opts);
    default:
      return new OmniPanelError("rpc", message, opts);
  }
}
