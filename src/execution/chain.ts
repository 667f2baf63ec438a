/**
 * Chains: tools run one after another, each step's arguments built from the chain's input and earlier
 * results, by function or declaratively with `{ "$ref": "steps.0.structuredContent.id" }`.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { ExecuteOptions, ToolRunner } from './options.js';
import { thrownResult } from './results.js';

/** One step of {@link ToolExecutor.chain}. */
export interface ChainStep {
  tool: string;
  /** A name later steps can refer to (`steps.<name>…`) besides the step's index. */
  name?: string;
  /**
   * The step's arguments: an object whose values may be `{ "$ref": "input.a.b" }` or
   * `{ "$ref": "steps.<index|name>.structuredContent.x" }` at any depth, or a function.
   */
  args?: Record<string, unknown> | ((input: unknown, steps: ChainStepResult[]) => Record<string, unknown>);
}

/** What one chain step produced. */
export interface ChainStepResult {
  tool: string;
  name?: string;
  ok: boolean;
  result: CallToolResult;
  durationMs: number;
}

/** The outcome of a chain: every step run, and the last result. */
export interface ChainResult {
  ok: boolean;
  steps: ChainStepResult[];
  result?: CallToolResult;
  durationMs: number;
}

/** Options for {@link ToolExecutor.chain}. */
export interface ChainOptions extends Omit<ExecuteOptions, 'depth' | 'onProgress'> {
  /** Run the remaining steps after a failed one. Default `false`. */
  continueOnError?: boolean;
}

/** One chain to run: its steps, the input they read, and the options every step runs with. */
export interface ChainRun {
  steps: ChainStep[];
  input: unknown;
  options: ChainOptions;
}

const UNSAFE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Reads a dotted path (`steps.0.structuredContent.id`) out of `root`; unsafe keys read nothing. */
export function readPath(root: unknown, path: string): unknown {
  let current: unknown = root;
  for (const segment of path.split('.')) {
    if (UNSAFE_KEYS.has(segment) || current === null || typeof current !== 'object') return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** Replaces every `{ "$ref": "path" }` in `value` with what `path` names in `context`. */
export function resolveRefs(value: unknown, context: unknown): any {
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, context));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === '$ref' && typeof record.$ref === 'string')
    return readPath(context, record.$ref);
  const out: Record<string, unknown> = {};
  for (const key of keys) if (!UNSAFE_KEYS.has(key)) out[key] = resolveRefs(record[key], context);
  return out;
}

/**
 * Runs `chain` through `executor`, each step as work done on the caller's behalf (`delegated`).
 * Stops at the first failed step unless `continueOnError` is set, or when the signal aborts.
 */
export async function runChain(executor: ToolRunner, chain: ChainRun): Promise<ChainResult> {
  const { steps, input, options } = chain;
  if (!Array.isArray(steps) || steps.length === 0) throw new TypeError('steps must be a non-empty array');
  steps.forEach((step, i) => {
    if (typeof step?.tool !== 'string') throw new TypeError(`steps[${i}].tool must be a tool name`);
  });
  const started = performance.now();
  const results: ChainStepResult[] = [];
  const named: Record<string, CallToolResult> = {};
  let ok = true;
  for (const step of steps) {
    if (options.signal?.aborted) {
      ok = false;
      break;
    }
    const stepStarted = performance.now();
    let result: CallToolResult;
    try {
      // References read step results as MCP results: steps.<index|name>.structuredContent…
      const context = {
        input,
        steps: Object.assign(
          results.map((r) => r.result),
          named,
        ),
      };
      const args =
        typeof step.args === 'function' ? step.args(input, results) : resolveRefs(step.args ?? {}, context);
      result = await executor.execute(step.tool, args, {
        ...options,
        origin: options.origin ?? 'chain',
        delegated: true,
      });
    } catch (error) {
      result = thrownResult(error);
    }
    const entry: ChainStepResult = {
      tool: step.tool,
      ...(step.name !== undefined && { name: step.name }),
      ok: !result.isError,
      result,
      durationMs: performance.now() - stepStarted,
    };
    results.push(entry);
    if (step.name !== undefined) named[step.name] = result;
    if (result.isError) {
      ok = false;
      if (!options.continueOnError) break;
    }
  }
  return {
    ok,
    steps: results,
    ...(results.length > 0 && { result: results[results.length - 1]!.result }),
    durationMs: performance.now() - started,
  };
}
