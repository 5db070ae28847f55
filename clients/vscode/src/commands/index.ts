// Registers every command of commands/catalog.ts with its handler, and Show
// Actions (the status bar's quick pick). A handler's failure becomes one
// error message naming the problem, with the fix offered where there is
// one (Start Agent, Request Access).

import * as vscode from "vscode";
import { OmniPanelError, type TokenStore } from "../client";
import { openAsProject } from "../project";
import type { AgentSession } from "../session";
import { LogFollower, openPanel, requestAccess, setRemoteToken, showAlerts, startAgent } from "./agent";
import { askAboutFile, askAboutSelection } from "./ask";
import { COMMANDS } from "./catalog";
import { deleteModel, loadModel, pullModel, restartOllama, setDefaultModel, startOllama, stopOllama, unloadModel } from "./models";

async function report(err: unknown): Promise<void> {
  const error = err instanceof Error ? err : new Error(String(err));
  if (error instanceof OmniPanelError && error.kind === "cancelled") return;
  const text = error.message.startsWith("OmniPanel") ? error.message : `OmniPanel: ${error.message}`;
  if (error instanceof OmniPanelError && error.kind === "agent-not-running") {
    const start = "Start Agent";
    if ((await vscode.window.showErrorMessage(text, start)) === start) await vscode.commands.executeCommand("omnipanel.startAgent");
    return;
  }
  if (error instanceof OmniPanelError && (error.kind === "unauthenticated" || error.kind === "permission-denied") && error.reason !== "PROJECT_NOT_GRANTED") {
    const again = "Request Access";
    if ((await vscode.window.showErrorMessage(text, again)) === again) await vscode.commands.executeCommand("omnipanel.requestAccess");
    return;
  }
  void vscode.window.showErrorMessage(text);
}

export function registerCommands(context: vscode.ExtensionContext, session: AgentSession, tokens: TokenStore): void {
  const log = new LogFollower(session);
  context.subscriptions.push(log, session.onDidChangeConnection(() => log.stop()));
  const handlers: Record<string, (...args: unknown[]) => unknown> = {
    "omnipanel.showActions": () => showActions(),
    "omnipanel.pullModel": (name) => pullModel(session, typeof name === "string" ? name : undefined),
    "omnipanel.setDefaultModel": (name) => setDefaultModel(session, typeof name === "string" ? name : undefined),
    "omnipanel.loadModel": (name) => loadModel(session, typeof name === "string" ? name : undefined),
    "omnipanel.unloadModel": (name) => unloadModel(session, typeof name === "string" ? name : undefined),
    "omnipanel.deleteModel": (name) => deleteModel(session, typeof name === "string" ? name : undefined),
    "omnipanel.startOllama": () => startOllama(session),
    "omnipanel.stopOllama": () => stopOllama(session),
    "omnipanel.restartOllama": () => restartOllama(session),
    "omnipanel.askAboutSelection": () => askAboutSelection(session),
    "omnipanel.askAboutFile": () => askAboutFile(session),
    "omnipanel.showAlerts": () => showAlerts(session),
    "omnipanel.showLog": () => log.show(),
    "omnipanel.openPanel": () => openPanel(),
    "omnipanel.openChat": () => vscode.commands.executeCommand("omnipanel.chat.focus"),
    "omnipanel.requestAccess": () => requestAccess(session),
    "omnipanel.setRemoteToken": () => setRemoteToken(session, tokens),
    "omnipanel.startAgent": () => startAgent(session),
    "omnipanel.openProject": () => openAsProject(context, session),
  };
  for (const command of COMMANDS) {
    const handler = handlers[command.id];
    if (handler === undefined) throw new Error(`no handler for ${command.id}`);
    context.subscriptions.push(
      vscode.commands.registerCommand(command.id, async (...args: unknown[]) => {
        try {
          await handler(...args);
        } catch (err) {
          await report(err);
        }
      }),
    );
  }
}

async function showActions(): Promise<void> {
  const picked = await vscode.window.showQuickPick(
    COMMANDS.filter((command) => command.inActions).map((command) => ({ label: command.title, id: command.id })),
    { title: "OmniPanel", placeHolder: "What should OmniPanel do?" },
  );
  if (picked !== undefined) await vscode.commands.executeCommand(picked.id);
}
