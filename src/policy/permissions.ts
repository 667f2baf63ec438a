/**
 * Roles and permissions: what a caller may do (permissions) and which tools, resources and prompts
 * it may see and use (target patterns). Compiled once per distinct set of roles and cached, so a
 * request pays a map lookup, not a walk over the configuration.
 */
import type { CallerIdentity } from '../types.js';

/** Every permission mcpkit checks. */
export const PERMISSIONS = [
  'tools:read',
  'tools:execute',
  'tools:manage',
  'resources:read',
  'resources:manage',
  'prompts:read',
  'prompts:manage',
  'integrations:read',
  'integrations:manage',
  'integrations:backup',
  'completions:create',
  'admin:read',
] as const;

/** A permission: `area:action`. */
export type Permission = (typeof PERMISSIONS)[number];

/**
 * Permissions an `area:*` pattern does not reach: a role holds one only by naming it, or through
 * `*` (the built-in `admin`). `integrations:backup` exports secrets (in clear when asked), which is
 * more than managing an area should silently bring.
 *
 * @example
 * ```ts
 * SENSITIVE_PERMISSIONS.has('integrations:backup'); // true: `integrations:*` does not grant it
 * ```
 */
export const SENSITIVE_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>(['integrations:backup']);

/**
 * A permission, `area:*` for every action in an area but the {@link SENSITIVE_PERMISSIONS}, or `*`
 * for all.
 */
export type PermissionPattern =
  | Permission
  | `${'tools' | 'resources' | 'prompts' | 'integrations' | 'completions' | 'admin'}:*`
  | '*';

/** The kinds of catalog entry a rule can name. */
export type TargetKind = 'tools' | 'resources' | 'prompts';

/**
 * A role: the permissions it grants and, optionally, which catalog entries they reach. Target lists
 * hold names (tools, prompts) or URIs (resources) with `*` as a wildcard; an entry starting with `!`
 * excludes what it matches. Without a list the role reaches every entry of that kind.
 *
 * @example
 * ```ts
 * const support: RoleDefinition = {
 *   permissions: ['tools:read', 'tools:execute', 'resources:read'],
 *   tools: ['tickets.*', '!tickets.delete'],
 *   resources: ['kb://*'],
 * };
 * ```
 */
export interface RoleDefinition {
  permissions: readonly PermissionPattern[];
  tools?: readonly string[];
  resources?: readonly string[];
  prompts?: readonly string[];
  description?: string;
}

/**
 * A rule that reserves matching catalog entries for some roles: a caller without one of `roles`
 * neither sees nor uses them, whatever its permissions.
 *
 * @example
 * ```ts
 * const rule: AccessRule = { tools: ['admin.*', 'delete_*'], roles: ['admin'] };
 * ```
 */
export interface AccessRule {
  tools?: string | readonly string[];
  resources?: string | readonly string[];
  prompts?: string | readonly string[];
  roles: readonly string[];
}

/**
 * The built-in roles. Redefine one under the same name in `roles` to change it.
 *
 * - `admin`: everything.
 * - `operator`: runs and manages tools, resources and prompts; creates completions; reads
 *   integrations (without their secrets) and the operational endpoints (`/metrics`, `/logs`,
 *   `/summary`, audit).
 * - `user`: lists and runs tools, reads resources and prompts, creates completions.
 * - `viewer`: lists tools, reads resources and prompts; runs nothing.
 */
export const BUILTIN_ROLES: Readonly<Record<'admin' | 'operator' | 'user' | 'viewer', RoleDefinition>> =
  Object.freeze({
    admin: { permissions: ['*'], description: 'Everything' },
    operator: {
      permissions: [
        'tools:*',
        'resources:*',
        'prompts:*',
        'completions:create',
        'integrations:read',
        'admin:read',
      ],
      description: 'Runs and manages the catalog; reads operations data',
    },
    user: {
      permissions: ['tools:read', 'tools:execute', 'resources:read', 'prompts:read', 'completions:create'],
      description: 'Uses tools, resources, prompts and completions',
    },
    viewer: {
      permissions: ['tools:read', 'resources:read', 'prompts:read'],
      description: 'Reads the catalog; runs nothing',
    },
  });

/** What one caller may do, compiled from its roles and direct permissions. */
export interface Grant {
  /** A stable key for caches: equal for callers with the same roles and permissions. */
  readonly key: string;
  /** Whether every entry of every kind is reachable (no target lists, no rule applies). */
  readonly unrestricted: boolean;
  has(permission: Permission): boolean;
  /** Whether the caller may see and use the catalog entry `name` (a URI for resources). */
  canSee(kind: TargetKind, name: string): boolean;
}

interface Matcher {
  allow: Glob[];
  deny: Glob[];
}

/** A `*` pattern split at its stars: the literal pieces in order. */
interface Glob {
  test(name: string): boolean;
}

