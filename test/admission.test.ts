/**
 * The parts of the admission pipeline below the doors: who a request comes from behind proxies,
 * target patterns matched in linear time, URI template expansion (for filtering completions), the
 * `/mcp` gate on batches, per-caller session shares, and when a cancelled call's handler really ends.
 */
import fc from 'fast-check';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { jsonRpcPost, request } from 'mcpkit/testing';
import { AccessControl, UriTemplate } from 'mcpkit/unstable';
import { describe, expect, it } from 'vitest';
import { sourceOf, type TrustProxy } from '../src/core/forwarded.js';
import { deferred, fixtureServer, messagesOf } from './fixtures.js';

const KEY = (name: string) => `${name}-key-0123456789abcdef`;
const bearer = (name: string) => ({ authorization: `Bearer ${KEY(name)}` });

function headers(values: Record<string, string>) {
  return (name: string) => values[name];
}

describe('who a request comes from (http.trustProxy)', () => {
  const forwarded = {
    host: 'internal:3000',
    'x-forwarded-for': '203.0.113.7, 10.0.0.2',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'mcp.example.com',
  };
  const source = (peer: string, trust: TrustProxy) =>
    sourceOf({ peer, encrypted: false, header: headers(forwarded) }, trust);

  it('believes no forwarded header by default', () => {
    expect(source('10.0.0.1', false)).toEqual({ origin: 'http://internal:3000', address: '10.0.0.1' });
  });

  it('walks X-Forwarded-For from the nearest hop while each hop is trusted', () => {
    // The peer and the hop before it are private proxies: the client is the first public address.
    expect(source('10.0.0.1', ['private'])).toEqual({
      origin: 'https://mcp.example.com',
      address: '203.0.113.7',
    });
    // Only the peer is trusted: the hop it names is the client, whatever it claims further back.
    expect(source('10.0.0.1', ['10.0.0.1'])).toMatchObject({ address: '10.0.0.2' });
    expect(source('10.0.0.1', 1)).toMatchObject({ address: '10.0.0.2' });
    expect(source('10.0.0.1', 2)).toMatchObject({ address: '203.0.113.7' });
    expect(source('10.0.0.1', true)).toMatchObject({ address: '203.0.113.7' });
  });

  it('ignores every forwarded header from a peer it does not trust', () => {
    expect(source('198.51.100.9', ['private', 'loopback'])).toEqual({
      origin: 'http://internal:3000',
      address: '198.51.100.9',
    });
  });

  it('matches IPv4-mapped IPv6 peers against IPv4 ranges, and IPv6 ranges', () => {
    // The mapped peer and the private hop it names are both in 10/8: the client is the public one.
    expect(source('::ffff:10.1.2.3', ['10.0.0.0/8']).address).toBe('203.0.113.7');
    expect(source('::ffff:10.1.2.3', ['10.0.0.1']).address).toBe('::ffff:10.1.2.3');
    expect(source('::1', ['loopback']).address).toBe('10.0.0.2');
    expect(source('fd00::5', ['fc00::/7']).address).toBe('10.0.0.2');
    expect(source('2001:db8::5', ['fc00::/7']).address).toBe('2001:db8::5');
  });

  it('never builds a URL from a Host it cannot use', () => {
    for (const host of ['evil.com/../x', 'a b', '', 'x@y', 'host:99999999']) {
      expect(sourceOf({ peer: '127.0.0.1', encrypted: false, header: headers({ host }) }, false).origin).toBe(
        'http://unknown.invalid',
      );
    }
    expect(sourceOf({ peer: '127.0.0.1', encrypted: false, header: headers({}) }, false).origin).toBe(
      'http://unknown.invalid',
    );
    expect(
      sourceOf({ peer: '127.0.0.1', encrypted: true, header: headers({ host: '[::1]:8443' }) }, false).origin,
    ).toBe('https://[::1]:8443');
  });

  it('refuses a trustProxy that is not an address, a range or a keyword', () => {
    for (const trustProxy of [['10.0.0.0/33'], ['not-an-ip'], [''], -1, 'yes']) {
      expect(() =>
        createMcpServer({ logLevel: 'silent', http: { trustProxy: trustProxy as TrustProxy } }),
      ).toThrow(/trustProxy/);
    }
  });
});

