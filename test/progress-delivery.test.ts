/**
 * Progress reaches the SDK clients on the transports they read in chunks (issue 23, item 3). The
 * 1.x and v2 clients dispatch a notification in a microtask but a response at once, and the response
 * removes its request's progress handler: when one read held a call's last progress and its result,
 * the progress was lost (over stdio in most calls, over WebSocket in every call).
 */
import { fileURLToPath } from 'node:url';
import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { WebSocketClientTransport as WebSocketV1 } from '@modelcontextprotocol/sdk/client/websocket.js';
import type { JSONRPCMessage, TransportSendOptions } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { type Listening, listen, WebSocketClientTransport } from 'mcpkit/node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { registerDemoCatalog } from '../examples/demo-catalog.js';
import { MAX_HELD_BYTES, NotificationFence } from '../src/protocol/fence.js';
import { rawPeer } from './websocketHelpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const stdioArgs = ['--tsconfig', `${root}tsconfig.json`, `${root}examples/stdio.ts`];
const info = { name: 'progress-test', version: '1.0.0' };

const CALLS = 100;
const STEPS = 5;

/** What both SDK generations' clients offer for a call with progress. */
interface ProgressClient {
  call(onprogress: (progress: number) => void): Promise<unknown>;
  /** Errors the client reported (a progress notification for a finished call is one). */
  readonly errors: string[];
  close(): Promise<void>;
}

function v1(client: ClientV1): ProgressClient {
  const errors: string[] = [];
  client.onerror = (error) => errors.push(String(error));
  return {
    errors,
    call: (onprogress) =>
      client.callTool({ name: 'countdown', arguments: { n: STEPS, intervalMs: 0 } }, undefined, {
        onprogress: (p) => onprogress(p.progress),
      }),
    close: () => client.close(),
  };
}

function v2(client: ClientV2): ProgressClient {
  const errors: string[] = [];
  client.onerror = (error) => errors.push(String(error));
  return {
    errors,
    call: (onprogress) =>
      client.callTool(
        { name: 'countdown', arguments: { n: STEPS, intervalMs: 0 } },
        { onprogress: (p) => onprogress(p.progress) },
      ),
    close: () => client.close(),
  };
}

/**
 * Calls `countdown` (five progress steps, no wait between them) `CALLS` times, one after another,
 * and returns the calls that missed a step, with the steps they saw.
 */
async function callsMissingProgress(
  client: ProgressClient,
): Promise<Array<{ call: number; seen: number[] }>> {
  const missing: Array<{ call: number; seen: number[] }> = [];
  const expected = Array.from({ length: STEPS }, (_, i) => i + 1).join();
  for (let call = 0; call < CALLS; call++) {
    const seen: number[] = [];
    await client.call((progress) => seen.push(progress));
    if (seen.join() !== expected) missing.push({ call, seen });
  }
  return missing;
}

let listening: Listening;
beforeAll(async () => {
  const server = createMcpServer({ name: 'progress', version: '1.0.0', logLevel: 'silent' });
  registerDemoCatalog(server);
  listening = await listen(server, { port: 0, websocket: true });
});
afterAll(async () => {
  await listening.close();
});

const wsUrl = () => `${listening.url.replace(/^http/, 'ws')}/mcp`;

const cases: Array<[string, () => Promise<ProgressClient>]> = [
  [
    'SDK 1.x client over stdio',
    async () => {
      const client = new ClientV1(info);
      await client.connect(new StdioV1({ command: tsx, args: stdioArgs, stderr: 'pipe' }));
      return v1(client);
    },
  ],
  [
    'SDK v2 client over stdio',
    async () => {
      const client = new ClientV2(info);
      await client.connect(new StdioV2({ command: tsx, args: stdioArgs, stderr: 'pipe' }));
      return v2(client);
    },
  ],
  [
    'SDK 1.x client over WebSocket',
    async () => {
      // Node 20 has no global WebSocket: the 1.x transport gets ws's for the time of its start().
      const g = globalThis as { WebSocket?: unknown };
      const previous = g.WebSocket;
      g.WebSocket = WebSocket;
      try {
        const client = new ClientV1(info);
        await client.connect(new WebSocketV1(new URL(wsUrl())));
        return v1(client);
      } finally {
        g.WebSocket = previous;
      }
    },
  ],
  [
    'SDK v2 client over WebSocket',
    async () => {
      const client = new ClientV2(info);
      await client.connect(new WebSocketClientTransport(wsUrl()));
      return v2(client);
    },
  ],
];

