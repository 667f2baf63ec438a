/**
 * Integration types: what a team configures (a model, its key, the tools, resources and prompts it
 * brings), how it is stored, and the small interfaces storage and encryption come in through.
 */
import type { PromptArgumentSpec, PromptMessageTemplate } from '../catalog/prompts.js';
import type { DeclarativeIsolationLevel, DeclarativeToolSpec } from '../declarative.js';
import type { UpstreamSpec, UpstreamState } from './upstreamTypes.js';

/** What an integration contributes. */
export type IntegrationType = 'tools' | 'resources' | 'prompts' | 'model';

/** The model providers an integration may configure. */
export type ModelProvider = 'openai' | 'anthropic' | 'custom';

/** A model configuration. `apiKey` is a secret: encrypted at rest, never returned. */
export interface ModelConfig {
  provider: ModelProvider;
  /** Model name, e.g. `gpt-4.1` or `claude-sonnet-4-5`. */
  model: string;
  /** The API key. On input: a string sets it, `null` removes it, omitted (or its redacted form) keeps it. */
  apiKey?: string | null;
  /** Base URL of the API (required for `custom`). */
  baseUrl?: string;
  /** Default request parameters (temperature, max tokens, …). */
  defaults?: Record<string, unknown>;
}

/** A resource with fixed content, served at `integration://<id>/<name>`. */
export interface IntegrationResourceSpec {
  /** 1–64 characters of `A-Z a-z 0-9 _ -`; also the last URI segment. */
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  /** Exactly one of `text` or `blob` (base64). */
  text?: string;
  blob?: string;
}

/** A template prompt, registered as `<id>__<name>`. */
export interface IntegrationPromptSpec {
  name: string;
  title?: string;
  description?: string;
  arguments?: PromptArgumentSpec[];
  messages: PromptMessageTemplate[];
}

/** What `create` and `replace` accept (and `POST`/`PUT /integrations` take as JSON). */
export interface IntegrationInput {
  /** 1–64 characters: lowercase letters, digits and `-`, starting with a letter or digit. */
  id: string;
  name: string;
  description?: string;
  /** What it contributes. Default: the kinds it holds content for. */
  types?: IntegrationType[];
  /** Default `true`. */
  enabled?: boolean;
  model?: ModelConfig | null;
  /**
   * Other secrets (encrypted at rest, never returned). A declarative HTTP tool's header values may
   * read them as `{{secrets.NAME}}`. On input, per key: a string sets, `null` removes, the redacted
   * form keeps; omitting `secrets` keeps them all.
   */
  secrets?: Record<string, string | null>;
  /**
   * Where its declarative HTTP tools read their upstreams' answers: `none` (the server's thread),
   * `worker` or `process`, one the server allows (`declarativeTools.isolation`); a tool's own
   * `isolation` wins. Default: the server's default level.
   */
  isolation?: DeclarativeIsolationLevel;
  /** Declarative tools (`http` or `chain`), registered as `<id>__<name>`. */
  tools?: DeclarativeToolSpec[];
  resources?: IntegrationResourceSpec[];
  prompts?: IntegrationPromptSpec[];
  /**
   * An upstream MCP server reached over Streamable HTTP, whose tools, resources and prompts join the
   * catalog under this integration's namespace. `null` removes it. Upstreams started as programs
   * (stdio) are never accepted here: they are attached in code ({@link UpstreamSource}).
   */
  upstream?: UpstreamSpec | null;
}

/** An integration as every API returns it: secrets redacted. */
export interface Integration {
  id: string;
  name: string;
  description?: string;
  types: IntegrationType[];
  enabled: boolean;
  model?: Omit<ModelConfig, 'apiKey'> & { apiKey?: string };
  /** Secret names with redacted values. */
  secrets?: Record<string, string>;
  /** Where its declarative HTTP tools read their upstreams' answers, when it names a level. */
  isolation?: DeclarativeIsolationLevel;
  tools: DeclarativeToolSpec[];
  resources: IntegrationResourceSpec[];
  prompts: IntegrationPromptSpec[];
  /** Its upstream MCP server over HTTP (header values that name secrets stay as written). */
  upstream?: UpstreamSpec;
  /** How its upstream (stored, or attached in code) is doing right now. */
  upstreamState?: UpstreamState;
  /** Names of the tools, resources and prompts it puts in the catalog (attached tools included). */
  contributes: { tools: string[]; resources: string[]; prompts: string[] };
  /** Bumped by every change. */
  revision: number;
  /** Strong entity tag of this revision (the REST `ETag`). */
  etag: string;
  createdAt: string;
  updatedAt: string;
}

/** An integration as stored: secrets sealed by the {@link SecretCipher}. */
export interface StoredIntegration {
  id: string;
  name: string;
  description?: string;
  types: IntegrationType[];
  enabled: boolean;
  model?: Omit<ModelConfig, 'apiKey'> & { apiKey?: string };
  secrets?: Record<string, string>;
  isolation?: DeclarativeIsolationLevel;
  tools: DeclarativeToolSpec[];
  resources: IntegrationResourceSpec[];
  prompts: IntegrationPromptSpec[];
  upstream?: UpstreamSpec;
  revision: number;
  /** Random per creation, so a deleted and re-created integration never matches an old ETag. */
  generation: string;
  createdAt: string;
  updatedAt: string;
}

/** The whole persisted state: written and replaced as one unit. */
export interface IntegrationSnapshot {
  /** A value sealed with the associated data `mcpkit:key-check`: proves the key before any secret is read. */
  keyCheck?: string;
  integrations: StoredIntegration[];
}

