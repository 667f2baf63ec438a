/**
 * Every MCP request method mcpkit serves, in both protocol eras, with what it needs: its permission,
 * the rate class it pays, and the catalog entries a request names. The SDK's built-in methods
 * (`initialize`, `ping`, `server/discover`, `logging/setLevel`, `subscriptions/listen`) are declared
 * here like mcpkit's own, and `createSessionServer` registers a handler only for a method declared
 * here. The admission gate of every MCP door reads this table before the SDK sees a request.
 */
import type { Permission } from '../policy/permissions.js';
import type { Operation } from '../policy/policy.js';
import type { RateClass } from '../policy/rateLimit.js';
import type { Target } from '../policy/targets.js';

/** What one MCP request method needs. */
export interface McpMethod {
  /** The permission any request of the method needs. */
  readonly permission?: Permission;
  /** The rate class a request pays one token of. */
  readonly rate: RateClass;
  /** What a request names (catalog entries) and the further permissions those imply. */
  readonly needs?: (params: Record<string, unknown>) => Needs;
}

/** What one request names. */
export interface Needs {
  readonly targets?: Target[];
  readonly permissions?: Permission[];
}

/** A method whose request names one catalog entry in `params[field]`. */
function naming(kind: Target['kind'], field: string): (params: Record<string, unknown>) => Needs {
  return (params) => {
    const name = params[field];
    // A missing or mistyped name is the SDK's to refuse (-32602) once the request is admitted.
    return typeof name === 'string' ? { targets: [{ kind, name }] } : NOTHING;
  };
}

const NOTHING: Needs = Object.freeze({});

/** `completion/complete` reads a prompt's or a resource template's completer. */
function completionNeeds(params: Record<string, unknown>): Needs {
  const ref = params.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
  if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
    return { permissions: ['prompts:read'], targets: [{ kind: 'prompts', name: ref.name }] };
  }
  if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
    return { permissions: ['resources:read'], targets: [{ kind: 'resources', name: ref.uri }] };
  }
  return NOTHING;
}

/**
 * A 2026-07-28 `subscriptions/listen` (answered by the SDK itself): each kind of notification asked
 * for needs its read permission, and every resource subscribed to must be visible.
 */
function listenNeeds(params: Record<string, unknown>): Needs {
  const filter = (params.notifications ?? {}) as Record<string, unknown>;
  const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions : [];
  const permissions: Permission[] = [];
  if (filter.toolsListChanged === true) permissions.push('tools:read');
  if (filter.promptsListChanged === true) permissions.push('prompts:read');
  if (filter.resourcesListChanged === true || uris.length > 0) permissions.push('resources:read');
  const targets: Target[] = [];
  for (const uri of uris) if (typeof uri === 'string') targets.push({ kind: 'resources', name: uri });
  return { permissions, targets };
}

/** The methods, both eras. Anything else costs a `read` token and is the SDK's to answer (-32601). */
export const MCP_METHODS = {
  initialize: { rate: 'read' },
  ping: { rate: 'read' },
  'server/discover': { rate: 'read' },
  'logging/setLevel': { rate: 'read' },
  'subscriptions/listen': { rate: 'read', needs: listenNeeds },
  'tools/list': { permission: 'tools:read', rate: 'read' },
  'tools/call': { permission: 'tools:execute', rate: 'execute', needs: naming('tools', 'name') },
  'resources/list': { permission: 'resources:read', rate: 'read' },
  'resources/templates/list': { permission: 'resources:read', rate: 'read' },
  'resources/read': { permission: 'resources:read', rate: 'read', needs: naming('resources', 'uri') },
  'resources/subscribe': { permission: 'resources:read', rate: 'read', needs: naming('resources', 'uri') },
  'resources/unsubscribe': { permission: 'resources:read', rate: 'read' },
  'prompts/list': { permission: 'prompts:read', rate: 'read' },
  'prompts/get': { permission: 'prompts:read', rate: 'read', needs: naming('prompts', 'name') },
  'completion/complete': { rate: 'read', needs: completionNeeds },
  'tasks/get': { permission: 'tools:execute', rate: 'execute' },
  'tasks/update': { permission: 'tools:execute', rate: 'execute' },
  'tasks/cancel': { permission: 'tools:execute', rate: 'execute' },
} as const satisfies Record<string, McpMethod>;

/** A method mcpkit declares. */
export type McpMethodName = keyof typeof MCP_METHODS;

/** The methods the SDK answers itself (mcpkit registers no handler for them). */
const SDK_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'server/discover',
  'logging/setLevel',
  'subscriptions/listen',
]);

/**
 * The methods whose handlers mcpkit registers, which report when they have really finished (a
 * cancelled request's slot on a connection is held until then).
 */
export const SETTLING_METHODS: readonly string[] = Object.keys(MCP_METHODS).filter(
  (m) => !SDK_METHODS.has(m),
);

const UNLISTED: McpMethod = { rate: 'read' };

/** The operation a JSON-RPC request of `method` with `params` asks the policy for. */
export function operationOf(method: string, params: unknown): Operation {
  const spec: McpMethod = Object.hasOwn(MCP_METHODS, method)
    ? MCP_METHODS[method as McpMethodName]
    : UNLISTED;
  const needs =
    spec.needs && typeof params === 'object' && params !== null && !Array.isArray(params)
      ? spec.needs(params as Record<string, unknown>)
      : NOTHING;
  return {
    // An unlisted method is named generically: its name is the caller's, of any length.
    name: spec === UNLISTED ? 'unlisted method' : method,
    permission: spec.permission,
    permissions: needs.permissions,
    rate: spec.rate,
    targets: needs.targets,
  };
}