describe('the WebSocket fence, made at the first progress of a connection', () => {
  it('pings a 2025-era client and holds the result until the answer, in order', async () => {
    const peer = await rawPeer(wsUrl());
    try {
      const token = 'fence-check';
      const ping = peer.next((m) => m.method === 'ping');
      const answer = peer.request('tools/call', {
        name: 'countdown',
        arguments: { n: 2, intervalMs: 0 },
        _meta: { progressToken: token },
      });
      const { id } = await ping;
      expect(String(id)).toMatch(/^mcpkit\/fence\/\d+$/);
      // Held: nothing after the last progress went out before the client answered the ping.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const before = peer.messages.map((m: any) => m.method ?? (m.result ? 'result' : 'error'));
      expect(before.filter((label) => label === 'result')).toEqual(['result']); // initialize's only
      peer.send({ jsonrpc: '2.0', id, result: {} });
      const result = await answer;
      expect(result.result?.isError).not.toBe(true);
      const progress = peer.messages.filter((m: any) => m.method === 'notifications/progress');
      expect(progress.map((m: any) => m.params.progress)).toEqual([1, 2]);
    } finally {
      peer.socket.close();
    }
  });
});

describe.each(cases)('%s', (_name, connect) => {
  it(`sees every progress notification of ${CALLS} calls, the last one included`, {
    timeout: 30_000,
  }, async () => {
    const client = await connect();
    try {
      expect(await callsMissingProgress(client)).toEqual([]);
      expect(client.errors.filter((e) => e.includes('progress'))).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

/** A fence over a recording writer, on a 2025-era connection unless `legacy` is false. */
function fenced(options: { legacy?: boolean; pingTimeoutMs?: number; delayMs?: number } = {}) {
  const written: JSONRPCMessage[] = [];
  const fence = new NotificationFence(
    async (message) => {
      written.push(message);
    },
    { pingTimeoutMs: options.pingTimeoutMs ?? 1000, delayMs: options.delayMs ?? 5 },
  );
  if (options.legacy !== false) {
    fence.receive({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {} });
    void fence.send({ jsonrpc: '2.0', id: 0, result: { protocolVersion: '2025-11-25' } });
  }
  written.length = 0;
  const progress = (id: number, progress: number): [JSONRPCMessage, TransportSendOptions] => [
    { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: id, progress } },
    { relatedRequestId: id },
  ];
  const result = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [] } });
  /** What was written, as short labels: `p7` a progress of request 7, `r7` its result, `ping`. */
  const labels = () =>
    written.map((m) =>
      'method' in m
        ? m.method === 'ping'
          ? 'ping'
          : m.method === 'notifications/progress'
            ? `p${(m.params as { progressToken: number }).progressToken}`
            : m.method
        : `r${(m as { id: number }).id}`,
    );
  const pingId = () => {
    const ping = written.findLast((m) => 'method' in m && m.method === 'ping');
    return (ping as { id: string }).id;
  };
  return { fence, written, labels, progress, result, pingId };
}

describe('NotificationFence', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes a response with no progress before it at once, and pings nobody', async () => {
    const { fence, labels, result } = fenced();
    const sent = fence.send(result(1));
    expect(labels()).toEqual(['r1']);
    await sent;
  });

  it('holds a response behind a ping after its progress, and writes it once the client answers', async () => {
    const { fence, labels, progress, result, pingId } = fenced();
    await fence.send(...progress(7, 1));
    let written = false;
    const sent = fence.send(result(7)).then(() => {
      written = true;
    });
    // Everything sent after the held response waits behind it, in order.
    void fence.send(...progress(8, 1));
    void fence.send(result(9));
    expect(labels()).toEqual(['p7', 'ping']);
    expect(pingId()).toMatch(/^mcpkit\/fence\//);

    // The client's own responses are the server's, not the fence's.
    expect(fence.receive({ jsonrpc: '2.0', id: 3, result: {} })).toBe(false);
    expect(fence.receive({ jsonrpc: '2.0', id: pingId(), result: {} })).toBe(true);
    expect(labels()).toEqual(['p7', 'ping', 'r7', 'p8', 'r9']);
    await sent;
    expect(written).toBe(true);
  });

  it('holds at most MAX_HELD_BYTES: past it, what it holds is written without waiting for the ping', async () => {
    const { fence, labels, progress, result } = fenced();
    await fence.send(...progress(7, 1));
    void fence.send(result(7));
    expect(labels()).toEqual(['p7', 'ping']);
    // Notifications of another call keep coming while the client has not answered.
    const chunk = 'x'.repeat(64 * 1024);
    const log = {
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: chunk },
    } as const;
    const count = Math.ceil(MAX_HELD_BYTES / chunk.length) + 1;
    for (let i = 0; i < count; i++) void fence.send(log);
    expect(labels().slice(0, 3)).toEqual(['p7', 'ping', 'r7']);
    expect(labels()).toHaveLength(3 + count);
  });

  it('does not hold a response whose request sent no progress', async () => {
    const { fence, labels, progress, result } = fenced();
    await fence.send(...progress(7, 1));
    await fence.send(result(8));
    expect(labels()).toEqual(['p7', 'r8']);
  });

  it('raises the fence again for a progress written while the held messages go out', () => {
    const { fence, labels, progress, result, pingId } = fenced();
    void fence.send(...progress(1, 1));
    void fence.send(result(1));
    void fence.send(...progress(2, 1));
    void fence.send(result(2));
    void fence.send(result(3));
    expect(labels()).toEqual(['p1', 'ping']);
    fence.receive({ jsonrpc: '2.0', id: pingId(), result: {} });
    expect(labels()).toEqual(['p1', 'ping', 'r1', 'p2', 'ping']);
    fence.receive({ jsonrpc: '2.0', id: pingId(), result: {} });
    expect(labels()).toEqual(['p1', 'ping', 'r1', 'p2', 'ping', 'r2', 'r3']);
  });

  it('takes an error answer to its ping as an answer too', () => {
    const { fence, labels, progress, result, pingId } = fenced();
    void fence.send(...progress(1, 1));
    void fence.send(result(1));
    expect(
      fence.receive({ jsonrpc: '2.0', id: pingId(), error: { code: -32601, message: 'Method not found' } }),
    ).toBe(true);
    expect(labels()).toEqual(['p1', 'ping', 'r1']);
  });

  it('writes what it holds when the client does not answer, then waits a delay until it answers a ping', () => {
    vi.useFakeTimers();
    const { fence, labels, progress, result, pingId } = fenced({ pingTimeoutMs: 1000, delayMs: 5 });
    void fence.send(...progress(1, 1));
    void fence.send(result(1));
    const unanswered = pingId();
    vi.advanceTimersByTime(999);
    expect(labels()).toEqual(['p1', 'ping']);
    vi.advanceTimersByTime(1);
    expect(labels()).toEqual(['p1', 'ping', 'r1']);

    // Without answers, a fence is a delay and sends no ping.
    void fence.send(...progress(2, 1));
    void fence.send(result(2));
    vi.advanceTimersByTime(4);
    expect(labels()).toEqual(['p1', 'ping', 'r1', 'p2']);
    vi.advanceTimersByTime(1);
    expect(labels()).toEqual(['p1', 'ping', 'r1', 'p2', 'r2']);

    // A late answer is still the fence's, and brings pings back.
    expect(fence.receive({ jsonrpc: '2.0', id: unanswered, result: {} })).toBe(true);
    void fence.send(...progress(3, 1));
    void fence.send(result(3));
    expect(labels().slice(-2)).toEqual(['p3', 'ping']);
  });

  it('waits a delay instead of pinging on a connection that did not open with initialize (2026-07-28)', () => {
    vi.useFakeTimers();
    const { fence, labels, progress, result } = fenced({ legacy: false, delayMs: 5 });
    void fence.send(...progress(1, 1));
    void fence.send(result(1));
    expect(labels()).toEqual(['p1']);
    vi.advanceTimersByTime(5);
    expect(labels()).toEqual(['p1', 'r1']);
  });

  it('remembers a bounded number of requests, then fences the next response whichever it is', () => {
    const { fence, labels, progress, result } = fenced();
    // Cancelled requests get no response, so they would never leave the set.
    for (let id = 1; id <= 1025; id++) void fence.send(...progress(id, 1));
    void fence.send(result(5000));
    expect(labels().slice(-2)).toEqual(['p1025', 'ping']);
  });

  it('fails what it holds when the connection closes', async () => {
    const { fence, progress, result } = fenced();
    await fence.send(...progress(1, 1));
    const held = fence.send(result(1));
    const after = fence.send(result(2));
    fence.close();
    await expect(held).rejects.toThrow('The connection is closed');
    await expect(after).rejects.toThrow('The connection is closed');
  });
});
