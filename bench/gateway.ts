/**
 * The gateway's cost: a `tools/call` forwarded by mcpkit to an upstream MCP server over stdio,
 * against the same call made by an SDK client straight to that upstream. The upstream is a bare SDK
 * v2 server in its own process (bench/upstreamEcho.mjs), so its CPU time is not this process's.
 *
 * Both paths have one SDK v2 client in this process: straight to the upstream over stdio, or to
 * mcpkit over an in-memory pair, mcpkit then calling the upstream over stdio. This process's CPU
 * time per call (user + system, `process.cpuUsage`) minus the direct path's is what the forwarded
 * path adds; that includes the bench's own client on the in-memory pair, which is not mcpkit's, so
 * a third path measures that client alone (against a transport that answers at once, no server),
 * and mcpkit's share is forwarded − direct − that: the session, the executor, the upstream link
 * and what its client costs beyond a direct one.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { createMcpServer } from 'mcpkit';
import { stdioUpstream } from 'mcpkit/node';
import { median, settle } from './measure.js';

const UPSTREAM = path.join(path.dirname(fileURLToPath(import.meta.url)), 'upstreamEcho.mjs');

export interface GatewayFigures {
  calls: number;
  /** Calls made on each path before it was timed. */
  warmupCalls: number;
  rounds: number;
  direct: { latencyUs: number; cpuUs: number };
  forwarded: { latencyUs: number; cpuUs: number };
  /** The bench's client alone on an in-memory pair whose other end answers at once. */
  clientAlone: { latencyUs: number; cpuUs: number };
  /** Forwarded minus direct, per call: what the forwarded path adds, the bench's own client included. */
  overheadCpuUs: number;
  overheadLatencyUs: number;
  /** Forwarded minus direct minus the client alone, per call: mcpkit's own CPU. */
  mcpkitCpuUs: number;
}

/**
 * Calls made on each path before it is timed. The forwarded path runs much more code than the
 * direct one (the session, the executor, the link, an SDK server beside the client), and each path
 * starts a fresh upstream process with its own JIT to warm: after 200 calls both were still far from
 * steady, and the compilation and garbage collection still going on in this process's background
 * threads (which `process.cpuUsage` counts) fell mostly on the forwarded path.
 */
let warmupCalls = 5_000;

/** Sequential calls; wall time and this process's CPU time per call, in µs. */
async function timeCalls(client: Client, calls: number): Promise<{ latencyUs: number; cpuUs: number }> {
  for (let i = 0; i < warmupCalls; i++)
    await client.callTool({ name: currentName, arguments: { text: 'warm' } });
  await settle();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < calls; i++)
    await client.callTool({ name: currentName, arguments: { text: `call ${i}` } });
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { latencyUs: (wallMs * 1000) / calls, cpuUs: (used.user + used.system) / calls };
}
let currentName = 'echo';

async function direct(calls: number) {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [UPSTREAM], stderr: 'ignore' }),
  );
  try {
    currentName = 'echo';
    return await timeCalls(client, calls);
  } finally {
    await client.close();
  }
}

/** The client alone: its other end answers `initialize` and `tools/call` at once, with no server. */
async function clientAlone(calls: number) {
  const [clientSide, answering] = InMemoryTransport.createLinkedPair();
  answering.onmessage = (message) => {
    const m = message as { id?: number; method?: string; params?: Record<string, unknown> };
    if (m.id === undefined) return;
    const result =
      m.method === 'initialize'
        ? {
            protocolVersion: m.params?.protocolVersion,
            capabilities: { tools: {} },
            serverInfo: { name: 'answering', version: '1.0.0' },
          }
        : m.method === 'tools/call'
          ? { content: [{ type: 'text', text: String((m.params?.arguments as { text?: unknown })?.text) }] }
          : undefined;
    void answering.send(
      (result
        ? { jsonrpc: '2.0', id: m.id, result }
        : { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } }) as never,
    );
  };
  await answering.start();
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(clientSide);
  try {
    currentName = 'echo';
    return await timeCalls(client, calls);
  } finally {
    await client.close();
  }
}

