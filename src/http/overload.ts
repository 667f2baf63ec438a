/**
 * Load shedding: when the server is saturated, a new request gets a quick `503` with `Retry-After`
 * instead of an unbounded wait. Two signals, each compared with its own threshold:
 *
 * - **Event-loop delay**, measured by an unref'd timer that notes how late it fires (runtime-neutral:
 *   Node, Bun, Deno, workers). What counts is the delay the loop sustains: the smallest of the last
 *   three samples. One long stretch of work (a GC pause, a big synchronous start-up step) sheds
 *   nothing once it is over; a loop that stays that slow does, until one sample is on time again.
 * - **Queue wait**: how long a request waited in the door's own queue before mcpkit started on it
 *   (`listen()` serves requests in bounded turns and says so with `FetchOptions.queuedMs`).
 *
 * The check runs before a request's body is read or anything else is done for it; work already
 * admitted is never shed. Runtime-neutral: no `node:` imports.
 */

import { type Refusal, refuse } from '../core/refusal.js';
import type { ShedDoor, ShedReason } from '../telemetry/standard.js';
import type { Logger } from '../types.js';

/** The `overload` option of `createMcpServer`. */
export interface OverloadOptions {
  /**
   * Event-loop delay, in ms, past which new requests are shed, when the loop sustains it (each of
   * the last three samples at least that late). Default 200.
   */
  maxEventLoopDelayMs?: number;
  /**
   * How long a request may have waited in the door's queue (`listen()` has one; see
   * `FetchOptions.queuedMs`) before mcpkit starts on it, in ms; a request that waited longer is
   * shed. Default 500.
   */
  maxQueueWaitMs?: number;
  /** The `Retry-After` of a shed request, in whole seconds (1–3600). Default 1. */
  retryAfterSeconds?: number;
  /** How often the event-loop delay is sampled, in ms (10–10 000). Default 20. */
  sampleIntervalMs?: number;
}

/** The resolved `overload` option. */
export type ResolvedOverloadOptions = Readonly<Required<OverloadOptions>>;

export const OVERLOAD_DEFAULTS: ResolvedOverloadOptions = Object.freeze({
  maxEventLoopDelayMs: 200,
  maxQueueWaitMs: 500,
  retryAfterSeconds: 1,
  sampleIntervalMs: 20,
});

// The shedder's labels are the metric's (telemetry sits below http): re-exported beside it.
export type { ShedDoor, ShedReason };

const MAX_TIMER_MS = 2_147_483_647;
/** How many consecutive samples a delay must last to count. */
const SUSTAINED_SAMPLES = 3;
/** Without a request for this long the sampler stops; the next request starts it again. */
const IDLE_STOP_MS = 10_000;
/** At most one log line about shedding per this many ms. */
const LOG_EVERY_MS = 10_000;

/**
 * Resolves and checks the `overload` option: `false` turns shedding off, `true` or `undefined` means
 * the defaults, an object overrides them. Unknown keys and out-of-range values throw.
 */
export function resolveOverloadOptions(
  option: OverloadOptions | boolean | undefined,
): ResolvedOverloadOptions | false {
  if (option === false) return false;
  if (option === undefined || option === true) return OVERLOAD_DEFAULTS;
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw new TypeError(
      'overload must be false or { maxEventLoopDelayMs, maxQueueWaitMs, retryAfterSeconds, sampleIntervalMs }',
    );
  }
  for (const key of Object.keys(option)) {
    if (!(key in OVERLOAD_DEFAULTS)) {
      throw new TypeError(
        `overload.${key.slice(0, 64)} is not an option (maxEventLoopDelayMs, maxQueueWaitMs, retryAfterSeconds, sampleIntervalMs)`,
      );
    }
  }
  const pick = (key: keyof OverloadOptions) => option[key] ?? OVERLOAD_DEFAULTS[key];
  const resolved = {
    maxEventLoopDelayMs: pick('maxEventLoopDelayMs'),
    maxQueueWaitMs: pick('maxQueueWaitMs'),
    retryAfterSeconds: pick('retryAfterSeconds'),
    sampleIntervalMs: pick('sampleIntervalMs'),
  };
  const positive = (name: string, value: unknown) => {
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TIMER_MS)) {
      throw new TypeError(`overload.${name} must be a positive number of milliseconds (got ${show(value)})`);
    }
  };
  positive('maxEventLoopDelayMs', resolved.maxEventLoopDelayMs);
  positive('maxQueueWaitMs', resolved.maxQueueWaitMs);
  const { retryAfterSeconds, sampleIntervalMs } = resolved;
  if (!(Number.isInteger(retryAfterSeconds) && retryAfterSeconds >= 1 && retryAfterSeconds <= 3600)) {
    throw new TypeError(
      `overload.retryAfterSeconds must be a whole number from 1 to 3600 (got ${show(retryAfterSeconds)})`,
    );
  }
  if (!(Number.isInteger(sampleIntervalMs) && sampleIntervalMs >= 10 && sampleIntervalMs <= 10_000)) {
    throw new TypeError(
      `overload.sampleIntervalMs must be a whole number of milliseconds from 10 to 10000 (got ${show(sampleIntervalMs)})`,
    );
  }
  return Object.freeze(resolved);
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value.slice(0, 32)) : String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** The timers the sampler uses (the platform's, or a test's). */
export interface SamplerClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

const platformClock: SamplerClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => {
    const timer: unknown = setTimeout(callback, ms);
    unref(timer);
    return timer;
  },
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

