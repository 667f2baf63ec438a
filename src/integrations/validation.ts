/**
 * Validation of integration input. Every failure is an `INVALID_ARGUMENT` error whose message starts
 * with the field (`model.provider must be …`) and whose `details.field` names it. Messages never
 * echo a value: a misplaced secret must not end up in an error.
 */

import { McpKitError } from '../core/errors.js';
import {
  DECLARATIVE_ISOLATION_LEVELS,
  type DeclarativeIsolationLevel,
  type DeclarativeToolSpec,
} from '../declarative.js';
import type {
  IntegrationInput,
  IntegrationPromptSpec,
  IntegrationResourceSpec,
  IntegrationType,
  ModelConfig,
} from './types.js';
import type { UpstreamSpec } from './upstreamTypes.js';

/** Integration ids: lowercase letters, digits and `-`, 1–64 characters, URL-safe as they are. */
export const INTEGRATION_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Names of contributed tools, resources, prompts and secrets. */
export const LOCAL_NAME = /^[A-Za-z0-9_-]{1,60}$/;
/** Separator between the integration id and a contribution's name (`crm__search`). */
export const NAMESPACE_SEPARATOR = '__';

const TYPES: readonly IntegrationType[] = ['tools', 'resources', 'prompts', 'model'];
const PROVIDERS = ['openai', 'anthropic', 'custom'] as const;
const MAX_ITEMS = 1000;

/** An `INVALID_ARGUMENT` error naming `field`. */
export function fieldError(field: string, message: string): McpKitError {
  return new McpKitError('INVALID_ARGUMENT', `${field} ${message}`, { details: { field } });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, field: string, max = 10_000): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw fieldError(field, 'must be a string');
  if (value.length > max) throw fieldError(field, `must be at most ${max} characters`);
  return value;
}

function requiredString(value: unknown, field: string, max = 10_000): string {
  const text = optionalString(value, field, max);
  if (text === undefined || text.trim() === '') throw fieldError(field, 'is required (a non-empty string)');
  return text;
}

function array(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw fieldError(field, 'must be an array');
  if (value.length > MAX_ITEMS) throw fieldError(field, `must hold at most ${MAX_ITEMS} items`);
  return value;
}

/**
 * Ids no integration may take: `GET /integrations/export` and `POST /integrations/import` are the
 * backup routes, so an integration with one of these ids could not be read at its own path.
 */
export const RESERVED_INTEGRATION_IDS: readonly string[] = Object.freeze(['export', 'import']);

/**
 * Checks the id of an integration being created (REST, code, an import, a configured upstream): a
 * valid id ({@link validateId}) that is not one of the {@link RESERVED_INTEGRATION_IDS}.
 */
export function validateNewId(value: unknown, field = 'id'): string {
  const id = validateId(value, field);
  if (RESERVED_INTEGRATION_IDS.includes(id)) {
    throw fieldError(
      field,
      `"${id}" is reserved (reserved ids: ${RESERVED_INTEGRATION_IDS.join(', ')}; /integrations/export and /integrations/import are the backup routes)`,
    );
  }
  return id;
}

/** Checks an integration id. */
export function validateId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !INTEGRATION_ID.test(value)) {
    throw fieldError(
      field,
      'must be 1-64 characters of lowercase letters, digits and "-", starting with a letter or digit',
    );
  }
  return value;
}

function localName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !LOCAL_NAME.test(value))
    throw fieldError(field, 'must be 1-60 characters of A-Z a-z 0-9 _ -');
  return value;
}

function unique(names: string[], field: string): void {
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (seen.has(name)) throw fieldError(`${field}[${i}].name`, 'is used twice');
    seen.add(name);
  });
}

