// The chat webview view `omnipanel.chat`: one conversation per workspace
// (kept in workspaceState), a model picker over every provider's models,
// streaming replies with Stop, the selection or a file attached on
// request, Copy / Insert at Cursor on code blocks, and errors shown in
// place with the action that fixes them. The page itself is static
// (page.ts); everything shown comes as escaped HTML from transcript.ts.

import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { OmniPanelError } from '../client';
import { ChatMessage } from '../gen/omnipanel/v1/models';
import { listAllModels } from '../lm/catalog';
import { AgentModelSummary, modelId, parseModelId, sortModels } from '../lm/modelInfo';
import type { ViewsAgent } from '../views/agent';
import {
  Attachment, Conversation, ModelRef, STORAGE_KEY, Turn, buildChatRequest, deserialize, errorView, makeAttachment, serialize,
} from './conversation';
import { codeBlocks } from './markdown';
import { chatPageHtml, makeNonce } from './page';
import { renderTranscript, renderTurn } from './transcript';

export const CHAT_VIEW_ID = 'omnipanel.chat';

/** Messages the webview sends (see media/chat.js). */
type FromWebview =
  | { type: 'ready' | 'stop' | 'clear' | 'attachSelection' | 'attachFile' }
  | { type: 'send'; text: string }
  | { type: 'selectModel'; id: string }
  | { type: 'removeAttachment'; index: number }
  | { type: 'copy' | 'insert'; message: number; block: number }
  | { type: 'fix' | 'retry'; turn: number };

/** Streaming updates are sent at most this often, so a fast model does not flood the webview. */
const STREAM_UPDATE_MS = 50;

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private conversation: Conversation;
  private attachments: Attachment[] = [];
  private models: AgentModelSummary[] = [];
  private running: AbortController | undefined;
  private lastEditor: vscode.TextEditor | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly context: vscode.ExtensionContext, private readonly agent: ViewsAgent) {
    this.conversation = deserialize(context.workspaceState.get(STORAGE_KEY));
    this.lastEditor = vscode.window.activeTextEditor;
    this.disposables.push(
      // The webview takes focus when clicked, so Insert at Cursor goes to
      // the text editor used last, not to "the active editor".
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor) this.lastEditor = editor;
      }),
      agent.onDidChangeConnection(() => void this.reloadModels()),
      agent.onResync(() => void this.reloadModels()),
      agent.onEvent((event) => {
        if (event.modelsChanged || event.defaultModelChanged || event.providersChanged) void this.reloadModels();
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
          this.conversation.turns.push({ role: 'user', text: m.text.trim(), attachments: this.attachments });
          this.attachments = [];
          await this.run();
        }
        return;
      case 'retry': {
        if (this.running) return;
        const last = this.conversation.turns[this.conversation.turns.length - 1];
        if (last?.role === 'error') this.conversation.turns.pop();
        await this.run();
        return;
      }
      case 'stop':
        this.running?.abort();
        return;
      case 'clear':
        this.running?.abort();
        this.conversation = { model: this.conversation.model, turns: [] };
        this.attachments = [];
        this.save();
        this.postState();
        return;
      case 'selectModel':
        if (typeof m.id === 'string' && m.id !== '') {
          this.conversation.model = parseModelId(m.id);
          this.save();
        }
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

  /** The model a request goes to: the one picked, else the default, else the first installed. */
  private effectiveModel(): ModelRef | undefined {
    if (this.conversation.model) return this.conversation.model;
    const chosen = sortModels(this.models)[0];
    return chosen ? { provider: chosen.provider, name: chosen.name } : undefined;
  }

  /** Streams a reply to the conversation as it stands. */
  private async run(): Promise<void> {
    if (this.running) return;
    const model = this.effectiveModel();
    const turns = this.conversation.turns;
    const connection = this.agent.connection;
    if (!connection) {
      turns.push({
        role: 'error',
        error: {
          message: 'VS Code is not connected to the OmniPanel agent yet (the status bar says why).',
          fix: { label: 'Show Actions', command: 'omnipanel.showActions', args: [] },
        },
      });
      this.save();
      this.postState();
      return;
    }
    const request = buildChatRequest({ ...this.conversation, model });
    const reply: Extract<Turn, { role: 'assistant' }> = { role: 'assistant', text: '', model: model?.name ?? 'default model' };
    turns.push(reply);
    const index = turns.length - 1;
    const abort = new AbortController();
    this.running = abort;
    this.postState();
    let lastPost = 0;
    try {
      const stream = connection.models.chat({
        model: request.model,
        provider: request.provider,
        // Chat without a picked model uses the project's preferred model.
        project: this.agent.project ?? '',
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
        if (reply.text === '') turns.splice(index, 1);
        else reply.stopped = true;
        turns.push({ role: 'error', error: errorView(facts(err), model) });
      }
    } finally {
      if (abort.signal.aborted && reply.text !== '') reply.stopped = true;
      this.running = undefined;
      this.save();
      this.postState();
    }
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
    this.conversation.turns.push({ role: 'error', error: errorView(facts(err), this.effectiveModel()) });
    this.postState();
  }

  private save(): void {
    void this.context.workspaceState.update(STORAGE_KEY, serialize(this.conversation));
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
    });
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

/** Registers the chat view; returns it so commands can attach context and focus it. */
export function registerChatView(context: vscode.ExtensionContext, agent: ViewsAgent): ChatViewProvider {
  const provider = new ChatViewProvider(context, agent);
  context.subscriptions.push(
    provider,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, provider, { webviewOptions: { retainContextWhenHidden: true } }),
  );
  return provider;
}
