/**
 * The policy layer: authentication, permissions, rate limits and audit, composed once. Every door
 * asks it the same question through {@link Policy.admit}: may this caller perform this operation (its
 * permission, the catalog entries it names, in every spelling) and has it paid for it (a token of the
 * operation's rate class)? The answer is a {@link Decision}; `src/http/answers.ts` and
 * `jsonRpcErrorOf` turn a refusal into each door's own form.
 *
 * Size: the one question every door asks, with its audit and rate-limit answers, kept in one class.
 */
import { quote } from '../core/errors.js';
import { type Refusal, type RefusalCode, refuse } from '../core/refusal.js';
import type { ToolCallEvent } from '../execution/events.js';
import type { ToolExecutor } from '../execution/executor.js';
import type { ExecuteOptions } from '../execution/options.js';
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
  type TargetKind,
} from './permissions.js';
import {
  type RateClass,
  type RateDecision,
  RateLimiter,
  type RateLimitOptions,
  type RateLimitRule,
  rateLimitHeaders,
} from './rateLimit.js';
import { spellingsOf, type Target } from './targets.js';

/** The policy options of `createMcpServer`. */
export interface PolicyOptions {
  auth?: AuthOptions;
  roles?: Record<string, RoleDefinition>;
  rules?: AccessRule[];
  rateLimit?: RateLimitOptions | false;
  audit?: { sinks?: AuditSink[] };
}

/** Where a request came from, for rate-limit keys and audit. */
export interface RequestFacts {
  caller: CallerIdentity | undefined;
  address?: string;
  requestId?: string;
  /** The door: `rest`, `http` (MCP over HTTP), `websocket`, `stdio`, `memory`, … */
  origin?: string;
}

/**
 * What the HTTP door learnt about a request (caller, address, request id), found again by the MCP
 * handlers through the SDK's `ctx.http.req`.
 */
export const requestFacts = new WeakMap<Request, RequestFacts>();

/** The caller in-process code and stdio act as: the local user. */
export const LOCAL_CALLER: CallerIdentity = Object.freeze({ id: 'local', roles: ['admin'] });

/** The doors remote clients come through: rate limited, and anonymous without a caller. */
const REMOTE_DOORS = new Set<string>(['http', 'websocket', 'rest']);

/**
 * One operation a door asks the policy about: a REST route or an MCP method, what it needs, and the
 * catalog entries it names. Routes and methods declare these where they are defined.
 */
export interface Operation {
  /** What audit and error messages call it: `tools/call`, `POST /tools/:name/execute`. */
  readonly name: string;
  /** The permission it needs. */
  readonly permission?: Permission | undefined;
  /** Further permissions it needs (a `subscriptions/listen` asking for several kinds). */
  readonly permissions?: readonly Permission[] | undefined;
  /** The rate class it pays one token of; `undefined` costs nothing (`GET /health`). */
  readonly rate?: RateClass | undefined;
  /** The catalog entries it names; each must be visible to the caller, in every spelling. */
  readonly targets?: readonly Target[] | undefined;
}

/** The rate facts of an admitted operation, for the `RateLimit` response headers. */
export interface RateState {
  readonly cls: RateClass;
  readonly rule: RateLimitRule;
  readonly decision: RateDecision;
}

/** What the policy decides about one operation. */
export type Decision =
  | { readonly ok: true; readonly rate?: RateState }
  | { readonly ok: false; readonly refusal: Refusal };

const ADMITTED: Decision = Object.freeze({ ok: true });
/** The rate store is out of reach (a shared store whose Redis is down): retryable, in a second. */
const STORE_DOWN = refuse('UNAVAILABLE', 'The rate limiter is unavailable; try again later', {
  headers: { 'retry-after': '1' },
  data: { retryAfterSeconds: 1 },
});

/** Whatever pays for work done on a caller's behalf: `credit` tokens already paid are used first. */
export interface CallMeter {
  credit: number;
}

/** The status of an authentication failure, as a refusal code. */
const AUTH_FAILURE_CODE: Record<number, RefusalCode> = {
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  503: 'UNAVAILABLE',
};

