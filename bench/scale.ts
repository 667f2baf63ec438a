/**
 * The catalog at scale: each implementation builds a server of 10,000 tools in its own child process
 * (fresh heap, nothing else loaded but the bench's own imports), and reports how long registration
 * took, how long the event loop was held at most in the second after it (mcpkit converts schemas to
 * JSON Schema in the background then), the first and the steady `tools/list` through an in-memory
 * SDK client, and the process's memory once it holds the catalog and has listed it. The two
 * implementations alternate over the rounds; figures are medians with ranges.
 *
 * The children run on plain `node`, not under the TypeScript loader the bench itself uses (tsx keeps
 * a second V8 isolate of ~40 MB), so their memory is what a built app's would be: this file is
 * bundled (with `mcpkit` from `dist/`, other packages left as imports) to `node_modules/.cache/` and
 * forked from there.
 *
 * Run alone: `tsx --tsconfig bench/tsconfig.json bench/scale.ts [--quick]`
 */
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { build } from 'esbuild';
import { forkServer, median, settle } from './measure.js';
import { buildMcpkit, buildSdk, catalogTools, type Impl } from './targets.js';

const CHILD_FLAG = '--scale-child';
const IMPLS: readonly Impl[] = ['mcpkit', 'sdk'];

/** What one child measured. */
interface ScaleSample {
  registerMs: number;
  maxLagMs: number;
  firstListMs: number;
  listMs: number;
  /** `tools/list` answered to a bare JSON-RPC request on the same pair: the server's own time. */
  bareListMs: number;
  rssMb: number;
  heapMb: number;
  rssBeforeMb: number;
}

async function child(impl: Impl, count: number): Promise<void> {
  const specs = catalogTools(count);
  await settle();
  const rssBefore = process.memoryUsage.rss();
  const started = performance.now();
  const server = impl === 'mcpkit' ? buildMcpkit(specs) : buildSdk(specs);
  const registerMs = performance.now() - started;
  // The longest the event loop is held in the second after registration.
  let maxLagMs = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 5);
    last = now;
  }, 5);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  clearInterval(ticker);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'scale-bench', version: '0.0.0' });
  await client.connect(clientSide);
  const list = async () => {
    const t0 = performance.now();
    const { tools } = await client.listTools(undefined, { cacheMode: 'bypass' });
    if (tools.length !== count) throw new Error(`${impl}: listed ${tools.length} of ${count} tools`);
    return performance.now() - t0;
  };
  const firstListMs = await list();
  const lists: number[] = [];
  for (let i = 0; i < 5; i++) lists.push(await list());
  // The same request without the client: what the server itself takes, the client's parse of ten
  // thousand tools (the SDK client checks each against its schema) left out.
  const clientReceives = clientSide.onmessage!;
  const bareList = async (id: number) => {
    const t0 = performance.now();
    const answered = new Promise<void>((resolve) => {
      clientSide.onmessage = (message, extra) => {
        if ((message as { id?: unknown }).id !== `bare-${id}`) return clientReceives(message, extra);
        clientSide.onmessage = clientReceives;
        resolve();
      };
    });
    await clientSide.send({ jsonrpc: '2.0', id: `bare-${id}`, method: 'tools/list' });
    await answered;
    return performance.now() - t0;
  };
  const bareLists: number[] = [];
  for (let i = 0; i < 5; i++) bareLists.push(await bareList(i));
  await settle();
  const sample: ScaleSample = {
    registerMs,
    maxLagMs,
    firstListMs,
    listMs: median(lists),
    bareListMs: median(bareLists),
    rssMb: process.memoryUsage.rss() / 1e6,
    heapMb: process.memoryUsage().heapUsed / 1e6,
    rssBeforeMb: rssBefore / 1e6,
  };
  process.on('message', (message: string) => {
    if (message === 'figures') process.send!({ type: 'figures', ...sample });
    if (message === 'exit') process.exit(0);
  });
  process.send!({ type: 'ready', port: 0 });
}

