// Unit tests of lm/modelInfo.ts: model ids, the model descriptions VS Code
// shows in its chat model picker, message conversion and token estimates.

import { strict as assert } from 'node:assert';
import {
  AgentModelSummary, estimateTokens, formatBytes, modelId, parseModelId, roleName, sortModels, toAgentMessages,
  toChatInformation,
} from '../../lm/modelInfo';

const model = (over: Partial<AgentModelSummary>): AgentModelSummary => ({
  name: 'llama3.2:1b', provider: 'local', sizeBytes: 1_300_000_000, family: 'llama', parameterSize: '1.2B',
  quantizationLevel: 'Q8_0', digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72', isDefault: false,
  ...over,
});

describe('language model information', () => {
  it('round-trips ids, also for namespaced model names', () => {
    for (const [provider, name] of [['local', 'llama3.2:1b'], ['gpu-box', 'hf.co/org/model:Q4'], ['local', 'user/model']]) {
      assert.deepEqual(parseModelId(modelId(provider, name)), { provider, name });
    }
    assert.deepEqual(parseModelId('llama3.2:1b'), { provider: 'local', name: 'llama3.2:1b' });
    assert.deepEqual(parseModelId('hf.co/org/m'), { provider: 'local', name: 'hf.co/org/m' });
  });

  it('describes a model for the picker', () => {
    const info = toChatInformation(model({ isDefault: true }), { contextLength: 131072, capabilities: ['completion'] });
    assert.equal(info.id, 'local/llama3.2:1b');
    assert.equal(info.name, 'llama3.2:1b');
    assert.equal(info.family, 'llama');
    assert.equal(info.version, 'a80c4f17acd5');
    assert.equal(info.detail, 'OmniPanel · default');
    assert.equal(info.maxInputTokens, 131072);
    assert.equal(info.maxOutputTokens, 4096);
    // Tool-capable, or VS Code's chat panel hides the model in Agent mode.
    assert.deepEqual(info.capabilities, { imageInput: false, toolCalling: true });
    assert.match(info.tooltip ?? '', /1\.2B, Q8_0, 1\.3 GB/);
  });

  it('names a remote provider and falls back without details', () => {
    const info = toChatInformation(model({ provider: 'gpu-box', family: '', digest: '', name: 'qwen2.5' }));
    assert.equal(info.id, 'gpu-box/qwen2.5');
    assert.equal(info.detail, 'OmniPanel · gpu-box');
    assert.equal(info.family, 'ollama');
    assert.equal(info.version, 'latest');
    assert.equal(info.maxInputTokens, 4096);
  });

  it('says when a model takes images', () => {
    assert.equal(toChatInformation(model({}), { contextLength: 0, capabilities: ['vision'] }).capabilities.imageInput, true);
  });

  it('lists the default first, then local, then other providers by name', () => {
    const sorted = sortModels([
      model({ name: 'b', provider: 'zz' }), model({ name: 'z' }), model({ name: 'a', provider: 'aa' }),
      model({ name: 'd', isDefault: true, provider: 'zz' }), model({ name: 'c' }),
    ]);
    assert.deepEqual(sorted.map((m) => `${m.provider}/${m.name}`), ['zz/d', 'local/c', 'local/z', 'aa/a', 'zz/b']);
  });

  it('merges consecutive parts of one role and drops empty ones', () => {
    assert.deepEqual(toAgentMessages([
      { role: 'system', text: 'Be brief.' },
      { role: 'user', text: 'a' }, { role: 'user', text: 'b' }, { role: 'assistant', text: ' ' },
      { role: 'assistant', text: 'c' },
    ]), [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'a\n\nb' }, { role: 'assistant', content: 'c' }]);
  });

  it('maps VS Code roles', () => {
    assert.deepEqual([1, 2, 3, 42].map(roleName), ['user', 'assistant', 'system', 'user']);
  });

  it('estimates tokens at about four characters each', () => {
    assert.equal(estimateTokens(''), 0);
    assert.equal(estimateTokens('abc'), 1);
    assert.equal(estimateTokens('x'.repeat(400)), 100);
  });

  it('formats sizes', () => {
    assert.deepEqual([0, 999, 1000, 1_300_000_000, 123_400_000_000].map(formatBytes), ['0 B', '999 B', '1.0 KB', '1.3 GB', '123 GB']);
  });
});
