/**
 * The policy layer's cost: `tools/call` throughput with the policy on (authentication against five
 * API keys, the caller in a custom role with tool patterns, a rule reserving other tools for admin,
 * and rate limits of 1e9 per minute, which never refuse), with audit off and with audit to a
 * `MemoryAuditSink`, against the same server without any of it, through each remote door:
 *
 * - MCP over HTTP in process (`server.fetch`): 2026-07-28 stateless requests, and one 2025-06-18
 *   session (answered as SSE, the SDK default);
 * - REST `POST /tools/echo/execute` in process (`server.fetch`);
 * - MCP over WebSocket on a loopback socket (`listen()`), one socket.
 *
 * Every request carries the same `Authorization` header in every mode, so the only difference is
 * what the server does with it. Each mode's server and its client run in a child process of their
 * own (this file, forked with `--policy-child <mode> <door>`), so the modes share no JIT state or
 * heap; the parent only alternates them round by round (the order rotates, so none always goes
 * first), as the other throughput benchmarks do, and one child runs at a time.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type CreateMcpServerOptions, createMcpServer, type McpKitServer, MemoryAuditSink } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { median, throughput } from './measure.js';
import type { Stat } from './report.js';

/** The servers compared: no policy, policy without audit, policy with audit. */
type Mode = 'off' | 'on' | 'audit';
const MODES: readonly Mode[] = ['off', 'on', 'audit'];
const MODE_LABEL: Record<Mode, string> = { off: 'off', on: 'policy on', audit: 'policy on + audit' };

/** How many calls each door keeps in flight, unless told otherwise. */
const IN_FLIGHT = 64;
/** High enough that no bucket ever runs dry: the limiter does all its work and never refuses. */
const NEVER_LIMIT = 1e9;

/** Five keys, as a small deployment has; the benchmark calls with `caller`. */
const KEYS = {
  admin: 'bench-admin-key-0123456789abcdef',
  operator: 'bench-operator-key-0123456789ab',
  viewer: 'bench-viewer-key-0123456789abcd',
  ci: 'bench-ci-key-0123456789abcdefghij',
  caller: 'bench-caller-key-0123456789abcd',
};
const AUTH = { authorization: `Bearer ${KEYS.caller}` };

const TEXT = 'hello';
const PARAMS = JSON.stringify({ name: 'echo', arguments: { text: TEXT } });
const MODERN = '2026-07-28';
const LEGACY = '2025-06-18';
const MODERN_PARAMS = JSON.stringify({
  name: 'echo',
  arguments: { text: TEXT },
  _meta: {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': { name: 'mcpkit-bench', version: '0.0.0' },
  },
});
const REST_BODY = JSON.stringify({ arguments: { text: TEXT } });
const INITIALIZE = (version: string) => ({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: version,
    capabilities: {},
    clientInfo: { name: 'mcpkit-bench', version: '0.0.0' },
  },
});

/** One `tools/call` JSON-RPC request with a fresh id. */
function callBody(id: number, params: string): string {
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":${params}}`;
}

/** The policy options of the "on" servers: everything but audit. */
function policyOptions(audit: MemoryAuditSink | undefined): CreateMcpServerOptions {
  return {
    auth: {
      apiKeys: [
        { id: 'admin', roles: ['admin'], key: KEYS.admin },
        { id: 'operator', roles: ['operator'], key: KEYS.operator },
        { id: 'viewer', roles: ['viewer'], key: KEYS.viewer },
        { id: 'ci', roles: ['user'], key: KEYS.ci },
        { id: 'caller', roles: ['bench'], key: KEYS.caller },
      ],
    },
    roles: {
      bench: { permissions: ['tools:read', 'tools:execute'], tools: ['echo', 'text.*', '!text.secret'] },
    },
    rules: [{ tools: ['admin.*'], roles: ['admin'] }],
    rateLimit: { default: NEVER_LIMIT },
    ...(audit && { audit: { sinks: [audit] } }),
  };
}

interface Built {
  server: McpKitServer;
  audit: MemoryAuditSink | undefined;
}

