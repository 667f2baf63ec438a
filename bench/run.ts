/**
 * mcpkit vs bare SDK v2 `McpServer`, measured in one run: `tools/call` throughput in memory and over
 * Streamable HTTP, and `tools/list` time at 1,000 and 10,000 tools. Prints a markdown report and
 * rewrites the marked section of docs/benchmarks.md.
 *
 *   npm run bench                 full run (about 6 minutes), updates docs/benchmarks.md
 *   npm run bench -- --quick      one short round, prints only
 *   npm run bench -- --no-write   full run, prints only
 *   npm run bench -- --only=policy,websocket
 *                                 only those modules, prints only (the section in docs/benchmarks.md
 *                                 describes one whole run, so a partial run never rewrites it)
 *
 * Modules: core (the throughput and tools/list tables), resources, executor, operations, completions,
 * integrations, capacity (servers in child processes under autocannon: MCP over HTTP in three modes
 * beside the bare SDK v2 and a raw node:http endpoint, REST on every mount beside a bare route, and
 * the same MCP servers at 512 connections), scale (10,000 tools registered and listed in fresh child
 * processes, mcpkit beside the bare SDK v2), websocket, policy, isolation (tool isolation's cost
 * per call, a pool's start, and the server's answers while every worker burns CPU: the server in a
 * child process under autocannon), redis (rate-limit
 * buckets in memory beside mcpkit/redis on a local redis-server), cluster (one node without Redis,
 * one with it, and three behind a round-robin proxy, each in its own process, under autocannon).
 */
import { performance } from 'node:perf_hooks';
import { measureCapacity, measureOverload, renderCapacity, renderOverload } from './capacity.js';
import { measureCluster, renderCluster } from './cluster.js';
import { measureCompletions, renderCompletions } from './completions.js';
import { measureExecutor, renderExecutor } from './executor.js';
import { measureGateway, renderGateway } from './gateway.js';
import { measureIntegrations, renderIntegrations } from './integrations.js';
import { measureIsolation, renderIsolation } from './isolation.js';
import { canForceGc, median, sample, settle, throughput } from './measure.js';
import { measureOperations, renderOperations } from './operations.js';
import { measurePolicy, renderPolicy } from './policy.js';
import { measureRedis, renderRedis } from './redis.js';
import {
  type ListRow,
  machineInfo,
  renderSection,
  type Stat,
  type ThroughputRow,
  writeSection,
} from './report.js';
import { measureResources, renderResources } from './resources.js';
import { measureScale, renderScale } from './scale.js';
import {
  catalogTools,
  echoTool,
  httpTarget,
  type Impl,
  memoryTarget,
  type RawTarget,
  rawMemoryTarget,
  type Target,
  type ToolSpec,
} from './targets.js';
import { measureWebSocket, renderWebSocket } from './websocket.js';

const MODULES = [
  'core',
  'resources',
  'executor',
  'operations',
  'completions',
  'integrations',
  'gateway',
  'capacity',
  'scale',
  'websocket',
  'policy',
  'isolation',
  'redis',
  'cluster',
] as const;
type Module = (typeof MODULES)[number];

const flags = new Set(process.argv.slice(2));
const QUICK = flags.has('--quick');
/** The modules named by `--only=a,b`; `undefined` runs them all. */
const ONLY = parseOnly(process.argv.slice(2));
const WRITE = !QUICK && !flags.has('--no-write') && ONLY === undefined;
const ROUNDS = QUICK ? 1 : 3;
/** Throughput alternates more, shorter rounds: on a shared 2-core machine noise comes in bursts. */
const THROUGHPUT_ROUNDS = QUICK ? 1 : 9;
const DURATION_MS = QUICK ? 500 : 600;
const WARMUP_MS = QUICK ? 1_000 : 2_500;
const LIST_SIZES = [1_000, 10_000];
/** Timed `tools/list` calls per round and implementation: fewer where one call takes a second. */
const listSamples = (count: number): number => (QUICK ? 2 : count >= 10_000 ? 3 : 5);
const LIST_WARMUP = 3;
const IMPLS: readonly Impl[] = ['mcpkit', 'sdk'];
const DOC = new URL('../docs/benchmarks.md', import.meta.url);

type PerImpl<T> = Record<Impl, T>;

function parseOnly(args: readonly string[]): ReadonlySet<Module> | undefined {
  const values = args.filter((a) => a.startsWith('--only=')).flatMap((a) => a.slice(7).split(','));
  if (values.length === 0) return undefined;
  const unknown = values.filter((v) => !(MODULES as readonly string[]).includes(v));
  if (unknown.length > 0) {
    throw new Error(`--only: unknown module ${unknown.join(', ')} (known: ${MODULES.join(', ')})`);
  }
  return new Set(values as Module[]);
}

/** Whether this run measures `module`. */
function runs(module: Module): boolean {
  return ONLY === undefined || ONLY.has(module);
}

