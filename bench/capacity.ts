/**
 * Server capacity over HTTP: every server in its own child process, driven by autocannon from this
 * one (64 keep-alive connections), in the same run and in alternating order, reported as medians with
 * ranges and the server's CPU time per request (read from the server process).
 *
 * - MCP `tools/call` of an echo tool: a raw node:http JSON-RPC endpoint (the ceiling), the bare SDK v2
 *   (one 2025 session, stateless, and its 2026-07-28 handler) and mcpkit in the same three modes.
 * - REST `POST /tools/echo/execute` on each mount beside a bare route of the same framework that
 *   answers the same JSON.
 *
 * `MCPKIT_BASE=/path/to/dist` adds, beside every mcpkit case, the same case served by that build: the
 * way to compare two versions of mcpkit on one machine in one run.
 *
 * Overload (`--overload`, and `measureOverload`): the raw endpoint, the bare SDK v2 (one 2025 session)
 * and mcpkit (one 2025 session under `listen()`, default options) each driven by 512 connections for
 * 20 s after a 64-connection warm-up, reporting what a client waits at worst: p99, the slowest answer,
 * autocannon's 10 s time-outs, and how many requests were shed with a 503.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { forkServer, median, serveParent } from './measure.js';

/** What one child process serves. */
type Kind =
  | 'raw'
  | 'sdk-session'
  | 'sdk-stateless'
  | 'sdk-modern'
  | 'mcpkit'
  | 'mcpkit-stateless'
  | 'rest-node'
  | 'rest-node-bare'
  | 'rest-express'
  | 'rest-express-bare'
  | 'rest-fastify'
  | 'rest-fastify-bare'
  | 'rest-hono'
  | 'rest-hono-bare';

const CHILD_FLAG = '--capacity-child';
const CONNECTIONS = 64;
const ECHO = { content: [{ type: 'text', text: 'hello' }] };
const REST_ANSWER = { content: [{ type: 'text', text: 'hello' }], durationMs: 0 };
const SERVER_INFO = { name: 'bench', version: '0.0.0' };

// ---------------------------------------------------------------------------------------------------
// child: one server, reporting its CPU time over IPC

/** `mcpkit` from `MCPKIT_DIST` when set (another build to compare), otherwise this checkout's build. */
async function kit(entry: '' | 'node' | 'express' | 'fastify' | 'hono'): Promise<Record<string, unknown>> {
  const dist = process.env.MCPKIT_DIST;
  if (dist) return import(pathToFileURL(join(dist, `${entry || 'index'}.js`)).href);
  return import(entry ? `mcpkit/${entry}` : 'mcpkit');
}

async function echoKit(options: Record<string, unknown> = {}) {
  const { createMcpServer } = (await kit('')) as typeof import('mcpkit');
  const { z } = await import('zod');
  const server = createMcpServer({ ...SERVER_INFO, logLevel: 'silent', ...options });
  server.tools.register({
    name: 'echo',
    description: 'Echo text back',
    inputSchema: { text: z.string() },
    handler: ({ text }) => text,
  });
  return server;
}

