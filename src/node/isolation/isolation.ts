/**
 * `createIsolation` and `isolatedTool`: tools whose handler runs in a worker thread or a child
 * process, declared like any tool. The tool they return is an ordinary `ToolDefinition`: the executor
 * validates its arguments (in the main thread, before they leave), applies its timeout, checks its
 * output, and every door and catalog shows it like any other tool.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Tinypool } from 'tinypool';
import type { ToolContext, ToolDefinition } from '../../catalog/tools.js';
import { McpKitError } from '../../core/errors.js';
import type { DeclarativeIsolationPools, UpstreamRead, UpstreamReading } from '../../declarative.js';
import type { SchemaInput } from '../../schema.js';
import type { Counter, MetricsRegistry } from '../../telemetry/metrics.js';
import { type CallHooks, type CallSpec, IsolatedCall } from './call.js';
import { WorkerLinks } from './links.js';
import { httpAnswerModule, type PoolSpec, poolKey, startPool } from './pools.js';
import type { IsolatedToolDefinition, IsolateOptions, IsolationFault, IsolationStats } from './types.js';

/** Options of {@link createIsolation}. */
export interface IsolationOptions {
  /** Workers (or processes) per pool unless a tool says otherwise. Default: the cores less one, at least 1. */
  maxWorkers?: number;
  /** Calls waiting per pool before new ones are refused with `BUSY`. Default 256. */
  maxQueue?: number;
  /**
   * The registry to count faults in (`server.metrics`): `mcpkit_isolation_faults_total{tool,kind}`
   * and the gauge `mcpkit_isolation_workers`.
   */
  metrics?: MetricsRegistry;
  /**
   * How isolated tools yield the CPU to the server's own thread. A number, 0 to 19 (default 10):
   * that many nice levels below the server's priority (0 keeps it), which leaves a burning worker a
   * share of a busy core; Linux lowers only the worker's thread, elsewhere the setting may apply to
   * the whole process, or not at all. `'idle'`: a worker thread runs under Linux's `SCHED_IDLE`
   * policy, set with `chrt` when its first call starts, so it gets a core only when no other thread
   * of the machine wants it, and the server's thread takes a core from it at once (on a saturated
   * machine such a tool gets almost no CPU and may reach its time limit); where that cannot be set
   * (not Linux, no `chrt`, the process level, whose permission model may forbid spawning it), 19 nice
   * levels below the server's priority.
   */
  workerPriority?: WorkerPriority;
}

/**
 * How isolated tools yield the CPU to the server's thread: how many nice levels below the server's
 * priority they run (0 to 19, default 10), or `'idle'` (Linux's `SCHED_IDLE`).
 *
 * @example
 * ```ts
 * const serverFirst: WorkerPriority = 'idle'; // burning workers only use cores nothing else wants
 * const isolation = createIsolation({ workerPriority: serverFirst });
 * ```
 */
export type WorkerPriority = 'idle' | number;

/** One pool, the slots its calls take, what its calls report to, and the pool once started (for its counts). */
interface PoolEntry {
  readonly pool: Promise<Tinypool>;
  readonly limit: LimitFunction;
  readonly hooks: CallHooks;
  started?: Tinypool;
}

/** One call to run: its spec, its pool's spec and key, its arguments and context. */
interface Run {
  call: CallSpec;
  pool: PoolSpec;
  /** {@link poolKey} of `pool`, computed once per tool. */
  key: string;
  args: unknown;
  ctx: ToolContext;
}

const FAULTS: readonly IsolationFault[] = [
  'timeout',
  'memory',
  'exit',
  'uncaught',
  'uncloneable',
  'result-too-large',
  'crash',
  'busy',
];

function positive(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`${option} must be a positive integer (got ${String(value)})`);
  }
  return value;
}

/** The tool module as a `file:` URL: a `URL`, a `file:` URL string, or an absolute path. */
function moduleUrl(module: URL | string, tool: string): string {
  const text = module instanceof URL ? module.href : module;
  if (typeof text !== 'string')
    throw new TypeError(`tool "${tool}": the isolated module must be a URL or a path`);
  if (text.startsWith('file:')) {
    fileURLToPath(text); // throws on a file: URL that names no local file
    return text;
  }
  if (text.startsWith('/')) return pathToFileURL(text).href;
  throw new TypeError(
    `tool "${tool}": the isolated module must be a file: URL (new URL('./tool.js', import.meta.url)) or an absolute path`,
  );
}

/**
 * Pools of workers and child processes that isolated tools run in, with the faults they contained.
 * Built by {@link createIsolation}; close it when the server closes.
 *
 * @example
 * ```ts
 * const isolation = createIsolation({ metrics: server.metrics });
 * server.tools.register(
 *   isolation.tool(new URL('./tools/primes.js', import.meta.url), {
 *     name: 'primes',
 *     inputSchema: { below: z.number().int() },
 *     isolate: { timeoutMs: 5_000, maxMemoryMb: 64 },
 *   }),
 * );
 * // on shutdown
 * await server.close();
 * await isolation.close();
 * ```
 */
