// The client module's public face: connect to the OmniPanel agent, get
// admitted, call its services, follow its events. Nothing here imports
// `vscode`, so it runs (and is tested) on plain Node.

export { AgentConnection, checkProtocol, PROTOCOL_VERSION, type ConfirmationPrompt, type ConnectOptions } from "./connection";
export { ensureAccess, holdsScopes, MemoryTokenStore, requestAccess, type AccessRequestOptions, type Admission, type TokenStore } from "./admission";
export { classify, errorDetails, OmniPanelError, type ErrorDetails, type ErrorKind } from "./errors";
export { EventWatcher, type EventWatcherEvents, type EventWatcherOptions } from "./events";
export type { CallOpts, CallStream, Service } from "./services";
export { defaultSocketPath, resolveTarget, targetLabel, type Target, type TargetSettings } from "./target";
