// Ask About Selection… / Ask About File…: the question and the code go to
// the model (Chat, the default model or one picked), and the answer streams
// into a new untitled markdown document beside the editor as it arrives; a
// notification's Cancel stops it.

import * as vscode from "vscode";
import { OmniPanelError, type AgentConnection } from "../client";
import { ChatMessage } from "../gen/omnipanel/v1/models";
import type { AgentSession } from "../session";

async function chooseModel(session: AgentSession, connection: AgentConnection): Promise<string | undefined> {
  // The agent applies the project's preference itself (the request names
  // the project); the default model otherwise.
  if (session.facts.projectModel !== "") return "";
  if (session.facts.defaultModel !== "") return session.facts.defaultModel;
  const { models } = await connection.models.listModels({});
  if (models.length === 0) {
    const pull = "Pull Model…";
    if ((await vscode.window.showWarningMessage("OmniPanel: no model is installed yet.", pull)) === pull) {
      await vscode.commands.executeCommand("omnipanel.pullModel");
    }
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    models.map((model) => ({ label: model.name, description: model.provider === "local" || model.provider === "" ? undefined : model.provider })),
    { title: "OmniPanel: which model? (set a default with “OmniPanel: Set Default Model…”)" },
  );
  return picked?.label;
}

/** The prompt sent to the model: the question, then the code fenced with its language. */
export function askPrompt(question: string, code: string, languageId: string, fileName: string): string {
  const fence = code.includes("```") ? "````" : "```";
  return `${question}\n\nFrom ${fileName}:\n\n${fence}${languageId}\n${code}\n${fence}\n`;
}

async function ask(session: AgentSession, scope: "selection" | "file"): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showWarningMessage("OmniPanel: open a file in the editor first.");
    return;
  }
  const selection = editor.selection;
  if (scope === "selection" && selection.isEmpty) {
    void vscode.window.showWarningMessage("OmniPanel: select some code first (or use “OmniPanel: Ask About File…”).");
    return;
  }
  const code = scope === "selection" ? editor.document.getText(selection) : editor.document.getText();
  const connection = session.require();
  const question = await vscode.window.showInputBox({
    prompt: scope === "selection" ? "Ask the model about the selection" : "Ask the model about the file",
    value: "Explain this code",
  });
  if (question === undefined || question.trim() === "") return;
  const model = await chooseModel(session, connection);
  if (model === undefined) return;

  const document = await vscode.workspace.openTextDocument({ language: "markdown", content: "" });
  const answer = await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
  const fileName = vscode.workspace.asRelativePath(editor.document.uri);

  // Pieces arrive faster than edits apply: queue them and apply in order.
  let pending = "";
  let writing: Promise<void> = Promise.resolve();
  const append = (text: string) => {
    pending += text;
    writing = writing.then(async () => {
      if (pending === "") return;
      const chunk = pending;
      pending = "";
      const end = document.lineAt(document.lineCount - 1).range.end;
      const edit = new vscode.WorkspaceEdit();
      edit.insert(document.uri, end, chunk);
      await vscode.workspace.applyEdit(edit);
    });
  };
  // Plain first line: an untitled document is named after it.
  append(`${question.trim()} (${model}, about ${scope === "selection" ? "the selection in " : ""}${fileName})\n\n---\n\n`);

  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `OmniPanel: ${model} is answering`, cancellable: true },
    async (_progress, token) => {
      const stream = connection.models.chat({
        model,
        project: session.project ?? "",
        messages: [ChatMessage.create({ role: "user", content: askPrompt(question.trim(), code, editor.document.languageId, fileName) })],
      });
      token.onCancellationRequested(() => stream.cancel());
      try {
        for await (const piece of stream) append(piece.content);
        append("\n");
      } catch (err) {
        if (err instanceof OmniPanelError && err.kind === "cancelled") append("\n\n*(stopped)*\n");
        else {
          append(`\n\n*(failed: ${(err as Error).message})*\n`);
          throw err;
        }
      } finally {
        await writing;
      }
    },
  );
  void answer;
}

export const askAboutSelection = (session: AgentSession) => ask(session, "selection");
export const askAboutFile = (session: AgentSession) => ask(session, "file");
