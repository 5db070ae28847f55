// Open the folder as an OmniPanel project: on opening a folder the setting
// omnipanel.openFolderAsProject says whether to ask (default), always or
// never; an answer given is remembered per folder in the workspace state,
// so the question comes once. Once a project, the session's `project` is
// set and the views use it.

import * as vscode from "vscode";
import type { AgentSession } from "./session";

const ANSWER_KEY = "omnipanel.projectAnswer";

type Answer = "yes" | "no";

function folder(): vscode.WorkspaceFolder | undefined {
  const first = vscode.workspace.workspaceFolders?.[0];
  return first?.uri.scheme === "file" ? first : undefined;
}

/** Open the folder as a project in the agent now (the command). */
export async function openAsProject(context: vscode.ExtensionContext, session: AgentSession): Promise<void> {
  const root = folder();
  if (root === undefined) {
    void vscode.window.showWarningMessage("OmniPanel: open a folder first.");
    return;
  }
  const connection = session.require();
  const { project } = await connection.projects.openProject({ path: root.uri.fsPath, name: root.name });
  await context.workspaceState.update(ANSWER_KEY, "yes" satisfies Answer);
  session.setProject(project?.id || root.uri.fsPath);
}

/** Whenever the agent connects: use, offer or skip the folder as a project. */
export function registerProject(context: vscode.ExtensionContext, session: AgentSession): void {
  let asked = false;
  const consider = async () => {
    const root = folder();
    const connection = session.connection;
    if (root === undefined || connection === undefined) return;
    const setting = vscode.workspace.getConfiguration("omnipanel").get<string>("openFolderAsProject", "ask");
    const remembered = context.workspaceState.get<Answer>(ANSWER_KEY);
    if (setting === "never" || remembered === "no") return;
    if (setting === "always" || remembered === "yes") {
      await openAsProject(context, session);
      return;
    }
    if (asked) return;
    asked = true;
    const yes = "Open as Project";
    const no = "Not This Folder";
    const choice = await vscode.window.showInformationMessage(
      `OmniPanel: open "${root.name}" as an OmniPanel project? Its files, Git status and chat context are then available to OmniPanel.`,
      yes,
      no,
    );
    if (choice === yes) await openAsProject(context, session);
    else if (choice === no) await context.workspaceState.update(ANSWER_KEY, "no" satisfies Answer);
  };
  const run = () =>
    consider().catch((err: unknown) => void vscode.window.showWarningMessage(`OmniPanel: cannot open the folder as a project: ${(err as Error).message}`));
  context.subscriptions.push(session.onDidChangeConnection(run), vscode.workspace.onDidChangeWorkspaceFolders(run));
  run();
}
