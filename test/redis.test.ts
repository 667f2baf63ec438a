/**
 * mcpkit/redis against a real redis-server: the shared rate-limit store keeps the memory store's
 * semantics, is atomic across clients, holds one limit across two nodes on every door, and answers a
 * retryable 503 while Redis is down, recovering by itself once it is back; catalog changes reach the
 * clients of every node.
 *
 * Size: over 400 lines because it is one suite over one Redis server and one set of node helpers;
 * split, each part would start its own redis-server and repeat the helpers.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import { createMcpServer, createMemoryRateLimitStore, type McpKitServer, type RateLimitStore } from 'mcpkit';
import { type Listening, listen } from 'mcpkit/node';
import { createRedisRateLimitStore, type RedisState, redisState } from 'mcpkit/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { messagesOf, postMcp } from './fixtures.js';
import { type RedisServer, startRedis } from './support/redisServer.js';
import { rawPeer } from './websocketHelpers.js';

let redis: RedisServer;
let prefixes = 0;
/** A fresh key prefix, so no test sees another's buckets. */
const freshPrefix = () => `t${process.pid}-${++prefixes}:`;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

function client(): Redis {
  const c = new Redis(redis.url, { lazyConnect: false });
  cleanups.push(() => c.quit());
  return c;
}

const RULE = { limit: 3, windowMs: 60_000 };

describe.each([
  ['memory', () => createMemoryRateLimitStore()],
  ['redis', () => createRedisRateLimitStore(client(), { prefix: freshPrefix() })],
] as [string, () => RateLimitStore][])('the %s rate-limit store', (_name, make) => {
  it('spends a full bucket, then refuses with the time until one token is back', async () => {
    const store = make();
    const now = Date.now();
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await store.take('execute:key:a', RULE, now));
    expect(decisions.slice(0, 3).map((d) => [d.allowed, d.remaining, d.retryAfterMs])).toEqual([
      [true, 2, 0],
      [true, 1, 0],
      [true, 0, 0],
    ]);
    const refused = decisions[3]!;
    expect(refused.allowed).toBe(false);
    expect(refused.remaining).toBe(0);
    // One token comes back every 20 s; a few ms may have passed on the store's clock.
    expect(refused.retryAfterMs).toBeGreaterThan(19_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(20_000);
    expect(refused.resetMs).toBeGreaterThan(59_000);
    expect(refused.resetMs).toBeLessThanOrEqual(60_000);
  });

  it('keeps keys apart, whatever bytes they hold', async () => {
    const store = make();
    const now = Date.now();
    for (let i = 0; i < 3; i++) await store.take('execute:key:a', RULE, now);
    expect((await store.take('execute:key:a', RULE, now)).allowed).toBe(false);
    for (const other of ['execute:key:b', 'execute:key:a\0', 'execute:key:a\r\nFLUSHALL', 'execute:key:ä']) {
      expect((await store.take(other, RULE, now)).allowed).toBe(true);
    }
  });
});