async function sdkServer() {
  const { McpServer } = await import('@modelcontextprotocol/server');
  const { z } = await import('zod');
  const server = new McpServer(SERVER_INFO);
  server.registerTool(
    'echo',
    { description: 'Echo text back', inputSchema: z.object({ text: z.string() }) },
    ({ text }) => ({ content: [{ type: 'text' as const, text }] }),
  );
  return server;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

async function nodeServer(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ keepAliveTimeout: 60_000 }, listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Starts the server of `kind`; resolves with its port. */
async function startChild(kind: Kind): Promise<number> {
  switch (kind) {
    case 'raw': {
      // Parse, dispatch, stringify: the least an HTTP JSON-RPC server can do.
      const { port } = await nodeServer(async (req, res) => {
        const message = JSON.parse(await readBody(req)) as { id: number; method: string };
        const body =
          message.method === 'tools/call'
            ? { jsonrpc: '2.0', id: message.id, result: ECHO }
            : { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'Method not found' } };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
      return port;
    }
    case 'sdk-session': {
      const { WebStandardStreamableHTTPServerTransport } = await import('@modelcontextprotocol/server');
      const { getRequestListener } = await import('@hono/node-server');
      const transports = new Map<string, InstanceType<typeof WebStandardStreamableHTTPServerTransport>>();
      const { port } = await nodeServer(
        getRequestListener(async (request) => {
          const id = request.headers.get('mcp-session-id');
          const known = id ? transports.get(id) : undefined;
          if (known) return known.handleRequest(request);
          const transport = new WebStandardStreamableHTTPServerTransport({
            sessionIdGenerator: () => crypto.randomUUID(),
            onsessioninitialized: (sid) => {
              transports.set(sid, transport);
            },
          });
          await (await sdkServer()).connect(transport);
          return transport.handleRequest(request);
        }),
      );
      return port;
    }
    case 'sdk-stateless': {
      // The SDK's documented stateless shape: a server and transport per request.
      const { WebStandardStreamableHTTPServerTransport } = await import('@modelcontextprotocol/server');
      const { getRequestListener } = await import('@hono/node-server');
      const { port } = await nodeServer(
        getRequestListener(async (request) => {
          const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
          const server = await sdkServer();
          await server.connect(transport);
          const response = await transport.handleRequest(request);
          return response;
        }),
      );
      return port;
    }
    case 'sdk-modern': {
      const { createMcpHandler } = await import('@modelcontextprotocol/server');
      const { getRequestListener } = await import('@hono/node-server');
      const handler = createMcpHandler(() => sdkServer() as never, { legacy: 'reject' });
      const { port } = await nodeServer(getRequestListener((request) => handler.fetch(request)));
      return port;
    }
    case 'mcpkit':
    case 'mcpkit-stateless': {
      const { listen } = (await kit('node')) as typeof import('mcpkit/node');
      const server = await echoKit(kind === 'mcpkit' ? {} : { http: { stateless: true } });
      return (await listen(server, { port: 0 })).port;
    }
    case 'rest-node': {
      const { listen } = (await kit('node')) as typeof import('mcpkit/node');
      return (await listen(await echoKit(), { port: 0 })).port;
    }
    case 'rest-node-bare': {
      const { port } = await nodeServer(async (req, res) => {
        JSON.parse(await readBody(req));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(REST_ANSWER));
      });
      return port;
    }
    case 'rest-express':
    case 'rest-express-bare': {
      const { default: express } = await import('express');
      const app = express();
      if (kind === 'rest-express') {
        const { mcpkitExpress } = (await kit('express')) as typeof import('mcpkit/express');
        app.use('/api', mcpkitExpress(await echoKit()));
      } else {
        app.post('/api/tools/echo/execute', express.json(), (_req, res) => {
          res.json(REST_ANSWER);
        });
      }
      const { port } = await nodeServer(app);
      return port;
    }
    case 'rest-fastify':
    case 'rest-fastify-bare': {
      const { default: Fastify } = await import('fastify');
      const app = Fastify();
      if (kind === 'rest-fastify') {
        const { mcpkitFastify } = (await kit('fastify')) as typeof import('mcpkit/fastify');
        await app.register(mcpkitFastify, { server: await echoKit(), prefix: '/api' });
      } else {
        app.post('/api/tools/echo/execute', async () => REST_ANSWER);
      }
      await app.listen({ port: 0, host: '127.0.0.1' });
      return (app.server.address() as AddressInfo).port;
    }
    case 'rest-hono':
    case 'rest-hono-bare': {
      const { Hono } = await import('hono');
      const { serve } = await import('@hono/node-server');
      const app = new Hono();
      if (kind === 'rest-hono') {
        const { mcpkitHono } = (await kit('hono')) as typeof import('mcpkit/hono');
        app.route('/api', mcpkitHono(await echoKit()));
      } else {
        app.post('/api/tools/echo/execute', async (c) => {
          await c.req.json();
          return c.json(REST_ANSWER);
        });
      }
      return new Promise((resolve) => {
        const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
          resolve((s.address() as AddressInfo).port),
        );
      });
    }
  }
}