/**
 * A `*` pattern (a star matches any run of characters, `/` included) matched without a regular
 * expression: each literal piece is found with one forward search from where the last one ended, so
 * matching is linear in the name whatever the pattern, where a backtracking regex with several stars
 * is polynomial in an attacker-sized URI.
 */
function glob(pattern: string): Glob {
  const pieces = pattern.split('*');
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (pieces.length === 1) return { test: (name) => name === pattern };
  const middle = pieces.slice(1, -1);
  return {
    test(name) {
      if (name.length < first.length + last.length) return false;
      if (!name.startsWith(first) || !name.endsWith(last)) return false;
      let at = first.length;
      const end = name.length - last.length;
      for (const piece of middle) {
        if (piece === '') continue;
        const found = name.indexOf(piece, at);
        if (found < 0 || found + piece.length > end) return false;
        at = found + piece.length;
      }
      return true;
    },
  };
}

function compileTargets(patterns: readonly string[] | undefined): Matcher | undefined {
  if (patterns === undefined) return undefined;
  const matcher: Matcher = { allow: [], deny: [] };
  for (const p of patterns) {
    if (typeof p !== 'string' || p === '' || p === '!')
      throw new TypeError('target patterns must be non-empty strings');
    if (p.startsWith('!')) matcher.deny.push(glob(p.slice(1)));
    else matcher.allow.push(glob(p));
  }
  return matcher;
}

function matches(matcher: Matcher, name: string): boolean {
  return matcher.allow.some((r) => r.test(name)) && !matcher.deny.some((r) => r.test(name));
}

function expand(pattern: string): Permission[] {
  if (pattern === '*') return [...PERMISSIONS];
  if (pattern.endsWith(':*')) {
    const area = pattern.slice(0, -1);
    const inArea = PERMISSIONS.filter((p) => p.startsWith(area));
    // A sensitive permission is granted by name (or `*`), never by its area's wildcard.
    if (inArea.length > 0) return inArea.filter((p) => !SENSITIVE_PERMISSIONS.has(p));
  } else if ((PERMISSIONS as readonly string[]).includes(pattern)) {
    return [pattern as Permission];
  }
  throw new TypeError(`unknown permission "${pattern}" (known: ${PERMISSIONS.join(', ')}, area:* or *)`);
}

interface CompiledRole {
  permissions: Set<Permission>;
  targets: Record<TargetKind, Matcher | undefined>;
}

interface CompiledRule {
  targets: Record<TargetKind, Glob[]>;
  roles: Set<string>;
}

const KINDS: readonly TargetKind[] = ['tools', 'resources', 'prompts'];
const KNOWN_PERMISSIONS: ReadonlySet<string> = new Set(PERMISSIONS);
/** Distinct grants kept; past it the cache starts over (each is a few closures). */
const MAX_GRANTS = 10_000;

/**
 * Compiles roles and rules, and hands out one cached {@link Grant} per distinct set of roles.
 *
 * @example
 * ```ts
 * const access = new AccessControl({ support: { permissions: ['tools:execute'], tools: ['tickets.*'] } });
 * access.grant({ id: 'k1', roles: ['support'] }).canSee('tools', 'tickets.open'); // true
 * ```
 */
export class AccessControl {
  readonly #roles = new Map<string, CompiledRole>();
  readonly #rules: CompiledRule[];
  readonly #grants = new Map<string, Grant>();
  readonly #byCaller = new WeakMap<CallerIdentity, Grant>();

