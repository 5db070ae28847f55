// Tests of src/client/ against the real agent binary and the Ollama test
// double ($OMNIPANEL_BIN_DIR): connection and protocol check, the
// not-running error, admission approved and denied through the real CLI,
// a pull with progress, a streamed chat, the confirmation flow, event
// resumption across an agent restart, and a dead proxy in the environment.

import assert from "node:assert/strict";
import { createServer as createUnixServer } from "node:net";
import { join } from "node:path";
import {
  AgentConnection,
  checkProtocol,
  EventWatcher,
  MemoryTokenStore,
  ensureAccess,
  requestAccess,
  resolveTarget,
  OmniPanelError,
  PROTOCOL_VERSION,
} from "../client";
import { Scope } from "../gen/omnipanel/v1/access";
import { GetInfoResponse } from "../gen/omnipanel/v1/agent";
import type { Event } from "../gen/omnipanel/v1/events";
import { ChatMessage, PullState } from "../gen/omnipanel/v1/models";
import { eventually, freePort, Sandbox } from "./sandbox";

const SCOPES = [Scope.SCOPE_READ, Scope.SCOPE_WRITE, Scope.SCOPE_INFER];

async function rejection(promise: Promise<unknown>): Promise<OmniPanelError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof OmniPanelError, `expected an OmniPanelError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

/** Request access and approve it with the real CLI; returns the token. */
async function admit(sandbox: Sandbox, connection: AgentConnection): Promise<string> {
  const admission = await requestAccess(connection, {
    clientName: "VS Code",
    scopes: SCOPES,
    reason: "client tests",
    onPending: (_code, request) => sandbox.cli("clients", "approve", request.id),
  });
  return admission.token;
}

describe("the client module against the real agent", function () {
  this.timeout(120_000);
  let sandbox: Sandbox;

  before(async () => {
    sandbox = await Sandbox.create();
    await sandbox.start();
  });
  after(async () => {
    await sandbox?.dispose();
  });

  const connect = (token?: string) => AgentConnection.connect({ socketPath: sandbox.socket, token, userAgent: "omnipanel-vscode-test" });

  it("connects over the socket and reads GetInfo", async () => {
    const connection = await connect();
    try {
      assert.equal(connection.info.protocolVersion, PROTOCOL_VERSION);
      assert.match(connection.info.version, /^\d+\.\d+\.\d+/);
      assert.equal(connection.info.socketPath, sandbox.socket);
      assert.equal(connection.label, sandbox.socket);
    } finally {
      connection.close();
    }
  });

  it("honours OMNIPANEL_SOCKET and XDG_RUNTIME_DIR like the Rust client", () => {
    assert.deepEqual(resolveTarget({ env: { OMNIPANEL_SOCKET: "/x/a.sock" } }), { kind: "unix", path: "/x/a.sock" });
    assert.deepEqual(resolveTarget({ env: { XDG_RUNTIME_DIR: "/run/user/7" } }), { kind: "unix", path: "/run/user/7/omnipanel/agent.sock" });
    const fallback = resolveTarget({ env: { XDG_RUNTIME_DIR: "relative", TMPDIR: "/tmp" } });
    assert.equal(fallback.kind === "unix" && fallback.path, `/tmp/omnipanel-${process.getuid!()}/agent.sock`);
    assert.deepEqual(resolveTarget({ socketPath: "/s.sock", env: { OMNIPANEL_SOCKET: "/x/a.sock" } }), { kind: "unix", path: "/s.sock" });
  });

  it("refuses bad addresses and CA files with errors naming them", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ address: "gpu-box:7457" }, /must start with https:\/\//],
      [{ address: "http://gpu-box:7457" }, /must start with https:\/\//],
      [{ address: "not a url" }, /is not a URL/],
      [{ address: "https://gpu-box:7457/api" }, /must not have a path/],
      [{ address: "https://gpu-box:7457", caCertificate: "/nonexistent/ca.pem" }, /Cannot read the CA certificate "\/nonexistent\/ca.pem"/],
      [{ socketPath: "relative.sock" }, /not absolute/],
    ];
    for (const [settings, message] of cases) {
      assert.throws(() => resolveTarget(settings), (err: unknown) => err instanceof OmniPanelError && err.kind === "config" && message.test(err.message));
    }
    assert.deepEqual(resolveTarget({ address: "https://gpu-box:7457" }), {
      kind: "tcp",
      host: "gpu-box",
      port: 7457,
      address: "https://gpu-box:7457",
      tls: true,
      caPem: undefined,
    });
  });

  it("refuses an agent speaking another protocol version, saying what to update", () => {
    const newer = GetInfoResponse.create({ version: "9.0.0", protocolVersion: 2 });
    assert.throws(
      () => checkProtocol(newer),
      (err: unknown) =>
        err instanceof OmniPanelError &&
        err.kind === "incompatible" &&
        err.message === "OmniPanel agent 9.0.0 speaks protocol 2; this extension speaks 1: update the OmniPanel extension.",
    );
    assert.throws(() => checkProtocol(GetInfoResponse.create({ version: "0.0.1", protocolVersion: 0 })), /update OmniPanel \(the agent\)/);
    checkProtocol(GetInfoResponse.create({ protocolVersion: PROTOCOL_VERSION }));
  });

  it("says the agent is not running when the socket is missing or dead", async () => {
    const missing = await rejection(AgentConnection.connect({ socketPath: join(sandbox.root, "nothing.sock") }));
    assert.equal(missing.kind, "agent-not-running");
    assert.match(missing.message, /not running.*nothing\.sock/);
    // A socket file left behind by a crash: nobody accepts on it.
    const dead = join(sandbox.root, "dead.sock");
    const server = createUnixServer();
    await new Promise<void>((resolve) => server.listen(dead, resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const refused = await rejection(AgentConnection.connect({ socketPath: dead }));
    assert.equal(refused.kind, "agent-not-running");
  });

  it("runs the admission flow: the CLI approves the code and the token works", async () => {
    const connection = await connect();
    try {
      // Not admitted yet: a read call is refused with the agent's reason.
      const refused = await rejection(connection.agent.listCrashReports({}));
      assert.equal(refused.kind, "permission-denied");
      assert.equal(refused.reason, "NOT_ADMITTED");

      const store = new MemoryTokenStore();
      let code = "";
      const outcome = await ensureAccess(connection, store, {
        clientName: "VS Code",
        scopes: SCOPES,
        reason: "client tests",
        onPending: (shown, request) => {
          code = shown;
          // The CLI shows the code next to the id and approves by id.
          assert.match(sandbox.cli("clients", "pending"), new RegExp(shown));
          sandbox.cli("clients", "approve", request.id);
        },
      });
      assert.equal(outcome, "approved");
      assert.match(code, /^\d{3}-\d{3}$/);
      const token = store.tokens.get(sandbox.socket);
      assert.ok(token?.startsWith("omp_"), `token ${token}`);
      assert.ok(connection.info.callerScopes.includes(Scope.SCOPE_INFER));
      await connection.models.listModels({});
      await connection.agent.listCrashReports({});

      // A new connection with the stored token needs no second request.
      const again = await connect();
      try {
        assert.equal(await ensureAccess(again, store, { clientName: "VS Code", scopes: SCOPES, onPending: () => assert.fail("asked again") }), "stored");
        await again.agent.listCrashReports({});
      } finally {
        again.close();
      }
    } finally {
      connection.close();
    }
  });

  it("reports a denied request as refused", async () => {
    const connection = await connect();
    try {
      const denied = await rejection(
        requestAccess(connection, {
          clientName: "VS Code",
          scopes: SCOPES,
          onPending: (_code, request) => sandbox.cli("clients", "deny", request.id),
        }),
      );
      assert.equal(denied.kind, "access-refused");
      assert.match(denied.message, /denied/);
    } finally {
      connection.close();
    }
  });

  it("pulls a model with progress, and lists it afterwards", async () => {
    const connection = await connect(sandbox.ownerToken());
    try {
      const states: PullState[] = [];
      let sawFit = false;
      let last = 0n;
      for await (const update of connection.models.pullModel({ model: "test-small:latest" })) {
        if (update.fit !== undefined) sawFit = true;
        const progress = update.progress!;
        states.push(progress.state);
        assert.ok(progress.completedBytes >= last, "progress never goes back");
        last = progress.completedBytes;
      }
      assert.ok(sawFit, "the first message carries the fit check");
      assert.equal(states.at(-1), PullState.PULL_STATE_SUCCEEDED);
      assert.ok(last > 0n);
      const { models } = await connection.models.listModels({});
      assert.ok(models.some((model) => model.name === "test-small:latest"), JSON.stringify(models.map((m) => m.name)));
    } finally {
      connection.close();
    }
  });

  it("streams a chat answer from the model", async () => {
    const connection = await connect(sandbox.ownerToken());
    try {
      await eventually("the model to be installed", async () => (await connection.models.listModels({})).models.length > 0);
      let text = "";
      let pieces = 0;
      for await (const piece of connection.models.chat({
        model: "test-small:latest",
        messages: [ChatMessage.create({ role: "user", content: "hello there" })],
      })) {
        text += piece.content;
        pieces += 1;
      }
      assert.ok(pieces > 1, "the answer arrives in pieces");
      assert.equal(text, "You said: hello there\nThis reply comes from fake-ollama.");
    } finally {
      connection.close();
    }
  });

  it("deletes a model through the confirmation flow", async () => {
    const owner = await connect(sandbox.ownerToken());
    const connection = await connect();
    try {
      await owner.models.pullModel({ model: "qwen2.5:0.5b" })[Symbol.asyncIterator]().next();
      await eventually("qwen2.5 to be installed", async () =>
        (await owner.models.listModels({})).models.some((model) => model.name === "qwen2.5:0.5b"),
      );
      connection.setToken(await admit(sandbox, connection));
      const asked: string[] = [];
      await connection.confirmed(
        (opts) => connection.models.deleteModel({ model: "qwen2.5:0.5b" }, opts),
        async (id, error) => {
          asked.push(error.kind);
          // First prompt: retry before the answer (still pending); then allow.
          if (asked.length === 2) sandbox.cli("confirmations", "allow", id);
          return true;
        },
      );
      assert.deepEqual(asked, ["confirmation-required", "confirmation-pending"]);
      const { models } = await owner.models.listModels({});
      assert.ok(!models.some((model) => model.name === "qwen2.5:0.5b"));

      // The raw error carries the id and the reason from ErrorInfo.
      await owner.models.pullModel({ model: "qwen2.5:0.5b" })[Symbol.asyncIterator]().next();
      await eventually("qwen2.5 to be installed again", async () =>
        (await owner.models.listModels({})).models.some((model) => model.name === "qwen2.5:0.5b"),
      );
      const required = await rejection(connection.models.deleteModel({ model: "qwen2.5:0.5b" }));
      assert.equal(required.kind, "confirmation-required");
      assert.equal(required.reason, "CONFIRMATION_REQUIRED");
      assert.ok(required.confirmationId);
      assert.match(required.message, new RegExp(`omnipanel confirmations allow ${required.confirmationId}`));
      const declined = await rejection(connection.confirmed((opts) => connection.models.deleteModel({ model: "qwen2.5:0.5b" }, opts), async () => false));
      assert.equal(declined.kind, "cancelled");
    } finally {
      owner.close();
      connection.close();
    }
  });

  it("resumes WatchEvents after the agent restarts", async () => {
    const connection = await connect(sandbox.ownerToken());
    const watcher = new EventWatcher(connection, { minBackoffMs: 50, maxBackoffMs: 500 });
    const events: Event[] = [];
    let disconnects = 0;
    let gaps = 0;
    let caughtUp = 0;
    watcher.on("event", (event) => events.push(event));
    watcher.on("disconnected", () => (disconnects += 1));
    watcher.on("gap", () => (gaps += 1));
    watcher.on("caughtUp", () => (caughtUp += 1));
    try {
      watcher.start();
      await eventually("the first catch-up", () => caughtUp === 1);
      const firstRun = connection.info.instanceId;
      await connection.models.setDefaultModel({ model: "test-small:latest" });
      await eventually("the default-model event", () => events.some((e) => e.defaultModelChanged?.model === "test-small:latest"));

      await sandbox.stop();
      await eventually("the watcher to notice", () => disconnects > 0);
      await sandbox.start();
      await eventually("the watcher to reconnect", () => caughtUp >= 2);
      assert.ok(gaps >= 1, "a new agent run starts with a gap");
      assert.notEqual(watcher.instanceId, firstRun);
      // Live events of the new run arrive on the resumed stream.
      await connection.models.setDefaultModel({ model: "" });
      await eventually("an event from the new run", () => events.some((e) => e.instanceId !== firstRun && e.defaultModelChanged !== undefined));
      // Back-off, not a busy loop: a handful of retries while it was down.
      assert.ok(disconnects < 200, `${disconnects} reconnect attempts`);
    } finally {
      watcher.stop();
      connection.close();
    }
  });

  it("ignores a proxy set in the environment", async () => {
    const deadProxy = `http://127.0.0.1:${await freePort()}`;
    const saved = { ...process.env };
    for (const key of ["http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"]) process.env[key] = deadProxy;
    delete process.env["no_proxy"];
    delete process.env["no_grpc_proxy"];
    try {
      const connection = await connect();
      connection.close();
      // Over TCP the proxy would be used if the channel allowed it.
      const owner = await connect(sandbox.ownerToken());
      const port = await freePort();
      await owner.agent.updateSettings({ changes: [{ key: "server.tcp", value: `127.0.0.1:${port}`, reset: false }] });
      owner.close();
      await sandbox.stop();
      await sandbox.start();
      const socket = await connect();
      const token = await admit(sandbox, socket);
      socket.close();
      const tcp = await AgentConnection.connect({ address: `http://127.0.0.1:${port}`, token });
      try {
        assert.equal(tcp.label, `http://127.0.0.1:${port}`);
        await tcp.agent.listCrashReports({});
      } finally {
        tcp.close();
      }
    } finally {
      process.env = saved;
    }
  });
});