async function child(kind: Kind): Promise<void> {
  const port = await startChild(kind);
  serveParent(port);
}

// ---------------------------------------------------------------------------------------------------
// parent

interface ServerHandle {
  kind: Kind;
  port: number;
  /** The child's CPU time so far (µs) and its resident memory. */
  cpu(): Promise<{ micros: number; rssBytes: number }>;
  stop(): Promise<void>;
}

async function spawnServer(kind: Kind, dist?: string): Promise<ServerHandle> {
  const child = await forkServer(fileURLToPath(import.meta.url), [CHILD_FLAG, kind], {
    name: kind,
    env: dist ? { ...process.env, MCPKIT_DIST: dist } : process.env,
  });
  return { kind, port: child.port, cpu: () => child.ask('cpu'), stop: () => child.stop() };
}

/** One HTTP request to replay: its headers and a body whose JSON-RPC id autocannon varies per request. */
export interface Replay {
  path: string;
  headers: Record<string, string>;
  /** The body for JSON-RPC id `n`. */
  body(n: number): string;
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

function call(id: number, meta?: Record<string, unknown>): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'echo', arguments: { text: 'hello' }, ...(meta && { _meta: meta }) },
  });
}

async function post(url: string, headers: Record<string, string>, body: string): Promise<Response> {
  const response = await fetch(url, { method: 'POST', headers, body });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response;
}

