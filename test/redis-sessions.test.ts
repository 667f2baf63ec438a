/**
 * The pieces behind 2025-era sessions across nodes, against a real redis-server: `redisState`'s
 * options, the session directory (records, TTL, refresh, forget only what still names a node), the
 * Redis event store (bounded by bytes per stream, with a TTL, replay after an id, keys gone on
 * close), and two nodes in process: a session opened on one served through the other, and the
 * forwarding header checked on every request that carries it.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { Redis } from 'ioredis';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { type Listening, listen } from 'mcpkit/node';
import { type RedisState, redisState } from 'mcpkit/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, postMcp } from './fixtures.js';
import { type RedisServer, startRedis } from './support/redisServer.js';

let redis: RedisServer;
let raw: Redis;
let prefixes = 0;
const freshPrefix = () => `s${process.pid}-${++prefixes}:`;
const SECRET = 'a-cluster-secret-of-at-least-32-characters';
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
  // One test restarts Redis: this client reconnects by itself.
  raw.on('error', () => {});
});
afterAll(async () => {
  raw.disconnect();
  await redis.stop();
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

function state(options: Parameters<typeof redisState>[0]): RedisState {
  const made = redisState({ url: redis.url, ...options });
  cleanups.push(() => made.close!());
  return made;
}

describe('redisState options for sessions', () => {
  it('refuses advertise without a long enough secret, a bad advertise URL, and bad bounds', () => {
    expect(() => redisState({ url: redis.url, advertise: 'http://10.0.0.1:3000' })).toThrow(/secret/);
    expect(() => redisState({ url: redis.url, advertise: 'http://10.0.0.1:3000', secret: 'short' })).toThrow(
      /32 characters/,
    );
    expect(() => redisState({ url: redis.url, advertise: 'ftp://x', secret: SECRET })).toThrow(/http/);
    expect(() => redisState({ url: redis.url, advertise: 'http://u:p@x', secret: SECRET })).toThrow(
      /credentials/,
    );
    expect(() => redisState({ url: redis.url, advertise: 'not a url', secret: SECRET })).toThrow(/valid URL/);
    expect(() => redisState({ url: redis.url, eventStore: { maxBytesPerStream: 0 } })).toThrow(
      /maxBytesPerStream/,
    );
  });

  it('shares sessions only with advertise, and keeps the advertised origin', () => {
    expect(state({}).sessions).toBeUndefined();
    expect(state({}).eventStore).toBeUndefined();
    const shared = state({ advertise: 'http://10.0.0.1:3000/ignored/path', secret: SECRET });
    expect(shared.sessions?.advertise).toBe('http://10.0.0.1:3000');
  });
});

describe('the session directory', () => {
  it('records, refreshes, looks up and releases sessions under a TTL', async () => {
    const prefix = freshPrefix();
    const s = state({ prefix, advertise: 'http://10.0.0.1:3000', secret: SECRET, sessionTtlMs: 300 });
    await s.ready();
    const directory = s.sessions!;
    directory.hold('abc');
    await expect.poll(() => directory.owner('abc')).toBe('http://10.0.0.1:3000');
    expect(await raw.pttl(`${prefix}session:abc`)).toBeLessThanOrEqual(300);
    // Refreshed while held: still there after twice its TTL.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await directory.owner('abc')).toBe('http://10.0.0.1:3000');
    directory.release('abc');
    await expect.poll(() => directory.owner('abc')).toBeUndefined();
    // An id that is no session id is never looked up.
    expect(await directory.owner('a b\r\n')).toBeUndefined();
  });

  it('forgets a record only while it still names the node that is gone', async () => {
    const prefix = freshPrefix();
    const s = state({ prefix, advertise: 'http://10.0.0.1:3000', secret: SECRET });
    await s.ready();
    await raw.set(`${prefix}session:x`, 'http://10.0.0.2:3000');
    s.sessions!.forget('x', 'http://10.0.0.9:3000');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await raw.get(`${prefix}session:x`)).toBe('http://10.0.0.2:3000');
    s.sessions!.forget('x', 'http://10.0.0.2:3000');
    await expect.poll(() => raw.get(`${prefix}session:x`)).toBeNull();
  });
});

const note = (n: number): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/message',
  params: { level: 'info', data: `event ${n} ${'x'.repeat(80)}` },
});

describe('the Redis event store', () => {
  it('keeps each stream under its byte bound, expires it, replays after an id, and deletes it on close', async () => {
    const prefix = freshPrefix();
    const s = state({ prefix, eventStore: { maxBytesPerStream: 1024, ttlMs: 5_000 } });
    await s.ready();
    const store = s.eventStore!();
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await store.storeEvent('stream-a', note(i)));
    await store.storeEvent('stream-b', note(100));
    const [list] = await raw.keys(`${prefix}ev:*:stream-a`);
    expect(list).toBeDefined();
    expect(Number(await raw.get(`${list}:bytes`))).toBeLessThanOrEqual(1024);
    const kept = await raw.llen(list!);
    expect(kept).toBeGreaterThan(3);
    expect(kept).toBeLessThan(40);
    expect(await raw.pttl(list!)).toBeLessThanOrEqual(5_000);
    // Larger than the whole bound: an id, nothing kept.
    await store.storeEvent('stream-a', {
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: 'y'.repeat(2000) },
    });
    expect(await raw.llen(list!)).toBe(kept);
    // Replay after a held id: the ones after it, in order, from this stream only; after an id
    // already dropped: every one still held.
    const replay = async (after: string) => {
      const sent: string[] = [];
      expect(await store.replayEventsAfter(after, { send: async (eventId) => void sent.push(eventId) })).toBe(
        'stream-a',
      );
      return sent;
    };
    expect(await replay(ids[40 - kept]!)).toEqual(ids.slice(41 - kept));
    expect(await replay(ids[0]!)).toEqual(ids.slice(40 - kept));
    expect(await store.getStreamIdForEventId!(ids[0]!)).toBe('stream-a');
    await expect(store.replayEventsAfter('nonsense', { send: async () => {} })).rejects.toThrow();
    (store as { close(): void }).close();
    await expect.poll(() => raw.keys(`${prefix}ev:*`)).toEqual([]);
  });

  it('still answers an event id while Redis is down (the event is only missing from a replay)', async () => {
    const s = state({ prefix: freshPrefix(), eventStore: true });
    await s.ready();
    const store = s.eventStore!();
    s.client.disconnect();
    expect(await store.storeEvent('stream', note(1))).toBe('stream::1');
  });
});

interface Node {
  server: McpKitServer;
  listening: Listening;
}

async function node(prefix: string, port: number): Promise<Node> {
  const server = createMcpServer({
    logLevel: 'silent',
    state: redisState({ url: redis.url, prefix, advertise: `http://127.0.0.1:${port}`, secret: SECRET }),
    auth: { apiKeys: [{ id: 'alice', key: 'alice-key-0123456789abcdef0123', roles: ['admin'] }] },
  });
  server.tools.register({ name: 'whoami', handler: async () => String(port) });
  const listening = await listen(server, { port, websocket: false });
  cleanups.push(async () => {
    await listening.close();
    await server.close();
  });
  return { server, listening };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('two nodes in process', () => {
  it('serve a session opened on A through B, and refuse a tampered forwarding header', async () => {
    const prefix = freshPrefix();
    const [pa, pb] = [await freePort(), await freePort()];
    const a = await node(prefix, pa);
    const b = await node(prefix, pb);
    const headers = { authorization: 'Bearer alice-key-0123456789abcdef0123' };
    const onA = new StreamableHTTPClientTransport(new URL(`${a.listening.url}/mcp`), {
      requestInit: { headers },
    });
    const client = new Client({ name: 't', version: '1' });
    await client.connect(onA);
    cleanups.push(() => client.close());
    const body = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
    const session = { ...headers, 'mcp-session-id': onA.sessionId!, 'mcp-protocol-version': '2025-06-18' };
    const viaB = await postMcp(`${b.listening.url}/mcp`, body, session);
    expect(viaB.status).toBe(200);
    expect((await messagesOf(viaB))[0]).toMatchObject({ id: 7, result: { content: [{ text: String(pa) }] } });
    // A well-formed header signed with another secret, sent straight to the owner: 403.
    const now = Math.floor(Date.now() / 1000);
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    const forged = `v1.${now}.${b64('203.0.113.7')}.${b64(a.listening.url)}.${b64('x'.repeat(32))}`;
    const refused = await postMcp(`${a.listening.url}/mcp`, body, { ...session, 'mcpkit-forwarded': forged });
    expect(refused.status).toBe(403);
    // An unknown session on B, no other node holding it: 404 from B itself.
    const unknown = await postMcp(`${b.listening.url}/mcp`, body, { ...session, 'mcp-session-id': 'nobody' });
    expect(unknown.status).toBe(404);
    // B answers 503 for A's session while Redis is down, and serves it again once Redis is back.
    await redis.stop();
    const down = await postMcp(`${b.listening.url}/mcp`, body, session);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    await redis.start();
    await expect
      .poll(
        async () =>
          (await postMcp(`${b.listening.url}/mcp`, { ...body, method: 'ping', params: {} }, session)).status,
        {
          timeout: 10_000,
          interval: 200,
        },
      )
      .toBe(200);
  }, 30_000);
});

/** A POST over node:http, sending its body only after the server's `100 Continue`, as curl does. */
async function postExpectingContinue(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const { request } = await import('node:http');
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: {
        ...headers,
        expect: '100-continue',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'content-length': String(payload.length),
      },
    });
    req.on('continue', () => req.end(payload));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
  });
}

describe('forwarding keeps what a client may send', () => {
  it('forwards a POST that asked for 100-continue (curl does for large bodies)', async () => {
    const prefix = freshPrefix();
    const [pa, pb] = [await freePort(), await freePort()];
    const a = await node(prefix, pa);
    const b = await node(prefix, pb);
    const headers = { authorization: 'Bearer alice-key-0123456789abcdef0123' };
    const onA = new StreamableHTTPClientTransport(new URL(`${a.listening.url}/mcp`), {
      requestInit: { headers },
    });
    const client = new Client({ name: 't', version: '1' });
    await client.connect(onA);
    cleanups.push(() => client.close());
    const body = { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
    const session = { ...headers, 'mcp-session-id': onA.sessionId!, 'mcp-protocol-version': '2025-06-18' };
    // On the owner itself, and through the other node: the same answer.
    const direct = await postExpectingContinue(`${a.listening.url}/mcp`, body, session);
    expect(direct.status).toBe(200);
    const viaB = await postExpectingContinue(`${b.listening.url}/mcp`, body, session);
    expect(viaB.status).toBe(200);
    expect(viaB.text).toContain(`"text":"${pa}"`);
  }, 30_000);
});
