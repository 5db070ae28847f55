// Scenario "chat": the extension's own chat view (a webview) answers a
// prompt with the Ollama double's streamed reply; then VS Code's own
// "Language Models" editor lists the agent's model, offered by the
// extension's Language Model Chat Provider (vendor "omnipanel").
//
// Why that editor and not the chat panel's model picker: without a signed-in
// Copilot (impossible offline) code-server 1.139's picker shows only "Sign
// in to use Copilot" (or "Auto" with chat.allowAnonymousAccess), whatever
// providers are registered; the editor lists every registered provider's
// models, which is what the picker draws from once chat is set up.
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
    const view = await workbench.chatView();
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

    await languageModelsEditorListsOmniPanel(workbench);
    await workbench.screenshot('language-models');
  },
};

/**
 * Opens VS Code's "Language Models" editor (Chat: Manage Language Models)
 * and waits for a row naming the installed model.
 */
async function languageModelsEditorListsOmniPanel(workbench) {
  await workbench.runCommand('Chat: Manage Language Models');
  const editor = workbench.page.locator('.monaco-modal-editor-block');
  await editor.waitFor({ state: 'visible' });
  await waitFor(`the Language Models editor to list ${MODEL_TAG}`, async () => (await editor.innerText()).includes(MODEL_TAG));
}
