// The views' agent-facing parts against the real agent and the Ollama
// double: the model catalog the picker and the LM provider list, the chat
// view's request (with an attachment) streamed through ModelService.Chat,
// and the fix the chat offers for the errors the agent really sends
// (model missing, Ollama stopped); the Git Status tree of a real
// repository and the file-change stream that refreshes it.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentConnection, OmniPanelError } from '../../client';
import { ChatMessage } from '../../gen/omnipanel/v1/models';
import { buildChatRequest, errorView, makeAttachment, type Conversation } from '../../chat/conversation';
import { ModelDetailsCache, listAllModels } from '../../lm/catalog';
import { parseModelId, toChatInformation } from '../../lm/modelInfo';
import { gitTree, summarizeStatus } from '../../views/gitItems';
import { Sandbox } from '../sandbox';

async function chatText(connection: AgentConnection, conversation: Conversation): Promise<string> {
  const request = buildChatRequest(conversation);
  let text = '';
  for await (const piece of connection.models.chat({
    model: request.model, provider: request.provider, messages: request.messages.map((m) => ChatMessage.create(m)),
  })) {
    text += piece.content;
  }
  return text;
}

async function failure(promise: Promise<unknown>): Promise<OmniPanelError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof OmniPanelError, String(err));
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('views against the real agent', function () {
  this.timeout(120_000);
  let sandbox: Sandbox;
  let connection: AgentConnection;

  before(async () => {
    sandbox = await Sandbox.create();
    await sandbox.start();
    connection = await AgentConnection.connect({ socketPath: sandbox.socket, token: sandbox.ownerToken() });
    for await (const _ of connection.models.pullModel({ model: 'test-small:latest' })) {
      // Drain the progress; the pull ends when the model is installed.
    }
  });

  after(async () => {
    connection?.close();
    await sandbox?.dispose();
  });

  it('lists the installed models of every provider for the picker', async () => {
    const { models, failures } = await listAllModels(connection);
    assert.deepEqual(failures, []);
    const model = models.find((m) => m.name === 'test-small:latest');
    assert.ok(model, JSON.stringify(models));
    assert.equal(model.provider, 'local');
    assert.ok(model.sizeBytes > 0);
    const details = await new ModelDetailsCache().get(connection, model);
    assert.ok(details, 'ShowModel answered');
    const info = toChatInformation(model, details);
    assert.equal(info.id, 'local/test-small:latest');
    assert.ok(info.maxInputTokens > 0);
  });

  it('lists and chats with the models of a second provider too', async () => {
    const { status } = await connection.models.getServerStatus({});
    assert.ok(status?.address);
    // The same double, registered again as a remote provider.
    await connection.models.addProvider({ name: 'second', url: `http://${status.address}` });
    try {
      const { models, failures } = await listAllModels(connection);
      assert.deepEqual(failures, []);
      assert.deepEqual(models.filter((m) => m.name === 'test-small:latest').map((m) => m.provider).sort(), ['local', 'second']);
      const text = await chatText(connection, {
        model: parseModelId(toChatInformation(models.find((m) => m.provider === 'second')!).id),
        turns: [{ role: 'user', text: 'from afar', attachments: [] }],
      });
      assert.equal(text, 'You said: from afar\nThis reply comes from fake-ollama.');
    } finally {
      await connection.models.removeProvider({ name: 'second' });
    }
  });

  it('streams the reply to a question with an attached selection', async () => {
    const text = await chatText(connection, {
      model: { provider: 'local', name: 'test-small:latest' },
      turns: [{ role: 'user', text: 'What is this?', attachments: [makeAttachment('selection', 'a.rs:1-1', 'rust', 'fn a() {}')] }],
    });
    // The double echoes the last user message, whitespace collapsed.
    assert.equal(text, 'You said: Selected code from a.rs:1-1: ```rust fn a() {} ``` What is this?\nThis reply comes from fake-ollama.');
  });

  it('offers Pull for a model that is not installed', async () => {
    const model = { provider: 'local', name: 'llama3.2:1b' };
    const err = await failure(chatText(connection, { model, turns: [{ role: 'user', text: 'hi', attachments: [] }] }));
    const view = errorView({ code: err.code, reason: err.reason, message: err.message }, model);
    assert.deepEqual(view.fix, { label: 'Pull llama3.2:1b', command: 'omnipanel.pullModel', args: ['llama3.2:1b'] }, `${err.reason}: ${err.message}`);
  });

  it('offers Start Ollama when Ollama is stopped, and the chat works after StartServer', async () => {
    const model = { provider: 'local', name: 'test-small:latest' };
    await connection.models.stopServer({});
    const err = await failure(chatText(connection, { model, turns: [{ role: 'user', text: 'hi', attachments: [] }] }));
    const view = errorView({ code: err.code, reason: err.reason, message: err.message }, model);
    assert.deepEqual(view.fix, { label: 'Start Ollama', command: 'omnipanel.startOllama', args: [] }, `${err.reason}: ${err.message}`);
    await connection.models.startServer({});
    const text = await chatText(connection, { model, turns: [{ role: 'user', text: 'hi again', attachments: [] }] });
    assert.equal(text, 'You said: hi again\nThis reply comes from fake-ollama.');
  });

  it('shows a real repository\'s status as the Git Status tree, and a file change arrives on Watch', async () => {
    const folder = join(sandbox.root, 'home', 'project');
    mkdirSync(folder, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', args, {
      cwd: folder, env: sandbox.env({ GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' }),
    });
    git('init', '-q', '-b', 'main');
    writeFileSync(join(folder, 'a.txt'), 'one\n');
    writeFileSync(join(folder, 'gone.txt'), 'x\n');
    git('add', '.');
    git('commit', '-q', '-m', 'first');
    writeFileSync(join(folder, 'a.txt'), 'two\n');
    git('rm', '-q', 'gone.txt');
    writeFileSync(join(folder, 'new.txt'), 'new\n');

    const { project } = await connection.projects.openProject({ path: folder });
    assert.ok(project);
    const { status } = await connection.git.getStatus({ project: project.id });
    assert.ok(status);
    const nodes = gitTree(summarizeStatus(status));
    assert.deepEqual(nodes.map((n) => [n.label, n.description]), [
      ['main', 'no upstream'], ['Staged Changes', '1'], ['Changes', '1'], ['Untracked', '1'],
    ]);
    assert.deepEqual(nodes.slice(1).map((g) => g.children.map((f) => [f.path, f.tooltip, f.openable])), [
      [['gone.txt', 'gone.txt: deleted (D)', false]], [['a.txt', 'a.txt: modified (M)', true]], [['new.txt', 'new.txt: untracked (U)', true]],
    ]);

    // What the view listens to for edits outside git: a change batch.
    const watch = connection.files.watch({ project: project.id });
    try {
      const first = (async () => {
        for await (const item of watch) {
          if (item.batch && item.batch.changes.some((c) => c.path === 'b.txt')) return true;
        }
        return false;
      })();
      // Written until seen: the watch may start after the first write.
      let seen = false;
      void first.then((v) => { seen = v; }, () => {});
      for (let i = 0; i < 600 && !seen; i++) {
        writeFileSync(join(folder, 'b.txt'), `${i}\n`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(seen, 'a change batch naming b.txt arrived');
    } finally {
      watch.cancel();
    }
  });
});
