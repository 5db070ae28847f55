// AgentConnection: one channel to the agent with a typed face per service.
// `AgentConnection.connect` opens it, calls GetInfo first and refuses an
// agent that speaks another protocol version; the bearer token is set
// after admission (admission.ts) and sent on every call; `confirmed` runs a
// destructive act through the agent's confirmation flow.

import { Metadata } from "@grpc/grpc-js";
import { AgentServiceClient, AgentServiceService, type GetInfoResponse } from "../gen/omnipanel/v1/agent";
import { FileServiceClient, FileServiceService } from "../gen/omnipanel/v1/files";
import { GitServiceClient, GitServiceService } from "../gen/omnipanel/v1/git";
import { ModelServiceClient, ModelServiceService } from "../gen/omnipanel/v1/models";
import { ProjectServiceClient, ProjectServiceService } from "../gen/omnipanel/v1/projects";
import { SystemServiceClient, SystemServiceService } from "../gen/omnipanel/v1/system";
import { UpdateServiceClient, UpdateServiceService } from "../gen/omnipanel/v1/update";
import { classify, OmniPanelError } from "./errors";
import { wrapService, type CallOpts, type Service } from "./services";
import { channelFor, resolveTarget, targetLabel, type Target, type TargetSettings } from "./target";

/** The wire protocol this client speaks (GetInfo's protocol_version). */
export const PROTOCOL_VERSION = 1;

export interface ConnectOptions extends TargetSettings {
  /** Bearer token to present (an admitted client's, or the owner credential). */
  token?: string;
  /** Names this client in the agent's logs, e.g. "omnipanel-vscode/0.1.0". */
  userAgent?: string;
  /** Give up on GetInfo after this long (default 10 s). */
  timeoutMs?: number;
}

/** Asked when a destructive act needs the user's confirmation; resolve true to retry, false to give up. */
export type ConfirmationPrompt = (confirmationId: string, error: OmniPanelError) => Promise<boolean>;

export class AgentConnection {
  readonly target: Target;
  /** The target as shown to people, and the key of its stored token. */
  readonly label: string;
  /** GetInfo's answer when the connection was made. */
  info: GetInfoResponse;
  readonly agent: Service<AgentServiceClient>;
  readonly models: Service<ModelServiceClient>;
  readonly projects: Service<ProjectServiceClient>;
  readonly files: Service<FileServiceClient>;
  readonly git: Service<GitServiceClient>;
  readonly system: Service<SystemServiceClient>;
  readonly updates: Service<UpdateServiceClient>;
  private token: string | undefined;
  private readonly clients: { close(): void }[];

  private constructor(target: Target, token: string | undefined, userAgent: string) {
    this.target = target;
    this.label = targetLabel(target);
    this.token = token;
    const { address, credentials, options } = channelFor(target, userAgent);
    const context = { label: this.label, metadata: (opts: CallOpts) => this.metadata(opts) };
    // One channel shared by all services: grpc-js pools channels whose
    // address, credentials and options are equal.
    const agent = new AgentServiceClient(address, credentials, options);
    const models = new ModelServiceClient(address, credentials, options);
    const projects = new ProjectServiceClient(address, credentials, options);
    const files = new FileServiceClient(address, credentials, options);
    const git = new GitServiceClient(address, credentials, options);
    const system = new SystemServiceClient(address, credentials, options);
    const updates = new UpdateServiceClient(address, credentials, options);
    this.clients = [agent, models, projects, files, git, system, updates];
    this.agent = wrapService(agent, AgentServiceService, context);
    this.models = wrapService(models, ModelServiceService, context);
    this.projects = wrapService(projects, ProjectServiceService, context);
    this.files = wrapService(files, FileServiceService, context);
    this.git = wrapService(git, GitServiceService, context);
    this.system = wrapService(system, SystemServiceService, context);
    this.updates = wrapService(updates, UpdateServiceService, context);
    this.info = undefined as unknown as GetInfoResponse;
  }

  /**
   * Connect, call GetInfo and check the protocol version. Fails with kind
   * "agent-not-running", "incompatible", "config" or "transport".
   */
  static async connect(options: ConnectOptions = {}): Promise<AgentConnection> {
    const target = resolveTarget(options);
    const connection = new AgentConnection(target, options.token, options.userAgent ?? "omnipanel-client");
    try {
      await connection.refreshInfo(options.timeoutMs ?? 10_000);
      checkProtocol(connection.info);
      return connection;
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  /** Call GetInfo again (e.g. after the agent restarted, or to read caller_scopes). */
  async refreshInfo(timeoutMs = 10_000): Promise<GetInfoResponse> {
    this.info = await this.agent.getInfo({}, { timeoutMs });
    return this.info;
  }

  /** The bearer token sent on every call from now on (undefined: none). */
  setToken(token: string | undefined): void {
    this.token = token || undefined;
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  /**
   * Run `act`, and when the agent answers CONFIRMATION_REQUIRED, ask
   * `prompt` and retry with the confirmation id for as long as the answer
   * is still pending and `prompt` says to go on. The act receives the call
   * options to pass to its call.
   */
  async confirmed<T>(act: (opts: CallOpts) => Promise<T>, prompt: ConfirmationPrompt): Promise<T> {
    try {
      return await act({});
    } catch (err) {
      const first = classify(err, this.label);
      const id = first.confirmationId;
      if (first.kind !== "confirmation-required" || id === undefined) throw first;
      let reason = first;
      for (;;) {
        if (!(await prompt(id, reason))) throw new OmniPanelError("cancelled", "Cancelled: the act was not confirmed.", { cause: reason });
        try {
          return await act({ confirmation: id });
        } catch (retryErr) {
          const again = classify(retryErr, this.label);
          if (again.kind !== "confirmation-pending") throw again;
          reason = again;
        }
      }
    }
  }

  close(): void {
    for (const client of this.clients) client.close();
  }

  private metadata(opts: CallOpts): Metadata {
    const metadata = new Metadata();
    if (this.token !== undefined) metadata.set("authorization", `Bearer ${this.token}`);
    if (opts.confirmation) metadata.set("omnipanel-confirmation", opts.confirmation);
    return metadata;
  }
}

/** Refuse an agent speaking another protocol version, saying which side to update. */
export function checkProtocol(info: GetInfoResponse): void {
  if (info.protocolVersion === PROTOCOL_VERSION) return;
  const side =
    info.protocolVersion > PROTOCOL_VERSION
      ? "update the OmniPanel extension"
      : "update OmniPanel (the agent) on the machine it runs on";
  throw new OmniPanelError(
    "incompatible",
    `OmniPanel agent ${info.version} speaks protocol ${info.protocolVersion}; this extension speaks ${PROTOCOL_VERSION}: ${side}.`,
  );
}