function model(value: unknown): ModelConfig | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (!isObject(value)) throw fieldError('model', 'must be an object');
  const provider = value.provider;
  if (!PROVIDERS.includes(provider as never))
    throw fieldError('model.provider', `must be one of ${PROVIDERS.join(', ')}`);
  const name = requiredString(value.model, 'model.model', 200);
  if (value.apiKey !== undefined && value.apiKey !== null && typeof value.apiKey !== 'string')
    throw fieldError('model.apiKey', 'must be a string or null');
  if (typeof value.apiKey === 'string' && (value.apiKey.length === 0 || value.apiKey.length > 4096))
    throw fieldError('model.apiKey', 'must be 1-4096 characters');
  const baseUrl = optionalString(value.baseUrl, 'model.baseUrl', 2000);
  if (baseUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw fieldError('model.baseUrl', 'must be an absolute http(s) URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw fieldError('model.baseUrl', 'must be an absolute http(s) URL');
    if (url.username || url.password) throw fieldError('model.baseUrl', 'must not hold credentials');
  }
  if (provider === 'custom' && baseUrl === undefined)
    throw fieldError('model.baseUrl', 'is required for the custom provider');
  if (value.defaults !== undefined && !isObject(value.defaults))
    throw fieldError('model.defaults', 'must be an object');
  for (const key of Object.keys(value)) {
    if (!['provider', 'model', 'apiKey', 'baseUrl', 'defaults'].includes(key))
      throw fieldError(`model.${key}`, 'is not a known field');
  }
  return {
    provider: provider as ModelConfig['provider'],
    model: name,
    ...(value.apiKey !== undefined && { apiKey: value.apiKey as string | null }),
    ...(baseUrl !== undefined && { baseUrl }),
    ...(value.defaults !== undefined && { defaults: value.defaults as Record<string, unknown> }),
  };
}

function secrets(value: unknown): Record<string, string | null> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw fieldError('secrets', 'must be an object of strings');
  const out: Record<string, string | null> = {};
  const entries = Object.entries(value);
  if (entries.length > 100) throw fieldError('secrets', 'must hold at most 100 entries');
  for (const [key, secret] of entries) {
    localName(key, `secrets.${key}`);
    if (secret !== null && (typeof secret !== 'string' || secret.length === 0 || secret.length > 16_384))
      throw fieldError(`secrets.${key}`, 'must be a string of 1-16384 characters, or null');
    out[key] = secret;
  }
  return out;
}

function tool(value: unknown, i: number): DeclarativeToolSpec {
  const field = `tools[${i}]`;
  if (!isObject(value)) throw fieldError(field, 'must be an object');
  localName(value.name, `${field}.name`);
  if (value.kind !== 'http' && value.kind !== 'chain')
    throw fieldError(`${field}.kind`, 'must be "http" or "chain"');
  if (value.kind === 'http' && !isObject(value.http)) throw fieldError(`${field}.http`, 'must be an object');
  if (value.kind === 'chain' && !Array.isArray(value.steps))
    throw fieldError(`${field}.steps`, 'must be an array');
  if (value.inputSchema !== undefined && !isObject(value.inputSchema))
    throw fieldError(`${field}.inputSchema`, 'must be a JSON Schema object');
  optionalString(value.description, `${field}.description`);
  optionalString(value.title, `${field}.title`, 200);
  if (value.isolation !== undefined) {
    isolationLevel(value.isolation, `${field}.isolation`);
    if (value.kind !== 'http')
      throw fieldError(
        `${field}.isolation`,
        'applies to http tools only: a chain runs its steps, each under its own',
      );
  }
  return structuredClone(value) as unknown as DeclarativeToolSpec;
}

/** A declarative isolation level; which ones the server allows is checked when the tools compile. */
function isolationLevel(value: unknown, field: string): DeclarativeIsolationLevel {
  if (!DECLARATIVE_ISOLATION_LEVELS.includes(value as DeclarativeIsolationLevel))
    throw fieldError(field, 'must be "none", "worker" or "process"');
  return value as DeclarativeIsolationLevel;
}

