/**
 * Tool isolation: what a worker thread or a child process adds to an echo call (p50, sequential),
 * what a pool's first call costs (its worker starting), and whether the server keeps answering while
 * every worker burns CPU. For the last, the server (mcpkit on `listen()`, with the burning tool) runs
 * in a child process of its own, and autocannon drives it from this process: REST echo and MCP
 * `tools/call` echo from 4 connections, `/health` polled 20 times a second. The event-loop delay and
 * the CPU time of the server's main thread are measured in the server's process, so the load
 * generator's own work is on neither its loop nor its thread.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createMcpServer } from 'mcpkit';
import { createIsolation, listen } from 'mcpkit/node';
import { z } from 'zod';
import { cannon, REST, type Replay, session } from './capacity.js';
import { type ChildServer, forkServer, median, sample, serveParent, settle } from './measure.js';

const TOOLS = new URL('./isolatedTools.mjs', import.meta.url);
const CHILD_FLAG = '--isolation-child';
/** `tsx --tsconfig bench/tsconfig.json bench/isolation.ts --cost`: the cost per call only, no load phases. */
const COST_FLAG = '--cost';
/** Echo connections of the load generator: a modest, fixed number. */
const CONNECTIONS = 4;
/** `/health` polls per second, from one more connection. */
const HEALTH_RATE = 20;
/**
 * The period of `monitorEventLoopDelay`'s timer, ms. Its histogram holds the intervals between the
 * timer's runs, so a loop that is never late reads this much: the delay reported is the interval
 * minus the period.
 */
const RESOLUTION_MS = 10;

export interface IsolationFigures {
  inThreadUs: number;
  workerUs: number;
  processUs: number;
  /** CPU time of the bench's main thread per call, µs (`undefined` off Linux): steadier than latency. */
  cpuUs: { inThread: number | undefined; worker: number | undefined; process: number | undefined };
  workerStartMs: number;
  processStartMs: number;
  workers: number;
  /** Seconds of each half of a phase (REST echo, then MCP echo). */
  loadSeconds: number;
  /** Rounds of idle → burning → burning at the server's priority; figures are their medians. */
  rounds: number;
  /** The machine's 1-minute load average before and after the phases. */
  loadAverage: [number, number];
  idle: LoadPhase;
  /** Burning workers under `workerPriority: 'idle'` (`SCHED_IDLE` where it can be set). */
  loaded: LoadPhase;
  /** Burning workers at the server's own priority (`workerPriority: 0`). */
  loadedLevel: LoadPhase;
  /** Each round's echo rate while burning (`'idle'`), as a share of the same round's idle rate. */
  ratios: { rest: number[]; mcp: number[] };
}

/** One half of a phase: one kind of echo call under autocannon, `/health` polled beside it. */
interface Half {
  echoPerSec: number;
  echoP99Ms: number;
  healthP99Ms: number;
  /** Event-loop delay p99 in the server's process: how late its 10 ms timer ran. */
  loopP99Ms: number;
  /** CPU time of the server's main thread, as a share of one core (`undefined` off Linux). */
  mainCpu: number | undefined;
  /** CPU time of the load generator (this process), as a share of one core. */
  clientCpu: number;
}

interface LoadPhase {
  rest: Half;
  mcp: Half;
}

/** CPU time of this process's main thread so far, in ns, from /proc (Linux); `undefined` elsewhere. */
function mainThreadCpuNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
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
  const cpu: Record<string, number | undefined> = {};
  const us = async (name: string) => {
    await sample(call(name), count / 5);
    await settle();
    const before = mainThreadCpuNs();
    const p50 = median(await sample(call(name), count)) * 1000;
    const after = mainThreadCpuNs();
    cpu[name] = before === undefined || after === undefined ? undefined : (after - before) / count / 1000;
    return p50;
  };
  const figures = {
    inThreadUs: await us('echo'),
    workerUs: await us('echo_worker'),
    processUs: await us('echo_process'),
    workerStartMs,
    processStartMs,
    cpuUs: { inThread: cpu.echo, worker: cpu.echo_worker, process: cpu.echo_process },
  };
  await server.close();
  await isolation.close();
  return figures;
}

const cpuText = (value: number | undefined) => (value === undefined ? 'n/a' : `${value.toFixed(0)} µs`);

