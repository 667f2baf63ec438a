/**
 * The server module of the multi-node tests (test/redis-cluster.test.ts): every node shares Redis
 * (rate limits, catalog changes, the session directory, resumable streams' events), takes API keys,
 * and offers a tool naming the node that ran it and one that updates a resource from any node.
 * Integrations and REST catalog entries are shared too, sealed with one key every node derives
 * from the cluster's secret.
 * `CLUSTER_STATELESS=1` serves 2025-era clients with `http.stateless`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { createMcpServer, type McpKitServer } from '../../src/index.js';
import { createAesGcmCipher } from '../../src/node/index.js';
import { redisState } from '../../src/redis/index.js';
import type { ClusterNodeContext } from './cluster.js';

/** The API keys every node accepts, by caller id. */
export const CLUSTER_KEYS = {
  alice: 'alice-cluster-key-0123456789abcdef',
  bob: 'bob-cluster-key-0123456789abcdef00',
  carol: 'carol-cluster-key-0123456789abcdef',
  dave: 'dave-cluster-key-0123456789abcdef0',
  erin: 'erin-cluster-key-0123456789abcdef0',
  metered: 'metered-cluster-key-0123456789abcd',
} as const;

/** `tools/call` per caller per hour, across the whole cluster. */
export const CLUSTER_EXECUTE_LIMIT = 12;

export function createNode(node: ClusterNodeContext): McpKitServer {
  const server = createMcpServer({
    name: `node-${node.index}`,
    logLevel: 'error',
    state: redisState({
      url: node.redisUrl,
      prefix: node.prefix,
      advertise: node.advertise,
      secret: node.secret,
      commandTimeoutMs: 500,
      eventStore: { maxBytesPerStream: 64 * 1024, ttlMs: 60_000 },
    }),
    auth: {
      apiKeys: Object.entries(CLUSTER_KEYS).map(([id, key]) => ({ id, key, roles: ['admin'] })),
    },
    rateLimit: { execute: { limit: CLUSTER_EXECUTE_LIMIT, windowMs: 3_600_000 } },
    http: { stateless: node.env.CLUSTER_STATELESS === '1', sseRetryMs: 100 },
    resources: [{ uri: 'mem://doc', name: 'doc', read: () => 'the document' }],
    // The same key on every node: each opens the secrets another sealed.
    integrations: { cipher: createAesGcmCipher(createHash('sha256').update(node.secret).digest()) },
  });
  server.tools.register({
    name: 'whoami',
    description: 'The node that ran this call',
    handler: async () => `node-${node.index}`,
  });
  server.tools.register({
    name: 'touch',
    description: 'Updates mem://doc on the node that runs it',
    inputSchema: { uri: z.string().optional() },
    handler: async ({ uri }) => {
      server.resources.notifyUpdated(uri ?? 'mem://doc');
      return `touched on node-${node.index}`;
    },
  });
  return server;
}
