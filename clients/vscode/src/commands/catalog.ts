// The extension's commands as the contract names them: id and palette title
// (shown as "OmniPanel: <title>"). package.json's contributes.commands must
// list the same; a test compares them. No vscode import: tests read it.

export interface CommandInfo {
  id: string;
  title: string;
  /** Listed in Show Actions. */
  inActions: boolean;
}

export const COMMANDS: readonly CommandInfo[] = [
  { id: "omnipanel.showActions", title: "Show Actions", inActions: false },
  { id: "omnipanel.pullModel", title: "Pull Model…", inActions: true },
  { id: "omnipanel.setDefaultModel", title: "Set Default Model…", inActions: true },
  { id: "omnipanel.loadModel", title: "Load Model…", inActions: true },
  { id: "omnipanel.unloadModel", title: "Unload Model…", inActions: true },
  { id: "omnipanel.deleteModel", title: "Delete Model…", inActions: true },
  { id: "omnipanel.startOllama", title: "Start Ollama", inActions: true },
  { id: "omnipanel.stopOllama", title: "Stop Ollama", inActions: true },
  { id: "omnipanel.restartOllama", title: "Restart Ollama", inActions: true },
  { id: "omnipanel.askAboutSelection", title: "Ask About Selection…", inActions: true },
  { id: "omnipanel.askAboutFile", title: "Ask About File…", inActions: true },
  { id: "omnipanel.showAlerts", title: "Show Alerts", inActions: true },
  { id: "omnipanel.showLog", title: "Show Agent Log", inActions: true },
  { id: "omnipanel.openPanel", title: "Open Panel", inActions: true },
  { id: "omnipanel.openChat", title: "Open Chat", inActions: true },
  { id: "omnipanel.requestAccess", title: "Request Access", inActions: true },
  { id: "omnipanel.setRemoteToken", title: "Set Remote Token…", inActions: true },
  { id: "omnipanel.startAgent", title: "Start Agent", inActions: true },
  { id: "omnipanel.openProject", title: "Open This Folder as Project", inActions: true },
];
