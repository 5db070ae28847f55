// The real OmniPanel agent of a scenario, started from $OMNIPANEL_BIN_DIR in
// the sandbox's XDG folders with the Ollama test double (fake-ollama)
// configured, as tests/lib.rs does for the Rust end-to-end tests; and the
// real `omnipanel` CLI run against it (the user's side: approving access,
// listing models).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');

const { startGroup } = require('./processes');
const { cleanEnv, freePort } = require('./sandbox');
const { waitFor } = require('./wait');

/** The binaries every scenario needs in the bin folder. */
const BINARIES = ['omnipanel-agent', 'omnipanel', 'fake-ollama'];

function checkBinDir(binDir) {
  for (const name of BINARIES) {
    const file = path.join(binDir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      throw new Error(`${file} is missing or not executable: build the binaries first (cargo build --workspace --bins) or point --bin-dir/OMNIPANEL_BIN_DIR at them`);
    }
  }
}

/**
 * Starts the agent in `dirs.agent` with fake-ollama as its Ollama, and waits
 * until it answers GetInfo. `fakeEnv` adds the fake's switches (it inherits
 * the agent's environment).
 */
async function startAgent(dirs, binDir, fakeEnv = {}) {
  const ollamaPort = await freePort();
  // Never adopted: OLLAMA_HOST for the agent itself points at a port nothing
  // listens on, so a real Ollama on the developer's machine stays out.
  const idlePort = await freePort();
  const a = dirs.agent;
  const configDir = path.join(a.config, 'omnipanel');
  fs.mkdirSync(configDir, { recursive: true });
  fs.writeFileSync(
    path.join(configDir, 'config.toml'),
    [
      '[ollama]',
      `binary = ${JSON.stringify(path.join(binDir, 'fake-ollama'))}`,
      `host = "127.0.0.1:${ollamaPort}"`,
      `registry = "http://127.0.0.1:${ollamaPort}"`,
      `models_dir = ${JSON.stringify(a.ollamaModels)}`,
      'health_interval = "200ms"',
      'health_timeout = "1s"',
      'stop_timeout = "5s"',
      // The machine's own alerts (a full disk, a busy CPU on a loaded CI
      // box) would change the status bar text the scenarios read; the
      // alert part of that text is covered by the extension's unit tests.
      '[system]',
      'alerts = false',
      '',
    ].join('\n'),
  );
  const env = {
    ...agentEnv(dirs),
    OLLAMA_HOST: `127.0.0.1:${idlePort}`,
    ...fakeEnv,
  };
  const socket = path.join(a.runtime, 'omnipanel', 'agent.sock');
  const process_ = startGroup('omnipanel-agent', path.join(binDir, 'omnipanel-agent'), [], {
    env,
    cwd: a.home,
    logPath: path.join(dirs.logs, 'agent-stderr.log'),
  });
  const agent = {
    socket,
    process: process_,
    binDir,
    dirs,
    logPaths: [path.join(a.state, 'omnipanel', 'logs', 'agent.log'), process_.logPath],
    /**
     * Runs the CLI with `args` (and `input` on its stdin, which is closed
     * either way); resolves to stdout, rejects with stderr.
     */
    cli: (args, input) => runCli(binDir, dirs, args, input),
    /** Runs the CLI with --json and parses its output. */
    cliJson: async (args) => JSON.parse(await runCli(binDir, dirs, [...args, '--json'])),
  };
  await waitFor('the agent to answer GetInfo on its socket', async () => {
    if (process_.exitStatus()) {
      throw new Error(`the agent exited (${process_.exitStatus()}) before answering; see ${process_.logPath}`);
    }
    const info = await agent.cliJson(['status']).catch(() => undefined);
    return info && info.protocolVersion !== undefined;
  });
  // The agent starts Ollama as it starts; calls that need it (a pull) are
  // refused while it is STARTING, so scenarios begin once it runs.
  await waitFor('the agent to report Ollama running (omnipanel ollama status)', async () => {
    const { status = {} } = await agent.cliJson(['ollama', 'status']);
    return status.state === 'SERVER_STATE_RUNNING';
  });
  return agent;
}

/** The agent's (and its CLI's) environment: the sandbox's XDG folders. */
function agentEnv(dirs) {
  const a = dirs.agent;
  return {
    ...cleanEnv(),
    XDG_RUNTIME_DIR: a.runtime,
    XDG_CONFIG_HOME: a.config,
    XDG_DATA_HOME: a.data,
    XDG_STATE_HOME: a.state,
    HOME: a.home,
    OLLAMA_MODELS: a.ollamaModels,
  };
}

function runCli(binDir, dirs, args, input = '') {
  return new Promise((resolve, reject) => {
    const child = execFile(path.join(binDir, 'omnipanel'), args, { env: agentEnv(dirs), timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`omnipanel ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      } else {
        resolve(stdout);
      }
    });
    // Commands that read stdin (`chat` reads one message a line) see EOF.
    // One that exits without reading makes the write fail (EPIPE): its
    // exit status and stderr say what happened, not the pipe.
    child.stdin.on('error', () => {});
    if (input === '') {
      child.stdin.end();
    } else {
      child.stdin.end(input);
    }
  });
}

/**
 * Waits for the pending access request of the client named `clientName`
 * (the extension names itself "VS Code") and returns it as
 * `omnipanel clients pending --json` shows it.
 */
async function waitForPendingRequest(agent, clientName = 'VS Code') {
  return waitFor(`a pending access request from "${clientName}" (omnipanel clients pending)`, async () => {
    const { requests = [] } = await agent.cliJson(['clients', 'pending']);
    return requests.find((r) => r.clientName === clientName);
  });
}

/** Approves `request` as the user would from a terminal. */
async function approve(agent, request) {
  // `clients approve` takes the request's id; the code is what the user
  // compares with the one the extension shows.
  await agent.cli(['clients', 'approve', request.id]);
}

/** The names of the installed models (`omnipanel models ls --json`). */
async function installedModels(agent) {
  const listing = await agent.cliJson(['models', 'ls']);
  return (listing.models || []).map((m) => m.name);
}

module.exports = { checkBinDir, startAgent, waitForPendingRequest, approve, installedModels };
