/**
 * Configuration from the environment, in one place. Code options always win; a variable only fills
 * what code left unset. A bad value stops start-up with a message that names the variable and the
 * value expected — never a silent default.
 */
import { LOG_LEVEL_NAMES, toLogLevel } from './logger.js';
import type { LogLevel } from './types.js';

/** What the environment can configure. */
export interface EnvConfig {
  /** `MCP_DATA_DIR`: where the file store keeps its data. */
  dataDir?: string;
  /** `MCP_LOG_LEVEL`: trace, debug, info, warn (`WARNING`), error, fatal (`CRITICAL`) or silent, any case. */
  logLevel?: LogLevel;
  /** `MCP_MAX_CONNECTIONS`: most live MCP connections (sessions and sockets). */
  maxConnections?: number;
  /** `MCP_CACHE_TTL`: default resource cache TTL, read in seconds (or with a unit) and kept in milliseconds (`0` off). */
  cacheTtlMs?: number;
  /** `MCP_RATE_LIMIT`: default requests per minute per caller. */
  rateLimitPerMinute?: number;
  /** `MCP_SECRET_KEY`: the key that encrypts secrets at rest (32 bytes, base64 or hex). */
  secretKey?: string;
  /** `MCP_SECRET_KEY_PREVIOUS`: keys retired by a rotation, which still open values sealed under them. */
  previousSecretKeys?: string[];
  /** `MCP_DOCS`: whether `GET /docs` serves the interactive API reference. */
  docs?: boolean;
}

/** Every variable mcpkit reads, with what it expects (for docs and error messages). */
export const ENV_VARIABLES = {
  MCP_DATA_DIR: 'a directory path',
  MCP_LOG_LEVEL: `one of ${LOG_LEVEL_NAMES}`,
  MCP_MAX_CONNECTIONS: 'a whole number from 1 to 1000000',
  MCP_CACHE_TTL:
    'a number of seconds such as 300 or 0.5 (0 turns the cache off), or a number with a unit ms, s, m or h such as 1500ms or 5m; at most 24 days',
  MCP_RATE_LIMIT: 'a whole number of requests per minute from 1 to 1000000',
  MCP_SECRET_KEY: 'a 32-byte key as 64 hex characters or 44 base64 characters',
  MCP_SECRET_KEY_PREVIOUS: 'comma-separated 32-byte keys, each as 64 hex characters or 44 base64 characters',
  MCP_DOCS: 'on or off (also true, false, 1, 0, yes, no; any case)',
} as const;

/** A configuration value that cannot be used. */
export class ConfigError extends TypeError {
  override readonly name = 'ConfigError';
  readonly variable: string;

  constructor(variable: keyof typeof ENV_VARIABLES, value: string) {
    super(
      `${variable} must be ${ENV_VARIABLES[variable]} (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)})`,
    );
    this.variable = variable;
  }
}

function wholeNumber(
  variable: keyof typeof ENV_VARIABLES,
  value: string,
  [min, max]: readonly [min: number, max: number],
): number {
  if (!/^\d{1,10}$/.test(value)) throw new ConfigError(variable, value);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(variable, value);
  return n;
}

/** Milliseconds in one of each unit `MCP_CACHE_TTL` accepts. */
const TTL_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The longest TTL a timer can hold (2^31 - 1 ms, about 24.8 days). */
const MAX_TTL_MS = 2_147_483_647;

/**
 * A TTL as `MCP_CACHE_TTL` writes it, in milliseconds: a bare number is seconds (the unit the original
 * design documents, `300` is five minutes); a unit `ms`, `s`, `m` or `h` (any case, a space allowed
 * before it) says otherwise. Fractions are allowed down to a whole millisecond.
 *
 * @example
 * ```ts
 * parseTtl('300'); // 300000
 * parseTtl('1500ms'); // 1500
 * parseTtl('5 min'); // throws ConfigError
 * ```
 */
export function parseTtl(value: string): number {
  const match = /^(\d{1,10})(?:\.(\d{1,6}))?(?: ?(ms|s|m|h))?$/i.exec(value);
  if (!match) throw new ConfigError('MCP_CACHE_TTL', value);
  const [, whole = '', fraction = '', unit = 's'] = match;
  const ms = Number(`${whole}.${fraction || '0'}`) * (TTL_UNITS[unit.toLowerCase()] ?? 1000);
  // A fraction of a millisecond is a typo rather than a precision anyone means.
  if (!Number.isInteger(Math.round(ms * 1e6) / 1e6) || ms > MAX_TTL_MS) {
    throw new ConfigError('MCP_CACHE_TTL', value);
  }
  return Math.round(ms);
}

