/**
 * Secrets stay bound to their destination, and every request mcpkit sends on someone's behalf goes
 * through one outbound policy: declarative HTTP tools (REST and integrations) and model endpoints
 * (integrations and inline completions). Private addresses in every spelling, redirects, rebinding
 * resolvers, control characters in headers, upstream bodies that would carry data back.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpServer, type Logger, type McpKitServer } from 'mcpkit';
import { createModelServer, request } from 'mcpkit/testing';
import { addressRange, isPrivateAddress, OutboundPolicy, summariseUpstreamError } from 'mcpkit/unstable';
import { afterEach, describe, expect, it } from 'vitest';

const TOKEN = 'tok-9f8e7d6c5b4a39281706f5e4';
const API_KEY = 'sk-live-0123456789abcdef0123';
const LOOPBACK = { allowedHosts: ['127.0.0.1', 'localhost'], allowPrivateNetworks: true };

interface Upstream {
  url: string;
  port: number;
  hits: Array<{ url: string; headers: IncomingMessage['headers'] }>;
  close(): Promise<void>;
}

const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const item of open.splice(0)) await item.close();
});

async function upstream(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const hits: Upstream['hits'] = [];
  const server: Server = createServer((req, res) => {
    hits.push({ url: req.url ?? '', headers: req.headers });
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const up = {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(up);
  return up;
}

function serve(options: Parameters<typeof createMcpServer>[0]): McpKitServer {
  const server = createMcpServer({ logLevel: 'silent', ...options });
  open.push(server);
  return server;
}

const json = (body: unknown, method = 'POST'): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

async function execute(server: McpKitServer, name: string, args: unknown = {}) {
  const res = await request(server, `/tools/${name}/execute`, json({ arguments: args }));
  return { status: res.status, text: await res.text() };
}

/** A logger that keeps every line it is given, as the log file would. */
function captureLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (fields: unknown, message?: string) => {
    lines.push(JSON.stringify([fields, message ?? null]));
  };
  const logger = {
    lines,
    trace: write,
    debug: write,
    info: write,
    warn: write,
    error: write,
    fatal: write,
    child: () => logger,
  };
  return logger as unknown as Logger & { lines: string[] };
}

