// Where the agent is and how to reach it: the local Unix socket (found by
// the same rule as the Rust client, agent/paths/src/lib.rs) or a remote
// agent over TCP with TLS; and the grpc-js channel settings for both
// (authority `localhost` on the socket, and no HTTP proxy ever, because VS
// Code's proxy support exports http_proxy/https_proxy/grpc_proxy and the
// agent is never behind one).

import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { credentials, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { OmniPanelError } from "./errors";

export type Target =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number; address: string; tls: boolean; caPem?: Buffer };

export interface TargetSettings {
  /** A socket path; "" or absent: OMNIPANEL_SOCKET, else the default. */
  socketPath?: string;
  /** `https://host:port` for a remote agent; "" or absent: the socket. */
  address?: string;
  /** Path of a PEM file with the CA that signed the agent's certificate. */
  caCertificate?: string;
  /** The environment to read (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The socket path: OMNIPANEL_SOCKET, else $XDG_RUNTIME_DIR/omnipanel/agent.sock, else /tmp/omnipanel-UID/agent.sock. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env["OMNIPANEL_SOCKET"];
  if (fromEnv) return fromEnv;
  const runtime = env["XDG_RUNTIME_DIR"];
  const dir =
    runtime && isAbsolute(runtime)
      ? join(runtime, "omnipanel")
      : join(env["TMPDIR"] || tmpdir(), `omnipanel-${process.getuid?.() ?? 0}`);
  return join(dir, "agent.sock");
}

/** Resolve the settings into a target; a bad address or CA file is a "config" error naming it. */
export function resolveTarget(settings: TargetSettings = {}): Target {
  const address = settings.address?.trim() ?? "";
  if (address === "") {
    const path = settings.socketPath?.trim() || defaultSocketPath(settings.env);
    if (!isAbsolute(path)) {
      throw new OmniPanelError("config", `The socket path "${path}" is not absolute (setting omnipanel.socketPath).`);
    }
    return { kind: "unix", path };
  }
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new OmniPanelError("config", `The agent address "${address}" is not a URL; write it as https://host:port (setting omnipanel.address).`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  // The agent serves plain TCP only on a loopback address (README: a
  // non-loopback listener requires TLS), so http:// is refused elsewhere.
  const loopback = host === "localhost" || host === "::1" || /^127\./.test(host);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new OmniPanelError(
      "config",
      `The agent address "${address}" must start with https:// (http:// only for a listener on this machine's loopback address).`,
    );
  }
  if (url.pathname !== "/" && url.pathname !== "") {
    throw new OmniPanelError("config", `The agent address "${address}" must not have a path; write it as https://host:port.`);
  }
  const tls = url.protocol === "https:";
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  let caPem: Buffer | undefined;
  const ca = settings.caCertificate?.trim() ?? "";
  if (ca !== "") {
    try {
      caPem = readFileSync(ca);
    } catch (err) {
      throw new OmniPanelError("config", `Cannot read the CA certificate "${ca}" (setting omnipanel.caCertificate): ${(err as Error).message}`);
    }
    if (!caPem.toString("utf8").includes("-----BEGIN CERTIFICATE-----")) {
      throw new OmniPanelError("config", `"${ca}" is not a PEM certificate (setting omnipanel.caCertificate).`);
    }
  }
  return { kind: "tcp", host, port, address: `${url.protocol}//${url.host}`, tls, caPem };
}

/** How the target is named in messages and as the key of its stored token. */
export function targetLabel(target: Target): string {
  return target.kind === "unix" ? target.path : target.address;
}

/** The grpc-js address, credentials and channel options for a target. */
export function channelFor(target: Target, userAgent: string): { address: string; credentials: ChannelCredentials; options: ChannelOptions } {
  const options: ChannelOptions = {
    "grpc.enable_http_proxy": 0,
    "grpc.primary_user_agent": userAgent,
    // Streams (events, logs) stay open for hours; keepalive notices a
    // vanished remote agent without waiting for TCP's own timeout.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  };
  if (target.kind === "unix") {
    options["grpc.default_authority"] = "localhost";
    return { address: `unix:${target.path}`, credentials: credentials.createInsecure(), options };
  }
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  const channelCredentials = target.tls ? credentials.createSsl(target.caPem ?? null) : credentials.createInsecure();
  return { address: `${host}:${target.port}`, credentials: channelCredentials, options };
}
