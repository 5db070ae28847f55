// Coalesced: a burst of reload requests costs one run in flight plus one.

import { strict as assert } from 'node:assert';
import { Coalesced } from '../../views/coalesced';

describe('Coalesced', () => {
  it('runs once more after a burst, never once per request', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const reload = new Coalesced(async () => {
      runs += 1;
      if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = reload.run();
    const during = [reload.run(), reload.run(), reload.run()];
    release();
    await Promise.all([first, ...during]);
    assert.equal(runs, 2);
    await reload.run();
    assert.equal(runs, 3);
  });
});
