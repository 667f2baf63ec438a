/**
 * mcpkit: embeddable Model Context Protocol servers. This entry is runtime-neutral: no Node
 * built-ins, no framework imports.
 */

export { ResourceCache, type ResourceCacheOptions, type ResourceCacheStats } from './catalog/cache.js';
export type {
  PromptArgumentSpec,
  PromptContext,
  PromptDefinition,
  PromptMessageTemplate,
  PromptReturn,
} from './catalog/prompts.js';
export { fillTemplate, PromptCatalog } from './catalog/prompts.js';
export type { RegistrationHandle } from './catalog/registry.js';
export type {
  Completer,
  ResourceContext,
  ResourceDefinition,
  ResourceReadReturn,
  ResourceTemplateDefinition,
  ResourceUpdateListener,
} from './catalog/resources.js';
export { ResourceCatalog } from './catalog/resources.js';
export type {
  CallOrigin,
  ClientLog,
  RegisteredTool,
  TaskSupport,
  ToolContext,
  ToolDefinition,
  ToolHandler,
  ToolReturn,
} from './catalog/tools.js';
export { defineTool, ToolCatalog } from './catalog/tools.js';
export { type TemplateVariables, UriTemplate } from './catalog/uriTemplate.js';
export {
  type ChainToolSpec,
  compileDeclarativeTool,
  type DeclarativeToolOptions,
  type DeclarativeToolSpec,
  type HttpToolSpec,
  isPrivateAddress,
} from './declarative.js';
export {
  ERROR_CODES,
  isAbortError,
  McpKitError,
  type McpKitErrorCode,
  type McpKitErrorOptions,
  publicErrorMessage,
  toMcpKitError,
} from './errors.js';
export {
  ATTEMPTS_META_KEY,
  type ChainOptions,
  type ChainResult,
  type ChainStep,
  type ChainStepResult,
  ERROR_META_KEY,
  type ExecuteOptions,
  errorCodeOf,
  type ParallelCall,
  type ParallelOptions,
  type RetryPolicy,
  resolveRefs,
  type ToolCallEvent,
  ToolExecutor,
  type ToolExecutorEvents,
  type ToolExecutorOptions,
  toCallToolResult,
} from './executor.js';
export type { FetchOptions, HttpOptions } from './http/handler.js';
export { type CreateLoggerOptions, createLogger, silentLogger } from './logger.js';
export { SERVER_CAPABILITIES } from './protocol/session.js';
export type { InferSchema, JsonSchema, SchemaInput, ValidationIssue } from './schema.js';
export {
  type Connection,
  type ConnectionCounts,
  type CreateMcpServerOptions,
  createMcpServer,
  type McpKitServer,
} from './server.js';
export {
  isTaskContinuation,
  runAsTask,
  TASKS_EXTENSION_ID,
  type TaskContinuation,
  type TaskError,
  TaskManager,
  type TaskManagerEvents,
  type TaskOptions,
  type TaskSnapshot,
  type TaskStatus,
  type TaskWork,
} from './tasks/index.js';
export type { CallerIdentity, LogFn, Logger, LogLevel } from './types.js';
