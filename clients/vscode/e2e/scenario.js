// The life of one scenario: its sandbox, project, agent, code-server with
// the extension and the workbench page set up; the scenario's steps run;
// everything stopped again (process groups, browser), also on failure, when
// a screenshot and the paths of every log are printed instead and the
// sandbox is kept for reading.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { startAgent, waitForPendingRequest, approve } = require('./agent');
const { installExtension, startCodeServer, extensionHostLogs } = require('./codeServer');
const { createSandbox, createProject } = require('./sandbox');
const { openWorkbench } = require('./workbench');

/**
 * Runs `scenario` ({name, fakeEnv, approveAccess, run(world)}) with the
 * options of the run; resolves to {name, ok, seconds, screenshots, error}.
 */
async function runScenario(scenario, options) {
  const started = Date.now();
  // Screenshots of an earlier run would pass for this run's.
  if (fs.existsSync(options.out)) {
    for (const name of fs.readdirSync(options.out)) {
      if (name.startsWith(`${scenario.name}-`) && name.endsWith('.png')) {
        fs.rmSync(path.join(options.out, name));
      }
    }
  }
  const dirs = createSandbox(scenario.name);
  const world = { dirs, screenshots: [] };
  const stops = [];
  let error;
  try {
    world.project = createProject(dirs);
    world.agent = await startAgent(dirs, options.binDir, scenario.fakeEnv || {});
    stops.push(() => world.agent.process.stop());
    if (scenario.setup) {
      await scenario.setup(world.agent);
    }
    await installExtension(options.codeServer, dirs, options.vsix, world.agent.socket);
    world.server = await startCodeServer(options.codeServer, dirs, world.project, world.agent.socket);
    stops.push(() => world.server.process.stop());
    world.workbench = await openWorkbench({
      chromiumPath: options.chromium,
      dirs,
      url: world.server.url,
      scenario: scenario.name,
      outDir: options.out,
    });
    stops.push(() => world.workbench.close());
    if (scenario.approveAccess) {
      await approveAccess(world);
    }
    await scenario.run(world);
  } catch (err) {
    error = err;
    if (world.workbench) {
      await world.workbench.screenshot('failure').catch(() => {});
    }
  }
  for (const stop of stops.reverse()) {
    await stop().catch((err) => process.stderr.write(`e2e: stopping failed: ${err.message}\n`));
  }
  const result = {
    name: scenario.name,
    ok: !error,
    seconds: (Date.now() - started) / 1000,
    screenshots: world.workbench ? world.workbench.screenshots : [],
    error,
  };
  if (error) {
    reportFailure(result, world, dirs);
  } else if (!options.keep) {
    fs.rmSync(dirs.root, { recursive: true, force: true });
  }
  return result;
}

/**
 * Admission as the user does it: the extension's request shows up in
 * `omnipanel clients pending`, the user approves it with the CLI, and the
 * extension goes on to show the agent's state.
 */
async function approveAccess(world) {
  const request = await waitForPendingRequest(world.agent);
  await approve(world.agent, request);
  await world.workbench.waitForStatus(/^OmniPanel: Ollama /, 'the Ollama state after approval');
  // The approval message has done its job; the scenario's own toasts
  // should be the only ones in its screenshots.
  await world.workbench.clearNotifications();
}

function reportFailure(result, world, dirs) {
  const lines = [`e2e: scenario ${result.name} FAILED after ${result.seconds.toFixed(1)} s: ${result.error.stack || result.error}`];
  for (const shot of result.screenshots) {
    lines.push(`  screenshot: ${shot}`);
  }
  lines.push(`  sandbox kept: ${dirs.root}`);
  lines.push(`  code-server log: ${world.server ? world.server.process.logPath : `${dirs.logs}/code-server.log (not started)`}`);
  for (const log of world.agent ? world.agent.logPaths : []) {
    lines.push(`  agent log: ${log}`);
  }
  const hostLogs = extensionHostLogs(dirs);
  if (hostLogs.length === 0) {
    lines.push(`  extension host logs: none under ${dirs.userData}/logs`);
  }
  for (const log of hostLogs) {
    lines.push(`  extension host log: ${log}`);
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}

module.exports = { runScenario };
