// Scenario "conversations": the chat view keeps its chats in the agent.
// Two questions in the view become one conversation of the project (the
// CLI lists it with 4 messages); after a window reload the view opens it
// again from the agent; a message added from the CLI (as the panel would)
// shows up in the open view; New Chat and Chat History… switch between
// the project's chats; Delete Chat… asks first and the CLI then lists no
// chat of that title.
'use strict';

const { waitFor } = require('../wait');

/** The sentence every answer of the Ollama double ends with (tests/doubles/ollama/generate.rs). */
const CANNED = 'This reply comes from fake-ollama.';
const MODEL_TAG = 'tinyllama:latest';
const FIRST = 'What does greet do?';
const SECOND = 'And who calls it?';
const FROM_CLI = 'Asked from the command line';
const OTHER = 'A second chat';

module.exports = {
  name: 'conversations',
  approveAccess: true,
  async setup(agent) {
    await agent.cli(['models', 'pull', 'tinyllama']);
    await agent.cli(['models', 'default', MODEL_TAG]);
  },
  async run({ agent, workbench, project }) {
    // Chats are kept per project: the extension opens the folder as one.
    await waitFor(`the agent to list ${project} as a project`, async () =>
      JSON.stringify(await agent.cliJson(['projects', 'ls'])).includes(JSON.stringify(project)));

    await workbench.runCommand('OmniPanel: Open Chat');
    let view = await workbench.chatView();
    await waitFor(`${MODEL_TAG} in the chat view's model picker`, async () =>
      (await view.locator('#model option').allInnerTexts()).some((o) => o.includes(MODEL_TAG)));
    await ask(view, FIRST);
    await ask(view, SECOND);
    await waitFor('the chat title above the transcript', async () => (await view.locator('#title').innerText()) === FIRST);
    await workbench.screenshot('two-questions');

    // The agent holds the chat: one conversation of the project, titled
    // by the first question, with both exchanges.
    const chat = await waitFor('the chat in `omnipanel conversations list`', async () => {
      const { conversations = [] } = await agent.cliJson(['conversations', 'list', '--project', project]);
      return conversations.find((c) => c.title === FIRST && Number(c.messageCount) === 4);
    });
    const shown = await agent.cliJson(['conversations', 'show', chat.id]);
    const messages = (shown.conversation || shown).messages || [];
    if (messages.map((m) => m.role).join(' ') !== 'user assistant user assistant' || !messages[3].content.includes(`You said: ${SECOND}`)) {
      throw new Error(`omnipanel conversations show ${chat.id} shows ${JSON.stringify(messages)}`);
    }

    // A reloaded window has no transcript of its own: it comes from the agent.
    await workbench.reloadWindow();
    await workbench.waitForStatus(/^OmniPanel: Ollama /, 'the Ollama state after the reload');
    await workbench.runCommand('OmniPanel: Open Chat');
    view = await workbench.chatView();
    await waitFor('both questions and answers back in the view', async () => {
      const text = await view.locator('#transcript').innerText();
      return text.includes(FIRST) && text.includes(`You said: ${SECOND}`) && text.split(CANNED).length === 3;
    });
    await workbench.screenshot('reopened');

    // Continued elsewhere (the CLI here, the panel alike): the open view follows.
    await agent.cli(['chat', '--conversation', chat.id], `${FROM_CLI}\n`);
    await waitFor('the message from the CLI in the open view', async () =>
      (await view.locator('#transcript').innerText()).includes(`You said: ${FROM_CLI}`));
    await workbench.screenshot('continued-elsewhere');

    // A new chat, then back to the first one through the picker.
    await workbench.runCommand('OmniPanel: New Chat');
    await waitFor('an empty chat', async () => (await view.locator('#transcript').innerText()).trim() === '');
    await ask(view, OTHER);
    await workbench.runCommand('OmniPanel: Chat History');
    const filter = await workbench.waitForPrompt('the chat picker');
    await workbench.page.locator('.quick-input-widget .monaco-list-row', { hasText: OTHER }).waitFor({ state: 'visible' });
    await workbench.screenshot('picker');
    // Picked as a keyboard user does: filter by title, Enter on the match.
    await filter.fill(FIRST);
    await workbench.page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: FIRST }).waitFor({ state: 'visible' });
    await workbench.page.keyboard.press('Enter');
    await waitFor('the first chat back in the view', async () => {
      const text = await view.locator('#transcript').innerText();
      return text.includes(FIRST) && !text.includes(`You said: ${OTHER}`);
    });

    // Delete asks first; then the agent no longer has it.
    await workbench.runCommand('OmniPanel: Delete Chat');
    await workbench.screenshot('delete-confirm');
    await workbench.answerDialog(`Delete the chat "${FIRST}"?`, 'Delete');
    await waitFor('the chat gone from `omnipanel conversations list`', async () => {
      const { conversations = [] } = await agent.cliJson(['conversations', 'list', '--project', project]);
      return !conversations.some((c) => c.id === chat.id) && conversations.some((c) => c.title === OTHER);
    });
    // The view moves on to the chat that is left.
    await waitFor('the remaining chat in the view', async () => (await view.locator('#title').innerText()) === OTHER);
    await workbench.screenshot('deleted');
  },
};

/** Types `question` into the chat view, sends it, and waits for the double's reply. */
async function ask(view, question) {
  await view.locator('#input').fill(question);
  await view.locator('#send').click();
  await waitFor(`the reply to "${question}"`, async () => {
    const text = await view.locator('#transcript').innerText();
    return text.includes(`You said: ${question}`) && (await view.locator('#send').isVisible());
  });
}
