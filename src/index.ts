/**
 * mcpkit: embeddable Model Context Protocol servers. This entry is runtime-neutral: no Node
 * built-ins, no framework imports.
 *
 * It holds the API applications call, and nothing else: `createMcpServer`, `defineTool`, errors,
 * model providers, integration stores and ciphers, audit sinks, `hashApiKey`, the logger and
 * configuration. The classes behind a server (`ToolExecutor`, `Policy`, the catalogs, …) are
 * exported as types, for the objects a server hands out; their constructors live in
 * `mcpkit/unstable`, outside semver. `test/exports.test.ts` pins the values of every entry.
 */

export type { ResourceCache, ResourceCacheOptions, ResourceCacheStats } from './catalog/cache.js';
export type {
  PromptArgs,
  PromptArgumentSpec,
  PromptCatalog,
  PromptContext,
  PromptDefinition,
  PromptMessageTemplate,
  PromptReturn,
} from './catalog/prompts.js';
export type { RegistrationHandle } from './catalog/registry.js';
export type {
  Completer,
  ResourceCatalog,
  ResourceContext,
  ResourceDefinition,
  ResourceReadReturn,
  ResourceTemplateDefinition,
  ResourceUpdateListener,
} from './catalog/resources.js';
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
export { defineTool, type ToolCatalog } from './catalog/tools.js';
export type { TemplateVariables, UriTemplate } from './catalog/uriTemplate.js';
export type {
  CompletionEvent,
  CompletionHandle,
  CompletionManager,
  CompletionManagerOptions,
  CompletionRequest,
  CompletionRunOptions,
  CompletionSnapshot,
  CompletionStatus,
  CompletionStep,
  CompletionStopReason,
  CompletionToolCall,
  ModelConfig as CompletionModelConfig,
  ToolSelection,
} from './completions/index.js';
export { ConfigError, ENV_VARIABLES, type EnvConfig, loadEnvConfig } from './config.js';
export {
  ERROR_CODES,
  McpKitError,
  type McpKitErrorCode,
  type McpKitErrorOptions,
} from './core/errors.js';
export type { TrustProxy } from './core/forwarded.js';
export {
  type RedactTextOptions,
  type RedactValueOptions,
  redactText,
  redactValue,
} from './core/redaction.js';
export type { Refusal, RefusalCode } from './core/refusal.js';
export type {
  ChainToolSpec,
  DeclarativeIsolationLevel,
  DeclarativeIsolationOptions,
  DeclarativeIsolationPools,
  DeclarativeToolOptions,
  DeclarativeToolSpec,
  HttpToolSpec,
  UpstreamAnswer,
  UpstreamRead,
  UpstreamReading,
} from './declarative.js';
export type {
  CancelSignal,
  ChainOptions,
  ChainResult,
  ChainStep,
  ChainStepResult,
  ExecuteOptions,
  ParallelCall,
  ParallelOptions,
  RetryPolicy,
  ToolCallEvent,
  ToolExecutor,
  ToolExecutorEvents,
  ToolExecutorOptions,
} from './execution/index.js';
export type { DocsOptions } from './http/docs.js';
export { EventBytes, MemoryEventStore, type MemoryEventStoreOptions } from './http/eventStore.js';
export type { AdmissionDecision } from './http/handler.js';
export type { FetchOptions, HttpOptions, MemoryEventStoreLimits } from './http/options.js';
export {
  LoadShedder,
  type OverloadOptions,
  type ResolvedOverloadOptions,
  type ShedDoor,
  type ShedReason,
} from './http/overload.js';
export {
  type AttachedTool,
  type AttachedUpstream,
  createEphemeralCipher,
  createMemoryIntegrationStore,
  type ExportSecrets,
  type ExportSecretsMode,
  type ImportConflictPolicy,
  type ImportIssue,
  type Integration,
  type IntegrationEvent,
  type IntegrationEvents,
  type IntegrationExport,
  type IntegrationExportOptions,
  type IntegrationImportOptions,
  type IntegrationImportReport,
  type IntegrationInput,
  type IntegrationManager,
  type IntegrationManagerOptions,
  type IntegrationPromptSpec,
  type IntegrationRecordWrite,
  type IntegrationResourceSpec,
  type IntegrationSnapshot,
  type IntegrationStore,
  IntegrationStoreError,
  type IntegrationType,
  type IntegrationWriteOptions,
  type ModelConfig,
  type ModelProvider,
  type SecretCipher,
  type SharedIntegrationStore,
  type StoredIntegration,
  type UpstreamLimits,
  type UpstreamSource,
  type UpstreamSpec,
  type UpstreamState,
  type UpstreamStatus,
} from './integrations/index.js';
export { type CreateLoggerOptions, createLogger, silentLogger } from './logger.js';
export type { AddressRange } from './net/address.js';
export type {
  OutboundFetchOptions,
  OutboundInit,
  OutboundOptions,
  OutboundPolicy,
} from './net/outbound.js';
export {
  type AuditAction,
  type AuditEvent,
  type AuditLog,
  type AuditSink,
  jsonLinesAuditSink,
  MemoryAuditSink,
} from './policy/audit.js';
export {
  type ApiKeyConfig,
  type Authenticator,
  type AuthFailure,
  type AuthOptions,
  hashApiKey,
  type OAuthResourceOptions,
  type VerifyResult,
} from './policy/auth.js';
export {
  type AccessControl,
  type AccessRule,
  BUILTIN_ROLES,
  type Grant,
  PERMISSIONS,
  type Permission,
  type PermissionPattern,
  type RoleDefinition,
  type TargetKind,
} from './policy/permissions.js';
export type { Policy, PolicyOptions } from './policy/policy.js';
export {
  createMemoryRateLimitStore,
  type RateClass,
  type RateDecision,
  type RateLimiter,
  type RateLimitOptions,
  type RateLimitRule,
  type RateLimitStore,
} from './policy/rateLimit.js';
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
export type {
  CatalogChange,
  CatalogEntryKind,
  ChangeBus,
  JobStore,
  SessionDirectory,
  SharedCatalogEntries,
  SharedEventStore,
  SharedJob,
  SharedState,
  SharedStateContext,
  TaskStore,
  WorkRunner,
} from './state/shared.js';
export {
  isTaskContinuation,
  runAsTask,
  TASKS_EXTENSION_ID,
  type TaskContinuation,
  type TaskError,
  type TaskForgetReason,
  type TaskManager,
  type TaskManagerEvents,
  type TaskOptions,
  type TaskSnapshot,
  type TaskStatus,
  type TaskWork,
} from './tasks/index.js';
export type { CheckResult, HealthCheck, HealthChecks, HealthReport } from './telemetry/health.js';
export type { LogRecord, LogRing } from './telemetry/logs.js';
export type { Counter, Gauge, Histogram, MetricsRegistry } from './telemetry/metrics.js';
export type {
  ActiveSpan,
  ContextLike,
  OpenTelemetryApiLike,
  SpanAttributes,
  SpanLike,
  TracerLike,
  Tracing,
  TracingOptions,
} from './telemetry/tracing.js';
export type { UsageMeter, UsageOptions, UsageReport, UsageShare } from './telemetry/usage.js';
export type { CallerIdentity, LogFn, Logger, LogLevel } from './types.js';
