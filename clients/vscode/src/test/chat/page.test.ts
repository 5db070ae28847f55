// Unit tests of the chat page shell (chat/page.ts) and the transcript
// HTML (chat/transcript.ts): the CSP, the nonce, and escaping of what the
// user, the model and the agent's errors put on the page.

import { strict as assert } from 'node:assert';
import { chatPageHtml, contentSecurityPolicy, makeNonce } from '../../chat/page';
import { renderTranscript } from '../../chat/transcript';

describe('chat page', () => {
  const resources = { cspSource: 'https://file+.vscode-resource.vscode-cdn.net', nonce: 'abc123', scriptUri: 'https://r/chat.js', styleUri: 'https://r/chat.css' };

  it('allows only the extension\'s resources and the nonced script', () => {
    const csp = contentSecurityPolicy(resources);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-abc123'(;|$)/);
    assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval') && !csp.includes('*'), csp);
  });

  it('loads every script with the nonce and has no inline handlers', () => {
    const html = chatPageHtml(resources);
    const scripts = html.match(/<script[^>]*>/g) ?? [];
    assert.equal(scripts.length, 1);
    assert.ok(scripts[0].includes('nonce="abc123"') && scripts[0].includes('src="https://r/chat.js"'));
    assert.ok(!/\son[a-z]+=/.test(html), 'inline event handler found');
    assert.ok(html.includes('http-equiv="Content-Security-Policy"'));
  });

  it('makes distinct alphanumeric nonces', () => {
    let seed = 0;
    const random = (n: number) => Uint8Array.from({ length: n }, () => (seed += 37) % 256);
    const a = makeNonce(random);
    const b = makeNonce(random);
    assert.match(a, /^[A-Za-z0-9]{16,}$/);
    assert.notEqual(a, b);
  });

  it('escapes user text, attachment labels, model names and error messages', () => {
    const html = renderTranscript({
      turns: [
        { role: 'user', text: '<b>hi</b>', attachments: [{ kind: 'file', label: '"><img src=x>', language: '', text: '' }] },
        { role: 'assistant', text: 'ok', model: '<evil>' },
        { role: 'error', error: { message: '<script>x</script>', fix: { label: '<Pull>', command: 'omnipanel.pullModel', args: [] } } },
      ],
    }, false);
    assert.ok(!/<(b|img|evil|script|Pull)\b/.test(html), html);
    assert.ok(html.includes('data-action="fix" data-turn="2"'));
  });

  it('marks only the last reply as streaming, without code buttons yet', () => {
    const html = renderTranscript({
      turns: [
        { role: 'assistant', text: '```\na\n```', model: 'm' },
        { role: 'assistant', text: '```\nb\n```', model: 'm' },
      ],
    }, true);
    assert.equal((html.match(/streaming/g) ?? []).length, 1);
    assert.equal((html.match(/data-action="copy"/g) ?? []).length, 1);
  });
});
