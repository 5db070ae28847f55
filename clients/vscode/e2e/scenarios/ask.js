// Scenario "ask": a project file opened, its text selected, F1 → "OmniPanel:
// Ask About Selection", Enter on the prefilled question; a new editor beside
// it receives the model's streamed answer (the Ollama double echoes the
// input as "You said: …" and ends with its fixed sentence).
'use strict';

const { waitFor } = require('../wait');


/** The sentence every answer of the Ollama double ends with (tests/doubles/ollama/generate.rs). */
const CANNED = 'This reply comes from fake-ollama.';
const FILE = 'src/greet.py';

module.exports = {
  name: 'ask',
  approveAccess: true,
  async setup(agent) {
    // A default model, so the command asks no "which model" question.
    await agent.cli(['models', 'pull', 'tinyllama']);
    await agent.cli(['models', 'default', 'tinyllama:latest']);
  },
  async run({ workbench }) {
    await workbench.openFile(FILE);
    await workbench.page.locator('.editor-group-container.active .monaco-editor .view-lines').first().click();
    await workbench.page.keyboard.press('Control+A');
    await workbench.screenshot('selected');

    await workbench.runCommand('OmniPanel: Ask About Selection');
    const input = await workbench.waitForPrompt('the question box');
    await waitFor('the question box to hold its default question', async () => (await input.inputValue()) === 'Explain this code');
    await workbench.screenshot('question');
    await workbench.page.keyboard.press('Enter');

    const answer = await waitFor('the streamed answer in a new editor', async () => {
      const title = await workbench.activeTabTitle().catch(() => '');
      if (title.includes('greet.py')) {
        return false;
      }
      const text = await workbench.activeEditorText().catch(() => '');
      // The double echoes the last user message: the question is in it.
      return text.includes('You said:') && text.includes('Explain this code') && text.includes(CANNED) && text;
    });
    await workbench.screenshot('answer');
  },
};
