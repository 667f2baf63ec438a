/**
 * Usage analytics behind `GET /usage`: calls, errors, p50/p95 duration and model tokens, per caller,
 * per tool and per model, over the last hour, the last day and since start. Runtime-neutral.
 *
 * Memory is bounded by bytes: every row (a caller, a tool, a model) is a fixed block of typed arrays
 * (a ring of 60 minute slots, a ring of 24 hour slots and one since-start slot, each holding four
 * counters and a log-scale duration histogram), and each dimension holds as many rows as its share of
 * `maxBytes` pays for. When a dimension is full, a new key takes the row of the least active one,
 * whose counts are first added into the dimension's `other` row: totals stay exact, and the busiest
 * keys keep their own rows.
 */

import type { MetricsRegistry } from './metrics.js';

/** Histogram bins: bin `i` holds durations up to `BASE_MS * RATIO^i`; the last also holds the rest. */
const BINS = 48;
const BASE_MS = 0.05;
const RATIO = Math.SQRT2;
const LOG_RATIO = Math.log(RATIO);
/** calls, errors, input tokens, output tokens. */
const COUNTERS = 4;
const MINUTES = 60;
const HOURS = 24;
/** Minute slots, then hour slots, then the since-start slot. */
const SLOTS = MINUTES + HOURS + 1;
const START_SLOT = SLOTS - 1;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** Longest key kept; longer ones are cut (a caller id, a tool name, a model name). */
const MAX_KEY_CHARS = 200;

/** Bytes one row costs: its typed arrays, its stamps and its key (at most {@link MAX_KEY_CHARS}). */
export const USAGE_ROW_BYTES =
  SLOTS * COUNTERS * 8 + SLOTS * BINS * 4 + (MINUTES + HOURS) * 8 + 2 * MAX_KEY_CHARS + 200;

/** One window's figures. */
export interface UsageStats {
  calls: number;
  errors: number;
  /** Median duration in milliseconds (estimated from log-scale bins: within about 19 %); null without calls. */
  p50Ms: number | null;
  /** 95th percentile duration in milliseconds, estimated like `p50Ms`; null without calls. */
  p95Ms: number | null;
  inputTokens: number;
  outputTokens: number;
}

/** The windows of `GET /usage`. */
export type UsageWindow = 'hour' | 'day' | 'start';

/** A row's figures over each window. */
export type UsageByWindow = Record<UsageWindow, UsageStats>;

/** The dimensions a call is counted under. */
export type UsageDimension = 'callers' | 'tools' | 'models';

/** One row of a dimension's report. */
export interface UsageRow extends Partial<UsageByWindow> {
  key: string;
}

/**
 * What `GET /usage` answers, and `server.usage.report()` returns.
 *
 * @example
 * ```ts
 * import { createMcpServer, type UsageReport } from 'mcpkit';
 *
 * const server = createMcpServer();
 * const report: UsageReport | undefined = server.usage?.report();
 * console.log(report?.totals.tools.hour?.calls);
 * ```
 */
export interface UsageReport {
  startedAt: string;
  /**
   * Whose figures these are: this process's (`node`), or every node's that shares a state
   * (`cluster`, with `nodes` the number of nodes counted).
   */
  scope: 'node' | 'cluster';
  /** With `scope: 'cluster'`: how many nodes' figures were added up. */
  nodes?: number;
  /** Set when the figures should have been the cluster's but the shared state did not answer. */
  cluster?: 'unavailable';
  totals: { tools: Partial<UsageByWindow>; models: Partial<UsageByWindow> };
  callers: UsageSection;
  tools: UsageSection;
  models: UsageSection;
}

/** One dimension: its busiest rows, and what was folded together past its bound. */
export interface UsageSection {
  items: UsageRow[];
  /** Keys folded into `other` so far. */
  folded: number;
  other: Partial<UsageByWindow> | null;
}

/**
 * Options of {@link UsageMeter}: `createMcpServer({ usage })`.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 *
 * // Room for more callers, tools and models before the least active fold into `other`.
 * const server = createMcpServer({ usage: { maxBytes: 32 * 1024 * 1024 } });
 * ```
 */
export interface UsageOptions {
  /** Bytes all rows may take, shared equally by callers, tools and models. Default 8 MiB. */
  maxBytes?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** One key's counts over its slots. */
class Row {
  key = '';
  /** Events recorded since the row was given its key: what eviction compares. */
  activity = 0;
  readonly counters = new Float64Array(SLOTS * COUNTERS);
  readonly bins = new Uint32Array(SLOTS * BINS);
  /** The minute (or hour) number each ring slot holds; a slot with another stamp is stale. */
  readonly stamps = new Float64Array(MINUTES + HOURS).fill(-1);

