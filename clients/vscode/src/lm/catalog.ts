// The agent's installed models across every provider, as the language
// model provider and the chat view's model picker list them: ListProviders,
// then ListModels per provider (a provider that does not answer is left
// out, so a remote box being down never hides the local models), with
// ShowModel's context length and capabilities cached per digest. No
// `vscode` import.

import type { AgentConnection } from '../client';
import type { Model } from '../gen/omnipanel/v1/models';
import { AgentModelDetails, AgentModelSummary } from './modelInfo';

/** Converts the generated Model (bigint sizes) to the plain summary. */
export function summarize(model: Model, provider: string): AgentModelSummary {
  return {
    name: model.name,
    provider: model.provider || provider || 'local',
    sizeBytes: Number(model.sizeBytes),
    family: model.family,
    parameterSize: model.parameterSize,
    quantizationLevel: model.quantizationLevel,
    digest: model.digest,
    isDefault: model.isDefault,
  };
}

export interface CatalogResult {
  models: AgentModelSummary[];
  /** Providers that failed, with why (shown in tooltips and logs). */
  failures: { provider: string; message: string }[];
}

/** Every installed model on every provider. Throws only when ListProviders fails. */
export async function listAllModels(connection: AgentConnection, signal?: AbortSignal): Promise<CatalogResult> {
  const { providers } = await connection.models.listProviders({}, { signal, timeoutMs: 30_000 });
  const names = providers.length > 0 ? providers.map((p) => p.name) : ['local'];
  const results = await Promise.allSettled(
    names.map((provider) => connection.models.listModels({ provider }, { signal, timeoutMs: 30_000 })),
  );
  const models: AgentModelSummary[] = [];
  const failures: CatalogResult['failures'] = [];
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') {
      models.push(...result.value.models.map((m) => summarize(m, names[i])));
    } else {
      failures.push({ provider: names[i], message: String((result.reason as Error)?.message ?? result.reason) });
    }
  });
  return { models, failures };
}

/**
 * ShowModel answers per model, cached by provider + digest: the details of
 * a given digest never change, and the picker asks for every model.
 */
export class ModelDetailsCache {
  private readonly cache = new Map<string, AgentModelDetails>();

  async get(connection: AgentConnection, model: AgentModelSummary, signal?: AbortSignal): Promise<AgentModelDetails | undefined> {
    const key = `${model.provider}\u0000${model.name}\u0000${model.digest}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    try {
      const shown = await connection.models.showModel({ model: model.name, provider: model.provider }, { signal, timeoutMs: 30_000 });
      const details = { contextLength: Number(shown.contextLength), capabilities: shown.capabilities };
      this.cache.set(key, details);
      return details;
    } catch {
      // Details only refine the description; the model is listed without them.
      return undefined;
    }
  }
}
