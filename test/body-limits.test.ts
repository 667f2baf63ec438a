/**
 * Request bodies on real sockets: over the limit (declared, chunked without a length, or behind a
 * lying `Content-Length`) they are refused while still arriving, never buffered whole; bodies that
 * stall or drip forever get 408 after `http.bodyTimeoutMs`; and the server keeps serving. Timing
 * bounds are generous: they only tell "promptly" from "after the whole body" or "never".
 */
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { ERROR_CODES, type McpKitErrorCode, type McpKitServer } from 'mcpkit';
import { mcpkitHono } from 'mcpkit/hono';
import { listen } from 'mcpkit/node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { fixtureServer } from './fixtures.js';

const LIMIT = 1024 * 1024;
const BODY_TIMEOUT_MS = 300;
/** What a client tries to send past the limit: 50 times the limit. */
const HUGE = 50 * LIMIT;
/** "Promptly": far below what sending `HUGE` through a paused socket, or waiting forever, would take. */
const PROMPT_MS = 10_000;

interface Exchange {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from connecting to the whole response. */
  elapsedMs: number;
  /** Body bytes the client had handed to its socket when the response was complete. */
  sentWhenAnswered: number;
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>;
}

type Writer = (socket: Socket, state: { answered: boolean; sent: number }) => Promise<void>;

/** One raw HTTP/1.1 exchange: `head` (request line and headers), then `write` sends the body. */
function exchange(port: number, head: string, write: Writer): Promise<Exchange> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const started = performance.now();
  const state = { answered: false, sent: 0 };
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise<Exchange>((resolve, reject) => {
    let raw = Buffer.alloc(0);
    const tryParse = () => {
      const end = raw.indexOf('\r\n\r\n');
      if (end === -1) return;
      const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (raw.length - end - 4 < length) return;
      if (state.answered) return;
      state.answered = true;
      resolve({
        status,
        headers,
        body: raw.subarray(end + 4, end + 4 + length).toString('utf8'),
        elapsedMs: performance.now() - started,
        sentWhenAnswered: state.sent,
        closed,
      });
    };
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk]);
      tryParse();
    });
    socket.once('close', () => {
      if (!state.answered) reject(new Error(`connection closed without a full response: ${raw.toString()}`));
    });
    socket.once('connect', () => {
      socket.write(head);
      write(socket, state).catch(() => {});
    });
  });
}

/** Waits until the socket can take more, the response has arrived, or the socket is gone. */
function writable(socket: Socket, state: { answered: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (state.answered || socket.destroyed) done();
    }, 10);
    const done = () => {
      clearInterval(timer);
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}

/** Sends `total` bytes of `x`, respecting backpressure, until answered; chunked framing if asked. */
function flood(total: number, chunked: boolean): Writer {
  const piece = Buffer.alloc(64 * 1024, 'x');
  return async (socket, state) => {
    while (state.sent < total && !state.answered && !socket.destroyed) {
      const data = chunked
        ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
        : piece;
      state.sent += piece.length;
      if (!socket.write(data)) await writable(socket, state);
    }
  };
}

/** Sends `prefix`, then nothing more, ever. */
function stall(prefix: string): Writer {
  return async (socket, state) => {
    socket.write(prefix);
    state.sent += Buffer.byteLength(prefix);
  };
}

