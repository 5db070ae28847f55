// Unit tests of chat/conversation.ts: the ChatRequest built from a
// conversation, attachments as context, reading an older version's stored
// transcript (also bad stored values), and the fix each agent error offers.

import { strict as assert } from 'node:assert';
import {
  Conversation, MAX_ATTACHMENT_CHARS, buildChatRequest, deserialize, errorView, makeAttachment,
  userContent,
} from '../../chat/conversation';

describe('chat conversation', () => {
  const conversation: Conversation = {
    model: { provider: 'gpu-box', name: 'qwen2.5:0.5b' },
    turns: [
      { role: 'user', text: 'What does it do?', attachments: [makeAttachment('selection', 'src/a.rs:1-2', 'rust', 'fn a() {}')] },
      { role: 'assistant', text: 'It does nothing.', model: 'qwen2.5:0.5b' },
      { role: 'error', error: { message: 'Ollama is not running.' } },
      { role: 'user', text: 'And now?', attachments: [] },
      { role: 'assistant', text: '', model: 'qwen2.5:0.5b', stopped: true },
    ],
  };

  it('builds the request from user and assistant turns, leaving errors out', () => {
    const request = buildChatRequest(conversation);
    assert.equal(request.model, 'qwen2.5:0.5b');
    assert.equal(request.provider, 'gpu-box');
    assert.deepEqual(request.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.equal(request.messages[0].content,
      'Selected code from src/a.rs:1-2:\n```rust\nfn a() {}\n```\n\nWhat does it do?');
    assert.equal(request.messages[2].content, 'And now?');
  });

  it('asks for the default model when none is picked', () => {
    const request = buildChatRequest({ turns: [{ role: 'user', text: 'hi', attachments: [] }] });
    assert.equal(request.model, '');
    assert.equal(request.provider, '');
  });

  it('fences an attachment with more backticks than it contains', () => {
    const content = userContent({
      role: 'user', text: 'q', attachments: [makeAttachment('file', 'README.md', 'markdown', 'a\n````\nb')],
    });
    assert.ok(content.startsWith('File README.md:\n`````markdown\n'), content);
    assert.ok(content.includes('\n`````\n\nq'), content);
  });

  it('cuts a huge attachment and says so', () => {
    const a = makeAttachment('file', 'big.txt', '', 'x'.repeat(MAX_ATTACHMENT_CHARS + 10));
    assert.equal(a.text.length, MAX_ATTACHMENT_CHARS);
    assert.match(a.label, /first 60000 characters/);
  });

  it('reads what the older version stored, without stored fix commands', () => {
    // The stored form versions up to 0.1 wrote: { version: 1, model, turns }.
    const stored = JSON.parse(JSON.stringify({ version: 1, model: conversation.model, turns: conversation.turns }));
    assert.deepEqual(deserialize(stored), {
      ...conversation,
      turns: conversation.turns.map((t) => (t.role === 'assistant' ? { ...t, stopped: t.stopped === true } : t)),
    });
    const withFix = { version: 1, turns: [{ role: 'error', error: { message: 'm', fix: { label: 'x', command: 'workbench.action.quit', args: [] } } }] };
    assert.deepEqual(deserialize(withFix).turns, [{ role: 'error', error: { message: 'm' } }]);
  });

  it('opens a fresh conversation from anything unexpected in storage', () => {
    for (const bad of [undefined, null, 3, 'x', [], { version: 99, turns: [] }, { version: 1, turns: 'no' }]) {
      assert.deepEqual(deserialize(bad), { turns: [] }, JSON.stringify(bad));
    }
    const partly = deserialize({ version: 1, model: { provider: 1 }, turns: [{ role: 'user', text: 'ok', attachments: [] }, { role: 'hacker' }] });
    assert.deepEqual(partly, { model: undefined, turns: [{ role: 'user', text: 'ok', attachments: [] }] });
  });

  it('offers Start Ollama when Ollama is down', () => {
    const view = errorView({ code: 14, reason: 'OLLAMA_DOWN', message: 'connection refused' }, undefined);
    assert.deepEqual(view.fix, { label: 'Start Ollama', command: 'omnipanel.startOllama', args: [] });
    assert.match(view.message, /Ollama is not running/);
  });

  it('offers to pull the missing model by name', () => {
    const view = errorView({ code: 5, reason: 'MODEL_NOT_FOUND', message: 'not installed' }, { provider: 'local', name: 'llama3.2:1b' });
    assert.deepEqual(view.fix, { label: 'Pull llama3.2:1b', command: 'omnipanel.pullModel', args: ['llama3.2:1b'] });
  });

  it('offers Start Agent only when nothing answers', () => {
    assert.equal(errorView({ code: 14, message: 'connect ENOENT' }, undefined).fix?.command, 'omnipanel.startAgent');
    assert.equal(errorView({ code: 14, reason: 'OLLAMA_BUSY', message: 'busy' }, undefined).fix, undefined);
  });

  it('offers Request Access when not admitted', () => {
    assert.equal(errorView({ code: 7, reason: 'NOT_ADMITTED', message: 'x' }, undefined).fix?.command, 'omnipanel.requestAccess');
  });

  it('shows other errors as they are', () => {
    assert.deepEqual(errorView({ code: 13, reason: 'INTERNAL', message: 'boom' }, undefined), { message: 'boom' });
  });
});
