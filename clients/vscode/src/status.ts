// The status bar item: left side, named "OmniPanel", opening the actions
// quick pick; its text (statusText.ts) follows the session's facts, which
// change only on the agent's events.

import * as vscode from "vscode";
import type { AgentSession } from "./session";
import { statusText, statusTooltip } from "./statusText";

export function registerStatusBar(context: vscode.ExtensionContext, session: AgentSession): vscode.StatusBarItem {
  const item = vscode.window.createStatusBarItem("omnipanel.status", vscode.StatusBarAlignment.Left, 100);
  item.name = "OmniPanel";
  item.command = "omnipanel.showActions";
  const update = () => {
    const text = statusText(session.facts);
    item.text = text;
    item.tooltip = statusTooltip(session.facts, session.targetLabel);
    item.accessibilityInformation = { label: text };
    const phase = session.facts.agent.phase;
    item.backgroundColor =
      phase === "not-running" || phase === "incompatible" || phase === "error"
        ? new vscode.ThemeColor("statusBarItem.warningBackground")
        : undefined;
  };
  update();
  item.show();
  context.subscriptions.push(item, session.onDidChangeFacts(update));
  return item;
}
