/**
 * Authentication: API keys (kept only as SHA-256 digests, compared in constant time), a `verify`
 * hook for anything else, and OAuth 2.1 resource-server mode on the SDK's bearer-token checks.
 */
import {
  type AuthInfo,
  OAuthError,
  OAuthErrorCode,
  type OAuthTokenVerifier,
  verifyBearerToken,
} from '@modelcontextprotocol/server';
import { sha256 } from '@noble/hashes/sha2';
import type { CallerIdentity } from '../types.js';

/**
 * One API key: an id (what audit and metrics name), its roles, and the key itself or its digest
 * from {@link hashApiKey}. Either way only the digest is kept in memory.
 *
 * @example
 * ```ts
 * const keys: ApiKeyConfig[] = [
 *   { id: 'ci', roles: ['operator'], key: process.env.CI_KEY! },
 *   { id: 'dashboard', roles: ['viewer'], hash: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' },
 * ];
 * ```
 */
export interface ApiKeyConfig {
  id: string;
  roles?: string[];
  /** Permissions held directly, beside the roles'. */
  permissions?: string[];
  key?: string;
  /** `sha256:<64 hex>` (or the bare hex digest) of the key. */
  hash?: string;
}

/** What a `verify` hook decides: a caller, `undefined` (no opinion: try the next method), or `false` (refuse). */
export type VerifyResult = CallerIdentity | undefined | false;

/**
 * OAuth 2.1 resource-server mode: bearer tokens are checked by `verifier` (introspection or local
 * JWT validation), and RFC 9728 protected-resource metadata is served so clients find the
 * authorization server from the 401.
 */
export interface OAuthResourceOptions {
  verifier: OAuthTokenVerifier;
  /** The authorization servers' issuer URLs, advertised in the metadata. */
  authorizationServers: string[];
  /**
   * This server's public URL (the MCP endpoint), the RFC 8707 resource identifier tokens must be
   * issued for. When set, tokens for another audience are refused.
   */
  resource?: string;
  /** Scopes every token must carry. */
  requiredScopes?: string[];
  /** Scopes advertised as `scopes_supported`. Default: the permission names. */
  scopesSupported?: string[];
  /** Roles of a token's caller. Default: token scopes that name a role. */
  roles?: (authInfo: AuthInfo) => string[];
  /** `resource_name` in the metadata. */
  resourceName?: string;
}

/**
 * The `auth` option: who may call. With any of it configured, every route but `/health` and the
 * OAuth metadata needs a credential, unless `anonymous` grants roles to callers without one.
 */
export interface AuthOptions {
  apiKeys?: ApiKeyConfig[];
  /**
   * Decides who is calling from the request, for credentials mcpkit does not know (mTLS headers
   * from a proxy, session cookies). Runs when no API key matched.
   */
  verify?: (request: Request) => VerifyResult | Promise<VerifyResult>;
  oauth?: OAuthResourceOptions;
  /** Roles of callers with no credential. Default: none (refused with 401). */
  anonymous?: string[];
  /** `realm` in `WWW-Authenticate`. Default `mcpkit`. */
  realm?: string;
}

/**
 * The digest mcpkit keeps of an API key: `sha256:<hex>`. Put it in configuration instead of the key.
 *
 * @example
 * ```ts
 * import { hashApiKey } from 'mcpkit';
 * console.log(hashApiKey('s3cret')); // sha256:…
 * ```
 */
export function hashApiKey(key: string): string {
  return `sha256:${toHex(sha256(UTF8.encode(key)))}`;
}

function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Whether two 32-byte digests are equal, in time independent of where they differ. */
function digestEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const UTF8 = new TextEncoder();

/** Ids mcpkit itself uses for callers without a key. */
const RESERVED_IDS = new Set(['anonymous', 'local']);
const QUERY_CREDENTIALS = ['api_key', 'apikey', 'api-key', 'key', 'token', 'access_token'];
const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Why a request was not authenticated. */
export interface AuthFailure {
  /**
   * `missing`, `invalid`, `query` (a credential in the query string), `refused` (the verify hook said
   * no), `error` (the verify hook threw), `scope` (an OAuth token without a required scope, 403), or
   * `unavailable` (the token verifier failed, 503).
   */
  reason: 'missing' | 'invalid' | 'query' | 'refused' | 'error' | 'scope' | 'unavailable';
  /** 401, or 403 for `scope`, or 503 for `unavailable`. */
  status: 401 | 403 | 503;
  message: string;
  /** The `WWW-Authenticate` header value. */
  challenge: string;
}

/** The outcome of {@link Authenticator.authenticate}. */
export type AuthOutcome = { caller: CallerIdentity | undefined } | { failure: AuthFailure };

