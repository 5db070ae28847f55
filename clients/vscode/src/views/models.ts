// The Models tree view `omnipanel.models`: every provider's installed
// models with size, "loaded" and "default", and context-menu entries that
// run the extension's load/unload/set-default/delete commands with the
// model's name. It is re-read when the agent reports a model, default or
// provider change (and after a resync), never on a timer.

import * as vscode from 'vscode';
import { listAllModels } from '../lm/catalog';
import type { ViewsAgent } from './agent';
import { LoadedRow, ModelNode, modelTree } from './modelItems';
import { Coalesced } from './coalesced';

export const MODELS_VIEW_ID = 'omnipanel.models';
/** Context key the welcome views of package.json match on. */
export const MODELS_STATE_KEY = 'omnipanel.models.state';

/** Why the tree is empty, for the welcome content. */
type ModelsState = 'disconnected' | 'empty' | 'error' | 'ok';

/** The menu entries' own command ids and the extension commands they run with the model's name. */
export const MODEL_MENU_COMMANDS: Record<string, string> = {
  'omnipanel.models.load': 'omnipanel.loadModel',
  'omnipanel.models.unload': 'omnipanel.unloadModel',
  'omnipanel.models.setDefault': 'omnipanel.setDefaultModel',
  'omnipanel.models.delete': 'omnipanel.deleteModel',
};

export class ModelsTreeProvider implements vscode.TreeDataProvider<ModelNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private nodes: ModelNode[] = [];
  private readonly reload = new Coalesced(() => this.load());

  constructor(private readonly agent: ViewsAgent) {}

  /** Re-reads the models; calls made while a read runs collapse into one more read. */
  refresh(): Promise<void> {
    return this.reload.run();
  }

  private async load(): Promise<void> {
    const connection = this.agent.connection;
    let state: ModelsState = 'ok';
    if (!connection) {
      this.nodes = [];
      state = 'disconnected';
    } else {
      try {
        const { models, failures } = await listAllModels(connection);
        const providers = [...new Set(models.map((m) => m.provider))];
        const running = await Promise.allSettled(providers.map((provider) => connection.models.listRunningModels({ provider }, { timeoutMs: 30_000 })));
        const loaded: LoadedRow[] = [];
        running.forEach((r, i) => {
          if (r.status === 'fulfilled') {
            loaded.push(...r.value.models.map((m) => ({
              name: m.name, provider: m.provider || providers[i], sizeBytes: Number(m.sizeBytes), sizeVramBytes: Number(m.sizeVramBytes),
            })));
          }
        });
        this.nodes = modelTree(models, loaded);
        // No models because Ollama did not answer is not "no models yet".
        state = this.nodes.length > 0 ? 'ok' : failures.length > 0 ? 'error' : 'empty';
      } catch {
        this.nodes = [];
        state = 'error';
      }
    }
    await vscode.commands.executeCommand('setContext', MODELS_STATE_KEY, state);
    this.changed.fire(undefined);
  }

  getTreeItem(node: ModelNode): vscode.TreeItem {
    const item = new vscode.TreeItem(
      node.label,
      node.children.length > 0 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
    );
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.iconPath = new vscode.ThemeIcon(node.icon);
    item.contextValue = node.contextValue;
    item.accessibilityInformation = { label: `${node.label}, ${node.description}` };
    return item;
  }

  getChildren(node?: ModelNode): ModelNode[] {
    return node ? node.children : this.nodes;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export function registerModelsView(context: vscode.ExtensionContext, agent: ViewsAgent): ModelsTreeProvider {
  const provider = new ModelsTreeProvider(agent);
  const view = vscode.window.createTreeView(MODELS_VIEW_ID, { treeDataProvider: provider, showCollapseAll: false });
  context.subscriptions.push(
    provider,
    view,
    vscode.commands.registerCommand('omnipanel.models.refresh', () => provider.refresh()),
    ...Object.entries(MODEL_MENU_COMMANDS).map(([id, target]) =>
      vscode.commands.registerCommand(id, (node?: ModelNode) =>
        vscode.commands.executeCommand(target, ...(node?.model ? [node.model] : [])))),
    agent.onDidChangeConnection(() => void provider.refresh()),
    agent.onResync(() => void provider.refresh()),
    agent.onEvent((event) => {
      if (event.modelsChanged || event.defaultModelChanged || event.providersChanged || event.ollamaStateChanged) {
        void provider.refresh();
      }
    }),
  );
  void provider.refresh();
  return provider;
}
