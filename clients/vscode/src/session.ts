// The extension's live link to the agent: connects (settings, then
// OMNIPANEL_SOCKET, then the default socket), gets admitted, follows the
// one shared WatchEvents stream and keeps the facts the status bar shows
// (Ollama's state, the default model and the folder's project's preferred
// model, running pulls, active alerts)
// current from events only. It is the `ViewsAgent` the trees, chat view and
// language model provider are given, so none of them opens its own stream.
// When the agent is not running it tries again with a growing delay
// (reconnecting, not polling state), and at once after "Start Agent".

import * as vscode from "vscode";
import { AgentConnection, EventWatcher, OmniPanelError, classify, resolveTarget, targetLabel, type TokenStore } from "./client";
import { admit, offerRequestAgain } from "./access";
import type { Event } from "./gen/omnipanel/v1/events";
import { PullState, ServerState, type PullProgress } from "./gen/omnipanel/v1/models";
import { AlertState } from "./gen/omnipanel/v1/system";
import { preferredModelText, type AgentPhase, type StatusFacts } from "./statusText";
import type { ViewsAgent } from "./views/agent";

const USER_AGENT = "omnipanel-vscode/0.1.0";
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 15_000;

export class AgentSession implements ViewsAgent, vscode.Disposable {
  private current: AgentConnection | undefined;
  private watcher: EventWatcher | undefined;
  private abort = new AbortController();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private generation = 0;
  private projectValue: string | undefined;

  readonly facts: StatusFacts & { pulls: Map<string, PullProgress>; alerts: Set<bigint> } = {
    agent: { phase: "connecting" },
    ollama: ServerState.SERVER_STATE_UNSPECIFIED,
    defaultModel: "",
    projectModel: "",
    pulls: new Map(),
    activeAlerts: 0,
    alerts: new Set(),
  };
  /** Where the session connects (socket path or address), for messages. */
  targetLabel = "";

  private readonly changeConnection = new vscode.EventEmitter<void>();
  private readonly eventEmitter = new vscode.EventEmitter<Event>();
  private readonly resync = new vscode.EventEmitter<void>();
  private readonly changeProject = new vscode.EventEmitter<void>();
  private readonly changeFacts = new vscode.EventEmitter<void>();
  readonly onDidChangeConnection = this.changeConnection.event;
  readonly onEvent = this.eventEmitter.event;
  readonly onResync = this.resync.event;
  readonly onDidChangeProject = this.changeProject.event;
  /** Fires whenever `facts` changed (the status bar listens). */
  readonly onDidChangeFacts = this.changeFacts.event;

  constructor(private readonly tokens: TokenStore) {}

  /** The admitted connection, or undefined. */
  get connection(): AgentConnection | undefined {
    return this.facts.agent.phase === "connected" ? this.current : undefined;
  }

  get project(): string | undefined {
    return this.projectValue;
  }

  get projectRoot(): vscode.Uri | undefined {
    return this.projectValue === undefined ? undefined : vscode.workspace.workspaceFolders?.[0]?.uri;
  }

  /** Called by project.ts once the folder is (or stops being) a project. */
  setProject(project: string | undefined): void {
    if (project === this.projectValue) return;
    this.projectValue = project;
    this.changeProject.fire();
    const connection = this.connection;
    if (connection !== undefined) void this.readProjectModel(connection, this.generation);
    else this.setProjectModel("");
  }

  /** Read the project's preferred model (on connect, a new project, its "model" change). */
  private async readProjectModel(connection: AgentConnection, generation: number): Promise<void> {
    const project = this.projectValue;
    if (project === undefined) {
      this.setProjectModel("");
      return;
    }
    try {
      const { project: found } = await connection.projects.getProject({ project });
      if (generation !== this.generation || project !== this.projectValue) return;
      this.setProjectModel(preferredModelText(found?.preferredModel ?? "", found?.preferredProvider ?? ""));
    } catch {
      // A folder the agent does not know (yet) prefers nothing.
      if (generation === this.generation && project === this.projectValue) this.setProjectModel("");
    }
  }

  private setProjectModel(model: string): void {
    if (this.facts.projectModel === model) return;
    this.facts.projectModel = model;
    this.changeFacts.fire();
  }

