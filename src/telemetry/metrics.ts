/**
 * A small Prometheus registry written by hand in the runtime-neutral core: counters, gauges and
 * histograms with labels, rendered in the text exposition format (0.0.4) or as JSON. prom-client
 * would tie the core to Node; the format is small enough to own. Label cardinality is bounded: past
 * `maxSeries` label sets per metric, new ones are folded into `{…="other"}`.
 */

type Labels = Record<string, string>;

const DEFAULT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function renderLabels(labels: Labels, extra?: [string, string]): string {
  const entries = Object.entries(labels);
  if (extra) entries.push(extra);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

/** One level of a metric's series index. */
type IndexNode = Map<string, unknown>;

abstract class Metric<TSeries> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: Labels; value: TSeries }>();
  /** Label value → (next label's value → …) → series; the series itself when there are no labels. */
  #index: IndexNode | undefined;
  readonly #maxSeries: number;

  constructor({ name, help, labelNames, maxSeries }: MetricSpec) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new TypeError(`invalid metric name ${name}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.#index = labelNames.length > 0 ? new Map() : undefined;
    this.#maxSeries = maxSeries;
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract initial(): TSeries;
  abstract render(): string[];
  abstract toJSON(): unknown;

  /**
   * The series of `labels`. Known label sets are found through {@link Metric.#index}, a tree of maps
   * keyed by each label's value in turn: label values are usually strings V8 has already hashed (a
   * tool's name), so this builds no key string on the hot path.
   */
  protected slot(labels: Labels): { labels: Labels; value: TSeries } {
    const names = this.labelNames;
    let node = this.#index;
    for (let i = 0; i < names.length && node; i++) {
      node = node.get(labels[names[i]!] ?? '') as IndexNode | undefined;
    }
    return (node as unknown as { labels: Labels; value: TSeries } | undefined) ?? this.#create(labels);
  }

  #create(labels: Labels): { labels: Labels; value: TSeries } {
    let key = '';
    for (const name of this.labelNames) key += `${labels[name] ?? ''}\u0000`;
    let entry = this.series.get(key);
    if (!entry) {
      let fixed: Labels = Object.fromEntries(this.labelNames.map((n) => [n, labels[n] ?? '']));
      if (this.series.size >= this.#maxSeries) {
        // Too many label sets: fold the rest into one, so memory and scrape size stay bounded.
        fixed = Object.fromEntries(this.labelNames.map((n) => [n, 'other']));
        key = this.labelNames.map(() => 'other\u0000').join('');
        entry = this.series.get(key);
        if (entry) return entry;
      }
      entry = { labels: fixed, value: this.initial() };
      this.series.set(key, entry);
      this.#indexEntry(fixed, entry);
    }
    return entry;
  }

  /**
   * Drops every series whose labels include all of `match` (a metric about something that is gone,
   * such as a deleted integration's upstream), so a scrape no longer shows its last value. Returns
   * how many series went.
   *
   * @example
   * ```ts
   * metrics.counter('jobs_total', 'Jobs', ['queue']).remove({ queue: 'retired' });
   * ```
   */
  remove(match: Labels): number {
    const keys = Object.keys(match);
    let removed = 0;
    for (const [key, entry] of this.series) {
      if (!keys.every((k) => entry.labels[k] === match[k])) continue;
      this.series.delete(key);
      removed += 1;
    }
    if (removed === 0) return 0;
    // Rebuild the index from what is left: removals are rare, lookups are the hot path.
    this.#index = this.labelNames.length > 0 ? new Map() : undefined;
    for (const entry of this.series.values()) this.#indexEntry(entry.labels, entry);
    return removed;
  }

  #indexEntry(labels: Labels, entry: { labels: Labels; value: TSeries }): void {
    const names = this.labelNames;
    if (names.length === 0) {
      this.#index = entry as unknown as IndexNode;
      return;
    }
    let node = this.#index!;
    for (let i = 0; i < names.length - 1; i++) {
      const value = labels[names[i]!]!;
      let next = node.get(value) as IndexNode | undefined;
      if (!next) {
        next = new Map();
        node.set(value, next);
      }
      node = next;
    }
    node.set(labels[names[names.length - 1]!]!, entry);
  }

  protected header(): string[] {
    return [
      `# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
  }
}

