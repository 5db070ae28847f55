// The Language Model Chat Provider (vendor "omnipanel"): the agent's models
// from every provider appear in VS Code's own chat model picker, and a
// request streams ModelService.Chat tokens back as text parts. The list is
// re-read when the agent says models, the default or providers changed.

import * as vscode from 'vscode';
import { ChatMessage } from '../gen/omnipanel/v1/models';
import type { ViewsAgent } from '../views/agent';
import { ModelDetailsCache, listAllModels } from './catalog';
import {
  ChatModelInformation, FlatMessage, estimateTokens, parseModelId, roleName, sortModels, toAgentMessages,
  toChatInformation,
} from './modelInfo';

export const VENDOR = 'omnipanel';

/** The text of a message's parts: text and tool results; tool calls and data are skipped. */
function partsText(content: ReadonlyArray<unknown>): string {
  const texts: string[] = [];
  for (const part of content) {
    if (part instanceof vscode.LanguageModelTextPart) {
      texts.push(part.value);
    } else if (part instanceof vscode.LanguageModelToolResultPart) {
      texts.push(partsText(part.content));
    }
  }
  return texts.join('');
}

function flatten(message: vscode.LanguageModelChatRequestMessage): FlatMessage {
  return { role: roleName(message.role), text: partsText(message.content) };
}

/** Ollama options from VS Code's modelOptions; "" when there are none. */
function optionsJson(options: vscode.ProvideLanguageModelChatResponseOptions): string {
  const given = options.modelOptions;
  return given && Object.keys(given).length > 0 ? JSON.stringify(given) : '';
}

export class OmniPanelChatProvider implements vscode.LanguageModelChatProvider<ChatModelInformation & vscode.LanguageModelChatInformation> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeLanguageModelChatInformation = this.changed.event;
  private readonly details = new ModelDetailsCache();
  private pendingFire = false;

  constructor(private readonly agent: ViewsAgent) {}

  /** Tells VS Code to ask for the list again; coalesced within one tick. */
  refresh(): void {
    if (this.pendingFire) return;
    this.pendingFire = true;
    queueMicrotask(() => {
      this.pendingFire = false;
      this.changed.fire();
    });
  }

  async provideLanguageModelChatInformation(
    _options: vscode.PrepareLanguageModelChatModelOptions,
    token: vscode.CancellationToken,
  ): Promise<vscode.LanguageModelChatInformation[]> {
    const connection = this.agent.connection;
    if (!connection) return [];
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    try {
      const { models } = await listAllModels(connection, abort.signal);
      const sorted = sortModels(models);
      const details = await Promise.all(sorted.map((m) => this.details.get(connection, m, abort.signal)));
      return sorted.map((m, i) => toChatInformation(m, details[i]));
    } catch {
      // Not connected or not admitted yet: no models rather than an error
      // in VS Code's picker; the status bar says what is wrong.
      return [];
    } finally {
      sub.dispose();
    }
  }

  async provideLanguageModelChatResponse(
    model: vscode.LanguageModelChatInformation,
    messages: readonly vscode.LanguageModelChatRequestMessage[],
    options: vscode.ProvideLanguageModelChatResponseOptions,
    progress: vscode.Progress<vscode.LanguageModelResponsePart>,
    token: vscode.CancellationToken,
  ): Promise<void> {
    const connection = this.agent.connection;
    if (!connection) {
      throw new Error('OmniPanel is not connected to its agent: start the agent or approve VS Code\'s access request, then try again.');
    }
    if (options.toolMode === vscode.LanguageModelChatToolMode.Required && (options.tools?.length ?? 0) > 0) {
      throw new Error(`OmniPanel (${model.name}): this request needs a tool call, and the agent's models answer in text only; pick another model for it.`);
    }
    const { provider, name } = parseModelId(model.id);
    const conversation = toAgentMessages(messages.map(flatten));
    if (conversation.length === 0) {
      throw new Error('The request to the model has no text.');
    }
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    try {
      const stream = connection.models.chat({
        model: name,
        provider,
        messages: conversation.map((m) => ChatMessage.create({ role: m.role, content: m.content })),
        optionsJson: optionsJson(options),
      }, { signal: abort.signal });
      for await (const piece of stream) {
        if (token.isCancellationRequested) break;
        if (piece.content !== '') {
          progress.report(new vscode.LanguageModelTextPart(piece.content));
        }
        if (piece.done) break;
      }
    } catch (err) {
      if (token.isCancellationRequested) return;
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`OmniPanel (${name}): ${message}`);
    } finally {
      sub.dispose();
      abort.abort();
    }
  }

  async provideTokenCount(
    _model: vscode.LanguageModelChatInformation,
    text: string | vscode.LanguageModelChatRequestMessage,
    _token: vscode.CancellationToken,
  ): Promise<number> {
    return estimateTokens(typeof text === 'string' ? text : flatten(text).text);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/**
 * Registers the provider and keeps its list current from the agent's
 * events (models pulled/deleted, default changed, providers changed) and
 * from connection changes.
 */
export function registerLanguageModelProvider(context: vscode.ExtensionContext, agent: ViewsAgent): OmniPanelChatProvider {
  const provider = new OmniPanelChatProvider(agent);
  context.subscriptions.push(
    provider,
    vscode.lm.registerLanguageModelChatProvider(VENDOR, provider),
    agent.onDidChangeConnection(() => provider.refresh()),
    agent.onResync(() => provider.refresh()),
    agent.onEvent((event) => {
      const change = event.modelsChanged?.change;
      if (change === 'pulled' || change === 'deleted' || event.defaultModelChanged || event.providersChanged) {
        provider.refresh();
      }
    }),
  );
  return provider;
}
