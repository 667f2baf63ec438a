/**
 * Bounded by bytes, and one redaction: resumable-stream events per session and per server, audit
 * events, log records, and what a tool's failure tells its caller.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import {
  createMcpServer,
  EventBytes,
  MemoryAuditSink,
  MemoryEventStore,
  redactText,
  redactValue,
} from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, request } from 'mcpkit/testing';
import { describe, expect, it } from 'vitest';
import { messagesOf } from './fixtures.js';

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
    // From an evicted id nothing is replayed: a partial replay would hide the gap.
    const fromOld: string[] = [];
    expect(await store.replayEventsAfter(ids[0]!, { send: async (id) => void fromOld.push(id) })).toBe('s');
    expect(fromOld).toEqual([]);
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
  it('are bounded by bytes each, so the ring is too: 2,000 hostile records keep it under 14 MiB', async () => {
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
    expect(text).toMatch(/^upstream refused Authorization: \[redacted\]/);
  });
});