/** A metric with one number per label set, read at scrape time after `collect` (if any) ran. */
abstract class ScalarMetric extends Metric<number> {
  collect: (() => void) | undefined;
  protected initial() {
    return 0;
  }
  render(): string[] {
    this.collect?.();
    return [
      ...this.header(),
      ...[...this.series.values()].map(
        (s) => `${this.name}${renderLabels(s.labels)} ${formatNumber(s.value)}`,
      ),
    ];
  }
  toJSON() {
    this.collect?.();
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}

/** A monotonically increasing count; `collect` may copy a running total in at scrape time. */
export class Counter extends ScalarMetric {
  readonly type = 'counter';
  /** Sets the running total kept elsewhere (for `collect`); it must never go down. */
  setTotal(labels: Labels, total: number): void {
    this.slot(labels).value = total;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.slot(labels).value += by;
  }
  get(labels: Labels = {}): number {
    return this.slot(labels).value;
  }
}

/** A value that goes up and down; `collect` may set it at scrape time. */
export class Gauge extends ScalarMetric {
  readonly type = 'gauge';
  set(labels: Labels, value: number): void {
    this.slot(labels).value = value;
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations in cumulative buckets, with their sum and count. */
export class Histogram extends Metric<HistogramSeries> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(spec: MetricSpec & { buckets?: readonly number[] | undefined }) {
    super(spec);
    const buckets = spec.buckets ?? DEFAULT_BUCKETS;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  protected initial(): HistogramSeries {
    return { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(labels: Labels, value: number): void {
    const s = this.slot(labels).value;
    s.sum += value;
    s.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
  }
  render(): string[] {
    const lines = this.header();
    for (const { labels, value } of this.series.values()) {
      this.buckets.forEach((le, i) => {
        lines.push(`${this.name}_bucket${renderLabels(labels, ['le', formatNumber(le)])} ${value.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${renderLabels(labels, ['le', '+Inf'])} ${value.count}`);
      lines.push(`${this.name}_sum${renderLabels(labels)} ${formatNumber(value.sum)}`);
      lines.push(`${this.name}_count${renderLabels(labels)} ${value.count}`);
    }
    return lines;
  }
  toJSON() {
    return [...this.series.values()].map((s) => ({
      labels: s.labels,
      count: s.value.count,
      sum: s.value.sum,
      buckets: Object.fromEntries(this.buckets.map((le, i) => [String(le), s.value.counts[i]])),
    }));
  }
}

/** What every metric is: its name, help text, label names, and how many series it may hold. */
export interface MetricSpec {
  name: string;
  help: string;
  labelNames: readonly string[];
  maxSeries: number;
}

/** A metric's labels, and a callback that reads its value at each scrape. */
export interface MetricOptions<TMetric> {
  labels?: readonly string[];
  collect?: (metric: TMetric) => void;
}

/** Label names, or the options of a metric read at each scrape. */
export type LabelsOrOptions<TMetric> = readonly string[] | MetricOptions<TMetric>;

/**
 * The registry `GET /metrics` renders. Create metrics through it; each name is registered once.
 *
 * @example
 * ```ts
 * const jobs = server.metrics.counter('myapp_jobs_total', 'Jobs run', ['kind']);
 * jobs.inc({ kind: 'import' });
 * ```
 */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Counter | Gauge | Histogram>();
  readonly #maxSeries: number;

  constructor(options: { maxSeries?: number } = {}) {
    this.#maxSeries = options.maxSeries ?? 500;
  }

  /**
   * A counter: `labels` names its labels, or `{ labels, collect }` also reads its value at each
   * scrape (`collect(counter)`).
   */
  counter(name: string, help: string, labels: LabelsOrOptions<Counter> = []): Counter {
    const { labels: labelNames = [], collect } = Array.isArray(labels)
      ? { labels }
      : (labels as MetricOptions<Counter>);
    const counter = this.#add(new Counter({ name, help, labelNames, maxSeries: this.#maxSeries }));
    if (collect) counter.collect = () => collect(counter);
    return counter;
  }

  /** A gauge: `labels` names its labels, or `{ labels, collect }` also reads it at each scrape. */
  gauge(name: string, help: string, labels: LabelsOrOptions<Gauge> = []): Gauge {
    const { labels: labelNames = [], collect } = Array.isArray(labels)
      ? { labels }
      : (labels as MetricOptions<Gauge>);
    const gauge = this.#add(new Gauge({ name, help, labelNames, maxSeries: this.#maxSeries }));
    if (collect) gauge.collect = () => collect(gauge);
    return gauge;
  }

  /** A histogram: `labels` names its labels, or `{ labels, buckets }` also sets its bucket bounds. */
  histogram(
    name: string,
    help: string,
    labels: readonly string[] | { labels?: readonly string[]; buckets?: readonly number[] } = [],
  ): Histogram {
    const { labels: labelNames = [], buckets } = Array.isArray(labels)
      ? { labels, buckets: undefined }
      : (labels as { labels?: readonly string[]; buckets?: readonly number[] });
    return this.#add(new Histogram({ name, help, labelNames, maxSeries: this.#maxSeries, buckets }));
  }

  #add<T extends Counter | Gauge | Histogram>(metric: T): T {
    if (this.#metrics.has(metric.name)) throw new TypeError(`metric ${metric.name} is already registered`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** The Prometheus text exposition format. */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.#metrics.values()) lines.push(...metric.render());
    return `${lines.join('\n')}\n`;
  }

  /** The same as JSON: `{ name: { type, help, series } }`. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const metric of this.#metrics.values())
      out[metric.name] = { type: metric.type, help: metric.help, series: metric.toJSON() };
    return out;
  }
}