describe('createRedisRateLimitStore', () => {
  it('is atomic: 60 racing takes from three clients on a bucket of 10 admit exactly 10', async () => {
    const prefix = freshPrefix();
    const stores = [client(), client(), client()].map((c) => createRedisRateLimitStore(c, { prefix }));
    const rule = { limit: 10, windowMs: 3_600_000 };
    const decisions = await Promise.all(
      Array.from({ length: 60 }, (_, i) => stores[i % 3]!.take('execute:ip:1', rule, 0)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
  });

  it('takes its clock from Redis, not from the caller', async () => {
    const store = createRedisRateLimitStore(client(), { prefix: freshPrefix() });
    for (let i = 0; i < 3; i++) await store.take('k', RULE, 0);
    // A node whose clock is an hour ahead gets no refill out of it.
    expect((await store.take('k', RULE, Date.now() + 3_600_000)).allowed).toBe(false);
  });

  it('lets an idle bucket expire, so idle callers cost Redis no memory', async () => {
    const c = client();
    const prefix = freshPrefix();
    const store = createRedisRateLimitStore(c, { prefix });
    await store.take('k', { limit: 2, windowMs: 1000 }, 0);
    const ttl = await c.pttl(`${prefix}rl:k`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);
  });
});

describe('redisState', () => {
  it('refuses a bad url with a TypeError that never echoes it', () => {
    expect(() => redisState({ url: 'http://user:hunter2@example.com' })).toThrow(TypeError);
    expect(() => redisState({ url: 'http://user:hunter2@example.com' })).toThrow(/redis:\/\//);
    let message = '';
    try {
      redisState({ url: 'not a url :hunter2' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/not a valid URL/);
    expect(message).not.toContain('hunter2');
    expect(() => redisState({ url: redis.url, commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/);
    expect(() => redisState({ url: redis.url, prefix: 'a\r\nb' })).toThrow(/prefix/);
  });

  it('reads MCP_REDIS_URL when no url is given', async () => {
    const before = process.env.MCP_REDIS_URL;
    process.env.MCP_REDIS_URL = redis.url;
    try {
      const state = redisState({ prefix: freshPrefix() });
      cleanups.push(() => state.close!());
      await state.ready();
      expect(await state.client.ping()).toBe('PONG');
    } finally {
      if (before === undefined) delete process.env.MCP_REDIS_URL;
      else process.env.MCP_REDIS_URL = before;
    }
    expect(() => redisState()).toThrow(/MCP_REDIS_URL/);
  });
});

interface Node {
  server: McpKitServer;
  listening: Listening;
  state: RedisState;
}

/** One mcpkit node with its own server, port and Redis connection, sharing `prefix`. */
async function startNode(
  prefix: string,
  options: { stateless?: boolean; websocket?: boolean } = {},
): Promise<Node> {
  const state = redisState({ url: redis.url, prefix, commandTimeoutMs: 500 });
  const server = createMcpServer({
    state,
    logLevel: 'silent',
    rateLimit: { execute: { limit: 4, windowMs: 3_600_000 } },
    ...(options.stateless && { http: { stateless: true } }),
  });
  server.tools.register({
    name: 'echo',
    inputSchema: { text: z.string() },
    handler: async ({ text }) => text,
  });
  let reads = 0;
  server.resources.register({
    uri: 'config://app',
    name: 'app config',
    ttlMs: 3_600_000,
    read: () => `read ${++reads}`,
  });
  const listening = await listen(server, { port: 0, websocket: options.websocket ?? false });
  cleanups.push(async () => {
    await listening.close();
    await server.close();
  });
  await state.ready();
  return { server, listening, state };
}

/** A promise of the next notification `method` on `c`, and a count of every one so far. */
function notifications(c: Client, method: string): { next(): Promise<unknown>; count(): number } {
  let seen = 0;
  let waiting: ((value: unknown) => void) | undefined;
  c.setNotificationHandler(method as 'notifications/tools/list_changed', (n: unknown) => {
    seen++;
    waiting?.(n);
    waiting = undefined;
  });
  return {
    next: () => new Promise((resolve) => (waiting = resolve)),
    count: () => seen,
  };
}

/**
 * Resolves once every client hears a prompts list_changed made on `node`: their notification streams
 * (the GET stream of a 2025-era session opens after `initialize`) are up, and the bus carries.
 */
async function streamsOpen(node: Node, clients: Client[]): Promise<void> {
  const heard = clients.map((c) => notifications(c, 'notifications/prompts/list_changed'));
  for (let i = 0; heard.some((h) => h.count() === 0); i++) {
    node.server.prompts.register({ name: `warm-up-${i}`, messages: [{ role: 'user', content: 'hi' }] });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function execute(node: Node, text: string): Promise<Response> {
  return fetch(`${node.listening.url}/tools/echo/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ arguments: { text } }),
  });
}

async function mcpClient(node: Node): Promise<Client> {
  const c = new Client({ name: 'redis-test', version: '0.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${node.listening.url}/mcp`)));
  cleanups.push(() => c.close());
  return c;
}

describe('two nodes sharing Redis', () => {
  it('enforce one limit across both, on REST and /mcp, with the same headers', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const first = await execute(a, 'one');
    expect(first.status).toBe(200);
    // One token of four an hour is back in 900 s (the memory store's arithmetic, rounded up).
    expect(first.headers.get('ratelimit')).toMatch(/^"execute";r=3;t=90[01]$/);
    expect((await execute(b, 'two')).status).toBe(200);
    const overMcp = await mcpClient(a);
    expect(await overMcp.callTool({ name: 'echo', arguments: { text: 'three' } })).toMatchObject({
      content: [{ type: 'text', text: 'three' }],
    });
    expect((await execute(b, 'four')).headers.get('ratelimit')).toMatch(/^"execute";r=0;t=\d+$/);
    // Four spent across the two nodes: the fifth is refused on either.
    const refused = await execute(a, 'five');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('ratelimit-policy')).toBe('"execute";q=4;w=3600');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(800);
    const overB = await mcpClient(b);
    await expect(overB.callTool({ name: 'echo', arguments: { text: 'six' } })).rejects.toMatchObject({
      code: -32029,
    });
  });

  it('answer a retryable 503 while Redis is down, never crash, and recover by themselves', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const overMcp = await mcpClient(b);
    expect((await execute(a, 'before')).status).toBe(200);
    await redis.stop();
    try {
      const down = await execute(a, 'while down');
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('1');
      const body = JSON.stringify(await down.json());
      expect(body).toMatch(/rate limiter is unavailable/);
      expect(body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|at .*\.ts/);
      await expect(overMcp.callTool({ name: 'echo', arguments: { text: 'x' } })).rejects.toMatchObject({
        code: -32019,
      });
      const health = await fetch(`${b.listening.url}/health`);
      expect(health.status).toBe(503);
      expect(JSON.stringify(await health.json())).toContain('state:redis');
      // Reads and routes that need no shared state still answer.
      expect((await fetch(`${a.listening.url}/tools`)).status).toBe(200);
    } finally {
      await redis.start();
    }
    // Recovery: the clients reconnect on their own (within about a second of backoff).
    for (const node of [a, b]) {
      await expect.poll(() => node.state.healthy!(), { timeout: 5000, interval: 50 }).toBe(true);
    }
    expect((await execute(a, 'after')).status).toBe(200);
    expect(await overMcp.callTool({ name: 'echo', arguments: { text: 'again' } })).toMatchObject({
      content: [{ type: 'text', text: 'again' }],
    });
    expect((await fetch(`${b.listening.url}/health`)).status).toBe(200);
  });
});

describe('a node started while Redis is down', () => {
  it('answers 503 after a bounded wait, then serves once Redis is up, without a restart', async () => {
    await redis.stop();
    let node: Node | undefined;
    try {
      const state = redisState({ url: redis.url, prefix: freshPrefix() });
      const server = createMcpServer({ logLevel: 'silent', state, rateLimit: { execute: 100 } });
      server.tools.register({
        name: 'echo',
        inputSchema: { text: z.string() },
        handler: async ({ text }) => text,
      });
      const listening = await listen(server, { port: 0, websocket: false });
      node = { server, listening, state };
      cleanups.push(async () => {
        await listening.close();
        await server.close();
      });
      await expect(state.ready()).rejects.toThrow(/did not become ready/);
      const early = await execute(node, 'early');
      expect(early.status).toBe(503);
      expect(early.headers.get('retry-after')).toBe('1');
    } finally {
      await redis.start();
    }
    await expect.poll(() => node!.state.healthy!(), { timeout: 5000, interval: 50 }).toBe(true);
    expect((await execute(node!, 'later')).status).toBe(200);
  });
});

describe('http.stateless behind a round-robin balancer', () => {
  it('needs no affinity: requests alternate between nodes without a session, and the limit holds once', async () => {
    const prefix = freshPrefix();
    const nodes = [
      await startNode(prefix, { stateless: true }),
      await startNode(prefix, { stateless: true }),
    ];
    const answers = [];
    for (let i = 0; i < 6; i++) {
      const node = nodes[i % 2]!;
      const res = await postMcp(
        `${node.listening.url}/mcp`,
        {
          jsonrpc: '2.0',
          id: i,
          method: 'tools/call',
          params: { name: 'echo', arguments: { text: `n${i}` } },
        },
        { 'mcp-protocol-version': '2025-06-18' },
      );
      expect(res.headers.get('mcp-session-id')).toBeNull();
      answers.push((await messagesOf(res))[0]);
    }
    expect(answers.slice(0, 4).map((a) => a.result?.content?.[0]?.text)).toEqual(['n0', 'n1', 'n2', 'n3']);
    expect(answers.slice(4).map((a) => a.error?.code)).toEqual([-32029, -32029]);
  });
});

describe('catalog changes across nodes', () => {
  it("reach a subscriber on node A when a resource is updated on node B, and drop A's cached read", async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const onA = await mcpClient(a);
    const first = await onA.readResource({ uri: 'config://app' });
    expect(first.contents[0]).toMatchObject({ text: 'read 1' });
    // Cached on A: a second read does not call the reader.
    expect((await onA.readResource({ uri: 'config://app' })).contents[0]).toMatchObject({ text: 'read 1' });
    await streamsOpen(b, [onA]);
    const updated = notifications(onA, 'notifications/resources/updated');
    await onA.subscribeResource({ uri: 'config://app' });
    const heard = updated.next();
    b.server.resources.notifyUpdated('config://app');
    expect(await heard).toMatchObject({ params: { uri: 'config://app' } });
    expect((await onA.readResource({ uri: 'config://app' })).contents[0]).toMatchObject({ text: 'read 2' });
  });

  it('reach a WebSocket subscriber on node A when a resource is updated on node B', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix, { websocket: true });
    const b = await startNode(prefix);
    const peer = await rawPeer(`${a.listening.url.replace(/^http/, 'ws')}/mcp`);
    cleanups.push(async () => peer.socket.close());
    expect(await peer.request('resources/subscribe', { uri: 'config://app' })).toMatchObject({ result: {} });
    const heard = peer.next((m) => m.method === 'notifications/resources/updated');
    b.server.resources.notifyUpdated('config://app');
    expect(await heard).toMatchObject({ params: { uri: 'config://app' } });
  });

  it("send list_changed to clients of every node, once, and never echo a node's own change back", async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const onA = await mcpClient(a);
    const onB = await mcpClient(b);
    await streamsOpen(b, [onA, onB]);
    const toolsOnA = notifications(onA, 'notifications/tools/list_changed');
    const toolsOnB = notifications(onB, 'notifications/tools/list_changed');
    const heardA = toolsOnA.next();
    const heardB = toolsOnB.next();
    b.server.tools.register({ name: 'added-on-b', handler: async () => 'b' });
    await Promise.all([heardA, heardB]);
    // A ping round trip on each node: anything still in flight has arrived by now.
    const later = toolsOnA.next();
    a.server.tools.register({ name: 'added-on-a', handler: async () => 'a' });
    await later;
    await Promise.all([onA.ping(), onB.ping()]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([toolsOnA.count(), toolsOnB.count()]).toEqual([2, 2]);
  });

  it('ignore malformed, oversized and forged messages on the channel, and keep serving', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const onA = await mcpClient(a);
    await streamsOpen(b, [onA]);
    const updated = notifications(onA, 'notifications/resources/updated');
    await onA.subscribeResource({ uri: 'config://app' });
    const raw = client();
    const channel = `${prefix}changes`;
    for (const junk of [
      'not json',
      'null',
      '[]',
      JSON.stringify({ node: 'x', kind: 'resourceUpdated' }),
      JSON.stringify({ node: 'x', kind: 'resourceUpdated', uri: 42 }),
      JSON.stringify({ node: 'x', kind: '__proto__' }),
      JSON.stringify({ kind: 'resourceUpdated', uri: 'config://app' }),
      JSON.stringify({ node: 'x', kind: 'resourceUpdated', uri: 'config://app', pad: 'x'.repeat(70_000) }),
      '{"node":"x","kind":"resourceUpdated","uri":"config://app"'.padEnd(200_000, ' '),
    ]) {
      await raw.publish(channel, junk);
    }
    const heard = updated.next();
    b.server.resources.notifyUpdated('config://app');
    expect(await heard).toMatchObject({ params: { uri: 'config://app' } });
    await onA.ping();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Only the real change arrived: none of the junk made a notification.
    expect(updated.count()).toBe(1);
  });

  it('tell every client to list again after Redis comes back, as changes may have been missed', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const onA = await mcpClient(a);
    await streamsOpen(a, [onA]);
    const prompts = notifications(onA, 'notifications/prompts/list_changed');
    const resynced = prompts.next();
    await redis.stop();
    await redis.start();
    expect(await resynced).toMatchObject({ method: 'notifications/prompts/list_changed' });
  });
});
