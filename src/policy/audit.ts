/**
 * The audit log: who did what to which target, when, and how it ended, for every tool execution,
 * catalog change, authentication failure, permission denial and rate-limit refusal. Events go to
 * sinks; secrets are redacted and large arguments summarised to a bounded size first.
 */
import { detach } from '../core/errors.js';
import { summarise } from '../core/redaction.js';
import { Ring } from '../telemetry/ring.js';
import type { Logger } from '../types.js';

/** What happened. */
export type AuditAction =
  | 'tool.execute'
  | 'catalog.change'
  | 'auth.failure'
  | 'permission.denied'
  | 'rate_limit.exceeded'
  | 'integration.change'
  | 'integration.export'
  | 'integration.import';

/** One audit event. */
export interface AuditEvent {
  /** ISO 8601. */
  time: string;
  action: AuditAction;
  outcome: 'success' | 'failure' | 'denied';
  /** The caller's id; `anonymous` without one, `local` for stdio and in-process code. */
  callerId: string;
  requestId?: string;
  /** What it was done to: a tool name, resource URI, prompt name, route or integration id. */
  target?: string;
  /** Which door: `http`, `rest`, `websocket`, `stdio`, `memory`, … */
  origin?: string;
  /** The client address, when known. */
  address?: string;
  durationMs?: number;
  /** An error code for failures and denials. */
  code?: string;
  /** More, redacted and bounded (tool arguments, the change made, the permission missing). */
  details?: unknown;
}

/**
 * Where audit events go. `write` may be asynchronous; a sink that throws or rejects is logged and
 * never fails the request.
 */
export interface AuditSink {
  write(event: AuditEvent): void | Promise<void>;
}

/**
 * Keeps the last `capacity` events in memory, for tests and `GET /audit`.
 *
 * @example
 * ```ts
 * const audit = new MemoryAuditSink(500);
 * const server = createMcpServer({ audit: { sinks: [audit] } });
 * audit.events({ action: 'auth.failure' });
 * ```
 */
export class MemoryAuditSink implements AuditSink {
  readonly #ring: Ring<AuditEvent>;

  constructor(capacity = 1000) {
    this.#ring = new Ring(capacity, 'capacity');
  }

  write(event: AuditEvent): void {
    this.#ring.push(event);
  }

  /** Events oldest first, optionally filtered by action, caller or outcome, at most `limit` (newest kept). */
  events(
    filter: { action?: string; callerId?: string; outcome?: string; limit?: number } = {},
  ): AuditEvent[] {
    const ordered = this.#ring.ordered();
    const matched = ordered.filter(
      (e) =>
        (filter.action === undefined || e.action === filter.action) &&
        (filter.callerId === undefined || e.callerId === filter.callerId) &&
        (filter.outcome === undefined || e.outcome === filter.outcome),
    );
    return filter.limit === undefined ? matched : matched.slice(-filter.limit);
  }
}

/**
 * Writes each event as one JSON line to `stream` (anything with `write(string)`: a file stream,
 * `process.stderr`, a socket).
 *
 * @example
 * ```ts
 * import { createWriteStream } from 'node:fs';
 * createMcpServer({ audit: { sinks: [jsonLinesAuditSink(createWriteStream('audit.jsonl', { flags: 'a' }))] } });
 * ```
 */
export function jsonLinesAuditSink(stream: { write(chunk: string): unknown }): AuditSink {
  return { write: (event) => void stream.write(`${JSON.stringify(event)}\n`) };
}

/** The longest a field of an audit event (its target, request id, caller id, address) is kept. */
const MAX_FIELD = 256;

/** A field as an audit event keeps it: at most `MAX_FIELD` characters, and marked when cut. */
function field(value: string): string {
  return value.length > MAX_FIELD ? detach(`${value.slice(0, MAX_FIELD)}…(${value.length} chars)`) : value;
}

/** The audit log: stamps, redacts and fans events out to its sinks. */
export class AuditLog {
  readonly #sinks: readonly AuditSink[];
  readonly #logger: Logger;

  constructor(sinks: readonly AuditSink[], logger: Logger) {
    for (const [i, sink] of sinks.entries()) {
      if (typeof sink?.write !== 'function') throw new TypeError(`audit.sinks[${i}] must have write(event)`);
    }
    this.#sinks = sinks;
    this.#logger = logger;
  }

  /** The first in-memory sink, which `GET /audit` reads. */
  get memory(): MemoryAuditSink | undefined {
    return this.#sinks.find((s): s is MemoryAuditSink => s instanceof MemoryAuditSink);
  }

  /** Whether any sink listens (callers skip building events otherwise). */
  get enabled(): boolean {
    return this.#sinks.length > 0;
  }

  /**
   * Records one event; `time` is added, `details` summarised and every other field bounded here, so
   * one event takes a few KiB at most whatever a caller sent.
   */
  record(event: Omit<AuditEvent, 'time'>): void {
    if (this.#sinks.length === 0) return;
    const stamped: AuditEvent = {
      time: new Date().toISOString(),
      action: event.action,
      outcome: event.outcome,
      callerId: field(event.callerId),
    };
    if (event.requestId !== undefined) stamped.requestId = field(event.requestId);
    if (event.target !== undefined) stamped.target = field(event.target);
    if (event.origin !== undefined) stamped.origin = field(event.origin);
    if (event.address !== undefined) stamped.address = field(event.address);
    if (event.durationMs !== undefined) stamped.durationMs = event.durationMs;
    if (event.code !== undefined) stamped.code = field(event.code);
    if (event.details !== undefined) stamped.details = summarise(event.details);
    for (const sink of this.#sinks) {
      try {
        const written = sink.write(stamped);
        if (written && typeof (written as Promise<void>).catch === 'function') {
          (written as Promise<void>).catch((error: unknown) =>
            this.#logger.error({ err: error }, 'audit sink failed'),
          );
        }
      } catch (error) {
        this.#logger.error({ err: error }, 'audit sink failed');
      }
    }
  }
}
