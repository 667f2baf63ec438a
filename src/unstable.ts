/**
 * `mcpkit/unstable`: the building blocks behind `createMcpServer`, for tests, benchmarks and
 * experiments. Nothing here is covered by semver: any name may change or go in a minor release.
 * Applications use the root entry (`mcpkit`), whose classes are exported there as types.
 *
 * @example
 * ```ts
 * import { UriTemplate } from 'mcpkit/unstable';
 *
 * new UriTemplate('notes://{id}').match('notes://7'); // { id: '7' }
 * ```
 */

export { ResourceCache } from './catalog/cache.js';
export { fillTemplate, PromptCatalog } from './catalog/prompts.js';
export { ResourceCatalog } from './catalog/resources.js';
export { ToolCatalog } from './catalog/tools.js';
export { UriTemplate } from './catalog/uriTemplate.js';
export { CompletionManager } from './completions/index.js';
export { isAbortError, publicErrorMessage, toMcpKitError } from './core/errors.js';
export { redact, summarise } from './core/redaction.js';
export { parseJsonSafe, stripPollution } from './core/safeJson.js';
export { compileDeclarativeTool } from './declarative.js';
export {
  ATTEMPTS_META_KEY,
  ERROR_META_KEY,
  errorCodeOf,
  resolveRefs,
  ToolExecutor,
  toCallToolResult,
} from './execution/index.js';
export { OVERLOAD_DEFAULTS } from './http/overload.js';
export { IntegrationManager } from './integrations/index.js';
export { addressRange, isPrivateAddress } from './net/address.js';
export { MODEL_PROVIDER_HOSTS, OutboundPolicy, summariseUpstreamError } from './net/outbound.js';
export { AuditLog } from './policy/audit.js';
export { Authenticator } from './policy/auth.js';
export { AccessControl } from './policy/permissions.js';
export { LOCAL_CALLER, Policy } from './policy/policy.js';
export { RateLimiter } from './policy/rateLimit.js';
export { SERVER_CAPABILITIES } from './protocol/session.js';
export { TaskManager } from './tasks/index.js';
export { HealthChecks } from './telemetry/health.js';
export { LogRing } from './telemetry/logs.js';
export { Counter, Gauge, Histogram, MetricsRegistry } from './telemetry/metrics.js';
export { parseTraceparent, Tracing } from './telemetry/tracing.js';