  /** The connection when admitted; else a clear error naming what is wrong. */
  require(): AgentConnection {
    const connection = this.connection;
    if (connection !== undefined) return connection;
    switch (this.facts.agent.phase) {
      case "not-running":
        throw new OmniPanelError("agent-not-running", `The OmniPanel agent is not running (nothing answers at ${this.targetLabel}).`);
      case "waiting":
        throw new OmniPanelError("permission-denied", `VS Code is waiting for approval (code ${this.facts.agent.code}).`);
      case "refused":
      case "incompatible":
      case "error":
        throw new OmniPanelError("rpc", this.facts.agent.message);
      default:
        throw new OmniPanelError("transport", "Still connecting to the OmniPanel agent.");
    }
  }

  /** (Re)connect from scratch: settings changed, token changed, or asked to. */
  restart(): void {
    this.teardown();
    this.retryDelay = RETRY_MIN_MS;
    void this.connect();
  }

  /** Try again now (after Start Agent) instead of waiting out the delay. */
  retryNow(): void {
    this.retryDelay = RETRY_MIN_MS;
    if (this.watcher !== undefined) this.watcher.retryNow();
    else if (this.facts.agent.phase !== "waiting") this.restart();
  }

  /** Forget the stored token and run the admission flow again. */
  async requestAccessAgain(): Promise<void> {
    if (this.targetLabel !== "") await this.tokens.delete(this.targetLabel);
    this.restart();
  }

  dispose(): void {
    this.teardown();
    for (const emitter of [this.changeConnection, this.eventEmitter, this.resync, this.changeProject, this.changeFacts]) emitter.dispose();
  }

  private teardown(): void {
    this.generation += 1;
    this.abort.abort();
    this.abort = new AbortController();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.watcher?.stop();
    this.watcher = undefined;
    const had = this.current !== undefined;
    this.current?.close();
    this.current = undefined;
    if (had) this.changeConnection.fire();
  }

  private setPhase(agent: AgentPhase): void {
    this.facts.agent = agent;
    this.changeFacts.fire();
  }

  private async connect(): Promise<void> {
    const generation = this.generation;
    const stale = () => generation !== this.generation;
    const config = vscode.workspace.getConfiguration("omnipanel");
    const address = config.get<string>("address", "");
    this.setPhase({ phase: "connecting" });
    let connection: AgentConnection;
    try {
      const settings = {
        socketPath: config.get<string>("socketPath", ""),
        address,
        caCertificate: config.get<string>("caCertificate", ""),
        userAgent: USER_AGENT,
      };
      // A remote agent's token is entered by the user (Set Remote Token…).
      // It is stored under the same key as an admitted client's token.
      const target = resolveTarget(settings);
      this.targetLabel = targetLabel(target);
      const remoteToken = target.kind === "tcp" ? await this.tokens.get(this.targetLabel) : undefined;
      connection = await AgentConnection.connect({ ...settings, token: remoteToken });
    } catch (err) {
      if (stale()) return;
      this.failed(classify(err, this.targetLabel || "the agent"));
      return;
    }
    if (stale()) {
      connection.close();
      return;
    }
    this.current = connection;
    this.targetLabel = connection.label;
    try {
      await admit(connection, this.tokens, (code) => !stale() && this.setPhase({ phase: "waiting", code }), this.abort.signal);
    } catch (err) {
      if (stale()) return;
      const error = classify(err, connection.label);
      if (error.kind === "access-refused") {
        this.setPhase({ phase: "refused", message: error.message });
        if (await offerRequestAgain(error.message)) this.restart();
        return;
      }
      this.failed(error);
      return;
    }
    if (stale()) return;
    this.retryDelay = RETRY_MIN_MS;
    this.follow(connection, generation);
  }

