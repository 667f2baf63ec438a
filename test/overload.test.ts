/**
 * Load shedding (issue 17): the `overload` option, the event-loop sampler, and a quick 503 with
 * `Retry-After` on every door (`server.fetch`, `listen()`, Express, Fastify, Hono, the WebSocket
 * upgrade, `/mcp` in both eras, REST) while work already admitted runs to its end.
 *
 * The doors are driven by a load shedder on a clock the test fires (three samples 500 ms late:
 * overloaded; one on time: not), so what they answer does not depend on the machine's speed. The
 * sampler itself is tested on the real clock by blocking the event loop with busy-waits of known
 * length: three blocks of 150 ms make three samples at least 130 ms late whatever the machine (a
 * slower one only makes them later).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { build } from 'esbuild';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { type CreateMcpServerOptions, createMcpServer, LoadShedder, type McpKitServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { mcpkitHono } from 'mcpkit/hono';
import { listen } from 'mcpkit/node';
import { OVERLOAD_DEFAULTS } from 'mcpkit/unstable';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { resolveOverloadOptions, type SamplerClock } from '../src/http/overload.js';
import type { Logger } from '../src/types.js';
import { closeHttp, deferred, fixtureServer, portOf, waitListening } from './fixtures.js';
import { openRaw, refusedStatus } from './websocketHelpers.js';

/** Blocks the event loop for `ms`. */
function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

/**
 * Blocks the event loop for `ms` at a time, letting the sampler's overdue timer fire after each
 * block, until `shedder` reports the sustained delay (three late samples in a row), at most ten
 * times: the order in which a loaded machine fires timers may slip a punctual sample in between.
 */
async function blockUntilOverloaded(shedder: LoadShedder | undefined, ms: number): Promise<void> {
  for (let i = 0; i < 10 && !shedder?.overloaded; i++) {
    busyWait(ms);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** A clock whose one timer fires when the test says, as late as the test says. */
function manualClock() {
  let now = 0;
  let timer: { callback: () => void; due: number } | undefined;
  const clock: SamplerClock = {
    now: () => now,
    setTimeout: (callback, ms) => {
      timer = { callback, due: now + ms };
      return timer;
    },
    clearTimeout: (t) => {
      if (t === timer) timer = undefined;
    },
  };
  return {
    clock,
    get pending() {
      return timer !== undefined;
    },
    advance(ms: number) {
      now += ms;
    },
    /** Fires the pending timer `lateMs` after it was due. */
    fire(lateMs = 0) {
      const t = timer!;
      timer = undefined;
      now = Math.max(now, t.due + lateMs);
      t.callback();
    },
  };
}

const OVERLOAD = { maxEventLoopDelayMs: 100, sampleIntervalMs: 20 };

/** A load shedder on a manual clock, and the way to overload it and to let it recover. */
function drivenShedder() {
  const time = manualClock();
  const shedder = new LoadShedder(OVERLOAD, { clock: time.clock });
  return {
    shedder,
    /** Three samples 500 ms late (the sampler must be running: a request starts it). */
    overload() {
      expect(time.pending).toBe(true);
      for (let i = 0; i < 3; i++) time.fire(500);
      expect(shedder.overloaded).toBe(true);
    },
    /** One sample on time. */
    recover() {
      time.fire(0);
      expect(shedder.overloaded).toBe(false);
    },
  };
}
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
});
const MODERN = {
  headers: {
    ...MCP_HEADERS,
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/list',
  },
  body: JSON.stringify({
    jsonrpc: '2.0',
    id: 2,
    method: 'tools/list',
    params: {
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' },
      },
    },
  }),
};

/** A fixture server with a `slow` tool the test releases. */
function slowServer(overload: CreateMcpServerOptions['overload']) {
  const server = fixtureServer({ overload });
  const gate = deferred<void>();
  const started = deferred<void>();
  server.tools.register({
    name: 'slow',
    description: 'Ends when the test says so',
    handler: async () => {
      started.resolve();
      await gate.promise;
      return 'slow done';
    },
  });
  return { server, gate, started: started.promise };
}