describe('target patterns', () => {
  const regexOf = (pattern: string) =>
    new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*')}$`);

  it('match exactly as `*` wildcards do', () => {
    const piece = fc.string({ unit: fc.constantFrom('a', 'b', '/', '*'), maxLength: 8 });
    fc.assert(
      fc.property(
        piece,
        fc.string({ unit: fc.constantFrom('a', 'b', '/'), maxLength: 12 }),
        (pattern, name) => {
          if (pattern === '' || pattern === '!') return;
          const access = new AccessControl({ r: { permissions: ['tools:read'], tools: [pattern] } });
          expect(access.grant({ id: 'x', roles: ['r'] }).canSee('tools', name)).toBe(
            regexOf(pattern).test(name),
          );
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('take time linear in the name, however many stars the pattern has', () => {
    const access = new AccessControl({}, [{ resources: ['a*a*a*a*a*a*a*b'], roles: ['admin'] }]);
    const grant = access.grant({ id: 'x', roles: ['viewer'] });
    const name = 'a'.repeat(8192);
    const started = performance.now();
    for (let i = 0; i < 100; i++) expect(grant.canSee('resources', name)).toBe(true);
    // A backtracking regex takes minutes on this; the matcher, a fraction of a millisecond per name.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('URI template expansion', () => {
  it('is undone by matching, for every operator', () => {
    // `.` is unreserved, so `{.a}` cannot carry one unencoded: values without it round-trip everywhere.
    const value = fc.string({ minLength: 1, maxLength: 6 }).filter((v) => !v.includes('.'));
    for (const source of [
      'x://{a}',
      'x://{+a}',
      'x://{#a}',
      'x://a{.a}',
      'x://a{/a}',
      'x://a{;a}',
      'x://a{?a}',
    ]) {
      const template = new UriTemplate(source);
      fc.assert(
        fc.property(value, (a) => {
          // `{a}` cannot carry its own separators; the others decode back to what was expanded.
          const matched = template.match(template.expand({ a }));
          if (source === 'x://{+a}' || source === 'x://{#a}') return;
          expect(matched).toEqual({ a });
        }),
        { numRuns: 300 },
      );
    }
  });

  it('expands lists, prefixes and missing variables as RFC 6570 says', () => {
    expect(new UriTemplate('x://{/path*}{?q,limit}').expand({ path: ['a', 'b c'], q: 'é' })).toBe(
      'x:///a/b%20c?q=%C3%A9',
    );
    expect(new UriTemplate('x://{id:3}').expand({ id: 'abcdef' })).toBe('x://abc');
    expect(new UriTemplate('x://{+path}').expand({ path: 'a/b?c' })).toBe('x://a/b?c');
    expect(new UriTemplate('x://{a}/{b}').expand({ a: 'z' })).toBe('x://z/');
  });
});

describe('the /mcp gate', () => {
  const KEYS = ['admin', 'reader'] as const;
  const secured = () =>
    fixtureServer({
      auth: {
        apiKeys: [
          { id: 'admin', roles: ['admin'], key: KEY('admin') },
          { id: 'reader', roles: ['viewer'], key: KEY('reader') },
        ],
      },
      rules: [{ tools: ['boom'], roles: ['admin'] }],
    });

  async function openSession(server: McpKitServer, who: (typeof KEYS)[number], version: string) {
    const init = {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 't', version: '1' } },
    };
    const res = await request(server, '/mcp', jsonRpcPost(init, bearer(who)));
    await res.text();
    return res.headers.get('mcp-session-id')!;
  }

  it('serves the admitted requests of a 2025-03-26 batch and answers the refused ones in the same answer', async () => {
    const server = secured();
    const sessionId = await openSession(server, 'reader', '2025-03-26');
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } },
      { jsonrpc: '2.0', id: 3, method: 'tools/list' },
    ];
    const res = await request(
      server,
      '/mcp',
      jsonRpcPost(batch, { ...bearer('reader'), 'mcp-session-id': sessionId }),
    );
    expect(res.status).toBe(200);
    const byId = new Map((await messagesOf(res)).map((m) => [m.id, m]));
    expect(byId.get(1)).toMatchObject({ result: {} });
    expect(byId.get(2)).toMatchObject({ error: { code: -32003 } });
    expect(byId.get(3)?.result.tools.map((t: { name: string }) => t.name)).toEqual(['add', 'echo']);
    await server.close();
  });

  it('answers a batch refused whole as an array of errors, without the SDK', async () => {
    const server = secured();
    const sessionId = await openSession(server, 'reader', '2025-03-26');
    const batch = [1, 2].map((id) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'add', arguments: {} },
    }));
    const res = await request(
      server,
      '/mcp',
      jsonRpcPost(batch, { ...bearer('reader'), 'mcp-session-id': sessionId }),
    );
    expect(res.status).toBe(200);
    const answer = await res.json();
    expect(answer).toHaveLength(2);
    expect(answer.every((m: { error?: { code: number } }) => m.error?.code === -32003)).toBe(true);
    await server.close();
  });
});

