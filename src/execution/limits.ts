/**
 * Concurrency limits: calls running at once across all tools and per tool, each with a bounded queue
 * past which new calls fail fast with `BUSY` instead of growing memory.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import type { RegisteredTool } from '../catalog/tools.js';

/** The limits of {@link CallLimits}, as `ToolExecutorOptions` gives them. */
export interface CallLimitsOptions {
  /** Calls running at once across all tools. Default: unlimited. */
  concurrency?: number;
  /** Calls waiting for a slot (globally, and per tool) before new ones are refused. Default 1000. */
  maxQueue?: number;
}

/**
 * The slots calls run in. Only calls from outside take slots: nested calls (`ctx.callTool`) run
 * inside their root call's, since taking another from a limiter the root may already hold would
 * deadlock.
 */
export class CallLimits {
  readonly #global: LimitFunction | undefined;
  readonly #perTool = new Map<string, LimitFunction>();
  readonly #maxQueue: number;

  constructor(options: CallLimitsOptions) {
    const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
    if (!(concurrency >= 1)) throw new TypeError('concurrency must be at least 1');
    this.#global = Number.isFinite(concurrency) ? pLimit(concurrency) : undefined;
    this.#maxQueue = options.maxQueue ?? 1000;
    if (!(this.#maxQueue >= 0)) throw new TypeError('maxQueue must be a non-negative number');
  }

  /** Calls running and waiting, globally. */
  get load(): { active: number; queued: number } {
    return { active: this.#global?.activeCount ?? 0, queued: this.#global?.pendingCount ?? 0 };
  }

  /** Whether calls of `tool` from outside run under a limit (and may wait for a slot). */
  bounds(tool: RegisteredTool): boolean {
    return this.#global !== undefined || tool.definition.concurrency !== undefined;
  }

  /**
   * Runs `run` once it has a slot under the global limit and `tool`'s own. Answers at once with the
   * `BUSY` message (a string, not a promise) when a queue it would wait in is full.
   */
  schedule<T>(tool: RegisteredTool, run: () => Promise<T>): Promise<T> | string {
    const global = this.#global;
    const toolLimit = this.#toolLimit(tool);
    for (const limit of [global, toolLimit]) {
      if (limit && limit.activeCount >= limit.concurrency && limit.pendingCount >= this.#maxQueue) {
        return `Server busy: too many calls waiting for ${limit === global ? 'a slot' : tool.name}`;
      }
    }
    const scheduled = toolLimit ? () => toolLimit(run) : run;
    return global ? global(scheduled) : scheduled();
  }

  #toolLimit(tool: RegisteredTool): LimitFunction | undefined {
    const concurrency = tool.definition.concurrency;
    if (concurrency === undefined) return undefined;
    let limit = this.#perTool.get(tool.name);
    if (!limit || limit.concurrency !== concurrency) {
      limit = pLimit(concurrency);
      this.#perTool.set(tool.name, limit);
    }
    return limit;
  }
}
