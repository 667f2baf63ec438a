/**
 * WebSocket benchmarks: resident memory per idle MCP connection at 1,000 and 5,000 connections, and
 * `tools/call` messages per second over 1 and 64 sockets, each beside a raw `ws` echo server measured
 * in the same run (the ceiling: same socket library, no protocol work).
 *
 * The servers run in a child process (this file, forked with `--ws-child raw|mcpkit`), so their
 * memory is measured apart from the clients; the load comes from raw `ws` clients in the parent.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { forkServer } from './measure.js';

type Kind = 'raw' | 'mcpkit';
const KINDS: readonly Kind[] = ['raw', 'mcpkit'];

export interface WebSocketFigures {
  /** Resident memory per idle connection in KiB, by connection count. */
  memory: Array<{ connections: number; rawKib: number; mcpkitKib: number; mcpkitHeapKib: number }>;
  /** `tools/call` round trips per second, by socket count. */
  throughput: Array<{ sockets: number; inFlightPerSocket: number; raw: number; mcpkit: number }>;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------
// child: one server, driven over IPC

interface ChildReport {
  rssBytes: number;
  heapBytes: number;
}

async function child(kind: Kind): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  let port: number;
  if (kind === 'raw') {
    const httpServer = createServer();
    const wss = new WebSocketServer({
      server: httpServer,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has('mcp') ? 'mcp' : false),
    });
    wss.on('connection', (socket) => {
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    port = (httpServer.address() as AddressInfo).port;
  } else {
    const { createMcpServer } = await import('mcpkit');
    const { listen } = await import('mcpkit/node');
    const { z } = await import('zod');
    const server = createMcpServer({ name: 'bench', logLevel: 'silent' });
    server.tools.register({
      name: 'echo',
      description: 'Echo text back',
      inputSchema: { text: z.string() },
      handler: ({ text }) => text,
    });
    const listening = await listen(server, { port: 0, websocket: { maxConnections: 50_000 } });
    port = listening.port;
  }
  const measure = (): ChildReport => {
    for (let i = 0; i < 3; i++) gc?.();
    const usage = process.memoryUsage();
    return { rssBytes: usage.rss, heapBytes: usage.heapUsed };
  };
  process.on('message', (message: string) => {
    if (message === 'measure') process.send!({ type: 'measure', ...measure() });
    if (message === 'exit') process.exit(0);
  });
  process.send!({ type: 'ready', port });
}

// ---------------------------------------------------------------------------------------------------
// parent

interface ChildHandle {
  port: number;
  measure(): Promise<ChildReport>;
  stop(): Promise<void>;
}

async function spawnServer(kind: Kind): Promise<ChildHandle> {
  const child = await forkServer(fileURLToPath(import.meta.url), ['--ws-child', kind], {
    name: kind,
    execArgv: [...process.execArgv, '--expose-gc'],
  });
  return { port: child.port, measure: () => child.ask<ChildReport>('measure'), stop: () => child.stop() };
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '0' } },
});
const INITIALIZED = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
const CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'echo', arguments: { text: 'hello' } },
});

