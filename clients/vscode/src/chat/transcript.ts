// The chat transcript as HTML for the webview: one block per turn (user
// question with its attachment chips, the model's reply rendered by
// markdown.ts, an error with its fix button). Built on the extension side
// so the escaping is unit-tested; the webview only places it. No `vscode`
// import.

import { Conversation, Turn } from './conversation';
import { escapeHtml, renderMarkdown } from './markdown';

/**
 * One turn's HTML; `streaming` marks the reply still arriving, `last` the
 * final turn (an error there gets a Retry button).
 */
export function renderTurn(turn: Turn, index: number, streaming: boolean, last = false): string {
  switch (turn.role) {
    case 'user': {
      const chips = turn.attachments
        .map((a) => `<span class="chip" title="${escapeHtml(a.kind === 'file' ? 'Attached file' : 'Attached selection')}">${escapeHtml(a.label)}</span>`)
        .join('');
      return `<div class="turn user" data-turn="${index}"><div class="who">You</div>` +
        (chips ? `<div class="chips">${chips}</div>` : '') +
        `<div class="body">${renderMarkdown(turn.text, index, false)}</div></div>`;
    }
    case 'assistant': {
      const body = turn.text === '' && streaming ? '<p class="waiting">…</p>' : renderMarkdown(turn.text, index, !streaming);
      const note = turn.stopped ? '<div class="note">Stopped.</div>' : '';
      return `<div class="turn assistant${streaming ? ' streaming' : ''}" data-turn="${index}">` +
        `<div class="who">${escapeHtml(turn.model || 'Model')}</div><div class="body">${body}</div>${note}</div>`;
    }
    case 'error': {
      const fix = turn.error.fix
        ? `<button class="fix" data-action="fix" data-turn="${index}">${escapeHtml(turn.error.fix.label)}</button>`
        : '';
      const retry = last ? `<button class="secondary" data-action="retry" data-turn="${index}">Retry</button>` : '';
      return `<div class="turn error" data-turn="${index}" role="alert"><div class="body"><p>${escapeHtml(turn.error.message)}</p></div>${fix}${retry}</div>`;
    }
  }
}

/** The whole transcript; the last turn is marked streaming when asked. */
export function renderTranscript(conversation: Conversation, streamingLast: boolean): string {
  const last = conversation.turns.length - 1;
  return conversation.turns.map((turn, i) => renderTurn(turn, i, streamingLast && i === last, i === last)).join('');
}
