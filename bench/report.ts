/** Formatting of results as markdown, machine information, and the update of docs/benchmarks.md. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

export const START_MARKER = '<!-- bench:start -->';
export const END_MARKER = '<!-- bench:end -->';

/** Medians of the rounds, with their spread. */
export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface ThroughputRow {
  scenario: string;
  mcpkit: Stat;
  sdk: Stat;
  /** Median CPU time per call, µs (client and server share the process). */
  cpuMcpkit: number;
  cpuSdk: number;
}

export interface ListRow {
  tools: number;
  /** Median `Client.listTools()` time in ms. */
  clientMcpkit: Stat;
  clientSdk: Stat;
  /** Median raw JSON-RPC `tools/list` time in ms (server side plus serialisation). */
  rawMcpkit: Stat;
  rawSdk: Stat;
  /** Time to build the server with its tools, in ms (once). */
  registerMcpkit: number;
  registerSdk: number;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  sdk: string;
  date: string;
  /** One-minute load average when the run started: above ~0.5 per core, expect noise. */
  load: number;
}

export interface RunInfo {
  throughputRounds: number;
  rounds: number;
  durationMs: number;
  /** Timed calls per round, by entry of the list table. */
  listSamples: number[];
  gcForced: boolean;
  totalSeconds: number;
}

function readVersion(pkg: string): string {
  try {
    const url = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    sdk: readVersion('@modelcontextprotocol/server'),
    date: new Date().toISOString().slice(0, 10),
    load: loadavg()[0] ?? 0,
  };
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function ops(stat: Stat): string {
  return `${integer.format(stat.median)} <sub>(${integer.format(stat.min)}–${integer.format(stat.max)})</sub>`;
}

function ms(value: number): string {
  return value >= 100 ? integer.format(value) : value.toFixed(value >= 10 ? 1 : 2);
}

function msStat(stat: Stat): string {
  return `${ms(stat.median)} <sub>(${ms(stat.min)}–${ms(stat.max)})</sub>`;
}

function ratio(value: number): string {
  return `${value.toFixed(2)}×`;
}

/** The generated section: machine, throughput table, tools/list table. */
export function renderSection(
  machine: MachineInfo,
  run: RunInfo,
  throughputRows: ThroughputRow[],
  listRows: ListRow[],
): string {
  const lines = [
    `Measured ${machine.date} on ${machine.cpu} (${machine.cores} cores), Node ${machine.node}, ` +
      `MCP SDK ${machine.sdk}, load average ${machine.load.toFixed(2)} at start. ${run.rounds} alternating rounds per measurement (${run.throughputRounds} for throughput); figures are the median ` +
      `of the rounds, with the range in brackets. GC ${run.gcForced ? 'forced' : 'not forced'} between ` +
      `phases. Whole run: ${Math.round(run.totalSeconds)} s.`,
    '',
    `**\`tools/call\` round trips per second** (higher is better; ${run.durationMs / 1000} s per round):`,
    '',
    '| Scenario | mcpkit (ops/s) | bare SDK (ops/s) | mcpkit / SDK | CPU per call, mcpkit / SDK (µs) | SDK / mcpkit by CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...throughputRows.map(
      (r) =>
        `| ${r.scenario} | ${ops(r.mcpkit)} | ${ops(r.sdk)} | ${ratio(r.mcpkit.median / r.sdk.median)} | ` +
        `${r.cpuMcpkit.toFixed(1)} / ${r.cpuSdk.toFixed(1)} | ${ratio(r.cpuSdk / r.cpuMcpkit)} |`,
    ),
    '',
    'The CPU columns divide the process CPU time of a round by its calls (client and server share the process, so both columns include the same client work): on a shared machine they move less than ops/s.',
    '',
    `**\`tools/list\` time** (lower is better; median of ${run.listSamples.join(' / ')} calls per round, in ms):`,
    '',
    '| Tools | mcpkit, via Client | bare SDK, via Client | speedup | mcpkit, server only | bare SDK, server only | speedup |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...listRows.map(
      (r) =>
        `| ${integer.format(r.tools)} | ${msStat(r.clientMcpkit)} | ${msStat(r.clientSdk)} | ` +
        `${ratio(r.clientSdk.median / r.clientMcpkit.median)} | ${msStat(r.rawMcpkit)} | ${msStat(r.rawSdk)} | ` +
        `${ratio(r.rawSdk.median / r.rawMcpkit.median)} |`,
    ),
    '',
    'Building the server with those tools and connecting a client (one-off, in ms, in the bench process; mcpkit converts each schema once, in the background after registration or at the first `tools/list`; the SDK converts every schema on every `tools/list`):',
    '',
    '| Tools | mcpkit | bare SDK |',
    '| ---: | ---: | ---: |',
    ...listRows.map((r) => `| ${integer.format(r.tools)} | ${ms(r.registerMcpkit)} | ${ms(r.registerSdk)} |`),
  ];
  return lines.join('\n');
}

