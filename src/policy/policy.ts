/**
 * The policy layer: authentication, permissions, rate limits and audit, composed once and consulted
 * by every door (REST, MCP over HTTP, MCP over WebSocket and any `connect()`ed transport).
 */
import { ProtocolError } from '@modelcontextprotocol/server';
import { ERROR_CODES } from '../errors.js';
import type { ExecuteOptions, ToolCallEvent, ToolExecutor } from '../executor.js';
import type { CallerIdentity, Logger } from '../types.js';
import { type AuditEvent, AuditLog, type AuditSink } from './audit.js';
import { Authenticator, type AuthOptions } from './auth.js';
import {
  AccessControl,
  type AccessRule,
  FULL_GRANT,
  type Grant,
  type Permission,
  type RoleDefinition,
} from './permissions.js';
import {
  type RateClass,
  type RateDecision,
  RateLimiter,
  type RateLimitOptions,
  type RateLimitRule,
} from './rateLimit.js';

/** The policy options of `createMcpServer`. */
export interface PolicyOptions {
  auth?: AuthOptions;
  roles?: Record<string, RoleDefinition>;
  rules?: AccessRule[];
  rateLimit?: RateLimitOptions | false;
  audit?: { sinks?: AuditSink[] };
}

interface MethodPolicy {
  permission?: Permission;
  rate: RateClass;
}

/** What each MCP request method needs. Methods not listed need no permission and count as reads. */
const MCP_METHODS: Record<string, MethodPolicy> = {
  'tools/list': { permission: 'tools:read', rate: 'read' },
  'tools/call': { permission: 'tools:execute', rate: 'execute' },
  'resources/list': { permission: 'resources:read', rate: 'read' },
  'resources/templates/list': { permission: 'resources:read', rate: 'read' },
  'resources/read': { permission: 'resources:read', rate: 'read' },
  'resources/subscribe': { permission: 'resources:read', rate: 'read' },
  'resources/unsubscribe': { permission: 'resources:read', rate: 'read' },
  'prompts/list': { permission: 'prompts:read', rate: 'read' },
  'prompts/get': { permission: 'prompts:read', rate: 'read' },
  'tasks/get': { permission: 'tools:execute', rate: 'execute' },
  'tasks/update': { permission: 'tools:execute', rate: 'execute' },
  'tasks/cancel': { permission: 'tools:execute', rate: 'execute' },
};
const DEFAULT_METHOD: MethodPolicy = { rate: 'read' };

/**
 * A refused `subscriptions/listen`: the JSON-RPC error to answer with, and the HTTP status (403, or
 * 429 with `retryAfterSeconds` for a rate limit). `undefined` lets the request through.
 */
export type ListenCheck =
  | undefined
  | {
      status: 403 | 429;
      retryAfterSeconds?: number;
      error: { code: number; message: string; data?: Record<string, unknown> };
    };

/** The `data` of a JSON-RPC rate-limit error: when to retry, and the limit that was hit. */
function rateErrorData(refusal: PolicyRefusal): Record<string, unknown> {
  return {
    retryAfterSeconds: refusal.retryAfterSeconds,
    limit: refusal.rate!.rule.limit,
    windowSeconds: Math.ceil(refusal.rate!.rule.windowMs / 1000),
  };
}

/**
 * What each REST route needs, by `METHOD /path`. `/health` needs nothing and is never limited; a
 * route missing here is refused (so a new route cannot ship unguarded: a test checks the table).
 */
