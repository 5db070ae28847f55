// Scenario "access": a fresh VS Code asks the agent for access; the status
// bar and a message show the code, the user finds the same code in
// `omnipanel clients pending` and runs the approve command the message
// suggests, and the status bar turns to the Ollama state the agent reports;
// the open folder becomes an agent project; the item opens the actions.
'use strict';

const assert = require('node:assert/strict');

const { waitForPendingRequest } = require('../agent');
const { waitFor } = require('../wait');

module.exports = {
  name: 'access',
  approveAccess: false,
  async run({ agent, workbench, project }) {
    const [, shownCode] = await workbench.waitForStatus(
      /^OmniPanel: waiting for approval \(code ([^)]+)\)$/,
      'the access request waiting for approval',
    );
    const message = workbench.notification(shownCode);
    await message.waitFor({ state: 'visible' });
    await workbench.screenshot('waiting');

    const request = await waitForPendingRequest(agent);
    assert.equal(request.code, shownCode, 'the code in the status bar is the pending request\'s code');
    for (const scope of ['SCOPE_READ', 'SCOPE_WRITE', 'SCOPE_INFER']) {
      assert.ok(request.scopes.includes(scope), `the request asks for ${scope}: ${JSON.stringify(request.scopes)}`);
    }
    // The user runs the command the message suggests, as it is written.
    const suggested = (await message.innerText()).match(/omnipanel clients approve ([^\s)]+)/);
    assert.ok(suggested, `the message names the approve command: ${JSON.stringify(await message.innerText())}`);
    await agent.cli(['clients', 'approve', suggested[1]]);

    const [, state] = await workbench.waitForStatus(/^OmniPanel: Ollama ([a-z ]+?)(?: · .*)?$/, 'the Ollama state');
    // The word is the agent's own server state, as the CLI sees it once the
    // two agree (Ollama may still be starting when the extension connects).
    await workbench.waitForStatus(new RegExp(`^OmniPanel: Ollama ${await ollamaState(agent)}\\b`), 'the same state as `omnipanel ollama status`');
    await workbench.screenshot('approved');
    const text = await workbench.omnipanelStatus();
    const labels = await workbench.omnipanelAriaLabels();
    assert.ok(labels.includes(text), `the item's accessibility label is its text ${JSON.stringify(text)}: ${JSON.stringify(labels)}`);

    // "omnipanel.openFolderAsProject": "always" (the harness's user
    // settings): once admitted, the extension opens the folder as a project.
    await waitFor(`the agent to list ${project} as a project (omnipanel projects ls)`, async () => {
      const listing = await agent.cliJson(['projects', 'ls']);
      return JSON.stringify(listing).includes(JSON.stringify(project));
    });

    // A click on the item opens the actions (omnipanel.showActions).
    await workbench.page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'OmniPanel:' }).click();
    await workbench.waitForPrompt('the actions quick pick');
    await workbench.page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Pull Model' }).first().waitFor({ state: 'visible' });
    await workbench.screenshot('actions');
    await workbench.page.keyboard.press('Escape');

    const { clients = [] } = await agent.cliJson(['clients', 'ls']);
    assert.ok(
      clients.some((c) => c.clientName === 'VS Code' || c.name === 'VS Code'),
      `omnipanel clients ls lists VS Code: ${JSON.stringify(clients)}`,
    );
    return state;
  },
};

/** The server state word (`running`, `stopped`, …) the CLI reports. */
async function ollamaState(agent) {
  const status = await agent.cliJson(['ollama', 'status']);
  const raw = JSON.stringify(status).match(/SERVER_STATE_([A-Z_]+)/);
  if (!raw) {
    throw new Error(`omnipanel ollama status --json names no SERVER_STATE_*: ${JSON.stringify(status)}`);
  }
  return raw[1].toLowerCase().replace(/_/g, ' ');
}
