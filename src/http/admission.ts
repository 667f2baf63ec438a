/**
 * The request stages of the admission pipeline, the same for every HTTP door (REST, `/mcp` in both
 * eras, the operations routes, a WebSocket upgrade) whatever mounts it (`listen()`, Express, Fastify,
 * Hono, a fetch runtime): Host, then Origin, then who is calling. What each operation in the request
 * may then do is the policy's {@link Policy.admit}.
 */

import { type AuthInfo, validateHostHeader, validateOriginHeader } from '@modelcontextprotocol/server';
import { quote } from '../core/errors.js';
import type { TrustProxy } from '../core/forwarded.js';
import { type Refusal, refuse } from '../core/refusal.js';
import type { Policy, RequestFacts } from '../policy/policy.js';

/** The HTTP doors: REST (the operations routes included), MCP over HTTP, a WebSocket upgrade. */
export type HttpDoor = 'rest' | 'mcp' | 'websocket';

/** What the request stages learnt: the request's facts (`undefined` when no policy is configured). */
export type RequestAdmitted = { readonly facts: RequestFacts | undefined } | { readonly refusal: Refusal };

/** The per-request inputs of {@link RequestAdmission.admit}. */
export interface RequestInfo {
  readonly door: HttpDoor;
  readonly requestId: string;
  /** The client's network address. */
  readonly address?: string | undefined;
  /** Authentication established by the host application (an adapter's `authInfo`). */
  readonly authInfo?: AuthInfo | undefined;
  /** A route anyone may reach (`GET /health`, the OAuth metadata): no credential is asked for. */
  readonly public?: boolean;
  /** The MCP endpoint as the client addressed it, for the OAuth metadata URL in a challenge. */
  readonly endpoint: () => URL;
  /** What the audit event of a refused credential names (the MCP path, or the REST path). */
  readonly target: string;
  /**
   * Another node of the cluster forwarded the request and vouched (signed) for the URL's origin:
   * the `Host` header names this node's internal address, not what the client addressed.
   */
  readonly vouched?: boolean;
}

/** The Host and Origin rules of the HTTP doors. */
export interface OriginRules {
  /** Host names accepted (no port), or `'any'`. */
  readonly allowedHosts: readonly string[] | 'any';
  /** Origin host names accepted from browsers, or `'any'`. */
  readonly allowedOrigins: readonly string[] | 'any';
  /** Whether (and which) proxies are believed about the host the client addressed. */
  readonly trustProxy: TrustProxy;
}

const DOOR_ORIGIN: Record<HttpDoor, string> = { rest: 'rest', mcp: 'http', websocket: 'websocket' };

/**
 * The request stages: Host and Origin (403), then authentication (401 / 403 / 503, 429 after
 * repeated failures). Synchronous when there is nothing to await (no `auth`).
 *
 * @internal Built by the HTTP handler; the doors reach it through `server.fetch` and `server.admit`.
 */
export class RequestAdmission {
  readonly #rules: OriginRules;
  readonly #policy: Policy | undefined;

  constructor(rules: OriginRules, policy: Policy | undefined) {
    this.#rules = rules;
    this.#policy = policy;
  }

  /** Whether a trusted proxy set the URL's host (`X-Forwarded-Host`, believed per `trustProxy`). */
  #forwarded(request: Request): boolean {
    return this.#rules.trustProxy !== false && request.headers.has('x-forwarded-host');
  }

  /** Admits or refuses `request` (its URL already parsed as `url`). */
  admit(request: Request, url: URL, info: RequestInfo): RequestAdmitted | Promise<RequestAdmitted> {
    const refused = this.checkOrigin(request, url, info.vouched);
    if (refused) return { refusal: refused };
    const policy = this.#policy;
    if (!policy) return NO_FACTS;
    const facts: RequestFacts = {
      caller: undefined,
      requestId: info.requestId,
      origin: DOOR_ORIGIN[info.door],
    };
    if (info.address !== undefined) facts.address = info.address;
    if (policy.auth && !info.public) {
      return policy
        .authenticate(request, { url, endpoint: info.endpoint }, { facts, target: info.target })
        .then((outcome) => {
          if ('refusal' in outcome) return outcome;
          facts.caller = outcome.caller;
          return { facts };
        });
    }
    if (!policy.auth && info.authInfo) {
      // The host application authenticated the request (an adapter's authInfo): that is the caller.
      const { authInfo } = info;
      facts.caller = {
        id: authInfo.clientId,
        roles: authInfo.scopes.filter((s) => policy.access.hasRole(s)),
        permissions: [...authInfo.scopes],
        authInfo,
      };
    }
    return { facts };
  }

  /**
   * Host and Origin. Both the URL's host (the Node bridge builds it from the `Host` header, or from
   * `X-Forwarded-Host` when a trusted proxy says so; a fetch runtime from the request line; a request
   * built in process names it itself) and a `Host` header the request carries must be allowed.
   */
  checkOrigin(request: Request, url: URL, vouched = false): Refusal | undefined {
    const { allowedHosts, allowedOrigins } = this.#rules;
    if (allowedHosts !== 'any') {
      const header = request.headers.get('host');
      const refused = hostRefusal(url.host || null, allowedHosts);
      if (refused) return refused;
      // Behind a trusted proxy the URL names the public host and `Host` the proxy's hop; otherwise
      // they agree, and a request built in process may carry a `Host` that says otherwise.
      if (header !== null && header !== url.host && !vouched && !this.#forwarded(request)) {
        const refusedHeader = hostRefusal(header, allowedHosts);
        if (refusedHeader) return refusedHeader;
      }
    }
    if (allowedOrigins !== 'any') {
      const origin = request.headers.get('origin');
      if (origin !== null) {
        const result = validateOriginHeader(origin, allowedOrigins as string[]);
        if (!result.ok) {
          return refuse(
            'FORBIDDEN',
            result.errorCode === 'invalid_origin'
              ? `Invalid Origin: ${quote(result.hostname)} is not in http.allowedOrigins, ${ORIGIN_HINT}`
              : 'Invalid Origin header',
          );
        }
      }
    }
    return undefined;
  }
}

const NO_FACTS: RequestAdmitted = Object.freeze({ facts: undefined });

/**
 * A refused Host or Origin names the option that admits it, so whoever deployed the server (on a fetch
 * runtime, say, where the loopback default refuses every real request) learns what to set from the 403
 * itself; never what the allow-list holds.
 */
const HOST_HINT = 'the server option listing the host names it may be reached by';
const ORIGIN_HINT = 'the server option listing the host names of web pages that may call it';

/** The refusal of a host that is not on the allow-list, naming at most a short prefix of it. */
function hostRefusal(host: string | null, allowed: readonly string[]): Refusal | undefined {
  const result = validateHostHeader(host, allowed as string[]);
  if (result.ok) return undefined;
  // The SDK's own messages repeat the header whole; a refusal names at most a short prefix.
  return refuse(
    'FORBIDDEN',
    result.errorCode === 'invalid_host'
      ? `Invalid Host: ${quote(result.hostname)} is not in http.allowedHosts, ${HOST_HINT}`
      : result.errorCode === 'missing_host'
        ? 'Missing Host header'
        : 'Invalid Host header',
  );
}