function resource(value: unknown, i: number): IntegrationResourceSpec {
  const field = `resources[${i}]`;
  if (!isObject(value)) throw fieldError(field, 'must be an object');
  const name = localName(value.name, `${field}.name`);
  const text = optionalString(value.text, `${field}.text`, 1_000_000);
  const blob = optionalString(value.blob, `${field}.blob`, 1_400_000);
  if ((text === undefined) === (blob === undefined))
    throw fieldError(`${field}.text`, 'or blob (base64) must be given, not both');
  if (blob !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(blob))
    throw fieldError(`${field}.blob`, 'must be base64');
  const title = optionalString(value.title, `${field}.title`, 200);
  const description = optionalString(value.description, `${field}.description`);
  const mimeType = optionalString(value.mimeType, `${field}.mimeType`, 200);
  return {
    name,
    ...(title !== undefined && { title }),
    ...(description !== undefined && { description }),
    ...(mimeType !== undefined && { mimeType }),
    ...(text !== undefined ? { text } : { blob: blob as string }),
  };
}

function prompt(value: unknown, i: number): IntegrationPromptSpec {
  const field = `prompts[${i}]`;
  if (!isObject(value)) throw fieldError(field, 'must be an object');
  const name = localName(value.name, `${field}.name`);
  const messages = array(value.messages, `${field}.messages`);
  if (messages.length === 0) throw fieldError(`${field}.messages`, 'must be a non-empty array');
  messages.forEach((m, j) => {
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant'))
      throw fieldError(`${field}.messages[${j}].role`, 'must be "user" or "assistant"');
    if (typeof m.content !== 'string' && !isObject(m.content))
      throw fieldError(`${field}.messages[${j}].content`, 'must be a string or a content block');
  });
  const args = array(value.arguments, `${field}.arguments`);
  args.forEach((a, j) => {
    if (!isObject(a) || typeof a.name !== 'string' || a.name === '')
      throw fieldError(`${field}.arguments[${j}].name`, 'must be a non-empty string');
  });
  const title = optionalString(value.title, `${field}.title`, 200);
  const description = optionalString(value.description, `${field}.description`);
  return {
    name,
    ...(title !== undefined && { title }),
    ...(description !== undefined && { description }),
    ...(args.length > 0 && { arguments: structuredClone(args) as IntegrationPromptSpec['arguments'] }),
    messages: structuredClone(messages) as IntegrationPromptSpec['messages'],
  };
}

const UPSTREAM_FIELDS = ['url', 'headers', 'forwardCaller', 'hideUnavailable'];
/** A header name (RFC 9110 token); values are checked as header text when they are sent. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
/** Headers the transport sets itself, which an integration may not override. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'accept',
  'mcp-session-id',
  'mcp-protocol-version',
  'connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * An upstream over HTTP. Anything else (a `command`, `args`, a `transport` of `stdio`, in whatever
 * spelling) is refused: programs are started only by code the operator wrote.
 */
function upstream(value: unknown): UpstreamSpec | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (!isObject(value)) throw fieldError('upstream', 'must be an object');
  for (const key of Object.keys(value)) {
    if (!UPSTREAM_FIELDS.includes(key)) {
      throw fieldError(
        `upstream.${key.slice(0, 64)}`,
        'is not accepted: an upstream given as data is reached over HTTP by `url`; programs (stdio) are attached in code',
      );
    }
  }
  const url = requiredString(value.url, 'upstream.url', 2000);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw fieldError('upstream.url', 'must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw fieldError('upstream.url', 'must be an absolute http(s) URL');
  if (parsed.username || parsed.password) throw fieldError('upstream.url', 'must not hold credentials');
  let headers: Record<string, string> | undefined;
  if (value.headers !== undefined) {
    if (!isObject(value.headers)) throw fieldError('upstream.headers', 'must be an object of strings');
    const entries = Object.entries(value.headers);
    if (entries.length > 50) throw fieldError('upstream.headers', 'must hold at most 50 entries');
    headers = {};
    for (const [name, text] of entries) {
      if (!HEADER_NAME.test(name))
        throw fieldError('upstream.headers', 'has a name that is not a header name');
      if (RESERVED_HEADERS.has(name.toLowerCase()))
        throw fieldError(`upstream.headers.${name}`, 'is set by the transport');
      if (typeof text !== 'string' || text.length > 8192 || /[\r\n\0]/.test(text))
        throw fieldError(
          `upstream.headers.${name}`,
          'must be a string of at most 8192 characters, on one line',
        );
      headers[name] = text;
    }
  }
  const forward = value.forwardCaller;
  if (forward !== undefined && forward !== 'none' && forward !== 'meta')
    throw fieldError('upstream.forwardCaller', 'must be "none" or "meta"');
  if (value.hideUnavailable !== undefined && typeof value.hideUnavailable !== 'boolean')
    throw fieldError('upstream.hideUnavailable', 'must be a boolean');
  return {
    url: parsed.href,
    ...(headers && { headers }),
    ...(forward !== undefined && { forwardCaller: forward }),
    ...(value.hideUnavailable !== undefined && { hideUnavailable: value.hideUnavailable }),
  };
}