export const REST_POLICY: Readonly<Record<string, MethodPolicy | 'public'>> = {
  'GET /health': 'public',
  'GET /metrics': { permission: 'admin:read', rate: 'read' },
  'GET /logs': { permission: 'admin:read', rate: 'read' },
  'GET /summary': { permission: 'admin:read', rate: 'read' },
  'GET /audit': { permission: 'admin:read', rate: 'read' },
  'GET /openapi.json': { permission: 'tools:read', rate: 'read' },
  'GET /tools': { permission: 'tools:read', rate: 'read' },
  'POST /tools': { permission: 'tools:manage', rate: 'manage' },
  'POST /tools/batch': { permission: 'tools:execute', rate: 'execute' },
  'POST /tools/chain': { permission: 'tools:execute', rate: 'execute' },
  'GET /tools/:name': { permission: 'tools:read', rate: 'read' },
  'DELETE /tools/:name': { permission: 'tools:manage', rate: 'manage' },
  'POST /tools/:name/execute': { permission: 'tools:execute', rate: 'execute' },
  'GET /resources': { permission: 'resources:read', rate: 'read' },
  'POST /resources': { permission: 'resources:manage', rate: 'manage' },
  'GET /resources/:uri': { permission: 'resources:read', rate: 'read' },
  'DELETE /resources/:uri': { permission: 'resources:manage', rate: 'manage' },
  'POST /resources/:uri/subscribe': { permission: 'resources:read', rate: 'read' },
  'GET /prompts': { permission: 'prompts:read', rate: 'read' },
  'POST /prompts': { permission: 'prompts:manage', rate: 'manage' },
  'GET /prompts/:name': { permission: 'prompts:read', rate: 'read' },
  'POST /prompts/:name/generate': { permission: 'prompts:read', rate: 'read' },
  'DELETE /prompts/:name': { permission: 'prompts:manage', rate: 'manage' },
  'GET /integrations': { permission: 'integrations:read', rate: 'read' },
  'POST /integrations': { permission: 'integrations:manage', rate: 'manage' },
  'GET /integrations/:id': { permission: 'integrations:read', rate: 'read' },
  'PUT /integrations/:id': { permission: 'integrations:manage', rate: 'manage' },
  'DELETE /integrations/:id': { permission: 'integrations:manage', rate: 'manage' },
  'POST /completions': { permission: 'completions:create', rate: 'completions' },
  'POST /completions/stream': { permission: 'completions:create', rate: 'completions' },
  'GET /completions/:id': { permission: 'completions:create', rate: 'read' },
  'DELETE /completions/:id': { permission: 'completions:create', rate: 'completions' },
};

/** Where a request came from, for rate-limit keys and audit. */
export interface RequestFacts {
  caller: CallerIdentity | undefined;
  address?: string;
  requestId?: string;
  origin?: string;
}

/**
 * What the HTTP door learnt about a request (caller, address, request id), found again by the MCP
 * handlers through the SDK's `ctx.http.req`.
 */
export const requestFacts = new WeakMap<Request, RequestFacts>();

/** What a REST check decides: a refusal, the rate facts for the headers, or nothing to say. */
export type RestCheck = PolicyRefusal | { rate: NonNullable<PolicyRefusal['rate']> } | undefined;

/** A refusal by the policy layer, carried to the door that answers it. */
export interface PolicyRefusal {
  code: 'FORBIDDEN' | 'RATE_LIMITED';
  message: string;
  /** Seconds until a retry can succeed (rate limits). */
  retryAfterSeconds?: number;
  rate?: { cls: RateClass; rule: RateLimitRule; decision: RateDecision };
}

/** The caller in-process code and stdio act as: the local user. */
export const LOCAL_CALLER: CallerIdentity = Object.freeze({ id: 'local', roles: ['admin'] });

/** The doors remote clients come through: rate limited, and anonymous without a caller. */
const REMOTE_DOORS = new Set<string>(['http', 'websocket', 'rest']);

/**
 * The facts of a tool call (executor options or event) for audit: the HTTP request's id where there
 * is one, so the call lines up with that request's refusals, else the JSON-RPC id.
 */
function callFacts(
  call: Pick<ExecuteOptions, 'origin' | 'requestId' | 'httpRequestId' | 'clientAddress'>,
  caller: CallerIdentity | undefined,
): RequestFacts {
  const requestId = call.httpRequestId ?? call.requestId;
  return {
    caller,
    ...(call.origin !== undefined && { origin: call.origin }),
    ...(requestId !== undefined && { requestId: String(requestId) }),
    ...(call.clientAddress !== undefined && { address: call.clientAddress }),
  };
}
const RATE_LIMITED_JSONRPC = ERROR_CODES.RATE_LIMITED.jsonRpc;
const FORBIDDEN_JSONRPC = ERROR_CODES.FORBIDDEN.jsonRpc;