const INTRO = `# Benchmarks

\`npm run bench\` (\`bench/run.ts\`) measures mcpkit against a bare MCP SDK v2 \`McpServer\` in the same
process and the same run, and rewrites the section below. It is not part of \`npm test\`.

Method:

- **Same tools on both sides.** Each tool is registered with the same zod input schema: through
  \`server.tools.register\` on mcpkit and \`McpServer.registerTool\` on the SDK. The round-trip tool is
  an \`echo\` with \`z.object({ text: z.string() })\`; mcpkit's handler returns the string, the SDK's the
  equivalent \`CallToolResult\`, so both send the same result.
- **Same client.** An SDK v2 \`Client\` (default options: the 2025-era \`initialize\` handshake) drives
  both. In memory it is connected over \`InMemoryTransport.createLinkedPair()\`: mcpkit through
  \`server.connect()\`, the SDK through \`McpServer.connect()\`.
- **Streamable HTTP** runs on loopback with one client session: mcpkit through \`listen(server, { port: 0 })\`,
  the SDK as one sessionful \`WebStandardStreamableHTTPServerTransport\` on node:http behind mcpkit's
  own \`toNodeListener\` bridge, so only the request handling differs. Both answer POSTs with SSE
  streams (the SDK default). Client and server share one thread, so these figures count the
  client's work too.
- **Throughput** runs 1 or 64 concurrent callers for a fixed time after a warm-up.
- **\`tools/list\`** times whole calls at 1,000 and 10,000 tools with 2–3 field schemas, two ways:
  through \`Client.listTools()\` (bypassing the client's response cache), which includes the
  client's validation of the result, and as raw JSON-RPC on the in-memory pair with the answer
  serialised by \`JSON.stringify\`, which isolates the server's share.
- **Registration cost** is shown too: mcpkit converts each schema to JSON Schema once, when the tool
  is registered; the SDK converts every schema on every \`tools/list\`.
- **Noise control.** The two implementations alternate (AB, BA, AB: the order flips each round), a
  full GC runs between phases where the engine allows it, and each figure is the median of the
  rounds, with the range beside it. The one-minute load average at the start is recorded: run it on
  an idle machine, and read differences under ~10 % (or any figure with a wide range) as noise.
- mcpkit runs from its built package (\`dist/\`, what users install; \`npm run bench\` builds first), the
  SDK from its published build.
`;

/** Replaces the marked section of the document at `path`, creating it with an intro if missing. */
export function writeSection(path: URL, section: string): void {
  const block = `${START_MARKER}\n${section}\n${END_MARKER}`;
  const current = existsSync(path) ? readFileSync(path, 'utf8') : `${INTRO}\n## Results\n\n${block}\n`;
  const start = current.indexOf(START_MARKER);
  const end = current.indexOf(END_MARKER);
  let next: string;
  if (start !== -1 && end > start) {
    next = current.slice(0, start) + block + current.slice(end + END_MARKER.length);
  } else {
    next = `${current.trimEnd()}\n\n## Results\n\n${block}\n`;
  }
  writeFileSync(path, next);
}
