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
  // A pause before each token of the double's reply (about 35 tokens), so
  // the answer is seen arriving in pieces: streamed, not shown at the end.
  fakeEnv: { FAKE_OLLAMA_TOKEN_DELAY_MS: '150' },
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

    // Compared without whitespace: the editor wraps long lines wherever
    // its width says, and the rendered lines are all the page offers.
    const squash = (text) => text.replace(/\s+/g, '');
    let partial;
    await waitFor('the streamed answer in a new editor', async () => {
      const title = await workbench.activeTabTitle().catch(() => '');
      if (title.includes('greet.py')) {
        return false;
      }
      const text = squash(await workbench.activeEditorText().catch(() => ''));
      if (partial === undefined && text.includes(squash('You said:')) && !text.includes(squash(CANNED))) {
        partial = text;
        await workbench.screenshot('streaming');
      }
      // The double echoes the last user message, which carries the
      // question and the selected code (the selection is the context).
      return (
        text.includes(squash('You said: Explain this code')) &&
        text.includes(squash('def greet(name):')) &&
        text.includes(squash(CANNED))
      );
    });
    if (partial === undefined) {
      throw new Error('the answer appeared all at once: no part of it was seen before its last sentence (it should stream)');
    }
    await workbench.screenshot('answer');
  },
};
