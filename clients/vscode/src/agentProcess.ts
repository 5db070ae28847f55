// Starting the agent and the panel from VS Code. The agent: the systemd
// user unit when the package installed it (packaging/Packager.toml puts
// omnipanel-agent.service in /usr/lib/systemd/user), so it runs supervised
// as it would at login; else the `omnipanel.agentPath` program (or
// `omnipanel-agent` on PATH), detached so it outlives the window. The
// panel: `omnipanel-panel` beside the agent, else on PATH, like `omnipanel
// panel` does.

import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

export const AGENT_UNIT = "omnipanel-agent.service";

/** Run `systemctl --user ARGS` without blocking the extension host (a
 * unit's start may take seconds): its exit status and output. */
function systemctlUser(args: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile("systemctl", ["--user", ...args], { encoding: "utf8", timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ ok: err === null, output: `${stderr || stdout || (err?.message ?? "")}`.trim() }),
    );
  });
}

/** Whether the user unit is installed (`systemctl --user cat` finds it). */
export async function hasUserUnit(): Promise<boolean> {
  return (await systemctlUser(["cat", AGENT_UNIT], 10_000)).ok;
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
  if (agentPath.trim() === "" && (await hasUserUnit())) {
    const result = await systemctlUser(["start", AGENT_UNIT], 60_000);
    if (!result.ok) throw new Error(`systemctl --user start ${AGENT_UNIT} failed: ${result.output}`);
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
