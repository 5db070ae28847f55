// Agent commands: Show Alerts (ListAlerts in a quick pick), Show Agent Log
// (TailLogs followed into an output channel until it is disposed), Open
// Panel, Start Agent, Request Access, Set Remote Token….

import * as vscode from "vscode";
import { classify, resolveTarget, targetLabel, type CallStream, type TokenStore } from "../client";
import type { TailLogsResponse } from "../gen/omnipanel/v1/agent";
import { AlertState } from "../gen/omnipanel/v1/system";
import { openPanel as spawnPanel, startAgent as spawnAgent } from "../agentProcess";
import type { AgentSession } from "../session";

export async function showAlerts(session: AgentSession): Promise<void> {
  const { alerts } = await session.require().system.listAlerts({ limit: 100 });
  if (alerts.length === 0) {
    void vscode.window.showInformationMessage("OmniPanel: no alerts.");
    return;
  }
  const items = alerts.map((alert) => {
    const active = alert.state === AlertState.ALERT_STATE_ACTIVE;
    return {
      label: `${active ? "$(warning)" : "$(check)"} ${alert.message || alert.metric}`,
      description: active ? "active" : `cleared: ${alert.clearReason}`,
      detail: `raised ${new Date(Number(alert.raisedUnixMs)).toLocaleString()}${alert.subject ? ` · ${alert.subject}` : ""}`,
    };
  });
  await vscode.window.showQuickPick(items, { title: "OmniPanel: Alerts (newest first)", matchOnDescription: true });
}

/** The agent's log followed into an output channel; one follower at a time. */
export class LogFollower implements vscode.Disposable {
  private channel: vscode.OutputChannel | undefined;
  private stream: CallStream<TailLogsResponse> | undefined;

  constructor(private readonly session: AgentSession) {}

  async show(): Promise<void> {
    const connection = this.session.require();
    this.channel ??= vscode.window.createOutputChannel("OmniPanel Agent Log", "log");
    this.channel.show(true);
    if (this.stream !== undefined) return;
    const channel = this.channel;
    const stream = connection.agent.tailLogs({ source: "agent", lines: 500, follow: true });
    this.stream = stream;
    try {
      for await (const batch of stream) for (const line of batch.lines) channel.appendLine(line);
    } catch (err) {
      const error = classify(err, connection.label);
      if (error.kind !== "cancelled") channel.appendLine(`[OmniPanel] the log stream ended: ${error.message}`);
    } finally {
      if (this.stream === stream) this.stream = undefined;
    }
  }

  /** Stop following (the connection changed or the extension stops). */
  stop(): void {
    this.stream?.cancel();
    this.stream = undefined;
  }

  dispose(): void {
    this.stop();
    this.channel?.dispose();
    this.channel = undefined;
  }
}

function agentPath(): string {
  return vscode.workspace.getConfiguration("omnipanel").get<string>("agentPath", "");
}

export async function startAgent(session: AgentSession): Promise<void> {
  if (vscode.workspace.getConfiguration("omnipanel").get<string>("address", "").trim() !== "") {
    void vscode.window.showWarningMessage("OmniPanel: the agent is remote (setting omnipanel.address); start it on that machine.");
    return;
  }
  const how = await spawnAgent(agentPath());
  void vscode.window.showInformationMessage(`OmniPanel: ${how}`);
  session.retryNow();
}

export async function openPanel(): Promise<void> {
  await spawnPanel(agentPath());
}

export async function requestAccess(session: AgentSession): Promise<void> {
  await session.requestAccessAgain();
}

export async function setRemoteToken(session: AgentSession, tokens: TokenStore): Promise<void> {
  const config = vscode.workspace.getConfiguration("omnipanel");
  const address = config.get<string>("address", "").trim();
  if (address === "") {
    void vscode.window.showWarningMessage("OmniPanel: set omnipanel.address (https://host:port) first; on this machine no token needs entering.");
    return;
  }
  const key = targetLabel(resolveTarget({ address, caCertificate: config.get<string>("caCertificate", "") }));
  const token = await vscode.window.showInputBox({
    prompt: `Token for the OmniPanel agent at ${key} (from \`omnipanel token create\` on that machine)`,
    password: true,
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === "" || /\s/.test(value.trim()) ? "A token is one word without spaces." : undefined),
  });
  if (token === undefined) return;
  await tokens.set(key, token.trim());
  session.restart();
}
