// Scenario "chat": the extension's own chat view (a webview) answers a
// prompt with the Ollama double's streamed reply; then VS Code's built-in
// chat panel lists an OmniPanel model in its model picker (the Language
// Model Chat Provider, vendor "omnipanel").
'use strict';

const { waitFor } = require('../wait');

/** The sentence every answer of the Ollama double ends with (tests/doubles/ollama/generate.rs). */
const CANNED = 'This reply comes from fake-ollama.';
const MODEL_TAG = 'tinyllama:latest';
const PROMPT = 'What does greet do?';

module.exports = {
  name: 'chat',
  approveAccess: true,
  async setup(agent) {
    await agent.cli(['models', 'pull', 'tinyllama']);
    await agent.cli(['models', 'default', MODEL_TAG]);
  },
  async run({ workbench }) {
    await workbench.runCommand('OmniPanel: Open Chat');
    const view = await chatViewFrame(workbench.page);
    await waitFor(`${MODEL_TAG} in the chat view's model picker`, async () => {
      const options = await view.locator('#model option').allInnerTexts();
      return options.some((o) => o.includes(MODEL_TAG));
    });
    await view.locator('#input').fill(PROMPT);
    await view.locator('#send').click();
    await waitFor('the streamed reply in the chat view', async () => {
      const text = await view.locator('#transcript').innerText();
      return text.includes(`You said: ${PROMPT}`) && text.includes(CANNED);
    });
    await workbench.screenshot('view-answer');

    await builtInPickerListsOmniPanel(workbench);
    await workbench.screenshot('builtin-picker');
  },
};

/**
 * The frame of the chat webview. VS Code nests each webview in two iframes
 * whose names carry no extension id, so the frame is the one holding the
 * view's own transcript element.
 */
async function chatViewFrame(page) {
  return waitFor('the OmniPanel chat view to load', async () => {
    for (const frame of page.frames()) {
      if ((await frame.locator('#transcript').count().catch(() => 0)) > 0 && (await frame.locator('#send').count().catch(() => 0)) > 0) {
        return frame;
      }
    }
    return false;
  });
}

/**
 * Opens the built-in chat panel and its model picker, and waits for an
 * entry naming the installed model.
 */
async function builtInPickerListsOmniPanel(workbench) {
  const { page } = workbench;
  await workbench.runCommand('Chat: Open Chat');
  const picker = page.locator('.interactive-input-part .action-item .chat-model-label, .interactive-input-part [aria-label*="Pick Model"], .interactive-input-part [aria-label*="Language Model"]').first();
  await picker.waitFor({ state: 'visible' });
  await picker.click();
  await waitFor(`the chat panel's model picker to list ${MODEL_TAG}`, async () => {
    const entries = await page
      .locator('.monaco-list-row, .action-widget .action-item, .monaco-action-bar .action-label, .quick-input-list .monaco-list-row')
      .allInnerTexts();
    return entries.some((e) => e.includes('tinyllama'));
  });
}
