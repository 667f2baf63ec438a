/** The executor's public face: what the root entry re-exports of `src/execution/`. */
export type { ChainOptions, ChainResult, ChainStep, ChainStepResult } from './chain.js';
export { resolveRefs } from './chain.js';
export type { ToolCallEvent, ToolExecutorEvents } from './events.js';
export { ToolExecutor } from './executor.js';
export type { ExecuteOptions, ToolExecutorOptions } from './options.js';
export type { ParallelCall, ParallelOptions } from './parallel.js';
export { ATTEMPTS_META_KEY, ERROR_META_KEY, errorCodeOf, toCallToolResult } from './results.js';
export type { RetryPolicy } from './retry.js';
export type { CancelSignal } from './signal.js';
