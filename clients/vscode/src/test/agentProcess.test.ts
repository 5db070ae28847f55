// Tests of Start Agent's process side (agentProcess.ts has no vscode
// import): the agent named by omnipanel.agentPath starts detached and
// answers on its socket; a missing program is an error naming the setting.
// (Open Panel is not run here: it would open a real panel where one is
// installed.)

import assert from "node:assert/strict";
import { join } from "node:path";
import { AgentConnection } from "../client";
import { startAgent } from "../agentProcess";
import { BIN_DIR, eventually, Sandbox } from "./sandbox";

describe("Start Agent", function () {
  this.timeout(120_000);

  it("starts the agent named by omnipanel.agentPath, detached", async () => {
    const sandbox = await Sandbox.create();
    const saved = { ...process.env };
    let pid = 0;
    // The spawned agent inherits the extension host's environment.
    process.env = sandbox.env();
    try {
      assert.equal(await startAgent(join(BIN_DIR, "omnipanel-agent")), `started ${join(BIN_DIR, "omnipanel-agent")}`);
      let connection: AgentConnection | undefined;
      await eventually("the started agent to answer", async () => {
        connection = await AgentConnection.connect({ socketPath: sandbox.socket, timeoutMs: 2_000 }).catch(() => undefined);
        return connection !== undefined;
      });
      pid = connection!.info.pid;
      connection!.setToken(sandbox.ownerToken());
      await connection!.agent.shutdown({});
      connection!.close();
      pid = 0;
    } finally {
      process.env = saved;
      // Not our child (detached): end it by its pid if the test failed early.
      if (pid !== 0) process.kill(pid, "SIGTERM");
      await sandbox.dispose();
    }
  });

  it("names the setting when the program is missing", async () => {
    await assert.rejects(startAgent("/nonexistent/omnipanel-agent"), /not found \(\/nonexistent\/omnipanel-agent\).*omnipanel\.agentPath/);
  });
});
