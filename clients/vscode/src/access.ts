// The access UX: the token store on VS Code's SecretStorage (one secret per
// agent, keyed by its socket path or address), and what the user sees
// while the agent decides: the code to compare, and a "Request again"
// action when the request was denied or expired.

import * as vscode from "vscode";
import { ensureAccess, type AgentConnection, type TokenStore } from "./client";
import { Scope } from "./gen/omnipanel/v1/access";

const SECRET_PREFIX = "omnipanel.token:";

/** Tokens in VS Code's secret storage (the OS keyring where there is one). */
export class SecretTokenStore implements TokenStore {
  constructor(private readonly secrets: vscode.SecretStorage) {}
  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.secrets.get(SECRET_PREFIX + key));
  }
  set(key: string, token: string): Promise<void> {
    return Promise.resolve(this.secrets.store(SECRET_PREFIX + key, token));
  }
  delete(key: string): Promise<void> {
    return Promise.resolve(this.secrets.delete(SECRET_PREFIX + key));
  }
}

export const CLIENT_NAME = "VS Code";
export const WANTED_SCOPES = [Scope.SCOPE_READ, Scope.SCOPE_WRITE, Scope.SCOPE_INFER];

/**
 * Make the connection admitted (stored token, else the admission flow),
 * calling `onWaiting` with the code while the user decides. Errors are the
 * client's (kind "access-refused" when denied or expired).
 */
export async function admit(
  connection: AgentConnection,
  store: TokenStore,
  onWaiting: (code: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const folders = vscode.workspace.workspaceFolders?.filter((folder) => folder.uri.scheme === "file") ?? [];
  await ensureAccess(connection, store, {
    clientName: CLIENT_NAME,
    scopes: WANTED_SCOPES,
    // Empty asks for every project in the user's project roots; an open
    // folder outside them would be refused, so name none.
    projects: [],
    reason:
      folders.length > 0
        ? `VS Code extension (workspace ${folders.map((folder) => folder.name).join(", ")})`
        : "VS Code extension",
    signal,
    onPending: (code, request) => {
      onWaiting(code);
      void vscode.window.showInformationMessage(
        `OmniPanel: approve access for VS Code with code ${code} (tray, panel, or: omnipanel clients approve ${request.id})`,
      );
    },
  });
}

/** Tell the user the request was refused, offering to ask again. */
export async function offerRequestAgain(message: string): Promise<boolean> {
  const again = "Request again";
  const choice = await vscode.window.showWarningMessage(`OmniPanel: ${message}`, again);
  return choice === again;
}