  reset(key: string): void {
    this.key = key;
    this.activity = 0;
    this.counters.fill(0);
    this.bins.fill(0);
    this.stamps.fill(-1);
  }

  /** The slot of `stamp` in a ring at `offset` of `size`, cleared first when it held an older period. */
  slot(offset: number, size: number, stamp: number): number {
    const slot = offset + (stamp % size);
    if (this.stamps[slot] !== stamp) {
      this.stamps[slot] = stamp;
      this.counters.fill(0, slot * COUNTERS, (slot + 1) * COUNTERS);
      this.bins.fill(0, slot * BINS, (slot + 1) * BINS);
    }
    return slot;
  }

  add(slot: number, event: UsageEvent, bin: number): void {
    const c = slot * COUNTERS;
    this.counters[c]! += event.calls ?? 0;
    this.counters[c + 1]! += event.error ? 1 : 0;
    this.counters[c + 2]! += event.inputTokens ?? 0;
    this.counters[c + 3]! += event.outputTokens ?? 0;
    if (bin >= 0) this.bins[slot * BINS + bin]! += 1;
  }

  /** Adds every live slot of `from` into this row's slots of the same period. */
  absorb(from: Row): void {
    for (let slot = 0; slot < SLOTS; slot++) {
      if (slot !== START_SLOT) {
        const stamp = from.stamps[slot]!;
        // A period older than the one this row holds there is out of every window already.
        if (stamp < 0 || this.stamps[slot]! > stamp) continue;
        const ring = slot < MINUTES ? [0, MINUTES] : [MINUTES, HOURS];
        if (this.slot(ring[0]!, ring[1]!, stamp) !== slot) continue;
      }
      for (let i = 0; i < COUNTERS; i++)
        this.counters[slot * COUNTERS + i]! += from.counters[slot * COUNTERS + i]!;
      for (let i = 0; i < BINS; i++) this.bins[slot * BINS + i]! += from.bins[slot * BINS + i]!;
    }
    this.activity += from.activity;
  }

  /** The row as plain data: its live slots only, each with its counters and its non-zero bins. */
  toData(): UsageRowData {
    const slots: UsageRowData['slots'] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const stamp = slot === START_SLOT ? 0 : this.stamps[slot]!;
      if (stamp < 0) continue;
      const counters = Array.from(this.counters.subarray(slot * COUNTERS, (slot + 1) * COUNTERS));
      const bins: Array<[number, number]> = [];
      for (let i = 0; i < BINS; i++) {
        const n = this.bins[slot * BINS + i]!;
        if (n > 0) bins.push([i, n]);
      }
      if (bins.length === 0 && counters.every((c) => c === 0)) continue;
      slots.push([slot, stamp, counters, bins]);
    }
    return { key: this.key, activity: this.activity, slots };
  }

  /** A row from {@link toData}'s data, or `undefined` when it is not such data. */
  static fromData(data: unknown): Row | undefined {
    if (typeof data !== 'object' || data === null) return undefined;
    const { key, activity, slots } = data as Partial<UsageRowData>;
    if (typeof key !== 'string' || !count(activity) || !Array.isArray(slots)) return undefined;
    const row = new Row();
    row.reset(key.slice(0, MAX_KEY_CHARS));
    row.activity = activity;
    for (const entry of slots) {
      if (!Array.isArray(entry) || entry.length !== 4) return undefined;
      const [slot, stamp, counters, bins] = entry as unknown[];
      if (!(Number.isInteger(slot) && (slot as number) >= 0 && (slot as number) < SLOTS)) return undefined;
      if (!count(stamp) || !Array.isArray(counters) || counters.length !== COUNTERS || !Array.isArray(bins))
        return undefined;
      if (!counters.every(count)) return undefined;
      if (slot !== START_SLOT) row.stamps[slot as number] = stamp;
      row.counters.set(counters as number[], (slot as number) * COUNTERS);
      for (const bin of bins) {
        if (
          !Array.isArray(bin) ||
          !Number.isInteger(bin[0]) ||
          bin[0] < 0 ||
          bin[0] >= BINS ||
          !count(bin[1])
        )
          return undefined;
        row.bins[(slot as number) * BINS + bin[0]] = bin[1];
      }
    }
    return row;
  }

