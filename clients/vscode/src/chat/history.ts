// The chat view's history as the agent keeps it, in plain data: the view's
// turns from a stored conversation (attachments recognised again in the
// user messages the extension wrote), the title a new conversation gets,
// the conversation picker's rows ("title · model · updated"), the one new
// message a request sends, and the import of the transcript an older
// version left in workspaceState. No `vscode` import (unit-tested under
// plain mocha).

import type { Conversation as AgentConversation, ConversationMessage } from '../gen/omnipanel/v1/projects';
import {
  Attachment, ChatRequestFields, Conversation, ModelRef, STORAGE_KEY, Turn, buildChatRequest, deserialize, userContent,
} from './conversation';

/** The workspaceState key the older version kept its one transcript under. */
export const LEGACY_STORAGE_KEY = STORAGE_KEY;

/** Longest title the view gives a conversation (the agent trims to the same). */
export const TITLE_MAX_CHARS = 80;

/**
 * A new conversation's title: the question's first non-blank line with
 * its whitespace collapsed, cut at TITLE_MAX_CHARS. The view passes it
 * explicitly because the stored first message starts with the attached
 * code, which would make a poor title.
 */
export function titleFrom(question: string): string {
  const line = question.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).find((l) => l !== '') ?? '';
  if (line === '') return 'New chat';
  const chars = [...line];
  return chars.length <= TITLE_MAX_CHARS ? line : `${chars.slice(0, TITLE_MAX_CHARS - 1).join('')}…`;
}

const ATTACHMENT_HEAD = /^(Selected code from|File) (.+):\n(`{3,})([^\n`]*)\n/;

/**
 * The inverse of `userContent`: a stored user message split back into the
 * attachments the extension fenced in front of it and the question, so a
 * reloaded chat shows chips rather than the whole attached file. Anything
 * that does not parse stays text (messages from the panel or the CLI).
 */
export function parseUserContent(content: string): { text: string; attachments: Attachment[] } {
  const attachments: Attachment[] = [];
  let rest = content;
  for (;;) {
    const head = ATTACHMENT_HEAD.exec(rest);
    if (!head) break;
    const fence = head[3];
    const body = rest.slice(head[0].length);
    // The fence is longer than any backtick run inside, so its first
    // occurrence after a newline closes the block.
    const close = body.indexOf(`\n${fence}`);
    if (close === -1) break;
    const after = body.slice(close + 1 + fence.length);
    if (after !== '' && !after.startsWith('\n\n')) break;
    attachments.push({ kind: head[1] === 'File' ? 'file' : 'selection', label: head[2], language: head[4], text: body.slice(0, close) });
    rest = after.slice(2);
  }
  return attachments.length === 0 ? { text: content, attachments } : { text: rest, attachments };
}

/** The view's turns for stored messages (system messages are not shown). */
export function turnsFromMessages(messages: ConversationMessage[]): Turn[] {
  const turns: Turn[] = [];
  for (const m of messages) {
    if (m.role === 'user') {
      turns.push({ role: 'user', ...parseUserContent(m.content) });
    } else if (m.role === 'assistant') {
      turns.push({ role: 'assistant', text: m.content, model: m.model, stopped: m.stopped });
    }
  }
  return turns;
}

/**
 * Whether the agent stored `question`: a user message with its content
 * among the stored turns from index `from` (how many were stored when it
 * was sent, so an earlier identical question does not count). Decides,
 * after a failure, whether Retry sends the question again or only asks
 * for its reply.
 */
export function questionStored(turns: Turn[], question: Extract<Turn, { role: 'user' }>, from: number): boolean {
  const content = userContent(question);
  return turns.slice(from).some((t) => t.role === 'user' && userContent(t) === content);
}

/**
 * The view's conversation for a stored one. The model of its latest reply
 * becomes the picked model, so continuing a chat keeps talking to the
 * model it was had with; `picked` is kept when the conversation names none.
 */
