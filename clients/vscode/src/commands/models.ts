// Model commands: Pull Model… (suggestions with the fit check, a typed name
// works too, progress with Cancel that stops the pull in the agent), Set
// Default Model…, Load/Unload Model…, Delete Model… (through the agent's
// confirmation flow), and Start/Stop/Restart Ollama.

import * as vscode from "vscode";
import { OmniPanelError, type AgentConnection } from "../client";
import { FitVerdict, PullState, type CheckFitResponse, type ServerStatus } from "../gen/omnipanel/v1/models";
import type { AgentSession } from "../session";
import { pullPercent, serverStateWord } from "../statusText";

/**
 * Names offered by Pull Model…: small, popular models first. The agent has
 * no catalog call, so this list is ours; any other name can be typed.
 */
export const SUGGESTED_MODELS = [
  "llama3.2:1b",
  "llama3.2:3b",
  "qwen2.5:0.5b",
  "qwen2.5-coder:1.5b",
  "qwen2.5-coder:7b",
  "gemma3:1b",
  "phi4-mini:latest",
  "mistral:7b",
  "deepseek-r1:1.5b",
  "tinyllama:latest",
  "llama3.1:8b",
  "llama3.1:70b",
];

export function formatBytes(bytes: bigint): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function fitSummary(fit: CheckFitResponse): string {
  const verdict: Record<number, string> = {
    [FitVerdict.FIT_VERDICT_FITS_GPU]: "fits the GPU",
    [FitVerdict.FIT_VERDICT_FITS_CPU_ONLY]: "runs on the CPU only",
    [FitVerdict.FIT_VERDICT_NO_DISK]: "not enough free disk",
    [FitVerdict.FIT_VERDICT_TOO_LARGE]: "too large for this machine",
  };
  const size = fit.modelBytes > 0n ? `${formatBytes(fit.modelBytes)} · ` : "";
  return `${size}${verdict[fit.verdict] ?? "fit unknown"}${fit.explanation ? ` — ${fit.explanation}` : ""}`;
}

function fitsBadly(fit: CheckFitResponse): boolean {
  return fit.verdict === FitVerdict.FIT_VERDICT_TOO_LARGE || fit.verdict === FitVerdict.FIT_VERDICT_NO_DISK;
}

/** Ask for the name: suggestions (installed ones left out) with their fit; Enter on a typed name pulls it. */
async function pickModelToPull(connection: AgentConnection): Promise<string | undefined> {
  const installed = new Set((await connection.models.listModels({})).models.map((model) => model.name));
  const pick = vscode.window.createQuickPick<vscode.QuickPickItem>();
  pick.title = "OmniPanel: Pull Model";
  pick.placeholder = "Pick a model, or type any name Ollama knows (e.g. llama3.2:1b) and press Enter";
  pick.matchOnDetail = false;
  const items = SUGGESTED_MODELS.filter((name) => !installed.has(name)).map((name) => ({ label: name, detail: "checking fit…" }));
  pick.items = items;
  // Fit checks arrive one by one; the items are replaced as they do.
  for (const item of items) {
    void connection.models
      .checkFit({ model: item.label })
      .then((fit) => (item.detail = fitSummary(fit)))
      .catch((err: unknown) => (item.detail = `fit unknown: ${(err as Error).message}`))
      .then(() => (pick.items = [...items]));
  }
  return new Promise((resolve) => {
    pick.onDidAccept(() => {
      const chosen = pick.selectedItems[0]?.label ?? pick.value.trim();
      resolve(chosen || undefined);
      pick.hide();
    });
    pick.onDidHide(() => {
      resolve(undefined);
      pick.dispose();
    });
    pick.show();
  });
}