export class Isolation implements DeclarativeIsolationPools {
  readonly #maxWorkers: number;
  readonly #maxQueue: number;
  readonly #priority: WorkerPriority;
  readonly #pools = new Map<string, PoolEntry>();
  readonly #faults = Object.fromEntries(FAULTS.map((kind) => [kind, 0])) as Record<IsolationFault, number>;
  readonly #counter: Counter | undefined;
  #closed = false;

  /** @internal Use {@link createIsolation}. */
  constructor(options: IsolationOptions = {}) {
    this.#maxWorkers = positive(options.maxWorkers, 'maxWorkers', Math.max(1, availableParallelism() - 1));
    this.#maxQueue = options.maxQueue ?? 256;
    if (!(Number.isInteger(this.#maxQueue) && this.#maxQueue >= 0)) {
      throw new TypeError(`maxQueue must be a non-negative integer (got ${String(options.maxQueue)})`);
    }
    this.#priority = options.workerPriority ?? 10;
    const priority = this.#priority;
    if (priority !== 'idle' && !(Number.isInteger(priority) && priority >= 0 && priority <= 19)) {
      throw new TypeError(
        `workerPriority must be 'idle' or an integer from 0 to 19 (got ${String(options.workerPriority)})`,
      );
    }
    const metrics = options.metrics;
    if (metrics) {
      this.#counter = metrics.counter(
        'mcpkit_isolation_faults_total',
        'Failures contained by tool isolation, by tool and kind',
        ['tool', 'kind'],
      );
      metrics.gauge('mcpkit_isolation_workers', 'Workers and processes alive in isolation pools', {
        labels: [],
        collect: (gauge) => gauge.set({}, this.#workers()),
      });
    }
  }

  /**
   * An isolated tool: `definition` without a handler, whose handler is the export `isolate.export`
   * (default `default`) of `module`, typed with {@link IsolatedHandler} from the same input schema.
   */
  tool<TInput extends SchemaInput | undefined = undefined>(
    module: URL | string,
    definition: IsolatedToolDefinition<TInput>,
  ): ToolDefinition<TInput> {
    const { isolate = {}, ...rest } = definition;
    const name = String(definition.name);
    const call = this.#callSpec(name, module, isolate);
    const pool = this.#poolSpec(call, isolate);
    const key = poolKey(pool);
    const handler = (args: unknown, ctx: ToolContext) => this.#run({ call, pool, key, args, ctx });
    return {
      ...rest,
      timeoutMs: definition.timeoutMs ?? call.timeoutMs,
      callToolAs: definition.callToolAs ?? 'caller',
      // A fault (a heap blown, a worker ended) would most often come again: no retries unless asked.
      retries: definition.retries ?? 0,
      handler: handler as ToolDefinition<TInput>['handler'],
    };
  }

  /**
   * Reads a declarative HTTP tool's upstream answer at `level` (`declarativeTools.isolation` of
   * `createMcpServer`): the parse of its JSON runs in a worker or a child process of this isolation,
   * under `limits`, and its faults are counted under the tool's name like an isolated tool's.
   */
  readUpstreamAnswer(read: UpstreamRead, ctx: ToolContext): Promise<UpstreamReading> {
    const { level, answer, limits } = read;
    const tool = ctx.toolName;
    const call = this.#callSpec(tool, httpAnswerModule(), {
      level,
      timeoutMs: limits.timeoutMs,
      maxMemoryMb: limits.maxMemoryMb,
      maxResultBytes: answer.maxResultBytes,
    });
    const spec: CallSpec = { ...call, option: 'declarativeTools.isolation' };
    const pool = this.#poolSpec(spec, {});
    return this.#run({ call: spec, pool, key: poolKey(pool), args: answer, ctx }) as Promise<UpstreamReading>;
  }

