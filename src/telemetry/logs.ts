import type { LogFn, Logger, LogLevel } from '../types.js';
import { Ring } from './ring.js';

/** One structured log record as `GET /logs` returns it. */
export interface LogRecord {
  time: string;
  level: Exclude<LogLevel, 'silent'>;
  msg?: string;
  requestId?: string;
  [field: string]: unknown;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
/** Keys whose values are never logged or audited. */
export const SECRET_KEY =
  /authorization|api[-_]?key|secret|token|password|passwd|cookie|credential|private[-_]?key/i;
const MAX_DEPTH = 6;
const MAX_STRING = 2000;
const MAX_KEYS = 50;

/**
 * Redacts values under secret-looking keys and bounds the size of anything logged: deep or huge
 * values are summarised instead of breaking the logger.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string')
    return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…(${value.length} chars)` : value;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error)
    return { name: value.name, message: redact(value.message, depth + 1), stack: value.stack };
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[array(${value.length})]` : '[object]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_KEYS).map((v) => redact(v, depth + 1));
    return value.length > MAX_KEYS ? [...items, `…(${value.length - MAX_KEYS} more)`] : items;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [key, v] of Object.entries(value)) {
    if (n++ >= MAX_KEYS) {
      out['…'] = `${Object.keys(value).length - MAX_KEYS} more keys`;
      break;
    }
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

/** A bounded ring of recent log records. */
export class LogRing {
  readonly #ring: Ring<LogRecord>;

  constructor(capacity = 1000) {
    this.#ring = new Ring(capacity, 'log ring capacity');
  }

  push(record: LogRecord): void {
    this.#ring.push(record);
  }

  /** Records oldest first, filtered. */
  query(filter: { level?: string; since?: number; limit?: number; requestId?: string } = {}): LogRecord[] {
    const ordered = this.#ring.ordered();
    const min = filter.level ? (LEVELS[filter.level] ?? 0) : 0;
    const matched = ordered.filter(
      (r) =>
        (LEVELS[r.level] ?? 0) >= min &&
        (filter.since === undefined || Date.parse(r.time) >= filter.since) &&
        (filter.requestId === undefined || r.requestId === filter.requestId),
    );
    return filter.limit === undefined ? matched : matched.slice(-filter.limit);
  }
}

/**
 * A logger that writes to `base` (redacted) and keeps the records at `level` and above in `ring` too.
 */
export function teeLogger(
  base: Logger,
  ring: LogRing,
  level: LogLevel,
  bindings: Record<string, unknown> = {},
): Logger {
  const threshold = level === 'silent' ? Number.POSITIVE_INFINITY : (LEVELS[level] ?? 30);
  const method = (level: Exclude<LogLevel, 'silent' | 'fatal'>): LogFn =>
    ((fields: object | string, message?: string) => {
      if (LEVELS[level]! < threshold) return;
      const safe = typeof fields === 'string' ? undefined : (redact(fields) as Record<string, unknown>);
      const record: LogRecord = {
        time: new Date().toISOString(),
        level,
        ...(redact(bindings) as Record<string, unknown>),
        ...safe,
        ...(typeof fields === 'string' ? { msg: fields } : message !== undefined && { msg: message }),
      };
      ring.push(record);
      if (typeof fields === 'string') base[level](fields);
      else base[level](safe ?? {}, message);
    }) as LogFn;
  return {
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    child: (more) => teeLogger(base.child(more), ring, level, { ...bindings, ...more }),
  };
}