/** The two implementations in the order of `round`: flipped every round so neither always goes first. */
function order(round: number): readonly Impl[] {
  return round % 2 === 0 ? IMPLS : [...IMPLS].reverse();
}

function stat(values: readonly number[]): Stat {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function both<T>(make: (impl: Impl) => Promise<T>): Promise<PerImpl<T>> {
  return { mcpkit: await make('mcpkit'), sdk: await make('sdk') };
}

const ECHO_ARGS = { text: 'hello' };

function echoCall(target: Target): () => Promise<unknown> {
  return async () => {
    const result = await target.client.callTool({ name: 'echo', arguments: ECHO_ARGS });
    if (result.isError) throw new Error(`${target.impl}: echo failed: ${JSON.stringify(result.content)}`);
  };
}

async function checkEcho(target: Target): Promise<void> {
  const result = await target.client.callTool({ name: 'echo', arguments: ECHO_ARGS });
  const expected = JSON.stringify([{ type: 'text', text: ECHO_ARGS.text }]);
  if (JSON.stringify(result.content) !== expected || result.isError) {
    throw new Error(`${target.impl}: unexpected echo result ${JSON.stringify(result)}`);
  }
}

/** `tools/call` ops/s of both implementations at `concurrency`, alternating across rounds. */
async function measureThroughput(
  scenario: string,
  connect: (impl: Impl, tools: readonly ToolSpec[]) => Promise<Target>,
  concurrency: number,
): Promise<ThroughputRow> {
  const targets = await both((impl) => connect(impl, [echoTool()]));
  try {
    for (const impl of IMPLS) {
      await checkEcho(targets[impl]);
      await throughput(echoCall(targets[impl]), concurrency, WARMUP_MS);
    }
    const results: PerImpl<number[]> = { mcpkit: [], sdk: [] };
    const cpu: PerImpl<number[]> = { mcpkit: [], sdk: [] };
    for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
      for (const impl of order(round)) {
        await settle();
        const run = await throughput(echoCall(targets[impl]), concurrency, DURATION_MS);
        results[impl].push(run.opsPerSec);
        cpu[impl].push(run.cpuUsPerOp);
        log(
          `  ${scenario} · round ${round + 1} · ${impl}: ${Math.round(run.opsPerSec)} ops/s, ` +
            `${run.cpuUsPerOp.toFixed(1)} µs CPU per call`,
        );
      }
    }
    return {
      scenario,
      mcpkit: stat(results.mcpkit),
      sdk: stat(results.sdk),
      cpuMcpkit: median(cpu.mcpkit),
      cpuSdk: median(cpu.sdk),
    };
  } finally {
    await Promise.all(IMPLS.map((impl) => targets[impl].close()));
  }
}

async function timed<T>(make: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await make();
  return { value, ms: performance.now() - started };
}

