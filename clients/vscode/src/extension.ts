// The extension's entry point: builds the session (connection, admission,
// the shared event stream), the status bar, the commands, the folder-as-
// project offer, and hands the session to the views, the chat view and the
// language model provider. Reconnects when an omnipanel.* connection
// setting changes.

import * as vscode from "vscode";
import { SecretTokenStore } from "./access";
import { registerChatView } from "./chat/view";
import { registerCommands } from "./commands";
import { registerLanguageModelProvider } from "./lm/provider";
import { registerProject } from "./project";
import { AgentSession } from "./session";
import { registerStatusBar } from "./status";
import { registerGitView } from "./views/git";
import { registerModelsView } from "./views/models";

const CONNECTION_SETTINGS = ["omnipanel.socketPath", "omnipanel.address", "omnipanel.caCertificate"];

export function activate(context: vscode.ExtensionContext): AgentSession {
  const tokens = new SecretTokenStore(context.secrets);
  const session = new AgentSession(tokens);
  context.subscriptions.push(session);
  registerStatusBar(context, session);
  registerCommands(context, session, tokens);
  registerModelsView(context, session);
  registerGitView(context, session);
  registerChatView(context, session);
  registerLanguageModelProvider(context, session);
  registerProject(context, session);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (CONNECTION_SETTINGS.some((key) => change.affectsConfiguration(key))) session.restart();
    }),
  );
  session.restart();
  return session;
}

export function deactivate(): void {
  // Everything is in context.subscriptions; VS Code disposes it.
}
