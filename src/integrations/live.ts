/**
 * One integration as the manager holds it (`Live`: the stored record with its secrets sealed, the
 * same secrets in clear, its catalog handles) and the forms it takes outside: the redacted view that
 * every API and REST answer returns, with its ETag; the input that reproduces it; the model
 * configuration its code calls the model with.
 */
import type { RegistrationHandle } from '../catalog/registry.js';
import type {
  Integration,
  IntegrationInput,
  IntegrationType,
  ModelConfig,
  StoredIntegration,
} from './types.js';
import type { UpstreamLink } from './upstream.js';
import type { UpstreamEntries } from './upstreamEntries.js';
import { maskSecret } from './validation.js';

/** An upstream connected for an integration: the link and the entries its offers put in the catalogs. */
export interface LiveUpstream {
  link: UpstreamLink;
  entries: UpstreamEntries;
}

/** An integration in memory. Only `stored` is persisted; the clear values are never logged. */
export interface Live {
  stored: StoredIntegration;
  /** The model's API key in clear. */
  apiKey: string | undefined;
  /** The other secrets in clear. */
  secrets: Record<string, string>;
  /** Its entries in the catalogs (none while disabled). */
  handles: RegistrationHandle[];
  contributes: Integration['contributes'];
  /** Its upstream while the integration is enabled and committed (stored, or attached in code). */
  upstream?: LiveUpstream;
}

/** What a write sets besides the input: the revision, the generation and the times. */
export type Revision = Pick<StoredIntegration, 'revision' | 'generation' | 'createdAt' | 'updatedAt'>;

/** Twelve random hex digits (Web Crypto, so the root entry stays runtime-neutral). */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The revision of a new integration: a fresh generation, so no old ETag ever matches it. */
export function firstRevision(): Revision {
  const now = new Date().toISOString();
  return { revision: 1, generation: randomId(), createdAt: now, updatedAt: now };
}

/** The revision that follows `stored`'s. */
export function nextRevision(stored: StoredIntegration): Revision {
  return {
    revision: stored.revision + 1,
    generation: stored.generation,
    createdAt: stored.createdAt,
    updatedAt: new Date().toISOString(),
  };
}

/** The strong entity tag of a stored revision. */
export function etagOf(stored: StoredIntegration): string {
  return `"${stored.generation}-${stored.revision}"`;
}

/** A model configuration without its API key. */
export function withoutApiKey<TModel extends { apiKey?: unknown }>(model: TModel): Omit<TModel, 'apiKey'> {
  const { apiKey: _key, ...rest } = model;
  return rest;
}

/** Nothing in the catalogs yet. */
export function nothingContributed(): Integration['contributes'] {
  return { tools: [], resources: [], prompts: [] };
}

/** The types an input declares, or those its contents imply. */
function typesOf(input: IntegrationInput): IntegrationType[] {
  if (input.types) return input.types;
  const types: IntegrationType[] = [];
  if (input.tools?.length) types.push('tools');
  if (input.resources?.length) types.push('resources');
  if (input.prompts?.length) types.push('prompts');
  if (input.model) types.push('model');
  // An upstream contributes whatever it offers.
  if (input.upstream)
    for (const t of ['tools', 'resources', 'prompts'] as const) if (!types.includes(t)) types.push(t);
  return types;
}

/** What a change of an integration starts from: a valid input and the integration as it is now. */
export interface Change {
  input: IntegrationInput;
  /** `undefined` when the integration is created. */
  current: Live | undefined;
}

/** The record a valid input stores, secrets not yet sealed in (an omitted `enabled` keeps the state). */
export function storedOf(change: Change & { revision: Revision }): StoredIntegration {
  const { input, current } = change;
  return {
    id: input.id,
    name: input.name,
    ...(input.description !== undefined && { description: input.description }),
    ...(input.isolation !== undefined && { isolation: input.isolation }),
    types: typesOf(input),
    enabled: input.enabled ?? current?.stored.enabled ?? true,
    ...(input.model && { model: withoutApiKey(input.model) as StoredIntegration['model'] }),
    tools: input.tools ?? [],
    resources: input.resources ?? [],
    prompts: input.prompts ?? [],
    ...(input.upstream && { upstream: input.upstream }),
    ...change.revision,
  };
}

/** The input that reproduces `live` (secrets kept by omission). */
export function inputOf(live: Live): IntegrationInput {
  const s = live.stored;
  const model = s.model && withoutApiKey(s.model);
  return structuredClone({ ...describedBy(s), ...(model && { model }), ...contributionsOf(s) });
}

/** What names and describes an integration, as both its input and its view show it. */
function describedBy(s: StoredIntegration) {
  return {
    id: s.id,
    name: s.name,
    ...(s.description !== undefined && { description: s.description }),
    ...(s.isolation !== undefined && { isolation: s.isolation }),
    types: s.types,
    enabled: s.enabled,
  };
}

/** The tools, resources and prompts an integration declares, and its upstream. */
function contributionsOf(s: StoredIntegration) {
  return {
    tools: s.tools,
    resources: s.resources,
    prompts: s.prompts,
    ...(s.upstream && { upstream: s.upstream }),
  };
}

/** What an integration puts in the catalogs: its own entries, then its upstream's. */
function contributedBy(live: Live): Integration['contributes'] {
  const upstream = live.upstream?.entries.names;
  if (!upstream) return live.contributes;
  return {
    tools: [...live.contributes.tools, ...upstream.tools],
    resources: [...live.contributes.resources, ...upstream.resources],
    prompts: [...live.contributes.prompts, ...upstream.prompts],
  };
}

/** The integration as every API shows it: a copy, secrets masked, with its ETag. */
export function viewOf(live: Live): Integration {
  const s = live.stored;
  const model = s.model && withoutApiKey(s.model);
  const secretNames = Object.keys(live.secrets);
  return structuredClone({
    ...describedBy(s),
    ...(model && {
      model: { ...model, ...(live.apiKey !== undefined && { apiKey: maskSecret(live.apiKey) }) },
    }),
    ...(secretNames.length > 0 && {
      secrets: Object.fromEntries(secretNames.map((n) => [n, maskSecret(live.secrets[n]!)])),
    }),
    ...contributionsOf(s),
    ...(live.upstream && { upstreamState: live.upstream.link.state }),
    contributes: contributedBy(live),
    revision: s.revision,
    etag: etagOf(s),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  });
}

/** The model configuration with its API key in clear, or `undefined` without a model. */
export function modelConfigOf(live: Live): ModelConfig | undefined {
  const model = live.stored.model;
  if (!model) return undefined;
  return {
    ...structuredClone(withoutApiKey(model)),
    ...(live.apiKey !== undefined && { apiKey: live.apiKey }),
  };
}
