// The chat webview's page shell: a strict Content-Security-Policy (no
// remote resources, styles and scripts only from the extension, the one
// script by nonce), the controls, and nothing from the model (that arrives
// later by message, already escaped). No `vscode` import.

import { escapeHtml } from './markdown';

export interface PageResources {
  /** webview.cspSource */
  cspSource: string;
  /** A fresh random nonce per page load. */
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

/** The Content-Security-Policy of the page. */
export function contentSecurityPolicy(r: PageResources): string {
  return [
    "default-src 'none'",
    `style-src ${r.cspSource}`,
    `script-src 'nonce-${r.nonce}'`,
    `img-src ${r.cspSource} data:`,
    `font-src ${r.cspSource}`,
    "connect-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** A nonce from 16 random bytes; `random` is injectable for tests. */
export function makeNonce(random: (n: number) => Uint8Array): string {
  return Buffer.from(random(16)).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export function chatPageHtml(r: PageResources): string {
  const csp = escapeHtml(contentSecurityPolicy(r));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(r.styleUri)}">
<title>OmniPanel Chat</title>
</head>
<body>
<div id="toolbar">
  <label for="model" class="visually-hidden">Model</label>
  <select id="model" title="Model"></select>
  <button id="new" class="secondary" title="Start a new chat (the agent keeps this one)">New</button>
  <button id="history" class="secondary" title="Open an earlier chat of this project">Chats…</button>
  <button id="delete" class="secondary" title="Delete this chat from the agent">Delete</button>
</div>
<div id="title" class="conversation-title" hidden></div>
<div id="notice" class="notice" role="status" hidden><span id="noticeText" class="note"></span> <button id="noticeAction" class="secondary" hidden></button></div>
<div id="transcript" aria-live="polite"></div>
<div id="empty" class="empty">Ask a question about your code. Attach the selection or the current file as context.</div>
<div id="composer">
  <div id="attachments" class="chips"></div>
  <textarea id="input" rows="3" placeholder="Ask the model… (Enter sends, Shift+Enter for a new line)" aria-label="Message"></textarea>
  <div id="actions">
    <button id="attachSelection" class="secondary" title="Attach the editor's selection">Attach Selection</button>
    <button id="attachFile" class="secondary" title="Attach the current file">Attach File</button>
    <span class="spacer"></span>
    <button id="stop" title="Stop the reply" hidden>Stop</button>
    <button id="send" title="Send">Send</button>
  </div>
</div>
<script nonce="${escapeHtml(r.nonce)}" src="${escapeHtml(r.scriptUri)}"></script>
</body>
</html>`;
}
