/**
 * The values each entry exports, pinned. A name added to or taken from an entry is a change to
 * mcpkit's public API (for the root and the framework entries, one kept under semver): this test
 * makes it a conscious one, to be recorded in CHANGELOG.md. Types are not listed; they cost
 * nothing at runtime, and `scripts/check-package.mjs` compiles consumers against them.
 */
import { describe, expect, it } from 'vitest';
import * as express from '../src/adapters/express.js';
import * as fastify from '../src/adapters/fastify.js';
import * as hono from '../src/adapters/hono.js';
import * as client from '../src/client/index.js';
import * as root from '../src/index.js';
import * as node from '../src/node/index.js';
import * as redis from '../src/redis/index.js';
import * as testing from '../src/testing/index.js';
import * as unstable from '../src/unstable.js';

const PINNED: Record<string, { module: object; values: string[] }> = {
  mcpkit: {
    module: root,
    values: [
      'BUILTIN_ROLES',
      'ConfigError',
      'ENV_VARIABLES',
      'ERROR_CODES',
      'EventBytes',
      'IntegrationStoreError',
      'LoadShedder',
      'McpKitError',
      'MemoryAuditSink',
      'MemoryEventStore',
      'PERMISSIONS',
      'TASKS_EXTENSION_ID',
      'createAnthropicProvider',
      'createCustomProvider',
      'createEphemeralCipher',
      'createLogger',
      'createMcpServer',
      'createMemoryIntegrationStore',
      'createMemoryRateLimitStore',
      'createOpenAIProvider',
      'defineTool',
      'hashApiKey',
      'isTaskContinuation',
      'jsonLinesAuditSink',
      'loadEnvConfig',
      'redactText',
      'redactValue',
      'runAsTask',
      'silentLogger',
    ],
  },
  'mcpkit/node': {
    module: node,
    values: [
      'BEARER_SUBPROTOCOL_PREFIX',
      'COMPLETIONS_SUBPROTOCOL',
      'Isolation',
      'MCP_SUBPROTOCOL',
      'WebSocketClientTransport',
      'WebSocketCloseCode',
      'WebSocketServerTransport',
      'attachWebSocket',
      'createAesGcmCipher',
      'createIsolation',
      'isolatedTool',
      'listen',
      'loadSecretCipher',
      'nodeDnsResolver',
      'openFileIntegrationStore',
      'openFileIntegrations',
      'parseSecretKey',
      'serveStdio',
      'stdioUpstream',
      'toNodeListener',
      'toWebRequest',
      'writeWebResponse',
    ],
  },
  'mcpkit/testing': {
    module: testing,
    values: ['connectClient', 'createModelServer', 'jsonRpcPost', 'readJsonRpc', 'request'],
  },
  'mcpkit/client': {
    module: client,
    values: [
      'BEARER_SUBPROTOCOL_PREFIX',
      'COMPLETIONS_SUBPROTOCOL',
      'CompletionSocketClient',
      'CompletionStreamError',
      'connectCompletions',
      'parseCompletionEvent',
      'readCompletionEvents',
    ],
  },
  'mcpkit/express': { module: express, values: ['mcpkitExpress'] },
  'mcpkit/fastify': { module: fastify, values: ['mcpkitFastify'] },
  'mcpkit/hono': { module: hono, values: ['mcpkitHono'] },
  'mcpkit/redis': {
    module: redis,
    values: ['createRedisIntegrationStore', 'createRedisRateLimitStore', 'redisState'],
  },
  'mcpkit/unstable': {
    module: unstable,
    values: [
      'ATTEMPTS_META_KEY',
      'AccessControl',
      'AuditLog',
      'Authenticator',
      'CompletionManager',
      'Counter',
      'ERROR_META_KEY',
      'Gauge',
      'HealthChecks',
      'Histogram',
      'IntegrationManager',
      'LOCAL_CALLER',
      'LogRing',
      'MODEL_PROVIDER_HOSTS',
      'MetricsRegistry',
      'OVERLOAD_DEFAULTS',
      'OutboundPolicy',
      'Policy',
      'PromptCatalog',
      'RateLimiter',
      'ResourceCache',
      'ResourceCatalog',
      'SERVER_CAPABILITIES',
      'TaskManager',
      'ToolCatalog',
      'ToolExecutor',
      'Tracing',
      'UriTemplate',
      'addressRange',
      'compileDeclarativeTool',
      'errorCodeOf',
      'fillTemplate',
      'isAbortError',
      'isPrivateAddress',
      'parseJsonSafe',
      'parseTraceparent',
      'publicErrorMessage',
      'redact',
      'resolveRefs',
      'stripPollution',
      'summarise',
      'summariseUpstreamError',
      'toCallToolResult',
      'toMcpKitError',
    ],
  },
};

describe('exported values', () => {
  for (const [entry, { module, values }] of Object.entries(PINNED)) {
    it(`${entry} exports exactly its pinned values`, () => {
      expect(Object.keys(module).sort()).toEqual([...values].sort());
      for (const name of values) expect((module as Record<string, unknown>)[name]).toBeDefined();
    });
  }

  it('keeps the root entry to the values applications call', () => {
    expect(PINNED.mcpkit!.values.length).toBeLessThanOrEqual(30);
  });

  it('never exports one value from both the root and the unstable entry', () => {
    const stable = new Set(Object.keys(root));
    expect(Object.keys(unstable).filter((name) => stable.has(name))).toEqual([]);
  });

  it('declares every entry in package.json, built from the same source', async () => {
    const { readFile } = await import('node:fs/promises');
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    const subpaths = Object.keys(manifest.exports).filter((path) => path !== './package.json');
    expect(subpaths.map((path) => (path === '.' ? 'mcpkit' : `mcpkit/${path.slice(2)}`)).sort()).toEqual(
      Object.keys(PINNED).sort(),
    );
  });
});
