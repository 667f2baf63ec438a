/**
 * Operations costs: `tools/call` throughput in memory with the standard metrics on against off (the
 * metrics hook into every call), with OpenTelemetry tracing on against off in memory and over
 * Streamable HTTP, and start-up time to listening with 1,000 tools.
 *
 * Tracing "on" is an SDK `BasicTracerProvider` whose processor drops spans, handed to the server as
 * `tracing: { tracer, api }`, so each call really creates and ends its spans (the `tools/call` span,
 * and over HTTP the HTTP request's); "off" is `tracing: false`. In memory it is measured twice: without a context manager, and with the
 * `AsyncLocalStorageContextManager` a Node application registers to get nested spans. That manager
 * slows every promise in the process once enabled, whoever creates the spans, so both sides of the
 * second pair run with it enabled: the difference is what mcpkit's spans add.
 */

import { performance } from 'node:perf_hooks';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { z } from 'zod';
import { median, settle, throughput } from './measure.js';
import { benchFetch } from './targets.js';

/** Medians of alternating on/off rounds: throughput and this process's CPU time per call. */
export interface OnOff {
  on: number;
  off: number;
  cpuOn: number;
  cpuOff: number;
}

export interface OperationsFigures {
  metrics: OnOff;
  /** Tracing on and off in memory, without a context manager. */
  tracing: OnOff;
  /** The same with the AsyncLocalStorage context manager enabled for both. */
  tracingAls: OnOff;
  /** Tracing on and off over Streamable HTTP on loopback (SDK client, 2025-era session). */
  tracingHttp: OnOff;
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

interface Served {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

/** An mcpkit server with one echo tool, and an SDK client calling it in memory or over HTTP. */
async function serve(
  transport: 'memory' | 'http',
  options: { metrics: boolean; tracing: typeof TRACING_ON | false },
): Promise<Served> {
  const server = createMcpServer({ logLevel: 'silent', ...options });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  const client = new Client({ name: 'bench', version: '0' });
  let stop: () => Promise<void>;
  if (transport === 'memory') {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    stop = async () => {};
  } else {
    const listening = await listen(server, { port: 0, websocket: false, closeGraceMs: 1_000 });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`), { fetch: benchFetch }),
    );
    stop = () => listening.close();
  }
  return {
    call: () => client.callTool({ name: 'echo', arguments: { text: 'hi' } }),
    close: async () => {
      await client.close().catch(() => {});
      await stop();
    },
  };
}

/** Alternating rounds, 64 in flight, of a server with the feature on and one with it off. */
async function onOff(
  make: (on: boolean) => Promise<Served>,
  rounds: number,
  durationMs: number,
): Promise<OnOff> {
  const served = { on: await make(true), off: await make(false) };
  await throughput(served.on.call, 64, durationMs);
  await throughput(served.off.call, 64, durationMs);
  const ops = { on: [] as number[], off: [] as number[] };
  const cpu = { on: [] as number[], off: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    for (const which of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      await settle();
      const run = await throughput(served[which].call, 64, durationMs);
      ops[which].push(run.opsPerSec);
      cpu[which].push(run.cpuUsPerOp);
    }
  }
  await served.on.close();
  await served.off.close();
  return { on: median(ops.on), off: median(ops.off), cpuOn: median(cpu.on), cpuOff: median(cpu.off) };
}

const cost = (f: OnOff): string => `${((1 - f.on / f.off) * 100).toFixed(1)} %`;
const cpuCost = (f: OnOff): string => `${(f.cpuOn - f.cpuOff).toFixed(1)} µs`;

export async function measureOperations(
  log: (m: string) => void,
  quick: boolean,
): Promise<OperationsFigures> {
  const duration = quick ? 500 : 1500;
  const rounds = quick ? 1 : 5;
  const report = (label: string, f: OnOff) =>
    log(
      `  ${label}: on ${Math.round(f.on)} ops/s (${f.cpuOn.toFixed(1)} µs CPU), off ${Math.round(f.off)} ops/s (${f.cpuOff.toFixed(1)} µs CPU), cost ${cost(f)}`,
    );

  const metrics = await onOff((on) => serve('memory', { metrics: on, tracing: false }), rounds, duration);
  report('metrics, in memory', metrics);
  const traced = (transport: 'memory' | 'http') => (on: boolean) =>
    serve(transport, { metrics: true, tracing: on ? TRACING_ON : false });
  const tracing = await onOff(traced('memory'), rounds, duration);
  report('tracing, in memory', tracing);
  const tracingHttp = await onOff(traced('http'), rounds, duration);
  report('tracing, Streamable HTTP', tracingHttp);
  const contextManager = new AsyncLocalStorageContextManager().enable();
  otel.context.setGlobalContextManager(contextManager);
  let tracingAls: OnOff;
  try {
    tracingAls = await onOff(traced('memory'), rounds, duration);
  } finally {
    otel.context.disable();
    contextManager.disable();
  }
  report('tracing, in memory, AsyncLocalStorage context manager', tracingAls);

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
  return { metrics, tracing, tracingAls, tracingHttp, startupMs: median(startups) };
}

export function renderOperations(f: OperationsFigures): string {
  const row = (label: string, x: OnOff) =>
    `| ${label} | ${Math.round(x.on).toLocaleString('en-US')} | ${Math.round(x.off).toLocaleString('en-US')} | ${cost(x)} | ${x.cpuOn.toFixed(1)} / ${x.cpuOff.toFixed(1)} | ${cpuCost(x)} |`;
  return [
    '**Operations** (`tools/call` of an echo tool, 64 in flight, SDK v2 client; on and off alternate, medians; CPU is this process, client included. Tracing "on" is an SDK `BasicTracerProvider` whose processor drops the spans):',
    '',
    '| Feature, transport | on (ops/s) | off (ops/s) | cost | CPU per call, on / off (µs) | CPU cost per call |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('standard metrics, in memory', f.metrics),
    row('tracing, in memory, no context manager', f.tracing),
    row('tracing, in memory, AsyncLocalStorage context manager on both sides', f.tracingAls),
    row('tracing, Streamable HTTP on loopback', f.tracingHttp),
    '',
    `Start-up to listening (\`createMcpServer\` + 1,000 tools + \`listen\`): ${f.startupMs.toFixed(0)} ms.`,
  ].join('\n');
}
