// One scenario's temporary world: a root folder holding the agent's XDG
// folders, code-server's and chromium's redirected HOME/XDG/TMPDIR, and a
// small real git repository opened as the project. Nothing a scenario runs
// writes outside this root.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

/** A fresh root for `scenario`, with every folder the processes need. */
function createSandbox(scenario) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `omnipanel-vscode-e2e-${scenario}-`));
  const at = (...parts) => path.join(root, ...parts);
  const dirs = {
    root,
    agent: {
      runtime: at('agent', 'runtime'),
      config: at('agent', 'config'),
      data: at('agent', 'data'),
      state: at('agent', 'state'),
      home: at('agent', 'home'),
      ollamaModels: at('agent', 'ollama-models'),
    },
    // code-server and chromium each get their own HOME: both write caches,
    // crash reports and keyrings under HOME/XDG unless told otherwise.
    vscode: homeDirs(at('vscode')),
    browser: homeDirs(at('browser')),
    extensions: at('vscode', 'extensions'),
    userData: at('vscode', 'user-data'),
    logs: at('logs'),
  };
  for (const dir of [
    ...Object.values(dirs.agent),
    ...Object.values(dirs.vscode),
    ...Object.values(dirs.browser),
    dirs.extensions,
    dirs.userData,
    dirs.logs,
  ]) {
    fs.mkdirSync(dir, { recursive: true });
  }
  for (const runtime of [dirs.agent.runtime, dirs.vscode.runtime, dirs.browser.runtime]) {
    fs.chmodSync(runtime, 0o700);
  }
  return dirs;
}

function homeDirs(base) {
  return {
    home: path.join(base, 'home'),
    config: path.join(base, 'xdg-config'),
    data: path.join(base, 'xdg-data'),
    cache: path.join(base, 'xdg-cache'),
    state: path.join(base, 'xdg-state'),
    runtime: path.join(base, 'xdg-runtime'),
    tmp: path.join(base, 'tmp'),
  };
}

/** Environment variables that point a process's HOME/XDG/TMPDIR at `dirs`. */
function homeEnv(dirs) {
  return {
    HOME: dirs.home,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    XDG_STATE_HOME: dirs.state,
    XDG_RUNTIME_DIR: dirs.runtime,
    TMPDIR: dirs.tmp,
  };
}

/**
 * The caller's environment without anything that would point a process at
 * the developer's own agent, VS Code or session bus.
 */
function cleanEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (
      name.startsWith('OMNIPANEL_') ||
      name.startsWith('XDG_') ||
      name.startsWith('VSCODE_') ||
      name.startsWith('npm_') ||
      ['OLLAMA_HOST', 'OLLAMA_MODELS', 'DBUS_SESSION_BUS_ADDRESS', 'DISPLAY', 'WAYLAND_DISPLAY'].includes(name)
    ) {
      delete env[name];
    }
  }
  return env;
}

/** The files of the project the scenarios open: small, real, committed. */
const PROJECT_FILES = {
  'README.md': '# demo-project\n\nA tiny project the OmniPanel VS Code e2e test opens.\n',
  'src/greet.py':
    'def greet(name):\n    """Return a friendly greeting for name."""\n    return f"Hello, {name}!"\n\n\nif __name__ == "__main__":\n    print(greet("world"))\n',
  '.gitignore': '__pycache__/\n',
};

/**
 * A git repository with PROJECT_FILES and one commit, under the agent's HOME
 * (the agent lets tokens reach projects under the home by default).
 */
function createProject(dirs) {
  const project = path.join(dirs.agent.home, 'demo-project');
  for (const [name, text] of Object.entries(PROJECT_FILES)) {
    const file = path.join(project, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  const git = (...args) =>
    execFileSync('git', args, {
      cwd: project,
      env: {
        ...cleanEnv(),
        ...homeEnv(dirs.vscode),
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: 'E2E Test',
        GIT_AUTHOR_EMAIL: 'e2e@example.invalid',
        GIT_COMMITTER_NAME: 'E2E Test',
        GIT_COMMITTER_EMAIL: 'e2e@example.invalid',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  git('init', '--quiet', '--initial-branch=main');
  git('add', '.');
  git('commit', '--quiet', '-m', 'A tiny project for the e2e test');
  return project;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

module.exports = { createSandbox, createProject, homeEnv, cleanEnv, freePort, PROJECT_FILES };