type Stat = { median: number; min: number; max: number };

export interface ScaleFigures {
  tools: number;
  rounds: number;
  rows: Record<Impl, Record<keyof ScaleSample, Stat>>;
}

function stat(values: readonly number[]): Stat {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Builds `count` tools in fresh child processes, alternating mcpkit and the bare SDK v2. */
export async function measureScale(
  log: (line: string) => void,
  options: { rounds: number; tools?: number },
): Promise<ScaleFigures> {
  const count = options.tools ?? 10_000;
  const samples: Record<Impl, ScaleSample[]> = { mcpkit: [], sdk: [] };
  const childFile = fileURLToPath(
    new URL('../node_modules/.cache/mcpkit-bench/scale-child.mjs', import.meta.url),
  );
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    outfile: childFile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  });
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? IMPLS : [...IMPLS].reverse();
    for (const impl of order) {
      const server = await forkServer(childFile, [CHILD_FLAG, impl, String(count)], {
        name: `scale ${impl}`,
        execArgv: [],
      });
      const figures = await server.ask<ScaleSample>('figures');
      await server.stop();
      samples[impl].push(figures);
      log(
        `  scale ${count} · round ${round + 1} · ${impl}: register ${figures.registerMs.toFixed(0)} ms, ` +
          `loop held ≤ ${figures.maxLagMs.toFixed(0)} ms, first list ${figures.firstListMs.toFixed(0)} ms, ` +
          `list ${figures.listMs.toFixed(1)} ms, RSS ${figures.rssMb.toFixed(0)} MB`,
      );
    }
  }
  const rows = {} as ScaleFigures['rows'];
  for (const impl of IMPLS) {
    const keys = Object.keys(samples[impl][0]!) as (keyof ScaleSample)[];
    rows[impl] = Object.fromEntries(
      keys.filter((k) => k in samples[impl][0]!).map((k) => [k, stat(samples[impl].map((s) => s[k]))]),
    ) as Record<keyof ScaleSample, Stat>;
  }
  return { tools: count, rounds: options.rounds, rows };
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

function cell(s: Stat): string {
  return `${fmt(s.median)} <sub>(${fmt(s.min)}–${fmt(s.max)})</sub>`;
}

export function renderScale(f: ScaleFigures): string {
  const row = (label: string, key: keyof ScaleSample) =>
    `| ${label} | ${cell(f.rows.mcpkit[key])} | ${cell(f.rows.sdk[key])} |`;
  return [
    `**The catalog at scale** (${f.tools.toLocaleString('en-US')} tools with 2–3 field zod schemas, each implementation in a fresh child process, ${f.rounds} alternating rounds, medians with ranges):`,
    '',
    '| Measurement | mcpkit | bare SDK v2 |',
    '| --- | ---: | ---: |',
    row('registering every tool (ms)', 'registerMs'),
    row('longest event-loop hold in the next second (ms)', 'maxLagMs'),
    row('first `tools/list` via Client (ms)', 'firstListMs'),
    row('later `tools/list` via Client (ms, median of 5)', 'listMs'),
    row(
      "`tools/list` answered to a bare JSON-RPC request, no client's checks (ms, median of 5)",
      'bareListMs',
    ),
    row('process RSS holding the catalog, after listing (MB)', 'rssMb'),
    row('heap used (MB)', 'heapMb'),
    row("process RSS before registering, with the tools' zod schemas built (MB)", 'rssBeforeMb'),
    '',
    'mcpkit registers without converting zod schemas: a zod object is known to describe an object, and its JSON Schema is built in the background in slices of a few milliseconds (or by the first `tools/list`, whichever comes first). The SDK converts every schema on every `tools/list`.',
  ].join('\n');
}

if (process.argv[2] === CHILD_FLAG) {
  // The bundled child, on plain node.
  await child(process.argv[3] as Impl, Number(process.argv[4]));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const figures = await measureScale((line) => console.log(line), { rounds: quick ? 1 : 3 });
  console.log(`\n${renderScale(figures)}`);
}