  #callSpec(tool: string, module: URL | string, isolate: IsolateOptions): CallSpec {
    const level = isolate.level ?? 'worker';
    if (level !== 'worker' && level !== 'process') {
      throw new TypeError(`tool "${tool}": isolate.level must be 'worker' or 'process'`);
    }
    const exportName = isolate.export ?? 'default';
    if (typeof exportName !== 'string' || exportName === '') {
      throw new TypeError(`tool "${tool}": isolate.export must be a non-empty string`);
    }
    return {
      tool,
      level,
      module: moduleUrl(module, tool),
      exportName,
      timeoutMs: positive(isolate.timeoutMs, `tool "${tool}": isolate.timeoutMs`, 30_000),
      graceMs:
        isolate.graceMs === undefined
          ? 100
          : positive(isolate.graceMs, `tool "${tool}": isolate.graceMs`, 100),
      maxMemoryMb: positive(isolate.maxMemoryMb, `tool "${tool}": isolate.maxMemoryMb`, 256),
      maxResultBytes: positive(isolate.maxResultBytes, `tool "${tool}": isolate.maxResultBytes`, 1024 * 1024),
      priority: this.#priority,
    };
  }

  #poolSpec(call: CallSpec, isolate: IsolateOptions): PoolSpec {
    const maxWorkers = positive(
      isolate.maxWorkers,
      `tool "${call.tool}": isolate.maxWorkers`,
      this.#maxWorkers,
    );
    const base = { level: call.level, maxMemoryMb: call.maxMemoryMb, maxWorkers };
    if (call.level === 'worker') {
      if (isolate.permissions || isolate.env) {
        throw new TypeError(
          `tool "${call.tool}": isolate.permissions and isolate.env need level 'process' (a worker thread has no permission boundary)`,
        );
      }
      return base;
    }
    return {
      ...base,
      module: call.module,
      ...(isolate.permissions && { permissions: structuredClone(isolate.permissions) }),
      ...(isolate.env && { env: { ...isolate.env } }),
    };
  }

  /**
   * Runs a call once its pool has a free worker. Calls wait here, in a queue of `maxQueue`, never in
   * tinypool's: a worker that died is replaced when the next call takes its slot.
   */
  #run(run: Run): Promise<unknown> {
    const entry = this.#poolFor(run.pool, run.key);
    if (entry instanceof Error) return Promise.reject(entry);
    const { limit } = entry;
    if (limit.activeCount >= limit.concurrency && limit.pendingCount >= this.#maxQueue) {
      this.#fault('busy', run.call.tool);
      return Promise.reject(
        new McpKitError('BUSY', `Server busy: too many calls waiting for ${run.call.tool}'s workers`),
      );
    }
    return limit(async () => {
      const pool = entry.started ?? (await entry.pool);
      return new IsolatedCall(run.call, run.ctx, entry.hooks).run(pool, run.args);
    });
  }

  #poolFor(spec: PoolSpec, key: string): PoolEntry | Error {
    if (this.#closed) return new McpKitError('UNAVAILABLE', 'The isolation is closed');
    let entry = this.#pools.get(key);
    if (!entry) {
      const hooks: CallHooks = {
        fault: (kind: IsolationFault, tool: string) => this.#fault(kind, tool),
        closing: () => this.#closed,
        ...(spec.level === 'worker' && { links: new WorkerLinks() }),
      };
      const created: PoolEntry = { pool: startPool(spec), limit: pLimit(spec.maxWorkers), hooks };
      created.pool.then(
        (started) => {
          created.started = started;
        },
        () => this.#pools.delete(key),
      );
      this.#pools.set(key, created);
      entry = created;
    }
    return entry;
  }

  #fault(kind: IsolationFault, tool: string): void {
    this.#faults[kind]++;
    this.#counter?.inc({ tool, kind });
  }

  #settledPools(): Tinypool[] {
    return [...this.#pools.values()].flatMap((entry) => (entry.started ? [entry.started] : []));
  }

  #workers(): number {
    return this.#settledPools().reduce((sum, pool) => sum + pool.threads.length, 0);
  }

  /** The pools, workers alive, calls waiting, and faults contained so far. */
  stats(): IsolationStats {
    const pools = this.#settledPools();
    return {
      pools: this.#pools.size,
      workers: pools.reduce((sum, pool) => sum + pool.threads.length, 0),
      queued: [...this.#pools.values()].reduce((sum, entry) => sum + entry.limit.pendingCount, 0),
      faults: { ...this.#faults },
    };
  }

  /**
   * Terminates every worker and process: calls still running answer `UNAVAILABLE` ("the server's
   * isolation is closing"), and so does every later call of its tools.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(
      entries.map((entry) => {
        entry.limit.clearQueue();
        return entry.pool
          .then((pool) => pool.destroy())
          .catch(() => {})
          .finally(() => entry.hooks.links?.close());
      }),
    );
  }
}

/**
 * Pools for isolated tools, with their own limits and metrics.
 *
 * @example
 * ```ts
 * import { createIsolation } from 'mcpkit/node';
 *
 * const isolation = createIsolation({ maxWorkers: 2, metrics: server.metrics });
 * server.tools.register(
 *   isolation.tool(new URL('./tools/resize.js', import.meta.url), {
 *     name: 'resize',
 *     inputSchema: { url: z.string().url(), width: z.number().int() },
 *     isolate: { level: 'process', timeoutMs: 10_000, maxMemoryMb: 128 },
 *   }),
 * );
 * ```
 */
export function createIsolation(options: IsolationOptions = {}): Isolation {
  return new Isolation(options);
}

let shared: Isolation | undefined;

/**
 * An isolated tool on the process-wide shared isolation (its default limits, no metrics): the
 * shorthand of `createIsolation().tool(module, definition)`. Its idle workers leave after 30 s and
 * never keep the process alive.
 *
 * @example
 * ```ts
 * import { isolatedTool } from 'mcpkit/node';
 *
 * server.tools.register(
 *   isolatedTool(new URL('./tools/heavy.js', import.meta.url), {
 *     name: 'heavy',
 *     inputSchema: { n: z.number().int() },
 *     isolate: { timeoutMs: 2_000, maxMemoryMb: 64 },
 *   }),
 * );
 * ```
 */
export function isolatedTool<TInput extends SchemaInput | undefined = undefined>(
  module: URL | string,
  definition: IsolatedToolDefinition<TInput>,
): ToolDefinition<TInput> {
  shared ??= new Isolation();
  return shared.tool(module, definition);
}