function build(mode: Mode): Built {
  const audit = mode === 'audit' ? new MemoryAuditSink() : undefined;
  const server = createMcpServer({
    name: 'bench',
    version: '0.0.0',
    logLevel: 'silent',
    // `false` for "off", so an MCP_RATE_LIMIT in the environment cannot switch the policy on.
    ...(mode === 'off' ? { rateLimit: false } : policyOptions(audit)),
  });
  server.tools.register({
    name: 'echo',
    description: 'Echo text back',
    inputSchema: { text: z.string() },
    handler: ({ text }) => text,
  });
  server.tools.register({ name: 'admin.purge', description: 'Reserved for admin', handler: () => 'purged' });
  if (server.policy.active !== (mode !== 'off'))
    throw new Error(`${mode}: policy.active is ${server.policy.active}`);
  return { server, audit };
}

/** Checks that the "on" servers really enforce the policy: 401 without a key, the rule applied. */
async function checkEnforced(server: McpKitServer): Promise<void> {
  const anonymous = await request(server, '/tools');
  if (anonymous.status !== 401)
    throw new Error(`policy on: GET /tools without a key got ${anonymous.status}`);
  const listed = await request(server, '/tools', { headers: AUTH });
  const names = ((await listed.json()) as { items: Array<{ name: string }> }).items.map((t) => t.name);
  if (names.join() !== 'echo') throw new Error(`policy on: the caller lists ${JSON.stringify(names)}`);
}

function checkResult(message: any, where: string): void {
  const text = message?.result?.content?.[0]?.text;
  if (message?.error || message?.result?.isError || text !== TEXT) {
    throw new Error(`${where}: unexpected answer ${JSON.stringify(message)}`);
  }
}

/** One open client of a door: `call` runs one `tools/call` and checks its answer. */
interface Caller {
  call(): Promise<void>;
  close(): Promise<void>;
}

interface Door {
  name: string;
  open(server: McpKitServer): Promise<Caller>;
}

const mcpModern: Door = {
  name: `MCP over HTTP, ${MODERN} stateless (\`server.fetch\`)`,
  async open(server) {
    const headers = {
      ...AUTH,
      'mcp-protocol-version': MODERN,
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    };
    let id = 1;
    return {
      async call() {
        const response = await request(server, '/mcp', jsonRpcPost(callBody(id++, MODERN_PARAMS), headers));
        checkResult(await readJsonRpc(response), 'MCP modern');
      },
      close: async () => {},
    };
  },
};

const mcpSession: Door = {
  name: `MCP over HTTP, ${LEGACY} session (\`server.fetch\`)`,
  async open(server) {
    const init = await request(server, '/mcp', jsonRpcPost(INITIALIZE(LEGACY), AUTH));
    const sessionId = init.headers.get('mcp-session-id');
    if (init.status !== 200 || sessionId === null) throw new Error(`initialize got ${init.status}`);
    await init.body?.cancel();
    const headers = { ...AUTH, 'mcp-protocol-version': LEGACY, 'mcp-session-id': sessionId };
    const initialized = await request(
      server,
      '/mcp',
      jsonRpcPost({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers),
    );
    if (initialized.status !== 202) throw new Error(`notifications/initialized got ${initialized.status}`);
    let id = 1;
    return {
      async call() {
        const response = await request(server, '/mcp', jsonRpcPost(callBody(id++, PARAMS), headers));
        checkResult(await readJsonRpc(response), 'MCP session');
      },
      async close() {
        await request(server, '/mcp', { method: 'DELETE', headers });
      },
    };
  },
};

const rest: Door = {
  name: 'REST `POST /tools/echo/execute` (`server.fetch`)',
  async open(server) {
    const init = {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: REST_BODY,
    };
    return {
      async call() {
        const response = await request(server, '/tools/echo/execute', init);
        const body = await response.json();
        if (response.status !== 200) throw new Error(`REST: ${response.status} ${JSON.stringify(body)}`);
        checkResult({ result: body }, 'REST');
      },
      close: async () => {},
    };
  },
};

const websocket: Door = {
  name: 'MCP over WebSocket (loopback, 1 socket)',
  async open(server) {
    const listening = await listen(server, { port: 0, websocket: true, closeGraceMs: 1_000 });
    const socket = new WebSocket(`${listening.url.replace(/^http/, 'ws')}/mcp`, 'mcp', {
      perMessageDeflate: false,
      headers: AUTH,
    });
    const waiting = new Map<number, (message: any) => void>();
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      const resolve = waiting.get(message.id);
      if (resolve) {
        waiting.delete(message.id);
        resolve(message);
      }
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const rpc = (id: number, text: string) =>
      new Promise<any>((resolve) => {
        waiting.set(id, resolve);
        socket.send(text);
      });
    const initialized = await rpc(0, JSON.stringify(INITIALIZE(LEGACY)));
    if (initialized.error) throw new Error(`initialize failed: ${JSON.stringify(initialized.error)}`);
    socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    let id = 1;
    return {
      async call() {
        const mine = id++;
        checkResult(await rpc(mine, callBody(mine, PARAMS)), 'WebSocket');
      },
      async close() {
        await new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.close();
        });
        await listening.close();
      },
    };
  },
};

