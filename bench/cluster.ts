/**
 * Several nodes sharing Redis (docs/scale-out.md): the same MCP `tools/call` load (the echo tool,
 * `http.stateless`, protocol 2025-06-18, so any node answers any request) against
 *
 * - one node without `state`,
 * - one node with `state: redisState()` (the call touches no shared state: no rate limit, so what
 *   Redis costs here is what merely being connected costs),
 * - three nodes with `state: redisState()` behind a round-robin HTTP proxy (each request to the
 *   next node),
 *
 * each node, and the proxy, in its own child process, driven by autocannon (64 keep-alive
 * connections) from this one, rounds in alternating order, medians with ranges. CPU per request is
 * the nodes' CPU (the proxy's is given apart). On a machine with fewer cores than the three nodes,
 * the proxy, Redis and autocannon need, three nodes cannot serve more than one: the report says how
 * many cores it ran on. Load shedding is off in the nodes (`overload: false`): processes sharing
 * few cores run their loops late by design, and this measures throughput, not shedding.
 */

import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startRedis } from '../test/support/redisServer.js';
import { type ChildServer, forkServer, median, serveParent } from './measure.js';

const CHILD_FLAG = '--cluster-child';
const CONNECTIONS = 64;
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

type Kind = 'node' | 'proxy';

// ---------------------------------------------------------------------------------------------------
// children

async function startNode(): Promise<number> {
  const { createMcpServer } = await import('mcpkit');
  const { listen } = await import('mcpkit/node');
  const { z } = await import('zod');
  const url = process.env.CLUSTER_REDIS_URL;
  const state = url
    ? (await import('mcpkit/redis')).redisState({ url, prefix: 'bench-cluster:' })
    : undefined;
  if (state) await state.ready();
  const server = createMcpServer({
    name: 'bench',
    version: '0.0.0',
    logLevel: 'silent',
    http: { stateless: true },
    // Several processes share few cores here: the loop runs late by design, and shedding would
    // answer 503s where this measures throughput.
    overload: false,
    ...(state && { state }),
  });
  server.tools.register({
    name: 'echo',
    description: 'Echo text back',
    inputSchema: { text: z.string() },
    handler: ({ text }) => text,
  });
  return (await listen(server, { port: 0 })).port;
}