async function expectShedMcp(response: Response): Promise<void> {
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toBe('1');
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(await response.json()).toEqual({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32005, message: 'Server overloaded: try again in 1 s', data: { retryAfterSeconds: 1 } },
  });
}

async function expectShedRest(response: Response): Promise<void> {
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toBe('1');
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  expect(await response.json()).toMatchObject({
    type: 'urn:mcpkit:error:busy',
    status: 503,
    code: 'BUSY',
    detail: 'Server overloaded: try again in 1 s',
    retryAfterSeconds: 1,
    requestId: expect.any(String),
  });
}

// ---------------------------------------------------------------------------------------------
// Every door
// ---------------------------------------------------------------------------------------------

interface Mount {
  /** One request to `path` under the mount. */
  call(path: string, init?: RequestInit): Promise<Response>;
  /** The WebSocket URL of the MCP endpoint, where the mount has one. */
  ws?: string;
  close(): Promise<void>;
}

async function httpMount(
  httpServer: HttpServer,
  prefix: string,
  close?: () => Promise<void>,
): Promise<Mount> {
  await waitListening(httpServer);
  const base = `http://127.0.0.1:${portOf(httpServer)}${prefix}`;
  return {
    call: (p, init) => fetch(`${base}${p}`, init),
    close: close ?? (() => closeHttp(httpServer)),
  };
}

const MOUNTS: Array<{ name: string; start(server: McpKitServer): Promise<Mount> }> = [
  {
    name: 'server.fetch',
    start: async (server) => ({
      call: (p, init) => server.fetch(new Request(`http://localhost${p}`, init)),
      close: async () => {},
    }),
  },
  {
    name: 'listen()',
    start: async (server) => {
      const listening = await listen(server, { port: 0 });
      return {
        call: (p, init) => fetch(`${listening.url}${p}`, init),
        ws: `${listening.url.replace('http', 'ws')}/mcp`,
        close: () => listening.close(),
      };
    },
  },
  {
    name: 'Express',
    start: async (server) => {
      const app = express();
      app.use('/api', mcpkitExpress(server));
      return httpMount(app.listen(0, '127.0.0.1'), '/api');
    },
  },
  {
    name: 'Fastify',
    start: async (server) => {
      const app = Fastify();
      await app.register(mcpkitFastify, { server, prefix: '/api' });
      await app.listen({ port: 0, host: '127.0.0.1' });
      return httpMount(app.server, '/api', async () => {
        app.server.closeAllConnections();
        await app.close();
      });
    },
  },
  {
    name: 'Hono',
    start: async (server) => {
      const app = new Hono();
      app.route('/api', mcpkitHono(server));
      const httpServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as HttpServer;
      return httpMount(httpServer, '/api');
    },
  },
];

describe.each(MOUNTS)('shedding on $name', ({ start }) => {
  it('answers new requests with a quick 503 and Retry-After while admitted work finishes', async () => {
    const driven = drivenShedder();
    const { server, gate, started } = slowServer(driven.shedder);
    const mount = await start(server);
    try {
      // Not overloaded: served. (The first request also starts the sampler.)
      expect((await mount.call('/tools')).status).toBe(200);
      const slowCall = mount.call('/tools/slow/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"arguments":{}}',
      });
      await started;

      driven.overload();
      await expectShedRest(await mount.call('/tools'));
      await expectShedRest(
        await mount.call('/tools/echo/execute', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"arguments":{"text":"hi"}}',
        }),
      );
      await expectShedMcp(
        await mount.call('/mcp', { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE }),
      );
      await expectShedMcp(await mount.call('/mcp', { method: 'POST', ...MODERN }));
      // The liveness probe and the scrape still answer; a DELETE on /mcp is never shed.
      expect((await mount.call('/health')).status).toBe(200);
      const metrics = await (await mount.call('/metrics')).text();
      expect(metrics).toMatch(/^mcpkit_overload_shed_total\{door="rest",reason="event_loop_delay"\} [1-9]/m);
      expect(metrics).toMatch(/^mcpkit_overload_shed_total\{door="mcp",reason="event_loop_delay"\} [1-9]/m);
      expect(metrics).toMatch(/^mcpkit_overloaded 1$/m);
      expect((await mount.call('/mcp', { method: 'DELETE' })).status).not.toBe(503);
      expect(driven.shedder.shedCount).toBe(4);

      // The call admitted before the overload was not shed: it ends with its own answer.
      gate.resolve();
      const slow = await slowCall;
      expect(slow.status).toBe(200);
      expect(await slow.json()).toMatchObject({ content: [{ type: 'text', text: 'slow done' }] });

      driven.recover();
      expect((await mount.call('/tools')).status).toBe(200);
      const init = await mount.call('/mcp', { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE });
      expect(init.status).toBe(200);
      await init.body?.cancel();
    } finally {
      gate.resolve();
      await mount.close();
      await server.close();
    }
  });
});

