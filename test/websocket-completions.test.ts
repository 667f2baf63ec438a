/**
 * Completions over WebSocket (subprotocol `mcpkit.completions` on the door of `listen()` and
 * `attachWebSocket`), against the loopback model server and real sockets: many completions on one
 * socket, the SSE stream's events, cancel of one, a socket closed mid-stream, a reader that stops
 * reading, malformed and repeated frames, and the policy (keys, permissions, rate limits, audit).
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createMcpServer, type McpKitServer, MemoryAuditSink } from 'mcpkit';
import {
  CompletionStreamError,
  type CompletionStreamEvent,
  connectCompletions,
  readCompletionEvents,
  type WebSocketConstructor,
} from 'mcpkit/client';
import { mcpkitExpress } from 'mcpkit/express';
import {
  attachWebSocket,
  COMPLETIONS_SUBPROTOCOL,
  type CompletionSocket,
  type Listening,
  listen,
  toNodeListener,
} from 'mcpkit/node';
import { createModelServer, type ModelServer, type ModelTurn } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
import * as clientEntry from '../src/client/index.js';
import { closeOf, openRaw, refusedStatus } from './websocketHelpers.js';

const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };
const USER_KEY = 'user-key-0123456789abcdef0123';
const VIEWER_KEY = 'viewer-key-0123456789abcdef012';
const WS = WebSocket as unknown as WebSocketConstructor;

let model: ModelServer | undefined;
let server: McpKitServer | undefined;
let listening: Listening | undefined;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await listening?.close();
  await server?.close();
  await model?.close();
  listening = undefined;
  server = undefined;
  model = undefined;
});

/** The last user message of a model request: the test's way to tell concurrent completions apart. */
function promptOf(request: { body: { messages: Array<{ role: string; content: unknown }> } }): string {
  const users = request.body.messages.filter((m) => m.role === 'user');
  return String(users.at(-1)?.content ?? '');
}

interface Setup {
  fallback?: (prompt: string) => ModelTurn;
  policy?: Parameters<typeof createMcpServer>[0];
  completions?: Record<string, number>;
  chunkSize?: number;
}

/** A server whose completions use the loopback model, served by listen() on port 0. */
async function start(setup: Setup = {}): Promise<{ url: string; sockets: CompletionSocket[] }> {
  const fallback = setup.fallback ?? ((prompt: string) => ({ text: `answer to ${prompt}` }));
  model = await createModelServer({
    fallback: (request) => fallback(promptOf(request)),
    ...(setup.chunkSize !== undefined && { chunkSize: setup.chunkSize }),
  });
  const base = `${model.url}/v1`;
  server = createMcpServer({
    logLevel: 'silent',
    outbound: LOOPBACK,
    completions: { resolveModel: () => ({ provider: 'openai', model: 'loop', apiKey: 'k', baseUrl: base }) },
    ...setup.policy,
  });
  server.tools.register({
    name: 'add',
    inputSchema: { a: z.number(), b: z.number() },
    handler: ({ a, b }) => ({ sum: a + b }),
  });
  server.tools.register({ name: 'big', handler: () => 'x'.repeat(90_000) });
  const sockets: CompletionSocket[] = [];
  listening = await listen(server, {
    port: 0,
    websocket: {
      ...(setup.completions && { completions: setup.completions }),
      onCompletionSocket: (socket) => sockets.push(socket),
    },
  });
  return { url: `${listening.url.replace(/^http/, 'ws')}/mcp`, sockets };
}

