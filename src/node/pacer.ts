/**
 * Serves node:http requests in bounded turns of the event loop, so that accepting connections keeps
 * up under load.
 *
 * Since libuv 1.45 (Node 20) a listening socket accepts at most one connection per turn of the event
 * loop (libuv/libuv#3696). node:http runs a request's listener in the turn that read its bytes, so
 * under load one turn serves every request that arrived since the last: with hundreds of connections,
 * hundreds of requests and hundreds of milliseconds. Meanwhile connections the kernel has already
 * completed (the client has sent its request on them) wait in the accept queue, one taken per turn:
 * at 512 connections some waited 10 s before mcpkit saw their first byte.
 *
 * The pacer queues requests in arrival order and serves them from `setImmediate` in turns of about
 * `turnMs` of work each (how many fit is learnt from how long recent turns took), so each loop turn
 * stays short. After a turn in which a connection was accepted, the next turns serve nothing, for at
 * most `acceptStreakMs`, so each of them accepts the next pending connection at once: a burst of
 * connections is taken in within milliseconds instead of seconds.
 */

/** Options of {@link RequestPacer}. */
export interface RequestPacerOptions {
  /** About how much work one turn does, in ms. Default 10. */
  turnMs?: number;
  /** The longest run of turns given to accepting connections, in ms. Default `2 × turnMs`. */
  acceptStreakMs?: number;
  /** The clock (tests). Default `performance.now`. */
  now?: () => number;
  /** Runs `callback` in a later turn (tests). Default `setImmediate`. */
  schedule?: (callback: () => void) => void;
}

/** The most requests one turn starts, however cheap they were. */
const MAX_TURN_REQUESTS = 256;
/** Weight of each turn's measured cost per request in the running estimate. */
const SMOOTHING = 0.25;

/** A queue of requests served in bounded turns; see the module comment. */
export class RequestPacer<T> {
  readonly #run: (item: T, waitedMs: number) => void;
  readonly #turnMs: number;
  readonly #acceptStreakMs: number;
  readonly #now: () => number;
  readonly #schedule: (callback: () => void) => void;
  #items: Array<{ item: T; at: number } | undefined> = [];
  #head = 0;
  #scheduled = false;
  #accepted = false;
  #streakStart: number | undefined;
  /** Estimated turn time per request served, in ms. */
  #costMs = 0.5;
  /** The last serving turn, while the queue has stayed non-empty since. */
  #last: { at: number; served: number } | undefined;

  /** `run` serves one request; it must not throw. */
  constructor(run: (item: T, waitedMs: number) => void, options: RequestPacerOptions = {}) {
    this.#run = run;
    this.#turnMs = options.turnMs ?? 10;
    this.#acceptStreakMs = options.acceptStreakMs ?? 2 * this.#turnMs;
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? ((callback) => setImmediate(callback));
  }

  /** Requests waiting. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Queues a request; it is served in a later turn, in arrival order. */
  push(item: T): void {
    this.#items.push({ item, at: this.#now() });
    this.#wake();
  }

  /** Notes that a connection was accepted in this turn: more may be waiting in the accept queue. */
  accepted(): void {
    if (this.size > 0) this.#accepted = true;
  }

  #wake(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(this.#turn);
  }

  readonly #turn = (): void => {
    this.#scheduled = false;
    const start = this.#now();
    const last = this.#last;
    this.#last = undefined;
    if (last !== undefined) {
      const cost = (start - last.at) / last.served;
      this.#costMs += (Math.min(cost, 4 * this.#turnMs) - this.#costMs) * SMOOTHING;
    }
    if (this.#accepted) {
      this.#accepted = false;
      this.#streakStart ??= start;
      if (start - this.#streakStart < this.#acceptStreakMs) {
        this.#wake();
        return;
      }
    }
    this.#streakStart = undefined;
    const limit = Math.min(MAX_TURN_REQUESTS, Math.max(1, Math.floor(this.#turnMs / this.#costMs)));
    let served = 0;
    while (served < limit && this.#head < this.#items.length) {
      const entry = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined;
      served++;
      this.#run(entry.item, this.#now() - entry.at);
    }
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
      return;
    }
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#last = { at: start, served };
    this.#wake();
  };
}
