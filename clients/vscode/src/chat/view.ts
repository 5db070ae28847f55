// The chat webview view `omnipanel.chat`: the open project's chats as the
// agent keeps them (shared with the panel: the latest one opens, a picker
// lists the others, New starts one, Delete removes one after a modal
// confirm, and a ConversationChanged event for the shown chat reloads it),
// a model picker over every provider's models, streaming replies with
// Stop, the selection or a file attached on request, Copy / Insert at
// Cursor on code blocks, and errors shown in place with the action that
// fixes them. A transcript an older version left in workspaceState is
// shown until the next question moves it into the agent. Without a
// project (or with an agent too old to keep chats) the chat works as
// before but is not kept. The page itself is static (page.ts); everything
// shown comes as escaped HTML from transcript.ts.

import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { OmniPanelError } from '../client';
import type { Event } from '../gen/omnipanel/v1/events';
import { ChatMessage } from '../gen/omnipanel/v1/models';
import type { Conversation as AgentConversation } from '../gen/omnipanel/v1/projects';
import { listAllModels } from '../lm/catalog';
import { AgentModelSummary, modelId, parseModelId, sortModels } from '../lm/modelInfo';
import type { ViewsAgent } from '../views/agent';
import {
  Attachment, ChatRequestFields, Conversation, ErrorView, ModelRef, Turn, buildChatRequest, errorView, makeAttachment,
} from './conversation';
import {
  LEGACY_STORAGE_KEY, conversationPicks, conversationRequest, fromAgent, legacyTitle, legacyTranscript, questionStored, replyRequest, titleFrom,
} from './history';
import { codeBlocks } from './markdown';
import { chatPageHtml, makeNonce } from './page';
import { renderTranscript, renderTurn } from './transcript';

export const CHAT_VIEW_ID = 'omnipanel.chat';

/** Messages the webview sends (see media/chat.js). */
type FromWebview =
  | { type: 'ready' | 'stop' | 'clear' | 'history' | 'delete' | 'noticeAction' | 'attachSelection' | 'attachFile' }
  | { type: 'send'; text: string }
  | { type: 'selectModel'; id: string }
  | { type: 'removeAttachment'; index: number }
  | { type: 'copy' | 'insert'; message: number; block: number }
  | { type: 'fix' | 'retry'; turn: number };

type UserTurn = Extract<Turn, { role: 'user' }>;

