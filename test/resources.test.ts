/**
 * Resources: linear-time URI templates, the read-through TTL cache (injected clock, single-flight),
 * and updates that reach exactly the subscribed sessions, over in-memory and HTTP, SDK v2 and 1.x.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport as InMemoryV1 } from '@modelcontextprotocol/sdk/inMemory.js';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { connectClient } from 'mcpkit/testing';
import { UriTemplate } from 'mcpkit/unstable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deferred } from './fixtures.js';

describe('URI templates', () => {
  it('matches simple, reserved, path, label, fragment and query expressions', () => {
    expect(new UriTemplate('users://{id}').match('users://42')).toEqual({ id: '42' });
    expect(new UriTemplate('users://{id}').match('users://a/b')).toBeUndefined();
    expect(new UriTemplate('files://{+path}').match('files://a/b/c.txt')).toEqual({ path: 'a/b/c.txt' });
    expect(new UriTemplate('x://repo{/owner,name}').match('x://repo/acme/web')).toEqual({
      owner: 'acme',
      name: 'web',
    });
    expect(new UriTemplate('x://h{.ext}').match('x://h.json')).toEqual({ ext: 'json' });
    expect(new UriTemplate('doc://{id}{#section}').match('doc://7#intro')).toEqual({
      id: '7',
      section: 'intro',
    });
    expect(new UriTemplate('search://all{?q,lang}').match('search://all?q=mcp%20kit&lang=en')).toEqual({
      q: 'mcp kit',
      lang: 'en',
    });
    expect(new UriTemplate('search://all{?q}').match('search://all')).toEqual({});
    expect(new UriTemplate('list://{items*}').match('list://a,b')).toEqual({ items: ['a', 'b'] });
    expect(new UriTemplate('test://template/{id}/data').match('test://template/123/data')).toEqual({
      id: '123',
    });
    expect(new UriTemplate('test://template/{id}/data').match('test://template/123/other')).toBeUndefined();
  });

  it('refuses malformed templates with a clear error', () => {
    expect(() => new UriTemplate('a://{id')).toThrow(/unclosed/);
    expect(() => new UriTemplate('a://id}')).toThrow(/unbalanced/);
    expect(() => new UriTemplate('a://{a}{b}')).toThrow(/adjacent/);
    expect(() => new UriTemplate('a://{bad name}')).toThrow(/invalid variable/);
  });

  // A catastrophic matcher would hang here for minutes; the test timeout is the guard.
  it('answers 100 KB hostile URIs at once', { timeout: 2000 }, () => {
    const hostile = 'a'.repeat(100_000);
    const templates = [
      'file://{a}/{b}/{c}/x',
      'x://{+path}/end',
      'users://{id}/posts/{post}',
      'q://s{?a,b,c}',
      'r://{a}{/b}',
    ];
    for (const source of templates) {
      const template = new UriTemplate(source);
      const prefix = source.slice(0, source.indexOf('{'));
      expect(template.match(`${prefix}${hostile}!`)).toBeUndefined();
      expect(template.match(`${prefix}${'/'.repeat(50_000)}${hostile}`)).toBeUndefined();
    }
    expect(new UriTemplate('x://{+path}/end').match(`x://${hostile}/end`)).toEqual({ path: hostile });
  });
});

describe('the read cache', () => {
  function cachedServer() {
    let clock = 1_000;
    let reads = 0;
    const server = createMcpServer({ logLevel: 'silent', cache: { ttlMs: 5_000, now: () => clock } });
    server.resources.register({ uri: 'data://counter', name: 'counter', read: () => `read ${++reads}` });
    server.resources.register({ uri: 'data://live', name: 'live', ttlMs: 0, read: () => `live ${++reads}` });
    return {
      server,
      advance: (ms: number) => {
        clock += ms;
      },
      reads: () => reads,
    };
  }
  const text = async (server: McpKitServer, uri: string) =>
    (
      (await server.resources.read(uri, { signal: new AbortController().signal })).contents[0] as {
        text: string;
      }
    ).text;

  it('serves from cache until the TTL passes, by the injected clock', async () => {
    const { server, advance } = cachedServer();
    expect(await text(server, 'data://counter')).toBe('read 1');
    advance(4_999);
    expect(await text(server, 'data://counter')).toBe('read 1');
    advance(1);
    expect(await text(server, 'data://counter')).toBe('read 2');
    expect(server.resources.cacheStats).toMatchObject({ hits: 1, misses: 2, size: 1 });
  });

  it('drops an entry on notifyUpdated and invalidate, and never caches ttlMs 0', async () => {
    const { server } = cachedServer();
    await text(server, 'data://counter');
    server.resources.notifyUpdated('data://counter');
    expect(await text(server, 'data://counter')).toBe('read 2');
    server.resources.invalidate('data://counter');
    expect(await text(server, 'data://counter')).toBe('read 3');
    expect(await text(server, 'data://live')).toBe('live 4');
    expect(await text(server, 'data://live')).toBe('live 5');
  });

  it('calls the reader once for ten concurrent cold reads', async () => {
    const server = createMcpServer({ logLevel: 'silent', cache: { ttlMs: 60_000 } });
    const gate = deferred<string>();
    let calls = 0;
    server.resources.register({
      uri: 'slow://thing',
      name: 'slow',
      read: () => {
        calls++;
        return gate.promise;
      },
    });
    const reads = Array.from({ length: 10 }, () =>
      server.resources.read('slow://thing', { signal: new AbortController().signal }),
    );
    gate.resolve('value');
    const results = await Promise.all(reads);
    expect(calls).toBe(1);
    expect(results.every((r) => (r.contents[0] as { text: string }).text === 'value')).toBe(true);
  });

  /** A resource whose every read waits until the test answers it. */
  function controlledServer() {
    const server = createMcpServer({ logLevel: 'silent', cache: { ttlMs: 60_000 } });
    const loads: Array<ReturnType<typeof deferred<string>>> = [];
    server.resources.register({
      uri: 'slow://doc',
      name: 'doc',
      read: () => {
        const load = deferred<string>();
        loads.push(load);
        return load.promise;
      },
    });
    return { server, loads };
  }

  it.each([
    ['notifyUpdated(uri)', (server: McpKitServer) => server.resources.notifyUpdated('slow://doc')],
    ['invalidate(uri)', (server: McpKitServer) => server.resources.invalidate('slow://doc')],
    [
      'a registration (which clears the cache)',
      (server: McpKitServer) => server.resources.register({ uri: 'other://x', name: 'x', read: () => 'x' }),
    ],
  ])('does not keep a read that was in flight during %s', async (_what, interrupt) => {
    const { server, loads } = controlledServer();
    const first = text(server, 'slow://doc');
    expect(loads).toHaveLength(1);
    interrupt(server);
    loads[0]!.resolve('stale');
    expect(await first).toBe('stale'); // the read that was waiting still gets its answer

    const second = text(server, 'slow://doc');
    expect(loads).toHaveLength(2); // the reader runs again
    loads[1]!.resolve('fresh');
    expect(await second).toBe('fresh');
    expect(await text(server, 'slow://doc')).toBe('fresh'); // and that answer is kept
    expect(loads).toHaveLength(2);
    expect(server.resources.cacheStats).toMatchObject({ hits: 1, misses: 2, size: 1 });
  });

  it('keeps the read started after an invalidation, even when the older one finishes last', async () => {
    const { server, loads } = controlledServer();
    const old = text(server, 'slow://doc');
    server.resources.notifyUpdated('slow://doc');
    const current = text(server, 'slow://doc');
    expect(loads).toHaveLength(2);
    loads[1]!.resolve('fresh');
    expect(await current).toBe('fresh');
    loads[0]!.resolve('stale');
    expect(await old).toBe('stale');
    expect(await text(server, 'slow://doc')).toBe('fresh');
    expect(loads).toHaveLength(2);
    expect(server.resources.cacheStats).toMatchObject({ hits: 1, misses: 2, size: 1 });
  });

  it('evicts the least recently used entry past maxEntries', async () => {
    const server = createMcpServer({ logLevel: 'silent', cache: { ttlMs: 60_000, maxEntries: 2 } });
    server.resources.register({ uriTemplate: 'n://{i}', name: 'n', read: (_u, { i }) => String(i) });
    for (const i of [1, 2, 3, 4, 5])
      await server.resources.read(`n://${i}`, { signal: new AbortController().signal });
    expect(server.resources.cacheStats.size).toBeLessThanOrEqual(4);
    expect(server.resources.cacheStats.evictions).toBeGreaterThan(0);
  });
});

