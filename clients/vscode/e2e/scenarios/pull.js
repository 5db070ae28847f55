// Scenario "pull": F1 → "OmniPanel: Pull Model", the name typed and Enter;
// the progress notification appears while the pull runs in the agent, the
// model then shows up in `omnipanel models ls`, and the status bar is
// coherent with the agent (no pull left in it, the default model if set).
'use strict';

const assert = require('node:assert/strict');

const { installedModels } = require('../agent');
const { waitFor } = require('../wait');

const MODEL = 'tinyllama';
const MODEL_TAG = 'tinyllama:latest';

module.exports = {
  name: 'pull',
  approveAccess: true,
  // The fake "downloads" tinyllama's 637 MB at 100 MB/s: a few seconds, so
  // the progress notification is seen while it runs.
  fakeEnv: { FAKE_OLLAMA_PULL_BYTES_PER_SEC: String(100 * 1000 * 1000) },
  async run({ agent, workbench }) {
    assert.deepEqual(await installedModels(agent), [], 'a fresh agent has no models');
    await workbench.screenshot('before');

    await workbench.runCommand('OmniPanel: Pull Model');
    const input = await workbench.waitForPrompt('the Pull Model prompt');
    await workbench.screenshot('picker');
    await input.fill(MODEL);
    await workbench.page.keyboard.press('Enter');

    const progress = workbench.notification(`Pulling ${MODEL}`);
    await progress.waitFor({ state: 'visible' });
    // The pull's percentage shows while it runs, in the notification or in
    // the status bar (the contract's " · pulling NAME PCT%").
    const seen = await waitFor('the pull\'s percentage in the notification or the status bar', async () => {
      const toast = await progress.innerText().catch(() => '');
      const status = (await workbench.omnipanelStatus()) || '';
      // Past 0%, so the screenshot shows a pull under way.
      return /[1-9]\d*%/.test(toast) || /· pulling \S+ [1-9]\d*%/.test(status) ? { toast, status } : false;
    });
    await workbench.screenshot('progress');
    if (/· pulling /.test(seen.status)) {
      assert.match(seen.status, new RegExp(`· pulling ${MODEL}\\S* \\d+%`), 'the pull text in the status bar');
    }

    const models = await waitFor(`${MODEL_TAG} in omnipanel models ls`, async () => {
      const names = await installedModels(agent);
      return names.includes(MODEL_TAG) && names;
    });
    assert.deepEqual(models, [MODEL_TAG]);
    await workbench.notification(`${MODEL}`).filter({ hasText: 'pulled' }).waitFor({ state: 'visible' });

    const defaultModel = await currentDefault(agent);
    const expected = `OmniPanel: Ollama running${defaultModel ? ` · ${defaultModel}` : ''}`;
    await workbench.waitForStatus(new RegExp(`^${escape(expected)}$`), `"${expected}" once the pull is done`);
    await workbench.screenshot('pulled');
  },
};

/** The default model (`omnipanel models default --json`), or "" when none is set. */
async function currentDefault(agent) {
  const answer = await agent.cliJson(['models', 'default']);
  return answer.model || '';
}

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
