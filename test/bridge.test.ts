/**
 * The Node bridge's web request: its body stays in the Node stream until something asks for it, and
 * then behaves as any `Request` body would; its signal aborts when the client leaves, whenever it is
 * first asked for.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpServer } from 'mcpkit';
import { toNodeListener, toWebRequest } from 'mcpkit/node';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyTextOf, textResponse } from '../src/http/bodyText.js';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(handler: (request: Request) => Promise<Response>): Promise<string> {
  server = createServer(toNodeListener(handler));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const BODY = JSON.stringify({ greeting: 'hello', list: [1, 2, 3] });

describe('the web request of the Node bridge', () => {
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
