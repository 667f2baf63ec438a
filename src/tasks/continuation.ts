import type { ToolContext, ToolReturn } from '../catalog/tools.js';

const CONTINUATION = Symbol.for('mcpkit.taskContinuation');

/** The work a handler hands over with {@link runAsTask}. */
export type TaskWork<TArgs = Record<string, unknown>> = (
  args: TArgs,
  ctx: ToolContext,
) => ToolReturn | Promise<ToolReturn>;

/** What {@link runAsTask} returns: a marker the executor and the MCP session recognise. */
export interface TaskContinuation {
  readonly [CONTINUATION]: true;
  readonly work: TaskWork<any>;
}

/**
 * Returned from the handler of a tool registered with `task: { support, start: 'handler' }`: the
 * rest of the call (`work`) runs as a task. A client that declared the tasks extension gets a
 * `CreateTaskResult` at once and polls `tasks/get`; for every other caller (a client without the
 * extension, REST, chains, code) `work` runs inline and its result is the call's result.
 *
 * @example
 * ```ts
 * handler: (args, ctx) => {
 *   const answer = acceptedContent(ctx.mcp?.mcpReq.inputResponses, 'user_name');
 *   if (!answer) return inputRequired({ inputRequests: { user_name: askName() } });
 *   return runAsTask(async (_args, task) => render(answer.name, task.signal));
 * }
 * ```
 */
export function runAsTask<TArgs = Record<string, unknown>>(work: TaskWork<TArgs>): TaskContinuation {
  if (typeof work !== 'function') throw new TypeError('runAsTask needs a function');
  return { [CONTINUATION]: true, work };
}

/** Whether a handler's return value is a {@link runAsTask} continuation. */
export function isTaskContinuation(value: unknown): value is TaskContinuation {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[CONTINUATION] === true
  );
}