/** Sends one byte every `everyMs` (chunked), forever. */
function drip(everyMs: number): Writer {
  return async (socket, state) => {
    while (!state.answered && !socket.destroyed) {
      socket.write('1\r\n \r\n');
      state.sent += 1;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  };
}

function headOf(path: string, headers: Record<string, string>): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: localhost', 'Content-Type: application/json'];
  if (path === '/mcp') lines.push('Accept: application/json, text/event-stream');
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The error body each door answers with: JSON-RPC on `/mcp`, a problem on REST. */
function expectErrorBody(path: string, result: Exchange, status: number, restCode: string): void {
  expect(result.status).toBe(status);
  const body = JSON.parse(result.body);
  if (path === '/mcp') {
    expect(result.headers['content-type']).toContain('application/json');
    // One code, one meaning: the JSON-RPC code is the one the REST problem's code maps to.
    expect(body).toMatchObject({
      jsonrpc: '2.0',
      id: null,
      error: { code: ERROR_CODES[restCode as McpKitErrorCode].jsonRpc },
    });
  } else {
    expect(result.headers['content-type']).toContain('application/problem+json');
    expect(body).toMatchObject({ status, code: restCode });
  }
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

/** A server on a real port: mcpkit's own `listen()`, or Hono on `@hono/node-server` (its own reader). */
interface Mounted {
  port: number;
  url: string;
  close(): Promise<void>;
}

async function mount(kind: 'listen' | 'hono', server: McpKitServer): Promise<Mounted> {
  if (kind === 'listen') {
    const listening = await listen(server, { port: 0, websocket: false });
    return { port: listening.port, url: listening.url, close: () => listening.close() };
  }
  const app = new Hono();
  app.route('/', mcpkitHono(server));
  return serveHono(app);
}

/** `app` on `@hono/node-server`, port 0; closing it drops its connections too. */
function serveHono(app: Hono): Promise<Mounted> {
  return new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => {
      const port = (s.address() as AddressInfo).port;
      const close = () =>
        new Promise<void>((done) => {
          s.close(() => done());
          (s as unknown as { closeAllConnections?(): void }).closeAllConnections?.();
        });
      resolve({ port, url: `http://127.0.0.1:${port}`, close });
    });
  });
}

/** POSTs `args` to the echo tool's REST route of `m`. */
function echo(m: Mounted, args: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${m.url}/tools/echo/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ arguments: args }),
    ...init,
  });
}