const KNOWN = [
  'id',
  'name',
  'description',
  'types',
  'enabled',
  'model',
  'secrets',
  'tools',
  'resources',
  'prompts',
  'upstream',
  'isolation',
  // read-only fields a client may echo back from GET; ignored
  'contributes',
  'revision',
  'etag',
  'createdAt',
  'updatedAt',
  'upstreamState',
];

/** Validates and normalises integration input (`id` checked unless `idFromPath` is given). */
export function validateIntegrationInput(value: unknown, idFromPath?: string): IntegrationInput {
  if (!isObject(value)) throw fieldError('body', 'must be a JSON object');
  for (const key of Object.keys(value))
    if (!KNOWN.includes(key)) throw fieldError(key, 'is not a known field');
  const id = idFromPath ?? validateNewId(value.id);
  if (idFromPath !== undefined && value.id !== undefined && value.id !== idFromPath)
    throw fieldError('id', 'cannot be changed');
  const name = requiredString(value.name, 'name', 200);
  const description = optionalString(value.description, 'description');
  if (value.enabled !== undefined && typeof value.enabled !== 'boolean')
    throw fieldError('enabled', 'must be a boolean');
  const tools = array(value.tools, 'tools').map(tool);
  const resources = array(value.resources, 'resources').map(resource);
  const prompts = array(value.prompts, 'prompts').map(prompt);
  unique(
    tools.map((t) => t.name),
    'tools',
  );
  unique(
    resources.map((r) => r.name),
    'resources',
  );
  unique(
    prompts.map((p) => p.name),
    'prompts',
  );
  const modelConfig = model(value.model);
  const upstreamSpec = upstream(value.upstream);
  const isolation =
    value.isolation === undefined || value.isolation === null
      ? undefined
      : isolationLevel(value.isolation, 'isolation');
  let types: IntegrationType[] | undefined;
  if (value.types !== undefined) {
    const list = array(value.types, 'types');
    list.forEach((t, i) => {
      if (!TYPES.includes(t as IntegrationType))
        throw fieldError(`types[${i}]`, `must be one of ${TYPES.join(', ')}`);
    });
    types = [...new Set(list as IntegrationType[])];
    const present: Array<[IntegrationType, boolean]> = [
      ['tools', tools.length > 0],
      ['resources', resources.length > 0],
      ['prompts', prompts.length > 0],
      ['model', !!modelConfig],
    ];
    for (const [kind, has] of present) {
      if (has && !types.includes(kind))
        throw fieldError(kind, `is given but types does not include "${kind}"`);
    }
  }
  return {
    id,
    name,
    ...(description !== undefined && { description }),
    ...(types !== undefined && { types }),
    ...(value.enabled !== undefined && { enabled: value.enabled as boolean }),
    ...(modelConfig !== undefined && { model: modelConfig }),
    ...(value.secrets !== undefined && { secrets: secrets(value.secrets) }),
    ...(upstreamSpec !== undefined && { upstream: upstreamSpec }),
    ...(isolation !== undefined && { isolation }),
    tools,
    resources,
    prompts,
  };
}

/**
 * How a secret is shown: `…abcd` (its last four characters) when it is long enough that four
 * characters say nothing useful about it, `[redacted]` otherwise. Sending the masked form back in a
 * write keeps the secret.
 *
 * @example
 * ```ts
 * maskSecret('sk-live-0123456789abcdef'); // '…cdef'
 * maskSecret('short');                    // '[redacted]'
 * ```
 */
export function maskSecret(secret: string): string {
  return secret.length >= 16 ? `…${secret.slice(-4)}` : '[redacted]';
}
