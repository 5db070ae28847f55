// Entry point of the VS Code extension's end-to-end test: runs the
// scenarios (each in its own sandbox with its own agent, code-server and
// browser) against a built .vsix and prints one line per scenario with its
// time; exit status 1 when any failed. scripts/lib/vscode-e2e.sh calls it
// with every path; `node run.js --help` lists the options.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { checkBinDir } = require('./agent');
const { runScenario } = require('./scenario');

const SCENARIOS = ['access', 'pull', 'ask', 'chat', 'conversations'].map((name) => require(`./scenarios/${name}`));

const USAGE = `usage: node run.js --vsix FILE --code-server LAUNCHER [options] [SCENARIO...]

  --vsix FILE            the extension to test (omnipanel-<version>.vsix)
  --code-server FILE     code-server's launcher (node_modules/.bin/code-server)
  --bin-dir DIR          omnipanel-agent, omnipanel and fake-ollama (default: $OMNIPANEL_BIN_DIR)
  --chromium FILE        the browser (default: /usr/bin/chromium)
  --out DIR              where screenshots go (default: target/vscode-e2e)
  --keep                 keep each scenario's sandbox (logs, profile) after it passes
  SCENARIO...            run only these (${SCENARIOS.map((s) => s.name).join(', ')})
`;

function parseArgs(argv) {
  const options = {
    binDir: process.env.OMNIPANEL_BIN_DIR,
    chromium: '/usr/bin/chromium',
    out: path.resolve(__dirname, '../../../target/vscode-e2e'),
    keep: false,
    only: [],
  };
  const valued = { '--vsix': 'vsix', '--code-server': 'codeServer', '--bin-dir': 'binDir', '--chromium': 'chromium', '--out': 'out' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (arg === '--keep') {
      options.keep = true;
    } else if (valued[arg]) {
      if (i + 1 >= argv.length) {
        fail(`${arg} needs a value`);
      }
      options[valued[arg]] = path.resolve(argv[++i]);
    } else if (arg.startsWith('-')) {
      fail(`unknown option ${arg}`);
    } else if (SCENARIOS.some((s) => s.name === arg)) {
      options.only.push(arg);
    } else {
      fail(`unknown scenario "${arg}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
    }
  }
  for (const [key, flag] of [['vsix', '--vsix'], ['codeServer', '--code-server'], ['binDir', '--bin-dir or OMNIPANEL_BIN_DIR']]) {
    if (!options[key]) {
      fail(`missing ${flag}`);
    }
  }
  for (const [file, what] of [[options.vsix, 'the .vsix'], [options.codeServer, 'code-server'], [options.chromium, 'chromium']]) {
    if (!fs.existsSync(file)) {
      fail(`${what} is not at ${file}`);
    }
  }
  try {
    checkBinDir(options.binDir);
  } catch (err) {
    fail(err.message);
  }
  return options;
}

function fail(message) {
  process.stderr.write(`e2e: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) {
    fail(`code-server 4.139 needs Node 24; this is Node ${process.versions.node} (run with the Node from the tools cache)`);
  }
  const selected = SCENARIOS.filter((s) => options.only.length === 0 || options.only.includes(s.name));
  const started = Date.now();
  const results = [];
  for (const scenario of selected) {
    process.stderr.write(`e2e: ${scenario.name} …\n`);
    const result = await runScenario(scenario, options);
    process.stderr.write(`e2e: ${result.name} ${result.ok ? 'passed' : 'FAILED'} in ${result.seconds.toFixed(1)} s\n`);
    results.push(result);
  }
  const failed = results.filter((r) => !r.ok);
  const total = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(
    `e2e: ${results.length - failed.length} of ${results.length} scenarios passed in ${total} s` +
      `${failed.length ? ` (failed: ${failed.map((r) => r.name).join(', ')})` : ''}; screenshots in ${options.out}\n`,
  );
  process.exit(failed.length ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`e2e: ${err.stack || err}\n`);
  process.exit(1);
});