describe.each([
  ['listen', '/mcp'],
  ['listen', '/tools/echo/execute'],
  ['hono', '/mcp'],
  ['hono', '/tools/echo/execute'],
] as const)('body limits on a real socket, %s: POST %s', (kind, path) => {
  let server: McpKitServer;
  let listening: Mounted;
  beforeAll(async () => {
    server = fixtureServer({ http: { maxBodyBytes: LIMIT, bodyTimeoutMs: BODY_TIMEOUT_MS } });
    listening = await mount(kind, server);
  });
  afterAll(async () => {
    const health = await fetch(`${listening.url}/health`);
    expect(health.status).toBe(200);
    await listening.close();
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const result = await exchange(
      listening.port,
      headOf(path, { 'Content-Length': String(HUGE) }),
      flood(HUGE, false),
    );
    expectErrorBody(path, result, 413, 'PAYLOAD_TOO_LARGE');
    expect(result.elapsedMs).toBeLessThan(PROMPT_MS);
    expect(result.sentWhenAnswered).toBeLessThan(HUGE);
    expect(await within(result.closed, 5_000)).toBe(true);
  });

  it('refuses a chunked body without Content-Length as soon as it passes the limit', async () => {
    const result = await exchange(
      listening.port,
      headOf(path, { 'Transfer-Encoding': 'chunked' }),
      flood(HUGE, true),
    );
    expectErrorBody(path, result, 413, 'PAYLOAD_TOO_LARGE');
    expect(result.elapsedMs).toBeLessThan(PROMPT_MS);
    // answered while the client was still writing: the server did not wait for (or keep) 50 MB
    expect(result.sentWhenAnswered).toBeLessThan(HUGE);
    expect(await within(result.closed, 5_000)).toBe(true);
  });

  it('is not fooled by a lying Content-Length (10 bytes declared, 10 MB sent)', async () => {
    const result = await exchange(
      listening.port,
      headOf(path, { 'Content-Length': '10' }),
      async (socket, state) => {
        socket.write('{"a":1234}');
        state.sent += 10;
        await flood(10 * LIMIT, false)(socket, state);
      },
    );
    // The 10 declared bytes are the body; what follows is not HTTP: node:http's parser fails at
    // once, listen() answers 400 (in the form of the route the request named; under Hono, the
    // host's own 400) and closes, and nothing past the 10 bytes is read as body.
    if (kind === 'listen') expectErrorBody(path, result, 400, 'INVALID_REQUEST');
    else expect(result.status).toBe(400);
    expect(result.elapsedMs).toBeLessThan(PROMPT_MS);
    expect(await within(result.closed, 5_000)).toBe(true);
  });

  it('answers 408 to a body that stalls, and closes the connection', async () => {
    const result = await exchange(
      listening.port,
      headOf(path, { 'Content-Length': '1000' }),
      stall('{"argumen'),
    );
    expectErrorBody(path, result, 408, 'REQUEST_TIMEOUT');
    expect(result.elapsedMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
    expect(result.elapsedMs).toBeLessThan(PROMPT_MS);
    expect(result.headers.connection).toBe('close');
    expect(await within(result.closed, 5_000)).toBe(true);
  });

  it('answers 408 to a chunked body that drips forever', async () => {
    const result = await exchange(listening.port, headOf(path, { 'Transfer-Encoding': 'chunked' }), drip(20));
    expectErrorBody(path, result, 408, 'REQUEST_TIMEOUT');
    expect(result.elapsedMs).toBeLessThan(PROMPT_MS);
    expect(await within(result.closed, 5_000)).toBe(true);
  });

  it('still serves a normal request on a new connection', async () => {
    const res =
      path === '/mcp'
        ? await fetch(`${listening.url}/mcp`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
            body: JSON.stringify({
              jsonrpc: '2.0',
              id: 1,
              method: 'initialize',
              params: {
                protocolVersion: '2025-11-25',
                capabilities: {},
                clientInfo: { name: 't', version: '1' },
              },
            }),
          })
        : await fetch(`${listening.url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ arguments: { text: 'still here' } }),
          });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(path === '/mcp' ? 'protocolVersion' : 'still here');
  });
});

describe('body limits in process (web streams, no Node bridge)', () => {
  const server = fixtureServer({ http: { maxBodyBytes: LIMIT, bodyTimeoutMs: BODY_TIMEOUT_MS } });
  afterAll(() => server.close());

  function post(path: string, body: ReadableStream<Uint8Array>): Promise<Response> {
    return server.fetch(
      new Request(`http://localhost${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body,
        duplex: 'half',
      } as RequestInit),
    );
  }

  for (const path of ['/mcp', '/tools/echo/execute']) {
    it(`${path}: an endless stream gets 413 after about the limit, and is cancelled`, async () => {
      let pulled = 0;
      let cancelled = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 64 * 1024;
          controller.enqueue(new Uint8Array(64 * 1024));
        },
        cancel() {
          cancelled = true;
        },
      });
      const res = await post(path, body);
      expect(res.status).toBe(413);
      expect(pulled).toBeLessThan(2 * LIMIT);
      expect(cancelled).toBe(true);
    });

    it(`${path}: a stream that never ends gets 408`, async () => {
      const started = performance.now();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"arg'));
        },
      });
      const res = await post(path, body);
      expect(res.status).toBe(408);
      expect(performance.now() - started).toBeLessThan(PROMPT_MS);
      const json = await res.json();
      if (path === '/mcp') expect(json.error.message).toContain(`${BODY_TIMEOUT_MS} ms`);
      else expect(json).toMatchObject({ status: 408, code: 'REQUEST_TIMEOUT', title: 'Request timeout' });
    });
  }

  it('refuses a bad http.bodyTimeoutMs', () => {
    for (const bodyTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(() => fixtureServer({ http: { bodyTimeoutMs } })).toThrow(/http\.bodyTimeoutMs/);
    }
  });
});