/**
 * Where integrations live. `save` replaces the whole snapshot atomically: after a crash, `load`
 * returns the previous or the new snapshot, never a mix.
 */
export interface IntegrationStore {
  /** Names the store in errors and logs (a file store gives its file's path). */
  readonly label?: string;
  /** The stored snapshot, or `undefined` when nothing was ever saved. Rejects on unreadable data. */
  load(): Promise<IntegrationSnapshot | undefined>;
  save(snapshot: IntegrationSnapshot): Promise<void>;
  /** Releases the store (locks, handles). */
  close?(): Promise<void>;
}

/**
 * One record of a {@link SharedIntegrationStore.commit}: the integration `id` must be stored now
 * with the tag `expected` (`<generation>-<revision>`, the ETag without its quotes), or be absent
 * when `expected` is `null`; it becomes `next`, or is removed when `next` is `null`.
 *
 * @example
 * ```ts
 * import type { IntegrationRecordWrite } from 'mcpkit';
 *
 * // Delete "crm" only if it is still at revision 3 of generation 9f2c01aa77e4.
 * const write: IntegrationRecordWrite = { id: 'crm', expected: '9f2c01aa77e4-3', next: null };
 * ```
 */
export interface IntegrationRecordWrite {
  id: string;
  expected: string | null;
  next: StoredIntegration | null;
}

/**
 * A store several servers share (mcpkit/redis supplies one): besides the whole snapshot, it writes
 * records by compare-and-set, so a write made on a stale copy fails instead of overwriting another
 * server's, and it tells each server about the others' writes.
 *
 * @example
 * ```ts
 * import type { SharedIntegrationStore } from 'mcpkit';
 *
 * // Whether a store is one the manager treats as shared.
 * const isShared = (store: { commit?: unknown }): store is SharedIntegrationStore =>
 *   typeof store.commit === 'function';
 * ```
 */
export interface SharedIntegrationStore extends IntegrationStore {
  /**
   * Writes every record in one atomic step if each `expected` holds, and resolves `true`; writes
   * nothing and resolves `false` if one does not. `keyCheck` is saved when none is yet (`replace`:
   * always). Rejects (with a retryable `UNAVAILABLE`) when the store cannot be reached.
   */
  commit(
    writes: readonly IntegrationRecordWrite[],
    keyCheck: { value: string; replace?: boolean },
  ): Promise<boolean>;
  /** The record `id` as stored now (`undefined`: none). */
  fetch(id: string): Promise<StoredIntegration | undefined>;
  /**
   * Hears the other servers' commits: `changed` with the ids they wrote, in order; `resync` when
   * some may have been missed (after an outage), so the whole store is loaded again.
   */
  watch(listener: { changed(ids: readonly string[]): void; resync(): void }): () => void;
  /**
   * Called before each full read: if the store lost the data this server last read or wrote (Redis
   * restarted without persistence), puts back every record of `snapshot` (this server's copy) that
   * it does not hold now, and resolves `true`; otherwise writes nothing and resolves `false`.
   */
  restore?(snapshot: IntegrationSnapshot): Promise<boolean>;
}

/**
 * Authenticated encryption of secret fields. `aad` binds a sealed value to where it belongs (the
 * integration id and field name), so a ciphertext moved to another field fails to open.
 */
export interface SecretCipher {
  /** A short, non-secret id of the current key (written into sealed values). */
  readonly keyId: string;
  seal(plaintext: string, aad: string): Promise<string>;
  /** Opens a sealed value; rejects with a clear message on a wrong key, tampering or truncation. */
  open(sealed: string, aad: string): Promise<string>;
  /** Whether `sealed` was made with the current key (else it is re-sealed on load: key rotation). */
  isCurrent(sealed: string): boolean;
}

/** Payload of every integration event: the integration as APIs show it (secrets redacted). */
export interface IntegrationEvent {
  integration: Integration;
}

/** An upstream's log message, as {@link IntegrationEvents.upstreamLog} reports it. */
export interface UpstreamLogEvent {
  /** The integration whose upstream sent it. */
  id: string;
  level: 'debug' | 'info' | 'notice' | 'warning' | 'error' | 'critical' | 'alert' | 'emergency';
  logger: string;
  data: unknown;
}

/** Typed events of the {@link IntegrationManager}. */
export interface IntegrationEvents {
  /** Every integration loaded from the store (once, at start). */
  loaded: (event: { count: number }) => void;
  created: (event: IntegrationEvent) => void;
  updated: (event: IntegrationEvent & { previous: Integration }) => void;
  deleted: (event: IntegrationEvent) => void;
  enabled: (event: IntegrationEvent) => void;
  disabled: (event: IntegrationEvent) => void;
  toolAttached: (event: { id: string; tool: string }) => void;
  toolDetached: (event: { id: string; tool: string }) => void;
  /** A request was forwarded to an integration's upstream (for metrics): its method and outcome. */
  upstreamRequest: (event: { id: string; method: string; outcome: 'ok' | 'error' | 'cancelled' }) => void;
  /**
   * An upstream logged something that belongs to no one forwarded call (bounded, redacted and rate
   * limited already); `logger` is `<id>` or `<id>/<the upstream's logger>`.
   */
  upstreamLog: (event: UpstreamLogEvent) => void;
  /** Every secret was re-sealed under a new key. */
  keyRotated: (event: { keyId: string; secrets: number }) => void;
  /** An export was made: how many integrations, and how it carries their secrets. */
  exported: (event: { count: number; secrets: 'sealed' | 'plaintext' | 'omit' }) => void;
  /** An import was written (after the `created` and `updated` events of each integration). */
  imported: (event: { created: string[]; replaced: string[]; skipped: string[] }) => void;
}
