export { isTaskContinuation, runAsTask, type TaskContinuation, type TaskWork } from './continuation.js';
export {
  isTerminalStatus,
  type StartTaskOptions,
  TASKS_EXTENSION_ID,
  type TaskError,
  type TaskForgetReason,
  TaskManager,
  type TaskManagerEvents,
  type TaskOptions,
  type TaskSnapshot,
  type TaskStatus,
} from './manager.js';
export { createTaskResult, declaresTasks, detailedTask, TASKS_REQUIRED_CAPABILITIES } from './wire.js';
