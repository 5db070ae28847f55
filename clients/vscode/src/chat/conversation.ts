// The chat view's conversation, in plain data: its turns and attachments,
// how an older version's transcript is read back from workspaceState
// (defensively: the value may come from any version; the agent keeps the
// history now, see history.ts), the agent ChatRequest built from turns,
// and which fix an agent error offers in place. No `vscode` import
// (unit-tested under plain mocha).

/** Context the user attached to a question. */
export interface Attachment {
  kind: 'selection' | 'file';
  /** What the chip shows, e.g. "src/main.rs:10-24". */
  label: string;
  /** Language id for the fence, e.g. "rust"; may be empty. */
  language: string;
  text: string;
}

/** A button offered next to an error: runs a VS Code command. */
export interface FixAction {
  label: string;
  command: string;
  args: unknown[];
}

/** What went wrong with a request, as the view shows it. */
export interface ErrorView {
  message: string;
  fix?: FixAction;
}

export type Turn =
  | { role: 'user'; text: string; attachments: Attachment[] }
  | { role: 'assistant'; text: string; model: string; stopped?: boolean }
  | { role: 'error'; error: ErrorView };

/** A model choice: provider + name. */
export interface ModelRef {
  provider: string;
  name: string;
}

export interface Conversation {
  model?: ModelRef;
  turns: Turn[];
}

/** The shape versions up to 0.1 stored; other values are dropped. */
export const STORAGE_VERSION = 1;
/** Where versions up to 0.1 kept the transcript (read once for the import). */
export const STORAGE_KEY = 'omnipanel.chat.conversation';

/**
 * Attachments larger than this are cut: a whole generated file would
 * crowd out the question in a small model's context.
 */
export const MAX_ATTACHMENT_CHARS = 60_000;

export function emptyConversation(): Conversation {
  return { turns: [] };
}

/** A new attachment, cut to MAX_ATTACHMENT_CHARS with a visible note. */
export function makeAttachment(kind: Attachment['kind'], label: string, language: string, text: string): Attachment {
  if (text.length <= MAX_ATTACHMENT_CHARS) {
    return { kind, label, language, text };
  }
  return {
    kind,
    label: `${label} (first ${MAX_ATTACHMENT_CHARS} characters)`,
    language,
    text: text.slice(0, MAX_ATTACHMENT_CHARS),
  };
}

function isString(v: unknown): v is string {
  return typeof v === 'string';
}

function readAttachment(v: unknown): Attachment | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const a = v as Record<string, unknown>;
  if ((a.kind !== 'selection' && a.kind !== 'file') || !isString(a.label) || !isString(a.language) ||
    !isString(a.text)) {
    return undefined;
  }
  return { kind: a.kind, label: a.label, language: a.language, text: a.text };
}

function readTurn(v: unknown): Turn | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const t = v as Record<string, unknown>;
  if (t.role === 'user' && isString(t.text) && Array.isArray(t.attachments)) {
    const attachments = t.attachments.map(readAttachment);
    if (attachments.some((a) => a === undefined)) return undefined;
    return { role: 'user', text: t.text, attachments: attachments as Attachment[] };
  }
  if (t.role === 'assistant' && isString(t.text) && isString(t.model)) {
    return { role: 'assistant', text: t.text, model: t.model, stopped: t.stopped === true };
  }
  if (t.role === 'error' && typeof t.error === 'object' && t.error !== null &&
    isString((t.error as Record<string, unknown>).message)) {
    // A stored fix could name any command; only the message is kept.
    return { role: 'error', error: { message: (t.error as { message: string }).message } };
  }
  return undefined;
}

/**
 * Reads a conversation an older version stored. Anything unexpected (another version,
 * a hand-edited value) gives a fresh conversation rather than an error:
 * the chat must open whatever is stored.
 */
export function deserialize(stored: unknown): Conversation {
  if (typeof stored !== 'object' || stored === null) return emptyConversation();
  const s = stored as Record<string, unknown>;
  if (s.version !== STORAGE_VERSION || !Array.isArray(s.turns)) return emptyConversation();
  const turns = s.turns.map(readTurn).filter((t): t is Turn => t !== undefined);
  let model: ModelRef | undefined;
  const m = s.model as Record<string, unknown> | undefined;
  if (m && isString(m.provider) && isString(m.name) && m.name !== '') {
    model = { provider: m.provider, name: m.name };
  }
  return { model, turns };
}

