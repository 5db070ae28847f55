// What the Models and Git Status trees, the chat view and the language
// model provider need from the extension's live connection: the current
// (admitted) AgentConnection, a signal when it changes, the agent's events
// from the one shared WatchEvents stream, and the open folder's project.
// extension.ts builds one `ViewsAgent` and passes it to each register…()
// function, so none of them opens its own event stream or polls.

import type * as vscode from 'vscode';
import type { AgentConnection } from '../client';
import type { Event } from '../gen/omnipanel/v1/events';

export interface ViewsAgent {
  /** The connection, when connected and admitted; undefined otherwise. */
  readonly connection: AgentConnection | undefined;
  /** Fires when the connection appears, goes, or its token changes. */
  readonly onDidChangeConnection: vscode.Event<void>;
  /** One agent event (from the shared EventWatcher). */
  readonly onEvent: vscode.Event<Event>;
  /**
   * Events were lost or the watcher reconnected: mirrored state must be
   * read again.
   */
  readonly onResync: vscode.Event<void>;
  /** The open folder's project (id or path), undefined when none is open. */
  readonly project: string | undefined;
  /** The open folder's root, where the project's relative paths start. */
  readonly projectRoot: vscode.Uri | undefined;
  /** Fires when the project (or the open folder) changes. */
  readonly onDidChangeProject: vscode.Event<void>;
}
