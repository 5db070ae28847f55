// Condition waits: every check in the harness waits for a state to be
// reached, bounded by a generous deadline that only turns a hang into a
// failure. Nothing here sleeps a fixed time and then asserts.
'use strict';

/** The bound for any single wait; speed is never what a check asserts. */
const PATIENCE_MS = 60_000;

/**
 * Calls `probe` until it returns a value other than undefined/false/null,
 * and returns that value. `what` names the awaited state in the error; the
 * last probe error or value is included so a timeout says what was seen.
 */
async function waitFor(what, probe, { timeoutMs = PATIENCE_MS, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false && value !== null) {
        return value;
      }
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (last seen: ${seen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

module.exports = { PATIENCE_MS, waitFor };
