// Starting the agent and the panel from VS Code. The agent: the systemd
// user unit when the package installed it (packaging/Packager.toml puts
// omnipanel-agent.service in /usr/lib/systemd/user), so it runs supervised
// as it would at login; else the `omnipanel.agentPath` program (or
// `omnipanel-agent` on PATH), detached so it outlives the window. The
// panel: `omnipanel-panel` beside the agent, else on PATH, like `omnipanel
// panel` does.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

export const AGENT_UNIT = "omnipanel-agent.service";

/** Whether the user unit is installed (`systemctl --user cat` finds it). */
export function hasUserUnit(): boolean {
  const result = spawnSync("systemctl", ["--user", "cat", AGENT_UNIT], { stdio: "ignore", timeout: 10_000 });
  return result.status === 0;
}

/** Start a detached program; resolves once it was spawned, rejects with a clear message when it cannot be. */
function spawnDetached(program: string, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { detached: true, stdio: "ignore" });
    child.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === "ENOENT"
            ? `${what} was not found (${program}). Install OmniPanel, or set its path in the setting omnipanel.agentPath.`
            : `Cannot start ${program}: ${err.message}`,
        ),
      ),
    );
    child.once("spawn", () => {
      child.unref();
      resolve();
    });
  });
}

/** Start the agent; says how it was started. */
export async function startAgent(agentPath: string): Promise<string> {
  if (agentPath.trim() === "" && hasUserUnit()) {
    const result = spawnSync("systemctl", ["--user", "start", AGENT_UNIT], { encoding: "utf8", timeout: 60_000 });
    if (result.status !== 0) throw new Error(`systemctl --user start ${AGENT_UNIT} failed: ${(result.stderr || result.stdout).trim()}`);
    return `started ${AGENT_UNIT}`;
  }
  const program = agentPath.trim() || "omnipanel-agent";
  await spawnDetached(program, [], "The OmniPanel agent");
  return `started ${program}`;
}

/** Open the tray's panel (it brings an open one to the front). */
export async function openPanel(agentPath: string): Promise<void> {
  const beside = agentPath.trim() === "" ? "" : join(dirname(agentPath.trim()), "omnipanel-panel");
  const program = beside !== "" && existsSync(beside) ? beside : "omnipanel-panel";
  await spawnDetached(program, [], "The OmniPanel panel (omnipanel-panel, from the tray package)");
}