describe('per-caller session shares', () => {
  it("recycles a caller's own least recently used session, and never another caller's", async () => {
    const server = fixtureServer({
      http: { maxSessions: 6, maxSessionsPerCaller: 2 },
      auth: {
        apiKeys: [
          { id: 'a', roles: ['user'], key: KEY('a') },
          { id: 'b', roles: ['user'], key: KEY('b') },
        ],
      },
    });
    const open = async (who: string) => {
      const res = await request(
        server,
        '/mcp',
        jsonRpcPost(
          {
            jsonrpc: '2.0',
            id: 0,
            method: 'initialize',
            params: {
              protocolVersion: '2025-11-25',
              capabilities: {},
              clientInfo: { name: 't', version: '1' },
            },
          },
          bearer(who),
        ),
      );
      await res.text();
      return res.headers.get('mcp-session-id')!;
    };
    const live = async (who: string, sessionId: string) =>
      (
        await request(
          server,
          '/mcp',
          jsonRpcPost(
            { jsonrpc: '2.0', id: 1, method: 'ping' },
            { ...bearer(who), 'mcp-session-id': sessionId },
          ),
        )
      ).status;
    const b1 = await open('b');
    const a1 = await open('a');
    const a2 = await open('a');
    expect(await live('a', a1)).toBe(200); // a1 is now used more recently than a2
    const a3 = await open('a');
    expect(await live('a', a2)).toBe(404);
    expect(await live('a', a1)).toBe(200);
    expect(await live('a', a3)).toBe(200);
    expect(await live('b', b1)).toBe(200);
    expect(server.connectionCounts().httpSessions).toBe(3);
    await server.close();
  });
});

describe('a cancelled call', () => {
  it("reports its end only once the tool's own handler has finished", async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    const release = deferred();
    server.tools.register({
      name: 'stubborn',
      // Takes its signal but ignores it: it ends when the test says so.
      handler: async (_args, ctx) => {
        void ctx.signal;
        await release.promise;
        return 'done';
      },
    });
    const controller = new AbortController();
    let settled = false;
    const call = server.executor.execute(
      'stubborn',
      {},
      {
        signal: controller.signal,
        onSettled: () => {
          settled = true;
        },
      },
    );
    controller.abort();
    expect((await call).isError).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toBe(false);
    release.resolve();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toBe(true);
    // A call that never ran its handler settles at once.
    let refused = false;
    await server.executor.execute(
      'stubborn',
      { extra: 1n as unknown as number },
      { onSettled: () => (refused = true) },
    );
    expect(refused).toBe(true);
  });
});
