/**
 * Tool isolation: what a worker thread or a child process adds to an echo call (p50, sequential),
 * what a pool's first call costs (its worker starting), and whether the server keeps answering while
 * every worker burns CPU: event-loop delay p99, `GET /health` latency, and REST echo throughput beside
 * the same run without the load. Server and load generator share this process (and the machine's
 * cores with the burning workers), so the figures are what one process on this machine sees.
 */
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createMcpServer } from 'mcpkit';
import { createIsolation, listen } from 'mcpkit/node';
import { z } from 'zod';
import { median, sample, settle, throughput } from './measure.js';

const TOOLS = new URL('./isolatedTools.mjs', import.meta.url);

export interface IsolationFigures {
  inThreadUs: number;
  workerUs: number;
  processUs: number;
  workerStartMs: number;
  processStartMs: number;
  workers: number;
  loadSeconds: number;
  idle: LoadPhase;
  loaded: LoadPhase;
}

interface LoadPhase {
  echoPerSec: number;
  loopP99Ms: number;
  healthP99Ms: number;
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

async function overhead(quick: boolean) {
  const server = createMcpServer({ logLevel: 'silent', metrics: false });
  const isolation = createIsolation({ maxWorkers: 1 });
  const input = { text: z.string() };
  server.tools.register({ name: 'echo', inputSchema: input, handler: ({ text }) => text });
  server.tools.register(isolation.tool(TOOLS, { name: 'echo_worker', inputSchema: input }));
  server.tools.register(
    isolation.tool(TOOLS, { name: 'echo_process', inputSchema: input, isolate: { level: 'process' } }),
  );
  const call = (name: string) => () => server.executor.execute(name, { text: 'hi' });
  let started = performance.now();
  await call('echo_worker')();
  const workerStartMs = performance.now() - started;
  started = performance.now();
  await call('echo_process')();
  const processStartMs = performance.now() - started;
  const count = quick ? 300 : 3000;
  const us = async (name: string) => {
    await sample(call(name), count / 5);
    await settle();
    return median(await sample(call(name), count)) * 1000;
  };
  const figures = {
    inThreadUs: await us('echo'),
    workerUs: await us('echo_worker'),
    processUs: await us('echo_process'),
    workerStartMs,
    processStartMs,
  };
  await server.close();
  await isolation.close();
  return figures;
}

/** Echo over REST and `/health` polls for `seconds`, with the event loop's delay watched. */
async function phase(url: string, seconds: number): Promise<LoadPhase> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const health: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const polling = (async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const res = await fetch(`${url}/health`);
      await res.arrayBuffer();
      health.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const run = await throughput(
    async () => {
      const res = await fetch(`${url}/tools/echo/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"arguments":{"text":"hi"}}',
      });
      if (res.status !== 200) throw new Error(`echo answered ${res.status}`);
      await res.arrayBuffer();
    },
    4,
    seconds * 1000,
  );
  await polling;
  histogram.disable();
  return { echoPerSec: run.opsPerSec, loopP99Ms: histogram.percentile(99) / 1e6, healthP99Ms: p99(health) };
}

async function underLoad(quick: boolean) {
  const workers = Math.max(1, availableParallelism() - 1);
  const seconds = quick ? 3 : 10;
  const server = createMcpServer({ logLevel: 'silent' });
  const isolation = createIsolation({ maxWorkers: workers });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  server.tools.register(
    isolation.tool(TOOLS, {
      name: 'burn',
      inputSchema: { ms: z.number() },
      isolate: { export: 'burn', timeoutMs: 120_000 },
    }),
  );
  const listening = await listen(server, { port: 0 });
  await phase(listening.url, 1); // warm-up
  const idle = await phase(listening.url, seconds);
  // One burning call per worker, for a little longer than the phase.
  const burning = Array.from({ length: workers }, () =>
    server.executor.execute('burn', { ms: seconds * 1000 + 1500 }),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  const loaded = await phase(listening.url, seconds);
  const results = await Promise.all(burning);
  if (results.some((r) => r.isError)) throw new Error('a burning call failed');
  await listening.close();
  await isolation.close();
  return { workers, loadSeconds: seconds, idle, loaded };
}

export async function measureIsolation(log: (m: string) => void, quick: boolean): Promise<IsolationFigures> {
  const cost = await overhead(quick);
  log(
    `  isolation: echo in thread ${cost.inThreadUs.toFixed(0)} µs, worker ${cost.workerUs.toFixed(0)} µs, ` +
      `process ${cost.processUs.toFixed(0)} µs; first call ${cost.workerStartMs.toFixed(0)} / ${cost.processStartMs.toFixed(0)} ms`,
  );
  const load = await underLoad(quick);
  log(
    `  isolation under load: echo ${load.idle.echoPerSec.toFixed(0)} → ${load.loaded.echoPerSec.toFixed(0)}/s, ` +
      `loop p99 ${load.idle.loopP99Ms.toFixed(1)} → ${load.loaded.loopP99Ms.toFixed(1)} ms`,
  );
  return { ...cost, ...load };
}

export function renderIsolation(f: IsolationFigures): string {
  const ratio = (f.loaded.echoPerSec / f.idle.echoPerSec) * 100;
  return [
    '**Tool isolation** (`createIsolation`, in process; load generator in the same process):',
    '',
    '| Measurement | Figure |',
    '| --- | ---: |',
    `| echo call, in the server's thread (p50, sequential) | ${f.inThreadUs.toFixed(0)} µs |`,
    `| echo call, worker level (p50) | ${f.workerUs.toFixed(0)} µs (+${(f.workerUs - f.inThreadUs).toFixed(0)} µs) |`,
    `| echo call, process level (p50) | ${f.processUs.toFixed(0)} µs (+${(f.processUs - f.inThreadUs).toFixed(0)} µs) |`,
    `| first call of a pool (its worker starting): worker / process | ${f.workerStartMs.toFixed(0)} ms / ${f.processStartMs.toFixed(0)} ms |`,
    `| REST echo, 4 callers, ${f.loadSeconds} s: idle → ${f.workers} worker(s) burning CPU | ${f.idle.echoPerSec.toFixed(0)} → ${f.loaded.echoPerSec.toFixed(0)} calls/s (${ratio.toFixed(0)} %) |`,
    `| event-loop delay p99: idle → burning | ${f.idle.loopP99Ms.toFixed(1)} → ${f.loaded.loopP99Ms.toFixed(1)} ms |`,
    `| \`GET /health\` p99: idle → burning | ${f.idle.healthP99Ms.toFixed(1)} → ${f.loaded.healthP99Ms.toFixed(1)} ms |`,
  ].join('\n');
}