/** Opens a 2025-era session (initialize, then initialized) and returns the call to replay on it. */
export async function session(port: number): Promise<Replay> {
  const url = `http://127.0.0.1:${port}/mcp`;
  const init = await post(
    url,
    MCP_HEADERS,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'bench', version: '0' },
      },
    }),
  );
  await init.text();
  const sid = init.headers.get('mcp-session-id');
  if (!sid) throw new Error('no session id');
  const headers = { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await (
    await post(url, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  ).text();
  return { path: '/mcp', headers, body: (n) => call(n) };
}

const STATELESS: Replay = {
  path: '/mcp',
  headers: { ...MCP_HEADERS, 'mcp-protocol-version': '2025-06-18' },
  body: (n) => call(n),
};

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const MODERN: Replay = {
  path: '/mcp',
  headers: {
    ...MCP_HEADERS,
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': 'echo',
  },
  body: (n) => call(n, MODERN_META),
};

const RAW: Replay = {
  path: '/',
  headers: { 'content-type': 'application/json' },
  body: (n) => call(n),
};

export const REST = (path: string): Replay => ({
  path,
  headers: { 'content-type': 'application/json' },
  body: () => JSON.stringify({ arguments: { text: 'hello' } }),
});

/** One measured case: a server, how to prepare its request, and where its row goes. */
interface Case {
  group: 'mcp' | 'rest';
  label: string;
  kind: Kind;
  prepare(port: number): Promise<Replay>;
  /** Another mcpkit build for this case's server (see `MCPKIT_BASE`). */
  dist?: string;
  /** The label of the bare route this REST case is divided by. */
  bare?: string;
}

const CASES: readonly Case[] = [
  { group: 'mcp', label: 'raw node:http JSON-RPC', kind: 'raw', prepare: async () => RAW },
  { group: 'mcp', label: 'bare SDK v2, one 2025 session', kind: 'sdk-session', prepare: session },
  { group: 'mcp', label: 'mcpkit, one 2025 session', kind: 'mcpkit', prepare: session },
  { group: 'mcp', label: 'bare SDK v2, stateless', kind: 'sdk-stateless', prepare: async () => STATELESS },
  {
    group: 'mcp',
    label: 'mcpkit, `http.stateless`',
    kind: 'mcpkit-stateless',
    prepare: async () => STATELESS,
  },
  { group: 'mcp', label: 'bare SDK v2, 2026-07-28', kind: 'sdk-modern', prepare: async () => MODERN },
  { group: 'mcp', label: 'mcpkit, 2026-07-28', kind: 'mcpkit', prepare: async () => MODERN },
  {
    group: 'rest',
    label: 'listen()',
    kind: 'rest-node',
    bare: 'bare node:http route',
    prepare: async () => REST('/tools/echo/execute'),
  },
  {
    group: 'rest',
    label: 'bare node:http route',
    kind: 'rest-node-bare',
    prepare: async () => REST('/tools/echo/execute'),
  },
  ...(['express', 'fastify', 'hono'] as const).flatMap((name): Case[] => [
    {
      group: 'rest',
      label: `mcpkit on ${name}`,
      kind: `rest-${name}`,
      bare: `bare ${name} route`,
      prepare: async () => REST('/api/tools/echo/execute'),
    },
    {
      group: 'rest',
      label: `bare ${name} route`,
      kind: `rest-${name}-bare`,
      prepare: async () => REST('/api/tools/echo/execute'),
    },
  ]),
];

/** One autocannon run's figures. */
interface Round {
  rps: number;
  cpuUsPerRequest: number;
  p99Ms: number;
  maxMs: number;
  rssBytes: number;
}

/** Runs autocannon against `server` with `replay` from `connections` connections. */
export function cannon(
  server: { port: number },
  replay: Replay,
  seconds: number,
  connections: number,
): Promise<Record<string, any>> {
  let n = 1;
  return autocannon({
    url: `http://127.0.0.1:${server.port}${replay.path}`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: replay.headers,
    requests: [{ setupRequest: (request: object) => ({ ...request, body: replay.body(n++) }) }],
  });
}

async function drive(server: ServerHandle, replay: Replay, seconds: number): Promise<Round> {
  const before = await server.cpu();
  const result = await cannon(server, replay, seconds, CONNECTIONS);
  const after = await server.cpu();
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${server.kind}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} time-outs`,
    );
  }
  const total = result.requests.total as number;
  return {
    rps: total / (result.duration as number),
    cpuUsPerRequest: (after.micros - before.micros) / total,
    p99Ms: result.latency.p99 as number,
    maxMs: result.latency.max as number,
    rssBytes: after.rssBytes,
  };
}

/** The figures of one case over every round. */
export interface CapacityRow {
  group: 'mcp' | 'rest';
  label: string;
  /** The label of the row this one's ratio divides by. */
  bare?: string;
  rps: number[];
  cpuUs: number[];
  p99Ms: number[];
  rssBytes: number[];
}

export interface CapacityFigures {
  rows: CapacityRow[];
  rounds: number;
  seconds: number;
}

/**
 * Starts every case's server, then runs `rounds` rounds of `seconds` each over all of them, in an
 * order that is reversed every other round so no case always runs first or last.
 */
export async function measureCapacity(
  log: (m: string) => void,
  options: { rounds: number; seconds: number; only?: (c: { label: string; group: string }) => boolean },
): Promise<CapacityFigures> {
  const base = process.env.MCPKIT_BASE;
  const cases = CASES.filter((c) => options.only?.(c) ?? true).flatMap((c) =>
    (base && c.kind.includes('mcpkit')) || (base && /^rest-[a-z]+$/.test(c.kind))
      ? [c, { ...c, label: `${c.label} [${base}]`, dist: base }]
      : [c],
  );
  const started: Array<{ c: Case; server: ServerHandle; replay: Replay; row: CapacityRow }> = [];
  try {
    for (const c of cases) {
      const server = await spawnServer(c.kind, c.dist);
      const replay = await c.prepare(server.port);
      started.push({
        c,
        server,
        replay,
        row: {
          group: c.group,
          label: c.label,
          ...(c.bare && { bare: c.bare }),
          rps: [],
          cpuUs: [],
          p99Ms: [],
          rssBytes: [],
        },
      });
      await drive(server, replay, 1); // warm-up: JIT, lazily loaded code
    }
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? started : [...started].reverse();
      for (const { c, server, replay, row } of order) {
        const figures = await drive(server, replay, options.seconds);
        row.rps.push(figures.rps);
        row.cpuUs.push(figures.cpuUsPerRequest);
        row.p99Ms.push(figures.p99Ms);
        row.rssBytes.push(figures.rssBytes);
        log(
          `  capacity round ${round + 1} · ${c.label}: ${Math.round(figures.rps)} req/s, ` +
            `${figures.cpuUsPerRequest.toFixed(0)} µs CPU per request, p99 ${figures.p99Ms} ms`,
        );
      }
    }
  } finally {
    await Promise.all(started.map(({ server }) => server.stop()));
  }
  return { rows: started.map((s) => s.row), rounds: options.rounds, seconds: options.seconds };
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function range(values: readonly number[], format: (v: number) => string): string {
  const m = median(values);
  if (values.length < 2) return format(m);
  return `${format(m)} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

export function renderCapacity(figures: CapacityFigures): string {
  const raw = figures.rows.find((r) => r.label === 'raw node:http JSON-RPC');
  const mcp = figures.rows.filter((r) => r.group === 'mcp');
  const rest = figures.rows.filter((r) => r.group === 'rest');
  const lines = [
    `**Server capacity** (each server in its own child process; autocannon with ${CONNECTIONS} keep-alive connections ` +
      `in the bench process; ${figures.rounds} rounds of ${figures.seconds} s in alternating order; medians with ` +
      `ranges; CPU per request measured in the server process):`,
    '',
  ];
  if (mcp.length > 0) {
    lines.push(
      '| MCP `tools/call` (echo) | req/s | ÷ raw | server CPU per request | p99 | server RSS after the load |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...mcp.map(
        (r) =>
          `| ${r.label} | ${range(r.rps, (v) => int.format(v))} | ${
            raw ? `${(median(r.rps) / median(raw.rps)).toFixed(2)}×` : '—'
          } | ${range(r.cpuUs, (v) => `${int.format(v)} µs`)} | ${int.format(median(r.p99Ms))} ms | ${int.format(
            median(r.rssBytes) / 1e6,
          )} MB |`,
      ),
      '',
    );
  }
  if (rest.length > 0) {
    lines.push(
      '| REST `POST /tools/echo/execute` | req/s | ÷ bare route | server CPU per request |',
      '| --- | ---: | ---: | ---: |',
    );
    for (const r of rest) {
      const bare = r.bare === undefined ? undefined : rest.find((b) => b.label === r.bare);
      lines.push(
        `| ${r.label} | ${range(r.rps, (v) => int.format(v))} | ${
          bare ? `${(median(r.rps) / median(bare.rps)).toFixed(2)}×` : ''
        } | ${range(r.cpuUs, (v) => `${int.format(v)} µs`)} |`,
      );
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// overload: 512 connections

/** Connections of the overload measurement (issue 17). */
const OVERLOAD_CONNECTIONS = 512;

const OVERLOAD_CASES: readonly Case[] = [
  { group: 'mcp', label: 'raw node:http JSON-RPC', kind: 'raw', prepare: async () => RAW },
  { group: 'mcp', label: 'bare SDK v2, one 2025 session', kind: 'sdk-session', prepare: session },
  { group: 'mcp', label: 'mcpkit, one 2025 session', kind: 'mcpkit', prepare: session },
];

/** What clients saw of one server at 512 connections. */
export interface OverloadRow {
  label: string;
  /** Answers per second that were not shed (2xx). */
  answeredPerSecond: number;
  p99Ms: number;
  maxMs: number;
  /** Requests autocannon gave up on after 10 s without an answer. */
  timeouts: number;
  /** Requests answered 503 (shed). */
  shed: number;
  /** Other non-2xx answers and connection errors. */
  failures: number;
}

export interface OverloadFigures {
  rows: OverloadRow[];
  seconds: number;
  connections: number;
}

/**
 * Each server in its own child process: warmed up with 64 connections for 2 s, then driven by
 * {@link OVERLOAD_CONNECTIONS} connections for `seconds`. Servers run one after another.
 */
export async function measureOverload(
  log: (m: string) => void,
  options: { seconds: number; connections?: number },
): Promise<OverloadFigures> {
  const connections = options.connections ?? OVERLOAD_CONNECTIONS;
  const base = process.env.MCPKIT_BASE;
  const cases = OVERLOAD_CASES.flatMap((c) =>
    base && c.kind.includes('mcpkit') ? [c, { ...c, label: `${c.label} [${base}]`, dist: base }] : [c],
  );
  const rows: OverloadRow[] = [];
  for (const c of cases) {
    const server = await spawnServer(c.kind, c.dist);
    try {
      const replay = await c.prepare(server.port);
      await cannon(server, replay, 2, CONNECTIONS); // warm-up: JIT, lazily loaded code
      const result = await cannon(server, replay, options.seconds, connections);
      const shed = (result.statusCodeStats?.['503']?.count as number | undefined) ?? 0;
      const row: OverloadRow = {
        label: c.label,
        answeredPerSecond: (result['2xx'] as number) / (result.duration as number),
        p99Ms: result.latency.p99 as number,
        maxMs: result.latency.max as number,
        timeouts: result.timeouts as number,
        shed,
        failures: (result.non2xx as number) - shed + (result.errors as number) - (result.timeouts as number),
      };
      rows.push(row);
      log(
        `  overload · ${c.label}: ${int.format(row.answeredPerSecond)} answered/s, p99 ${row.p99Ms} ms, ` +
          `max ${int.format(row.maxMs)} ms, ${row.timeouts} time-outs, ${row.shed} shed, ${row.failures} other failures`,
      );
    } finally {
      await server.stop();
    }
  }
  return { rows, seconds: options.seconds, connections };
}

export function renderOverload(figures: OverloadFigures): string {
  return [
    `**Overload** (each server in its own child process, warmed up with ${CONNECTIONS} connections for 2 s, then ` +
      `${figures.connections} keep-alive connections for ${figures.seconds} s from autocannon in the bench process; ` +
      `time-outs are requests unanswered after 10 s; mcpkit with its default \`overload\` options):`,
    '',
    '| MCP `tools/call` (echo) | answered req/s | p99 | slowest answer | time-outs | shed (503) | other failures |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...figures.rows.map(
      (r) =>
        `| ${r.label} | ${int.format(r.answeredPerSecond)} | ${int.format(r.p99Ms)} ms | ${int.format(r.maxMs)} ms | ` +
        `${int.format(r.timeouts)} | ${int.format(r.shed)} | ${int.format(r.failures)} |`,
    ),
  ].join('\n');
}

if (process.argv[2] === CHILD_FLAG) {
  await child(process.argv[3] as Kind);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Run on its own:
  //   tsx --tsconfig bench/tsconfig.json bench/capacity.ts [--quick] [--only=mcp|rest]
  //   tsx --tsconfig bench/tsconfig.json bench/capacity.ts --overload [--seconds=20] [--connections=512]
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const number = (name: string) => {
    const value = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    return value === undefined ? undefined : Number(value);
  };
  if (args.includes('--overload')) {
    const connections = number('connections');
    const figures = await measureOverload(console.log, {
      seconds: number('seconds') ?? (quick ? 5 : 20),
      ...(connections !== undefined && { connections }),
    });
    console.log(`\n${renderOverload(figures)}`);
  } else {
    const group = args.find((a) => a.startsWith('--only='))?.slice(7);
    const figures = await measureCapacity(console.log, {
      rounds: quick ? 1 : 3,
      seconds: quick ? 2 : 5,
      ...(group && { only: (c) => c.group === group }),
    });
    console.log(`\n${renderCapacity(figures)}`);
  }
}
