// Safe rendering of chat text for the chat webview: model output and user
// input are split into prose and fenced code blocks, everything is escaped,
// and only a few inline forms (`code`, **bold**) become markup, produced
// after escaping so nothing from the model can inject HTML. No `vscode`
// import (unit-tested under plain mocha).

/** A piece of a message: prose, or a fenced code block. */
export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'code'; language: string; code: string; closed: boolean };

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;

/**
 * Splits markdown into prose and fenced code blocks. A fence left open (a
 * reply still streaming, or cut off) yields a block with `closed: false`
 * that runs to the end, so half-streamed code already renders as code.
 */
export function splitBlocks(markdown: string): Segment[] {
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  const segments: Segment[] = [];
  let prose: string[] = [];
  let fence: { marker: string; language: string; lines: string[] } | undefined;

  const flushProse = (): void => {
    const text = prose.join('\n');
    if (text.trim() !== '') {
      segments.push({ kind: 'text', text: text.replace(/^\n+|\n+$/g, '') });
    }
    prose = [];
  };

  for (const line of lines) {
    if (fence) {
      const trimmed = line.trim();
      if (trimmed.startsWith(fence.marker) && trimmed.replace(/[`~]/g, '') === '' &&
        trimmed[0] === fence.marker[0]) {
        segments.push({ kind: 'code', language: fence.language, code: fence.lines.join('\n'), closed: true });
        fence = undefined;
      } else {
        fence.lines.push(line);
      }
      continue;
    }
    const open = FENCE.exec(line);
    if (open) {
      flushProse();
      fence = { marker: open[1], language: open[2] ?? '', lines: [] };
    } else {
      prose.push(line);
    }
  }
  if (fence) {
    segments.push({ kind: 'code', language: fence.language, code: fence.lines.join('\n'), closed: false });
  } else {
    flushProse();
  }
  return segments;
}

/** The code blocks of a message, in order (what Copy/Insert refer to). */
export function codeBlocks(markdown: string): string[] {
  return splitBlocks(markdown)
    .filter((s): s is Extract<Segment, { kind: 'code' }> => s.kind === 'code')
    .map((s) => s.code);
}

/**
 * Inline markup on already-escaped text: `code` (a span closes with as
 * many backticks as opened it, so ```x``` inside a line is one span) and
 * **bold**.
 */
function inline(escaped: string): string {
  return escaped
    .replace(/(`+)(?!`)([^\n]*?[^`\n])\1(?!`)/g, '<code>$2</code>')
    .replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>');
}

/** Prose as paragraphs; single newlines kept as line breaks. */
function renderProse(text: string): string {
  return text
    .split(/\n{2,}/)
    .map((paragraph) => `<p>${inline(escapeHtml(paragraph)).replace(/\n/g, '<br>')}</p>`)
    .join('');
}

/**
 * A message body as HTML. `messageIndex` goes on each code block's buttons
 * so the webview can say which block to copy or insert; the code itself
 * stays on the extension side.
 */
export function renderMarkdown(markdown: string, messageIndex: number, withActions: boolean): string {
  let block = 0;
  return splitBlocks(markdown)
    .map((segment) => {
      if (segment.kind === 'text') {
        return renderProse(segment.text);
      }
      const index = block++;
      const language = segment.language
        ? `<span class="code-lang">${escapeHtml(segment.language)}</span>`
        : '<span class="code-lang"></span>';
      const actions = withActions && segment.closed
        ? `<button class="code-action" data-action="copy" data-message="${messageIndex}" data-block="${index}" title="Copy">Copy</button>` +
          `<button class="code-action" data-action="insert" data-message="${messageIndex}" data-block="${index}" title="Insert at Cursor">Insert at Cursor</button>`
        : '';
      return `<div class="code-block"><div class="code-bar">${language}${actions}</div>` +
        `<pre><code>${escapeHtml(segment.code)}</code></pre></div>`;
    })
    .join('');
}