async function collect(stream: AsyncIterable<CompletionStreamEvent>): Promise<CompletionStreamEvent[]> {
  const events: CompletionStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const textOf = (events: CompletionStreamEvent[]) =>
  events.map((e) => (e.type === 'text' ? e.delta : '')).join('');

/** Frames a raw socket receives, parsed. */
function framesOf(socket: WebSocket): Array<{ id: string | null; event: string; data: any }> {
  const frames: Array<{ id: string | null; event: string; data: any }> = [];
  socket.on('message', (data) => frames.push(JSON.parse(String(data))));
  return frames;
}

/** The status a raw upgrade offering `protocols` (a header value, sent as is) is answered with. */
function upgradeStatus(url: string, protocols: string): Promise<number> {
  const target = new URL(url.replace(/^ws/, 'http'));
  return new Promise((resolve, reject) => {
    const req = httpRequest(target, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
        'sec-websocket-protocol': protocols,
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('completions over WebSocket', () => {
  it('names the same subprotocol on both sides of the wire', () => {
    expect(clientEntry.COMPLETIONS_SUBPROTOCOL).toBe(COMPLETIONS_SUBPROTOCOL);
  });

  it('streams many completions at once on one socket, each under its own id', async () => {
    const { url } = await start({ fallback: (prompt) => ({ text: `answer to ${prompt}`, chunkDelayMs: 2 }) });
    const client = await connectCompletions(url, { WebSocket: WS });
    cleanups.push(() => client.close());
    const prompts = Array.from({ length: 8 }, (_, i) => `question ${i}`);
    const streams = prompts.map((p) => client.stream({ messages: [{ role: 'user', content: p }] }));
    expect(client.active).toBe(8);
    const all = await Promise.all(streams.map((s) => collect(s)));
    for (const [i, events] of all.entries()) {
      expect(events[0]!.type).toBe('start');
      expect(events.at(-1)!.type).toBe('done');
      expect(textOf(events)).toBe(`answer to question ${i}`);
      const job = await streams[i]!.result;
      expect(job).toMatchObject({ status: 'succeeded', output: `answer to question ${i}` });
      expect(events[0]).toMatchObject({ type: 'start', id: job.id });
    }
    expect(client.active).toBe(0);
    expect(model!.requests).toHaveLength(8);
  });

  it('carries the events of the SSE stream, read by the same parser', async () => {
    const { url } = await start();
    const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] });
    // The model calls `add` on the first turn of each run, and answers on the second.
    model!.enqueue({ toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] }, { text: 'sum is 5' });
    const sse = await fetch(`${listening!.url}/completions/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ask('go')),
    });
    const overSse = await collect(readCompletionEvents(sse));
    model!.enqueue({ toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] }, { text: 'sum is 5' });
    const client = await connectCompletions(url, { WebSocket: WS });
    cleanups.push(() => client.close());
    const overWs = await collect(client.stream(ask('go')));
    const shape = (events: CompletionStreamEvent[]) =>
      events.map((e) => (e.type === 'tool_result' ? `${e.type}:${e.name}:${e.result}` : e.type));
    expect(shape(overWs)).toEqual(shape(overSse));
    expect(shape(overWs)).toEqual(
      expect.arrayContaining(['start', 'tool_call', 'tool_result:add:{"sum":5}', 'usage', 'text', 'done']),
    );
    expect(textOf(overWs)).toBe('sum is 5');
  });

  it('reads a refused SSE start as one error event, as the socket reports it', async () => {
    await start();
    const response = await fetch(`${listening!.url}/completions/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: 'not a list' }),
    });
    const events = await collect(readCompletionEvents(response));
    expect(events).toEqual([{ type: 'error', code: 'INVALID_ARGUMENT', message: expect.any(String) }]);
    // Without a WebSocket (Node 20, or a runtime that lacks one) the client says what to pass.
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    delete global.WebSocket;
    try {
      await expect(connectCompletions('ws://127.0.0.1:1/mcp')).rejects.toThrow(/WebSocket implementation/);
    } finally {
      if (saved !== undefined) global.WebSocket = saved;
    }
  });

  it('cancels one completion; the socket and its other completions go on', async () => {
    const long = 'word '.repeat(60);
    const { url } = await start({ fallback: () => ({ text: long, chunkDelayMs: 10 }) });
    const client = await connectCompletions(url, { WebSocket: WS });
    cleanups.push(() => client.close());
    const first: CompletionStreamEvent[] = [];
    const cancelled = client.stream(
      { messages: [{ role: 'user', content: 'a' }] },
      { onEvent: (e) => first.push(e) },
    );
    const kept = client.stream({ messages: [{ role: 'user', content: 'b' }] });
    await until(() => first.some((e) => e.type === 'text'), 'the first text');
    cancelled.cancel();
    const job = await cancelled.result;
    expect(job.status).toBe('cancelled');
    expect(server!.completions.get(job.id)!.status).toBe('cancelled');
    await until(() => model!.requests.filter((r) => r.aborted).length === 1, 'the model request to abort');
    expect((await kept.result).output).toBe(long);
    // A cancel of a finished stream changes nothing, and the socket serves new completions.
    cancelled.cancel();
    expect((await client.stream({ messages: [{ role: 'user', content: 'c' }] }).result).status).toBe(
      'succeeded',
    );
  }, 20_000);

  it('settles a cancel sent before the start was admitted as a cancelled job', async () => {
    const { url } = await start();
    const socket = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    cleanups.push(() => socket.terminate());
    const frames = framesOf(socket);
    socket.send(
      JSON.stringify({ type: 'start', id: 'r', request: { messages: [{ role: 'user', content: 'x' }] } }),
    );
    socket.send(JSON.stringify({ type: 'cancel', id: 'r' }));
    socket.send(JSON.stringify({ type: 'cancel', id: 'r' }));
    socket.send(JSON.stringify({ type: 'cancel', id: 'never-started' }));
    await until(() => frames.some((f) => f.event === 'done'), 'done');
    const done = frames.find((f) => f.event === 'done')!;
    expect(done).toMatchObject({ id: 'r', data: { job: { status: 'cancelled' } } });
    // Nothing answers the cancels of streams that are over or never were.
    expect(frames.filter((f) => f.event === 'error')).toEqual([]);
  });

  it('refuses a repeated id while its stream runs, without touching that stream', async () => {
    const { url } = await start({ fallback: () => ({ text: 'slow answer here', chunkDelayMs: 20 }) });
    const socket = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    cleanups.push(() => socket.terminate());
    const frames = framesOf(socket);
    const frame = JSON.stringify({
      type: 'start',
      id: 'dup',
      request: { messages: [{ role: 'user', content: 'x' }] },
    });
    socket.send(frame);
    socket.send(frame);
    await until(() => frames.some((f) => f.event === 'done'), 'done');
    expect(frames.filter((f) => f.event === 'start')).toHaveLength(1);
    expect(frames.find((f) => f.event === 'error')).toMatchObject({
      id: null,
      data: { code: 'INVALID_REQUEST', streamId: 'dup' },
    });
    expect(frames.find((f) => f.event === 'done')).toMatchObject({
      id: 'dup',
      data: { job: { status: 'succeeded' } },
    });
    // Once the stream is over its id may be used again.
    socket.send(frame);
    await until(() => frames.filter((f) => f.event === 'done').length === 2, 'the second done');
    expect(model!.requests).toHaveLength(2);
  });

  it('answers malformed frames with errors and keeps the socket open', async () => {
    const { url } = await start();
    const socket = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    cleanups.push(() => socket.terminate());
    const frames = framesOf(socket);
    const bad = [
      'not json',
      '[1,2]',
      '"text"',
      JSON.stringify({ type: 'start', request: {} }),
      JSON.stringify({ type: 'start', id: 'a\u0000b', request: {} }),
      JSON.stringify({ type: 'start', id: 'x'.repeat(129), request: {} }),
      JSON.stringify({ type: 'stop', id: 'a' }),
      `${'{"a":'.repeat(200)}1${'}'.repeat(200)}`,
      JSON.stringify({ type: 'start', id: '__proto__', request: { __proto__: { polluted: true } } }),
    ];
    for (const frame of bad) socket.send(frame);
    socket.send(JSON.stringify({ type: 'start', id: 'n', request: 'nope' }));
    socket.send(JSON.stringify({ type: 'start', id: 'm', request: { messages: 'nope' } }));
    await until(() => frames.length >= bad.length + 1, 'the errors');
    await until(() => frames.some((f) => f.id === 'm' && f.event === 'error'), 'the error of m');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const nullErrors = frames.filter((f) => f.id === null);
    expect(nullErrors.length).toBeGreaterThanOrEqual(bad.length - 1);
    for (const f of frames.filter((f) => f.event === 'error')) {
      expect(f.data.code).toMatch(/^INVALID_/);
      expect(JSON.stringify(f.data)).not.toMatch(/at .*\.ts|node_modules|\/work\//);
    }
    expect(frames.find((f) => f.id === 'n')).toMatchObject({
      event: 'error',
      data: { code: 'INVALID_ARGUMENT' },
    });
    // Still open: a good start runs.
    socket.send(
      JSON.stringify({ type: 'start', id: 'ok', request: { messages: [{ role: 'user', content: 'hi' }] } }),
    );
    await until(() => frames.some((f) => f.id === 'ok' && f.event === 'done'), 'done');
  });

  it('closes the socket on a binary frame (1003) and on a frame over the payload limit (1009)', async () => {
    const { url } = await start();
    const binary = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    const closedBinary = closeOf(binary);
    binary.send(Buffer.from('{"type":"start"}'));
    expect((await closedBinary).code).toBe(1003);
    const big = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    const closedBig = closeOf(big);
    big.send('x'.repeat(server!.httpOptions.maxBodyBytes + 1));
    expect((await closedBig).code).toBe(1009);
  });

  it('refuses a start past the per-socket limit of running completions', async () => {
    const { url } = await start({
      fallback: () => ({ text: 'a slow and steady answer', chunkDelayMs: 20 }),
      completions: { maxCompletions: 2 },
    });
    const client = await connectCompletions(url, { WebSocket: WS });
    cleanups.push(() => client.close());
    const ask = { messages: [{ role: 'user' as const, content: 'x' }] };
    const running = [client.stream(ask), client.stream(ask)];
    const third = client.stream(ask);
    await expect(third.result).rejects.toMatchObject({
      code: 'BUSY',
      message: expect.stringContaining('limit 2'),
    });
    for (const s of running) expect((await s.result).status).toBe('succeeded');
    expect((await client.stream(ask).result).status).toBe('succeeded');
  });

  it('cancels every job of a socket closed mid-stream and aborts its model requests', async () => {
    const { url, sockets } = await start({
      fallback: () => ({ text: 'word '.repeat(300), chunkDelayMs: 10 }),
    });
    const client = await connectCompletions(url, { WebSocket: WS });
    const ids: string[] = [];
    const streams = [1, 2].map(() =>
      client.stream(
        { messages: [{ role: 'user', content: 'x' }] },
        { onEvent: (e) => e.type === 'start' && ids.push(e.id) },
      ),
    );
    await until(() => ids.length === 2, 'both starts');
    client.close();
    for (const s of streams) await expect(s.result).rejects.toBeInstanceOf(CompletionStreamError);
    await sockets[0]!.closed;
    for (const id of ids) expect(server!.completions.get(id)!.status).toBe('cancelled');
    await until(() => model!.requests.every((r) => r.aborted), 'the model requests to abort');
    expect(server!.completions.running).toBe(0);
  });
});

