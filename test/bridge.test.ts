/**
 * The Node bridge's web request: its body stays in the Node stream until something asks for it, and
 * then behaves as any `Request` body would; its signal aborts when the client leaves, whenever it is
 * first asked for.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { inspect } from 'node:util';
import express from 'express';
import Fastify from 'fastify';
import { createMcpServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { listen, toNodeListener, toWebRequest } from 'mcpkit/node';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bodyTextOf, textResponse } from '../src/http/bodyText.js';
import { bridgeRequest, lightRequests, setLightRequests, writeWebResponse } from '../src/node/bridge.js';
import { closeHttp } from './fixtures.js';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

type Kind = 'full' | 'bridged' | 'bridged whole';

/**
 * Serves `handler` on a free port with the requests of `kind`: `full` from the public
 * `toNodeListener` (a complete undici request), `bridged` as mcpkit's own doors build them, and
 * `bridged whole` as they build them on a Node whose undici refuses light requests (Node 24).
 */
async function serveKind(handler: (request: Request) => Promise<Response>, kind: Kind): Promise<string> {
  server = createServer(
    kind === 'full'
      ? toNodeListener(handler)
      : (req, res) => {
          if (kind === 'bridged whole') setLightRequests(false);
          let request: Request;
          try {
            request = bridgeRequest(req, res);
          } finally {
            setLightRequests(undefined);
          }
          void handler(request).then((response) => writeWebResponse(req, res, response));
        },
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const BODY = JSON.stringify({ greeting: 'hello', list: [1, 2, 3] });

describe.each<Kind>(['full', 'bridged', 'bridged whole'])('the %s web request of the Node bridge', (kind) => {
  const serve = (handler: (request: Request) => Promise<Response>) => serveKind(handler, kind);

  it.each([
    ['json()', async (r: Request) => JSON.stringify(await r.json())],
    ['text()', (r: Request) => r.text()],
    ['arrayBuffer()', async (r: Request) => new TextDecoder().decode(await r.arrayBuffer())],
    ['blob()', async (r: Request) => (await r.blob()).text()],
    ['body', (r: Request) => new Response(r.body).text()],
    ['clone()', (r: Request) => r.clone().text()],
  ])('gives a foreign handler the body through %s', async (_label, read) => {
    const seen: Array<{ instance: boolean; usedBefore: boolean; usedAfter: boolean }> = [];
    const base = await serve(async (request) => {
      const usedBefore = request.bodyUsed;
      const text = await read(request);
      seen.push({ instance: request instanceof Request, usedBefore, usedAfter: request.bodyUsed });
      return new Response(text);
    });
    const response = await fetch(`${base}/x`, { method: 'POST', body: BODY });
    expect(await response.text()).toBe(BODY);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.instance).toBe(true);
    expect(seen[0]!.usedBefore).toBe(false);
  });

  it('marks the body used once read, and refuses a second read', async () => {
    let second = '';
    const base = await serve(async (request) => {
      await request.text();
      expect(request.bodyUsed).toBe(true);
      second = await request.text().then(
        () => 'read twice',
        (error: unknown) => (error instanceof TypeError ? 'refused' : 'other error'),
      );
      return new Response('ok');
    });
    await (await fetch(`${base}/x`, { method: 'POST', body: BODY })).text();
    expect(second).toBe('refused');
  });

  it('reads a large chunked body whole', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const base = await serve(async (request) => new Response(String((await request.text()).length)));
    const response = await fetch(`${base}/x`, {
      method: 'POST',
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(await response.text()).toBe(String(big.length));
  });

  it('has no body on GET', async () => {
    const base = await serve(async (request) => new Response(`${request.body === null} ${request.bodyUsed}`));
    expect(await (await fetch(`${base}/x`)).text()).toBe('true false');
  });

  it.each([
    ['asked for before the client leaves', true],
    ['asked for only after the client left', false],
  ])('aborts its signal when the client leaves, %s', async (_label, early) => {
    let settle!: (aborted: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    const base = await serve(async (request) => {
      const signal = early ? request.signal : undefined;
      await new Promise((resolve) => setTimeout(resolve, 150));
      settle((signal ?? request.signal).aborted);
      return new Response('late');
    });
    const url = new URL(`${base}/x`);
    const client = httpRequest({ host: url.hostname, port: url.port, path: '/x', method: 'POST' });
    client.on('error', () => {});
    client.end(BODY);
    setTimeout(() => client.destroy(), 50);
    expect(await outcome).toBe(true);
  });

  it('does not abort the signal of a request that was answered', async () => {
    let signal: AbortSignal | undefined;
    const base = await serve(async (request) => {
      signal = request.signal;
      return new Response('ok');
    });
    await (await fetch(`${base}/x`, { method: 'POST', body: BODY })).text();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(signal?.aborted).toBe(false);
  });
});

/** Sends `head` (the request line and fields, CRLF-separated, no final blank line) and `body` raw. */
async function rawRequest(base: string, head: string, payload = ''): Promise<string> {
  const { port } = new URL(base);
  const socket = connect(Number(port), '127.0.0.1');
  socket.write(
    `${head}\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`,
  );
  let answer = '';
  for await (const chunk of socket) answer += String(chunk);
  const split = answer.indexOf('\r\n\r\n');
  let body = answer.slice(split + 4);
  if (/^transfer-encoding: chunked$/im.test(answer.slice(0, split))) {
    let plain = '';
    for (;;) {
      const eol = body.indexOf('\r\n');
      const size = Number.parseInt(body.slice(0, eol), 16);
      if (!(size > 0)) break;
      plain += body.slice(eol + 2, eol + 2 + size);
      body = body.slice(eol + 2 + size + 2);
    }
    body = plain;
  }
  return body;
}

describe.each<Kind>(['bridged', 'bridged whole'])('the headers of a %s request', (kind) => {
  // Repeated fields, mixed case, a Cookie sent twice, padding a parser keeps: what a full request
  // would make of them is the reference.
  const FIELDS = [
    ['Host', 'example.test:8080'],
    ['X-Multi', 'one'],
    ['x-multi', 'two'],
    ['Cookie', 'a=1'],
    ['cookie', 'b=2'],
    ['X-Padded', 'value\tinside'],
    ['Accept', 'application/json, text/event-stream'],
  ];
  const HEAD = `POST /x?q=1 HTTP/1.1\r\n${FIELDS.map(([name, value]) => `${name}: ${value}`).join('\r\n')}`;
  /** What undici makes of the same fields (rawRequest adds the last two). */
  const reference = () =>
    new Headers([...FIELDS, ['content-length', String(Buffer.byteLength(BODY))], ['connection', 'close']] as [
      string,
      string,
    ][]);

  it('answers get() and has() as a full request does, without building one', async () => {
    let seen: Record<string, unknown> = {};
    const base = await serveKind(async (request) => {
      seen = {
        same: ['host', 'x-multi', 'X-MULTI', 'cookie', 'x-padded', 'accept', 'content-length', 'absent'].map(
          (name) => [name, request.headers.get(name), reference().get(name)],
        ),
        has: [request.headers.has('Cookie'), request.headers.has('absent')],
        // the bridge's own state: no undici request was built to answer
        built: (() => {
          const key = Object.getOwnPropertySymbols(request).find(
            (k) => k.description === 'mcpkit.bridgedRequest',
          );
          return key === undefined
            ? 'no state'
            : (request as unknown as Record<symbol, { full?: Request }>)[key]!.full !== undefined;
        })(),
        invalid: (() => {
          try {
            request.headers.get('bad name');
            return 'accepted';
          } catch (error) {
            return error instanceof TypeError ? 'TypeError' : 'other';
          }
        })(),
      };
      return new Response('ok');
    }, kind);
    expect(await rawRequest(base, HEAD, BODY)).toBe('ok');
    for (const [name, got, expected] of seen.same as Array<[string, string | null, string | null]>) {
      expect(got, name).toBe(expected);
    }
    expect((seen.same as Array<[string, string | null]>).find(([n]) => n === 'cookie')![1]).toBe('a=1; b=2');
    expect((seen.same as Array<[string, string | null]>).find(([n]) => n === 'x-multi')![1]).toBe('one, two');
    expect(seen.has).toEqual([true, false]);
    // a light request answered without building the full one; a whole one has no light state
    expect(seen.built).toBe(kind === 'bridged' && lightRequests() ? false : 'no state');
    expect(seen.invalid).toBe('TypeError');
  });

  it("iterates, copies and changes as a full request's headers do", async () => {
    let seen: Record<string, unknown> = {};
    const base = await serveKind(async (request) => {
      const copy = new Headers(request.headers);
      seen = {
        entries: [...request.headers],
        reference: [...reference()],
        copy: [...copy],
        keys: [...request.headers.keys()],
      };
      request.headers.set('x-multi', 'replaced');
      request.headers.append('x-added', 'yes');
      seen.after = [request.headers.get('x-multi'), request.headers.get('x-added')];
      return new Response('ok');
    }, kind);
    expect(await rawRequest(base, HEAD, BODY)).toBe('ok');
    expect(seen.entries).toEqual(seen.reference);
    expect(seen.copy).toEqual(seen.reference);
    expect(seen.keys).toEqual((seen.reference as string[][]).map(([name]) => name));
    expect(seen.after).toEqual(['replaced', 'yes']);
  });

  it('is a Request to undici itself: copied by new Request(), inspected, brand-named', async () => {
    let seen: Record<string, unknown> = {};
    const base = await serveKind(async (request) => {
      const copy = new Request(request);
      seen = {
        instance: request instanceof Request,
        tag: Object.prototype.toString.call(request),
        method: copy.method,
        url: copy.url,
        multi: copy.headers.get('x-multi'),
        body: await copy.text(),
        inspected: inspect(request).includes("method: 'POST'"),
      };
      return new Response('ok');
    }, kind);
    expect(await rawRequest(base, HEAD, BODY)).toBe('ok');
    expect(seen).toEqual({
      instance: true,
      tag: '[object Request]',
      method: 'POST',
      url: 'http://example.test:8080/x?q=1',
      multi: 'one, two',
      body: BODY,
      inspected: true,
    });
  });
});

describe('the string-bodied responses mcpkit builds', () => {
  const make = () =>
    textResponse(JSON.stringify({ hello: 'world' }), {
      status: 201,
      statusText: 'Made',
      headers: { 'content-type': 'application/json', 'x-one': '1' },
    });

  it('is a Response, with its status and headers before anything reads the body', () => {
    const response = make();
    expect(response).toBeInstanceOf(Response);
    expect(Object.prototype.toString.call(response)).toBe('[object Response]');
    expect([response.status, response.statusText, response.ok]).toEqual([201, 'Made', true]);
    expect(response.headers.get('x-one')).toBe('1');
    expect(response.bodyUsed).toBe(false);
    expect(bodyTextOf(response)).toBe('{"hello":"world"}');
  });

  it.each([
    ['json()', async (r: Response) => JSON.stringify(await r.json())],
    ['text()', (r: Response) => r.text()],
    ['arrayBuffer()', async (r: Response) => new TextDecoder().decode(await r.arrayBuffer())],
    ['blob()', async (r: Response) => (await r.blob()).text()],
    ['body', (r: Response) => new Response(r.body).text()],
    ['clone()', (r: Response) => r.clone().text()],
  ])('gives its body through %s, once', async (_label, read) => {
    const response = make();
    expect(await read(response)).toBe('{"hello":"world"}');
    if (_label !== 'clone()') {
      expect(response.bodyUsed).toBe(true);
      expect(bodyTextOf(response)).toBeUndefined();
      await expect(response.text()).rejects.toThrow(TypeError);
    }
  });

  it('keeps headers set before the body is read, and serves them from the built response after', async () => {
    const response = make();
    response.headers.set('x-two', '2');
    const copy = new Response(response.body, response);
    expect(copy.headers.get('x-two')).toBe('2');
    expect(copy.status).toBe(201);
    expect(response.headers.get('x-two')).toBe('2');
    expect(await copy.text()).toBe('{"hello":"world"}');
  });
});

describe('what leaves mcpkit for other consumers', () => {
  it('is a real Response when the request did not come through the Node bridge', async () => {
    const server = createMcpServer({ name: 't', version: '1', logLevel: 'silent' });
    try {
      const answers = await Promise.all([
        server.fetch(new Request('http://localhost/health')),
        server.fetch(new Request('http://localhost/nowhere')),
        server.fetch(
          new Request('http://localhost/mcp', {
            method: 'POST',
            body: '{',
            headers: { 'content-type': 'application/json' },
          }),
        ),
      ]);
      for (const answer of answers) expect(Object.getPrototypeOf(answer)).toBe(Response.prototype);
      expect(answers[2]!.status).toBe(400);
    } finally {
      await server.close();
    }
  });

  it('gives toWebRequest a complete request: a copy of it, or fetch, carries the body', async () => {
    let copied = '';
    server = createServer(async (req, res) => {
      const request = toWebRequest(req, res);
      copied = await new Request(request).text();
      res.end('ok');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await (await fetch(`${base}/x`, { method: 'POST', body: BODY })).text();
    expect(copied).toBe(BODY);
  });
});

describe.each(['listen', 'express', 'fastify'] as const)(
  'a REST call whose client leaves, on %s',
  (mount) => {
    // Each route that runs tools on the caller's behalf: the call, a batch of calls, a chain.
    it.each([
      ['/tools/wait/execute', { arguments: {} }],
      ['/tools/batch', { calls: [{ tool: 'wait', arguments: {} }] }],
      ['/tools/chain', { steps: [{ tool: 'wait', args: {} }] }],
    ])('cancels the handler of %s', async (path, body) => {
      const kit = createMcpServer({ name: 't', version: '1', logLevel: 'silent' });
      let started!: () => void;
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      let cancelled!: (how: string) => void;
      const outcome = new Promise<string>((resolve) => {
        cancelled = resolve;
      });
      kit.tools.register({
        name: 'wait',
        description: 'Waits until cancelled',
        inputSchema: { n: z.number().optional() },
        handler: (_args, ctx) =>
          new Promise((_resolve, reject) => {
            const timer = setTimeout(() => cancelled('not cancelled within 5 s'), 5_000);
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(timer);
              cancelled('cancelled');
              reject(ctx.signal.reason);
            });
            started();
          }),
      });
      let port: number;
      let stop: () => Promise<void>;
      if (mount === 'listen') {
        const listening = await listen(kit, { port: 0, websocket: false });
        port = listening.port;
        stop = async () => {
          await listening.close();
          await kit.close();
        };
      } else if (mount === 'express') {
        const app = express();
        app.use('/api', mcpkitExpress(kit));
        const httpServer = app.listen(0, '127.0.0.1');
        await new Promise((resolve) => httpServer.once('listening', resolve));
        port = (httpServer.address() as AddressInfo).port;
        stop = async () => {
          await closeHttp(httpServer);
          await kit.close();
        };
      } else {
        const app = Fastify();
        await app.register(mcpkitFastify, { server: kit, prefix: '/api' });
        await app.listen({ port: 0, host: '127.0.0.1' });
        port = (app.server.address() as AddressInfo).port;
        stop = async () => {
          await app.close();
          await kit.close();
        };
      }
      try {
        const client = httpRequest({
          host: '127.0.0.1',
          port,
          path: `${mount === 'listen' ? '' : '/api'}${path}`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
        });
        client.on('error', () => {});
        client.end(JSON.stringify(body));
        await running;
        client.destroy();
        expect(await outcome).toBe('cancelled');
      } finally {
        await stop();
      }
    });
  },
);
