/**
 * The cost of tracing on an in-memory `tools/call` (SDK client → session → executor): no provider
 * registered, against a registered SDK provider (AsyncLocalStorage context, a processor that drops
 * spans). Not part of `npm run bench`; run `npx tsx bench/tracing.ts` (uses the sources).
 */
import { performance } from 'node:perf_hooks';
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { createMcpServer } from '../src/index.js';
import { connectClient } from '../src/testing/index.js';

const COUNT = Number(process.env.COUNT ?? 20_000);
const ROUNDS = 5;

async function perCallUs(): Promise<number> {
  const server = createMcpServer({ logLevel: 'silent', metrics: false });
  server.tools.register({
    name: 'add',
    inputSchema: { a: z.number(), b: z.number() },
    handler: ({ a, b }) => ({ sum: a + b }),
  });
  const { client, close } = await connectClient(server);
  const call = () => client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
  for (let i = 0; i < COUNT / 5; i++) await call();
  const started = performance.now();
  for (let i = 0; i < COUNT; i++) await call();
  const us = ((performance.now() - started) * 1000) / COUNT;
  await close();
  await server.close();
  return us;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const drop: SpanProcessor = {
  onStart() {},
  onEnd() {},
  forceFlush: async () => {},
  shutdown: async () => {},
};
const provider = new BasicTracerProvider({ spanProcessors: [drop] });
const contextManager = new AsyncLocalStorageContextManager().enable();

const off: number[] = [];
const spansOnly: number[] = [];
const on: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  otel.trace.disable();
  otel.context.disable();
  off.push(await perCallUs());
  otel.trace.setGlobalTracerProvider(provider);
  spansOnly.push(await perCallUs());
  otel.context.setGlobalContextManager(contextManager);
  on.push(await perCallUs());
}
const pct = (us: number) =>
  `${us.toFixed(1)} µs (+${(((us - median(off)) / median(off)) * 100).toFixed(1)}%)`;
console.log(`tools/call in memory, medians of ${ROUNDS} rounds of ${COUNT}:`);
console.log(`  no provider                          ${median(off).toFixed(1)} µs`);
console.log(`  provider, no context manager         ${pct(median(spansOnly))}`);
console.log(`  provider + AsyncLocalStorage context ${pct(median(on))}`);