describe('a reader that stops reading', () => {
  const CHUNK = 64 * 1024;
  const MAX = 256 * 1024;

  it('pauses the model stream with memory bounded by bytes, and loses nothing', async () => {
    const text = 'abcdefgh'.repeat((32 * 1024 * 1024) / 8);
    const { url, sockets } = await start({
      fallback: () => ({ text }),
      chunkSize: CHUNK,
      completions: { maxBufferedBytes: MAX, pauseBufferedBytes: 32 * 1024 },
    });
    const socket = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    cleanups.push(() => socket.terminate());
    let received = '';
    let done: any;
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.event === 'text') received += frame.data.delta;
      if (frame.event === 'done') done = frame.data.job;
    });
    socket.send(
      JSON.stringify({ type: 'start', id: 'big', request: { messages: [{ role: 'user', content: 'x' }] } }),
    );
    await until(() => received.length > 0, 'the first text');
    socket.pause();
    // The model's writes stop: its stream is no longer read once the socket's buffer is full.
    let last = -1;
    let steady = 0;
    await until(() => {
      const sent = model!.requests[0]!.eventsSent;
      steady = sent === last && sockets[0]!.bufferedBytes > 0 ? steady + 1 : 0;
      last = sent;
      return steady >= 30;
    }, 'the model stream to pause');
    const totalEvents = text.length / CHUNK;
    // Without backpressure the loopback model writes all its events at once.
    expect(last).toBeLessThan(totalEvents);
    const held = sockets[0]!.bufferedBytes;
    const peak = sockets[0]!.peakBufferedBytes;
    expect(peak).toBeLessThanOrEqual(MAX + CHUNK + 1024);
    console.log(
      `slow reader: model paused after ${last} of ${totalEvents} events; held ${held} B, peak ${peak} B`,
    );
    socket.resume();
    await until(() => done !== undefined, 'done');
    expect(done.status).toBe('succeeded');
    expect(received.length).toBe(text.length);
    expect(received === text).toBe(true);
  }, 60_000);

  it('pauses the model stream under a slow reader of POST /completions/stream too', async () => {
    const text = 'abcdefgh'.repeat((32 * 1024 * 1024) / 8);
    await start({ fallback: () => ({ text }), chunkSize: CHUNK });
    const response = await fetch(`${listening!.url}/completions/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }),
    });
    const events = readCompletionEvents(response)[Symbol.asyncIterator]();
    let received = 0;
    for (;;) {
      const { value } = await events.next();
      if (value?.type === 'text') {
        received += value.delta.length;
        break;
      }
    }
    // The reader stops: the model's writes stop well before its end.
    let last = -1;
    let steady = 0;
    await until(() => {
      const sent = model!.requests[0]!.eventsSent;
      steady = sent === last ? steady + 1 : 0;
      last = sent;
      return steady >= 30;
    }, 'the model stream to pause');
    expect(last).toBeLessThan(text.length / CHUNK);
    let done: any;
    for (;;) {
      const { value, done: end } = await events.next();
      if (end) break;
      if (value.type === 'text') received += value.delta.length;
      if (value.type === 'done') done = value.job;
    }
    expect(done.status).toBe('succeeded');
    expect(received).toBe(text.length);
  }, 60_000);

  it('closes a socket whose client sends but never reads, before its errors pile up', async () => {
    const { url, sockets } = await start({ completions: { maxBufferedBytes: 16 * 1024 } });
    const socket = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    cleanups.push(() => socket.terminate());
    socket.pause();
    const door = sockets[0]!;
    let gone = false;
    void door.closed.then(() => {
      gone = true;
    });
    // Each bad frame earns an error frame; the client reads none of them.
    let peak = 0;
    for (let i = 0; i < 400 && !gone; i++) {
      for (let j = 0; j < 500; j++) socket.send('!'.repeat(8));
      await new Promise((resolve) => setImmediate(resolve));
      peak = Math.max(peak, door.bufferedBytes);
    }
    await door.closed;
    // In the socket's buffer at most the budget, waiting their turn the budget and 64 KiB of errors.
    const bound = 2 * 16 * 1024 + 64 * 1024 + 1024;
    expect(sockets[0]!.peakBufferedBytes).toBeLessThanOrEqual(bound);
    expect(peak).toBeLessThanOrEqual(bound);
  }, 60_000);

  it('fails the completion whose events would pass the byte budget, with a clear error; the others go on', async () => {
    const text = 'abcdefgh'.repeat((32 * 1024 * 1024) / 8);
    const small = 64 * 1024;
    const { url, sockets } = await start({
      fallback: () => ({ text }),
      chunkSize: 16 * 1024,
      completions: { maxBufferedBytes: small, pauseBufferedBytes: 8 * 1024 },
    });
    const socket = await openRaw(url, { protocols: [COMPLETIONS_SUBPROTOCOL] });
    cleanups.push(() => socket.terminate());
    const frames: Array<{ id: string; event: string; data: any }> = [];
    let received = 0;
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.event === 'text' && frame.id === 'x') received += frame.data.delta.length;
      else frames.push(frame);
    });
    const send = (id: string) =>
      socket.send(
        JSON.stringify({ type: 'start', id, request: { messages: [{ role: 'user', content: id }] } }),
      );
    send('x');
    await until(() => received > 0, 'the first text');
    socket.pause();
    await until(
      () => sockets[0]!.bufferedBytes > 0 && model!.requests[0]!.eventsSent < 2048,
      'a full buffer',
    );
    // The second completion's tool result (90 kB) cannot wait its turn within 64 KiB.
    model!.enqueue({ toolCalls: [{ name: 'big', arguments: {} }] }, { text: 'never read' });
    send('y');
    await until(() => model!.requests.length >= 2, "the second completion's model request");
    await until(() => sockets[0]!.active === 1, 'the second completion to fail');
    expect(sockets[0]!.peakBufferedBytes).toBeLessThanOrEqual(2 * small + 100 * 1024);
    socket.resume();
    await until(() => frames.some((f) => f.id === 'x' && f.event === 'done'), 'the first done');
    const failed = frames.filter((f) => f.id === 'y');
    expect(failed.at(-1)).toMatchObject({
      event: 'error',
      data: { code: 'BUSY', reason: 'slow_reader', message: expect.stringContaining('Slow reader') },
    });
    expect(failed.some((f) => f.event === 'done')).toBe(false);
    expect(server!.completions.get(failed[0]!.data.id)!.status).toBe('cancelled');
    expect(received).toBe(text.length);
  }, 60_000);
});

describe('the policy on the completion socket', () => {
  const policy = (audit: MemoryAuditSink) => ({
    auth: {
      apiKeys: [
        { id: 'user', key: USER_KEY, roles: ['user'] },
        { id: 'viewer', key: VIEWER_KEY, roles: ['viewer'] },
      ],
    },
    rateLimit: { completions: 2 },
    audit: { sinks: [audit] },
  });

  it('authenticates the upgrade: no key 401, a bad key 401, a malformed credential subprotocol 400', async () => {
    const audit = new MemoryAuditSink();
    const { url } = await start({ policy: policy(audit) });
    expect((await refusedStatus(url, { protocols: [COMPLETIONS_SUBPROTOCOL] })).status).toBe(401);
    await expect(connectCompletions(url, { WebSocket: WS, apiKey: 'wrong-key' })).rejects.toThrow(/refused/);
    const carrier = (v: string) => `mcpkit.bearer.${v}`;
    for (const offered of [
      `${COMPLETIONS_SUBPROTOCOL}, ${carrier('not!base64')}`,
      `${COMPLETIONS_SUBPROTOCOL}, ${carrier(Buffer.from('a\r\nb').toString('base64url'))}`,
      `${COMPLETIONS_SUBPROTOCOL}, ${carrier('a2V5')}, ${carrier('a2V5')}`,
      `${COMPLETIONS_SUBPROTOCOL}, ${carrier('x'.repeat(6000))}`,
    ]) {
      expect(await upgradeStatus(url, offered)).toBe(400);
    }
    // A header credential and a subprotocol one at once is ambiguous: refused.
    const both = await refusedStatus(url, {
      protocols: [COMPLETIONS_SUBPROTOCOL, carrier(Buffer.from(USER_KEY).toString('base64url'))],
      headers: { 'x-api-key': USER_KEY },
    });
    expect(both.status).toBe(400);
    expect(audit.events({ action: 'auth.failure' }).length).toBeGreaterThanOrEqual(2);
  });

  it('admits each start like POST /completions: permission, rate limit and audit, for the key of the upgrade', async () => {
    const audit = new MemoryAuditSink();
    const { url } = await start({
      policy: policy(audit),
      fallback: (prompt) =>
        prompt === 'add'
          ? { toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] }
          : { text: `answer to ${prompt}` },
    });
    const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] });

    // A key without completions:create opens a socket but may not start anything.
    const viewer = await connectCompletions(url, { WebSocket: WS, apiKey: VIEWER_KEY });
    cleanups.push(() => viewer.close());
    await expect(viewer.stream(ask('x')).result).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(audit.events({ action: 'permission.denied', callerId: 'viewer' })[0]).toMatchObject({
      origin: 'websocket',
    });

    // The key travels in a subprotocol, which is never echoed back.
    const user = await connectCompletions(url, { WebSocket: WS, apiKey: USER_KEY });
    cleanups.push(() => user.close());
    model!.enqueue({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] }, { text: 'three' });
    const first = await user.stream(ask('go')).result;
    expect(first).toMatchObject({ status: 'succeeded', output: 'three' });
    // The model's tool call ran as the caller's own, audited with the socket's door.
    expect(audit.events({ action: 'tool.execute', callerId: 'user' })[0]).toMatchObject({
      target: 'add',
      outcome: 'success',
      origin: 'websocket',
    });
    // The job is the caller's: another key cannot read it over REST.
    const asUser = await fetch(`${listening!.url}/completions/${first.id}`, {
      headers: { 'x-api-key': USER_KEY },
    });
    expect(asUser.status).toBe(200);
    const asViewer = await fetch(`${listening!.url}/completions/${first.id}`, {
      headers: { 'x-api-key': VIEWER_KEY },
    });
    expect(asViewer.status).toBe(403);

    // Two completions tokens a window (the tool call paid `execute`, not `completions`): the third start is limited.
    expect((await user.stream(ask('b')).result).status).toBe('succeeded');
    const limited = user.stream(ask('c')).result;
    await expect(limited).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    const error = (await limited.catch((e: unknown) => e)) as CompletionStreamError;
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
    expect(audit.events({ action: 'rate_limit.exceeded', callerId: 'user' })[0]).toMatchObject({
      origin: 'websocket',
      details: { class: 'completions' },
    });
    // A header credential works as well as a subprotocol one (a Node client can send headers).
    const raw = await openRaw(url, {
      protocols: [COMPLETIONS_SUBPROTOCOL],
      headers: { 'x-api-key': USER_KEY },
    });
    cleanups.push(() => raw.terminate());
    expect(raw.protocol).toBe(COMPLETIONS_SUBPROTOCOL);
  });

  it("counts each running completion against the caller's streams, across sockets and SSE", async () => {
    const long = 'word '.repeat(40);
    const { url } = await start({
      policy: {
        auth: { apiKeys: [{ id: 'user', key: USER_KEY, roles: ['user'] }] },
        http: { maxStreamsPerCaller: 2 },
      },
      fallback: () => ({ text: long, chunkDelayMs: 15 }),
    });
    const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] });
    const one = await connectCompletions(url, { WebSocket: WS, apiKey: USER_KEY });
    const two = await connectCompletions(url, { WebSocket: WS, apiKey: USER_KEY });
    cleanups.push(
      () => one.close(),
      () => two.close(),
    );
    const firstEvents: CompletionStreamEvent[] = [];
    const first = one.stream(ask('a'), { onEvent: (e) => firstEvents.push(e) });
    const second = two.stream(ask('b'));
    await until(() => model!.requests.length === 2, 'both model requests');
    // The caller holds both its streams, whichever socket they run on: a third start is refused...
    const third = one.stream(ask('c')).result;
    await expect(third).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    const error = (await third.catch((e: unknown) => e)) as CompletionStreamError;
    expect(error.message).toMatch(/limit 2/);
    // ...and so is a streamed completion over HTTP, which draws on the same share.
    const sse = await fetch(`${listening!.url}/completions/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': USER_KEY },
      body: JSON.stringify(ask('d')),
    });
    expect(sse.status).toBe(429);
    await sse.body?.cancel();
    // A completion that ends gives its stream back.
    await until(() => firstEvents.some((e) => e.type === 'text'), 'the first text');
    first.cancel();
    expect((await first.result).status).toBe('cancelled');
    expect((await one.stream(ask('e')).result).status).toBe('succeeded');
    expect((await second.result).status).toBe('succeeded');
    // Closing a socket gives back what its completions held.
    const held = two.stream(ask('f'));
    const running = one.stream(ask('g'));
    await until(() => model!.requests.length === 5, 'the held model requests');
    await expect(one.stream(ask('h')).result).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    two.close();
    await held.result.catch(() => undefined);
    expect((await one.stream(ask('i')).result).status).toBe('succeeded');
    expect((await running.result).status).toBe('succeeded');
  }, 30_000);

  it('refuses a start once the token the socket was opened with has expired', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 60;
    const { url } = await start({
      policy: {
        auth: {
          verify: (request: Request) =>
            request.headers.get('authorization') === 'Bearer short-lived-token'
              ? {
                  id: 'temp',
                  roles: ['user'],
                  authInfo: { token: 'short-lived-token', clientId: 'temp', scopes: [], expiresAt },
                }
              : undefined,
        },
      },
    });
    const client = await connectCompletions(url, { WebSocket: WS, apiKey: 'short-lived-token' });
    cleanups.push(() => client.close());
    const ask = { messages: [{ role: 'user' as const, content: 'x' }] };
    expect((await client.stream(ask).result).status).toBe('succeeded');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime((expiresAt + 1) * 1000);
      await expect(client.stream(ask).result).rejects.toMatchObject({
        code: 'UNAUTHORIZED',
        message: expect.stringContaining('expired'),
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses the completion subprotocol when the door serves MCP only', async () => {
    model = await createModelServer();
    server = createMcpServer({ logLevel: 'silent' });
    listening = await listen(server, { port: 0, websocket: { completions: false } });
    const url = `${listening.url.replace(/^http/, 'ws')}/mcp`;
    expect((await refusedStatus(url, { protocols: [COMPLETIONS_SUBPROTOCOL] })).status).toBe(400);
  });
});