/** The cost per call only (no load phases), printed: `--cost` on the command line. */
async function costOnly(): Promise<void> {
  const load = loadavg()[0]!;
  const f = await overhead(false);
  console.log(
    JSON.stringify({
      loadAverage: [load, loadavg()[0]!].map((l) => Number(l.toFixed(2))),
      p50Us: { inThread: f.inThreadUs, worker: f.workerUs, process: f.processUs },
      overheadUs: { worker: f.workerUs - f.inThreadUs, process: f.processUs - f.inThreadUs },
      mainThreadCpuUsPerCall: f.cpuUs,
      firstCallMs: { worker: f.workerStartMs, process: f.processStartMs },
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// child: the server, with its event loop watched

/** CPU time of this process's main thread so far, in ms, from /proc (Linux); `undefined` elsewhere. */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks of 10 ms
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * The server: echo, and the burning tool in two pools (workers under `workerPriority: 'idle'` and at
 * the server's priority). Answers the parent's `loop-start` / `loop-stop` (event-loop delay and main-thread CPU
 * over the span between them), `burn` / `burn_level` (one burning call per worker, for `burnMs`) and
 * `burned` (once those calls have answered).
 */
async function child(burnMs: number): Promise<void> {
  const workers = Math.max(1, availableParallelism() - 1);
  const server = createMcpServer({ logLevel: 'silent' });
  const lowered = createIsolation({ maxWorkers: workers, workerPriority: 'idle' });
  const level = createIsolation({ maxWorkers: workers, workerPriority: 0 });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  const burner = { inputSchema: { ms: z.number() }, isolate: { export: 'burn', timeoutMs: 120_000 } };
  server.tools.register(lowered.tool(TOOLS, { name: 'burn', ...burner }));
  server.tools.register(level.tool(TOOLS, { name: 'burn_level', ...burner }));
  const listening = await listen(server, { port: 0 });
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  let span = { started: 0, cpuMs: undefined as number | undefined };
  let burning: Promise<boolean> | undefined;
  process.on('message', (message: string) => {
    if (message === 'loop-start') {
      histogram.reset();
      histogram.enable();
      span = { started: performance.now(), cpuMs: mainThreadCpuMs() };
      process.send!({ type: message });
    } else if (message === 'loop-stop') {
      histogram.disable();
      const cpuMs = mainThreadCpuMs();
      const mainCpu =
        cpuMs === undefined || span.cpuMs === undefined
          ? undefined
          : (cpuMs - span.cpuMs) / (performance.now() - span.started);
      process.send!({
        type: message,
        loopP99Ms: Math.max(0, histogram.percentile(99) / 1e6 - RESOLUTION_MS),
        mainCpu,
      });
    } else if (message === 'burn' || message === 'burn_level') {
      const calls = Array.from({ length: workers }, () => server.executor.execute(message, { ms: burnMs }));
      burning = Promise.all(calls).then((results) => results.every((r) => !r.isError));
      process.send!({ type: message });
    } else if (message === 'burned') {
      void burning!.then((ok) => process.send!({ type: message, ok }));
    }
  });
  serveParent(listening.port);
}

// ---------------------------------------------------------------------------------------------------
// parent: the load generator

type Result = Record<string, any>;

function failures(result: Result): number {
  return (result.non2xx as number) + (result.errors as number) + (result.timeouts as number);
}

/** One kind of echo call for `seconds` from {@link CONNECTIONS} connections, `/health` polled beside it. */
async function half(server: ChildServer, replay: Replay, seconds: number): Promise<Half> {
  await server.ask('loop-start');
  const cpu = process.cpuUsage();
  const started = performance.now();
  const [echo, health] = (await Promise.all([
    cannon(server, replay, seconds, CONNECTIONS),
    autocannon({
      url: `http://127.0.0.1:${server.port}/health`,
      connections: 1,
      overallRate: HEALTH_RATE,
      duration: seconds,
    }),
  ])) as [Result, Result];
  const used = process.cpuUsage(cpu);
  const clientCpu = (used.user + used.system) / 1000 / (performance.now() - started);
  const loop = await server.ask<{ loopP99Ms: number; mainCpu: number | undefined }>('loop-stop');
  if (failures(echo) > 0 || failures(health) > 0) {
    throw new Error(`${replay.path}: ${failures(echo)} echo and ${failures(health)} /health failures`);
  }
  return {
    echoPerSec: (echo.requests.total as number) / (echo.duration as number),
    echoP99Ms: echo.latency.p99 as number,
    healthP99Ms: health.latency.p99 as number,
    loopP99Ms: loop.loopP99Ms,
    mainCpu: loop.mainCpu,
    clientCpu,
  };
}

function medianHalf(halves: readonly Half[]): Half {
  const cpu = halves.map((h) => h.mainCpu);
  return {
    echoPerSec: median(halves.map((h) => h.echoPerSec)),
    echoP99Ms: median(halves.map((h) => h.echoP99Ms)),
    healthP99Ms: median(halves.map((h) => h.healthP99Ms)),
    loopP99Ms: median(halves.map((h) => h.loopP99Ms)),
    mainCpu: cpu.every((c) => c !== undefined) ? median(cpu as number[]) : undefined,
    clientCpu: median(halves.map((h) => h.clientCpu)),
  };
}

function medianPhase(phases: readonly LoadPhase[]): LoadPhase {
  return { rest: medianHalf(phases.map((p) => p.rest)), mcp: medianHalf(phases.map((p) => p.mcp)) };
}

/**
 * Idle and burning phases, alternating (idle, burning under `'idle'`, burning at the
 * server's priority) for `rounds` rounds, so the machine's other work falls on every kind alike; each
 * figure is the median over the rounds. A phase is a REST half and an MCP half.
 */
async function underLoad(quick: boolean) {
  const workers = Math.max(1, availableParallelism() - 1);
  const seconds = quick ? 3 : 10;
  const rounds = quick ? 1 : 3;
  // One burning call per worker covers both halves, the second of warm-up and the gaps between.
  const burnMs = (2 * seconds + 3) * 1000;
  const server = await forkServer(fileURLToPath(import.meta.url), [CHILD_FLAG, String(burnMs)], {
    name: 'isolation',
  });
  try {
    const rest = REST('/tools/echo/execute');
    const mcp = await session(server.port);
    const loadBefore = loadavg()[0]!;
    await half(server, rest, 3); // warm-up
    await half(server, mcp, 3);
    const phase = async (): Promise<LoadPhase> => ({
      rest: await half(server, rest, seconds),
      mcp: await half(server, mcp, seconds),
    });
    const burningPhase = async (tool: 'burn' | 'burn_level') => {
      await server.ask(tool);
      // A pool's worker takes a few hundred ms to start (they leave after 30 s idle).
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const figures = await phase();
      const { ok } = await server.ask<{ ok: boolean }>('burned');
      if (!ok) throw new Error('a burning call failed');
      return figures;
    };
    const idle: LoadPhase[] = [];
    const loaded: LoadPhase[] = [];
    const loadedLevel: LoadPhase[] = [];
    for (let round = 0; round < rounds; round++) {
      idle.push(await phase());
      loaded.push(await burningPhase('burn'));
      loadedLevel.push(await burningPhase('burn_level'));
    }
    const loadAfter = loadavg()[0]!;
    return {
      workers,
      loadSeconds: seconds,
      rounds,
      loadAverage: [loadBefore, loadAfter] as [number, number],
      idle: medianPhase(idle),
      loaded: medianPhase(loaded),
      loadedLevel: medianPhase(loadedLevel),
      ratios: {
        rest: loaded.map((p, i) => p.rest.echoPerSec / idle[i]!.rest.echoPerSec),
        mcp: loaded.map((p, i) => p.mcp.echoPerSec / idle[i]!.mcp.echoPerSec),
      },
    };
  } finally {
    await server.stop();
  }
}

const pct = (share: number | undefined) => (share === undefined ? 'n/a' : `${(share * 100).toFixed(0)} %`);
const ms = (value: number) => `${value.toFixed(1)} ms`;

export async function measureIsolation(log: (m: string) => void, quick: boolean): Promise<IsolationFigures> {
  const cost = await overhead(quick);
  log(
    `  isolation: echo in thread ${cost.inThreadUs.toFixed(0)} µs, worker ${cost.workerUs.toFixed(0)} µs, ` +
      `process ${cost.processUs.toFixed(0)} µs (main-thread CPU a call ${cpuText(cost.cpuUs.inThread)}, ` +
      `${cpuText(cost.cpuUs.worker)}, ${cpuText(cost.cpuUs.process)}); first call ${cost.workerStartMs.toFixed(0)} / ${cost.processStartMs.toFixed(0)} ms`,
  );
  const load = await underLoad(quick);
  const rate = (kind: 'rest' | 'mcp') =>
    `${load.idle[kind].echoPerSec.toFixed(0)} → ${load.loaded[kind].echoPerSec.toFixed(0)}/s ` +
    `(${pct(load.loaded[kind].echoPerSec / load.idle[kind].echoPerSec)}; rounds ${load.ratios[kind].map(pct).join(', ')}; ` +
    `at the server's priority ${load.loadedLevel[kind].echoPerSec.toFixed(0)}/s)`;
  log(
    `  isolation under load: REST echo ${rate('rest')}, MCP echo ${rate('mcp')}; ` +
      `loop p99 ${ms(load.idle.rest.loopP99Ms)} → ${ms(load.loaded.rest.loopP99Ms)} (${ms(load.loadedLevel.rest.loopP99Ms)}); ` +
      `main thread ${pct(load.idle.rest.mainCpu)} → ${pct(load.loaded.rest.mainCpu)} of a core, load generator ${pct(load.idle.rest.clientCpu)} → ${pct(load.loaded.rest.clientCpu)}; ` +
      `health p99 ${ms(load.idle.rest.healthP99Ms)} → ${ms(load.loaded.rest.healthP99Ms)}; ` +
      `load average ${load.loadAverage.map((l) => l.toFixed(1)).join(' → ')}`,
  );
  return { ...cost, ...load };
}

export function renderIsolation(f: IsolationFigures): string {
  const three = (pick: (h: LoadPhase) => Half, format: (h: Half) => string) =>
    `${format(pick(f.idle))} → ${format(pick(f.loaded))} (${format(pick(f.loadedLevel))})`;
  const echo = (kind: 'rest' | 'mcp') =>
    `${f.idle[kind].echoPerSec.toFixed(0)} → ${f.loaded[kind].echoPerSec.toFixed(0)} calls/s ` +
    `(${pct(f.loaded[kind].echoPerSec / f.idle[kind].echoPerSec)}; rounds ${f.ratios[kind].map(pct).join(', ')}) → ` +
    `${f.loadedLevel[kind].echoPerSec.toFixed(0)} calls/s (${pct(f.loadedLevel[kind].echoPerSec / f.idle[kind].echoPerSec)})`;
  return [
    `**Tool isolation** (\`createIsolation\`; under load: the server in a child process, autocannon in the bench process with ${CONNECTIONS} echo connections and \`/health\` at ${HEALTH_RATE}/s; ` +
      `${f.workers} worker(s) burning CPU under \`workerPriority: 'idle'\`; medians of ${f.rounds} alternating rounds of ${f.loadSeconds} s per half; load average ${f.loadAverage.map((l) => l.toFixed(1)).join(' → ')}):`,
    '',
    '| Measurement | Figure |',
    '| --- | ---: |',
    `| echo call, in the server's thread (p50, sequential) | ${f.inThreadUs.toFixed(0)} µs |`,
    `| echo call, worker level (p50) | ${f.workerUs.toFixed(0)} µs (+${(f.workerUs - f.inThreadUs).toFixed(0)} µs) |`,
    `| echo call, process level (p50) | ${f.processUs.toFixed(0)} µs (+${(f.processUs - f.inThreadUs).toFixed(0)} µs) |`,
    `| main-thread CPU per echo call: in thread / worker / process | ${cpuText(f.cpuUs.inThread)} / ${cpuText(f.cpuUs.worker)} / ${cpuText(f.cpuUs.process)} |`,
    `| first call of a pool (its worker starting): worker / process | ${f.workerStartMs.toFixed(0)} ms / ${f.processStartMs.toFixed(0)} ms |`,
    `| REST echo: idle → burning → burning at the server's priority | ${echo('rest')} |`,
    `| MCP \`tools/call\` echo (one 2025 session): the same | ${echo('mcp')} |`,
    `| event-loop delay p99 (lateness of a 10 ms timer), REST half: idle → burning (at the server's priority) | ${three(
      (p) => p.rest,
      (h) => ms(h.loopP99Ms),
    )} |`,
    `| event-loop delay p99, MCP half | ${three(
      (p) => p.mcp,
      (h) => ms(h.loopP99Ms),
    )} |`,
    `| REST echo p99 | ${three(
      (p) => p.rest,
      (h) => ms(h.echoP99Ms),
    )} |`,
    `| \`GET /health\` p99 (REST half) | ${three(
      (p) => p.rest,
      (h) => ms(h.healthP99Ms),
    )} |`,
    `| server's main thread CPU, share of a core (REST half) | ${three(
      (p) => p.rest,
      (h) => pct(h.mainCpu),
    )} |`,
    `| load generator's CPU (autocannon, bench process), share of a core (REST half) | ${three(
      (p) => p.rest,
      (h) => pct(h.clientCpu),
    )} |`,
  ].join('\n');
}

if (process.argv[2] === CHILD_FLAG) await child(Number(process.argv[3]));
if (process.argv[2] === COST_FLAG) await costOnly();
