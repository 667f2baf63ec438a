/**
 * Several mcpkit nodes in child processes behind a small round-robin HTTP proxy, sharing one real
 * redis-server: the harness of the multi-node tests (docs/scale-out.md). Each node runs
 * `clusterNode.ts`, which imports a server module of the test's choosing and serves it with
 * `listen()`; the proxy sends each request (and each WebSocket upgrade) to the next live node, and
 * streams both ways, SSE included. A test adds scenarios by writing its own server module:
 *
 * ```ts
 * // test/fixtures/myNode.ts
 * export function createNode(node: ClusterNodeContext): McpKitServer { ... }
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type RedisServer, startRedis } from './redisServer.js';

/** What a node's server module is given. */
export interface ClusterNodeContext {
  /** The node's position, from 0. */
  readonly index: number;
  readonly redisUrl: string;
  /** The key prefix every node of this cluster shares. */
  readonly prefix: string;
  /** The node's own base URL, as the others reach it. */
  readonly advertise: string;
  /** The cluster's shared secret. */
  readonly secret: string;
  /** Extra settings the test passed (`start(..., { env })`), as environment variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** One node of a cluster. */
export interface ClusterNode {
  readonly index: number;
  /** Its own base URL (bypassing the proxy). */
  readonly url: string;
  /** Whether it is still running (and in the proxy's rotation). */
  readonly alive: boolean;
}

/** A running cluster. */
export interface Cluster {
  /** The proxy's base URL: requests go round-robin to the live nodes. The MCP endpoint is `${url}/mcp`. */
  readonly url: string;
  readonly nodes: readonly ClusterNode[];
  readonly redis: RedisServer;
  readonly prefix: string;
  readonly secret: string;
  /** Requests the proxy sent to each node so far, by index. */
  readonly served: readonly number[];
  /** Ends node `i` with `signal` (default SIGKILL) and takes it out of the proxy's rotation. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Stops the proxy, every node, and Redis if the cluster started it. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** A Redis already running (then `stop()` leaves it); default: one started for this cluster. */
  redis?: RedisServer;
  /** Environment variables for every node (the server module reads them from `node.env`). */
  env?: Record<string, string>;
  /** How long a node may take to start, in ms. Default 30 000. */
  startTimeoutMs?: number;
}

const NODE_ENTRY = fileURLToPath(new URL('./clusterNode.ts', import.meta.url));

async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface RunningNode {
  index: number;
  url: string;
  port: number;
  alive: boolean;
  child: ChildProcess;
}

function startNode(
  index: number,
  serverModule: string,
  context: Omit<ClusterNodeContext, 'index' | 'advertise' | 'env'> & { port: number },
  env: Record<string, string>,
  timeoutMs: number,
): Promise<RunningNode> {
  const url = `http://127.0.0.1:${context.port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_ENTRY], {
    env: {
      ...process.env,
      ...env,
      CLUSTER_NODE_MODULE: serverModule,
      CLUSTER_NODE_INDEX: String(index),
      CLUSTER_NODE_PORT: String(context.port),
      CLUSTER_REDIS_URL: context.redisUrl,
      CLUSTER_PREFIX: context.prefix,
      CLUSTER_ADVERTISE: url,
      CLUSTER_SECRET: context.secret,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${index} did not start in ${timeoutMs} ms: ${output.slice(-2000)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('CLUSTER_NODE_READY')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve({ index, url, port: context.port, alive: true, child });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      // Kept short: only what a failing start needs.
      if (output.length < 20_000) output += chunk.toString();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`node ${index} exited (${code ?? signal}): ${output.slice(-2000)}`));
    });
  });
}

/** Hop-by-hop headers a proxy does not pass on. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function passable(headers: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP.has(name)) out[name] = value;
  }
  return out;
}

/** The round-robin proxy: per request (and per upgrade), the next live node. */
function startProxy(nodes: RunningNode[], served: number[]): Promise<Server> {
  let next = 0;
  const pick = (): RunningNode | undefined => {
    for (let tries = 0; tries < nodes.length; tries++) {
      const node = nodes[next++ % nodes.length]!;
      if (node.alive) return node;
    }
    return undefined;
  };
  const proxy = createServer((req, res) => {
    const node = pick();
    if (!node) {
      res.writeHead(502).end();
      return;
    }
    served[node.index]!++;
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port: node.port,
        method: req.method,
        path: req.url,
        headers: passable(req.headers),
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, passable(answer.headers));
        answer.pipe(res);
        res.once('close', () => answer.destroy());
      },
    );
    upstream.once('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.once('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  proxy.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const node = pick();
    if (!node) {
      socket.destroy();
      return;
    }
    served[node.index]!++;
    const upstream = connect(node.port, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    const end = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.once('error', end);
    socket.once('error', end);
    upstream.once('close', end);
    socket.once('close', end);
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy)));
}

/**
 * Starts `nodeCount` nodes running `serverModule` (an absolute path, or a `file:` URL, of a module
 * exporting `createNode(context)`), all on one Redis, behind one round-robin proxy.
 *
 * @example
 * ```ts
 * const cluster = await startCluster(3, fileURLToPath(new URL('./fixtures/clusterServer.ts', import.meta.url)));
 * const client = await connect(`${cluster.url}/mcp`);
 * await cluster.kill(1);
 * await cluster.stop();
 * ```
 */
export async function startCluster(
  nodeCount: number,
  serverModule: string | URL,
  options: ClusterOptions = {},
): Promise<Cluster> {
  const modulePath = serverModule instanceof URL ? fileURLToPath(serverModule) : serverModule;
  const ownRedis = options.redis === undefined;
  const redis = options.redis ?? (await startRedis());
  const prefix = `cluster${process.pid}-${randomBytes(4).toString('hex')}:`;
  const secret = randomBytes(32).toString('base64url');
  const nodes: RunningNode[] = [];
  const served: number[] = Array.from({ length: nodeCount }, () => 0);
  let proxy: Server | undefined;
  const stop = async () => {
    await new Promise<void>((resolve) => {
      if (!proxy) return resolve();
      proxy.close(() => resolve());
      proxy.closeAllConnections();
    });
    await Promise.all(
      nodes.map(async (node) => {
        if (node.child.exitCode !== null || node.child.signalCode !== null) return;
        const gone = new Promise<void>((resolve) => node.child.once('exit', () => resolve()));
        node.child.kill('SIGTERM');
        const timer = setTimeout(() => node.child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
        node.alive = false;
      }),
    );
    if (ownRedis) await redis.stop();
  };
  try {
    const ports = [];
    for (let i = 0; i < nodeCount; i++) ports.push(await freePort());
    const started = await Promise.all(
      ports.map((port, index) =>
        startNode(
          index,
          modulePath,
          { redisUrl: redis.url, prefix, secret, port },
          options.env ?? {},
          options.startTimeoutMs ?? 30_000,
        ),
      ),
    );
    nodes.push(...started);
    for (const node of nodes) {
      node.child.removeAllListeners('exit');
      node.child.once('exit', () => {
        node.alive = false;
      });
    }
    proxy = await startProxy(nodes, served);
  } catch (error) {
    await stop();
    throw error;
  }
  const { port } = proxy.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    nodes,
    redis,
    prefix,
    secret,
    served,
    async kill(index, signal = 'SIGKILL') {
      const node = nodes[index];
      if (!node) throw new RangeError(`no node ${index}`);
      node.alive = false;
      if (node.child.exitCode !== null || node.child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => node.child.once('exit', () => resolve()));
      node.child.kill(signal);
      await gone;
    },
    stop,
  };
}
