/**
 * Parallel batches: calls run under a concurrency cap, results in input order; with `failFast`, the
 * first failure cancels the calls still running or waiting.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import pLimit from 'p-limit';
import { McpKitError } from '../core/errors.js';
import type { ExecuteOptions, ToolRunner } from './options.js';
import { errorResult, thrownResult } from './results.js';

/** One call of {@link ToolExecutor.parallel}. */
export interface ParallelCall {
  tool: string;
  args?: Record<string, unknown>;
}

/** Options for {@link ToolExecutor.parallel}. */
export interface ParallelOptions extends Omit<ExecuteOptions, 'depth' | 'onProgress'> {
  /** Calls running at once. Default 8. */
  concurrency?: number;
  /** Cancel the rest at the first failure. Default `false`: every call settles. */
  failFast?: boolean;
}

/** Runs `calls` through `executor`, each as work done on the caller's behalf (`delegated`). */
export async function runParallel(
  executor: ToolRunner,
  calls: ParallelCall[],
  options: ParallelOptions,
): Promise<CallToolResult[]> {
  if (!Array.isArray(calls)) throw new TypeError('calls must be an array');
  const concurrency = options.concurrency ?? 8;
  if (!(Number.isInteger(concurrency) && concurrency >= 1))
    throw new TypeError('concurrency must be a positive integer');
  const controller = new AbortController();
  const parent = options.signal;
  const onAbort = () => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onAbort, { once: true });
  if (parent?.aborted) controller.abort(parent.reason);
  const limit = pLimit(concurrency);
  const { failFast, concurrency: _c, signal: _s, ...rest } = options;
  try {
    return await Promise.all(
      calls.map((call, index) =>
        limit(async () => {
          if (controller.signal.aborted)
            return errorResult('CANCELLED', `Call ${index} (${call.tool}) was cancelled`);
          let result: CallToolResult;
          try {
            result = await executor.execute(call.tool, call.args ?? {}, {
              ...rest,
              origin: rest.origin ?? 'internal',
              signal: controller.signal,
              delegated: true,
            });
          } catch (error) {
            result = thrownResult(error);
          }
          if (result.isError && failFast)
            controller.abort(new McpKitError('CANCELLED', 'Another call failed'));
          return result;
        }),
      ),
    );
  } finally {
    parent?.removeEventListener('abort', onAbort);
  }
}