  /** The figures over the slots live within `window` at `now`. */
  stats(window: UsageWindow, minute: number): UsageStats {
    const counters = [0, 0, 0, 0];
    const bins = new Array<number>(BINS).fill(0);
    const take = (slot: number) => {
      for (let i = 0; i < COUNTERS; i++) counters[i]! += this.counters[slot * COUNTERS + i]!;
      for (let i = 0; i < BINS; i++) bins[i]! += this.bins[slot * BINS + i]!;
    };
    if (window === 'start') take(START_SLOT);
    else if (window === 'hour') {
      for (let slot = 0; slot < MINUTES; slot++) {
        const stamp = this.stamps[slot]!;
        if (stamp > minute - MINUTES && stamp <= minute) take(slot);
      }
    } else {
      const hour = Math.floor(minute / 60);
      for (let slot = MINUTES; slot < MINUTES + HOURS; slot++) {
        const stamp = this.stamps[slot]!;
        if (stamp > hour - HOURS && stamp <= hour) take(slot);
      }
    }
    return {
      calls: counters[0]!,
      errors: counters[1]!,
      p50Ms: quantile(bins, 0.5),
      p95Ms: quantile(bins, 0.95),
      inputTokens: counters[2]!,
      outputTokens: counters[3]!,
    };
  }
}

/** A finite count that is not negative. */
function count(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** A row as nodes exchange it: `[slot, stamp, counters, [bin, count] pairs]` per live slot. */
interface UsageRowData {
  key: string;
  activity: number;
  slots: Array<[slot: number, stamp: number, counters: number[], bins: Array<[number, number]>]>;
}

/** A meter as nodes exchange it (see {@link UsageMeter.snapshot}). */
export interface UsageSnapshot {
  startedAt: number;
  dimensions: Record<
    UsageDimension,
    { rows: UsageRowData[]; other: UsageRowData; total: UsageRowData; folded: number }
  >;
}

/** The bin of a duration. */
function binOf(ms: number): number {
  if (!(ms > BASE_MS)) return 0;
  return Math.min(BINS - 1, Math.ceil(Math.log(ms / BASE_MS) / LOG_RATIO));
}

/** The `q` quantile of `bins`: the geometric middle of the bin it falls in (rounded to 0.01 ms). */
function quantile(bins: number[], q: number): number | null {
  let total = 0;
  for (const n of bins) total += n;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += bins[i]!;
    if (seen >= rank) {
      const upper = BASE_MS * RATIO ** i;
      const middle = i === 0 ? upper / 2 : upper / Math.sqrt(RATIO);
      return Math.round(middle * 100) / 100;
    }
  }
  return null;
}

/** One thing to count. */
export interface UsageEvent {
  /** Calls it adds (0 for tokens alone). */
  calls?: number;
  error?: boolean;
  /** Its duration, for the percentiles; absent for tokens alone. */
  durationMs?: number;
  inputTokens?: number;
  outputTokens?: number;
}

/** The rows of one dimension, bounded by their count (derived from bytes). */
class Dimension {
  readonly rows = new Map<string, Row>();
  readonly other = new Row();
  readonly total = new Row();
  folded = 0;
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.other.reset('other');
    this.total.reset('total');
  }

  /** The row of `key`: found, new, or taken from the least active row (folded into `other` first). */
  row(key: string): Row {
    const found = this.rows.get(key);
    if (found) return found;
    let row: Row;
    if (this.rows.size < this.#capacity) row = new Row();
    else {
      let least: Row | undefined;
      for (const candidate of this.rows.values()) {
        if (!least || candidate.activity < least.activity) least = candidate;
      }
      row = least!;
      this.other.absorb(row);
      this.folded++;
      this.rows.delete(row.key);
    }
    row.reset(key);
    this.rows.set(key, row);
    return row;
  }
}

/**
 * Counts calls and model tokens per caller, tool and model over the last hour, the last day and since
 * start, in memory bounded by `maxBytes`. A server keeps one (`GET /usage`); it is fed by the
 * executor's events and the completion manager's finished jobs.
 *
 * @example
 * ```ts
 * const meter = new UsageMeter({ maxBytes: 1024 * 1024 });
 * meter.record({ caller: 'key-1', tool: 'add' }, { calls: 1, durationMs: 3 });
 * meter.report().callers.items[0]; // { key: 'key-1', hour: { calls: 1, … }, … }
 * ```
 */
