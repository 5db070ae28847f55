// The pure half of the Language Model Chat Provider: how the agent's models
// (every provider) become VS Code model descriptions, how a model id maps
// back to provider + name, how VS Code's request messages become the
// agent's ChatMessages, and the token estimate. No `vscode` import, so the
// unit tests load it under plain mocha.

/** What the provider needs to know about one installed model. */
export interface AgentModelSummary {
  name: string;
  provider: string;
  sizeBytes: number;
  family: string;
  parameterSize: string;
  quantizationLevel: string;
  digest: string;
  isDefault: boolean;
}

/** Optional details from ShowModel (context length and capabilities). */
export interface AgentModelDetails {
  contextLength: number;
  capabilities: readonly string[];
}

/** The shape of vscode.LanguageModelChatInformation, kept structural here. */
export interface ChatModelInformation {
  id: string;
  name: string;
  family: string;
  version: string;
  detail?: string;
  tooltip?: string;
  maxInputTokens: number;
  maxOutputTokens: number;
  capabilities: { imageInput?: boolean; toolCalling?: boolean | number };
}

/** Ollama's own default context when a model does not say (num_ctx). */
export const DEFAULT_CONTEXT_TOKENS = 4096;
/** Replies are bounded by the context, not by a separate limit in Ollama. */
export const DEFAULT_OUTPUT_TOKENS = 4096;

/**
 * The model id VS Code stores. Provider names cannot contain '/' (letters,
 * digits, '-' and '_') but model names can ("hf.co/org/model"), so the
 * provider goes first and the id is split at the first '/'.
 */
export function modelId(provider: string, name: string): string {
  return `${provider || 'local'}/${name}`;
}

/** Inverse of modelId; an id without a provider part names a local model. */
export function parseModelId(id: string): { provider: string; name: string } {
  const slash = id.indexOf('/');
  if (slash <= 0) {
    return { provider: 'local', name: id };
  }
  const provider = id.slice(0, slash);
  if (!/^[A-Za-z0-9_-]+$/.test(provider)) {
    // Not a provider name, so the whole id is a (namespaced) local model.
    return { provider: 'local', name: id };
  }
  return { provider, name: id.slice(slash + 1) };
}

/** "1.3 GB"-style sizes, decimal units as Ollama prints them. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes <= 0) {
    return '0 B';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** The tag after ':' ("1b" in "llama3.2:1b"), or "latest". */
function tagOf(name: string): string {
  const colon = name.lastIndexOf(':');
  return colon >= 0 && colon > name.lastIndexOf('/') ? name.slice(colon + 1) : 'latest';
}

/** One VS Code model description for one agent model. */
export function toChatInformation(
  model: AgentModelSummary,
  details?: AgentModelDetails,
): ChatModelInformation {
  const provider = model.provider || 'local';
  const facts = [model.parameterSize, model.quantizationLevel, formatBytes(model.sizeBytes)].filter(
    (fact) => fact !== '' && fact !== '0 B',
  );
  const detailParts = [provider === 'local' ? 'OmniPanel' : `OmniPanel · ${provider}`];
  if (model.isDefault) {
    detailParts.push('default');
  }
  const context = details && details.contextLength > 0 ? details.contextLength : DEFAULT_CONTEXT_TOKENS;
  return {
    id: modelId(provider, model.name),
    name: model.name,
    family: model.family || 'ollama',
    version: model.digest ? model.digest.slice(0, 12) : tagOf(model.name),
    detail: detailParts.join(' · '),
    tooltip: `${model.name} on ${provider === 'local' ? 'the local Ollama' : `provider "${provider}"`}` +
      (facts.length > 0 ? ` (${facts.join(', ')})` : ''),
    maxInputTokens: context,
    maxOutputTokens: Math.min(DEFAULT_OUTPUT_TOKENS, context),
    // VS Code's chat panel lists only tool-capable models in Agent mode,
    // its default, so the models say they take tools. The agent's Chat
    // carries none: offered tools are not passed on and the model answers
    // in text; a request that requires a tool call is refused (provider.ts).
    capabilities: {
      imageInput: details ? details.capabilities.includes('vision') : false,
      toolCalling: true,
    },
  };
}

/** Default model first, then by provider ("local" first) and name. */
export function sortModels(models: readonly AgentModelSummary[]): AgentModelSummary[] {
  return [...models].sort((a, b) => {
    if (a.isDefault !== b.isDefault) {
      return a.isDefault ? -1 : 1;
    }
    const pa = a.provider || 'local';
    const pb = b.provider || 'local';
    if (pa !== pb) {
      if (pa === 'local') return -1;
      if (pb === 'local') return 1;
      return pa < pb ? -1 : 1;
    }
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/**
 * A rough token count: about four characters per token for English and
 * code with Llama-style tokenizers. VS Code uses it only to budget the
 * prompt, and the agent offers no tokenizer call.
 */
export function estimateTokens(text: string): number {
  if (text.length === 0) {
    return 0;
  }
  return Math.ceil(text.length / 4);
}

/** One request message, flattened to text by the vscode-bound side. */
export interface FlatMessage {
  role: 'user' | 'assistant' | 'system';
  text: string;
}

/** The agent's ChatMessage shape (role + content). */
export interface AgentChatMessage {
  role: string;
  content: string;
}

/**
 * VS Code's messages as the agent's conversation: empty messages dropped
 * (Ollama rejects none, but they only cost context) and consecutive
 * messages of one role merged, since VS Code splits one turn into parts.
 */
export function toAgentMessages(messages: readonly FlatMessage[]): AgentChatMessage[] {
  const out: AgentChatMessage[] = [];
  for (const message of messages) {
    if (message.text.trim() === '') {
      continue;
    }
    const last = out[out.length - 1];
    if (last && last.role === message.role) {
      last.content += `\n\n${message.text}`;
    } else {
      out.push({ role: message.role, content: message.text });
    }
  }
  return out;
}

/** VS Code's numeric roles (User = 1, Assistant = 2; 3 is System in newer builds). */
export function roleName(role: number): FlatMessage['role'] {
  switch (role) {
    case 2:
      return 'assistant';
    case 3:
      return 'system';
    default:
      return 'user';
  }
}