/** A round-robin HTTP proxy over `CLUSTER_TARGETS` (ports), one request to each node in turn. */
async function startProxy(): Promise<number> {
  const targets = (process.env.CLUSTER_TARGETS ?? '').split(',').map(Number);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let next = 0;
  const proxy = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const port = targets[next++ % targets.length]!;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // A pooled connection the node closed while idle fails at once: sent again on a fresh one,
      // as Node's documentation advises for `reusedSocket`.
      const send = (retry: boolean) => {
        const upstream = httpRequest(
          { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', (error: NodeJS.ErrnoException) => {
          if (retry && upstream.reusedSocket && !res.headersSent) return send(false);
          if (process.env.CLUSTER_DEBUG) console.error('proxy:', error.message);
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
        upstream.end(body);
      };
      send(true);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return (proxy.address() as AddressInfo).port;
}

async function child(kind: Kind): Promise<void> {
  const port = kind === 'node' ? await startNode() : await startProxy();
  serveParent(port);
}

// ---------------------------------------------------------------------------------------------------
// parent

/** The figures of one layout over every round. */
export interface ClusterRow {
  label: string;
  rps: number[];
  /** The nodes' CPU per request (µs), the proxy's excluded. */
  cpuUs: number[];
  /** The proxy's CPU per request (µs), for the layout behind it. */
  proxyCpuUs: number[];
}

export interface ClusterFigures {
  rows: ClusterRow[];
  rounds: number;
  seconds: number;
  cores: number;
}

interface Layout {
  label: string;
  /** Where autocannon sends requests. */
  port: number;
  nodes: ChildServer[];
  proxy?: ChildServer;
  row: ClusterRow;
}

const cpuOf = async (child: ChildServer) => (await child.ask<{ micros: number }>('cpu')).micros;

function spawn(kind: Kind, env: NodeJS.ProcessEnv): Promise<ChildServer> {
  return forkServer(fileURLToPath(import.meta.url), [CHILD_FLAG, kind], {
    name: `cluster ${kind}`,
    env: { ...process.env, ...env },
  });
}

async function drive(layout: Layout, seconds: number): Promise<void> {
  const cpu = async () => {
    const nodes = await Promise.all(layout.nodes.map(cpuOf));
    return { nodes: nodes.reduce((a, b) => a + b, 0), proxy: layout.proxy ? await cpuOf(layout.proxy) : 0 };
  };
  const before = await cpu();
  let n = 1;
  const result = await autocannon({
    url: `http://127.0.0.1:${layout.port}/mcp`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: HEADERS,
    requests: [
      {
        setupRequest: (request: object) => ({
          ...request,
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: n++,
            method: 'tools/call',
            params: { name: 'echo', arguments: { text: 'hello' } },
          }),
        }),
      },
    ],
  });
  const after = await cpu();
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${layout.label}: ${result.non2xx} non-2xx (${JSON.stringify(result.statusCodeStats)}), ${result.errors} errors, ${result.timeouts} time-outs`,
    );
  }
  const total = result.requests.total as number;
  layout.row.rps.push(total / (result.duration as number));
  layout.row.cpuUs.push((after.nodes - before.nodes) / total);
  if (layout.proxy) layout.row.proxyCpuUs.push((after.proxy - before.proxy) / total);
}

/** Runs the three layouts against one local redis-server, `rounds` rounds of `seconds` each. */
export async function measureCluster(
  log: (message: string) => void,
  options: { rounds: number; seconds: number },
): Promise<ClusterFigures> {
  const redis = await startRedis();
  const layouts: Layout[] = [];
  const row = (label: string): ClusterRow => ({ label, rps: [], cpuUs: [], proxyCpuUs: [] });
  try {
    const single = await spawn('node', {});
    layouts.push({
      label: 'one node, no Redis',
      port: single.port,
      nodes: [single],
      row: row('one node, no Redis'),
    });
    const shared = { CLUSTER_REDIS_URL: redis.url };
    const withRedis = await spawn('node', shared);
    layouts.push({
      label: 'one node with Redis',
      port: withRedis.port,
      nodes: [withRedis],
      row: row('one node with Redis'),
    });
    const three = await Promise.all([spawn('node', shared), spawn('node', shared), spawn('node', shared)]);
    const proxy = await spawn('proxy', { CLUSTER_TARGETS: three.map((c) => c.port).join(',') });
    layouts.push({
      label: 'three nodes with Redis, round-robin proxy',
      port: proxy.port,
      nodes: three,
      proxy,
      row: row('three nodes with Redis, round-robin proxy'),
    });
    for (const layout of layouts) await drive(layout, 1); // warm-up, not counted
    for (const layout of layouts) {
      layout.row.rps.length = 0;
      layout.row.cpuUs.length = 0;
      layout.row.proxyCpuUs.length = 0;
    }
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? layouts : [...layouts].reverse();
      for (const layout of order) {
        log(`cluster: round ${round + 1}/${options.rounds}, ${layout.label}`);
        await drive(layout, options.seconds);
      }
    }
  } finally {
    for (const layout of layouts) {
      await Promise.all(layout.nodes.map((n) => n.stop()));
      await layout.proxy?.stop();
    }
    await redis.stop();
  }
  return {
    rows: layouts.map((l) => l.row),
    rounds: options.rounds,
    seconds: options.seconds,
    cores: availableParallelism(),
  };
}

const range = (values: readonly number[], digits = 0) =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

/** The benchmarks.md section. */
export function renderCluster(f: ClusterFigures): string {
  const [single, withRedis, three] = f.rows;
  const lines = [
    `**Scale-out** (\`tools/call\` of echo, \`http.stateless\`, 2025-06-18; each node and the proxy in its own child process, ${CONNECTIONS} keep-alive connections from autocannon; ${f.rounds} rounds of ${f.seconds} s in alternating order, medians with ranges; ${f.cores} cores):`,
    '',
    '| layout | req/s | ÷ one node | nodes\u2019 CPU per request | proxy CPU per request |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const row of f.rows) {
    const ratio = median(row.rps) / median(single!.rps);
    lines.push(
      `| ${row.label} | ${range(row.rps)} | ${ratio.toFixed(2)}× | ${range(row.cpuUs)} µs | ${
        row.proxyCpuUs.length > 0 ? `${range(row.proxyCpuUs)} µs` : '—'
      } |`,
    );
  }
  const added = median(withRedis!.cpuUs) - median(single!.cpuUs);
  lines.push(
    '',
    `Redis adds ${added.toFixed(0)} µs of CPU per call that touches no shared state (${(
      (added / median(single!.cpuUs)) * 100
    ).toFixed(1)} %; goal under 10 %). Three nodes serve ${(median(three!.rps) / median(single!.rps)).toFixed(
      2,
    )}× one node here${
      f.cores < 6
        ? `: with ${f.cores} cores the three nodes, the proxy, Redis and autocannon share them, so this layout measures the proxy hop and the sharing, not the 2.5× goal, which needs a core per node and more`
        : ''
    }.`,
  );
  return lines.join('\n');
}

if (process.argv[2] === CHILD_FLAG) {
  await child(process.argv[3] as Kind);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const figures = await measureCluster(console.error, {
    rounds: Number(process.env.ROUNDS ?? 3),
    seconds: Number(process.env.SECONDS ?? 4),
  });
  console.log(renderCluster(figures));
}
