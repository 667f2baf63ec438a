/**
 * Isolated tools: a CPU-heavy tool in a worker thread and a leaking tool in a child process, side by
 * side with a normal tool on the server's own event loop. The normal tool keeps answering while the
 * heavy one computes and the leaking one runs out of memory; each fault comes back as a tool error
 * that names the limit it hit.
 *
 *   npx tsx examples/isolated-tools.ts
 */
import { createMcpServer } from 'mcpkit';
import { createIsolation } from 'mcpkit/node';
import { z } from 'zod';

const server = createMcpServer({ name: 'isolated-tools', version: '0.1.0', logLevel: 'warn' });
// 'idle': a burning worker only gets cores nothing else wants, so the echo below stays fast (Linux).
const isolation = createIsolation({ maxWorkers: 2, metrics: server.metrics, workerPriority: 'idle' });

server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
server.tools.register(
  isolation.tool(new URL('./tools/primes.mjs', import.meta.url), {
    name: 'primes',
    description: 'Counts the primes below a number (CPU-bound)',
    inputSchema: { below: z.number().int().min(2).max(50_000_000) },
    outputSchema: { below: z.number(), count: z.number() },
    isolate: { level: 'worker', timeoutMs: 2_000, maxMemoryMb: 64 },
  }),
);
server.tools.register(
  isolation.tool(new URL('./tools/leaky.mjs', import.meta.url), {
    name: 'leaky',
    description: 'Remembers items for ever (leaks memory)',
    inputSchema: { items: z.number().int().min(1).max(10_000_000) },
    isolate: { level: 'process', timeoutMs: 10_000, maxMemoryMb: 64 },
  }),
);

const started = performance.now();
const ms = () => `${Math.round(performance.now() - started)} ms`;
const text = (result: { content: unknown }) =>
  (result.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('');

const heavy = server.executor.execute('primes', { below: 40_000_000 });
const leak = server.executor.execute('leaky', { items: 5_000_000 });
// The normal tool answers while both run.
let echoes = 0;
const echoing = (async () => {
  for (let i = 0; i < 20; i++) {
    await server.executor.execute('echo', { text: `ping ${i}` });
    echoes++;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
})();
const [primes, leaked] = await Promise.all([heavy, leak]);
await echoing;
console.log(`echo answered ${echoes} times while the others ran (${ms()})`);
console.log(`primes: ${text(primes)}`);
console.log(`leaky: ${text(leaked)}`);
const small = await server.executor.execute('primes', { below: 100_000 });
console.log(`primes again (the pool recovered): ${text(small)}`);
console.log('faults contained:', JSON.stringify(isolation.stats().faults));
await server.close();
await isolation.close();