/**
 * The composed policy. One per server; `createMcpServer` builds it from its options.
 *
 * @example
 * ```ts
 * const server = createMcpServer({
 *   auth: { apiKeys: [{ id: 'admin', roles: ['admin'], key: process.env.MCPKIT_API_KEY! }] },
 *   rateLimit: { execute: 60 },
 * });
 * server.policy.grantOf({ id: 'x', roles: ['viewer'] }).has('tools:execute'); // false
 * ```
 */
export class Policy {
  readonly access: AccessControl;
  /** Authentication, when `auth` is configured. */
  readonly auth: Authenticator | undefined;
  /** Rate limits, when any class is limited. */
  readonly limiter: RateLimiter | undefined;
  readonly audit: AuditLog;

  readonly #restricted: boolean;

  constructor(options: PolicyOptions, envRatePerMinute: number | undefined, logger: Logger) {
    this.#restricted = options.roles !== undefined || (options.rules?.length ?? 0) > 0;
    this.access = new AccessControl(options.roles ?? {}, options.rules ?? []);
    this.auth = options.auth ? new Authenticator(options.auth, this.access) : undefined;
    const limiter =
      options.rateLimit === false ? undefined : new RateLimiter(options.rateLimit ?? {}, envRatePerMinute);
    this.limiter = limiter?.active ? limiter : undefined;
    this.audit = new AuditLog(options.audit?.sinks ?? [], logger);
  }

  /**
   * Whether `caller` may run the tool `name`: the executor's `authorize` hook. Returns the refusal
   * message (and records the denial), or `undefined`.
   */
  authorizeTool(name: string, caller: CallerIdentity, call: ExecuteOptions): string | undefined {
    const grant = this.grantOf(caller);
    const needed = !grant.has('tools:execute')
      ? 'tools:execute'
      : grant.canSee('tools', name)
        ? undefined
        : 'tools rule';
    if (needed === undefined) return undefined;
    this.denied(callFacts(call, caller), name, needed);
    return needed === 'tools:execute'
      ? 'Forbidden: running tools needs the tools:execute permission'
      : `Forbidden: ${name} is not available to this caller`;
  }

  /** Turns every finished tool call of `executor` into a `tool.execute` audit event. */
  auditToolCalls(executor: ToolExecutor): void {
    const record = (outcome: 'success' | 'failure') => (event: ToolCallEvent) =>
      this.record(
        // Without a caller, a remote door means an anonymous client; anything else is local code.
        callFacts(event, event.caller ?? (REMOTE_DOORS.has(event.origin) ? undefined : LOCAL_CALLER)),
        {
          action: 'tool.execute',
          outcome: event.code === 'FORBIDDEN' ? 'denied' : outcome,
          target: event.tool,
          durationMs: Math.round(event.durationMs * 1000) / 1000,
          ...(event.code !== undefined && { code: event.code }),
          ...(event.args !== undefined && { details: { arguments: event.args } }),
        },
      );
    executor.on('success', record('success'));
    for (const name of ['error', 'timeout', 'cancel'] as const) executor.on(name, record('failure'));
  }

  /** What `caller` may do. No caller means in-process code or stdio: the local user, unrestricted. */
  grantOf(caller: CallerIdentity | undefined): Grant {
    return caller ? this.access.grant(caller) : FULL_GRANT;
  }

  /**
   * Checks one MCP request before its handler runs: the method's permission, then its rate class.
   * Throws a `ProtocolError` (FORBIDDEN -32003, or RATE_LIMITED -32029 with `retryAfterSeconds`).
   */
  checkMcp(method: string, facts: RequestFacts): void | Promise<void> {
    // A connection outlives its token (WebSocket): an expired one stops working mid-connection.
    const expiresAt = facts.caller?.authInfo?.expiresAt;
    if (expiresAt !== undefined && expiresAt * 1000 <= Date.now()) {
      void this.authFailed(facts, method, 'expired');
      throw new ProtocolError(ERROR_CODES.UNAUTHORIZED.jsonRpc, 'Unauthorized: the access token has expired');
    }
    const policy = MCP_METHODS[method] ?? DEFAULT_METHOD;
    if (policy.permission && facts.caller && !this.grantOf(facts.caller).has(policy.permission)) {
      this.denied(facts, method, policy.permission);
      throw new ProtocolError(
        FORBIDDEN_JSONRPC,
        `Forbidden: ${method} needs the ${policy.permission} permission`,
      );
    }
    // stdio and in-process connections are the local user: never limited.
    if (!this.limiter || !REMOTE_DOORS.has(facts.origin ?? '')) return;
    const decided = this.limiter.take(policy.rate, facts.caller, facts.address);
    if (decided === undefined) return;
    if (decided instanceof Promise) return decided.then((d) => this.#mcpRate(policy.rate, d, facts, method));
    this.#mcpRate(policy.rate, decided, facts, method);
  }

  #mcpRate(cls: RateClass, decision: RateDecision, facts: RequestFacts, target: string): void {
    if (decision.allowed) return;
    const refusal = this.#rateRefusal(cls, decision, facts, target);
    throw new ProtocolError(RATE_LIMITED_JSONRPC, refusal.message, rateErrorData(refusal));
  }