describe('the completion socket on a framework server', () => {
  it('serves completions beside an Express app, with the key in a subprotocol', async () => {
    model = await createModelServer({ fallback: { text: 'hello from express' } });
    const base = `${model.url}/v1`;
    server = createMcpServer({
      logLevel: 'silent',
      outbound: LOOPBACK,
      auth: { apiKeys: [{ id: 'user', key: USER_KEY, roles: ['user'] }] },
      completions: {
        resolveModel: () => ({ provider: 'openai', model: 'loop', apiKey: 'k', baseUrl: base }),
      },
    });
    const app = express();
    app.use(mcpkitExpress(server));
    const http: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const door = await attachWebSocket(http, server);
    cleanups.push(async () => {
      await door.close();
      await new Promise((resolve) => http.close(resolve));
    });
    const { port } = http.address() as AddressInfo;
    const url = `ws://127.0.0.1:${port}/mcp`;
    expect((await refusedStatus(url, { protocols: [COMPLETIONS_SUBPROTOCOL] })).status).toBe(401);
    const client = await connectCompletions(url, { WebSocket: WS, apiKey: USER_KEY });
    cleanups.push(() => client.close());
    expect(textOf(await collect(client.stream({ messages: [{ role: 'user', content: 'hi' }] })))).toBe(
      'hello from express',
    );
    // MCP on the same door takes the browser credential too, and still agrees on `mcp`.
    const mcp = await openRaw(url, {
      protocols: ['mcp', `mcpkit.bearer.${Buffer.from(USER_KEY).toString('base64url')}`],
    });
    expect(mcp.protocol).toBe('mcp');
    mcp.terminate();
  });

  it('serves completions on a node:http server the application owns, with its key', async () => {
    model = await createModelServer({ fallback: { text: 'hello from the model' } });
    const base = `${model.url}/v1`;
    server = createMcpServer({
      logLevel: 'silent',
      outbound: LOOPBACK,
      auth: { apiKeys: [{ id: 'user', key: USER_KEY, roles: ['user'] }] },
      completions: {
        resolveModel: () => ({ provider: 'openai', model: 'loop', apiKey: 'k', baseUrl: base }),
      },
    });
    const mcp = server;
    const http = createServer(toNodeListener((request) => mcp.fetch(request)));
    const door = await attachWebSocket(http, server);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await door.close();
      await new Promise((resolve) => http.close(resolve));
    });
    const { port } = http.address() as AddressInfo;
    const client = await connectCompletions(`ws://127.0.0.1:${port}/mcp`, {
      WebSocket: WS,
      apiKey: USER_KEY,
    });
    cleanups.push(() => client.close());
    const events = await collect(client.stream({ messages: [{ role: 'user', content: 'hi' }] }));
    expect(textOf(events)).toBe('hello from the model');
  });
});
