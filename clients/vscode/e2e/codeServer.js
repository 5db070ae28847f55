// code-server (VS Code 1.139 served to a browser, with the real Node
// extension host) for one scenario: a fresh profile and extensions folder
// with the built .vsix installed, quiet user settings, OMNIPANEL_SOCKET
// pointing at the scenario's agent, listening on a free port of 127.0.0.1.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');

const { startGroup } = require('./processes');
const { cleanEnv, homeEnv, freePort } = require('./sandbox');
const { waitFor } = require('./wait');

/** The extension's id in VS Code: publisher.name from the contract. */
const EXTENSION_ID = 'omnipanel.omnipanel';

/**
 * User settings: the contract's `openFolderAsProject` answered in advance,
 * and everything that would put a page, a prompt or a network call between
 * the test and the workbench switched off.
 */
const USER_SETTINGS = {
  'omnipanel.openFolderAsProject': 'always',
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'git.openRepositoryInParentFolders': 'never',
  'git.autofetch': false,
  'editor.accessibilitySupport': 'off',
  'window.commandCenter': false,
  // The built-in chat panel opens on the right of a fresh profile; the
  // chat scenario opens it itself.
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/** code-server's environment: its own HOME/XDG/TMPDIR, Node 24 first on PATH. */
function serverEnv(dirs, socket) {
  const env = { ...cleanEnv(), ...homeEnv(dirs.vscode) };
  env.PATH = `${path.dirname(process.execPath)}:${env.PATH || '/usr/bin:/bin'}`;
  env.OMNIPANEL_SOCKET = socket;
  return env;
}

function commonArgs(dirs) {
  return [
    '--config', path.join(dirs.vscode.config, 'code-server.yaml'),
    '--extensions-dir', dirs.extensions,
    '--user-data-dir', dirs.userData,
  ];
}

/** Installs `vsix` into the scenario's fresh extensions folder. */
async function installExtension(launcher, dirs, vsix, socket) {
  fs.writeFileSync(path.join(dirs.vscode.config, 'code-server.yaml'), 'auth: none\ncert: false\n');
  const userDir = path.join(dirs.userData, 'User');
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(path.join(userDir, 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  const output = await new Promise((resolve, reject) => {
    // code-server's launcher is a node script: run it with this Node (24).
    execFile(
      process.execPath,
      [launcher, ...commonArgs(dirs), '--install-extension', vsix],
      { env: serverEnv(dirs, socket), timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`code-server --install-extension ${vsix} failed: ${(stderr || stdout).trim() || err.message}`));
        } else {
          resolve(stdout + stderr);
        }
      },
    );
  });
  const installed = fs.readdirSync(dirs.extensions).filter((name) => name.startsWith(`${EXTENSION_ID}-`));
  if (installed.length !== 1) {
    throw new Error(`installing ${vsix} left no ${EXTENSION_ID}-* folder in ${dirs.extensions}; code-server said:\n${output}`);
  }
}

/** Starts code-server on `folder` and waits until /healthz answers. */
async function startCodeServer(launcher, dirs, folder, socket) {
  const port = await freePort();
  const server = startGroup(
    'code-server',
    process.execPath,
    [
      launcher,
      ...commonArgs(dirs),
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      folder,
    ],
    { env: serverEnv(dirs, socket), cwd: folder, logPath: path.join(dirs.logs, 'code-server.log') },
  );
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(`code-server to answer ${url}healthz`, async () => {
    if (server.exitStatus()) {
      throw new Error(`code-server exited (${server.exitStatus()}); see ${server.logPath}`);
    }
    const response = await fetch(`${url}healthz`).catch(() => undefined);
    return response && response.ok;
  });
  return { url, process: server };
}

/**
 * The extension host's log and the logs the extension itself writes (a log
 * output channel lands in a folder named after the extension), for the
 * failure report; the built-in extensions' logs are left out.
 */
function extensionHostLogs(dirs) {
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else if (/^(remote)?exthost\.log$/i.test(entry.name) || (path.relative(logsDir, full).toLowerCase().includes('omnipanel') && entry.name.endsWith('.log'))) {
        found.push(full);
      }
    }
  };
  const logsDir = path.join(dirs.userData, 'logs');
  if (fs.existsSync(logsDir)) {
    walk(logsDir);
  }
  return found;
}

module.exports = { EXTENSION_ID, installExtension, startCodeServer, extensionHostLogs };