  private failed(error: OmniPanelError): void {
    switch (error.kind) {
      case "agent-not-running":
      case "transport":
        this.setPhase({ phase: "not-running" });
        this.current?.close();
        this.current = undefined;
        this.retryTimer = setTimeout(() => void this.connect(), this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        return;
      case "incompatible":
        this.setPhase({ phase: "incompatible", message: error.message });
        void vscode.window.showErrorMessage(error.message);
        return;
      default:
        this.setPhase({ phase: "error", message: error.message });
        void vscode.window.showErrorMessage(`OmniPanel: ${error.message}`);
    }
  }

  private follow(connection: AgentConnection, generation: number): void {
    const watcher = new EventWatcher(connection, { minBackoffMs: 250, maxBackoffMs: RETRY_MAX_MS });
    this.watcher = watcher;
    watcher.on("event", (event) => {
      this.apply(event);
      this.eventEmitter.fire(event);
    });
    watcher.on("gap", () => void this.reload(connection, generation));
    watcher.on("caughtUp", () => {
      // After every (re)connect: the agent may have restarted with other state.
      void this.reload(connection, generation);
    });
    watcher.on("disconnected", (error) => {
      if (error.kind === "agent-not-running" && this.facts.agent.phase === "connected") {
        this.setPhase({ phase: "not-running" });
        this.changeConnection.fire();
      }
    });
    watcher.on("stopped", (error) => {
      if (generation !== this.generation) return;
      // The token was revoked or expired: ask again. (A grant without the
      // read scope is the user's choice: say so rather than ask in a loop.)
      if (error.kind === "unauthenticated") void this.requestAccessAgain();
      else this.failed(error);
    });
    watcher.start();
  }

  /** Read the mirrored state again (first connect, reconnect, gap). */
  private async reload(connection: AgentConnection, generation: number): Promise<void> {
    try {
      const [status, pulls, alerts] = await Promise.all([
        connection.models.getServerStatus({}),
        connection.models.listPulls({}),
        connection.system.listAlerts({ activeOnly: true, limit: 1000 }),
      ]);
      if (generation !== this.generation) return;
      this.facts.ollama = status.status?.state ?? ServerState.SERVER_STATE_UNSPECIFIED;
      this.facts.defaultModel = status.status?.defaultModel ?? "";
      void this.readProjectModel(connection, generation);
      this.facts.pulls.clear();
      for (const pull of pulls.pulls) if (isRunning(pull)) this.facts.pulls.set(pull.model, pull);
      this.facts.alerts = new Set(alerts.alerts.filter((alert) => alert.state === AlertState.ALERT_STATE_ACTIVE).map((alert) => alert.id));
      this.facts.activeAlerts = this.facts.alerts.size;
      const wasConnected = this.facts.agent.phase === "connected";
      this.setPhase({ phase: "connected" });
      if (!wasConnected) this.changeConnection.fire();
      this.resync.fire();
    } catch (err) {
      if (generation !== this.generation) return;
      const error = classify(err, connection.label);
      if (error.kind !== "agent-not-running") void vscode.window.showWarningMessage(`OmniPanel: ${error.message}`);
    }
  }

  private apply(event: Event): void {
    const facts = this.facts;
    if (event.ollamaStateChanged?.status !== undefined) {
      // The agent leaves the default model out of state changes (it is
      // not Ollama's state); DefaultModelChanged carries its changes.
      facts.ollama = event.ollamaStateChanged.status.state;
    } else if (event.defaultModelChanged !== undefined) {
      facts.defaultModel = event.defaultModelChanged.model;
    } else if (event.projectChanged?.change === "model") {
      const changed = event.projectChanged;
      const connection = this.connection;
      if (connection !== undefined && (changed.projectId === this.projectValue || changed.path === this.projectValue)) {
        void this.readProjectModel(connection, this.generation);
      }
      return;
    } else if (event.pullProgress !== undefined) {
      const pull = event.pullProgress;
      if (isRunning(pull)) facts.pulls.set(pull.model, pull);
      else facts.pulls.delete(pull.model);
    } else if (event.alertRaised?.alert !== undefined) {
      facts.alerts.add(event.alertRaised.alert.id);
    } else if (event.alertCleared?.alert !== undefined) {
      facts.alerts.delete(event.alertCleared.alert.id);
    } else {
      return;
    }
    facts.activeAlerts = facts.alerts.size;
    this.changeFacts.fire();
  }
}

function isRunning(pull: PullProgress): boolean {
  return pull.state === PullState.PULL_STATE_RUNNING || pull.state === PullState.PULL_STATE_RETRYING;
}
