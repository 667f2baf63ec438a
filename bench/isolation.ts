/**
 * Tool isolation: what a worker thread or a child process adds to an echo call (p50, sequential),
 * what a pool's first call costs (its worker starting), and whether the server keeps answering while
 * every worker burns CPU: event-loop delay p99, `GET /health` latency, and REST echo throughput beside
 * the same run without the load. Server and load generator share this process (and the machine's
 * cores with the burning workers), so the figures are what one process on this machine sees.
 */
import { availableParallelism, loadavg } from 'node:os';
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
  /** Rounds of idle → burning → burning at the server's priority; figures are their medians. */
  rounds: number;
  /** The machine's 1-minute load average before and after the phases. */
  loadAverage: [number, number];
  idle: LoadPhase;
  /** Burning workers at the default priority (10 nice levels below the server). */
  loaded: LoadPhase;
  /** Burning workers at the server's own priority (`workerPriority: 0`). */
  loadedLevel: LoadPhase;
  /** Each round's echo rate while burning, as a share of the same round's idle rate. */
  ratios: number[];
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

/** The median of each figure of several phases. */
function medianPhase(phases: readonly LoadPhase[]): LoadPhase {
  return {
    echoPerSec: median(phases.map((p) => p.echoPerSec)),
    loopP99Ms: median(phases.map((p) => p.loopP99Ms)),
    healthP99Ms: median(phases.map((p) => p.healthP99Ms)),
  };
}

/**
 * Idle and burning phases, alternating (idle, burning at the default worker priority, burning at the
 * server's priority) for `rounds` rounds, so the machine's other work falls on every kind alike; each
 * figure is the median over the rounds.
 */
async function underLoad(quick: boolean) {
  const workers = Math.max(1, availableParallelism() - 1);
  const seconds = quick ? 3 : 10;
  const rounds = quick ? 1 : 3;
  const server = createMcpServer({ logLevel: 'silent' });
  const lowered = createIsolation({ maxWorkers: workers });
  const level = createIsolation({ maxWorkers: workers, workerPriority: 0 });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  const burner = { inputSchema: { ms: z.number() }, isolate: { export: 'burn', timeoutMs: 120_000 } };
  server.tools.register(lowered.tool(TOOLS, { name: 'burn', ...burner }));
  server.tools.register(level.tool(TOOLS, { name: 'burn_level', ...burner }));
  const listening = await listen(server, { port: 0 });
  const loadBefore = loadavg()[0]!;
  await phase(listening.url, 1); // warm-up
  const burningPhase = async (tool: string) => {
    // One burning call per worker, for a little longer than the phase.
    const burning = Array.from({ length: workers }, () =>
      server.executor.execute(tool, { ms: seconds * 1000 + 1500 }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const figures = await phase(listening.url, seconds);
    const results = await Promise.all(burning);
    if (results.some((r) => r.isError)) throw new Error('a burning call failed');
    return figures;
  };
  const idle: LoadPhase[] = [];
  const loaded: LoadPhase[] = [];
  const loadedLevel: LoadPhase[] = [];
  for (let round = 0; round < rounds; round++) {
    idle.push(await phase(listening.url, seconds));
    loaded.push(await burningPhase('burn'));
    loadedLevel.push(await burningPhase('burn_level'));
  }
  const loadAfter = loadavg()[0]!;
  await listening.close();
  await lowered.close();
  await level.close();
  return {
    workers,
    loadSeconds: seconds,
    rounds,
    loadAverage: [loadBefore, loadAfter] as [number, number],
    idle: medianPhase(idle),
    loaded: medianPhase(loaded),
    loadedLevel: medianPhase(loadedLevel),
    ratios: loaded.map((p, i) => p.echoPerSec / idle[i]!.echoPerSec),
  };
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
      `loop p99 ${load.idle.loopP99Ms.toFixed(1)} → ${load.loaded.loopP99Ms.toFixed(1)} ms ` +
      `(at the server's priority: ${load.loadedLevel.echoPerSec.toFixed(0)}/s, ${load.loadedLevel.loopP99Ms.toFixed(1)} ms); ` +
      `health p99 ${load.idle.healthP99Ms.toFixed(1)} → ${load.loaded.healthP99Ms.toFixed(1)} ms; ` +
      `rounds ${load.ratios.map((r) => `${(r * 100).toFixed(0)} %`).join(', ')}; load average ${load.loadAverage.map((l) => l.toFixed(1)).join(' → ')}`,
  );
  return { ...cost, ...load };
}

export function renderIsolation(f: IsolationFigures): string {
  const ratio = (f.loaded.echoPerSec / f.idle.echoPerSec) * 100;
  const levelRatio = (f.loadedLevel.echoPerSec / f.idle.echoPerSec) * 100;
  return [
    `**Tool isolation** (\`createIsolation\`, in process; load generator in the same process; load phases: medians of ${f.rounds} alternating rounds, load average ${f.loadAverage.map((l) => l.toFixed(1)).join(' → ')}):`,
    '',
    '| Measurement | Figure |',
    '| --- | ---: |',
    `| echo call, in the server's thread (p50, sequential) | ${f.inThreadUs.toFixed(0)} µs |`,
    `| echo call, worker level (p50) | ${f.workerUs.toFixed(0)} µs (+${(f.workerUs - f.inThreadUs).toFixed(0)} µs) |`,
    `| echo call, process level (p50) | ${f.processUs.toFixed(0)} µs (+${(f.processUs - f.inThreadUs).toFixed(0)} µs) |`,
    `| first call of a pool (its worker starting): worker / process | ${f.workerStartMs.toFixed(0)} ms / ${f.processStartMs.toFixed(0)} ms |`,
    `| REST echo, 4 callers, ${f.loadSeconds} s: idle → ${f.workers} worker(s) burning CPU | ${f.idle.echoPerSec.toFixed(0)} → ${f.loaded.echoPerSec.toFixed(0)} calls/s (${ratio.toFixed(0)} %) |`,
    `| the same, workers at the server's priority (\`workerPriority: 0\`) | ${f.loadedLevel.echoPerSec.toFixed(0)} calls/s (${levelRatio.toFixed(0)} %) |`,
    `| event-loop delay p99: idle → burning (→ at the server's priority) | ${f.idle.loopP99Ms.toFixed(1)} → ${f.loaded.loopP99Ms.toFixed(1)} ms (${f.loadedLevel.loopP99Ms.toFixed(1)} ms) |`,
    `| \`GET /health\` p99: idle → burning | ${f.idle.healthP99Ms.toFixed(1)} → ${f.loaded.healthP99Ms.toFixed(1)} ms |`,
  ].join('\n');
}
