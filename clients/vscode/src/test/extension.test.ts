// Tests of the extension's pure parts: the status bar's exact texts (the
// end-to-end test reads them) and the command catalog against package.json
// (every contract command contributed, with its title and category).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { COMMANDS } from "../commands/catalog";
import { PullProgress, PullState, ServerState } from "../gen/omnipanel/v1/models";
import { preferredModelText, serverStateWord, statusText, type StatusFacts } from "../statusText";

function facts(overrides: Partial<StatusFacts> = {}): StatusFacts {
  return {
    agent: { phase: "connected" },
    ollama: ServerState.SERVER_STATE_RUNNING,
    defaultModel: "",
    projectModel: "",
    pulls: new Map(),
    activeAlerts: 0,
    ...overrides,
  };
}

describe("the status bar text", () => {
  it("names the agent's phase before it is connected", () => {
    assert.equal(statusText(facts({ agent: { phase: "not-running" } })), "OmniPanel: agent not running");
    assert.equal(statusText(facts({ agent: { phase: "waiting", code: "123-456" } })), "OmniPanel: waiting for approval (code 123-456)");
  });

  it("shows the project's preferred model over the default model", () => {
    assert.equal(preferredModelText("qwen2.5-7b", "lmstudio"), "lmstudio/qwen2.5-7b");
    assert.equal(preferredModelText("llama3.2:1b", "local"), "llama3.2:1b");
    assert.equal(preferredModelText("llama3.2:1b", ""), "llama3.2:1b");
    assert.equal(preferredModelText("", "lmstudio"), "");
    assert.equal(
      statusText(facts({ defaultModel: "llama3.2:1b", projectModel: "lmstudio/qwen2.5-7b" })),
      "OmniPanel: Ollama running · lmstudio/qwen2.5-7b",
    );
    assert.equal(statusText(facts({ defaultModel: "llama3.2:1b", projectModel: "" })), "OmniPanel: Ollama running · llama3.2:1b");
    assert.equal(statusText(facts({ projectModel: "gpu-box/llama3.1:70b" })), "OmniPanel: Ollama running · gpu-box/llama3.1:70b");
  });

  it("shows Ollama's state, the default model, a pull and alerts", () => {
    assert.equal(statusText(facts()), "OmniPanel: Ollama running");
    assert.equal(statusText(facts({ ollama: ServerState.SERVER_STATE_NOT_INSTALLED })), "OmniPanel: Ollama not_installed");
    assert.equal(statusText(facts({ defaultModel: "llama3.2:1b" })), "OmniPanel: Ollama running · llama3.2:1b");
    const pull = PullProgress.create({ model: "qwen2.5:0.5b", state: PullState.PULL_STATE_RUNNING, completedBytes: 421n, totalBytes: 1000n });
    assert.equal(
      statusText(facts({ defaultModel: "llama3.2:1b", pulls: new Map([[pull.model, pull]]), activeAlerts: 2 })),
      "OmniPanel: Ollama running · llama3.2:1b · pulling qwen2.5:0.5b 42% · ⚠ 2 alerts",
    );
    const unknownSize = PullProgress.create({ model: "x", state: PullState.PULL_STATE_RUNNING });
    assert.equal(statusText(facts({ pulls: new Map([["x", unknownSize]]) })), "OmniPanel: Ollama running · pulling x 0%");
  });

  it("uses the lower-case state words of the Rust display module", () => {
    assert.deepEqual(
      [ServerState.SERVER_STATE_STOPPED, ServerState.SERVER_STATE_STARTING, ServerState.SERVER_STATE_BACKOFF, ServerState.SERVER_STATE_EXTERNAL].map(serverStateWord),
      ["stopped", "starting", "backoff", "external"],
    );
  });
});

describe("the command catalog", () => {
  const manifest = JSON.parse(readFileSync("package.json", "utf8")) as {
    contributes: { commands: { command: string; title: string; category?: string }[] };
  };

  it("is contributed in package.json with the contract's titles", () => {
    for (const command of COMMANDS) {
      const contributed = manifest.contributes.commands.find((entry) => entry.command === command.id);
      assert.ok(contributed, `${command.id} is not in package.json`);
      assert.equal(contributed.title, command.title);
      assert.equal(contributed.category, "OmniPanel");
    }
    assert.equal(COMMANDS.length, 19);
  });
});
