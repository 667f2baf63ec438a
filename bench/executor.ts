/**
 * The executor's own cost: one call through `executor.execute` against calling the handler (and its
 * zod validation) directly, a 1,000-call parallel batch at concurrency 64, and a 10-step chain.
 */
import { performance } from 'node:perf_hooks';
import { createMcpServer } from 'mcpkit';
import { z } from 'zod';
import { median, settle } from './measure.js';

export interface ExecutorFigures {
  directUs: number;
  executorUs: number;
  batchMs: number;
  chainMs: number;
}

async function perCall(op: () => unknown, count: number): Promise<number> {
  for (let i = 0; i < count / 5; i++) await op();
  const started = performance.now();
  for (let i = 0; i < count; i++) await op();
  return ((performance.now() - started) * 1000) / count;
}

export async function measureExecutor(log: (m: string) => void, quick: boolean): Promise<ExecutorFigures> {
  const server = createMcpServer({ logLevel: 'silent', metrics: false });
  const schema = z.object({ n: z.number() });
  const handler = ({ n }: { n: number }) => ({ n: n + 1 });
  server.tools.register({ name: 'inc', inputSchema: schema, handler });
  const count = quick ? 20_000 : 200_000;
  const direct: number[] = [];
  const through: number[] = [];
  for (let round = 0; round < 3; round++) {
    await settle();
    direct.push(await perCall(() => handler(schema.parse({ n: 1 })), count));
    await settle();
    through.push(await perCall(() => server.executor.execute('inc', { n: 1 }), count));
  }
  const calls = Array.from({ length: 1000 }, (_, n) => ({ tool: 'inc', args: { n } }));
  const batches: number[] = [];
  const chains: number[] = [];
  const steps = Array.from({ length: 10 }, (_, i) => ({
    tool: 'inc',
    args: i === 0 ? { n: 0 } : { n: { $ref: `steps.${i - 1}.structuredContent.n` } },
  }));
  for (let i = 0; i < (quick ? 3 : 15); i++) {
    let started = performance.now();
    const results = await server.executor.parallel(calls, { concurrency: 64 });
    batches.push(performance.now() - started);
    if (results.some((r) => r.isError)) throw new Error('batch failed');
    started = performance.now();
    const chain = await server.executor.chain(steps);
    chains.push(performance.now() - started);
    if ((chain.result?.structuredContent as { n?: number } | undefined)?.n !== 10)
      throw new Error('chain failed');
  }
  const figures = {
    directUs: median(direct),
    executorUs: median(through),
    batchMs: median(batches),
    chainMs: median(chains),
  };
  log(
    `  executor: direct ${figures.directUs.toFixed(2)} µs, executor ${figures.executorUs.toFixed(2)} µs, ` +
      `batch ${figures.batchMs.toFixed(1)} ms, chain ${figures.chainMs.toFixed(2)} ms`,
  );
  return figures;
}

export function renderExecutor(f: ExecutorFigures): string {
  return [
    '**ToolExecutor** (in process, no transport):',
    '',
    '| Measurement | Figure |',
    '| --- | ---: |',
    `| handler + zod validation called directly | ${f.directUs.toFixed(2)} µs/call |`,
    `| the same through \`executor.execute\` (timeout, signal, events, result normalisation) | ${f.executorUs.toFixed(2)} µs/call |`,
    `| executor overhead per call | ${(f.executorUs - f.directUs).toFixed(2)} µs |`,
    `| 1,000-call \`parallel\` batch at concurrency 64 | ${f.batchMs.toFixed(1)} ms |`,
    `| 10-step \`chain\` with \`$ref\` arguments | ${f.chainMs.toFixed(2)} ms |`,
  ].join('\n');
}
