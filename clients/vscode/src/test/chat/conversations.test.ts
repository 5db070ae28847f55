// The chat view's history (chat/history.ts) against the real agent and the
// Ollama double ($OMNIPANEL_BIN_DIR): a chat created with the question's
// title, two questions that each send only themselves (the second reaches
// the model with the first exchange ahead of it), the stored messages read
// back as the view's turns with the attachment recognised, the picker's
// rows, a stopped reply kept as stopped and answered again by Retry, the
// older version's transcript imported with the next question, and the
// ConversationChanged events the view reloads on, down to the delete.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentConnection, EventWatcher, OmniPanelError } from "../../client";
import { makeAttachment, userContent } from "../../chat/conversation";
import {
  conversationPicks, conversationRequest, legacyTitle, legacyTranscript, replyRequest, titleFrom, turnsFromMessages,
} from "../../chat/history";
import type { Event } from "../../gen/omnipanel/v1/events";
import { ChatMessage, type ChatResponse } from "../../gen/omnipanel/v1/models";
import { eventually, Sandbox } from "../sandbox";

const MODEL = { provider: "local", name: "test-small:latest" };
const CANNED = "This reply comes from fake-ollama.";

describe("the chat view's history against the real agent", function () {
  this.timeout(120_000);
  let sandbox: Sandbox;
  let connection: AgentConnection;
  let project: string;

  before(async () => {
    sandbox = await Sandbox.create();
    // Slow tokens, so Stop lands in the middle of a reply.
    await sandbox.start({ FAKE_OLLAMA_TOKEN_DELAY_MS: "40" });
    connection = await AgentConnection.connect({ socketPath: sandbox.socket, token: sandbox.ownerToken(), userAgent: "omnipanel-vscode-test" });
    for await (const _ of connection.models.pullModel({ model: MODEL.name })) {
      // Drained: the pull's progress is the client tests' subject.
    }
    const folder = join(sandbox.root, "project");
    mkdirSync(folder);
    writeFileSync(join(folder, "greet.rs"), "fn greet() {}\n");
    const opened = await connection.projects.openProject({ path: folder });
    project = opened.project!.id;
  });
  after(async () => {
    connection?.close();
    await sandbox?.dispose();
  });

  /** Sends a request as the view does; returns the reply's pieces. */
  async function chat(request: ReturnType<typeof conversationRequest>, signal?: AbortSignal, stopAfter = Infinity): Promise<ChatResponse[]> {
    const pieces: ChatResponse[] = [];
    const abort = new AbortController();
    signal?.addEventListener("abort", () => abort.abort());
    try {
      for await (const piece of connection.models.chat({
        ...request,
        project,
        messages: request.messages.map((m) => ChatMessage.create(m)),
      }, { signal: abort.signal })) {
        pieces.push(piece);
        if (pieces.length >= stopAfter) abort.abort();
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
    return pieces;
  }

  it("keeps a chat of two questions, each sent alone, and reads it back as the view shows it", async () => {
    const events: Event[] = [];
    const watcher = new EventWatcher(connection, { minBackoffMs: 50, maxBackoffMs: 500, topics: ["conversations"] });
    let caughtUp = false;
    watcher.on("event", (event) => events.push(event));
    watcher.on("caughtUp", () => (caughtUp = true));
    watcher.start();
    try {
      await eventually("the event stream", () => caughtUp);
      const first = { role: "user" as const, text: "What does greet do?", attachments: [makeAttachment("file", "greet.rs", "rust", "fn greet() {}\n")] };
      const { conversation: created } = await connection.projects.createConversation({ project, title: titleFrom(first.text), model: MODEL.name });
      assert.ok(created);
      assert.equal(created.title, "What does greet do?");
      const id = created.id;

      const one = await chat(conversationRequest(id, MODEL, first));
      assert.equal(one.map((p) => p.content).join("").endsWith(CANNED), true);
      const alone = one.at(-1)?.stats?.promptEvalCount ?? 0;
      const second = { role: "user" as const, text: "And then?", attachments: [] };
      const two = await chat(conversationRequest(id, MODEL, second));
      assert.equal(two.map((p) => p.content).join(""), `You said: And then?\n${CANNED}`);
      // The agent put the first exchange ahead of the one new message.
      assert.ok((two.at(-1)?.stats?.promptEvalCount ?? 0) > alone, "the second request reached the model with the stored messages");

      const { conversation: stored } = await connection.projects.getConversation({ id });
      assert.ok(stored);
      const turns = turnsFromMessages(stored.messages);
      assert.deepEqual(turns.map((t) => t.role), ["user", "assistant", "user", "assistant"]);
      assert.deepEqual(turns[0], first, "the attachment comes back as a chip, the question as typed");
      assert.equal(stored.messages[0].content, userContent(first));
      assert.deepEqual(turns[2], second);

      const { conversations } = await connection.projects.listConversations({ project });
      const [pick] = conversationPicks(conversations.filter((c) => c.id === id), id, Date.now());
      assert.equal(pick.label, "What does greet do?");
      assert.match(pick.description, /^test-small:latest · 4 messages · updated (just now|\d+ seconds? ago)$/);

      await eventually("created and updated events for the chat", () =>
        events.some((e) => e.conversationChanged?.conversationId === id && e.conversationChanged.change === "created") &&
        events.some((e) => e.conversationChanged?.conversationId === id && e.conversationChanged.change === "updated"));

      await connection.projects.deleteConversation({ id });
      await eventually("the deleted event", () =>
        events.some((e) => e.conversationChanged?.conversationId === id && e.conversationChanged.change === "deleted"));
      await assert.rejects(connection.projects.getConversation({ id }), (err) => err instanceof OmniPanelError && err.code === 5);
    } finally {
      watcher.stop();
    }
  });

  it("keeps a reply stopped halfway as stopped, with what had arrived", async () => {
    const { conversation } = await connection.projects.createConversation({ project, title: "Stop me", model: MODEL.name });
    const id = conversation!.id;
    const pieces = await chat(conversationRequest(id, MODEL, { role: "user", text: "Tell me a long story about greet", attachments: [] }), undefined, 2);
    const arrived = pieces.map((p) => p.content).join("");
    let last: ReturnType<typeof turnsFromMessages>[number] | undefined;
    await eventually("the stopped reply to be stored", async () => {
      const { conversation: stored } = await connection.projects.getConversation({ id });
      last = turnsFromMessages(stored?.messages ?? []).at(-1);
      return last?.role === "assistant";
    });
    assert.ok(last?.role === "assistant" && last.stopped, JSON.stringify(last));
    assert.ok(last.text.startsWith(arrived) && !last.text.includes(CANNED), JSON.stringify(last.text));
  });

  it("answers a stored question again on Retry, sending no new message", async () => {
    const { conversation } = await connection.projects.createConversation({ project, title: "Retry me", model: MODEL.name });
    const id = conversation!.id;
    await chat(conversationRequest(id, MODEL, { role: "user", text: "Cut me short", attachments: [] }), undefined, 1);
    await eventually("the stopped reply to be stored", async () =>
      (await connection.projects.getConversation({ id })).conversation?.messages.at(-1)?.stopped === true);
    const again = await chat(replyRequest(id, MODEL));
    assert.equal(again.map((p) => p.content).join(""), `You said: Cut me short\n${CANNED}`);
    const { conversation: stored } = await connection.projects.getConversation({ id });
    assert.deepEqual(stored?.messages.map((m) => [m.role, m.stopped]), [["user", false], ["assistant", true], ["assistant", false]]);
  });

  it("moves the older version's transcript into the agent with the next question", async () => {
    const legacy = legacyTranscript({
      version: 1,
      model: MODEL,
      turns: [
        { role: "user", text: "Old question", attachments: [] },
        { role: "assistant", text: "Old answer", model: MODEL.name },
        { role: "error", error: { message: "Ollama is not running." } },
      ],
    });
    assert.ok(legacy);
    const { conversation } = await connection.projects.createConversation({ project, title: legacyTitle(legacy), model: MODEL.name });
    const id = conversation!.id;
    const reply = await chat(conversationRequest(id, legacy.model, { role: "user", text: "New question", attachments: [] }, legacy.turns));
    assert.equal(reply.map((p) => p.content).join(""), `You said: New question\n${CANNED}`);
    const { conversation: stored } = await connection.projects.getConversation({ id });
    assert.equal(stored?.title, "Old question");
    assert.deepEqual(turnsFromMessages(stored?.messages ?? []).map((t) => [t.role, t.role === "error" ? "" : t.text]), [
      ["user", "Old question"],
      ["assistant", "Old answer"],
      ["user", "New question"],
      ["assistant", `You said: New question\n${CANNED}`],
    ]);
  });
});
