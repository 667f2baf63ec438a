/**
 * The gateway's cost: a `tools/call` forwarded by mcpkit to an upstream MCP server over stdio,
 * against the same call made by an SDK client straight to that upstream. The upstream is a bare SDK
 * v2 server in its own process (bench/upstreamEcho.mjs), so its CPU time is not this process's.
 *
 * Both paths have one SDK v2 client in this process: straight to the upstream over stdio, or to
 * mcpkit over an in-memory pair, mcpkit then calling the upstream over stdio. This process's CPU
 * time per call (user + system, `process.cpuUsage`) minus the direct path's is mcpkit's share: the
 * session, the executor, the upstream link and its client.
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
  rounds: number;
  direct: { latencyUs: number; cpuUs: number };
  forwarded: { latencyUs: number; cpuUs: number };
  /** Forwarded minus direct CPU per call: mcpkit's share. */
  overheadCpuUs: number;
  overheadLatencyUs: number;
}

/** Sequential calls; wall time and this process's CPU time per call, in µs. */
async function timeCalls(client: Client, calls: number): Promise<{ latencyUs: number; cpuUs: number }> {
  for (let i = 0; i < 200; i++) await client.callTool({ name: currentName, arguments: { text: 'warm' } });
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
  const d: Array<{ latencyUs: number; cpuUs: number }> = [];
  const f: Array<{ latencyUs: number; cpuUs: number }> = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so drift on a shared machine falls on both.
    if (r % 2 === 0) {
      d.push(await direct(calls));
      f.push(await forwarded(calls));
    } else {
      f.push(await forwarded(calls));
      d.push(await direct(calls));
    }
  }
  const pick = (xs: typeof d) => ({
    latencyUs: median(xs.map((x) => x.latencyUs)),
    cpuUs: median(xs.map((x) => x.cpuUs)),
  });
  const figures: GatewayFigures = {
    calls,
    rounds,
    direct: pick(d),
    forwarded: pick(f),
    overheadCpuUs: median(f.map((x, i) => x.cpuUs - d[i]!.cpuUs)),
    overheadLatencyUs: median(f.map((x, i) => x.latencyUs - d[i]!.latencyUs)),
  };
  log(
    `  gateway over stdio: direct ${figures.direct.latencyUs.toFixed(0)} µs/call (${figures.direct.cpuUs.toFixed(0)} µs CPU), forwarded ${figures.forwarded.latencyUs.toFixed(0)} µs/call (${figures.forwarded.cpuUs.toFixed(0)} µs CPU): mcpkit adds ${figures.overheadCpuUs.toFixed(0)} µs CPU`,
  );
  return figures;
}

/** The Markdown block for docs/benchmarks.md. */
export function renderGateway(f: GatewayFigures): string {
  const us = (n: number) => `${n.toFixed(0)} µs`;
  return [
    `**Gateway** (a \`tools/call\` of \`echo\` forwarded to a bare SDK v2 server over stdio, against an SDK client calling it directly; ${f.calls.toLocaleString('en-US')} sequential calls, median of ${f.rounds} alternating rounds; CPU is this process's, the upstream's own process excluded):`,
    '',
    '| Path | latency per call | CPU per call |',
    '| --- | ---: | ---: |',
    `| direct: SDK client → upstream (stdio) | ${us(f.direct.latencyUs)} | ${us(f.direct.cpuUs)} |`,
    `| forwarded: SDK client → mcpkit (in memory) → upstream (stdio) | ${us(f.forwarded.latencyUs)} | ${us(f.forwarded.cpuUs)} |`,
    `| mcpkit's share (forwarded − direct) | ${us(f.overheadLatencyUs)} | ${us(f.overheadCpuUs)} |`,
    '',
    'Goal: under 100 µs of mcpkit CPU per forwarded call.',
  ].join('\n');
}
