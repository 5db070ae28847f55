// Child processes of a scenario (agent, code-server), each in its own
// process group so that stopping one also stops what it started (the fake
// Ollama, code-server's extension host), and nothing outlives a run, also
// when a scenario fails half way.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');

/**
 * Starts `program` with `args` in a new process group, stdout and stderr
 * appended to `logPath`. Returns a handle with `exited` (a promise of the
 * exit code or signal) and `stop()`.
 */
function startGroup(name, program, args, { env, cwd, logPath }) {
  const log = fs.openSync(logPath, 'a');
  const child = spawn(program, args, {
    env,
    cwd,
    detached: true,
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  let exit = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exit = signal ? `signal ${signal}` : `status ${code}`;
      resolve(exit);
    });
    child.on('error', (err) => {
      exit = `failed to start: ${err.message}`;
      resolve(exit);
    });
  });
  return {
    name,
    pid: child.pid,
    logPath,
    exited,
    /** How it ended, or null while it runs. */
    exitStatus: () => exit,
    /** SIGTERM to the whole group, SIGKILL to what is left after 10 s. */
    async stop() {
      if (child.pid === undefined) {
        return;
      }
      signalGroup(child.pid, 'SIGTERM');
      const timer = new Promise((resolve) => setTimeout(resolve, 10_000, 'timeout'));
      const outcome = await Promise.race([exited, timer]);
      // The leader may be gone while members of its group still run (a
      // child that ignored SIGTERM): the group gets SIGKILL either way.
      signalGroup(child.pid, 'SIGKILL');
      if (outcome === 'timeout') {
        process.stderr.write(`e2e: ${name} (pid ${child.pid}) ignored SIGTERM for 10 s; killed\n`);
      }
    },
  };
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if (err.code !== 'ESRCH') {
      throw err;
    }
  }
}

module.exports = { startGroup };
