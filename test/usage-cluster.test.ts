/**
 * Usage across nodes (`state: redisState()`): each node publishes its counts to Redis, and
 * `GET /usage` on any node adds up every live node's, with exact totals and merged percentiles; a
 * snapshot that is not well formed counts for nothing; while Redis is down a node reports its own
 * figures, marked so.
 */
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { redisState } from 'mcpkit/redis';
import { request } from 'mcpkit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { UsageMeter } from '../src/telemetry/usage.js';
import { type RedisServer, startRedis } from './support/redisServer.js';

const KEYS = { admin: 'admin-usage-key-0123456789abcdef', alice: 'alice-usage-key-0123456789abcdef' };

let redis: RedisServer;
const servers: McpKitServer[] = [];
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  for (const server of servers) await server.close();
  await redis?.stop();
});

function node(prefix: string): McpKitServer {
  const server = createMcpServer({
    logLevel: 'silent',
    state: redisState({ url: redis.url, prefix, commandTimeoutMs: 500 }),
    auth: {
      apiKeys: [
        { id: 'admin', key: KEYS.admin, roles: ['admin'] },
        { id: 'alice', key: KEYS.alice, roles: ['user'] },
      ],
    },
  });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  servers.push(server);
  return server;
}

const call = (server: McpKitServer, key: string) =>
  request(server, '/tools/echo/execute', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ arguments: { text: 'hi' } }),
  });

const usage = async (server: McpKitServer) => {
  const res = await request(server, '/usage', { headers: { 'x-api-key': KEYS.admin } });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
};

describe('usage across nodes', () => {
  it('adds up every node’s calls, per caller and per tool, on whichever node answers', async () => {
    const prefix = `usage-${Date.now()}:`;
    const a = node(prefix);
    const b = node(prefix);
    for (let i = 0; i < 3; i++) expect((await call(a, KEYS.alice)).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await call(b, KEYS.alice)).status).toBe(200);
    // Each node publishes on start and every few seconds: wait for B's latest counts to be in Redis.
    await expect
      .poll(async () => (await usage(a)).callers.items.find((r: any) => r.key === 'alice')?.start?.calls, {
        timeout: 10_000,
        interval: 250,
      })
      .toBe(8);
    for (const server of [a, b]) {
      const report = await usage(server);
      expect(report.scope).toBe('cluster');
      expect(report.nodes).toBe(2);
      expect(report.totals.tools.hour.calls).toBe(8);
      expect(report.tools.items.find((r: any) => r.key === 'echo').day.calls).toBe(8);
      expect(report.tools.items.find((r: any) => r.key === 'echo').hour.p50Ms).not.toBeNull();
    }
    // Each node alone still knows only its own.
    expect(a.usage!.report().totals.tools.start?.calls).toBe(3);
  }, 30_000);

  it('answers its own figures, marked, while Redis is down, and the cluster’s again after', async () => {
    const prefix = `usage-down-${Date.now()}:`;
    const a = node(prefix);
    expect((await call(a, KEYS.alice)).status).toBe(200);
    await expect.poll(async () => (await usage(a)).scope, { timeout: 10_000 }).toBe('cluster');
    await redis.stop();
    try {
      const report = await usage(a);
      expect(report).toMatchObject({ scope: 'node', cluster: 'unavailable' });
      expect(report.totals.tools.start.calls).toBe(1);
      expect(JSON.stringify(report)).not.toMatch(/127\.0\.0\.1|redis:\/\//);
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await usage(a)).scope, { timeout: 15_000, interval: 250 }).toBe('cluster');
  }, 40_000);
});

describe('UsageMeter snapshots', () => {
  it('merges snapshots exactly and skips one that is not well formed', () => {
    const now = Date.UTC(2026, 0, 1, 10, 0, 0);
    const one = new UsageMeter({ now: () => now });
    const two = new UsageMeter({ now: () => now });
    one.record({ caller: 'k1', tool: 'add' }, { calls: 1, durationMs: 10 });
    two.record({ caller: 'k1', tool: 'add' }, { calls: 1, error: true, durationMs: 1000 });
    two.record({ caller: 'k2', model: 'openai/m' }, { calls: 1, inputTokens: 7, outputTokens: 3 });
    const wire = JSON.parse(JSON.stringify(two.snapshot()));
    const broken = JSON.parse(JSON.stringify(two.snapshot()));
    broken.dimensions.tools.rows[0].slots[0][2] = ['x', 0, 0, 0];
    const { meter, nodes } = one.merged([wire, broken, null, { startedAt: 1 }]);
    expect(nodes).toBe(2);
    const report = meter.report();
    expect(report.tools.items).toEqual([
      expect.objectContaining({ key: 'add', hour: expect.objectContaining({ calls: 2, errors: 1 }) }),
    ]);
    expect(report.callers.items.map((r) => [r.key, r.start?.calls])).toEqual([
      ['k1', 2],
      ['k2', 1],
    ]);
    expect(report.totals.models.day).toMatchObject({ calls: 1, inputTokens: 7, outputTokens: 3 });
    // The median of 10 ms and 1 s falls in the lower bin, the 95th in the upper.
    expect(report.tools.items[0]!.hour!.p50Ms).toBeLessThan(15);
    expect(report.tools.items[0]!.hour!.p95Ms).toBeGreaterThan(700);
  });
});