/** Whether `value` is a 32-byte key as 64 hex characters or base64 (standard or URL-safe). */
function isSecretKey(value: string): boolean {
  return (
    /^[0-9a-fA-F]{64}$/.test(value) ||
    /^[A-Za-z0-9+/]{43}=$/.test(value) ||
    /^[A-Za-z0-9_-]{43}=?$/.test(value)
  );
}

/** The process environment where the runtime has one (the core stays runtime-neutral). */
export function processEnv(): Record<string, string | undefined> {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
}

/** A variable's value, trimmed; empty counts as unset. */
function variable(
  env: Record<string, string | undefined>,
  name: keyof typeof ENV_VARIABLES,
): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

/**
 * `MCP_MAX_CONNECTIONS` alone, read and checked as {@link loadEnvConfig} does, for a door that reads
 * it when it is attached (the WebSocket door) rather than when the server starts.
 *
 * @example
 * ```ts
 * envMaxConnections({ MCP_MAX_CONNECTIONS: '500' }); // 500
 * envMaxConnections({ MCP_MAX_CONNECTIONS: 'lots' }); // throws ConfigError
 * ```
 */
export function envMaxConnections(
  env: Record<string, string | undefined> = processEnv(),
): number | undefined {
  const value = variable(env, 'MCP_MAX_CONNECTIONS');
  return value === undefined ? undefined : wholeNumber('MCP_MAX_CONNECTIONS', value, [1, 1_000_000]);
}

/**
 * Reads and validates the `MCP_*` variables. Empty strings count as unset.
 *
 * @example
 * ```ts
 * const config = loadEnvConfig(); // throws ConfigError: "MCP_MAX_CONNECTIONS must be a whole number …"
 * ```
 */
export function loadEnvConfig(env: Record<string, string | undefined> = processEnv()): EnvConfig {
  const get = (name: keyof typeof ENV_VARIABLES) => variable(env, name);
  const config: EnvConfig = {};
  const dataDir = get('MCP_DATA_DIR');
  if (dataDir !== undefined) {
    if (dataDir.includes('\0')) throw new ConfigError('MCP_DATA_DIR', dataDir);
    config.dataDir = dataDir;
  }
  const logLevel = get('MCP_LOG_LEVEL');
  if (logLevel !== undefined) {
    const level = toLogLevel(logLevel);
    if (level === undefined) throw new ConfigError('MCP_LOG_LEVEL', logLevel);
    config.logLevel = level;
  }
  const maxConnections = envMaxConnections(env);
  if (maxConnections !== undefined) config.maxConnections = maxConnections;
  const cacheTtl = get('MCP_CACHE_TTL');
  if (cacheTtl !== undefined) config.cacheTtlMs = parseTtl(cacheTtl);
  const rateLimit = get('MCP_RATE_LIMIT');
  if (rateLimit !== undefined)
    config.rateLimitPerMinute = wholeNumber('MCP_RATE_LIMIT', rateLimit, [1, 1_000_000]);
  const secretKey = get('MCP_SECRET_KEY');
  if (secretKey !== undefined) {
    if (!isSecretKey(secretKey)) throw new ConfigError('MCP_SECRET_KEY', '<hidden>');
    config.secretKey = secretKey;
  }
  const previous = get('MCP_SECRET_KEY_PREVIOUS');
  if (previous !== undefined) {
    const keys = previous
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key !== '');
    if (!keys.every(isSecretKey)) throw new ConfigError('MCP_SECRET_KEY_PREVIOUS', '<hidden>');
    config.previousSecretKeys = keys;
  }
  const docs = get('MCP_DOCS');
  if (docs !== undefined) {
    const flag = SWITCHES[docs.toLowerCase()];
    if (flag === undefined) throw new ConfigError('MCP_DOCS', docs);
    config.docs = flag;
  }
  return config;
}

/** The spellings of a switch. */
const SWITCHES: Readonly<Record<string, boolean>> = Object.assign(Object.create(null), {
  on: true,
  true: true,
  '1': true,
  yes: true,
  off: false,
  false: false,
  '0': false,
  no: false,
});