/** Lets a timer not keep the process alive: `unref()` on Node and Bun, `Deno.unrefTimer` on Deno. */
function unref(timer: unknown): void {
  if (typeof timer === 'object' && timer !== null) {
    (timer as { unref?: () => void }).unref?.();
  } else if (typeof timer === 'number') {
    (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno?.unrefTimer?.(timer);
  }
}

/** What a {@link LoadShedder} is built with besides its options. */
export interface LoadShedderInit {
  /** Where shedding is logged (at most one line every 10 s). Default: nowhere. */
  logger?: Logger;
  /** The sampler's clock and timers. Default: the platform's (`performance.now`, `setTimeout`). */
  clock?: SamplerClock;
}

/**
 * The load shedder: whether the server is overloaded now, the event-loop delay it measures, and how
 * many requests it has shed. `createMcpServer` builds one from the `overload` option
 * (`server.overload`), or takes one you built, which several servers in one process (one event loop)
 * may share. The sampler starts with the first request, stops after 10 s without one (the next
 * starts it again) and for good on `close()` (`server.close()` closes the one it built); its timer
 * never keeps the process alive.
 *
 * @example
 * ```ts
 * // A readiness check that takes a saturated instance out of rotation (see docs/operations.md):
 * server.health.register('load', () => ({
 *   ok: !server.overload?.overloaded,
 *   detail: `event-loop delay ${Math.round(server.overload?.eventLoopDelayMs ?? 0)} ms`,
 * }));
 *
 * // One sampler for two servers in one process:
 * const overload = new LoadShedder({ maxEventLoopDelayMs: 300 }, { logger });
 * const api = createMcpServer({ overload });
 * const admin = createMcpServer({ overload });
 * ```
 */
export class LoadShedder {
  readonly options: ResolvedOverloadOptions;
  readonly #logger: Logger | undefined;
  readonly #clock: SamplerClock;
  #timer: unknown;
  #due = 0;
  /** The last samples' lags, oldest first. */
  #lags: number[] = [];
  #delayMs = 0;
  #lastRequest = 0;
  #closed = false;
  #shed = 0;
  #unlogged = 0;
  #lastLog = Number.NEGATIVE_INFINITY;

  /** Checks `options` (as the `overload` option of `createMcpServer`; throws a `TypeError`). */
  constructor(options: OverloadOptions = {}, init: LoadShedderInit = {}) {
    const resolved = resolveOverloadOptions(options);
    if (!resolved) throw new TypeError('LoadShedder options must be an object');
    this.options = resolved;
    this.#logger = init.logger;
    this.#clock = init.clock ?? platformClock;
  }

  /**
   * The event-loop delay the loop sustains, in ms: the smallest lag of the last three samples (0
   * until there are three, and while the sampler is stopped).
   */
  get eventLoopDelayMs(): number {
    return this.#delayMs;
  }

  /** Whether new requests are being shed for event-loop delay. */
  get overloaded(): boolean {
    return this.#delayMs > this.options.maxEventLoopDelayMs;
  }

  /** Requests shed so far. */
  get shedCount(): number {
    return this.#shed;
  }

  /** Whether the sampler's timer is running. */
  get sampling(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Decides about one new request (starting the sampler if it is not running): the reason to shed
   * it, or `undefined` to serve it. `queuedMs` is how long it already waited in the door's queue.
   *
   * @internal The doors call it; `server.fetch` and `server.admit` apply it.
   */
  check(queuedMs: number | undefined): ShedReason | undefined {
    this.#lastRequest = this.#clock.now();
    if (this.#timer === undefined && !this.#closed) this.#start();
    if (queuedMs !== undefined && queuedMs > this.options.maxQueueWaitMs) return 'queue_wait';
    if (this.#delayMs > this.options.maxEventLoopDelayMs) return 'event_loop_delay';
    return undefined;
  }

  /**
   * Records a shed request: counted, and logged at most once every 10 s with how many went since.
   *
   * @internal
   */
  shed(door: ShedDoor, reason: ShedReason, queuedMs: number | undefined): void {
    this.#shed++;
    this.#unlogged++;
    const now = this.#clock.now();
    if (now - this.#lastLog < LOG_EVERY_MS) return;
    this.#lastLog = now;
    this.#logger?.warn(
      {
        shed: this.#unlogged,
        door,
        reason,
        eventLoopDelayMs: Math.round(this.#delayMs),
        ...(queuedMs !== undefined && { queuedMs: Math.round(queuedMs) }),
      },
      'server overloaded: shedding new requests with 503',
    );
    this.#unlogged = 0;
  }

  /** Stops the sampler for good. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }

  #start(): void {
    this.#schedule();
  }

  #stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#reset();
  }

  #reset(): void {
    this.#lags = [];
    this.#delayMs = 0;
  }

  #schedule(): void {
    const interval = this.options.sampleIntervalMs;
    this.#due = this.#clock.now() + interval;
    this.#timer = this.#clock.setTimeout(this.#sample, interval);
  }

  readonly #sample = (): void => {
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#clock.now();
    if (now - this.#lastRequest > IDLE_STOP_MS) {
      this.#reset();
      return;
    }
    const lags = this.#lags;
    lags.push(Math.max(0, now - this.#due));
    if (lags.length > SUSTAINED_SAMPLES) lags.shift();
    this.#delayMs = lags.length < SUSTAINED_SAMPLES ? 0 : Math.min(...lags);
    this.#schedule();
  };
}

/** The refusal of a shed request: `BUSY` (503, JSON-RPC `-32005`) with `Retry-After`. */
export function overloadRefusal(retryAfterSeconds: number): Refusal {
  return refuse('BUSY', `Server overloaded: try again in ${retryAfterSeconds} s`, {
    headers: { 'retry-after': String(retryAfterSeconds) },
    data: { retryAfterSeconds },
  });
}