/** What authentication needs to know about roles. */
export interface RoleLookup {
  assertRole(role: string, where: string): void;
  hasRole(role: string): boolean;
}

interface StoredKey {
  digest: Uint8Array;
  caller: CallerIdentity;
}

/**
 * Turns a request into a caller. API keys are compared against every configured digest without
 * stopping at a match, so neither the key's length nor which key matched shows in the timing.
 */
export class Authenticator {
  readonly #keys: StoredKey[];
  readonly #options: AuthOptions;
  readonly #anonymous: CallerIdentity | undefined;
  readonly #realm: string;
  /** The RFC 9728 metadata URL, once known (from `oauth.resource` or the first request). */
  readonly resourceMetadataUrl: string | undefined;

  readonly #roles: RoleLookup;

  constructor(options: AuthOptions, roles: RoleLookup) {
    this.#options = options;
    this.#roles = roles;
    const assertRole = (role: string, where: string) => roles.assertRole(role, where);
    this.#realm = (options.realm ?? 'mcpkit').replace(/["\\]/g, '');
    const ids = new Set<string>();
    const digests = new Map<string, number>();
    this.#keys = (options.apiKeys ?? []).map((k, i) => {
      const where = `auth.apiKeys[${i}]`;
      if (!k || typeof k.id !== 'string' || !ID_PATTERN.test(k.id)) {
        throw new TypeError(`${where}.id must be 1-128 characters of letters, digits and ._:@-`);
      }
      if (ids.has(k.id)) throw new TypeError(`${where}.id "${k.id}" is used twice`);
      if (RESERVED_IDS.has(k.id)) throw new TypeError(`${where}.id "${k.id}" is reserved`);
      ids.add(k.id);
      if ((k.key === undefined) === (k.hash === undefined)) {
        throw new TypeError(`${where}: give exactly one of key or hash`);
      }
      let digest: Uint8Array;
      if (k.key !== undefined) {
        if (typeof k.key !== 'string' || k.key.length < 16) {
          throw new TypeError(`${where}.key must be a string of at least 16 characters`);
        }
        digest = sha256(UTF8.encode(k.key));
      } else {
        const hex = String(k.hash).replace(/^sha256:/, '');
        if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
          throw new TypeError(`${where}.hash must be sha256:<64 hex digits> (see hashApiKey)`);
        }
        digest = fromHex(hex.toLowerCase());
      }
      for (const role of k.roles ?? []) assertRole(role, `${where}.roles`);
      const hex = toHex(digest);
      if (digests.has(hex))
        throw new TypeError(`${where} has the same key as auth.apiKeys[${digests.get(hex)}]`);
      digests.set(hex, i);
      const caller: CallerIdentity = Object.freeze({
        id: k.id,
        roles: [...(k.roles ?? [])],
        ...(k.permissions && { permissions: [...k.permissions] }),
      });
      return { digest, caller };
    });
    for (const role of options.anonymous ?? []) assertRole(role, 'auth.anonymous');
    this.#anonymous = options.anonymous
      ? Object.freeze({ id: 'anonymous', roles: [...options.anonymous] })
      : undefined;
    if (options.verify !== undefined && typeof options.verify !== 'function') {
      throw new TypeError('auth.verify must be a function');
    }
    if (options.oauth) {
      if (typeof options.oauth.verifier?.verifyAccessToken !== 'function') {
        throw new TypeError('auth.oauth.verifier must have verifyAccessToken(token)');
      }
      if (
        !Array.isArray(options.oauth.authorizationServers) ||
        options.oauth.authorizationServers.length === 0
      ) {
        throw new TypeError('auth.oauth.authorizationServers must list at least one issuer URL');
      }
      if (options.oauth.resource !== undefined) {
        this.resourceMetadataUrl = metadataUrlFor(new URL(options.oauth.resource));
      }
    }
  }

  /** The OAuth options, when in resource-server mode. */
  get oauth(): OAuthResourceOptions | undefined {
    return this.#options.oauth;
  }

  /** The `WWW-Authenticate` value for a failure of `kind`. */
  challenge(
    error?: 'invalid_token' | 'insufficient_scope',
    description?: string,
    metadataUrl = this.resourceMetadataUrl,
  ): string {
    let value = `Bearer realm="${this.#realm}"`;
    if (error) value += `, error="${error}"`;
    if (error === 'insufficient_scope' && this.#options.oauth?.requiredScopes) {
      value += `, scope="${this.#options.oauth.requiredScopes.join(' ').replace(/["\\]/g, '')}"`;
    }
    if (description) value += `, error_description="${description.replace(/["\\]/g, '')}"`;
    if (metadataUrl) value += `, resource_metadata="${metadataUrl}"`;
    return value;
  }

  /**
   * Who sent `request`, or why it is refused. `endpoint` gives the MCP endpoint's URL as the client
   * addressed it (for the OAuth metadata URL; called only in OAuth mode).
   */
  async authenticate(request: Request, url: URL, endpoint: () => URL): Promise<AuthOutcome> {
    const metadataUrl = this.#options.oauth
      ? (this.resourceMetadataUrl ?? metadataUrlFor(endpoint()))
      : undefined;
    /** A refusal: 401 unless `status` says otherwise, with `error` in the challenge when there is one. */
    const fail = (
      reason: AuthFailure['reason'],
      message: string,
      {
        error,
        status = 401,
      }: { error?: 'invalid_token' | 'insufficient_scope'; status?: AuthFailure['status'] } = {},
    ): AuthOutcome => ({
      failure: { reason, status, message, challenge: this.challenge(error, undefined, metadataUrl) },
    });
    if (url.search !== '') {
      for (const name of QUERY_CREDENTIALS) {
        if (url.searchParams.has(name)) {
          return fail(
            'query',
            'Credentials in the query string are refused: send them in the Authorization or X-API-Key header',
          );
        }
      }
    }
    const headers = request.headers;
    const apiKey = headers.get('x-api-key');
    const authorization = headers.get('authorization');
    let bearer: string | undefined;
    if (authorization !== null) {
      const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
      if (match) bearer = match[1];
    }
    const presented = apiKey ?? bearer;
    if (presented !== undefined && this.#keys.length > 0) {
      const caller = this.#matchKey(presented);
      if (caller) return { caller };
    }
    if (this.#options.verify) {
      let decided: VerifyResult;
      try {
        decided = await this.#options.verify(request);
      } catch {
        return fail('error', 'Authentication failed');
      }
      if (decided === false) return fail('refused', 'Authentication refused');
      if (decided !== undefined) {
        if (typeof decided !== 'object' || decided === null || typeof decided.id !== 'string') {
          return fail('error', 'Authentication failed');
        }
        return { caller: decided };
      }
    }
    if (this.#options.oauth && bearer !== undefined && apiKey === null) {
      const oauth = this.#options.oauth;
      try {
        const authInfo = await verifyBearerToken(authorization, {
          verifier: oauth.verifier,
          ...(oauth.requiredScopes && { requiredScopes: oauth.requiredScopes }),
          ...(metadataUrl && { resourceMetadataUrl: metadataUrl }),
          ...(oauth.resource !== undefined && { expectedResource: new URL(oauth.resource) }),
        });
        const roles = oauth.roles
          ? oauth.roles(authInfo)
          : authInfo.scopes.filter((s) => this.#roles.hasRole(s));
        const subject = (authInfo.extra as { sub?: unknown } | undefined)?.sub;
        return {
          caller: {
            id: typeof subject === 'string' ? subject : authInfo.clientId,
            roles,
            permissions: [...authInfo.scopes],
            authInfo,
          },
        };
      } catch (error) {
        const code = error instanceof OAuthError ? error.code : undefined;
        if (code === OAuthErrorCode.InsufficientScope) {
          return fail('scope', 'The access token lacks a required scope', {
            error: 'insufficient_scope',
            status: 403,
          });
        }
        if (code === OAuthErrorCode.InvalidToken) {
          return fail('invalid', 'The access token is not valid', { error: 'invalid_token' });
        }
        // The verifier itself failed (an introspection endpoint down): not the caller's fault.
        return fail('unavailable', 'The access token could not be verified; try again later', {
          status: 503,
        });
      }
    }
    if (presented !== undefined || authorization !== null) {
      return fail(
        'invalid',
        'The credential is not valid',
        bearer !== undefined ? { error: 'invalid_token' } : {},
      );
    }
    if (this.#anonymous) return { caller: this.#anonymous };
    return fail('missing', 'Authentication required: send an API key (Authorization: Bearer or X-API-Key)');
  }

  #matchKey(presented: string): CallerIdentity | undefined {
    const digest = sha256(UTF8.encode(presented));
    let found: CallerIdentity | undefined;
    // Every digest is compared: no early exit, so timing does not say which key (or whether one) matched.
    for (const key of this.#keys) {
      const equal = digestEqual(digest, key.digest);
      found = equal ? key.caller : found;
    }
    return found;
  }
}

/** The RFC 9728 metadata URL of the resource at `endpoint`: the well-known prefix before its path. */
export function metadataUrlFor(endpoint: URL): string {
  const path = endpoint.pathname === '/' ? '' : endpoint.pathname.replace(/\/$/, '');
  return `${endpoint.origin}/.well-known/oauth-protected-resource${path}`;
}
