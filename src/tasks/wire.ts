import type { CallToolResult, ClientCapabilities, ServerContext } from '@modelcontextprotocol/server';
import { CLIENT_CAPABILITIES_META_KEY } from '@modelcontextprotocol/server';
import { TASKS_EXTENSION_ID, type TaskSnapshot } from './manager.js';

/** The `Task` fields every task message carries (SEP-2663): flat, ISO times, integer milliseconds. */
function taskFields(task: TaskSnapshot) {
  return {
    taskId: task.taskId,
    status: task.status,
    ...(task.statusMessage !== undefined && { statusMessage: task.statusMessage }),
    createdAt: new Date(task.createdAt).toISOString(),
    lastUpdatedAt: new Date(task.lastUpdatedAt).toISOString(),
    ttlMs: task.ttlMs,
    pollIntervalMs: task.pollIntervalMs,
  };
}

/** The `CreateTaskResult` a `tools/call` answers with when it started a task. */
export function createTaskResult(task: TaskSnapshot): Record<string, unknown> {
  return { resultType: 'task', ...taskFields(task) };
}

/**
 * The `tasks/get` answer (a `DetailedTask`): the task, plus its result once completed, its error
 * once failed, or the input it waits for.
 */
export function detailedTask(
  task: TaskSnapshot,
  project: (result: CallToolResult) => CallToolResult,
): Record<string, unknown> {
  return {
    ...taskFields(task),
    ...(task.status === 'completed' &&
      task.result && { result: { resultType: 'complete', ...project(task.result) } }),
    ...(task.status === 'failed' && task.error && { error: task.error }),
    ...(task.status === 'input_required' && task.inputRequests && { inputRequests: task.inputRequests }),
  };
}

/** Whether the request declared the tasks extension in its `_meta` client capabilities. */
export function declaresTasks(ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const capabilities = envelope?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined;
  const extensions = capabilities?.extensions as Record<string, unknown> | undefined;
  return extensions?.[TASKS_EXTENSION_ID] !== undefined && extensions[TASKS_EXTENSION_ID] !== null;
}

/** What a `-32021` refusal carries: the extension the client has to declare. */
export const TASKS_REQUIRED_CAPABILITIES = { extensions: { [TASKS_EXTENSION_ID]: {} } } as ClientCapabilities;