describe('subscriptions', () => {
  let server: McpKitServer;
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    server = createMcpServer({ logLevel: 'silent' });
    server.resources.register({ uri: 'watch://a', name: 'a', read: () => 'a' });
    server.resources.register({ uri: 'watch://b', name: 'b', read: () => 'b' });
    const listening = await listen(server, { port: 0 });
    url = `${listening.url}/mcp`;
    close = listening.close;
  });
  afterAll(async () => {
    await close();
  });

  type Updatable = {
    subscribeResource(p: { uri: string }): Promise<unknown>;
    unsubscribeResource(p: { uri: string }): Promise<unknown>;
    setNotificationHandler(schemaOrMethod: unknown, handler: (n: { params: { uri: string } }) => void): void;
    close(): Promise<void>;
  };

  async function v2(kind: 'memory' | 'http'): Promise<Updatable> {
    if (kind === 'memory') return (await connectClient(server)).client as unknown as Updatable;
    const client = new ClientV2({ name: 't', version: '1' });
    await client.connect(new HttpV2(new URL(url)));
    return client as unknown as Updatable;
  }
  async function v1(kind: 'memory' | 'http'): Promise<Updatable> {
    const client = new ClientV1({ name: 't', version: '1' });
    if (kind === 'memory') {
      const [c, s] = InMemoryV1.createLinkedPair();
      await server.connect(s as never);
      await client.connect(c);
    } else await client.connect(new HttpV1(new URL(url)));
    return client as unknown as Updatable;
  }
  async function onUpdate(client: Updatable, sdk: 'v1' | 'v2', listener: (uri: string) => void) {
    if (sdk === 'v2') {
      client.setNotificationHandler('notifications/resources/updated', (n) => listener(n.params.uri));
    } else {
      const { ResourceUpdatedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => listener(n.params.uri));
    }
  }

  describe.each([
    ['v2', 'memory'],
    ['v2', 'http'],
    ['v1', 'memory'],
    ['v1', 'http'],
  ] as const)('SDK %s client over %s', (sdk, kind) => {
    it('delivers an update to the subscribed session only, and stops after unsubscribe', async () => {
      const make = sdk === 'v2' ? v2 : v1;
      const subscribed = await make(kind);
      const bystander = await make(kind);
      const got: string[] = [];
      const other: string[] = [];
      const first = deferred();
      await onUpdate(subscribed, sdk, (uri) => {
        got.push(uri);
        first.resolve();
      });
      await onUpdate(bystander, sdk, (uri) => other.push(uri));
      await subscribed.subscribeResource({ uri: 'watch://a' });
      server.resources.notifyUpdated('watch://b'); // nobody subscribed
      server.resources.notifyUpdated('watch://a');
      await first.promise;
      await subscribed.unsubscribeResource({ uri: 'watch://a' });
      server.resources.notifyUpdated('watch://a');
      // a round trip after the last update: anything sent would have arrived before its answer
      await subscribed.subscribeResource({ uri: 'watch://b' });
      await subscribed.unsubscribeResource({ uri: 'watch://b' });
      expect(got).toEqual(['watch://a']);
      expect(other).toEqual([]);
      await subscribed.close();
      await bystander.close();
    });
  });

  it('leaves no listener behind after 10,000 subscribe/unsubscribe cycles and closed sessions', async () => {
    const base = server.resources.subscriptionCount;
    const { client, close: closeClient } = await connectClient(server);
    for (let i = 0; i < 10_000; i++) {
      await client.subscribeResource({ uri: `watch://${i % 2 ? 'a' : 'b'}` });
      await client.unsubscribeResource({ uri: `watch://${i % 2 ? 'a' : 'b'}` });
    }
    expect(server.resources.subscriptionCount).toBe(base);
    await client.subscribeResource({ uri: 'watch://a' });
    expect(server.resources.subscriptionCount).toBe(base + 1);
    await closeClient();
    expect(server.resources.subscriptionCount).toBe(base);
    const stop = server.resources.subscribe('watch://a', () => {});
    stop();
    stop();
    expect(server.resources.subscriptionCount).toBe(base);
  });
});
