/**
 * Bounded by bytes, and one redaction: resumable-stream events per session and per server, audit
 * events, log records, and what a tool's failure tells its caller.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import {
  createMcpServer,
  EventBytes,
  MemoryAuditSink,
  MemoryEventStore,
  redactText,
  redactValue,
  silentLogger,
} from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, request } from 'mcpkit/testing';
import { AuditLog, LogRing } from 'mcpkit/unstable';
import { describe, expect, it } from 'vitest';
import { McpKitError, quote } from '../src/core/errors.js';
import { teeLogger } from '../src/telemetry/logs.js';
import { messagesOf } from './fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const note = (text: string): JSONRPCMessage =>
  ({
    jsonrpc: '2.0',
    method: 'notifications/message',
    params: { level: 'info', data: text },
  }) as JSONRPCMessage;

describe('the memory event store', () => {
  it("keeps a session's latest events within its bytes, oldest first out, and never one too large", async () => {
    const store = new MemoryEventStore({ maxBytes: 10_000 });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await store.storeEvent('s', note(`${i}:${'x'.repeat(900)}`)));
    expect(store.bytes).toBeLessThanOrEqual(10_000);
    expect(store.size).toBeGreaterThan(5);
    // The newest are held, the oldest gone: resuming from a held id replays what came after it.
    const replayed: string[] = [];
    await store.replayEventsAfter(ids.at(-3)!, { send: async (id) => void replayed.push(id) });
    expect(replayed).toEqual(ids.slice(-2));
    // From an evicted id, what is still held after it is replayed (a final answer still arrives).
    const fromOld: string[] = [];
    expect(await store.replayEventsAfter(ids[0]!, { send: async (id) => void fromOld.push(id) })).toBe('s');
    expect(fromOld).toEqual(ids.slice(-store.size));
    // Only that stream's events, and never from an id that names no event.
    await store.storeEvent('other', note('o'));
    const same: string[] = [];
    await store.replayEventsAfter(ids[0]!, { send: async (id) => void same.push(id) });
    expect(same).toEqual(fromOld);
    await expect(store.replayEventsAfter('nonsense', { send: async () => {} })).rejects.toThrow();
    // One event larger than the session's whole budget is not kept, and evicts nothing.
    const before = store.size;
    await store.storeEvent('s', note('y'.repeat(20_000)));
    expect(store.size).toBe(before);
  });

  it('draws every session from one budget per server, and gives the bytes back when a session closes', async () => {
    const shared = new EventBytes(50_000);
    const stores = Array.from({ length: 10 }, () => new MemoryEventStore({ maxBytes: 20_000, shared }));
    for (let round = 0; round < 30; round++) {
      for (const store of stores) await store.storeEvent('s', note('z'.repeat(1000)));
    }
    expect(shared.used).toBeLessThanOrEqual(50_000);
    expect(stores.reduce((sum, s) => sum + s.bytes, 0)).toBe(shared.used);
    // Every session still keeps its own latest events: a full budget is made room in from its own.
    for (const store of stores) expect(store.size).toBeGreaterThan(0);
    for (const store of stores) store.close();
    expect(shared.used).toBe(0);
  });

  it('makes room in the session holding the most: sessions that filled the budget cannot starve a new one', async () => {
    const shared = new EventBytes(50_000);
    const hogs = Array.from({ length: 5 }, () => new MemoryEventStore({ maxBytes: 20_000, shared }));
    for (let round = 0; round < 20; round++)
      for (const hog of hogs) await hog.storeEvent('s', note('h'.repeat(1000)));
    expect(shared.used).toBeGreaterThan(45_000);
    const newcomer = new MemoryEventStore({ maxBytes: 20_000, shared });
    for (let i = 0; i < 10; i++) await newcomer.storeEvent('s', note('n'.repeat(1000)));
    // About a fair share (a sixth of the budget) each: the newcomer keeps its latest events too.
    const sizes = [...hogs, newcomer].map((store) => store.bytes);
    const eventBytes = newcomer.bytes / newcomer.size;
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(2 * eventBytes + 1);
    expect(newcomer.size).toBeGreaterThanOrEqual(7);
    expect(shared.used).toBeLessThanOrEqual(50_000);
    expect([...hogs, newcomer].reduce((sum, s) => sum + s.bytes, 0)).toBe(shared.used);
    // The newcomer's share was taken from the largest holders, none of which is left empty.
    for (const hog of hogs) expect(hog.size).toBeGreaterThan(0);
    for (const store of [...hogs, newcomer]) store.close();
    expect(shared.used).toBe(0);
  });

  it('bounds the events of real sessions over HTTP: 200 sessions × 1 MiB of notifications stay within the budget', async () => {
    const shared = new EventBytes(8 * 1024 * 1024);
    const stores: MemoryEventStore[] = [];
    const server = createMcpServer({
      logLevel: 'silent',
      http: {
        eventStore: () => {
          const store = new MemoryEventStore({ maxBytes: 256 * 1024, shared });
          stores.push(store);
          return store;
        },
      },
    });
    server.tools.register({
      name: 'chatty',
      handler: async (_args, ctx) => {
        for (let i = 0; i < 16; i++) await ctx.log.info('n'.repeat(64 * 1024));
        return 'done';
      },
    });
    const open = async () => {
      const init = {
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      };
      const res = await request(server, '/mcp', jsonRpcPost(init));
      await res.text();
      const sessionId = res.headers.get('mcp-session-id')!;
      const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
      await (
        await request(
          server,
          '/mcp',
          jsonRpcPost({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers),
        )
      ).text();
      await (
        await request(
          server,
          '/mcp',
          jsonRpcPost(
            { jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'debug' } },
            headers,
          ),
        )
      ).text();
      return headers;
    };
    for (let s = 0; s < 200; s++) {
      const headers = await open();
      const answer = await messagesOf(
        await request(
          server,
          '/mcp',
          jsonRpcPost(
            { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'chatty', arguments: {} } },
            headers,
          ),
        ),
      );
      expect(answer.at(-1).result.content[0].text).toBe('done');
      expect(shared.used).toBeLessThanOrEqual(8 * 1024 * 1024);
    }
    // 200 MiB went through the streams; what is kept is within the server's budget, each session's within its own.
    expect(stores).toHaveLength(200);
    expect(Math.max(...stores.map((s) => s.bytes))).toBeLessThanOrEqual(256 * 1024);
    expect(stores.reduce((sum, s) => sum + s.bytes, 0)).toBe(shared.used);
    await server.close();
    // Closing the sessions gave every byte back.
    expect(shared.used).toBe(0);
  }, 60_000);

  it("resumes a dropped stream with Last-Event-ID over a real socket, from the server's default store", async () => {
    const server = createMcpServer({
      logLevel: 'silent',
      http: { eventStore: { maxBytesPerSession: 64 * 1024 } },
    });
    server.tools.register({
      name: 'steps',
      handler: async (_args, ctx) => {
        for (let i = 1; i <= 3; i++) await ctx.progress(i, 3);
        return 'finished';
      },
    });
    const listening = await listen(server, { port: 0, websocket: false });
    try {
      const url = `${listening.url}/mcp`;
      const post = (body: unknown, headers: Record<string, string> = {}) =>
        fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...headers,
          },
          body: JSON.stringify(body),
        });
      const init = await post({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      await init.text();
      const headers = {
        'mcp-session-id': init.headers.get('mcp-session-id')!,
        'mcp-protocol-version': '2025-11-25',
      };
      await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).text();
      const call = await post(
        {
          jsonrpc: '2.0',
          id: 5,
          method: 'tools/call',
          params: { name: 'steps', arguments: {}, _meta: { progressToken: 't' } },
        },
        headers,
      );
      const text = await call.text();
      const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]!);
      expect(ids.length).toBeGreaterThanOrEqual(4);
      // Resume after the first progress event: the rest of the stream comes again.
      const resumed = await fetch(url, {
        headers: { accept: 'text/event-stream', ...headers, 'last-event-id': ids[1]! },
      });
      const reader = resumed.body!.getReader();
      let replay = '';
      while (!replay.includes('finished')) {
        const { value, done } = await reader.read();
        if (done) break;
        replay += new TextDecoder().decode(value);
      }
      await reader.cancel();
      expect(replay).toContain('"progress":2');
      expect(replay).toContain('finished');
      expect(replay).not.toContain('"progress":1,');
    } finally {
      await listening.close();
    }
  });
});

describe('audit events', () => {
  it('are bounded whatever the caller sent: 1,000 refusals of 64 KiB names take under 1 MiB', async () => {
    const audit = new MemoryAuditSink(1000);
    const server = createMcpServer({
      logLevel: 'silent',
      audit: { sinks: [audit] },
      auth: { apiKeys: [{ id: 'viewer', roles: ['viewer'], key: 'viewer-key-0123456789abcdef' }] },
    });
    const long = 't'.repeat(1 << 16);
    const requestId = 'r'.repeat(1 << 16);
    for (let i = 0; i < 1000; i++)
      server.policy.denied({ caller: { id: 'viewer' }, requestId }, `${i}${long}`, 'x');
    const events = audit.events();
    expect(events).toHaveLength(1000);
    const bytes = JSON.stringify(events).length;
    expect(bytes).toBeLessThan(1000 * 1024);
    expect(events[0]!.target).toMatch(/…\(65537 chars\)$/);
  });
});

describe('log records', () => {
  it('are bounded by bytes each, so the ring is too: 2,000 hostile records keep it under 14 MiB', {
    timeout: 30_000,
  }, async () => {
    const server = createMcpServer({ logLevel: 'info', logger: (await import('mcpkit')).silentLogger });
    const huge = 'h'.repeat(1 << 20);
    const wide = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, huge.slice(0, 1000)]));
    for (let i = 0; i < 2_000; i++) {
      server.logger.child({ bound: huge }).info({ huge, wide, list: [huge, huge, huge] }, huge);
    }
    const { items } = await (await request(server, '/logs?limit=1000')).json();
    expect(items).toHaveLength(1000);
    const perRecord = Math.max(...items.map((r: unknown) => JSON.stringify(r).length));
    expect(perRecord).toBeLessThan(14 * 1024);
    expect(JSON.stringify(items).length).toBeLessThan(14 * 1024 * 1024);
  });
});

describe('one redaction', () => {
  const CREDENTIALS = [
    'Bearer abcdef0123456789.abcdef',
    'sk-live-abcdefghijklmnop',
    'sk-ant-api03-abcdefghijklmnop',
    'ghp_abcdefghijklmnopqrstuvwxyz0123',
    'github_pat_11ABCDEFG0123456789_abcdefghijklmnop',
    'xoxb-0123456789-abcdefghij',
    'AKIAIOSFODNN7EXAMPLE',
    'AIzaSyA-abcdefghijklmnopqrstuvwxyz01234',
    'sk_live_abcdefghijklmnop',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZw',
    '-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----',
  ];

  it('removes every credential shape, and given secrets, from text', () => {
    for (const credential of CREDENTIALS) {
      const out = redactText(`the upstream said: ${credential} was refused`);
      expect(out, credential).not.toContain(credential.split('\n')[0]!.slice(-12));
      expect(out).toContain('[redacted]');
    }
    expect(redactText('password=hunter2&user=a')).toBe('password=[redacted]&user=a');
    expect(redactText('{"apiKey": "k-123", "note": "fine"}')).toBe(
      '{"apiKey": "[redacted]", "note": "fine"}',
    );
    expect(redactText('fetch https://alice:s3cret@db.internal/x failed')).toBe(
      'fetch https://[redacted]@db.internal/x failed',
    );
    expect(redactText('my key is plainvalue!', { secrets: ['plainvalue!'] })).toBe('my key is [redacted]');
    expect(redactText('cannot open /srv/app/keys.json')).toBe('cannot open <path>');
    expect(redactText('cannot open /srv/app/keys.json', { keepPaths: true })).toBe(
      'cannot open /srv/app/keys.json',
    );
  });

  it('tells prose from credentials after an authorization scheme', () => {
    for (const prose of [
      'Invalid token provided by upstream',
      'Token required for this endpoint',
      'Basic authentication failed',
      'Bearer realm missing',
    ]) {
      expect(redactText(prose)).toBe(prose);
    }
    for (const credential of [
      'Basic dXNlcjpwYXNz',
      'Bearer abc.def.ghi',
      'Token 0a1b2c3d4e',
      'bearer AbCdEfGhIj',
    ]) {
      expect(redactText(`sent ${credential}`), credential).toMatch(/\[redacted\]$/);
    }
    // A password holding an `@` is removed whole.
    expect(redactText('https://user:p@ss@db.example.com/x')).toBe('https://[redacted]@db.example.com/x');
    expect(redactText('https://host:8080/x@y')).toBe('https://host:8080/x@y');
  });

  it('never overflows its stack, whatever the length it is allowed to keep', () => {
    for (const text of [
      'sk-'.repeat(3_000_000),
      `eyJ${'a'.repeat(8_000_000)}`,
      `Bearer ${'a1'.repeat(4_000_000)}`,
    ]) {
      expect(() => redactText(text, { maxLength: Number.POSITIVE_INFINITY })).not.toThrow();
    }
  });

  it('takes time linear in its input, whatever the input', () => {
    const hostile = [
      'Bearer '.repeat(150_000),
      '-----BEGIN PRIVATE KEY-----'.repeat(40_000),
      'password='.repeat(120_000),
      '"token":"'.repeat(120_000),
      'a://b:c@'.repeat(130_000),
      'sk-'.repeat(350_000),
      'eyJaaaaaa.'.repeat(100_000),
    ];
    for (const text of hostile) {
      const started = performance.now();
      redactText(text, { maxLength: text.length });
      // A backtracking pattern takes minutes here; the redaction takes milliseconds.
      expect(performance.now() - started, text.slice(0, 20)).toBeLessThan(1_500);
    }
  });

  it('bounds structured values by bytes, and never throws', () => {
    const hostile = {
      get boom(): string {
        throw new Error('getter');
      },
      big: 1n,
      fn: () => 1,
      sym: Symbol('s'),
      proxy: new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('ownKeys');
          },
        },
      ),
      nested: {
        authorization: 'Bearer x',
        deeper: { list: Array.from({ length: 10_000 }, () => 'x'.repeat(10_000)) },
      },
    };
    const out = redactValue(hostile, { budget: 4096 }) as Record<string, unknown>;
    expect(JSON.stringify(out).length).toBeLessThan(6000);
    expect(out.boom).toBe('[unreadable]');
    expect(out.big).toBe('1n');
    expect(JSON.stringify(out)).not.toContain('Bearer x');
  });

  it('counts bytes, not characters: control characters, CJK and emoji stay within the budget', () => {
    for (const unit of ['\u0001', '中', '😀', '"']) {
      const value = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, unit.repeat(2000)]));
      const bytes = new TextEncoder().encode(JSON.stringify(redactValue(value, { budget: 8192 }))).byteLength;
      expect([unit, bytes <= 8192 + 512]).toEqual([unit, true]);
    }
  });

  it('writes dates, URLs, maps, sets and buffers as JSON would, never as {}', () => {
    const out = redactValue({
      at: new Date(0),
      url: new URL('https://x.test/a'),
      map: new Map<string, unknown>([
        ['token', 'secret-value'],
        ['n', 1],
      ]),
      set: new Set(Array.from({ length: 60 }, (_, i) => i)),
      buffer: new Uint8Array(1024),
    }) as Record<string, any>;
    expect(out.at).toBe('1970-01-01T00:00:00.000Z');
    expect(out.url).toBe('https://x.test/a');
    expect(out.map).toEqual({ token: '[redacted]', n: 1 });
    expect(out.set).toHaveLength(51);
    expect(out.set.at(-1)).toBe('…(10 more)');
    expect(out.buffer).toBe('[Uint8Array(1024 bytes)]');
  });

  it('keeps nothing alive of the strings it cut: 300 distinct MiB strings logged, audited and quoted', {
    timeout: 30_000,
  }, () => {
    const MiB = 1024 * 1024;
    // Distinct and flat, as a body parsed from the wire would be.
    const hostile = (i: number) =>
      JSON.parse(JSON.stringify(`${String(i).padStart(8, '0')}${'h'.repeat(MiB)}`));
    const ring = new LogRing(1000);
    const logger = teeLogger(silentLogger, { ring, level: 'info' });
    const sink = new MemoryAuditSink(1000);
    const audit = new AuditLog([sink], silentLogger);
    const kept: string[] = [];
    const round = (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        const text: string = hostile(i);
        logger.info({ field: text, nested: { deeper: text } }, text);
        audit.record({
          action: 'tool.execute',
          outcome: 'denied',
          callerId: text,
          target: text,
          code: text,
          details: { note: text },
        });
        kept.push(new McpKitError('NOT_FOUND', `Tool ${quote(text)} not found`).message, redactText(text));
      }
    };
    round(0, 20); // warm-up: code and caches that exist anyway
    for (let i = 0; i < 3; i++) gc();
    const before = process.memoryUsage().heapUsed;
    round(20, 300);
    for (let i = 0; i < 3; i++) gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(ring.query().length).toBeGreaterThanOrEqual(300);
    expect(sink.events().length).toBe(320);
    // What is kept is about 12 KiB a round; 300 MiB passed through.
    expect(grown).toBeLessThan(24 * MiB);
  });

  it("keeps credentials a tool's failure mentions out of its caller's answer", async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({
      name: 'leaky',
      handler: () => {
        throw new Error(
          'upstream refused Authorization: Bearer abcdefghijklmnop (key sk-proj-abcdefghijklmnop)',
        );
      },
    });
    const result = await server.executor.execute('leaky', {});
    const text = (result.content[0] as { text: string }).text;
    expect(text).not.toMatch(/abcdefghijklmnop/);
    expect(text).toMatch(/^upstream refused Authorization: Bearer \[redacted\]/);
  });
});