/** Opens one socket; for mcpkit, completes the MCP handshake, so the connection has its session. */
function connect(port: number, kind: Kind): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/mcp`, 'mcp', { perMessageDeflate: false });
    socket.once('error', reject);
    socket.once('open', () => {
      // Both servers get one round trip: the raw one echoes, mcpkit answers initialize.
      socket.once('message', () => {
        if (kind === 'mcpkit') socket.send(INITIALIZED);
        resolve(socket);
      });
      socket.send(INITIALIZE);
    });
  });
}

async function connectMany(port: number, kind: Kind, count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  const BATCH = 250;
  for (let i = 0; i < count; i += BATCH) {
    const size = Math.min(BATCH, count - i);
    sockets.push(...(await Promise.all(Array.from({ length: size }, () => connect(port, kind)))));
  }
  return sockets;
}

async function closeAll(sockets: readonly WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.readyState === WebSocket.CLOSED) return resolve();
          s.once('close', () => resolve());
          s.terminate();
        }),
    ),
  );
}

async function memory(
  kind: Kind,
  sizes: readonly number[],
  log: (m: string) => void,
): Promise<Map<number, ChildReport & { perConnRss: number; perConnHeap: number }>> {
  const server = await spawnServer(kind);
  const out = new Map<number, ChildReport & { perConnRss: number; perConnHeap: number }>();
  const sockets: WebSocket[] = [];
  try {
    // One connection first, so lazily loaded code is not counted as per-connection memory.
    sockets.push(...(await connectMany(server.port, kind, 1)));
    const base = await server.measure();
    for (const size of sizes) {
      sockets.push(...(await connectMany(server.port, kind, size - sockets.length + 1)));
      const now = await server.measure();
      const n = sockets.length - 1;
      const perConnRss = (now.rssBytes - base.rssBytes) / n;
      const perConnHeap = (now.heapBytes - base.heapBytes) / n;
      out.set(size, { ...now, perConnRss, perConnHeap });
      log(
        `  websocket memory · ${kind} · ${size} connections: ${(perConnRss / 1024).toFixed(1)} KiB RSS, ` +
          `${(perConnHeap / 1024).toFixed(1)} KiB heap per connection`,
      );
    }
  } finally {
    await closeAll(sockets);
    await server.stop();
  }
  return out;
}

/** Round trips per second: each socket keeps `window` calls in flight for `durationMs`. */
async function rate(sockets: readonly WebSocket[], window: number, durationMs: number): Promise<number> {
  let done = 0;
  let running = true;
  const started = performance.now();
  const finished = sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        let outstanding = 0;
        const onMessage = () => {
          outstanding--;
          done++;
          if (running) {
            outstanding++;
            socket.send(CALL);
          } else if (outstanding === 0) {
            socket.off('message', onMessage);
            resolve();
          }
        };
        socket.on('message', onMessage);
        for (let i = 0; i < window; i++) {
          outstanding++;
          socket.send(CALL);
        }
      }),
  );
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  running = false;
  const elapsed = performance.now() - started;
  const counted = done;
  await Promise.all(finished);
  return (counted / elapsed) * 1000;
}

async function throughput(
  socketCounts: readonly number[],
  window: number,
  rounds: number,
  durationMs: number,
  log: (m: string) => void,
): Promise<WebSocketFigures['throughput']> {
  const results = new Map<string, number[]>();
  for (const kind of KINDS) {
    const server = await spawnServer(kind);
    try {
      for (const count of socketCounts) {
        const sockets = await connectMany(server.port, kind, count);
        await rate(sockets, window, Math.min(1_000, durationMs)); // warm-up: let the JIT settle
        for (let round = 0; round < rounds; round++) {
          const value = await rate(sockets, window, durationMs);
          const key = `${kind}:${count}`;
          results.set(key, [...(results.get(key) ?? []), value]);
          log(
            `  websocket tools/call · ${kind} · ${count} sockets · round ${round + 1}: ${Math.round(value)} msg/s`,
          );
        }
        await closeAll(sockets);
      }
    } finally {
      await server.stop();
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  return socketCounts.map((sockets) => ({
    sockets,
    inFlightPerSocket: window,
    raw: median(results.get(`raw:${sockets}`)!),
    mcpkit: median(results.get(`mcpkit:${sockets}`)!),
  }));
}

export async function measureWebSocket(
  log: (message: string) => void,
  options: { quick?: boolean } = {},
): Promise<WebSocketFigures> {
  const started = performance.now();
  const sizes = [1_000, 5_000];
  const memoryBy = new Map<Kind, Awaited<ReturnType<typeof memory>>>();
  for (const kind of KINDS) memoryBy.set(kind, await memory(kind, sizes, log));
  const throughputRows = await throughput(
    [1, 64],
    16,
    options.quick ? 1 : 3,
    options.quick ? 500 : 1_500,
    log,
  );
  return {
    memory: sizes.map((connections) => ({
      connections,
      rawKib: memoryBy.get('raw')!.get(connections)!.perConnRss / 1024,
      mcpkitKib: memoryBy.get('mcpkit')!.get(connections)!.perConnRss / 1024,
      mcpkitHeapKib: memoryBy.get('mcpkit')!.get(connections)!.perConnHeap / 1024,
    })),
    throughput: throughputRows,
    seconds: (performance.now() - started) / 1000,
  };
}

export function renderWebSocket(f: WebSocketFigures): string {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  return [
    '**WebSocket** (mcpkit `attachWebSocket` beside a raw `ws` echo server, both in a child process, ' +
      'driven by raw `ws` clients; memory after a forced GC, relative to one open connection; ' +
      `${f.seconds.toFixed(0)} s):`,
    '',
    '| Measurement | mcpkit | raw `ws` echo | mcpkit / raw |',
    '| --- | ---: | ---: | ---: |',
    ...f.memory.map(
      (m) =>
        `| resident memory per idle connection, ${n(m.connections)} connections (mcpkit heap: ${m.mcpkitHeapKib.toFixed(1)} KiB) | ` +
        `${m.mcpkitKib.toFixed(1)} KiB | ${m.rawKib.toFixed(1)} KiB | ${(m.mcpkitKib / m.rawKib).toFixed(1)}× |`,
    ),
    ...f.throughput.map(
      (t) =>
        `| \`tools/call\` messages/s, ${t.sockets} socket${t.sockets === 1 ? '' : 's'} × ${t.inFlightPerSocket} in flight | ` +
        `${n(t.mcpkit)} | ${n(t.raw)} | ${((t.mcpkit / t.raw) * 100).toFixed(0)}% |`,
    ),
  ].join('\n');
}

if (process.argv[2] === '--ws-child') {
  child(process.argv[3] as Kind).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