  /**
   * Checks one REST request: the route's permission, then its rate class: a refusal, or the rate
   * facts for the response headers (`undefined` when nothing applies). Synchronous unless the rate
   * store is asynchronous.
   */
  checkRest(routeKey: string, facts: RequestFacts): RestCheck | Promise<RestCheck> {
    const policy = REST_POLICY[routeKey];
    if (policy === 'public') return undefined;
    if (policy === undefined) {
      this.denied(facts, routeKey, 'unlisted route');
      return { code: 'FORBIDDEN', message: 'Forbidden' };
    }
    if (policy.permission && facts.caller && !this.grantOf(facts.caller).has(policy.permission)) {
      this.denied(facts, routeKey, policy.permission);
      return {
        code: 'FORBIDDEN',
        message: `Forbidden: this route needs the ${policy.permission} permission`,
      };
    }
    if (!this.limiter) return undefined;
    const decided = this.limiter.take(policy.rate, facts.caller, facts.address);
    if (decided === undefined) return undefined;
    // A synchronous store (the memory one) answers without a promise in the way.
    return decided instanceof Promise
      ? decided.then((d) => this.#restRate(policy.rate, d, facts, routeKey))
      : this.#restRate(policy.rate, decided, facts, routeKey);
  }

  /**
   * Checks a 2026-07-28 `subscriptions/listen` request, which the SDK answers before any handler:
   * each kind of notification asked for needs its read permission, each resource URI must be
   * visible, and on a remote door the request takes a `read` rate-limit token (a listen holds a
   * stream open, so an unlimited caller could hold any number). Returns the refusal, or `undefined`
   * to let it through; asynchronous only when the rate store is.
   */
  checkListen(params: unknown, facts: RequestFacts): ListenCheck | Promise<ListenCheck> {
    if (facts.caller) {
      const forbidden = this.#listenPermissions(params, facts, facts.caller);
      if (forbidden !== undefined) {
        return { status: 403, error: { code: FORBIDDEN_JSONRPC, message: forbidden } };
      }
    }
    if (!this.limiter || !REMOTE_DOORS.has(facts.origin ?? '')) return undefined;
    const cls = (MCP_METHODS['subscriptions/listen'] ?? DEFAULT_METHOD).rate;
    const decided = this.limiter.take(cls, facts.caller, facts.address);
    if (decided === undefined) return undefined;
    return decided instanceof Promise
      ? decided.then((d) => this.#listenRate(cls, d, facts))
      : this.#listenRate(cls, decided, facts);
  }

  #listenPermissions(params: unknown, facts: RequestFacts, caller: CallerIdentity): string | undefined {
    const filter = (params as { notifications?: Record<string, unknown> } | undefined)?.notifications ?? {};
    const grant = this.grantOf(caller);
    const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions : [];
    const needed: Permission[] = [];
    if (filter.toolsListChanged === true) needed.push('tools:read');
    if (filter.promptsListChanged === true) needed.push('prompts:read');
    if (filter.resourcesListChanged === true || uris.length > 0) needed.push('resources:read');
    for (const permission of needed) {
      if (!grant.has(permission)) {
        this.denied(facts, 'subscriptions/listen', permission);
        return `Forbidden: these notifications need the ${permission} permission`;
      }
    }
    for (const uri of uris) {
      if (typeof uri === 'string' && !grant.canSee('resources', uri)) {
        this.denied(facts, uri, 'resources rule');
        return `Forbidden: ${uri} is not available to this caller`;
      }
    }
    return undefined;
  }

  #listenRate(cls: RateClass, decision: RateDecision, facts: RequestFacts): ListenCheck {
    if (decision.allowed) return undefined;
    const refusal = this.#rateRefusal(cls, decision, facts, 'subscriptions/listen');
    return {
      status: 429,
      retryAfterSeconds: refusal.retryAfterSeconds!,
      error: { code: RATE_LIMITED_JSONRPC, message: refusal.message, data: rateErrorData(refusal) },
    };
  }