/** Streaming updates are sent at most this often, so a fast model does not flood the webview. */
const STREAM_UPDATE_MS = 50;
/** gRPC codes the view tells apart. */
const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  /** What the view shows: the stored turns, then `unsent` and `error`. */
  private conversation: Conversation = { turns: [] };
  /** The agent's conversation shown; undefined: a new chat, stored with its first question. */
  private conversationId: string | undefined;
  private title = '';
  /** The older version's transcript, until the agent holds it. */
  private legacy: Conversation | undefined;
  /** The view shows `legacy` (not yet in the agent). */
  private showingLegacy = false;
  /**
   * A question (and turns ahead of it) the agent has not stored: Retry
   * sends them again. `from`: how many turns were stored when it was sent.
   */
  private unsent: { prior: Turn[]; question: UserTurn; from: number } | undefined;
  /** How many of the shown turns the agent holds. */
  private storedTurns = 0;
  /** The last failure, shown after the turns with its fix until the next question. */
  private error: Turn | undefined;
  /** The agent answered UNIMPLEMENTED: it predates kept chats. */
  private storeMissing = false;
  /** The project whose chats were loaded; null: none loaded yet. */
  private loadedProject: string | undefined | null = null;
  /** Bumped by every load, so a late answer for an earlier one is dropped. */
  private loadGeneration = 0;
  private reloadAfterRun = false;
  private attachments: Attachment[] = [];
  private models: AgentModelSummary[] = [];
  private running: AbortController | undefined;
  private lastEditor: vscode.TextEditor | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly context: vscode.ExtensionContext, private readonly agent: ViewsAgent) {
    this.legacy = legacyTranscript(context.workspaceState.get(LEGACY_STORAGE_KEY));
    this.lastEditor = vscode.window.activeTextEditor;
    this.disposables.push(
      // The webview takes focus when clicked, so Insert at Cursor goes to
      // the text editor used last, not to "the active editor".
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor) this.lastEditor = editor;
      }),
      agent.onDidChangeConnection(() => {
        void this.reloadModels();
        if (this.agent.connection) void this.load();
      }),
      agent.onResync(() => {
        void this.reloadModels();
        void this.reload();
      }),
      agent.onDidChangeProject(() => {
        this.running?.abort();
        this.loadedProject = null;
        void this.load();
      }),
      agent.onEvent((event) => {
        if (event.modelsChanged || event.defaultModelChanged || event.providersChanged) void this.reloadModels();
        this.conversationChanged(event);
      }),
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.context.extensionUri, 'src', 'chat', 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = chatPageHtml({
      cspSource: view.webview.cspSource,
      nonce: makeNonce((n) => randomBytes(n)),
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css')).toString(),
    });
    view.webview.onDidReceiveMessage((m: FromWebview) => void this.handle(m).catch((err) => this.showError(err)), undefined, this.disposables);
    view.onDidDispose(() => {
      this.view = undefined;
    }, undefined, this.disposables);
    void this.reloadModels();
    void this.load();
  }

  /** Reveals the view and puts the cursor in the message box. */
  async focus(): Promise<void> {
    await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`);
    void this.view?.webview.postMessage({ type: 'focus' });
  }

  /** Adds the active editor's selection as context (also used by commands). */
  attachSelection(): void {
    const editor = vscode.window.activeTextEditor ?? this.lastEditor;
    if (!editor || editor.selections.every((s) => s.isEmpty)) {
      void vscode.window.showInformationMessage('OmniPanel: select some code in an editor first, then attach it.');
      return;
    }
    const doc = editor.document;
    for (const selection of editor.selections.filter((s) => !s.isEmpty)) {
      const label = `${vscode.workspace.asRelativePath(doc.uri)}:${selection.start.line + 1}-${selection.end.line + 1}`;
      this.attachments.push(makeAttachment('selection', label, doc.languageId, doc.getText(selection)));
    }
    this.postState();
  }

  /** Adds the active editor's file, or one picked in a dialog, as context. */
  async attachFile(): Promise<void> {
    const editor = vscode.window.activeTextEditor ?? this.lastEditor;
    if (editor) {
      const doc = editor.document;
      this.attachments.push(makeAttachment('file', vscode.workspace.asRelativePath(doc.uri), doc.languageId, doc.getText()));
      this.postState();
      return;
    }
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Attach' });
    if (!picked || picked.length === 0) return;
    const doc = await vscode.workspace.openTextDocument(picked[0]);
    this.attachments.push(makeAttachment('file', vscode.workspace.asRelativePath(doc.uri), doc.languageId, doc.getText()));
    this.postState();
  }

  private async handle(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.postState();
        return;
      case 'send':
        // The page hides Send while a reply streams; a late Enter is dropped
        // rather than leaving a question without its answer.
        if (!this.running && typeof m.text === 'string' && m.text.trim() !== '') {
          const question: UserTurn = { role: 'user', text: m.text.trim(), attachments: this.attachments };
          this.attachments = [];
          await this.ask(question);
        }
        return;
      case 'retry':
        await this.retry();
        return;
      case 'stop':
        this.running?.abort();
        return;
      case 'clear':
        this.newChat();
        return;
      case 'history':
        await this.pickConversation();
        return;
      case 'delete':
        await this.deleteConversation();
        return;
      case 'noticeAction': {
        const fix = this.noticeFix();
        if (fix) await vscode.commands.executeCommand(fix.command);
        return;
      }
      case 'selectModel':
        if (typeof m.id === 'string' && m.id !== '') this.conversation.model = parseModelId(m.id);
        return;
      case 'attachSelection':
        this.attachSelection();
        return;
      case 'attachFile':
        await this.attachFile();
        return;
      case 'removeAttachment':
        if (Number.isInteger(m.index) && m.index >= 0) this.attachments.splice(m.index, 1);
        this.postState();
        return;
      case 'copy':
      case 'insert':
        await this.codeAction(m.type, m.message, m.block);
        return;
      case 'fix':
        await this.fix(m.turn);
        return;
    }
  }

  /** Chats are kept when the folder is a project and the agent keeps them. */
  private get keeps(): boolean {
    return this.agent.project !== undefined && !this.storeMissing;
  }

  /** Shows the project's latest chat (or the older transcript, or a new chat), once per project. */
  private async load(): Promise<void> {
    const connection = this.agent.connection;
    const project = this.agent.project;
    if (!this.view || !connection) return;
    if (this.loadedProject === project) {
      await this.reload();
      return;
    }
    const generation = ++this.loadGeneration;
    this.loadedProject = project;
    this.conversationId = undefined;
    this.title = '';
    this.unsent = undefined;
    this.error = undefined;
    if (project === undefined) {
      this.showLegacyOrNew();
      return;
    }
    try {
      const { conversations } = await connection.projects.listConversations({ project, limit: 1 });
      if (generation !== this.loadGeneration) return;
      this.storeMissing = false;
      const latest = conversations[0];
      if (latest) await this.open(latest.id);
      else this.showLegacyOrNew();
    } catch (err) {
      if (generation !== this.loadGeneration) return;
      if (err instanceof OmniPanelError && err.code === UNIMPLEMENTED) {
        this.storeMissing = true;
        this.showLegacyOrNew();
        return;
      }
      // Loaded as far as it got: the error says what to do, and a
      // reconnect or Retry tries again.
      this.loadedProject = null;
      this.showError(err);
    }
  }

  private showLegacyOrNew(): void {
    this.storedTurns = 0;
    this.showingLegacy = this.legacy !== undefined;
    this.conversation = this.legacy ? { model: this.legacy.model, turns: [...this.legacy.turns] } : { model: this.conversation.model, turns: [] };
    this.postState();
  }

  /** Shows a stored conversation, taking its model. */
  private async open(id: string): Promise<void> {
    const connection = this.agent.connection;
    if (!connection) return;
    const generation = ++this.loadGeneration;
    const { conversation } = await connection.projects.getConversation({ id });
    if (generation !== this.loadGeneration || !conversation) return;
    this.running?.abort();
    this.conversationId = id;
    this.showingLegacy = false;
    this.unsent = undefined;
    this.error = undefined;
    this.show(conversation, true);
  }

  /** Reads the shown conversation again (an event, a reconnect, after a failed request). */
  private async reload(): Promise<void> {
    const id = this.conversationId;
    const connection = this.agent.connection;
    if (id === undefined || !connection) return;
    if (this.running) {
      this.reloadAfterRun = true;
      return;
    }
    const generation = ++this.loadGeneration;
    try {
      const { conversation } = await connection.projects.getConversation({ id });
      if (generation !== this.loadGeneration || this.running || id !== this.conversationId || !conversation) return;
      this.show(conversation, false);
    } catch (err) {
      if (generation !== this.loadGeneration || id !== this.conversationId) return;
      if (err instanceof OmniPanelError && err.code === NOT_FOUND) {
        // Deleted elsewhere (the panel, the CLI): show what is left.
        this.loadedProject = null;
        await this.load();
        return;
      }
      this.showError(err);
    }
  }

  /** Puts a stored conversation on screen, after it what the agent does not hold. */
  private show(stored: AgentConversation, takeModel: boolean): void {
    const shown = fromAgent(stored, this.conversation.model);
    this.storedTurns = shown.turns.length;
    if (this.unsent && questionStored(shown.turns, this.unsent.question, this.unsent.from)) {
      if (this.unsent.prior.length > 0) this.forgetLegacy();
      this.unsent = undefined;
    }
    this.title = stored.title;
    const turns = [...shown.turns];
    if (this.unsent) turns.push(...this.unsent.prior, this.unsent.question);
    if (this.error) turns.push(this.error);
    this.conversation = { model: takeModel ? shown.model : this.conversation.model, turns };
    this.postState();
  }

  /** The older transcript is in the agent now: the workspaceState copy goes. */
  private forgetLegacy(): void {
    this.legacy = undefined;
    this.showingLegacy = false;
    void this.context.workspaceState.update(LEGACY_STORAGE_KEY, undefined);
  }

  private conversationChanged(event: Event): void {
    const changed = event.conversationChanged;
    if (!changed || changed.conversationId !== this.conversationId) return;
    if (changed.change === 'deleted') {
      this.running?.abort();
      this.loadedProject = null;
      void this.load();
    } else {
      // Continued in the panel, or our own reply stored.
      void this.reload();
    }
  }

  /** Starts a new chat (stored by the agent with its first question). */
  newChat(): void {
    this.running?.abort();
    this.loadGeneration += 1;
    this.conversationId = undefined;
    this.title = '';
    this.showingLegacy = false;
    this.unsent = undefined;
    this.error = undefined;
    this.attachments = [];
    this.storedTurns = 0;
    this.conversation = { model: this.conversation.model, turns: [] };
    this.postState();
  }

  /** The conversation picker: New chat, the older transcript, the project's chats newest first. */
  async pickConversation(): Promise<void> {
    const connection = this.agent.connection;
    if (!connection) {
      this.showError(new OmniPanelError('agent-not-running', 'VS Code is not connected to the OmniPanel agent yet (the status bar says why).'));
      return;
    }
    const project = this.agent.project;
    if (project === undefined || this.storeMissing) {
      const open = 'Open This Folder as Project';
      const why = project === undefined
        ? 'OmniPanel keeps chats per project: open this folder as a project to keep them.'
        : 'This agent does not keep chats: update OmniPanel.';
      if ((await vscode.window.showInformationMessage(`OmniPanel: ${why}`, ...(project === undefined ? [open] : []))) === open) {
        await vscode.commands.executeCommand('omnipanel.openProject');
      }
      return;
    }
    const { conversations } = await connection.projects.listConversations({ project });
    type Item = vscode.QuickPickItem & { action: 'new' | 'legacy' | 'open'; id?: string };
    const items: Item[] = [{ label: '$(add) New chat', action: 'new', alwaysShow: true }];
    if (this.legacy) {
      items.push({
        label: legacyTitle(this.legacy),
        description: 'kept in VS Code by an earlier version · moves into the agent with your next question',
        action: 'legacy',
      });
    }
    for (const pick of conversationPicks(conversations, this.conversationId, Date.now())) {
      items.push({ label: pick.label, description: pick.current ? `${pick.description} · shown` : pick.description, action: 'open', id: pick.id });
    }
    const picked = await vscode.window.showQuickPick(items, {
      title: 'OmniPanel: Chats of this project',
      placeHolder: conversations.length === 0 ? 'No chats yet: ask a question to start one' : 'Pick a chat to continue',
      matchOnDescription: true,
    });
    if (!picked) return;
    if (picked.action === 'new') {
      this.newChat();
    } else if (picked.action === 'legacy') {
      this.newChat();
      this.showLegacyOrNew();
    } else if (picked.id !== undefined) {
      await this.open(picked.id);
    }
    void this.focus();
  }

  /** Deletes the shown chat from the agent (or the older transcript) after a modal confirm. */
  async deleteConversation(): Promise<void> {
    if (this.showingLegacy && this.legacy) {
      const answer = await vscode.window.showWarningMessage(
        `Delete the chat "${legacyTitle(this.legacy)}"?`,
        { modal: true, detail: 'An earlier version kept it in VS Code; it is not in the agent. This cannot be undone.' },
        'Delete',
      );
      if (answer !== 'Delete') return;
      this.forgetLegacy();
      this.newChat();
      return;
    }
    const id = this.conversationId;
    const connection = this.agent.connection;
    if (id === undefined || !connection) {
      void vscode.window.showInformationMessage('OmniPanel: this chat is not kept by the agent yet, so there is nothing to delete.');
      return;
    }
    const answer = await vscode.window.showWarningMessage(
      `Delete the chat "${this.title || 'Untitled'}"?`,
      { modal: true, detail: 'Its messages are deleted from the agent, for the OmniPanel panel too. This cannot be undone.' },
      'Delete',
    );
    if (answer !== 'Delete') return;
    this.running?.abort();
    await connection.projects.deleteConversation({ id });
    if (this.conversationId === id) {
      this.loadedProject = null;
      await this.load();
    }
  }

  /** Sends a new question. */
  private async ask(question: UserTurn): Promise<void> {
    // A load still under way would replace the chat this question goes to.
    this.loadGeneration += 1;
    this.error = undefined;
    const prior = this.showingLegacy && this.legacy ? this.legacy.turns : [];
    this.showingLegacy = false;
    // Turns the view shows but the agent does not hold yet (an unsent
    // question of an earlier failure is given up for the new one).
    if (this.unsent) this.conversation.turns = this.conversation.turns.filter((t) => t !== this.unsent?.question);
    this.conversation.turns = this.conversation.turns.filter((t) => t.role !== 'error');
    this.conversation.turns.push(question);
    this.unsent = this.keeps
      ? { prior: this.unsent?.prior.length ? this.unsent.prior : prior, question, from: this.conversationId === undefined ? 0 : this.storedTurns }
      : undefined;
    await this.run();
  }

  /** Retry after a failure: the unsent question again, or a reply to the stored one. */
  private async retry(): Promise<void> {
    if (this.running) return;
    this.error = undefined;
    const last = this.conversation.turns[this.conversation.turns.length - 1];
    if (last?.role === 'error') this.conversation.turns.pop();
    await this.run();
  }

  /** The model a request goes to: the one picked, else the default, else the first installed. */
  private effectiveModel(): ModelRef | undefined {
    if (this.conversation.model) return this.conversation.model;
    const chosen = sortModels(this.models)[0];
    return chosen ? { provider: chosen.provider, name: chosen.name } : undefined;
  }

  /** The request for what the view shows: kept chats send only what is new. */
  private async request(model: ModelRef | undefined): Promise<ChatRequestFields & { conversationId: string }> {
    const connection = this.agent.connection;
    const project = this.agent.project;
    if (!this.keeps || !connection || project === undefined) {
      return { ...buildChatRequest({ ...this.conversation, model }), conversationId: '' };
    }
    const unsent = this.unsent;
    if (this.conversationId === undefined) {
      const title = unsent && unsent.prior.length > 0 ? legacyTitle({ turns: unsent.prior }) : titleFrom(unsent?.question.text ?? '');
      const { conversation } = await connection.projects.createConversation({ project, title, model: model?.name ?? '' });
      if (!conversation) throw new Error('The agent did not return the new chat.');
      this.conversationId = conversation.id;
      this.title = conversation.title;
      this.loadedProject = project;
    }
    if (unsent) return conversationRequest(this.conversationId, model, unsent.question, unsent.prior);
    // The question is stored, its reply is not (whole): ask for the reply alone.
    return replyRequest(this.conversationId, model);
  }

  /** Streams a reply to the conversation as it stands. */
  private async run(): Promise<void> {
    if (this.running) return;
    const model = this.effectiveModel();
    const turns = this.conversation.turns;
    const connection = this.agent.connection;
    if (!connection) {
      this.fail({
        message: 'VS Code is not connected to the OmniPanel agent yet (the status bar says why).',
        fix: { label: 'Show Actions', command: 'omnipanel.showActions', args: [] },
      });
      return;
    }
    const reply: Extract<Turn, { role: 'assistant' }> = { role: 'assistant', text: '', model: model?.name ?? 'default model' };
    const abort = new AbortController();
    this.running = abort;
    let failed = false;
    let index = -1;
    let lastPost = 0;
    try {
      const request = await this.request(model);
      if (abort.signal.aborted) return;
      turns.push(reply);
      index = turns.length - 1;
      this.postState();
      const stream = connection.models.chat({
        model: request.model,
        provider: request.provider,
        // Chat without a picked model uses the project's preferred model.
        project: this.agent.project ?? '',
        conversationId: request.conversationId,
        messages: request.messages.map((m) => ChatMessage.create(m)),
      }, { signal: abort.signal });
      for await (const piece of stream) {
        if (piece.model && reply.model !== piece.model) reply.model = piece.model;
        reply.text += piece.content;
        const now = Date.now();
        if (now - lastPost >= STREAM_UPDATE_MS) {
          lastPost = now;
          void this.view?.webview.postMessage({ type: 'turn', index, html: renderTurn(reply, index, true) });
        }
        if (piece.done) break;
      }
    } catch (err) {
      if (abort.signal.aborted) {
        reply.stopped = true;
      } else {
        failed = true;
        if (reply.text === '' && index >= 0) turns.splice(index, 1);
        else reply.stopped = true;
        this.error = { role: 'error', error: errorView(facts(err), model) };
        turns.push(this.error);
      }
    } finally {
      if (abort.signal.aborted && reply.text !== '') reply.stopped = true;
      if (this.running === abort) this.running = undefined;
    }
    if (!failed && !abort.signal.aborted && this.unsent) {
      // The agent stored the question before the reply began.
      if (this.unsent.prior.length > 0) this.forgetLegacy();
      this.unsent = undefined;
    }
    this.postState();
    // After a failure or Stop the agent's copy says what was kept (the
    // question? a stopped reply?); an event that came while streaming too.
    if (failed || abort.signal.aborted || this.reloadAfterRun) {
      this.reloadAfterRun = false;
      await this.reload();
    }
  }

  /** Shows a failure after the turns. */
  private fail(error: ErrorView): void {
    this.error = { role: 'error', error };
    this.conversation.turns.push(this.error);
    this.postState();
  }

  private async codeAction(kind: 'copy' | 'insert', message: number, block: number): Promise<void> {
    const turn = this.conversation.turns[message];
    if (!turn || turn.role !== 'assistant') return;
    const code = codeBlocks(turn.text)[block];
    if (code === undefined) return;
    if (kind === 'copy') {
      await vscode.env.clipboard.writeText(code);
      void vscode.window.setStatusBarMessage('OmniPanel: code copied', 2000);
      return;
    }
    const editor = this.lastEditor && vscode.window.visibleTextEditors.includes(this.lastEditor)
      ? this.lastEditor
      : vscode.window.visibleTextEditors[0];
    if (!editor) {
      void vscode.window.showInformationMessage('OmniPanel: open an editor to insert the code into.');
      return;
    }
    await editor.edit((edit) => {
      for (const selection of editor.selections) edit.replace(selection, code);
    });
    await vscode.window.showTextDocument(editor.document, editor.viewColumn);
  }

  private async fix(turnIndex: number): Promise<void> {
    const turn = this.conversation.turns[turnIndex];
    if (!turn || turn.role !== 'error' || !turn.error.fix) return;
    const { command, args } = turn.error.fix;
    if (command === 'omnipanel.startOllama' && this.agent.connection) {
      // Called directly, so the fix works whatever the command palette holds.
      await vscode.window.withProgress({ location: { viewId: CHAT_VIEW_ID }, title: 'Starting Ollama' }, async () => {
        await this.agent.connection?.models.startServer({}, { timeoutMs: 120_000 });
      });
      void vscode.window.showInformationMessage('OmniPanel: Ollama is running. Retry your question.');
      return;
    }
    await vscode.commands.executeCommand(command, ...args);
  }

  private async reloadModels(): Promise<void> {
    const connection = this.agent.connection;
    if (!connection) {
      this.models = [];
    } else {
      try {
        this.models = (await listAllModels(connection)).models;
      } catch {
        this.models = [];
      }
    }
    this.postState();
  }

  private showError(err: unknown): void {
    this.fail(errorView(facts(err), this.effectiveModel()));
  }

  /** The action the notice offers: make the folder a project (or open one). */
  private noticeFix(): { label: string; command: string } | undefined {
    if (this.showingLegacy || !this.agent.connection || this.agent.project !== undefined) return undefined;
    return vscode.workspace.workspaceFolders?.length
      ? { label: 'Open This Folder as Project', command: 'omnipanel.openProject' }
      : { label: 'Open Folder…', command: 'workbench.action.files.openFolder' };
  }

  /** One line above the transcript saying whether and where the chat is kept. */
  private notice(): string {
    if (this.showingLegacy) {
      return 'An earlier version kept this chat in VS Code. Your next question moves it into the agent, where the OmniPanel panel sees it too.';
    }
    if (!this.agent.connection) return '';
    if (this.agent.project === undefined) {
      return vscode.workspace.workspaceFolders?.length
        ? 'This folder is not an OmniPanel project, so this chat is not kept.'
        : 'No folder is open, so this chat is not kept: chats are kept per project.';
    }
    if (this.storeMissing) return 'This agent does not keep chats (update OmniPanel), so this chat is not kept.';
    return '';
  }

  private postState(): void {
    if (!this.view) return;
    const model = this.effectiveModel();
    const selected = model ? modelId(model.provider, model.name) : '';
    const options = sortModels(this.models).map((m) => ({
      id: modelId(m.provider, m.name),
      label: `${m.name}${m.provider !== 'local' ? ` (${m.provider})` : ''}${m.isDefault ? ' — default' : ''}`,
      detail: `${m.parameterSize} ${m.quantizationLevel}`.trim(),
    }));
    // A stored choice that is no longer installed stays visible, so the
    // error that follows (with its Pull button) makes sense.
    if (model && this.agent.connection && !options.some((o) => o.id === selected)) {
      options.unshift({ id: selected, label: `${model.name} (not installed)`, detail: '' });
    }
    void this.view.webview.postMessage({
      type: 'state',
      transcript: renderTranscript(this.conversation, this.running !== undefined),
      models: options,
      selected,
      attachments: this.attachments.map((a) => ({ label: a.label })),
      busy: this.running !== undefined,
      title: this.showingLegacy && this.legacy ? legacyTitle(this.legacy) : this.title,
      notice: this.notice(),
      noticeAction: this.noticeFix()?.label ?? '',
      canDelete: this.conversationId !== undefined || this.showingLegacy,
    });
  }

  /** Shows a command's failure in the chat. */
  reportError(err: unknown): void {
    if (err instanceof OmniPanelError && err.kind === 'cancelled') return;
    this.showError(err);
  }

  dispose(): void {
    this.running?.abort();
    for (const d of this.disposables) d.dispose();
  }
}

/** The facts errorView needs, from whatever was thrown. */
function facts(err: unknown): { code?: number; reason?: string; message: string } {
  if (err instanceof OmniPanelError) {
    return { code: err.kind === 'agent-not-running' ? 14 : err.code, reason: err.reason, message: err.message };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

/** Registers the chat view and its commands; returns it so commands can attach context and focus it. */
export function registerChatView(context: vscode.ExtensionContext, agent: ViewsAgent): ChatViewProvider {
  const provider = new ChatViewProvider(context, agent);
  // Failures show in the chat, where the fix is offered.
  const guarded = (action: () => void | Promise<void>) => async () => {
    try {
      await provider.focus();
      await action();
    } catch (err) {
      provider.reportError(err);
    }
  };
  context.subscriptions.push(
    provider,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, provider, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.commands.registerCommand('omnipanel.chat.new', guarded(() => provider.newChat())),
    vscode.commands.registerCommand('omnipanel.chat.history', guarded(() => provider.pickConversation())),
    vscode.commands.registerCommand('omnipanel.chat.delete', guarded(() => provider.deleteConversation())),
  );
  return provider;
}