/**
 * The facts of a tool call (executor options or event) for audit: the HTTP request's id where there
 * is one, so the call lines up with that request's refusals, else the JSON-RPC id.
 */
function callFacts(
  call: Pick<ExecuteOptions, 'origin' | 'requestId' | 'httpRequestId' | 'clientAddress'>,
  caller: CallerIdentity | undefined,
  origin: string | undefined = call.origin,
): RequestFacts {
  const requestId = call.httpRequestId ?? call.requestId;
  const facts: RequestFacts = { caller };
  if (origin !== undefined) facts.origin = origin;
  if (requestId !== undefined) facts.requestId = String(requestId);
  if (call.clientAddress !== undefined) facts.address = call.clientAddress;
  return facts;
}

/** What one rate-limit token pays for: its class, who asked, and the target the audit names. */
interface Payment {
  cls: RateClass;
  facts: RequestFacts;
  target: string;
}

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
  readonly #shareKey: (caller: { id: string } | undefined, address: string | undefined) => string;
  readonly #logger: Logger;

  constructor(options: PolicyOptions, envRatePerMinute: number | undefined, logger: Logger) {
    this.#restricted = options.roles !== undefined || (options.rules?.length ?? 0) > 0;
    this.access = new AccessControl(options.roles ?? {}, options.rules ?? []);
    this.auth = options.auth ? new Authenticator(options.auth, this.access) : undefined;
    const limiter =
      options.rateLimit === false ? undefined : new RateLimiter(options.rateLimit ?? {}, envRatePerMinute);
    this.limiter = limiter?.active ? limiter : undefined;
    this.audit = new AuditLog(options.audit?.sinks ?? [], logger);
    this.#logger = logger;
    this.#shareKey = (limiter ?? new RateLimiter({}, undefined)).keyOf;
  }

  /** What `caller` may do. No caller means in-process code or stdio: the local user, unrestricted. */
  grantOf(caller: CallerIdentity | undefined): Grant {
    return caller ? this.access.grant(caller) : FULL_GRANT;
  }

  /**
   * Whether `caller` may see the catalog entry `name`, in every spelling a reader could receive
   * (nothing is recorded: for filtering what is offered, like completion values).
   */
  canSee(caller: CallerIdentity | undefined, kind: TargetKind, name: string): boolean {
    const grant = this.grantOf(caller);
    const spellings = spellingsOf({ kind, name });
    if (!Array.isArray(spellings)) return false;
    return grant.unrestricted || (spellings as readonly string[]).every((s) => grant.canSee(kind, s));
  }

  /**
   * Whether `caller` may see and act on work `owner` started and the server keeps for it (completion
   * jobs): its own, and everyone's for a caller with the `admin` role (the local user among them).
   * `owner` is `undefined` for work started without a caller, which only admins reach. Decided
   * whether or not anything is configured, like the ownership it guards.
   */
  reachesWorkOf(caller: CallerIdentity, owner: string | undefined): boolean {
    return (owner !== undefined && owner === caller.id) || caller.roles?.includes('admin') === true;
  }

  /**
   * Who a share of held resources (sessions, streams, connections) belongs to: the caller's key, or
   * the client address for anonymous callers, the same key the rate limits use.
   */
  shareKey(facts: RequestFacts): string {
    return this.#shareKey(facts.caller, facts.address);
  }

  /**
   * The pipeline's decision on one operation, the same for every door: an expired token is refused
   * (401), then the operation's permissions (403), then every catalog entry it names, bounded in
   * length and in each spelling a reader could receive (400 / 403), then one token of its rate class
   * on a remote door (429). Refusals are audited and counted. Synchronous unless the rate store is
   * asynchronous.
   */
  admit(operation: Operation, facts: RequestFacts): Decision | Promise<Decision> {
    const caller = facts.caller;
    if (caller) {
      const refused = this.#permitted(operation, caller, facts);
      if (refused) return { ok: false, refusal: refused };
    } else if (operation.targets) {
      // Without a caller every entry is visible, but names are still bounded before use.
      for (const target of operation.targets) {
        const spellings = spellingsOf(target);
        if (!Array.isArray(spellings)) return { ok: false, refusal: spellings as Refusal };
      }
    }
    if (operation.rate === undefined) return ADMITTED;
    return this.#pay(operation.rate, facts, operation.targets?.[0]?.name ?? operation.name);
  }

  /**
   * The executor's check of one tool call made for `caller` (its `authorize` hook): the caller's
   * `tools:execute` permission and the tool's visibility, and for work done on its behalf (a batch,
   * a chain, a model's tool call, a data-defined tool's steps: `delegated`) one `execute` token, as
   * if the caller had asked for the call itself; `meter.credit` spends tokens the request already
   * paid first. A refusal, or `undefined`.
   */
  admitCall(
    tool: string,
    caller: CallerIdentity,
    call: ExecuteOptions & { via?: string; delegated?: boolean; meter?: CallMeter },
  ): Refusal | undefined | Promise<Refusal | undefined> {
    const facts = callFacts(call, caller, call.via ?? call.origin);
    const operation = {
      name: 'tools/call',
      permission: 'tools:execute' as const,
      targets: [{ kind: 'tools' as const, name: tool }],
    };
    const refused = this.#permitted(operation, caller, facts);
    if (refused) return refused;
    if (!call.delegated) return undefined;
    const meter = call.meter;
    if (meter && meter.credit > 0) {
      meter.credit--;
      return undefined;
    }
    const paid = this.#pay('execute', facts, tool);
    return paid instanceof Promise ? paid.then(refusalOf) : refusalOf(paid);
  }

  /** The first reason `caller` may not perform `operation`, recorded; `undefined` when it may. */
  #permitted(operation: Operation, caller: CallerIdentity, facts: RequestFacts): Refusal | undefined {
    // A connection outlives its token (WebSocket): an expired one stops working mid-connection.
    const expiresAt = caller.authInfo?.expiresAt;
    if (expiresAt !== undefined && expiresAt * 1000 <= Date.now()) {
      this.#authFailure(facts, operation.name, 'expired');
      return refuse('UNAUTHORIZED', 'Unauthorized: the access token has expired');
    }
    const grant = this.grantOf(caller);
    const needed = operation.permission;
    if (needed !== undefined && !grant.has(needed)) return this.#forbidden(operation.name, needed, facts);
    if (operation.permissions) {
      for (const permission of operation.permissions) {
        if (!grant.has(permission)) return this.#forbidden(operation.name, permission, facts);
      }
    }
    if (!operation.targets) return undefined;
    for (const target of operation.targets) {
      const spellings = spellingsOf(target);
      if (!Array.isArray(spellings)) return spellings as Refusal;
      if (grant.unrestricted) continue;
      for (const spelling of spellings as readonly string[]) {
        if (!grant.canSee(target.kind, spelling)) {
          this.denied(facts, target.name, `${target.kind} rule`);
          return refuse('FORBIDDEN', `Forbidden: ${quote(target.name)} is not available to this caller`);
        }
      }
    }
    return undefined;
  }

  #forbidden(name: string, permission: Permission, facts: RequestFacts): Refusal {
    this.denied(facts, name, permission);
    return refuse('FORBIDDEN', `Forbidden: ${name} needs the ${permission} permission`);
  }

  /** One token of `cls` for the caller behind `facts`, on a remote door. */
  #pay(cls: RateClass, facts: RequestFacts, target: string): Decision | Promise<Decision> {
    // stdio and in-process work is the local user's: never limited.
    if (!this.limiter || !REMOTE_DOORS.has(facts.origin ?? '')) return ADMITTED;
    const decided = this.limiter.take(cls, facts.caller, facts.address);
    if (decided === undefined) return ADMITTED;
    if (!(decided instanceof Promise)) return this.#rated(decided, { cls, facts, target });
    return decided.then(
      (d) => this.#rated(d, { cls, facts, target }),
      (error: unknown) => {
        // A store that fails refuses: no work goes unpaid because the counters are out of reach.
        this.#logger.error({ err: error }, 'rate limit store failed');
        return { ok: false, refusal: STORE_DOWN };
      },
    );
  }

  #rated(decision: RateDecision, payment: Payment): Decision {
    const { cls } = payment;
    if (decision.allowed) return { ok: true, rate: { cls, rule: this.limiter!.rule(cls)!, decision } };
    return { ok: false, refusal: this.#rateRefusal(decision, payment) };
  }

  #rateRefusal(decision: RateDecision, { cls, facts, target }: Payment): Refusal {
    const rule = this.limiter!.rule(cls)!;
    const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    this.onRefusal?.('rate', cls);
    this.record(facts, {
      action: 'rate_limit.exceeded',
      outcome: 'denied',
      target,
      code: 'RATE_LIMITED',
      details: { class: cls, retryAfterSeconds },
    });
    return refuse(
      'RATE_LIMITED',
      `Rate limit exceeded for ${cls} requests; retry in ${retryAfterSeconds} s`,
      {
        headers: rateLimitHeaders(cls, rule, decision),
        data: { retryAfterSeconds, limit: rule.limit, windowSeconds: Math.ceil(rule.windowMs / 1000) },
      },
    );
  }

  /**
   * The authentication stage of an HTTP door (with `auth` configured): the caller, or the refusal
   * (401 with `WWW-Authenticate`, 403 for a token without a required scope, 503 when the token
   * verifier is down, 429 once failures from one address pass its `read` limit). `target` names the
   * door in the audit event.
   */
  async authenticate(
    request: Request,
    { url, endpoint }: { url: URL; endpoint: () => URL },
    { facts, target }: { facts: RequestFacts; target: string },
  ): Promise<{ caller: CallerIdentity | undefined } | { refusal: Refusal }> {
    const outcome = await this.auth!.authenticate(request, url, endpoint);
    if ('caller' in outcome) return outcome;
    const { failure } = outcome;
    this.#authFailure(facts, target, failure.reason);
    // Failed attempts spend tokens too, per client address, so guessing keys is throttled.
    if (this.limiter) {
      let decision: RateDecision | undefined;
      try {
        decision = await this.limiter.take('read', undefined, facts.address);
      } catch (error) {
        this.#logger.error({ err: error }, 'rate limit store failed');
        return { refusal: STORE_DOWN };
      }
      if (decision !== undefined && !decision.allowed) {
        return { refusal: this.#rateRefusal(decision, { cls: 'read', facts, target }) };
      }
    }
    return {
      refusal: refuse(AUTH_FAILURE_CODE[failure.status] ?? 'UNAUTHORIZED', failure.message, {
        status: failure.status,
        headers: { 'www-authenticate': failure.challenge },
      }),
    };
  }

  /** Records an authentication failure (audit and metrics). */
  #authFailure(facts: RequestFacts, target: string, reason: string): void {
    this.onRefusal?.('auth', reason);
    this.record(facts, {
      action: 'auth.failure',
      outcome: 'denied',
      target,
      code: 'UNAUTHORIZED',
      details: { reason },
    });
  }

  /** Turns every finished tool call of `executor` into a `tool.execute` audit event. */
  auditToolCalls(executor: ToolExecutor): void {
    const record = (outcome: 'success' | 'failure') => (event: ToolCallEvent) =>
      this.record(
        // Without a caller, a remote door means an anonymous client; anything else is local code.
        callFacts(event, event.caller ?? (REMOTE_DOORS.has(event.origin) ? undefined : LOCAL_CALLER)),
        {
          action: 'tool.execute',
          outcome: event.code === 'FORBIDDEN' || event.code === 'RATE_LIMITED' ? 'denied' : outcome,
          target: event.tool,
          durationMs: Math.round(event.durationMs * 1000) / 1000,
          ...(event.code !== undefined && { code: event.code }),
          ...(event.args !== undefined && { details: { arguments: event.args } }),
        },
      );
    executor.on('success', record('success'));
    for (const name of ['error', 'timeout', 'cancel'] as const) executor.on(name, record('failure'));
  }

  #actor: RequestFacts | undefined;

  /**
   * Called on every refusal with its kind and a bounded label (the auth failure's reason, the
   * permission or rule missing, the rate class): the server counts them in its metrics.
   */
  onRefusal: ((kind: 'auth' | 'permission' | 'rate', label: string) => void) | undefined;

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

function refusalOf(decision: Decision): Refusal | undefined {
  return decision.ok ? undefined : decision.refusal;
}
