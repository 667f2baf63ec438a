/**
 * Operations costs: `tools/call` throughput in memory with the standard metrics on against off (the
 * metrics hook into every call), with OpenTelemetry tracing on against off, and start-up time to
 * listening with 1,000 tools.
 *
 * Tracing "on" is an SDK `BasicTracerProvider` whose processor drops spans, handed to the server as
 * `tracing: { tracer, api }`, so each call really creates and ends its spans (the MCP request and the
 * tool run); "off" is `tracing: false`. Measured twice: without a context manager, and with the
 * `AsyncLocalStorageContextManager` a Node application registers to get nested spans. That manager
 * slows every promise in the process once enabled, whoever creates the spans, so both sides of the
 * second pair run with it enabled: the difference is what mcpkit's spans add.
 */

import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { z } from 'zod';
import { median, settle, throughput } from './measure.js';

export interface OperationsFigures {
  metricsOn: number;
  metricsOff: number;
  /** Tracing on and off, without a context manager. */
  tracingOn: number;
  tracingOff: number;
  /** Tracing on and off, with the AsyncLocalStorage context manager enabled for both. */
  tracingAlsOn: number;
  tracingAlsOff: number;
  startupMs: number;
}

const drop: SpanProcessor = {
  onStart() {},
  onEnd() {},
  forceFlush: async () => {},
  shutdown: async () => {},
};
const provider = new BasicTracerProvider({ spanProcessors: [drop] });
const TRACING_ON = { tracer: provider.getTracer('bench'), api: otel };

async function connected(metrics: boolean, tracing: typeof TRACING_ON | false = false) {
  const server = createMcpServer({ logLevel: 'silent', metrics, tracing });
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

  /** Alternating rounds of tracing on and off; medians of each. */
  const tracingPair = async (): Promise<{ on: number; off: number }> => {
    const traced = await connected(true, TRACING_ON);
    const plain = await connected(true, false);
    await throughput(call(traced.client), 64, quick ? 500 : 1500);
    await throughput(call(plain.client), 64, quick ? 500 : 1500);
    const got = { on: [] as number[], off: [] as number[] };
    for (let round = 0; round < (quick ? 1 : 5); round++) {
      for (const which of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        await settle();
        got[which].push(
          (await throughput(call((which === 'on' ? traced : plain).client), 64, duration)).opsPerSec,
        );
      }
    }
    await traced.close();
    await plain.close();
    return { on: median(got.on), off: median(got.off) };
  };
  const tracing = await tracingPair();
  log(`  tracing on ${Math.round(tracing.on)} ops/s, off ${Math.round(tracing.off)} ops/s`);
  const contextManager = new AsyncLocalStorageContextManager().enable();
  otel.context.setGlobalContextManager(contextManager);
  let tracingAls: { on: number; off: number };
  try {
    tracingAls = await tracingPair();
  } finally {
    otel.context.disable();
    contextManager.disable();
  }
  log(
    `  with AsyncLocalStorage: tracing on ${Math.round(tracingAls.on)} ops/s, off ${Math.round(tracingAls.off)} ops/s`,
  );

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
  return {
    metricsOn: median(results.on),
    metricsOff: median(results.off),
    tracingOn: tracing.on,
    tracingOff: tracing.off,
    tracingAlsOn: tracingAls.on,
    tracingAlsOff: tracingAls.off,
    startupMs: median(startups),
  };
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
    `| throughput with tracing on (SDK provider, spans dropped), no context manager | ${Math.round(f.tracingOn).toLocaleString('en-US')} ops/s |`,
    `| throughput with tracing off (\`tracing: false\`), no context manager | ${Math.round(f.tracingOff).toLocaleString('en-US')} ops/s |`,
    `| cost of tracing, no context manager | ${((1 - f.tracingOn / f.tracingOff) * 100).toFixed(1)} % |`,
    `| throughput with tracing on, AsyncLocalStorage context manager | ${Math.round(f.tracingAlsOn).toLocaleString('en-US')} ops/s |`,
    `| throughput with tracing off, AsyncLocalStorage context manager | ${Math.round(f.tracingAlsOff).toLocaleString('en-US')} ops/s |`,
    `| cost of tracing with the context manager | ${((1 - f.tracingAlsOn / f.tracingAlsOff) * 100).toFixed(1)} % |`,
    `| start-up to listening with 1,000 tools | ${f.startupMs.toFixed(0)} ms |`,
  ].join('\n');
}
