// Unit tests of chat/history.ts: titles from questions, stored user
// messages split back into attachments and question, the view's turns and
// model from a stored conversation, the picker's rows and times as the CLI
// writes them, the one-new-message request, and the older version's
// transcript imported with the first question.

import { strict as assert } from 'node:assert';
import { makeAttachment, userContent } from '../../chat/conversation';
import {
  TITLE_MAX_CHARS, conversationPicks, conversationRequest, fromAgent, legacyTitle, legacyTranscript, parseUserContent, questionStored, relativeTime,
  titleFrom, turnsFromMessages,
} from '../../chat/history';
import { Conversation, ConversationMessage } from '../../gen/omnipanel/v1/projects';

function message(fields: Partial<ConversationMessage>): ConversationMessage {
  return ConversationMessage.create(fields);
}

describe('chat history', () => {
  it('titles a conversation from the first line of the question', () => {
    assert.equal(titleFrom('\n  What does   greet do?\nMore detail'), 'What does greet do?');
    assert.equal(titleFrom('   \n '), 'New chat');
    const long = titleFrom('x'.repeat(200));
    assert.equal([...long].length, TITLE_MAX_CHARS);
    assert.ok(long.endsWith('…'));
  });

  it('splits a stored question back into its attachments and text', () => {
    const attachments = [
      makeAttachment('selection', 'src/a.rs:1-2', 'rust', 'fn a() {}\n// ``` inside'),
      makeAttachment('file', 'README.md', 'markdown', 'a\n````\nb'),
      makeAttachment('file', 'empty.txt', '', ''),
    ];
    const content = userContent({ role: 'user', text: 'What is this?\n\nTwo paragraphs.', attachments });
    assert.deepEqual(parseUserContent(content), { text: 'What is this?\n\nTwo paragraphs.', attachments });
    const onlyCode = userContent({ role: 'user', text: '', attachments: attachments.slice(0, 1) });
    assert.deepEqual(parseUserContent(onlyCode), { text: '', attachments: attachments.slice(0, 1) });
  });

  it('leaves messages it did not write as text', () => {
    for (const text of ['plain question', 'File notes:\nno fence here', 'File x:\n```\nnever closed', 'File x:\n```\ncode\n```trailing']) {
      assert.deepEqual(parseUserContent(text), { text, attachments: [] }, text);
    }
  });

  it('shows stored user and assistant messages, a stopped reply marked, system messages not', () => {
    const turns = turnsFromMessages([
      message({ role: 'system', content: 'Be brief.' }),
      message({ role: 'user', content: 'hi' }),
      message({ role: 'assistant', content: 'Hello', model: 'tinyllama:latest', provider: 'local' }),
      message({ role: 'user', content: 'more' }),
      message({ role: 'assistant', content: 'Hel', model: 'tinyllama:latest', stopped: true }),
    ]);
    assert.deepEqual(turns, [
      { role: 'user', text: 'hi', attachments: [] },
      { role: 'assistant', text: 'Hello', model: 'tinyllama:latest', stopped: false },
      { role: 'user', text: 'more', attachments: [] },
      { role: 'assistant', text: 'Hel', model: 'tinyllama:latest', stopped: true },
    ]);
  });

  it('tells whether the agent stored a question sent after `from` turns', () => {
    const question = { role: 'user' as const, text: 'hi', attachments: [makeAttachment('file', 'a.txt', '', 'x')] };
    const stored = turnsFromMessages([
      message({ role: 'user', content: userContent(question) }),
      message({ role: 'assistant', content: 'Hello' }),
    ]);
    assert.equal(questionStored(stored, question, 0), true);
    // The same question asked again after those two turns is not stored yet.
    assert.equal(questionStored(stored, question, 2), false);
    assert.equal(questionStored(stored, { ...question, attachments: [] }, 0), false);
  });

  it('continues with the model of the latest reply, else the one picked', () => {
    const picked = { provider: 'local', name: 'qwen2.5:0.5b' };
    const answered = Conversation.create({ id: 'c1', model: 'llama3.2:1b', provider: 'gpu-box' });
    assert.deepEqual(fromAgent(answered, picked).model, { provider: 'gpu-box', name: 'llama3.2:1b' });
    const asked = Conversation.create({ id: 'c2', model: 'llama3.2:1b' });
    assert.deepEqual(fromAgent(asked, picked).model, { provider: 'local', name: 'llama3.2:1b' });
    assert.deepEqual(fromAgent(Conversation.create({ id: 'c3' }), picked).model, picked);
  });

  it('writes times as the CLI does', () => {
    const now = 1_000_000_000_000;
    assert.equal(relativeTime(0, now), 'never');
    assert.equal(relativeTime(now - 2_000, now), 'just now');
    assert.equal(relativeTime(now - 30_000, now), '30 seconds ago');
    assert.equal(relativeTime(now - 60_000, now), '1 minute ago');
    assert.equal(relativeTime(now - 3 * 3_600_000, now), '3 hours ago');
    assert.equal(relativeTime(now - 2 * 86_400_000, now), '2 days ago');
    assert.equal(relativeTime(now - 35 * 86_400_000, now), '1 month ago');
    assert.equal(relativeTime(now + 120_000, now), 'in 2 minutes');
  });

  it('lists conversations as title · model · messages · updated, the shown one marked', () => {
    const now = 1_000_000_000_000;
    const picks = conversationPicks([
      Conversation.create({ id: 'b', title: 'Second', model: 'tinyllama:latest', messageCount: 4, updatedUnixMs: BigInt(now - 120_000) }),
      Conversation.create({ id: 'a', title: '', model: '', messageCount: 1, updatedUnixMs: BigInt(now - 2 * 86_400_000) }),
    ], 'a', now);
    assert.deepEqual(picks, [
      { id: 'b', label: 'Second', description: 'tinyllama:latest · 4 messages · updated 2 minutes ago', current: false },
      { id: 'a', label: 'Untitled', description: 'default model · 1 message · updated 2 days ago', current: true },
    ]);
  });

  it('sends only the new question, with its attachments, to a stored conversation', () => {
    const question = { role: 'user' as const, text: 'And this?', attachments: [makeAttachment('selection', 'a.rs:3-4', 'rust', 'x')] };
    const request = conversationRequest('c1', { provider: 'local', name: 'tinyllama:latest' }, question);
    assert.deepEqual(request, {
      conversationId: 'c1',
      model: 'tinyllama:latest',
      provider: 'local',
      messages: [{ role: 'user', content: userContent(question), images: [] }],
    });
    assert.equal(conversationRequest('c1', undefined, question).model, '');
  });

  it('imports the older version\'s transcript ahead of the first question, errors left out', () => {
    const stored = {
      version: 1,
      model: { provider: 'local', name: 'tinyllama:latest' },
      turns: [
        { role: 'user', text: 'Old question\nwith detail', attachments: [] },
        { role: 'assistant', text: 'Old answer', model: 'tinyllama:latest' },
        { role: 'error', error: { message: 'Ollama is not running.' } },
      ],
    };
    const legacy = legacyTranscript(stored);
    assert.ok(legacy);
    assert.equal(legacy.turns.length, 2);
    assert.equal(legacyTitle(legacy), 'Old question');
    const request = conversationRequest('c9', legacy.model, { role: 'user', text: 'New question', attachments: [] }, legacy.turns);
    assert.deepEqual(request.messages.map((m) => [m.role, m.content]), [
      ['user', 'Old question\nwith detail'],
      ['assistant', 'Old answer'],
      ['user', 'New question'],
    ]);
  });

  it('has nothing to import from an empty or foreign stored value', () => {
    for (const stored of [undefined, null, { version: 1, turns: [] }, { version: 2, turns: [{ role: 'user', text: 'x', attachments: [] }] },
      { version: 1, turns: [{ role: 'error', error: { message: 'm' } }] }]) {
      assert.equal(legacyTranscript(stored), undefined, JSON.stringify(stored));
    }
  });
});
