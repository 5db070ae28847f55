// Admission (docs/api.md, "Client admission: the flow for client authors"):
// ask the agent for access with RequestAccess, show the user the code the
// agent gives, wait for the approval and keep the token. Where the token is
// kept is the caller's choice behind TokenStore: VS Code's SecretStorage in
// the extension, a Map in the tests.

import { AccessRequestState, Expiry, Scope, type AccessRequest, type Client } from "../gen/omnipanel/v1/access";
import type { AgentConnection } from "./connection";
import { classify, OmniPanelError } from "./errors";

/** Where tokens live, one per agent (the key is the connection's label). */
export interface TokenStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, token: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A TokenStore in memory (tests, and scripts that ask every time). */
export class MemoryTokenStore implements TokenStore {
  readonly tokens = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.tokens.get(key);
  }
  async set(key: string, token: string): Promise<void> {
    this.tokens.set(key, token);
  }
  async delete(key: string): Promise<void> {
    this.tokens.delete(key);
  }
}

export interface AccessRequestOptions {
  /** The client's name as the user sees it, e.g. "VS Code". */
  clientName: string;
  scopes: Scope[];
  /** Project folders (absolute); empty: every project in the user's project roots. */
  projects?: string[];
  /** Why, shown to the user. */
  reason?: string;
  expiry?: Expiry;
  /** Called with the code to show once the request is pending. */
  onPending?: (code: string, request: AccessRequest) => void;
  /** Withdraws the request (closing the stream withdraws it at the agent). */
  signal?: AbortSignal;
}

export interface Admission {
  token: string;
  /** The grant made (scopes and projects may be fewer than asked). */
  client: Client | undefined;
}

/**
 * Ask for access and wait for the user's answer. Resolves with the token on
 * approval; rejects with kind "access-refused" when denied, expired or
 * withdrawn, or with the call's own error.
 */
export async function requestAccess(connection: AgentConnection, options: AccessRequestOptions): Promise<Admission> {
  const stream = connection.agent.requestAccess(
    {
      clientName: options.clientName,
      scopes: options.scopes,
      projects: options.projects ?? [],
      reason: options.reason ?? "",
      expiry: options.expiry ?? Expiry.EXPIRY_ALWAYS,
    },
    { signal: options.signal },
  );
  let announced = false;
  for await (const message of stream) {
    const request = message.request;
    if (request === undefined) continue;
    switch (request.state) {
      case AccessRequestState.ACCESS_REQUEST_STATE_PENDING:
        if (!announced) {
          announced = true;
          options.onPending?.(request.code, request);
        }
        break;
      case AccessRequestState.ACCESS_REQUEST_STATE_APPROVED:
        if (message.token === "") throw new OmniPanelError("rpc", "The agent approved the request but sent no token.");
        return { token: message.token, client: message.client };
      case AccessRequestState.ACCESS_REQUEST_STATE_DENIED:
        throw new OmniPanelError("access-refused", `The request for access (code ${request.code}) was denied.`);
      case AccessRequestState.ACCESS_REQUEST_STATE_EXPIRED:
        throw new OmniPanelError("access-refused", `Nobody answered the request for access (code ${request.code}) in time.`);
      case AccessRequestState.ACCESS_REQUEST_STATE_WITHDRAWN:
        throw new OmniPanelError("access-refused", `The request for access (code ${request.code}) was withdrawn.`);
      default:
        break;
    }
  }
  throw new OmniPanelError("access-refused", "The agent ended the request for access without an answer.");
}

/** Whether the caller holds every scope asked for (write implies read; admin implies all). */
export function holdsScopes(held: readonly Scope[], wanted: readonly Scope[]): boolean {
  const has = (scope: Scope) =>
    held.includes(scope) ||
    held.includes(Scope.SCOPE_ADMIN) ||
    (scope === Scope.SCOPE_READ && held.includes(Scope.SCOPE_WRITE));
  return wanted.every(has);
}

/**
 * Make `connection` admitted: use the stored token when the agent still
 * honours it, else forget it and run the admission
 * flow, storing the new token. Says which happened.
 */
export async function ensureAccess(
  connection: AgentConnection,
  store: TokenStore,
  options: AccessRequestOptions,
): Promise<"stored" | "approved"> {
  const stored = await store.get(connection.label);
  if (stored !== undefined) {
    connection.setToken(stored);
    try {
      const info = await connection.refreshInfo();
      // The user may have granted fewer scopes than asked: any grant counts.
      if (info.callerScopes.some((scope) => scope !== Scope.SCOPE_STATUS && scope !== Scope.SCOPE_UNSPECIFIED)) return "stored";
    } catch (err) {
      const error = classify(err, connection.label);
      if (error.kind !== "unauthenticated" && error.kind !== "permission-denied") throw error;
    }
    // Revoked or expired: ask again rather than fail later.
    await store.delete(connection.label);
    connection.setToken(undefined);
  }
  const admission = await requestAccess(connection, options);
  await store.set(connection.label, admission.token);
  connection.setToken(admission.token);
  await connection.refreshInfo();
  return "approved";
}