describe('the address classifier', () => {
  const notPublic: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'],
    ['127.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['2130706433', 'loopback'],
    ['017700000001', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared'],
    ['169.254.169.254', 'link-local'],
    ['192.0.0.8', 'protocol'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    // IPv4-mapped, in the form WHATWG URL writes it and in the dotted form
    ['[::ffff:7f00:1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::FFFF:A9FE:A9FE', 'link-local'],
    ['::ffff:0:7f00:1', 'loopback'],
    ['::7f00:1', 'loopback'],
    ['::10.0.0.1', 'private'],
    // NAT64 and 6to4 carry an IPv4 address
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:a00:1::', 'private'],
    ['64:ff9b:1::1', 'translation'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['100::1', 'discard'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001::1', 'protocol'],
    ['4000::1', 'reserved'],
    ['localhost', 'loopback'],
    ['LOCALHOST.', 'loopback'],
    ['db.localhost', 'loopback'],
    ['printer.local', 'private'],
    ['db.internal', 'private'],
    ['nas.home.arpa', 'private'],
  ];

  it.each(notPublic)('%s is %s', (address, range) => {
    expect(addressRange(address)).toBe(range);
    expect(isPrivateAddress(address)).toBe(true);
  });

  it('judges every URL spelling of an address as the URL parser normalises it', () => {
    for (const [spelling] of notPublic.filter(([a]) => !a.includes('%') && /^[\d.x[\]:a-f]+$/i.test(a))) {
      const host = spelling.includes(':') && !spelling.startsWith('[') ? `[${spelling}]` : spelling;
      const hostname = new URL(`http://${host}/`).hostname;
      expect([spelling, isPrivateAddress(hostname)]).toEqual([spelling, true]);
    }
  });

  it('passes public addresses, public addresses carried in IPv6, and names', () => {
    for (const address of [
      '8.8.8.8',
      '172.32.0.1',
      '100.128.0.1',
      '2606:4700:4700::1111',
      '[2001:4860:4860::8888]',
      '64:ff9b::808:808',
      '2002:808:808::1',
      '::ffff:8.8.8.8',
      'example.com',
      'localhost.example.com',
    ]) {
      expect([address, isPrivateAddress(address)]).toEqual([address, false]);
    }
    expect(addressRange('example.com')).toBeUndefined();
    expect(addressRange('1.2.3.4.5')).toBeUndefined();
    expect(addressRange('1::2::3')).toBeUndefined();
  });
});

describe('the outbound policy', () => {
  it('refuses schemes, credentials, hosts off the list and private spellings even when listed', () => {
    const policy = new OutboundPolicy({
      allowedHosts: ['api.example.com', '*.svc.example.com', '::ffff:7f00:1', '0x7f.1', '169.254.169.254'],
    });
    expect(() => policy.check(new URL('https://api.example.com/x'))).not.toThrow();
    expect(() => policy.check(new URL('https://API.EXAMPLE.COM./x'))).not.toThrow();
    expect(() => policy.check(new URL('https://a.svc.example.com/'))).not.toThrow();
    const refusals: Array<[string, RegExp]> = [
      ['ftp://api.example.com/', /Scheme/],
      ['file:///etc/passwd', /Scheme/],
      ['https://user:pw@api.example.com/', /credentials/],
      ['https://svc.example.com/', /not on the outbound allow-list/],
      ['https://api.example.com.evil.test/', /not on the outbound allow-list/],
      ['http://[::ffff:7f00:1]/', /loopback address/],
      ['http://[::ffff:127.0.0.1]/', /loopback address/],
      ['http://127.0.0.1/', /loopback address/],
      ['http://169.254.169.254/latest/meta-data', /link-local address/],
    ];
    for (const [url, message] of refusals) {
      expect(() => policy.check(new URL(url)), url).toThrow(message);
    }
  });

  it('bounds what a refusal echoes', () => {
    const policy = new OutboundPolicy();
    const long = `${'a'.repeat(200)}.example.com`;
    try {
      policy.check(new URL(`https://${long}/`));
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message.length).toBeLessThan(140);
    }
  });

  it('summarises upstream error bodies instead of passing them on', () => {
    expect(summariseUpstreamError('{"error":{"message":"model not found"}}', 'application/json')).toBe(
      'model not found',
    );
    const html = '<html><body>internal admin panel: db=10.0.0.5 password=hunter2</body></html>';
    const summary = summariseUpstreamError(html, 'text/html; charset=utf-8');
    expect(summary).toBe(`a text/html body of ${html.length} bytes`);
    const leaky = summariseUpstreamError(
      JSON.stringify({ error: { message: `bad key ${API_KEY}\r\nx-injected: 1 ${'z'.repeat(500)}` } }),
      'application/json',
      [API_KEY],
    );
    expect(leaky).not.toContain(API_KEY);
    expect(leaky).not.toMatch(/[\r\n]/);
    expect(leaky.length).toBeLessThanOrEqual(230);
    expect(summariseUpstreamError('', null)).toBe('an empty body');
  });
});

describe('connections go to the address that was checked (Node)', () => {
  it('connects to the address the resolver gave, resolving once per request', async () => {
    const up = await upstream((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'),
    );
    const asked: string[] = [];
    const server = serve({
      outbound: {
        allowedHosts: ['api.test'],
        allowPrivateNetworks: true,
        // The system resolver does not know api.test: reaching the server proves the connection
        // used this answer.
        resolveHost: async (host) => {
          asked.push(host);
          return ['127.0.0.1'];
        },
      },
    });
    const registered = await request(
      server,
      '/tools',
      json({ name: 'hello', kind: 'http', http: { url: `http://api.test:${up.port}/hello` } }),
    );
    expect(registered.status).toBe(201);
    const first = await execute(server, 'hello');
    expect(first.text).toContain('hello');
    expect(asked).toEqual(['api.test']);
    expect(up.hits).toHaveLength(1);
    expect(up.hits[0]!.headers.host).toBe(`api.test:${up.port}`);
  });

  it('a rebinding resolver (public for the check, loopback next) never reaches the loopback', async () => {
    const up = await upstream((_req, res) => res.writeHead(200).end('internal data'));
    const answers = ['192.88.98.1', '127.0.0.1', '127.0.0.1'];
    let asked = 0;
    const resolveHost = async () => [answers[Math.min(asked++, answers.length - 1)]!];
    const tool = { name: 'rebind', kind: 'http', http: { url: `http://rebind.test:${up.port}/` } };

    const pinned = serve({
      outbound: { allowedHosts: ['rebind.test'], resolveHost },
      declarativeTools: { timeoutMs: 1500 },
    });
    expect((await request(pinned, '/tools', json(tool))).status).toBe(201);
    const result = await execute(pinned, 'rebind');
    expect(result.text).not.toContain('internal data');
    expect(asked).toBe(1); // checked and connected with one answer
    expect(up.hits).toEqual([]);

    // The same resolver behind a fetch of one's own (documented: check, then resolve again) is
    // what pinning closes: that fetch resolves a second time and reaches the loopback.
    asked = 0;
    const ownFetch: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      const [address] = await resolveHost();
      return fetch(`http://${address}:${url.port}${url.pathname}`, init);
    };
    const unpinned = serve({
      outbound: { allowedHosts: ['rebind.test'], resolveHost, fetch: ownFetch },
    });
    expect((await request(unpinned, '/tools', json(tool))).status).toBe(201);
    expect((await execute(unpinned, 'rebind')).text).toContain('internal data');
    expect(asked).toBe(2);
  });

  it('refuses a name whose resolver gives any private address, in any spelling', async () => {
    for (const answer of ['::ffff:7f00:1', '10.0.0.7', '64:ff9b::a9fe:a9fe', 'fe80::1', 'not an address']) {
      const server = serve({
        outbound: { allowedHosts: ['api.test'], resolveHost: async () => ['93.184.215.14', answer] },
      });
      await request(server, '/tools', json({ name: 't', kind: 'http', http: { url: 'http://api.test/' } }));
      const result = await execute(server, 't');
      if (answer === 'not an address') expect(result.text).toMatch(/Host api\.test could not be resolved/);
      else expect([answer, result.status]).toEqual([answer, 403]);
    }
  });
});

describe('declarative HTTP tools: redirects, headers, answers', () => {
  it('checks every redirect hop against mapped, NAT64 and numeric spellings of private addresses', async () => {
    for (const location of [
      'http://[::ffff:7f00:1]/admin',
      'http://[::ffff:a9fe:a9fe]/latest/meta-data',
      'http://[64:ff9b::7f00:1]/',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://[::1]/',
      'http://localhost./',
    ]) {
      const calls: string[] = [];
      const fake: typeof fetch = async (input) => {
        calls.push(String(input));
        return new Response(null, { status: 302, headers: { location } });
      };
      const server = serve({
        // Even listed, a private address stays refused without allowPrivateNetworks.
        outbound: {
          allowedHosts: ['api.example.com', '::ffff:7f00:1', '127.0.0.1', '::1', 'localhost'],
          fetch: fake,
        },
      });
      await request(
        server,
        '/tools',
        json({ name: 'r', kind: 'http', http: { url: 'https://api.example.com/' } }),
      );
      const result = await execute(server, 'r');
      expect([location, result.status]).toEqual([location, 403]);
      expect(calls).toEqual(['https://api.example.com/']);
    }
  });

  it('a cross-origin redirect drops the tool headers (and the secrets in them); same origin keeps them', async () => {
    const far = await upstream((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('far'),
    );
    const near = await upstream((req, res) => {
      if (req.url === '/cross')
        res.writeHead(307, { location: `http://localhost:${far.port}/landing` }).end();
      else if (req.url === '/same') res.writeHead(302, { location: '/final' }).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('near');
    });
    const server = serve({ outbound: LOOPBACK });
    await server.integrations.create({
      id: 'crm',
      name: 'CRM',
      secrets: { token: TOKEN },
      tools: ['cross', 'same'].map((name) => ({
        name,
        kind: 'http' as const,
        http: { url: `${near.url}/${name}`, headers: { authorization: 'Bearer {{secrets.token}}' } },
      })),
    });
    expect((await execute(server, 'crm__cross')).text).toContain('far');
    expect(far.hits).toHaveLength(1);
    expect(far.hits[0]!.headers.authorization).toBeUndefined();
    expect((await execute(server, 'crm__same')).text).toContain('near');
    expect(near.hits.at(-1)!.url).toBe('/final');
    expect(near.hits.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('refuses control characters in a header placeholder before any header is built: nothing leaks', async () => {
    const up = await upstream((_req, res) => res.writeHead(200).end('ok'));
    const logger = captureLogger();
    const server = createMcpServer({ logger, logLevel: 'debug', outbound: LOOPBACK });
    open.push(server);
    await server.integrations.create({
      id: 'crm',
      name: 'CRM',
      secrets: { token: TOKEN },
      tools: [
        {
          name: 'find',
          kind: 'http',
          inputSchema: { type: 'object', properties: { who: { type: 'string' } } },
          http: { url: `${up.url}/find`, headers: { authorization: 'Bearer {{secrets.token}} {who}' } },
        },
      ],
    });
    for (const who of ['a\u0000b', 'a\r\nx-injected: 1', 'tab\u007fdel', 'snow ☃']) {
      const result = await execute(server, 'crm__find', { who });
      expect(result.status).toBe(400);
      expect(result.text).toMatch(/Argument who cannot go in a header/);
      expect(result.text).not.toContain(TOKEN);
      expect(result.text).not.toContain('injected');
    }
    expect(up.hits).toEqual([]);
    const logs = await (await request(server, '/logs?limit=1000')).text();
    expect(logs).not.toContain(TOKEN);
    expect(logger.lines.join('\n')).not.toContain(TOKEN);
    // A plain value goes through.
    expect((await execute(server, 'crm__find', { who: 'ann' })).status).toBe(200);
    expect(up.hits[0]!.headers.authorization).toBe(`Bearer ${TOKEN} ann`);
  });

  it('refuses header names, reserved headers and secrets that cannot be headers, never echoing the value', async () => {
    const server = serve({ outbound: LOOPBACK });
    const tool = (headers: Record<string, string>) => ({
      name: 't',
      kind: 'http',
      http: { url: 'http://127.0.0.1:9/x', headers },
    });
    for (const [headers, message] of [
      [{ Host: 'internal.example.com' }, /cannot be set by a tool/],
      [{ 'Transfer-Encoding': 'chunked' }, /cannot be set by a tool/],
      [{ 'Proxy-Authorization': 'x' }, /cannot be set by a tool/],
      [{ 'bad name': 'x' }, /is not a header name/],
      [{ 'x-a': 'one\r\ntwo' }, /control character/],
    ] as const) {
      const res = await request(server, '/tools', json(tool(headers)));
      expect([JSON.stringify(headers), res.status]).toEqual([JSON.stringify(headers), 400]);
      expect((await res.json()).detail).toMatch(message);
    }
    const secret = `${TOKEN}\u0000`;
    const created = await request(
      server,
      '/integrations',
      json({
        id: 'bad',
        name: 'Bad',
        secrets: { token: secret },
        tools: [tool({ authorization: 'Bearer {{secrets.token}}' })],
      }),
    );
    const text = await created.text();
    expect(created.status).toBe(400);
    expect(text).toMatch(/http\.headers\.authorization holds a control character/);
    expect(text).not.toContain(TOKEN);
  });

  it('summarises error answers and masks secrets an upstream reflects', async () => {
    const up = await upstream((req, res) => {
      if (req.url === '/html')
        res
          .writeHead(500, { 'content-type': 'text/html' })
          .end('<h1>stack at /srv/app/secret.js: db password=hunter2</h1>');
      else if (req.url === '/json')
        res
          .writeHead(401, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: `token ${req.headers.authorization} rejected` } }));
      else
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echo: req.headers }));
    });
    const server = serve({ outbound: LOOPBACK });
    const headers = { authorization: 'Bearer {{secrets.token}}' };
    await server.integrations.create({
      id: 'crm',
      name: 'CRM',
      secrets: { token: TOKEN },
      tools: ['html', 'json', 'echo'].map((name) => ({
        name,
        kind: 'http' as const,
        http: { url: `${up.url}/${name}`, headers },
      })),
    });
    const html = await execute(server, 'crm__html');
    expect(html.text).toContain('HTTP 500 from 127.0.0.1: a text/html body of');
    expect(html.text).not.toContain('hunter2');
    const rejected = await execute(server, 'crm__json');
    expect(rejected.text).toContain('HTTP 401 from 127.0.0.1: token');
    expect(rejected.text).not.toContain(TOKEN);
    const echoed = await execute(server, 'crm__echo');
    expect(echoed.status).toBe(200);
    expect(echoed.text).toContain('[redacted]');
    expect(echoed.text).not.toContain(TOKEN);
  });

  it('says why a connection failed in its own words', async () => {
    const closed = await upstream(() => {});
    await closed.close();
    const server = serve({ outbound: LOOPBACK });
    await request(server, '/tools', json({ name: 'gone', kind: 'http', http: { url: `${closed.url}/x` } }));
    const result = JSON.parse((await execute(server, 'gone')).text);
    expect(result.isError).toBe(true);
    expect(result._meta['io.mcpkit/error'].code).toBe('UPSTREAM_ERROR');
    expect(result.content[0].text).toMatch(
      /^The request to 127\.0\.0\.1 failed: connection refused \(error id/,
    );
  });
});

describe('integration secrets stay bound to their destination', () => {
  const model = { provider: 'openai' as const, model: 'gpt-4.1', apiKey: API_KEY };

  it('a new baseUrl or provider drops the stored model key unless the same request gives one', async () => {
    const server = serve({ outbound: { allowedHosts: ['models.example.com', 'evil.example.com'] } });
    await server.integrations.create({ id: 'm', name: 'M', model });
    expect(server.integrations.modelConfig('m')?.apiKey).toBe(API_KEY);

    // Same destination, spelled differently (the provider's default, a trailing slash, case): kept.
    for (const baseUrl of ['https://api.openai.com/v1', 'https://API.openai.com/v1/', undefined]) {
      await server.integrations.update('m', { model: { ...model, apiKey: undefined, baseUrl } });
      expect([baseUrl, server.integrations.modelConfig('m')?.apiKey]).toEqual([baseUrl, API_KEY]);
    }

    // The masked echo with a new baseUrl: dropped.
    const masked = server.integrations.get('m')!.model!.apiKey!;
    await server.integrations.update('m', {
      model: { ...model, apiKey: masked, baseUrl: 'https://evil.example.com/v1' },
    });
    expect(server.integrations.modelConfig('m')?.apiKey).toBeUndefined();
    expect(server.integrations.get('m')!.model!.apiKey).toBeUndefined();

    // A new key with the new URL: set.
    await server.integrations.update('m', {
      model: { ...model, apiKey: 'sk-new-key-000000000000', baseUrl: 'https://models.example.com/v1' },
    });
    expect(server.integrations.modelConfig('m')?.apiKey).toBe('sk-new-key-000000000000');

    // Omitted key, different provider, same URL: dropped.
    await server.integrations.replace('m', {
      name: 'M',
      model: { provider: 'custom', model: 'x', baseUrl: 'https://models.example.com/v1' },
    });
    expect(server.integrations.modelConfig('m')?.apiKey).toBeUndefined();
  });

  it('over REST, a PUT with a new baseUrl keeps nothing of the key, its masked echo included', async () => {
    const server = serve({ outbound: { allowedHosts: ['evil.example.com'] } });
    expect((await request(server, '/integrations', json({ id: 'm', name: 'M', model }))).status).toBe(201);
    const current = await (await request(server, '/integrations/m')).json();
    expect(current.model.apiKey).toBe(`…${API_KEY.slice(-4)}`);
    const put = await request(server, '/integrations/m', {
      ...json({ ...current, model: { ...current.model, baseUrl: 'https://evil.example.com/v1' } }, 'PUT'),
      headers: { 'content-type': 'application/json', 'if-match': current.etag },
    });
    expect(put.status).toBe(200);
    expect((await put.json()).model.apiKey).toBeUndefined();
    expect(server.integrations.modelConfig('m')?.apiKey).toBeUndefined();
  });

  it('model URLs meet the outbound policy when written: off the list or private in any spelling is refused', async () => {
    const server = serve({ outbound: { allowedHosts: ['::ffff:7f00:1'] } });
    for (const baseUrl of [
      'http://[::ffff:7f00:1]/v1',
      'http://[::ffff:a9fe:a9fe]/v1',
      'https://evil.example.com/v1',
      'http://localhost:11434/v1',
    ]) {
      const res = await request(
        server,
        '/integrations',
        json({ id: 'x', name: 'X', model: { provider: 'custom', model: 'm', apiKey: API_KEY, baseUrl } }),
      );
      const body = await res.json();
      expect([baseUrl, res.status]).toEqual([baseUrl, 403]);
      expect(body.detail).toMatch(/^model\.baseUrl: /);
      expect(body.details.field).toBe('model.baseUrl');
    }
    // The provider's own API needs no listing.
    const ok = await request(
      server,
      '/integrations',
      json({
        id: 'ok',
        name: 'OK',
        model: { provider: 'openai', model: 'm', baseUrl: 'https://api.openai.com/v1' },
      }),
    );
    expect(ok.status).toBe(201);
  });

  it('a kept secret is not sent to an origin its tools did not send it to before', async () => {
    const server = serve({ outbound: { allowedHosts: ['crm.example.com', 'evil.example.com'] } });
    const tool = (url: string) => ({
      name: 'lookup',
      kind: 'http' as const,
      http: { url, headers: { authorization: 'Bearer {{secrets.token}}' } },
    });
    await server.integrations.create({
      id: 'crm',
      name: 'CRM',
      secrets: { token: TOKEN },
      tools: [tool('https://crm.example.com/find?q={q}')],
    });
    // Another path on the same origin: fine.
    await server.integrations.update('crm', { tools: [tool('https://crm.example.com/search?q={q}')] });
    // Another origin, secret kept by omission or by its masked echo: refused, nothing changes.
    for (const secrets of [undefined, { token: server.integrations.get('crm')!.secrets!.token! }]) {
      await expect(
        server.integrations.update('crm', {
          tools: [tool('https://evil.example.com/collect')],
          ...(secrets && { secrets }),
        }),
      ).rejects.toThrow(
        /secrets\.token must be given again: tools\[0\] would send it to https:\/\/evil\.example\.com/,
      );
      expect(server.integrations.get('crm')!.tools[0]).toMatchObject({
        http: { url: 'https://crm.example.com/search?q={q}' },
      });
    }
    // A second tool on a new origin counts too.
    await expect(
      server.integrations.update('crm', {
        tools: [
          tool('https://crm.example.com/search'),
          { ...tool('http://crm.example.com/x'), name: 'plain' },
        ],
      }),
    ).rejects.toThrow(/tools\[1\] would send it to http:\/\/crm\.example\.com/);
    // Given again in the same request: the editor knows the secret, so it may send it anywhere allowed.
    await server.integrations.update('crm', {
      tools: [tool('https://evil.example.com/collect')],
      secrets: { token: 'a-new-token-value' },
    });
    expect(server.integrations.secret('crm', 'token')).toBe('a-new-token-value');
  });
});

describe('model endpoints go through the outbound policy at call time', () => {
  it('an inline baseUrl to a private address is refused before any connection, on every provider', async () => {
    const model = await createModelServer({});
    open.push(model);
    const server = serve({ completions: { allowInlineBaseUrl: true } });
    for (const provider of ['openai', 'anthropic', 'custom']) {
      const baseUrl = provider === 'anthropic' ? model.url : `${model.url}/v1`;
      const res = await request(
        server,
        '/completions',
        json({
          model: { provider, model: 'm', apiKey: 'k', baseUrl },
          messages: [{ role: 'user', content: 'hi' }],
        }),
      );
      const job = await res.json();
      expect([provider, job.status, job.error?.code]).toEqual([provider, 'failed', 'FORBIDDEN']);
      expect(job.error.message).toMatch(/not on the outbound allow-list/);
    }
    expect(model.requests).toEqual([]);
  });

  it('a model endpoint that redirects is not followed, and its error bodies are summarised', async () => {
    const target = await createModelServer({});
    open.push(target);
    const up = await upstream((req, res) => {
      if (req.url?.startsWith('/redirect'))
        res.writeHead(307, { location: `${target.url}/v1/chat/completions` }).end();
      else
        res
          .writeHead(502, { 'content-type': 'text/html' })
          .end('<pre>upstream internals: 10.0.0.5:5432</pre>');
    });
    const server = serve({ outbound: LOOPBACK, completions: { providerOptions: { retry: { retries: 0 } } } });
    const done = await server.completions.run({
      model: { provider: 'custom', model: 'm', apiKey: API_KEY, baseUrl: `${up.url}/redirect` },
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(done.status).toBe('failed');
    expect(done.error?.message).toMatch(/answered 307: model requests do not follow redirects/);
    expect(target.requests).toEqual([]);
    expect(up.hits[0]!.headers.authorization).toBe(`Bearer ${API_KEY}`);

    const failing = await server.completions.run({
      model: { provider: 'custom', model: 'm', apiKey: API_KEY, baseUrl: `${up.url}/v1` },
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(failing.status).toBe('failed');
    expect(failing.error?.message).toBe('custom answered 502: a text/html body of 44 bytes');
  });

  it('a model key that cannot be a header is refused before it is sent', async () => {
    const model = await createModelServer({});
    open.push(model);
    const server = serve({ outbound: LOOPBACK, completions: { allowInlineBaseUrl: true } });
    const res = await request(
      server,
      '/completions',
      json({
        model: { provider: 'openai', model: 'm', apiKey: `${API_KEY}\u0000`, baseUrl: `${model.url}/v1` },
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
    const text = await res.text();
    expect(text).toMatch(/model\.apiKey must be a string of printable Latin-1 characters/);
    expect(text).not.toContain(API_KEY);
    expect(model.requests).toEqual([]);
    await expect(
      server.integrations.create({
        id: 'k',
        name: 'K',
        model: { provider: 'openai', model: 'm', apiKey: 'a\nb' },
      }),
    ).rejects.toThrow(/model\.apiKey must hold only printable Latin-1 characters/);
  });
});