/** `tools/list` time of both implementations at `count` tools, via the Client and raw. */
async function measureList(count: number): Promise<ListRow> {
  // Fresh schemas for every server, built before the clock starts.
  const specs = {
    client: await both(async () => catalogTools(count)),
    raw: await both(async () => catalogTools(count)),
  };
  const register: PerImpl<number> = { mcpkit: 0, sdk: 0 };
  const clients = await both(async (impl) => {
    await settle();
    const { value, ms } = await timed(() => memoryTarget(impl, specs.client[impl]));
    register[impl] = ms;
    log(`  tools/list ${count} · ${impl}: built and connected in ${Math.round(ms)} ms`);
    return value;
  });
  const raws = await both((impl) => rawMemoryTarget(impl, specs.raw[impl]));
  const viaClient = (target: Target) => async () => {
    const { tools } = await target.client.listTools(undefined, { cacheMode: 'bypass' });
    if (tools.length !== count) throw new Error(`${target.impl}: listed ${tools.length} of ${count} tools`);
  };
  const raw = (target: RawTarget) => () => target.request('tools/list');
  try {
    for (const impl of IMPLS) {
      await sample(viaClient(clients[impl]), LIST_WARMUP);
      await sample(raw(raws[impl]), LIST_WARMUP);
    }
    const client: PerImpl<number[]> = { mcpkit: [], sdk: [] };
    const server: PerImpl<number[]> = { mcpkit: [], sdk: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of order(round)) {
        await settle();
        client[impl].push(median(await sample(viaClient(clients[impl]), listSamples(count))));
        await settle();
        server[impl].push(median(await sample(raw(raws[impl]), listSamples(count))));
        log(
          `  tools/list ${count} · round ${round + 1} · ${impl}: ` +
            `client ${client[impl].at(-1)!.toFixed(1)} ms, server ${server[impl].at(-1)!.toFixed(1)} ms`,
        );
      }
    }
    return {
      tools: count,
      clientMcpkit: stat(client.mcpkit),
      clientSdk: stat(client.sdk),
      rawMcpkit: stat(server.mcpkit),
      rawSdk: stat(server.sdk),
      registerMcpkit: register.mcpkit,
      registerSdk: register.sdk,
    };
  } finally {
    await Promise.all(IMPLS.flatMap((impl) => [clients[impl].close(), raws[impl].close()]));
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const machine = machineInfo();
  log(
    `mcpkit bench: ${machine.cpu} (${machine.cores} cores), Node ${machine.node}, SDK ${machine.sdk}, ` +
      `load ${machine.load.toFixed(2)}`,
  );
  if (!canForceGc) log('(no GC control available; phases run without a forced GC)');

  const throughputRows: ThroughputRow[] = [];
  const listRows: ListRow[] = [];
  if (runs('core')) {
    throughputRows.push(await measureThroughput('in-memory, 1 in flight', memoryTarget, 1));
    throughputRows.push(await measureThroughput('in-memory, 64 in flight', memoryTarget, 64));
    throughputRows.push(await measureThroughput('Streamable HTTP (loopback), 64 in flight', httpTarget, 64));
    for (const count of LIST_SIZES) listRows.push(await measureList(count));
  }

  const resourceFigures = runs('resources') ? await measureResources(log) : undefined;
  const executorFigures = runs('executor') ? await measureExecutor(log, QUICK) : undefined;
  const operations = runs('operations') ? await measureOperations(log, QUICK) : undefined;
  const completionFigures = runs('completions') ? await measureCompletions(log) : undefined;
  const integrationFigures = runs('integrations') ? await measureIntegrations(log) : undefined;
  const gatewayFigures = runs('gateway') ? await measureGateway(log, QUICK) : undefined;
  const capacityFigures = runs('capacity')
    ? await measureCapacity(log, { rounds: QUICK ? 1 : 3, seconds: QUICK ? 1 : 4 })
    : undefined;
  const scaleFigures = runs('scale') ? await measureScale(log, { rounds: QUICK ? 1 : 3 }) : undefined;
  const overloadFigures = runs('capacity')
    ? await measureOverload(log, { seconds: QUICK ? 5 : 20 })
    : undefined;
  const websocketFigures = runs('websocket') ? await measureWebSocket(log, { quick: QUICK }) : undefined;
  // The policy's cost is a ratio within ~10 %: three times the rounds at a third of the length, so
  // the three modes sit closer together in time and more pairs feed the median ratio, spread over
  // three sets of fresh processes.
  const policyFigures = runs('policy')
    ? await measurePolicy(log, {
        rounds: THROUGHPUT_ROUNDS * 3,
        durationMs: DURATION_MS / 3,
        warmupMs: WARMUP_MS,
        generations: QUICK ? 1 : 3,
      })
    : undefined;

  const isolationFigures = runs('isolation') ? await measureIsolation(log, QUICK) : undefined;
  const redisFigures = runs('redis')
    ? await measureRedis(log, { rounds: THROUGHPUT_ROUNDS, durationMs: DURATION_MS, warmupMs: WARMUP_MS })
    : undefined;
  const clusterFigures = runs('cluster')
    ? await measureCluster(log, { rounds: QUICK ? 1 : 3, seconds: QUICK ? 2 : 4 })
    : undefined;

  const blocks = [
    runs('core')
      ? renderSection(
          machine,
          {
            rounds: ROUNDS,
            throughputRounds: THROUGHPUT_ROUNDS,
            durationMs: DURATION_MS,
            listSamples: LIST_SIZES.map(listSamples),
            gcForced: canForceGc,
            totalSeconds: (performance.now() - started) / 1000,
          },
          throughputRows,
          listRows,
        )
      : `Partial run (${[...ONLY!].join(', ')}) on ${machine.cpu} (${machine.cores} cores), Node ${machine.node}, ` +
        `MCP SDK ${machine.sdk}, load average ${machine.load.toFixed(2)} at start.`,
    resourceFigures && renderResources(resourceFigures),
    executorFigures && renderExecutor(executorFigures),
    operations && renderOperations(operations),
    completionFigures && renderCompletions(completionFigures),
    integrationFigures && renderIntegrations(integrationFigures),
    gatewayFigures && renderGateway(gatewayFigures),
    capacityFigures && renderCapacity(capacityFigures),
    overloadFigures && renderOverload(overloadFigures),
    scaleFigures && renderScale(scaleFigures),
    websocketFigures && renderWebSocket(websocketFigures),
    policyFigures && renderPolicy(policyFigures),
    isolationFigures && renderIsolation(isolationFigures),
    redisFigures && renderRedis(redisFigures),
    clusterFigures && renderCluster(clusterFigures),
  ];
  const section = blocks.filter((block): block is string => block !== undefined).join('\n\n');
  process.stdout.write(`\n${section}\n`);
  if (WRITE) {
    writeSection(DOC, section);
    log(`\nwrote ${DOC.pathname}`);
  }
}

main().then(
  // Lingering sockets or timers must not hold the process open once the report is out.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