describe('shedding on the real event loop', () => {
  it('server.fetch answers 503 after the loop stayed blocked, and serves again once it is on time', async () => {
    const server = fixtureServer({ overload: { maxEventLoopDelayMs: 50, sampleIntervalMs: 20 } });
    try {
      expect((await server.fetch(new Request('http://localhost/tools'))).status).toBe(200);
      await blockUntilOverloaded(server.overload, 150);
      await expectShedRest(await server.fetch(new Request('http://localhost/tools')));
      await vi.waitFor(() => expect(server.overload?.overloaded).toBe(false), {
        timeout: 10_000,
        interval: 20,
      });
      expect((await server.fetch(new Request('http://localhost/tools'))).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('shedding the WebSocket upgrade', () => {
  it('refuses the upgrade with 503 and Retry-After while overloaded, and accepts it again after', async () => {
    const driven = drivenShedder();
    const server = fixtureServer({ overload: driven.shedder });
    const listening = await listen(server, { port: 0 });
    const url = `${listening.url.replace('http', 'ws')}/mcp`;
    try {
      expect((await fetch(`${listening.url}/tools`)).status).toBe(200);
      driven.overload();
      const refused = await refusedStatus(url);
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(JSON.parse(refused.body)).toMatchObject({
        error: { code: -32005, data: { retryAfterSeconds: 1 } },
      });
      expect(await (await fetch(`${listening.url}/metrics`)).text()).toMatch(
        /^mcpkit_overload_shed_total\{door="websocket",reason="event_loop_delay"\} 1$/m,
      );
      driven.recover();
      const socket = await openRaw(url);
      socket.terminate();
    } finally {
      await listening.close();
      await server.close();
    }
  });
});

describe('queue wait', () => {
  it('sheds a request that waited in the door’s queue longer than maxQueueWaitMs', async () => {
    const server = fixtureServer({ overload: { maxQueueWaitMs: 250 } });
    try {
      const waited = await server.fetch(new Request('http://localhost/tools'), { queuedMs: 251 });
      await expectShedRest(waited);
      const mcp = await server.fetch(
        new Request('http://localhost/mcp', { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE }),
        { queuedMs: 1_000 },
      );
      await expectShedMcp(mcp);
      expect((await server.fetch(new Request('http://localhost/tools'), { queuedMs: 249 })).status).toBe(200);
      expect(server.metrics.render()).toMatch(
        /^mcpkit_overload_shed_total\{door="rest",reason="queue_wait"\} 1$/m,
      );
    } finally {
      await server.close();
    }
  });

  it('listen() tells fetch how long each request waited in its queue', async () => {
    const server = fixtureServer();
    const seen: Array<number | undefined> = [];
    const fetchOf = server.fetch;
    (server as { fetch: McpKitServer['fetch'] }).fetch = (request, options) => {
      seen.push(options?.queuedMs);
      return fetchOf(request, options);
    };
    const listening = await listen(server, { port: 0, websocket: false });
    try {
      expect((await fetch(`${listening.url}/tools`)).status).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toBeGreaterThanOrEqual(0);
    } finally {
      await listening.close();
    }
  });
});

describe('queue wait under Fastify', () => {
  it('sheds the requests that waited in the plugin’s queue behind a slow one, and serves the rest', async () => {
    const server = fixtureServer({ overload: { maxQueueWaitMs: 150 } });
    const seen: Array<number | undefined> = [];
    const fetchOf = server.fetch;
    (server as { fetch: McpKitServer['fetch'] }).fetch = (request, options) => {
      seen.push(options?.queuedMs);
      // The first request holds the event loop, as a slow synchronous handler would.
      if (seen.length === 1) busyWait(400);
      return fetchOf(request, options);
    };
    const app = Fastify();
    await app.register(mcpkitFastify, { server });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as { port: number }).port;
      // Three requests pipelined in one write reach the plugin in the same turn, so the second and
      // third wait in its queue while the first holds the loop.
      const get = 'GET /tools HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
      const answers = await new Promise<string>((resolve, reject) => {
        const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write(get.repeat(3)));
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          text += chunk;
          if ((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 3 && text.endsWith('}')) {
            socket.destroy();
            resolve(text);
          }
        });
        socket.on('error', reject);
      });
      const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
      expect(statuses).toEqual([200, 503, 503]);
      expect(answers).toMatch(/^retry-after: \d+\r$/im);
      expect(seen.slice(1).every((ms) => ms !== undefined && ms >= 390)).toBe(true);
      expect(server.metrics.render()).toMatch(
        /^mcpkit_overload_shed_total\{door="rest",reason="queue_wait"\} 2$/m,
      );
      // Once nothing waits, the next request is served.
      expect((await fetch(`http://127.0.0.1:${port}/tools`)).status).toBe(200);
    } finally {
      await app.close();
      await server.close();
    }
  });
});

describe('listen() accepting', () => {
  it('listen() takes a backlog (whole numbers 1–65535)', async () => {
    for (const backlog of [0, -1, 1.5, 65_536, Number.NaN]) {
      await expect(listen(fixtureServer(), { port: 0, websocket: false, backlog })).rejects.toThrow(
        /backlog must be an integer from 1 to 65535/,
      );
    }
    const server = fixtureServer();
    const listening = await listen(server, { port: 0, websocket: false, backlog: 64 });
    try {
      expect((await fetch(`${listening.url}/tools`)).status).toBe(200);
    } finally {
      await listening.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The option and the sampler
// ---------------------------------------------------------------------------------------------

describe('the overload option', () => {
  it('is on by default, off with false, and overridable key by key', async () => {
    const byDefault = createMcpServer({ logLevel: 'silent' });
    expect(byDefault.overload?.options).toEqual(OVERLOAD_DEFAULTS);
    expect(OVERLOAD_DEFAULTS).toEqual({
      maxEventLoopDelayMs: 200,
      maxQueueWaitMs: 500,
      retryAfterSeconds: 1,
      sampleIntervalMs: 20,
    });
    expect(createMcpServer({ logLevel: 'silent', overload: true }).overload?.options).toEqual(
      OVERLOAD_DEFAULTS,
    );
    const off = createMcpServer({ logLevel: 'silent', overload: false });
    expect(off.overload).toBeUndefined();
    // Off: nothing is shed, whatever a queue says, and no metric is registered.
    expect((await off.fetch(new Request('http://localhost/tools'), { queuedMs: 1e9 })).status).toBe(200);
    expect(off.metrics.render()).not.toMatch(/mcpkit_overload/);
    const tuned = createMcpServer({ logLevel: 'silent', overload: { retryAfterSeconds: 7 } });
    expect(tuned.overload?.options).toEqual({ ...OVERLOAD_DEFAULTS, retryAfterSeconds: 7 });
    const shed = await tuned.fetch(new Request('http://localhost/tools'), { queuedMs: 10_000 });
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('7');
    await Promise.all([byDefault.close(), off.close(), tuned.close()]);
  });

  it.each([
    [{ maxEventLoopDelay: 100 }, /overload\.maxEventLoopDelay is not an option/],
    [
      { maxEventLoopDelayMs: 0 },
      /overload\.maxEventLoopDelayMs must be a positive number of milliseconds \(got 0\)/,
    ],
    [{ maxEventLoopDelayMs: -5 }, /maxEventLoopDelayMs must be a positive number/],
    [{ maxEventLoopDelayMs: Number.NaN }, /maxEventLoopDelayMs must be a positive number/],
    [{ maxEventLoopDelayMs: Number.POSITIVE_INFINITY }, /maxEventLoopDelayMs must be a positive number/],
    [{ maxEventLoopDelayMs: '200' }, /maxEventLoopDelayMs must be a positive number .*\(got "200"\)/],
    [{ maxQueueWaitMs: 0 }, /overload\.maxQueueWaitMs must be a positive number/],
    [{ maxQueueWaitMs: 2 ** 31 }, /overload\.maxQueueWaitMs must be a positive number/],
    [{ retryAfterSeconds: 0 }, /overload\.retryAfterSeconds must be a whole number from 1 to 3600 \(got 0\)/],
    [{ retryAfterSeconds: 1.5 }, /retryAfterSeconds must be a whole number/],
    [{ retryAfterSeconds: 3601 }, /retryAfterSeconds must be a whole number/],
    [
      { sampleIntervalMs: 5 },
      /overload\.sampleIntervalMs must be a whole number of milliseconds from 10 to 10000/,
    ],
    [{ sampleIntervalMs: 10.5 }, /sampleIntervalMs must be a whole number/],
    ['yes', /overload must be false or \{ maxEventLoopDelayMs/],
    [null, /overload must be false or/],
    [[], /overload must be false or/],
  ])('refuses %j', (overload, message) => {
    expect(() => createMcpServer({ logLevel: 'silent', overload: overload as never })).toThrow(TypeError);
    expect(() => createMcpServer({ logLevel: 'silent', overload: overload as never })).toThrow(message);
  });

  it('names a long unknown key by a short prefix only', () => {
    const key = `x${'y'.repeat(500)}`;
    let message = '';
    try {
      resolveOverloadOptions({ [key]: 1 } as never);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/is not an option/);
    expect(message.length).toBeLessThan(200);
  });
});

function recordingLogger(): Logger & { warnings: unknown[][] } {
  const warnings: unknown[][] = [];
  const noop = () => {};
  const logger = {
    warnings,
    trace: noop,
    debug: noop,
    info: noop,
    warn: (...args: unknown[]) => warnings.push(args),
    error: noop,
    fatal: noop,
    child: () => logger,
  };
  return logger as never;
}

describe('the sampler', () => {
  const options = { maxEventLoopDelayMs: 100, sampleIntervalMs: 20 };

  it('starts with the first request, sheds while the loop stays late, serves again once on time', () => {
    const time = manualClock();
    const shedder = new LoadShedder(options, { logger: recordingLogger(), clock: time.clock });
    expect(shedder.sampling).toBe(false);
    expect(time.pending).toBe(false);
    expect(shedder.check(undefined)).toBeUndefined();
    expect(shedder.sampling).toBe(true);
    // One long stretch (a GC pause, a big synchronous step) sheds nothing once it is over...
    time.fire(2_000);
    expect(shedder.eventLoopDelayMs).toBe(0);
    time.fire(0);
    time.fire(0);
    time.fire(300);
    expect(shedder.eventLoopDelayMs).toBe(0);
    expect(shedder.check(undefined)).toBeUndefined();
    // ...a loop that stays late does: the delay is the smallest of the last three samples.
    time.fire(250);
    time.fire(400);
    expect(shedder.eventLoopDelayMs).toBe(250);
    expect(shedder.overloaded).toBe(true);
    expect(shedder.check(undefined)).toBe('event_loop_delay');
    expect(shedder.check(10)).toBe('event_loop_delay');
    // One sample on time ends it.
    time.fire(5);
    expect(shedder.eventLoopDelayMs).toBe(5);
    expect(shedder.overloaded).toBe(false);
    expect(shedder.check(undefined)).toBeUndefined();
    // A request that waited in its door's queue too long is shed whatever the loop does.
    expect(shedder.check(501)).toBe('queue_wait');
    expect(shedder.check(500)).toBeUndefined();
  });

  it('stops after 10 s without a request, and starts again with the next', () => {
    const time = manualClock();
    const shedder = new LoadShedder(options, { clock: time.clock });
    shedder.check(undefined);
    for (let i = 0; i < 3; i++) time.fire(500);
    expect(shedder.eventLoopDelayMs).toBe(500);
    let fired = 0;
    while (time.pending && fired < 10_000) {
      time.fire(0);
      fired++;
    }
    expect(fired).toBeGreaterThan(400); // about 10 s of 20 ms samples
    expect(shedder.sampling).toBe(false);
    expect(shedder.eventLoopDelayMs).toBe(0);
    shedder.check(undefined);
    expect(shedder.sampling).toBe(true);
  });

  it('stops for good on close', () => {
    const time = manualClock();
    const shedder = new LoadShedder(options, { clock: time.clock });
    shedder.check(undefined);
    for (let i = 0; i < 3; i++) time.fire(500);
    expect(shedder.overloaded).toBe(true);
    shedder.close();
    expect(time.pending).toBe(false);
    expect(shedder.sampling).toBe(false);
    expect(shedder.overloaded).toBe(false);
    expect(shedder.check(undefined)).toBeUndefined();
    expect(time.pending).toBe(false);
  });

  it('logs shedding at most once every 10 s, with the count since the last line', () => {
    const time = manualClock();
    const logger = recordingLogger();
    const shedder = new LoadShedder(options, { logger, clock: time.clock });
    for (let i = 0; i < 1000; i++) shedder.shed('rest', 'event_loop_delay', undefined);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]![0]).toMatchObject({ shed: 1, door: 'rest', reason: 'event_loop_delay' });
    time.advance(10_000);
    shedder.shed('mcp', 'queue_wait', 812.4);
    expect(logger.warnings).toHaveLength(2);
    expect(logger.warnings[1]![0]).toEqual({
      shed: 1000,
      door: 'mcp',
      reason: 'queue_wait',
      eventLoopDelayMs: 0,
      queuedMs: 812,
    });
    expect(shedder.shedCount).toBe(1001);
  });

  it('measures a blocked event loop on the real clock', async () => {
    const shedder = new LoadShedder({ maxEventLoopDelayMs: 50, sampleIntervalMs: 20 });
    try {
      shedder.check(undefined);
      await blockUntilOverloaded(shedder, 150);
      expect(shedder.eventLoopDelayMs).toBeGreaterThanOrEqual(100);
      expect(shedder.check(undefined)).toBe('event_loop_delay');
      await vi.waitFor(() => expect(shedder.overloaded).toBe(false), { timeout: 10_000, interval: 20 });
    } finally {
      shedder.close();
    }
  });

  it('a shedder passed in is the caller’s: closing the servers leaves it running', async () => {
    const shared = new LoadShedder();
    const a = createMcpServer({ logLevel: 'silent', overload: shared });
    const b = createMcpServer({ logLevel: 'silent', overload: shared });
    expect(a.overload).toBe(shared);
    expect(b.overload).toBe(shared);
    await a.fetch(new Request('http://localhost/tools'));
    await Promise.all([a.close(), b.close()]);
    expect(shared.sampling).toBe(true);
    shared.close();
    expect(shared.sampling).toBe(false);
  });

  it('the running sampler does not hold the process open (a timer that is not counted as active)', () => {
    const shedder = new LoadShedder(options);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    shedder.check(undefined);
    expect(shedder.sampling).toBe(true);
    expect(timers()).toBe(before);
    shedder.close();
    expect(shedder.sampling).toBe(false);
  });

  it('server.close() stops it', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    await server.fetch(new Request('http://localhost/tools'));
    expect(server.overload?.sampling).toBe(true);
    await server.close();
    expect(server.overload?.sampling).toBe(false);
    await server.fetch(new Request('http://localhost/health'));
    await server.fetch(new Request('http://localhost/tools'));
    expect(server.overload?.sampling).toBe(false);
  });
});

describe('a process whose sampler runs', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('exits by itself', { timeout: 30_000 }, async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-overload-'));
    const bundle = path.join(dir, 'sampler.mjs');
    await build({
      entryPoints: [path.join(root, 'test/fixtures/overloadSampler.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      logLevel: 'silent',
      // the bundle's CommonJS dependencies need a require
      banner: {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
    const child = spawn(process.execPath, [bundle], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    // A timer that held the process would keep it running for good: it is ended after 20 s (it
    // normally exits within a second of starting), and the test fails.
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let killed = false;
    const guard = setTimeout(() => {
      killed = true;
      child.kill();
    }, 20_000);
    const code = await exited;
    clearTimeout(guard);
    expect(killed).toBe(false);
    expect(out).toBe('sampling\n');
    expect(code).toBe(0);
  });
});