const DOORS: readonly Door[] = [mcpModern, mcpSession, rest, websocket];

export interface PolicyRow {
  door: string;
  ops: Record<Mode, Stat>;
  /**
   * Median over the rounds of each mode's ops/s divided by off's in the same round: the three run
   * back to back, so a burst of load elsewhere hits them alike and cancels out of the ratio.
   */
  ratio: { on: number; audit: number };
  /** The same pairing by CPU time per call: off's CPU per call divided by the mode's, per round. */
  cpuRatio: { on: number; audit: number };
  /** Median CPU time per call in µs (client and server share the process). */
  cpu: Record<Mode, number>;
}

export interface PolicyFigures {
  rows: PolicyRow[];
  rounds: number;
  generations: number;
  durationMs: number;
  inFlight: number;
}

export interface PolicyBenchOptions {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Calls in flight per door. Default 64. */
  inFlight?: number;
  /** Sets of fresh child processes the rounds are split over. Default 1. */
  generations?: number;
}

/**
 * Lets pending I/O and timers drain between runs. Deliberately not `settle()`: after its forced full
 * GC the next two thousand or so calls each cost about three times their usual CPU (measured on this
 * door mix; larger semi-spaces do not help), so a short run after it measures mostly that recovery,
 * and more of it for the mode with more code on its path.
 */
function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

