/**
 * What a valid input makes of an integration: its model URL checked against the outbound policy,
 * the secrets it keeps resolved, the record to store with those secrets sealed in.
 *
 * Secrets follow one rule: a string sets, `null` removes, the masked echo (or, for the API key,
 * omission) keeps; and a kept value goes only where it went before. A model key stays with its
 * provider and API URL; a `{{secrets.NAME}}` header stays with the origins its tools sent it to.
 * Sending a kept secret somewhere new needs it given again.
 */
import { McpKitError, quote } from '../core/errors.js';
import type { DeclarativeToolSpec } from '../declarative.js';
import { isHeaderText, MODEL_PROVIDER_HOSTS, type OutboundPolicy } from '../net/outbound.js';
import type { Logger } from '../types.js';
import { SECRET_REF } from './contributions.js';
import { type Change, type Live, nothingContributed, type Revision, storedOf } from './live.js';
import type { SecretSealer } from './sealing.js';
import { checkUpstreamUrl, upstreamHeaders } from './upstreamHttp.js';
import type { UpstreamSpec } from './upstreamTypes.js';
import { fieldError, maskSecret } from './validation.js';

/** The API a provider calls when no `baseUrl` is given. */
const DEFAULT_BASE_URL: Record<string, string> = {
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com',
};

/**
 * Where a model's API key goes: its provider and the URL of its API, normalised as the provider
 * uses it (its default when none is given, no trailing slash, Anthropic's without `/v1`).
 */
function destinationOf(model: { provider: string; baseUrl?: string | undefined }): string {
  let base = (model.baseUrl ?? DEFAULT_BASE_URL[model.provider] ?? '').replace(/\/+$/, '');
  if (model.provider === 'anthropic') base = base.replace(/\/v1$/, '');
  try {
    if (base !== '') base = new URL(base).href.replace(/\/+$/, '');
  } catch {
    // validation refuses it; compared as written
  }
  return `${model.provider} ${base}`;
}

/** Where a secret goes: the field that sends it there (`tools[2]`, `upstream`). */
type Sender = string;

/**
 * For each secret, the origins its http tools' headers and its upstream's headers send it to, with
 * the first field that does.
 */
function secretOrigins(
  tools: readonly DeclarativeToolSpec[],
  upstream: UpstreamSpec | null | undefined,
): Map<string, Map<string, Sender>> {
  const out = new Map<string, Map<string, Sender>>();
  const add = (name: string, origin: string, sender: Sender) => {
    const origins = out.get(name) ?? new Map<string, Sender>();
    out.set(name, origins);
    if (!origins.has(origin)) origins.set(origin, sender);
  };
  if (upstream) {
    let origin: string | undefined;
    try {
      origin = new URL(upstream.url).origin;
    } catch {
      // validation refuses it
    }
    for (const value of Object.values(upstream.headers ?? {}))
      for (const [, name] of value.matchAll(SECRET_REF)) if (origin) add(name!, origin, 'upstream');
  }
  tools.forEach((spec, i) => {
    if (spec.kind !== 'http' || typeof spec.http?.url !== 'string') return;
    let origin: string;
    try {
      origin = new URL(spec.http.url.replace(/\{[^}]*\}/g, 'x')).origin;
    } catch {
      return; // compiling it reports the URL
    }
    for (const value of Object.values(spec.http.headers ?? {})) {
      for (const [, name] of String(value).matchAll(SECRET_REF)) add(name!, origin, `tools[${i}]`);
    }
  });
  return out;
}

/** A model's baseUrl must pass the outbound policy (the provider's own API is always allowed). */
function checkModelUrl(baseUrl: string, outbound: OutboundPolicy): void {
  try {
    outbound.check(new URL(baseUrl), MODEL_PROVIDER_HOSTS);
  } catch (error) {
    if (!(error instanceof McpKitError)) throw error;
    throw new McpKitError(error.code, `model.baseUrl: ${error.message}`, {
      details: { field: 'model.baseUrl' },
    });
  }
}

/**
 * The model's API key after the change: a string sets, `null` or no model removes, omitted or the
 * masked echo keeps, as long as the key would go where it went before (else it is dropped, with a
 * warning).
 */
function keptApiKey(change: Change, logger: Logger): string | undefined {
  const { input, current } = change;
  if (!input.model) return undefined;
  const given = input.model.apiKey;
  const echoed =
    given === undefined || (current?.apiKey !== undefined && given === maskSecret(current.apiKey));
  if (!echoed) {
    // It travels in a header: a control character (or one past Latin-1) could never be sent.
    if (typeof given === 'string' && !isHeaderText(given))
      throw fieldError('model.apiKey', 'must hold only printable Latin-1 characters');
    return given ?? undefined;
  }
  if (current?.apiKey === undefined) return undefined;
  const before = current.stored.model;
  if (before && destinationOf(before) === destinationOf(input.model)) return current.apiKey;
  logger.warn(
    { integration: input.id },
    'integration model key dropped: its provider or baseUrl changed and no new key was given',
  );
  return undefined;
}

/** The other secrets after the change; a kept one its tools would send to a new origin is an error. */
function keptSecrets(change: Change): Record<string, string> {
  const { input, current } = change;
  let secrets: Record<string, string>;
  const fresh = new Set<string>();
  if (input.secrets === undefined) secrets = { ...current?.secrets };
  else {
    secrets = {};
    for (const [name, value] of Object.entries(input.secrets)) {
      if (value === null) continue;
      const old = current?.secrets[name];
      const kept = old !== undefined && value === maskSecret(old);
      secrets[name] = kept ? old : value;
      if (!kept) fresh.add(name);
    }
  }
  const before = secretOrigins(current?.stored.tools ?? [], current?.stored.upstream);
  for (const [name, origins] of secretOrigins(input.tools ?? [], input.upstream)) {
    if (secrets[name] === undefined || fresh.has(name)) continue;
    for (const [origin, sender] of origins) {
      if (before.get(name)?.has(origin)) continue;
      throw fieldError(
        `secrets.${name}`,
        `must be given again: ${sender} would send it to ${quote(origin)}, where it has not gone before`,
      );
    }
  }
  return secrets;
}

/** What building the next state needs besides the change. */
export interface BuildContext {
  sealer: SecretSealer;
  outbound: OutboundPolicy;
  logger: Logger;
}

/**
 * The next state of an integration (not yet in the catalogs): checked, its secrets resolved and
 * sealed. Throws a field error when the input cannot be applied to the integration as it is.
 */
export async function buildNext(
  change: Change & { revision: Revision },
  context: BuildContext,
): Promise<Live> {
  const baseUrl = change.input.model?.baseUrl;
  if (baseUrl !== undefined) checkModelUrl(baseUrl, context.outbound);
  const upstream = change.input.upstream;
  if (upstream) checkUpstreamUrl(upstream.url, context.outbound);
  const apiKey = keptApiKey(change, context.logger);
  const secrets = keptSecrets(change);
  // Every secret an upstream header names must be set (and its value must fit in a header).
  if (upstream) {
    for (const [name, value] of Object.entries(upstreamHeaders(upstream, secrets))) {
      if (!isHeaderText(value))
        throw fieldError(`upstream.headers.${name}`, 'must hold only printable Latin-1 characters');
    }
  }
  const stored = await context.sealer.seal({ stored: storedOf(change), apiKey, secrets });
  return { stored, apiKey, secrets, handles: [], contributes: nothingContributed() };
}
