/**
 * What sharing rate limits through Redis costs a request: REST `POST /tools/echo/execute` in process
 * (`server.fetch`), with a rate limit of 1e9 per minute (it never refuses, so the limiter does all its
 * work), its buckets in memory beside the same server with `state: redisState()` against a local
 * redis-server (no persistence), started on a free port for the run and stopped afterwards. The two
 * modes alternate round by round; the report gives the median of each and the time Redis adds per
 * request. A server without `state` runs exactly the code it ran before mcpkit/redis existed.
 */
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { redisState } from 'mcpkit/redis';
import { request } from 'mcpkit/testing';
import { z } from 'zod';
import { startRedis } from '../test/support/redisServer.js';
import { median, throughput } from './measure.js';

/** The figures of one run. */
export interface RedisFigures {
  memoryOpsPerSec: number;
  redisOpsPerSec: number;
  inFlight: number;
  rounds: number;
  seconds: number;
}

const IN_FLIGHT = 32;
const BODY = JSON.stringify({ arguments: { text: 'hello' } });

function server(state?: ReturnType<typeof redisState>): McpKitServer {
  const s = createMcpServer({
    logLevel: 'silent',
    rateLimit: { execute: 1e9 },
    ...(state && { state }),
  });
  s.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: async ({ text }) => text });
  return s;
}

function call(s: McpKitServer): () => Promise<unknown> {
  return async () => {
    const res = await request(s, '/tools/echo/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
    });
    if (res.status !== 200) throw new Error(`execute answered ${res.status}`);
    await res.arrayBuffer();
  };
}

/** Runs the comparison. */
export async function measureRedis(
  log: (message: string) => void,
  options: { rounds: number; durationMs: number; warmupMs: number },
): Promise<RedisFigures> {
  const started = performance.now();
  const redis = await startRedis();
  const state = redisState({ url: redis.url, prefix: 'bench:' });
  await state.ready();
  const servers = { memory: server(), redis: server(state) };
  try {
    for (const s of Object.values(servers)) await throughput(call(s), IN_FLIGHT, options.warmupMs);
    const rates = { memory: [] as number[], redis: [] as number[] };
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? (['memory', 'redis'] as const) : (['redis', 'memory'] as const);
      for (const mode of order) {
        rates[mode].push((await throughput(call(servers[mode]), IN_FLIGHT, options.durationMs)).opsPerSec);
      }
      log(`redis: round ${round + 1}/${options.rounds}`);
    }
    return {
      memoryOpsPerSec: median(rates.memory),
      redisOpsPerSec: median(rates.redis),
      inFlight: IN_FLIGHT,
      rounds: options.rounds,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.close()));
    await redis.stop();
  }
}

/** The markdown block of the figures. */
export function renderRedis(f: RedisFigures): string {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  const addedUs = (1 / f.redisOpsPerSec - 1 / f.memoryOpsPerSec) * 1e6;
  return [
    `**Shared rate limits** (REST \`POST /tools/echo/execute\` in process, ${f.inFlight} in flight, a limit ` +
      `that never refuses; buckets in memory beside \`state: redisState()\` on a local redis-server; ` +
      `median of ${f.rounds} alternating rounds; ${f.seconds.toFixed(0)} s):`,
    '',
    '| Rate-limit buckets | calls/s | relative |',
    '| --- | ---: | ---: |',
    `| in memory (the default) | ${n(f.memoryOpsPerSec)} | 1.00 |`,
    `| Redis (one Lua script per call) | ${n(f.redisOpsPerSec)} | ${(f.redisOpsPerSec / f.memoryOpsPerSec).toFixed(2)} |`,
    '',
    `Redis adds about ${addedUs.toFixed(0)} µs of wall time per call at this concurrency (one round trip ` +
      'to a local Redis, overlapped with other calls in flight).',
  ].join('\n');
}