describe('listen() node:http timeouts', () => {
  it('sets headers and request timeouts by default, derived from http.bodyTimeoutMs', async () => {
    const server = fixtureServer({ http: { bodyTimeoutMs: 5_000 } });
    const listening = await listen(server, { port: 0, websocket: false });
    try {
      expect(listening.httpServer.headersTimeout).toBe(30_000);
      expect(listening.httpServer.requestTimeout).toBe(35_000);
    } finally {
      await listening.close();
    }
    await expect(
      listen(fixtureServer(), { port: 0, websocket: false, headersTimeoutMs: -1 }),
    ).rejects.toThrow(/headersTimeoutMs/);
  });

  it('closes a connection whose headers never finish', async () => {
    const server = fixtureServer();
    const listening = await listen(server, { port: 0, websocket: false, headersTimeoutMs: 500 });
    try {
      const socket = connect(listening.port, '127.0.0.1');
      socket.on('error', () => {});
      let received = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString();
      });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
      expect(await within(closed, PROMPT_MS)).toBe(true);
      expect(received).toMatch(/^HTTP\/1\.1 408/);
      expect((await fetch(`${listening.url}/health`)).status).toBe(200);
    } finally {
      await listening.close();
    }
  });
});

describe('Hono on @hono/node-server: a body a middleware read first', () => {
  it('is still served (mcpkit reads it from the request Hono rebuilt, not from the socket)', async () => {
    const server = fixtureServer({ http: { maxBodyBytes: LIMIT, bodyTimeoutMs: BODY_TIMEOUT_MS } });
    const app = new Hono();
    const seen: unknown[] = [];
    app.use('*', async (c, next) => {
      if (c.req.method === 'POST') seen.push(await c.req.json());
      await next();
    });
    app.route('/', mcpkitHono(server));
    const mounted = await serveHono(app);
    onTestFinished(() => mounted.close());
    const rest = await echo(mounted, { text: 'read twice' });
    expect(rest.status).toBe(200);
    expect(await rest.text()).toContain('read twice');
    expect(seen).toEqual([{ arguments: { text: 'read twice' } }]);
  });
});

describe('Hono on @hono/node-server: a body a middleware read through a clone', () => {
  it('is still served (the Node request is drained already: mcpkit reads the web stream)', async () => {
    const server = fixtureServer({ http: { maxBodyBytes: LIMIT, bodyTimeoutMs: BODY_TIMEOUT_MS } });
    const app = new Hono();
    const seen: string[] = [];
    app.use('*', async (c, next) => {
      // A logging middleware's habit: read a copy, leave the request itself unread.
      if (c.req.method === 'POST') seen.push(await c.req.raw.clone().text());
      await next();
    });
    app.route('/', mcpkitHono(server));
    const mounted = await serveHono(app);
    onTestFinished(() => mounted.close());
    const rest = await echo(mounted, { text: 'read by a clone' });
    expect(await rest.text()).toContain('read by a clone');
    expect(rest.status).toBe(200);
    expect(seen).toEqual([JSON.stringify({ arguments: { text: 'read by a clone' } })]);
  });
});

describe('Hono on @hono/node-server: a clone a middleware reads after mcpkit answered', () => {
  it('still gets the body, and the answer goes out', async () => {
    const server = fixtureServer({ http: { maxBodyBytes: LIMIT, bodyTimeoutMs: BODY_TIMEOUT_MS } });
    const app = new Hono();
    const seen: string[] = [];
    app.use('*', async (c, next) => {
      // A logging middleware's other habit: copy the request first, read the copy afterwards.
      const copy = c.req.method === 'POST' ? c.req.raw.clone() : undefined;
      await next();
      if (copy) seen.push(await copy.text());
    });
    app.route('/', mcpkitHono(server));
    const mounted = await serveHono(app);
    onTestFinished(() => mounted.close());
    const rest = echo(mounted, { text: 'copied first' }, { signal: AbortSignal.timeout(5000) }).then(
      async (response) => ({ status: response.status, text: await response.text() }),
    );
    await expect(rest).resolves.toMatchObject({ status: 200, text: expect.stringContaining('copied first') });
    expect(seen).toEqual([JSON.stringify({ arguments: { text: 'copied first' } })]);
  });
});
