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
  type CompletionEvent,
  type CompletionHandle,
  CompletionManager,
  type CompletionManagerOptions,
  type CompletionRequest,
  type CompletionRunOptions,
  type CompletionSnapshot,
  type CompletionStatus,
  type CompletionStep,
  type CompletionStopReason,
  type CompletionToolCall,
  type ModelConfig as CompletionModelConfig,
  type ToolSelection,
} from './completions/index.js';
export { ConfigError, ENV_VARIABLES, type EnvConfig, loadEnvConfig } from './config.js';
export {
  ERROR_CODES,
  isAbortError,
  McpKitError,
  type McpKitErrorCode,
  type McpKitErrorOptions,
  publicErrorMessage,
  toMcpKitError,
} from './core/errors.js';
export type { TrustProxy } from './core/forwarded.js';
export {
  type RedactTextOptions,
  type RedactValueOptions,
  redact,
  redactText,
  redactValue,
  summarise,
} from './core/redaction.js';
export type { Refusal, RefusalCode } from './core/refusal.js';
export { parseJsonSafe, stripPollution } from './core/safeJson.js';
export {
  type ChainToolSpec,
  compileDeclarativeTool,
  type DeclarativeToolOptions,
  type DeclarativeToolSpec,
  type HttpToolSpec,
} from './declarative.js';
export {
  ATTEMPTS_META_KEY,
  type CancelSignal,
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
export { EventBytes, MemoryEventStore, type MemoryEventStoreOptions } from './http/eventStore.js';
export type { AdmissionDecision, FetchOptions, HttpOptions, MemoryEventStoreLimits } from './http/handler.js';
export {
  LoadShedder,
  OVERLOAD_DEFAULTS,
  type OverloadOptions,
  type ResolvedOverloadOptions,
  type ShedDoor,
  type ShedReason,
} from './http/overload.js';
export {
  type AttachedTool,
  createEphemeralCipher,
  createMemoryIntegrationStore,
  type Integration,
  type IntegrationEvent,
  type IntegrationEvents,
  type IntegrationInput,
  IntegrationManager,
  type IntegrationManagerOptions,
  type IntegrationPromptSpec,
  type IntegrationResourceSpec,
  type IntegrationSnapshot,
  type IntegrationStore,
  IntegrationStoreError,
  type IntegrationType,
  type IntegrationWriteOptions,
  type ModelConfig,
  type ModelProvider,
  type SecretCipher,
  type StoredIntegration,
} from './integrations/index.js';
export { type CreateLoggerOptions, createLogger, silentLogger } from './logger.js';
export { type AddressRange, addressRange, isPrivateAddress } from './net/address.js';
export {
  MODEL_PROVIDER_HOSTS,
  type OutboundFetchOptions,
  type OutboundInit,
  type OutboundOptions,
  OutboundPolicy,
  summariseUpstreamError,
} from './net/outbound.js';
export {
  type AuditAction,
  type AuditEvent,
  AuditLog,
  type AuditSink,
  jsonLinesAuditSink,
  MemoryAuditSink,
} from './policy/audit.js';
export {
  type ApiKeyConfig,
  Authenticator,
  type AuthFailure,
  type AuthOptions,
  hashApiKey,
  type OAuthResourceOptions,
  type VerifyResult,
} from './policy/auth.js';
export {
  AccessControl,
  type AccessRule,
  BUILTIN_ROLES,
  type Grant,
  PERMISSIONS,
  type Permission,
  type PermissionPattern,
  type RoleDefinition,
  type TargetKind,
} from './policy/permissions.js';
export { LOCAL_CALLER, Policy, type PolicyOptions } from './policy/policy.js';
export {
  createMemoryRateLimitStore,
  type RateClass,
  type RateDecision,
  RateLimiter,
  type RateLimitOptions,
  type RateLimitRule,
  type RateLimitStore,
} from './policy/rateLimit.js';
export { SERVER_CAPABILITIES } from './protocol/session.js';
export {
  type AnthropicProviderOptions,
  type ChatMessage,
  type CustomProviderOptions,
  createAnthropicProvider,
  createCustomProvider,
  createOpenAIProvider,
  type ModelFinishReason,
  type ModelProvider as ModelClient,
  type ModelRequest,
  type ModelResponse,
  type ModelStreamEvent,
  type ModelTool,
  type ModelToolCall,
  type ModelUsage,
  type OpenAIProviderOptions,
  type ProviderHttpOptions,
  type ProviderRetryOptions,
} from './providers/index.js';
export type { InferSchema, JsonSchema, SchemaInput, ValidationIssue } from './schema.js';
export {
  type Connection,
  type ConnectionCounts,
  type ConnectOptions,
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
  type TaskForgetReason,
  TaskManager,
  type TaskManagerEvents,
  type TaskOptions,
  type TaskSnapshot,
  type TaskStatus,
  type TaskWork,
} from './tasks/index.js';
export { type CheckResult, type HealthCheck, HealthChecks, type HealthReport } from './telemetry/health.js';
export { type LogRecord, LogRing } from './telemetry/logs.js';
export { Counter, Gauge, Histogram, MetricsRegistry } from './telemetry/metrics.js';
export {
  type ActiveSpan,
  type ContextLike,
  type OpenTelemetryApiLike,
  parseTraceparent,
  type SpanAttributes,
  type SpanLike,
  type TracerLike,
  Tracing,
  type TracingOptions,
} from './telemetry/tracing.js';
export type { CallerIdentity, LogFn, Logger, LogLevel } from './types.js';
