// The Git Status tree view `omnipanel.git`: the open project's
// GitService.GetStatus (branch, ahead/behind, conflicted, staged, unstaged
// and untracked files; clicking a file opens it). It is re-read when the
// project's files change (FileService.Watch, which also reports .git
// changes) or the agent reports a repository or project change, never on
// a timer.

import * as vscode from 'vscode';
import { OmniPanelError, type CallStream } from '../client';
import type { ViewsAgent } from './agent';
import { GitNode, gitTree, summarizeStatus } from './gitItems';
import { Coalesced } from './coalesced';

export const GIT_VIEW_ID = 'omnipanel.git';
/** Context key the welcome views of package.json match on. */
export const GIT_STATE_KEY = 'omnipanel.git.state';

/** Why the tree is empty, for the welcome content. */
type GitState = 'noFolder' | 'disconnected' | 'noProject' | 'notRepository' | 'error' | 'ok';

/** Changes arrive in bursts (a save, a checkout): one status read per burst. */
const SETTLE_MS = 300;
const MAX_RETRY_MS = 30_000;

export class GitTreeProvider implements vscode.TreeDataProvider<GitNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<GitNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private nodes: GitNode[] = [];
  private readonly reload = new Coalesced(() => this.load());
  private settle: NodeJS.Timeout | undefined;
  private watch: CallStream<unknown> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = 1000;
  private disposed = false;

  constructor(private readonly agent: ViewsAgent) {}

  /** Re-reads the status soon, once per burst of changes. */
  schedule(): void {
    if (this.settle) return;
    this.settle = setTimeout(() => {
      this.settle = undefined;
      void this.refresh();
    }, SETTLE_MS);
  }

  /** Re-reads the status now; calls during a read collapse into one more read. */
  refresh(): Promise<void> {
    return this.reload.run();
  }

  private async load(): Promise<void> {
    const connection = this.agent.connection;
    const project = this.agent.project;
    let state: GitState = 'ok';
    this.nodes = [];
    if (!vscode.workspace.workspaceFolders?.length) {
      state = 'noFolder';
    } else if (!connection) {
      state = 'disconnected';
    } else if (!project) {
      state = 'noProject';
    } else {
      try {
        const { status } = await connection.git.getStatus({ project }, { timeoutMs: 30_000 });
        this.nodes = status ? gitTree(summarizeStatus(status)) : [];
      } catch (err) {
        const reason = err instanceof OmniPanelError ? err.reason : '';
        state = reason === 'NOT_A_REPOSITORY' ? 'notRepository'
          : reason === 'PROJECT_NOT_FOUND' || reason === 'PROJECT_CLOSED' ? 'noProject' : 'error';
      }
    }
    await vscode.commands.executeCommand('setContext', GIT_STATE_KEY, state);
    this.changed.fire(undefined);
  }

  /** (Re)starts following the project's changes; stops when there is nothing to follow. */
  restartWatch(): void {
    this.watch?.cancel();
    this.watch = undefined;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    const connection = this.agent.connection;
    const project = this.agent.project;
    if (!connection || !project || this.disposed) return;
    const stream = connection.files.watch({ project });
    this.watch = stream;
    void (async () => {
      try {
        for await (const _ of stream) {
          this.retryMs = 1000;
          this.schedule();
        }
      } catch (err) {
        if (err instanceof OmniPanelError && err.kind === 'cancelled') return;
      }
      if (this.watch !== stream || this.disposed) return;
      // The stream ended (agent restart, project closed): follow again
      // after a growing pause, and re-read what may have been missed.
      this.retry = setTimeout(() => {
        this.restartWatch();
        this.schedule();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    })();
  }

  getTreeItem(node: GitNode): vscode.TreeItem {
    const item = new vscode.TreeItem(
      node.label,
      node.children.length > 0 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
    );
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
    item.contextValue = node.contextValue;
    const root = this.agent.projectRoot;
    if (node.kind === 'file' && root) {
      const uri = vscode.Uri.joinPath(root, ...node.path.split('/'));
      item.resourceUri = uri;
      if (node.openable) {
        item.command = { command: 'vscode.open', title: 'Open File', arguments: [uri] };
      }
    }
    return item;
  }

  getChildren(node?: GitNode): GitNode[] {
    return node ? node.children : this.nodes;
  }

  dispose(): void {
    this.disposed = true;
    this.watch?.cancel();
    if (this.retry) clearTimeout(this.retry);
    if (this.settle) clearTimeout(this.settle);
    this.changed.dispose();
  }
}

export function registerGitView(context: vscode.ExtensionContext, agent: ViewsAgent): GitTreeProvider {
  const provider = new GitTreeProvider(agent);
  const view = vscode.window.createTreeView(GIT_VIEW_ID, { treeDataProvider: provider });
  const restart = (): void => {
    provider.restartWatch();
    void provider.refresh();
  };
  context.subscriptions.push(
    provider,
    view,
    vscode.commands.registerCommand('omnipanel.git.refresh', () => provider.refresh()),
    agent.onDidChangeConnection(restart),
    agent.onDidChangeProject(restart),
    agent.onResync(() => void provider.refresh()),
    agent.onEvent((event) => {
      if (event.repositoryChanged) provider.schedule();
      const changed = event.projectChanged;
      if (changed && (changed.projectId === agent.project || changed.path === agent.projectRoot?.fsPath)) restart();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(restart),
  );
  restart();
  return provider;
}