export async function pullModel(session: AgentSession, name?: string): Promise<void> {
  const connection = session.require();
  const model = name ?? (await pickModelToPull(connection));
  if (model === undefined) return;
  if (!/^[A-Za-z0-9][A-Za-z0-9._\/:-]*$/.test(model)) {
    void vscode.window.showErrorMessage(`OmniPanel: "${model}" is not a model name (like llama3.2:1b).`);
    return;
  }
  const fit = await connection.models.checkFit({ model }).catch(() => undefined);
  if (fit !== undefined && fitsBadly(fit)) {
    const pullAnyway = "Pull Anyway";
    const choice = await vscode.window.showWarningMessage(`${model} will not fit: ${fitSummary(fit)}`, { modal: true }, pullAnyway);
    if (choice !== pullAnyway) return;
  }
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Pulling ${model}`, cancellable: true },
    async (progress, token) => {
      let reported = 0;
      let cancelled = false;
      token.onCancellationRequested(() => {
        cancelled = true;
        void connection.models.cancelPull({ model }).catch(() => undefined);
      });
      let state = PullState.PULL_STATE_UNSPECIFIED;
      let error = "";
      const stream = connection.models.pullModel({ model });
      token.onCancellationRequested(() => stream.cancel());
      try {
        for await (const update of stream) {
          const pull = update.progress;
          if (pull === undefined) continue;
          state = pull.state;
          error = pull.error;
          const percent = pullPercent(pull);
          progress.report({ increment: Math.max(0, percent - reported), message: `${percent}% ${pull.status}` });
          reported = Math.max(reported, percent);
        }
      } catch (err) {
        if (cancelled) return "cancelled";
        throw err;
      }
      if (cancelled || state === PullState.PULL_STATE_CANCELLED) return "cancelled";
      if (state !== PullState.PULL_STATE_SUCCEEDED) throw new OmniPanelError("rpc", `Pulling ${model} failed: ${error || "the agent gave no reason"}`);
      return "pulled";
    },
  );
  if (outcome === "pulled") void vscode.window.showInformationMessage(`OmniPanel: ${model} pulled`);
  else void vscode.window.showInformationMessage(`OmniPanel: the pull of ${model} was cancelled`);
}

async function pickInstalled(connection: AgentConnection, title: string, extra: vscode.QuickPickItem[] = []): Promise<string | undefined> {
  const { models } = await connection.models.listModels({});
  if (models.length === 0 && extra.length === 0) {
    void vscode.window.showInformationMessage("OmniPanel: no models are installed yet. Pull one with “OmniPanel: Pull Model…”.");
    return undefined;
  }
  const items: vscode.QuickPickItem[] = [
    ...models.map((model) => ({
      label: model.name,
      description: model.isDefault ? "default" : undefined,
      detail: [formatBytes(model.sizeBytes), model.parameterSize, model.quantizationLevel].filter(Boolean).join(" · "),
    })),
    ...extra,
  ];
  return (await vscode.window.showQuickPick(items, { title }))?.label;
}

const NO_DEFAULT = "(no default model)";

export async function setDefaultModel(session: AgentSession, name?: string): Promise<void> {
  const connection = session.require();
  const picked = name ?? (await pickInstalled(connection, "OmniPanel: Set Default Model", [{ label: NO_DEFAULT }]));
  if (picked === undefined) return;
  const model = picked === NO_DEFAULT ? "" : picked;
  await connection.models.setDefaultModel({ model });
  void vscode.window.showInformationMessage(model ? `OmniPanel: ${model} is the default model` : "OmniPanel: no default model");
}

export async function loadModel(session: AgentSession, name?: string): Promise<void> {
  const connection = session.require();
  const model = name ?? (await pickInstalled(connection, "OmniPanel: Load Model"));
  if (model === undefined) return;
  await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Loading ${model}` }, () =>
    connection.models.loadModel({ model }),
  );
  void vscode.window.showInformationMessage(`OmniPanel: ${model} loaded`);
}

export async function unloadModel(session: AgentSession, name?: string): Promise<void> {
  const connection = session.require();
  let model = name;
  if (model === undefined) {
    const { models } = await connection.models.listRunningModels({});
    if (models.length === 0) {
      void vscode.window.showInformationMessage("OmniPanel: no model is loaded.");
      return;
    }
    model = (await vscode.window.showQuickPick(models.map((running) => ({ label: running.name, detail: formatBytes(running.sizeBytes) })), { title: "OmniPanel: Unload Model" }))?.label;
  }
  if (model === undefined) return;
  await connection.models.unloadModel({ model });
  void vscode.window.showInformationMessage(`OmniPanel: ${model} unloaded`);
}

/** Ask the user to answer the agent's confirmation; true to retry. */
export async function promptConfirmation(id: string, error: OmniPanelError, what: string): Promise<boolean> {
  const retry = "I Allowed It — Retry";
  const pending = error.kind === "confirmation-pending" ? "It is not allowed yet. " : "";
  const choice = await vscode.window.showWarningMessage(
    `OmniPanel: ${pending}the agent asks you to confirm: ${what}. Allow it in the tray or panel, or run: omnipanel confirmations allow ${id}`,
    retry,
  );
  return choice === retry;
}

export async function deleteModel(session: AgentSession, name?: string): Promise<void> {
  const connection = session.require();
  const model = name ?? (await pickInstalled(connection, "OmniPanel: Delete Model"));
  if (model === undefined) return;
  const remove = "Delete";
  if ((await vscode.window.showWarningMessage(`Delete ${model}? It has to be pulled again to be used.`, { modal: true }, remove)) !== remove) return;
  await connection.confirmed(
    (opts) => connection.models.deleteModel({ model }, opts),
    (id, error) => promptConfirmation(id, error, `delete model ${model}`),
  );
  void vscode.window.showInformationMessage(`OmniPanel: ${model} deleted`);
}

function describe(status: ServerStatus | undefined): string {
  if (status === undefined) return "unknown";
  return serverStateWord(status.state) + (status.lastError ? ` (${status.lastError})` : "");
}

export async function startOllama(session: AgentSession): Promise<void> {
  const { status } = await session.require().models.startServer({});
  void vscode.window.showInformationMessage(`OmniPanel: Ollama ${describe(status)}`);
}

export async function stopOllama(session: AgentSession): Promise<void> {
  const { status } = await session.require().models.stopServer({});
  void vscode.window.showInformationMessage(`OmniPanel: Ollama ${describe(status)}`);
}

export async function restartOllama(session: AgentSession): Promise<void> {
  const { status } = await session.require().models.restartServer({});
  void vscode.window.showInformationMessage(`OmniPanel: Ollama ${describe(status)}`);
}
