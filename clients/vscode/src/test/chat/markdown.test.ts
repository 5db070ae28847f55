// Unit tests of chat/markdown.ts: escaping of model output, fenced-block
// splitting (also while a block is still streaming) and the rendered HTML.

import { strict as assert } from 'node:assert';
import { codeBlocks, escapeHtml, renderMarkdown, splitBlocks } from '../../chat/markdown';

describe('chat markdown', () => {
  it('escapes every HTML-significant character', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`),
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('splits prose and fenced code blocks in order', () => {
    const text = 'Here is code:\n\n```rust\nfn main() {}\n```\nAnd more.\n~~~\nplain\n~~~';
    assert.deepEqual(splitBlocks(text), [
      { kind: 'text', text: 'Here is code:' },
      { kind: 'code', language: 'rust', code: 'fn main() {}', closed: true },
      { kind: 'text', text: 'And more.' },
      { kind: 'code', language: '', code: 'plain', closed: true },
    ]);
  });

  it('keeps an unterminated fence as an open code block (streaming)', () => {
    assert.deepEqual(splitBlocks('Start\n```py\nprint(1)\nprint('), [
      { kind: 'text', text: 'Start' },
      { kind: 'code', language: 'py', code: 'print(1)\nprint(', closed: false },
    ]);
  });

  it('does not close a ``` fence with ~~~ or a shorter fence', () => {
    const blocks = codeBlocks('````md\n```js\nx\n```\n~~~\n````');
    assert.deepEqual(blocks, ['```js\nx\n```\n~~~']);
  });

  it('extracts code blocks with CRLF line ends', () => {
    assert.deepEqual(codeBlocks('a\r\n```\r\nline1\r\nline2\r\n```\r\n'), ['line1\nline2']);
  });

  it('renders model output with no live markup', () => {
    const html = renderMarkdown('<img src=x onerror=alert(1)> **bold** `<b>`\n```html" onclick="x\n<script>alert(1)</script>\n```', 3, true);
    assert.ok(!html.includes('<img'), html);
    assert.ok(!html.includes('<script>'), html);
    assert.ok(!html.includes('" onclick="'), html);
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(html.includes('<strong>bold</strong>'));
    assert.ok(html.includes('<code>&lt;b&gt;</code>'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  it('puts Copy and Insert buttons on finished blocks only', () => {
    const done = renderMarkdown('```\na\n```\n```\nb\n```', 7, true);
    assert.equal((done.match(/data-action="copy"/g) ?? []).length, 2);
    assert.ok(done.includes('data-action="insert" data-message="7" data-block="1"'));
    assert.ok(!renderMarkdown('```\na', 7, true).includes('data-action'));
    assert.ok(!renderMarkdown('```\na\n```', 7, false).includes('data-action'));
  });

  it('closes an inline code span with as many backticks as opened it', () => {
    assert.equal(renderMarkdown('a ```x ` y``` b `z`', 0, true), '<p>a <code>x ` y</code> b <code>z</code></p>');
    assert.equal(renderMarkdown('lone ` tick', 0, true), '<p>lone ` tick</p>');
  });

  it('keeps paragraphs and line breaks of prose', () => {
    assert.equal(renderMarkdown('one\ntwo\n\nthree', 0, true), '<p>one<br>two</p><p>three</p>');
  });
});
