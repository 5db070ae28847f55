// Unit tests of views/modelItems.ts: what each model shows in the Models
// tree (size, loaded, default), the menu context values and the grouping
// by provider.

import { strict as assert } from 'node:assert';
import { ModelRow, modelTree } from '../../views/modelItems';

const row = (over: Partial<ModelRow>): ModelRow => ({
  name: 'tinyllama:latest', provider: 'local', sizeBytes: 637_000_000, parameterSize: '1.1B', quantizationLevel: 'Q4_0',
  isDefault: false, ...over,
});

describe('models tree', () => {
  it('lists local models flat with size, loaded and default', () => {
    const nodes = modelTree(
      [row({ name: 'qwen2.5:0.5b', isDefault: true, sizeBytes: 398_000_000 }), row({})],
      [{ name: 'tinyllama:latest', provider: 'local', sizeBytes: 900_000_000, sizeVramBytes: 0 }],
    );
    assert.deepEqual(nodes.map((n) => [n.label, n.description, n.icon]), [
      ['qwen2.5:0.5b', '398 MB · default', 'star-full'],
      ['tinyllama:latest', '637 MB · loaded', 'pass-filled'],
    ]);
    assert.equal(nodes[0].contextValue, 'omnipanel.model unloaded default local');
    assert.equal(nodes[1].contextValue, 'omnipanel.model loaded notDefault local');
    assert.equal(nodes[1].model, 'tinyllama:latest');
    assert.match(nodes[1].tooltip, /Loaded: 900 MB in memory/);
  });

  it('groups by provider when there are several', () => {
    const nodes = modelTree([row({ provider: 'gpu-box', name: 'big' }), row({})],
      [{ name: 'big', provider: 'local', sizeBytes: 1, sizeVramBytes: 1 }]);
    assert.deepEqual(nodes.map((n) => [n.kind, n.label, n.description]), [
      ['provider', 'Local', '1 model'], ['provider', 'gpu-box', '1 model'],
    ]);
    // "big" is loaded on local, not on gpu-box.
    assert.equal(nodes[1].children[0].description, '637 MB');
    assert.equal(nodes[1].children[0].contextValue, 'omnipanel.model unloaded notDefault remote');
  });

  it('is empty without models (the welcome view shows then)', () => {
    assert.deepEqual(modelTree([], []), []);
  });
});
