import { redact, redactText, redactValue } from '../core/redaction.js';
import { type LoggerMethodLevel, loggerOf } from '../logger.js';
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
/** The longest log message kept (longer ones are cut and marked). */
const LOG_MESSAGE_LENGTH = 2000;
/** How many bytes of JSON a logger's bindings (its child fields) may take in each record. */
const LOG_BINDINGS_BUDGET = 2 * 1024;

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
 * A logger that writes to `base` (redacted) and keeps the records at `level` and above in `ring` too;
 * `bindings` are a child logger's fields.
 */
export function teeLogger(
  base: Logger,
  { ring, level, bindings = {} }: { ring: LogRing; level: LogLevel; bindings?: Record<string, unknown> },
): Logger {
  const threshold = level === 'silent' ? Number.POSITIVE_INFINITY : (LEVELS[level] ?? 30);
  const boundBindings = redactValue(bindings, { budget: LOG_BINDINGS_BUDGET }) as Record<string, unknown>;
  const method = (level: LoggerMethodLevel): LogFn =>
    ((fields: object | string, message?: string) => {
      if (LEVELS[level]! < threshold) return;
      // Bounded in all: the logger's bindings (once per logger), the fields, the message.
      const safe = typeof fields === 'string' ? undefined : (redact(fields) as Record<string, unknown>);
      const text = typeof fields === 'string' ? fields : message;
      const msg =
        text === undefined ? undefined : redactText(text, { maxLength: LOG_MESSAGE_LENGTH, keepPaths: true });
      const record: LogRecord = {
        time: new Date().toISOString(),
        level,
        ...boundBindings,
        ...safe,
        ...(msg !== undefined && { msg }),
      };
      ring.push(record);
      if (typeof fields === 'string') base[level](msg!);
      else base[level](safe ?? {}, msg);
    }) as LogFn;
  return loggerOf(method, (more) =>
    teeLogger(base.child(more), { ring, level, bindings: { ...bindings, ...more } }),
  );
}
