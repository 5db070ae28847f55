// The Models tree's content in plain data: one node per provider when
// there are several, one item per model with its size, "loaded" and
// "default" in the description and icon, and a contextValue the menus in
// package.json match on. No `vscode` import (unit-tested under mocha).

import { formatBytes } from '../lm/modelInfo';

export interface ModelRow {
  name: string;
  provider: string;
  sizeBytes: number;
  parameterSize: string;
  quantizationLevel: string;
  isDefault: boolean;
}

/** What a loaded model holds in memory (ListRunningModels). */
export interface LoadedRow {
  name: string;
  provider: string;
  sizeBytes: number;
  sizeVramBytes: number;
}

/** A tree item's content; models.ts turns it into a vscode.TreeItem. */
export interface ModelNode {
  kind: 'provider' | 'model';
  id: string;
  label: string;
  description: string;
  tooltip: string;
  /** A codicon id. */
  icon: string;
  /** Matched by `view/item/context` menus: "omnipanel.model" plus flags (see modelNode). */
  contextValue: string;
  /** The model name the menu commands receive; "" for a provider. */
  model: string;
  provider: string;
  children: ModelNode[];
}

function loadedKey(provider: string, name: string): string {
  return `${provider || 'local'}\u0000${name}`;
}

/** One model's node. */
export function modelNode(model: ModelRow, loaded: LoadedRow | undefined): ModelNode {
  const provider = model.provider || 'local';
  const parts = [formatBytes(model.sizeBytes)];
  if (loaded) parts.push('loaded');
  if (model.isDefault) parts.push('default');
  const facts = [model.parameterSize, model.quantizationLevel].filter((f) => f !== '');
  const tooltipLines = [
    `${model.name}${facts.length ? ` (${facts.join(', ')})` : ''}`,
    `Size on disk: ${formatBytes(model.sizeBytes)}`,
  ];
  if (loaded) {
    tooltipLines.push(`Loaded: ${formatBytes(loaded.sizeBytes)} in memory, ${formatBytes(loaded.sizeVramBytes)} on the GPU`);
  }
  if (model.isDefault) tooltipLines.push('The default model');
  if (provider !== 'local') tooltipLines.push(`Provider: ${provider}`);
  // One word per fact, each with its negation, so menu `when` clauses
  // need only `=~` (e.g. "omnipanel.model unloaded notDefault local").
  const flags = ['omnipanel.model', loaded ? 'loaded' : 'unloaded', model.isDefault ? 'default' : 'notDefault',
    provider === 'local' ? 'local' : 'remote'];
  return {
    kind: 'model',
    id: `model:${provider}/${model.name}`,
    label: model.name,
    description: parts.join(' · '),
    tooltip: tooltipLines.join('\n'),
    icon: model.isDefault ? 'star-full' : loaded ? 'pass-filled' : 'symbol-misc',
    contextValue: flags.join(' '),
    model: model.name,
    provider,
    children: [],
  };
}

/**
 * The tree's top level. With only local models the models are the top
 * level; with models on several providers each provider is a folder.
 */
export function modelTree(models: readonly ModelRow[], loaded: readonly LoadedRow[]): ModelNode[] {
  const loadedByKey = new Map(loaded.map((l) => [loadedKey(l.provider, l.name), l]));
  const byProvider = new Map<string, ModelNode[]>();
  for (const model of models) {
    const provider = model.provider || 'local';
    const node = modelNode(model, loadedByKey.get(loadedKey(provider, model.name)));
    const list = byProvider.get(provider) ?? [];
    list.push(node);
    byProvider.set(provider, list);
  }
  for (const list of byProvider.values()) {
    list.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  }
  const providers = [...byProvider.keys()].sort((a, b) =>
    a === 'local' ? -1 : b === 'local' ? 1 : a < b ? -1 : a > b ? 1 : 0);
  if (providers.length <= 1) {
    return providers.length === 1 ? byProvider.get(providers[0]) ?? [] : [];
  }
  return providers.map((provider) => {
    const children = byProvider.get(provider) ?? [];
    return {
      kind: 'provider' as const,
      id: `provider:${provider}`,
      label: provider === 'local' ? 'Local' : provider,
      description: `${children.length} model${children.length === 1 ? '' : 's'}`,
      tooltip: provider === 'local' ? 'Models on the local Ollama' : `Models on provider "${provider}"`,
      icon: provider === 'local' ? 'vm' : 'remote',
      contextValue: 'omnipanel.provider',
      model: '',
      provider,
      children,
    };
  });
}
