// The status bar's words, computed from what the session knows (no vscode
// import, so the exact texts the end-to-end test reads are unit-tested).
// The fixed forms come from the extension contract:
//   OmniPanel: agent not running
//   OmniPanel: waiting for approval (code CODE)
//   OmniPanel: Ollama STATE[ · MODEL][ · pulling NAME PCT%][ · ⚠ N alerts]
// where MODEL is the model the workspace folder's project uses: its
// preferred model (`provider/model` for another provider's), else the
// default model.

import { ServerState, serverStateToJSON, type PullProgress } from "./gen/omnipanel/v1/models";

export type AgentPhase =
  | { phase: "connecting" }
  | { phase: "not-running" }
  | { phase: "waiting"; code: string }
  | { phase: "refused"; message: string }
  | { phase: "incompatible"; message: string }
  | { phase: "error"; message: string }
  | { phase: "connected" };

export interface StatusFacts {
  agent: AgentPhase;
  ollama: ServerState;
  defaultModel: string;
  /** The workspace folder's project's preferred model ("" when it has none, or no project). */
  projectModel: string;
  /** Running pulls by model name. */
  pulls: ReadonlyMap<string, PullProgress>;
  activeAlerts: number;
}

/** The lower-case state word, as clients/rust/src/display.rs names it ("running", "not_installed"). */
export function serverStateWord(state: ServerState): string {
  const name = serverStateToJSON(state);
  return (name.startsWith("SERVER_STATE_") ? name.slice("SERVER_STATE_".length) : name).toLowerCase();
}

/** A pull's whole percentage (0–100). */
export function pullPercent(progress: PullProgress): number {
  if (progress.totalBytes === 0n) return 0;
  const done = progress.completedBytes > progress.totalBytes ? progress.totalBytes : progress.completedBytes;
  return Number((done * 100n) / progress.totalBytes);
}

/** A project's preferred model as a model string, as clients/rust/src/display.rs writes it: the model alone on the local server, else `provider/model`; "" for none. */
export function preferredModelText(model: string, provider: string): string {
  if (model === "") return "";
  return provider === "" || provider === "local" ? model : `${provider}/${model}`;
}

/** The model chat uses for this workspace: the project's preference, else the default model. */
export function workspaceModel(facts: Pick<StatusFacts, "projectModel" | "defaultModel">): string {
  return facts.projectModel !== "" ? facts.projectModel : facts.defaultModel;
}

export function statusText(facts: StatusFacts): string {
  switch (facts.agent.phase) {
    case "connecting":
      return "OmniPanel: connecting";
    case "not-running":
      return "OmniPanel: agent not running";
    case "waiting":
      return `OmniPanel: waiting for approval (code ${facts.agent.code})`;
    case "refused":
      return "OmniPanel: access not granted";
    case "incompatible":
      return "OmniPanel: incompatible agent";
    case "error":
      return "OmniPanel: error";
    case "connected":
      break;
  }
  let text = `OmniPanel: Ollama ${serverStateWord(facts.ollama)}`;
  const model = workspaceModel(facts);
  if (model !== "") text += ` · ${model}`;
  const pull = [...facts.pulls.values()][0];
  if (pull !== undefined) text += ` · pulling ${pull.model} ${pullPercent(pull)}%`;
  if (facts.activeAlerts > 0) text += ` · ⚠ ${facts.activeAlerts} alerts`;
  return text;
}

/** The tooltip: the longer story behind the text. */
export function statusTooltip(facts: StatusFacts, target: string): string {
  switch (facts.agent.phase) {
    case "not-running":
      return `Nothing answers at ${target}. Click for actions (Start Agent).`;
    case "waiting":
      return `Approve access for VS Code with code ${facts.agent.code} in the tray, the panel or with \`omnipanel clients approve\`.`;
    case "refused":
    case "incompatible":
    case "error":
      return facts.agent.message;
    default:
      return `OmniPanel agent at ${target}. Click for actions.`;
  }
}