async function forwarded(calls: number) {
  const server = createMcpServer({
    logLevel: 'silent',
    integrations: { upstreams: { up: stdioUpstream({ command: process.execPath, args: [UPSTREAM] }) } },
  });
  await server.integrations.ready;
  while (server.integrations.get('up')?.upstreamState?.status !== 'ready')
    await new Promise((r) => setTimeout(r, 10));
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(clientSide);
  try {
    currentName = 'up__echo';
    return await timeCalls(client, calls);
  } finally {
    await client.close();
    await server.close();
  }
}

/** Runs the gateway benchmark; `log` receives progress lines. */
export async function measureGateway(
  log: (message: string) => void,
  quick: boolean,
): Promise<GatewayFigures> {
  const calls = quick ? 500 : 3000;
  const rounds = quick ? 1 : 5;
  warmupCalls = quick ? 500 : 5_000;
  const d: Array<{ latencyUs: number; cpuUs: number }> = [];
  const f: Array<{ latencyUs: number; cpuUs: number }> = [];
  const a: Array<{ latencyUs: number; cpuUs: number }> = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate the order, so drift on a shared machine falls on every path.
    if (r % 2 === 0) {
      d.push(await direct(calls));
      a.push(await clientAlone(calls));
      f.push(await forwarded(calls));
    } else {
      f.push(await forwarded(calls));
      a.push(await clientAlone(calls));
      d.push(await direct(calls));
    }
  }
  const pick = (xs: typeof d) => ({
    latencyUs: median(xs.map((x) => x.latencyUs)),
    cpuUs: median(xs.map((x) => x.cpuUs)),
  });
  const figures: GatewayFigures = {
    calls,
    warmupCalls,
    rounds,
    direct: pick(d),
    forwarded: pick(f),
    clientAlone: pick(a),
    overheadCpuUs: median(f.map((x, i) => x.cpuUs - d[i]!.cpuUs)),
    overheadLatencyUs: median(f.map((x, i) => x.latencyUs - d[i]!.latencyUs)),
    mcpkitCpuUs: median(f.map((x, i) => x.cpuUs - d[i]!.cpuUs - a[i]!.cpuUs)),
  };
  log(
    `  gateway over stdio: direct ${figures.direct.latencyUs.toFixed(0)} µs/call (${figures.direct.cpuUs.toFixed(0)} µs CPU), forwarded ${figures.forwarded.latencyUs.toFixed(0)} µs/call (${figures.forwarded.cpuUs.toFixed(0)} µs CPU), client alone ${figures.clientAlone.cpuUs.toFixed(0)} µs CPU: mcpkit's own ${figures.mcpkitCpuUs.toFixed(0)} µs CPU`,
  );
  return figures;
}

/** The Markdown block for docs/benchmarks.md. */
export function renderGateway(f: GatewayFigures): string {
  const us = (n: number) => `${n.toFixed(0)} µs`;
  return [
    `**Gateway** (a \`tools/call\` of \`echo\` forwarded to a bare SDK v2 server over stdio, against an SDK client calling it directly; ${f.calls.toLocaleString('en-US')} sequential calls after ${f.warmupCalls.toLocaleString('en-US')} to warm up, median of ${f.rounds} alternating rounds; CPU is this process's, the upstream's own process excluded):`,
    '',
    '| Path | latency per call | CPU per call |',
    '| --- | ---: | ---: |',
    `| direct: SDK client → upstream (stdio) | ${us(f.direct.latencyUs)} | ${us(f.direct.cpuUs)} |`,
    `| forwarded: SDK client → mcpkit (in memory) → upstream (stdio) | ${us(f.forwarded.latencyUs)} | ${us(f.forwarded.cpuUs)} |`,
    `| forwarded − direct | ${us(f.overheadLatencyUs)} | ${us(f.overheadCpuUs)} |`,
    `| the bench's client alone (in memory, answered at once) | ${us(f.clientAlone.latencyUs)} | ${us(f.clientAlone.cpuUs)} |`,
    `| **mcpkit's own** (forwarded − direct − client alone) | | **${us(f.mcpkitCpuUs)}** |`,
    '',
    'Goal: under 100 µs of mcpkit CPU per forwarded call.',
  ].join('\n');
}
