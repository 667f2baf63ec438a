/** The completions' public face: what the root entry re-exports of `src/completions/`. */
export { CompletionManager } from './manager.js';
export type {
  CompletionEvent,
  CompletionHandle,
  CompletionHost,
  CompletionManagerOptions,
  CompletionRequest,
  CompletionRunOptions,
  CompletionSnapshot,
  CompletionStatus,
  CompletionStep,
  CompletionStopReason,
  CompletionToolCall,
  ModelConfig,
  ToolSelection,
} from './types.js';