  #restRate(cls: RateClass, decision: RateDecision, facts: RequestFacts, routeKey: string): RestCheck {
    if (decision.allowed) return { rate: { cls, rule: this.limiter!.rule(cls)!, decision } };
    return this.#rateRefusal(cls, decision, facts, routeKey);
  }

  #rateRefusal(cls: RateClass, decision: RateDecision, facts: RequestFacts, target: string): PolicyRefusal {
    const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    this.onRefusal?.('rate', cls);
    this.record(facts, {
      action: 'rate_limit.exceeded',
      outcome: 'denied',
      target,
      code: 'RATE_LIMITED',
      details: { class: cls, retryAfterSeconds },
    });
    return {
      code: 'RATE_LIMITED',
      message: `Rate limit exceeded for ${cls} requests; retry in ${retryAfterSeconds} s`,
      retryAfterSeconds,
      rate: { cls, rule: this.limiter!.rule(cls)!, decision },
    };
  }

  #actor: RequestFacts | undefined;

  /**
   * Called on every refusal with its kind and a bounded label (the auth failure's reason, the
   * permission or rule missing, the rate class): the server counts them in its metrics.
   */
  onRefusal: ((kind: 'auth' | 'permission' | 'rate', label: string) => void) | undefined;

  /** Records an authentication failure (audit and metrics). */
  async authFailed(facts: RequestFacts, target: string, reason: string): Promise<PolicyRefusal | undefined> {
    this.onRefusal?.('auth', reason);
    this.record(facts, {
      action: 'auth.failure',
      outcome: 'denied',
      target,
      code: 'UNAUTHORIZED',
      details: { reason },
    });
    // Failed attempts spend tokens too, per client address, so guessing keys is throttled.
    if (!this.limiter) return undefined;
    const decision = await this.limiter.take('read', undefined, facts.address);
    if (decision === undefined || decision.allowed) return undefined;
    return this.#rateRefusal('read', decision, facts, target);
  }

  /**
   * Runs `change` (a synchronous catalog mutation) on behalf of `facts`, so the audit event it
   * causes names that caller instead of `local`.
   */
  asActor<T>(facts: RequestFacts, change: () => T): T {
    const previous = this.#actor;
    this.#actor = facts;
    try {
      return change();
    } finally {
      this.#actor = previous;
    }
  }

  /** Records a catalog change (wired to every catalog's observer). */
  catalogChanged(kind: string, op: string, key: string): void {
    if (!this.audit.enabled) return;
    const facts = this.#actor ?? { caller: LOCAL_CALLER };
    this.record(facts, { action: 'catalog.change', outcome: 'success', target: key, details: { kind, op } });
  }

  /** Whether anything is configured: without it the doors skip the policy entirely. */
  get active(): boolean {
    return this.auth !== undefined || this.limiter !== undefined || this.audit.enabled || this.#restricted;
  }

  /** Records a permission denial. */
  denied(facts: RequestFacts, target: string, needed: string): void {
    this.onRefusal?.('permission', needed);
    this.record(facts, {
      action: 'permission.denied',
      outcome: 'denied',
      target,
      code: 'FORBIDDEN',
      details: { needed },
    });
  }

  /** Records an audit event with the request's facts filled in. */
  record(facts: RequestFacts, event: Omit<AuditEvent, 'time' | 'callerId'> & { callerId?: string }): void {
    if (!this.audit.enabled) return;
    this.audit.record({
      callerId: facts.caller?.id ?? 'anonymous',
      ...(facts.requestId !== undefined && { requestId: facts.requestId }),
      ...(facts.origin !== undefined && { origin: facts.origin }),
      ...(facts.address !== undefined && { address: facts.address }),
      ...event,
    });
  }
}
