/**
 * Operations costs: `tools/call` throughput in memory with the standard metrics on against off (the
 * metrics hook into every call), and start-up time to listening with 1,000 tools.
 */
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { z } from 'zod';
import { median, settle, throughput } from './measure.js';

export interface OperationsFigures {
  metricsOn: number;
  metricsOff: number;
  startupMs: number;
}

async function connected(metrics: boolean) {
  const server = createMcpServer({ logLevel: 'silent', metrics });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(clientSide);
  return { client, close: async () => client.close() };
}

export async function measureOperations(
  log: (m: string) => void,
  quick: boolean,
): Promise<OperationsFigures> {
  const on = await connected(true);
  const off = await connected(false);
  const call = (c: Client) => () => c.callTool({ name: 'echo', arguments: { text: 'hi' } });
  const duration = quick ? 500 : 1500;
  await throughput(call(on.client), 64, quick ? 500 : 1500);
  await throughput(call(off.client), 64, quick ? 500 : 1500);
  const results = { on: [] as number[], off: [] as number[] };
  for (let round = 0; round < (quick ? 1 : 3); round++) {
    for (const which of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      await settle();
      results[which].push(
        (await throughput(call((which === 'on' ? on : off).client), 64, duration)).opsPerSec,
      );
    }
  }
  await on.close();
  await off.close();
  log(`  metrics on ${Math.round(median(results.on))} ops/s, off ${Math.round(median(results.off))} ops/s`);

  const startups: number[] = [];
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    await settle();
    const started = performance.now();
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.registerMany(
      Array.from({ length: 1000 }, (_, n) => ({
        name: `tool_${n}`,
        inputSchema: { query: z.string(), limit: z.number().int().optional() },
        handler: () => 'ok',
      })),
    );
    const listening = await listen(server, { port: 0, websocket: false });
    startups.push(performance.now() - started);
    await listening.close();
  }
  log(`  start-up to listening with 1,000 tools: ${median(startups).toFixed(0)} ms`);
  return { metricsOn: median(results.on), metricsOff: median(results.off), startupMs: median(startups) };
}

export function renderOperations(f: OperationsFigures): string {
  return [
    '**Operations** (in-memory `tools/call`, 64 in flight; start-up is `createMcpServer` + 1,000 tools + `listen`):',
    '',
    '| Measurement | Figure |',
    '| --- | ---: |',
    `| throughput with standard metrics on | ${Math.round(f.metricsOn).toLocaleString('en-US')} ops/s |`,
    `| throughput with metrics off (\`metrics: false\`) | ${Math.round(f.metricsOff).toLocaleString('en-US')} ops/s |`,
    `| cost of metrics | ${((1 - f.metricsOn / f.metricsOff) * 100).toFixed(1)} % |`,
    `| start-up to listening with 1,000 tools | ${f.startupMs.toFixed(0)} ms |`,
  ].join('\n');
}