export function fromAgent(conversation: AgentConversation, picked: ModelRef | undefined): Conversation {
  const model = conversation.model !== '' ? { provider: conversation.provider || 'local', name: conversation.model } : picked;
  return { model, turns: turnsFromMessages(conversation.messages) };
}

/** `ms` relative to `now` in words, as the CLI writes it (display::relative_to). */
export function relativeTime(ms: number, now: number): string {
  if (ms <= 0) return 'never';
  const delta = Math.trunc((ms - now) / 1000);
  const abs = Math.abs(delta);
  if (abs < 5) return delta <= 0 ? 'just now' : 'in a moment';
  const [count, unit] =
    abs < 60 ? [abs, 'second']
    : abs < 3_600 ? [Math.floor(abs / 60), 'minute']
    : abs < 86_400 ? [Math.floor(abs / 3_600), 'hour']
    : abs < 604_800 ? [Math.floor(abs / 86_400), 'day']
    : abs < 2_592_000 ? [Math.floor(abs / 604_800), 'week']
    : abs < 31_536_000 ? [Math.floor(abs / 2_592_000), 'month']
    : [Math.floor(abs / 31_536_000), 'year'];
  const plural = count === 1 ? '' : 's';
  return delta < 0 ? `${count} ${unit}${plural} ago` : `in ${count} ${unit}${plural}`;
}

/** One row of the conversation picker. */
export interface ConversationPick {
  id: string;
  label: string;
  description: string;
  /** The conversation the view shows now. */
  current: boolean;
}

/**
 * The picker's rows, in the agent's order (most recently updated first):
 * the title, then "model · N messages · updated 3 minutes ago".
 */
export function conversationPicks(conversations: AgentConversation[], shown: string | undefined, now: number): ConversationPick[] {
  return conversations.map((c) => {
    const messages = `${c.messageCount} message${c.messageCount === 1 ? '' : 's'}`;
    const parts = [c.model || 'default model', messages, `updated ${relativeTime(Number(c.updatedUnixMs), now)}`];
    return { id: c.id, label: c.title || 'Untitled', description: parts.join(' · '), current: c.id === shown };
  });
}

/**
 * The request for one new question in a stored conversation: only the new
 * user message (attachments rendered into it); the agent sends the stored
 * messages before it and appends it and the reply. `prior` holds turns the
 * agent does not have yet (an imported transcript), sent ahead of it once.
 */
export function conversationRequest(
  conversationId: string,
  model: ModelRef | undefined,
  question: Extract<Turn, { role: 'user' }>,
  prior: Turn[] = [],
): ChatRequestFields & { conversationId: string } {
  const history = buildChatRequest({ model, turns: prior }).messages;
  return {
    conversationId,
    model: model?.name ?? '',
    provider: model?.provider ?? '',
    messages: [...history, { role: 'user', content: userContent(question), images: [] }],
  };
}

/**
 * Retry of a stored question whose reply failed or was cut short: no new
 * message; the agent sends the stored ones (ending with the question, or
 * the part of the reply that arrived) and appends the new reply.
 */
export function replyRequest(conversationId: string, model: ModelRef | undefined): ChatRequestFields & { conversationId: string } {
  return { conversationId, model: model?.name ?? '', provider: model?.provider ?? '', messages: [] };
}

/**
 * The transcript an older version kept in workspaceState, when it holds a
 * question: it is shown as it was and moves into the agent with the next
 * question (see `conversationRequest`'s `prior`), so nothing is lost and
 * no model call is spent on replaying it.
 */
export function legacyTranscript(stored: unknown): Conversation | undefined {
  const conversation = deserialize(stored);
  const turns = conversation.turns.filter((t) => t.role !== 'error');
  return turns.some((t) => t.role === 'user') ? { model: conversation.model, turns } : undefined;
}

/** The title an imported transcript gets: its first question's. */
export function legacyTitle(conversation: Conversation): string {
  const first = conversation.turns.find((t) => t.role === 'user');
  return first && first.role === 'user' ? titleFrom(first.text) : 'Previous chat';
}