  constructor(roles: Readonly<Record<string, RoleDefinition>> = {}, rules: readonly AccessRule[] = []) {
    for (const [name, def] of Object.entries({ ...BUILTIN_ROLES, ...roles })) {
      if (!def || !Array.isArray(def.permissions)) {
        throw new TypeError(`roles.${name}.permissions must be an array of permissions`);
      }
      this.#roles.set(name, {
        permissions: new Set(def.permissions.flatMap(expand)),
        targets: {
          tools: compileTargets(def.tools),
          resources: compileTargets(def.resources),
          prompts: compileTargets(def.prompts),
        },
      });
    }
    this.#rules = rules.map((rule, i) => {
      if (!rule || !Array.isArray(rule.roles) || rule.roles.length === 0) {
        throw new TypeError(`rules[${i}].roles must name at least one role`);
      }
      for (const role of rule.roles) this.assertRole(role, `rules[${i}].roles`);
      const list = (v: string | readonly string[] | undefined) =>
        (v === undefined ? [] : typeof v === 'string' ? [v] : [...v]).map(glob);
      return {
        roles: new Set(rule.roles),
        targets: { tools: list(rule.tools), resources: list(rule.resources), prompts: list(rule.prompts) },
      };
    });
  }

  /** Throws a `TypeError` naming `where` when `role` is not defined. */
  assertRole(role: string, where: string): void {
    if (!this.#roles.has(role)) {
      throw new TypeError(`${where}: unknown role "${role}" (known: ${[...this.#roles.keys()].join(', ')})`);
    }
  }

  /** Whether `role` is defined (built in or configured). */
  hasRole(role: string): boolean {
    return this.#roles.has(role);
  }

  /**
   * The grant of `caller`; cached per caller object and per distinct set of defined roles and known
   * permissions (names that mean nothing, such as an OAuth token's other scopes, do not make a new
   * grant, so the cache stays as small as the configuration allows).
   */
  grant(caller: CallerIdentity): Grant {
    const cached = this.#byCaller.get(caller);
    if (cached) return cached;
    const roles = [...new Set(caller.roles ?? [])].filter((r) => this.#roles.has(r)).sort();
    const direct = [...new Set(caller.permissions ?? [])].filter((p) => KNOWN_PERMISSIONS.has(p)).sort();
    const key = `${roles.join(',')}|${direct.join(',')}`;
    let grant = this.#grants.get(key);
    if (!grant) {
      grant = this.#compile(roles, direct, key);
      if (this.#grants.size > MAX_GRANTS) this.#grants.clear();
      this.#grants.set(key, grant);
    }
    this.#byCaller.set(caller, grant);
    return grant;
  }

  #compile(roleNames: string[], directNames: string[], key: string): Grant {
    const roles = roleNames.map((n) => this.#roles.get(n)).filter((r): r is CompiledRole => r !== undefined);
    const permissions = new Set<Permission>();
    for (const role of roles) for (const p of role.permissions) permissions.add(p);
    // Direct permissions (OAuth scopes that name permissions) apply to every entry; other scopes
    // (`openid`, role names) were left out by `grant`.
    const direct = directNames;
    for (const p of direct) permissions.add(p as Permission);
    const roleSet = new Set(roleNames);
    // Rules reserving entries for roles this caller does not hold; `admin` is never refused by one.
    const rules = roleSet.has('admin')
      ? []
      : this.#rules.filter((rule) => ![...rule.roles].some((r) => roleSet.has(r)));
    // Visibility is the union over roles: one role without target lists reaches everything.
    const unrestricted =
      rules.length === 0 &&
      (direct.length > 0 || roles.some((r) => KINDS.every((k) => r.targets[k] === undefined)));
    // Decided afresh for every name: a cache of names callers ask about would grow with what they
    // send, and the patterns are few.
    const decide = (kind: TargetKind, name: string): boolean => {
      if (rules.some((rule) => rule.targets[kind].some((r) => r.test(name)))) return false;
      if (direct.length > 0) return true;
      return roles.some((role) => {
        const matcher = role.targets[kind];
        return matcher === undefined || matches(matcher, name);
      });
    };
    return {
      key,
      unrestricted,
      has: (permission) => permissions.has(permission),
      canSee: (kind, name) => unrestricted || decide(kind, name),
    };
  }
}

/** The grant of a caller with every permission and no restriction: no policy configured, or stdio. */
export const FULL_GRANT: Grant = Object.freeze({
  key: '*',
  unrestricted: true,
  has: () => true,
  canSee: () => true,
});

const filtered = new WeakMap<readonly unknown[], Map<string, unknown[]>>();

/** How the policy names the entries of one kind of list: their kind, and each one's name. */
export interface ListView<T> {
  readonly kind: TargetKind;
  nameOf(item: T): string;
}

/** Tools by name. */
export const TOOLS_VIEW: ListView<{ name: string }> = { kind: 'tools', nameOf: (tool) => tool.name };
/** Prompts by name. */
export const PROMPTS_VIEW: ListView<{ name: string }> = { kind: 'prompts', nameOf: (prompt) => prompt.name };
/** Resources by URI. */
export const RESOURCES_VIEW: ListView<{ uri: string }> = {
  kind: 'resources',
  nameOf: (resource) => resource.uri,
};
/** Resource templates by their template. */
export const TEMPLATES_VIEW: ListView<{ uriTemplate: string }> = {
  kind: 'resources',
  nameOf: (template) => template.uriTemplate,
};

/**
 * `items` without the entries `grant` may not see; the same array for an unrestricted grant, and one
 * cached array per list and grant otherwise (lists are rebuilt once per catalog change).
 */
export function visibleItems<T extends U, U>(
  grant: Grant,
  view: ListView<U>,
  items: readonly T[],
): readonly T[] {
  const { kind, nameOf } = view;
  if (grant.unrestricted) return items;
  let byGrant = filtered.get(items);
  if (!byGrant) {
    byGrant = new Map();
    filtered.set(items, byGrant);
  }
  let list = byGrant.get(grant.key) as T[] | undefined;
  if (!list) {
    list = items.filter((item) => grant.canSee(kind, nameOf(item)));
    byGrant.set(grant.key, list);
  }
  return list;
}