export class UsageMeter {
  readonly startedAt: number;
  readonly #now: () => number;
  readonly #dimensions: Record<UsageDimension, Dimension>;
  readonly maxBytes: number;

  constructor(options: UsageOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.startedAt = this.#now();
    this.maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
    if (!(Number.isFinite(this.maxBytes) && this.maxBytes > 0)) {
      throw new TypeError('usage.maxBytes must be a positive number');
    }
    // Each dimension's share pays for its `other` and `total` rows first; at least one row of its own.
    const capacity = Math.max(1, Math.floor(this.maxBytes / 3 / USAGE_ROW_BYTES) - 2);
    this.#dimensions = {
      callers: new Dimension(capacity),
      tools: new Dimension(capacity),
      models: new Dimension(capacity),
    };
  }

  /** Rows each dimension holds at most before folding into `other`. */
  get capacity(): number {
    return Math.max(1, Math.floor(this.maxBytes / 3 / USAGE_ROW_BYTES) - 2);
  }

  /** Bytes the rows take now (by {@link USAGE_ROW_BYTES} each). */
  get bytes(): number {
    let rows = 0;
    for (const d of Object.values(this.#dimensions)) rows += d.rows.size + 2;
    return rows * USAGE_ROW_BYTES;
  }

  /**
   * Counts `event` under each key given: `caller` (a key id, never a key), `tool`, `model`. A tool
   * event adds to the tools' total, a model event to the models'.
   */
  record(keys: Partial<Record<'caller' | 'tool' | 'model', string>>, event: UsageEvent): void {
    const minute = Math.floor(this.#now() / MINUTE_MS);
    const hour = Math.floor((minute * MINUTE_MS) / HOUR_MS);
    const bin = event.durationMs === undefined ? -1 : binOf(event.durationMs);
    const add = (row: Row) => {
      row.activity++;
      row.add(row.slot(0, MINUTES, minute), event, bin);
      row.add(row.slot(MINUTES, HOURS, hour), event, bin);
      row.add(START_SLOT, event, bin);
    };
    if (keys.caller !== undefined) add(this.#dimensions.callers.row(keys.caller.slice(0, MAX_KEY_CHARS)));
    if (keys.tool !== undefined) {
      add(this.#dimensions.tools.row(keys.tool.slice(0, MAX_KEY_CHARS)));
      add(this.#dimensions.tools.total);
    }
    if (keys.model !== undefined) {
      add(this.#dimensions.models.row(keys.model.slice(0, MAX_KEY_CHARS)));
      add(this.#dimensions.models.total);
    }
  }

  /** The meter as plain data, for the other nodes of a cluster: live slots only. */
  snapshot(): UsageSnapshot {
    const dimension = (d: Dimension) => ({
      rows: [...d.rows.values()].map((row) => row.toData()),
      other: d.other.toData(),
      total: d.total.toData(),
      folded: d.folded,
    });
    const { callers, tools, models } = this.#dimensions;
    return {
      startedAt: this.startedAt,
      dimensions: { callers: dimension(callers), tools: dimension(tools), models: dimension(models) },
    };
  }

  /**
   * A meter holding this one's counts and those of `snapshots` (other nodes'), within this one's
   * bound: what `GET /usage` reports for a cluster. A snapshot that is not well formed is skipped.
   */
  merged(snapshots: readonly unknown[]): { meter: UsageMeter; nodes: number } {
    const meter = new UsageMeter({ maxBytes: this.maxBytes, now: this.#now });
    let nodes = 0;
    for (const snapshot of [this.snapshot(), ...snapshots]) {
      if (meter.#absorb(snapshot)) nodes++;
    }
    return { meter, nodes };
  }

  /** Adds a snapshot's counts; whether it was one (nothing is added from one that is not). */
  #absorb(snapshot: unknown): boolean {
    const parsed = parseSnapshot(snapshot);
    if (!parsed) return false;
    for (const name of ['callers', 'tools', 'models'] as const) {
      const into = this.#dimensions[name];
      const from = parsed[name];
      for (const row of from.rows) into.row(row.key).absorb(row);
      into.other.absorb(from.other);
      into.total.absorb(from.total);
      into.folded += from.folded;
    }
    if (parsed.startedAt < this.startedAt) (this as { startedAt: number }).startedAt = parsed.startedAt;
    return true;
  }

  /** The report of `GET /usage`: `windows` (default all three), the `limit` busiest rows per dimension. */
  report(options: { windows?: readonly UsageWindow[]; limit?: number } = {}): UsageReport {
    const windows = options.windows ?? (['hour', 'day', 'start'] as const);
    const limit = options.limit ?? 100;
    const minute = Math.floor(this.#now() / MINUTE_MS);
    const figures = (row: Row): Partial<UsageByWindow> =>
      Object.fromEntries(windows.map((w) => [w, row.stats(w, minute)]));
    const section = (d: Dimension): UsageSection => {
      const rows = [...d.rows.values()].sort((a, b) => b.activity - a.activity || (a.key < b.key ? -1 : 1));
      return {
        items: rows.slice(0, limit).map((row) => ({ key: row.key, ...figures(row) })),
        folded: d.folded,
        other: d.folded > 0 ? figures(d.other) : null,
      };
    };
    const { callers, tools, models } = this.#dimensions;
    return {
      startedAt: new Date(this.startedAt).toISOString(),
      scope: 'node',
      totals: { tools: figures(tools.total), models: figures(models.total) },
      callers: section(callers),
      tools: section(tools),
      models: section(models),
    };
  }
}

/** A snapshot's rows, read back; `undefined` when anything in it is not what a snapshot holds. */
function parseSnapshot(
  value: unknown,
):
  | (Record<UsageDimension, { rows: Row[]; other: Row; total: Row; folded: number }> & { startedAt: number })
  | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { startedAt, dimensions } = value as Partial<UsageSnapshot>;
  if (!count(startedAt) || typeof dimensions !== 'object' || dimensions === null) return undefined;
  const out: Partial<Record<UsageDimension, { rows: Row[]; other: Row; total: Row; folded: number }>> = {};
  for (const name of ['callers', 'tools', 'models'] as const) {
    const d = (dimensions as Partial<UsageSnapshot['dimensions']>)[name];
    if (!d || !Array.isArray(d.rows) || !count(d.folded)) return undefined;
    const rows = d.rows.map((r) => Row.fromData(r));
    const other = Row.fromData(d.other);
    const total = Row.fromData(d.total);
    if (!other || !total || rows.some((r) => r === undefined)) return undefined;
    out[name] = { rows: rows as Row[], other, total, folded: d.folded };
  }
  return {
    ...(out as Record<UsageDimension, { rows: Row[]; other: Row; total: Row; folded: number }>),
    startedAt,
  };
}

/**
 * Where the nodes of a cluster leave their usage for each other (a shared state's `usage` seam):
 * each node publishes its meter's snapshot every few seconds, and `GET /usage` on any node adds up
 * every live node's.
 *
 * @example
 * ```ts
 * import type { UsageShare } from 'mcpkit';
 *
 * // Everyone's snapshots in one process's memory: what a shared store does across processes.
 * const published = new Map<string, string>();
 * const share: UsageShare = {
 *   node: 'node-a',
 *   publish: async (text) => void published.set('node-a', text),
 *   collect: async () => new Map(published),
 * };
 * ```
 */
export interface UsageShare {
  /** This node's id among the others. */
  readonly node: string;
  /** Publishes this node's snapshot (JSON), replacing its last one; it lapses if not renewed. */
  publish(snapshot: string): Promise<void>;
  /** The latest snapshot of every live node, this one's included, by node id. */
  collect(): Promise<Map<string, string>>;
}

/** How often a node publishes its usage to the others, in ms. */
export const USAGE_PUBLISH_MS = 5_000;

/**
 * Usage across the nodes that share `share`: publishes `meter` every {@link USAGE_PUBLISH_MS}, and
 * reports the sum of every live node's figures (this node's counted as they are now). While the share
 * does not answer, the report is this node's, marked `cluster: 'unavailable'`.
 */
export function clusterUsage(
  meter: UsageMeter,
  share: UsageShare,
  onError?: (reason: string) => void,
): { report(options?: Parameters<UsageMeter['report']>[0]): Promise<UsageReport>; close(): void } {
  const publish = () => {
    share.publish(JSON.stringify(meter.snapshot())).catch(() => onError?.('usage not published'));
  };
  publish();
  const timer = setInterval(publish, USAGE_PUBLISH_MS);
  (timer as { unref?: () => void }).unref?.();
  return {
    async report(options) {
      let texts: Map<string, string>;
      try {
        texts = await share.collect();
      } catch {
        return { ...meter.report(options), cluster: 'unavailable' };
      }
      const others: unknown[] = [];
      for (const [node, text] of texts) {
        if (node === share.node) continue;
        try {
          others.push(JSON.parse(text));
        } catch {
          // a snapshot that is not JSON counts for nothing
        }
      }
      const { meter: merged, nodes } = meter.merged(others);
      return { ...merged.report(options), scope: 'cluster', nodes };
    },
    close: () => clearInterval(timer),
  };
}

/** What {@link observeUsage} listens to. */
export interface UsageSources {
  /** The executor's end events (every tool call, whichever door it came through). */
  executor: {
    on(
      event: 'success' | 'error' | 'timeout' | 'cancel',
      listener: (e: { tool: string; caller?: { id: string }; durationMs: number }) => void,
    ): unknown;
  };
  /** Where the same totals go as Prometheus series; absent with `metrics: false`. */
  metrics?: MetricsRegistry;
}

/** The caller key of calls made without one (no authentication configured, or work of the server's own). */
export const NO_CALLER = '(none)';

/** The key of a model row: `integration:provider/model`, or `provider/model` for a model given inline. */
export function modelKey(model: { provider: string; model: string }, integrationId?: string): string {
  return `${integrationId === undefined ? '' : `${integrationId}:`}${model.provider}/${model.model}`;
}

/**
 * Feeds `meter` from the executor's end events and returns the completion manager's `finished` hook;
 * with a registry, the same totals are counted as `mcpkit_usage_*` series (callers and models; the
 * tools' are `mcpkit_tool_calls_total`), whose label sets the registry bounds (past its limit they
 * fold into `other`).
 */
export function observeUsage(
  meter: UsageMeter,
  sources: UsageSources,
): (job: {
  snapshot: FinishedSnapshot;
  caller: { id: string } | undefined;
  integrationId: string | undefined;
}) => void {
  const { metrics } = sources;
  const calls = metrics?.counter('mcpkit_usage_caller_calls_total', 'Tool calls by caller (key id)', [
    'caller',
  ]);
  const errors = metrics?.counter(
    'mcpkit_usage_caller_errors_total',
    'Failed tool calls by caller (key id)',
    ['caller'],
  );
  const callerTokens = metrics?.counter(
    'mcpkit_usage_caller_tokens_total',
    'Model tokens spent in completions, by caller (key id) and direction (in, out)',
    ['caller', 'direction'],
  );
  const completions = metrics?.counter(
    'mcpkit_usage_model_completions_total',
    'Completions by model (integration:provider/model) and outcome',
    ['model', 'outcome'],
  );
  const modelTokens = metrics?.counter(
    'mcpkit_usage_model_tokens_total',
    'Model tokens by model (integration:provider/model) and direction (in, out)',
    ['model', 'direction'],
  );
  const record = (error: boolean) => (e: { tool: string; caller?: { id: string }; durationMs: number }) => {
    const caller = e.caller?.id ?? NO_CALLER;
    meter.record({ caller, tool: e.tool }, { calls: 1, error, durationMs: e.durationMs });
    calls?.inc({ caller });
    if (error) errors?.inc({ caller });
  };
  sources.executor.on('success', record(false));
  for (const failure of ['error', 'timeout', 'cancel'] as const) sources.executor.on(failure, record(true));
  return ({ snapshot, caller: who, integrationId }) => {
    const caller = who?.id ?? NO_CALLER;
    const model = modelKey(snapshot.model, integrationId);
    const { inputTokens, outputTokens } = snapshot.usage;
    const failed = snapshot.status === 'failed';
    meter.record({ caller }, { inputTokens, outputTokens });
    meter.record(
      { model },
      { calls: 1, error: failed, durationMs: snapshot.timing.durationMs, inputTokens, outputTokens },
    );
    callerTokens?.inc({ caller, direction: 'in' }, inputTokens);
    callerTokens?.inc({ caller, direction: 'out' }, outputTokens);
    completions?.inc({ model, outcome: snapshot.status });
    modelTokens?.inc({ model, direction: 'in' }, inputTokens);
    modelTokens?.inc({ model, direction: 'out' }, outputTokens);
  };
}

/** What {@link observeUsage} reads of a finished completion's snapshot. */
export interface FinishedSnapshot {
  status: string;
  model: { provider: string; model: string };
  usage: { inputTokens: number; outputTokens: number };
  timing: { durationMs: number };
}
