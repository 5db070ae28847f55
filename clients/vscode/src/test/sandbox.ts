// A real OmniPanel agent for the client tests, started the way the Rust
// end-to-end harness does it (tests/lib.rs: Sandbox::env, configure_fake_ollama,
// start_agent): temporary XDG folders, the Ollama test double configured as
// the local server and the registry, binaries from $OMNIPANEL_BIN_DIR.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentConnection } from "../client";
import { ServerState } from "../gen/omnipanel/v1/models";

export const BIN_DIR = process.env["OMNIPANEL_BIN_DIR"] ?? "";
if (BIN_DIR === "" || !existsSync(join(BIN_DIR, "omnipanel-agent"))) {
  throw new Error("Set OMNIPANEL_BIN_DIR to the folder holding omnipanel-agent, omnipanel and fake-ollama (e.g. target/debug).");
}

/** Generous: the point is not hanging forever, not speed. */
export const PATIENCE_MS = 60_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export class Sandbox {
  readonly root = mkdtempSync(join(tmpdir(), "omnipanel-vscode-test-"));
  readonly socket = join(this.root, "runtime/omnipanel/agent.sock");
  private agent: ChildProcess | undefined;

  private constructor() {
    for (const dir of ["runtime", "config/omnipanel", "data", "state", "home"]) mkdirSync(join(this.root, dir), { recursive: true });
    chmodSync(join(this.root, "runtime"), 0o700);
  }

  /** A sandbox whose agent supervises the fake Ollama. */
  static async create(): Promise<Sandbox> {
    const sandbox = new Sandbox();
    const port = await freePort();
    const models = join(sandbox.root, "ollama-models");
    writeFileSync(
      join(sandbox.root, "config/omnipanel/config.toml"),
      [
        "[ollama]",
        `binary = ${JSON.stringify(join(BIN_DIR, "fake-ollama"))}`,
        `host = "127.0.0.1:${port}"`,
        `registry = "http://127.0.0.1:${port}"`,
        `models_dir = ${JSON.stringify(models)}`,
        'health_interval = "200ms"',
        'health_timeout = "1s"',
        'stop_timeout = "5s"',
        "",
      ].join("\n"),
    );
    return sandbox;
  }

  /** The environment pointing a process at this sandbox, without the caller's OmniPanel or proxy variables. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const key of Object.keys(env)) {
      if (key.startsWith("OMNIPANEL_") || key === "OLLAMA_HOST" || /^(https?|grpc|all|no)_proxy$/i.test(key)) delete env[key];
    }
    return {
      ...env,
      XDG_RUNTIME_DIR: join(this.root, "runtime"),
      XDG_CONFIG_HOME: join(this.root, "config"),
      XDG_DATA_HOME: join(this.root, "data"),
      XDG_STATE_HOME: join(this.root, "state"),
      HOME: join(this.root, "home"),
      OLLAMA_MODELS: join(this.root, "ollama-models"),
      ...extra,
    };
  }

  /**
   * Start the agent and wait until GetInfo answers; `extraEnv` reaches the
   * agent and the fake Ollama it starts (e.g. FAKE_OLLAMA_TOKEN_DELAY_MS).
   */
  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    const stderr = join(this.root, `agent-stderr-${Date.now()}.log`);
    const out = (await import("node:fs")).openSync(stderr, "w");
    this.agent = spawn(join(BIN_DIR, "omnipanel-agent"), [], { env: this.env(extraEnv), stdio: ["ignore", "ignore", out] });
    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      if (this.agent.exitCode !== null) throw new Error(`the agent exited before answering:\n${readFileSync(stderr, "utf8")}`);
      try {
        const connection = await AgentConnection.connect({ socketPath: this.socket, timeoutMs: 2_000 });
        try {
          // Calls on models fail while the fake Ollama starts.
          await eventually("the fake Ollama to run", async () => {
            const { status } = await connection.models.getServerStatus({});
            return status?.state === ServerState.SERVER_STATE_RUNNING;
          });
        } finally {
          connection.close();
        }
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(50);
      }
    }
  }

  /** Stop the agent (SIGTERM) and wait for it to exit. */
  async stop(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (agent === undefined || agent.exitCode !== null) return;
    const exited = new Promise((resolve) => agent.once("exit", resolve));
    agent.kill("SIGTERM");
    await exited;
  }

  /** The owner credential the agent wrote (what the CLI presents). */
  ownerToken(): string {
    return readFileSync(join(this.root, "data/omnipanel/owner-credential"), "utf8").trim();
  }

  /** Run the real CLI against this agent; throws with its output when it fails. */
  cli(...args: string[]): string {
    const result = spawnSync(join(BIN_DIR, "omnipanel"), args, { env: this.env(), encoding: "utf8", timeout: PATIENCE_MS });
    if (result.status !== 0) throw new Error(`omnipanel ${args.join(" ")} failed (${result.status}): ${result.stderr}${result.stdout}`);
    return result.stdout;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait until `check` holds (bounded by PATIENCE_MS). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