/** A user turn's content as the model sees it: attachments first, fenced. */
export function userContent(turn: Extract<Turn, { role: 'user' }>): string {
  if (turn.attachments.length === 0) return turn.text;
  const parts = turn.attachments.map((a) => {
    // A fence longer than any backtick run inside keeps the block closed.
    const longest = Math.max(2, ...[...a.text.matchAll(/`+/g)].map((m) => m[0].length));
    const fence = '`'.repeat(longest + 1);
    const what = a.kind === 'selection' ? 'Selected code from' : 'File';
    return `${what} ${a.label}:\n${fence}${a.language}\n${a.text}\n${fence}`;
  });
  return `${parts.join('\n\n')}\n\n${turn.text}`;
}

/** The agent's ChatRequest (as plain fields) for the conversation so far. */
export interface ChatRequestFields {
  model: string;
  provider: string;
  messages: { role: string; content: string; images: string[] }[];
}

/**
 * Builds the request: user and assistant turns in order, error turns left
 * out (they are the view's, not the model's), an interrupted reply kept
 * as far as it got.
 */
export function buildChatRequest(conversation: Conversation): ChatRequestFields {
  const messages: ChatRequestFields['messages'] = [];
  for (const turn of conversation.turns) {
    if (turn.role === 'user') {
      messages.push({ role: 'user', content: userContent(turn), images: [] });
    } else if (turn.role === 'assistant' && turn.text !== '') {
      messages.push({ role: 'assistant', content: turn.text, images: [] });
    }
  }
  return {
    model: conversation.model?.name ?? '',
    provider: conversation.model?.provider ?? '',
    messages,
  };
}

/** What the view knows about a failed call (from the client's error type). */
export interface AgentErrorFacts {
  /** gRPC status code number (14 = UNAVAILABLE, ...). */
  code?: number;
  /** ErrorInfo reason, e.g. "OLLAMA_DOWN"; empty when none came. */
  reason?: string;
  message: string;
}

const UNAVAILABLE = 14;

/**
 * The error as shown in the chat, with the action that fixes it when there
 * is one. The command ids are the extension's (see the contract); the
 * model name goes to Pull so the user does not type it again.
 */
export function errorView(err: AgentErrorFacts, model: ModelRef | undefined): ErrorView {
  const message = err.message || 'The request failed.';
  switch (err.reason) {
    case 'OLLAMA_DOWN':
      return {
        message: `Ollama is not running: ${message}`,
        fix: { label: 'Start Ollama', command: 'omnipanel.startOllama', args: [] },
      };
    case 'MODEL_NOT_FOUND':
      return {
        message: model ? `The model ${model.name} is not installed: ${message}` : message,
        fix: { label: model ? `Pull ${model.name}` : 'Pull a Model', command: 'omnipanel.pullModel',
          args: model ? [model.name] : [] },
      };
    case 'OLLAMA_NOT_INSTALLED':
      return { message: `Ollama is not installed on the agent's machine: ${message}` };
    case 'NOT_ADMITTED':
    case 'TOKEN_INVALID':
    case 'TOKEN_MISSING':
    case 'ACCESS_DENIED':
      return {
        message: `OmniPanel has not admitted VS Code: ${message}`,
        fix: { label: 'Request Access', command: 'omnipanel.requestAccess', args: [] },
      };
    case 'SCOPE_TOO_LOW':
      return {
        message: `VS Code's access does not allow chatting (the infer scope): ${message}`,
        fix: { label: 'Request Access', command: 'omnipanel.requestAccess', args: [] },
      };
    default:
      break;
  }
  // No ErrorInfo at all means the transport failed: nothing answers on the
  // socket. (UNAVAILABLE with a reason comes from a running agent.)
  if (err.code === UNAVAILABLE && !err.reason) {
    return {
      message: `The OmniPanel agent is not running: ${message}`,
      fix: { label: 'Start Agent', command: 'omnipanel.startAgent', args: [] },
    };
  }
  return { message };
}