function stat(values: readonly number[]): Stat {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** The modes in the order of `round`: rotated every round so each goes first as often. */
function order(round: number): readonly Mode[] {
  const shift = round % MODES.length;
  return [...MODES.slice(shift), ...MODES.slice(0, shift)];
}

// ---------------------------------------------------------------------------------------------------
// child: one server of one mode and one door's client, in a process of its own, driven over IPC.
// Each mode runs apart so the three servers share no JIT state, inline caches or heap: in one
// process, code that serves both an "off" and an "on" server flips between shapes as the rounds
// alternate, which no real deployment does, and the cost lands unevenly on the modes.

type ToChild = { type: 'run'; durationMs: number; inFlight: number } | { type: 'finish' };
type FromChild =
  | { type: 'ready' }
  | { type: 'run'; opsPerSec: number; cpuUsPerOp: number }
  | { type: 'finished'; recorded: number }
  | { type: 'error'; message: string };

async function child(mode: Mode, doorIndex: number): Promise<void> {
  const send = (message: FromChild) => process.send!(message);
  try {
    const door = DOORS[doorIndex]!;
    const { server, audit } = build(mode);
    if (mode !== 'off') await checkEnforced(server);
    const caller = await door.open(server);
    await caller.call();
    process.on('message', (message: ToChild) => {
      const handle = async () => {
        if (message.type === 'run') {
          const run = await throughput(() => caller.call(), message.inFlight, message.durationMs);
          send({ type: 'run', opsPerSec: run.opsPerSec, cpuUsPerOp: run.cpuUsPerOp });
        } else {
          // The audit server really recorded the calls (the sink keeps its last 1,000 events).
          const recorded = audit ? audit.events({ action: 'tool.execute', callerId: 'caller' }).length : 0;
          await caller.close();
          await server.close();
          send({ type: 'finished', recorded });
          process.exit(0);
        }
      };
      handle().catch((error: unknown) => {
        send({ type: 'error', message: String((error as Error)?.stack ?? error) });
        process.exit(1);
      });
    });
    send({ type: 'ready' });
  } catch (error) {
    send({ type: 'error', message: String((error as Error)?.stack ?? error) });
    process.exit(1);
  }
}

interface ChildHandle {
  run(durationMs: number, inFlight: number): Promise<{ opsPerSec: number; cpuUsPerOp: number }>;
  finish(): Promise<number>;
  kill(): void;
}

async function spawnChild(mode: Mode, doorIndex: number): Promise<ChildHandle> {
  const proc: ChildProcess = fork(
    fileURLToPath(import.meta.url),
    ['--policy-child', mode, String(doorIndex)],
    {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const next = <T extends FromChild['type']>(type: T) =>
    new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
      const onMessage = (message: FromChild) => {
        proc.off('message', onMessage);
        proc.off('exit', onExit);
        if (message.type === type) resolve(message as Extract<FromChild, { type: T }>);
        else
          reject(
            new Error(`policy child (${mode}): ${message.type === 'error' ? message.message : message.type}`),
          );
      };
      const onExit = (code: number | null) => reject(new Error(`policy child (${mode}) exited (${code})`));
      proc.on('message', onMessage);
      proc.once('exit', onExit);
    });
  await next('ready');
  return {
    async run(durationMs, inFlight) {
      const answer = next('run');
      proc.send({ type: 'run', durationMs, inFlight } satisfies ToChild);
      return answer;
    },
    async finish() {
      const answer = next('finished');
      proc.send({ type: 'finish' } satisfies ToChild);
      return (await answer).recorded;
    },
    kill: () => {
      if (proc.exitCode === null) proc.kill();
    },
  };
}

async function measureDoor(
  doorIndex: number,
  options: PolicyBenchOptions,
  log: (m: string) => void,
): Promise<PolicyRow> {
  const door = DOORS[doorIndex]!;
  const inFlight = options.inFlight ?? IN_FLIGHT;
  const generations = Math.max(1, Math.min(options.generations ?? 1, options.rounds));
  const ops: Record<Mode, number[]> = { off: [], on: [], audit: [] };
  const cpu: Record<Mode, number[]> = { off: [], on: [], audit: [] };
  let round = 0;
  for (let generation = 0; generation < generations; generation++) {
    // Fresh processes for each share of the rounds: one process can run some percent faster or
    // slower than another for its whole life (JIT decisions, memory layout), which would otherwise
    // land on one mode.
    const rounds = Math.round((options.rounds * (generation + 1)) / generations) - round;
    const children: Partial<Record<Mode, ChildHandle>> = {};
    try {
      await Promise.all(
        MODES.map(async (mode) => {
          children[mode] = await spawnChild(mode, doorIndex);
        }),
      );
      const servers = children as Record<Mode, ChildHandle>;
      // Warm-ups only need the code hot: all three at once.
      await Promise.all(MODES.map((mode) => servers[mode].run(options.warmupMs, inFlight)));
      for (const end = round + rounds; round < end; round++) {
        for (const mode of order(round)) {
          await pause();
          const run = await servers[mode].run(options.durationMs, inFlight);
          ops[mode].push(run.opsPerSec);
          cpu[mode].push(run.cpuUsPerOp);
          log(
            `  policy · ${door.name} · round ${round + 1} · ${MODE_LABEL[mode]}: ` +
              `${Math.round(run.opsPerSec)} ops/s, ${run.cpuUsPerOp.toFixed(1)} µs CPU per call`,
          );
        }
      }
      await servers.off.finish();
      await servers.on.finish();
      if ((await servers.audit.finish()) === 0) {
        throw new Error(`${door.name}: the audit sink recorded no tool.execute event`);
      }
    } finally {
      for (const mode of MODES) children[mode]?.kill();
    }
  }
  const paired = (mode: Mode) => median(ops[mode].map((value, i) => value / ops.off[i]!));
  const pairedCpu = (mode: Mode) => median(cpu[mode].map((value, i) => cpu.off[i]! / value));
  return {
    door: door.name,
    ops: { off: stat(ops.off), on: stat(ops.on), audit: stat(ops.audit) },
    ratio: { on: paired('on'), audit: paired('audit') },
    cpuRatio: { on: pairedCpu('on'), audit: pairedCpu('audit') },
    cpu: { off: median(cpu.off), on: median(cpu.on), audit: median(cpu.audit) },
  };
}

/** Runs every door; `log` receives a line per round. */
export async function measurePolicy(
  log: (message: string) => void,
  options: PolicyBenchOptions,
): Promise<PolicyFigures> {
  const rows: PolicyRow[] = [];
  for (const [index, door] of DOORS.entries()) {
    const row = await measureDoor(index, options, log);
    log(
      `  policy · ${door.name}: on / off ${row.ratio.on.toFixed(2)}× (by CPU ${row.cpuRatio.on.toFixed(2)}×), ` +
        `on + audit / off ${row.ratio.audit.toFixed(2)}× (by CPU ${row.cpuRatio.audit.toFixed(2)}×)`,
    );
    rows.push(row);
  }
  return {
    rows,
    rounds: options.rounds,
    generations: Math.max(1, Math.min(options.generations ?? 1, options.rounds)),
    durationMs: options.durationMs,
    inFlight: options.inFlight ?? IN_FLIGHT,
  };
}

export function renderPolicy(f: PolicyFigures): string {
  const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const ops = (s: Stat) =>
    `${integer.format(s.median)} <sub>(${integer.format(s.min)}–${integer.format(s.max)})</sub>`;
  const ratio = (value: number) => `${value.toFixed(2)}×`;
  return [
    `**Policy layer** (\`tools/call\`, ${f.inFlight} in flight; "on" is auth against 5 API keys, the caller in a custom role with tool patterns, one rule, and rate limits of 1e9/min that never refuse; "+ audit" adds a \`MemoryAuditSink\`; "off" is the same server without them; each mode in child processes of its own, ${f.generations} set${f.generations === 1 ? '' : 's'} of them; ${f.rounds} alternating rounds of ${Number((f.durationMs / 1000).toFixed(2))} s, median with range):`,
    '',
    '| Door | off (ops/s) | policy on (ops/s) | on / off | on + audit (ops/s) | on + audit / off | CPU per call, off / on / on + audit (µs) | on / off by CPU | on + audit / off by CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...f.rows.map(
      (r) =>
        `| ${r.door} | ${ops(r.ops.off)} | ${ops(r.ops.on)} | ${ratio(r.ratio.on)} | ` +
        `${ops(r.ops.audit)} | ${ratio(r.ratio.audit)} | ` +
        `${r.cpu.off.toFixed(1)} / ${r.cpu.on.toFixed(1)} / ${r.cpu.audit.toFixed(1)} | ` +
        `${ratio(r.cpuRatio.on)} | ${ratio(r.cpuRatio.audit)} |`,
    ),
    '',
    "The ratios are the median over the rounds of each round's own ratio (the three modes of a round run back to back, so a burst of load elsewhere hits them alike); \"by CPU\" divides off's CPU time per call by the mode's, which moves less than ops/s on a shared machine. Client and server share the process, so the CPU figures count the client's work too. Target: policy on within 10 % of off (on / off ≥ 0.90×).",
  ].join('\n');
}

if (process.argv[2] === '--policy-child') {
  const mode = process.argv[3] as Mode;
  const doorIndex = Number(process.argv[4]);
  if (!MODES.includes(mode) || !(doorIndex >= 0 && doorIndex < DOORS.length)) {
    throw new Error(`bad policy child arguments: ${process.argv.slice(3).join(' ')}`);
  }
  void child(mode, doorIndex);
}
