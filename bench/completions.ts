/**
 * The completion loop's own overhead per step against the loopback model: the time of a run not
 * spent waiting for the model or running tools (building requests, parsing, tool dispatch,
 * bookkeeping), median over many runs of a two-step loop (one tool call, then the answer).
 */
import { createMcpServer } from 'mcpkit';
import { createModelServer } from 'mcpkit/testing';
import { z } from 'zod';
import { median } from './measure.js';

export interface CompletionFigures {
  runs: number;
  stepsPerRun: number;
  /** Median overhead per step in microseconds, by provider and mode. */
  rows: Array<{ provider: string; stream: boolean; overheadUs: number; runMs: number }>;
}

export async function measureCompletions(log: (message: string) => void): Promise<CompletionFigures> {
  const runs = 200;
  const model = await createModelServer({
    fallback: (req) =>
      req.body.messages.some((m: any) => m.role === 'tool' || Array.isArray(m.content))
        ? { text: 'The sum is 5.' }
        : { toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] },
  });
  // The model server is on loopback: the outbound policy must allow it, as an app would.
  const server = createMcpServer({
    logLevel: 'silent',
    outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
  });
  server.tools.register({
    name: 'add',
    inputSchema: { a: z.number(), b: z.number() },
    handler: ({ a, b }) => ({ sum: a + b }),
  });
  const rows: CompletionFigures['rows'] = [];
  try {
    for (const provider of ['openai', 'anthropic'] as const) {
      for (const stream of [false, true]) {
        log(`completions: ${provider} ${stream ? 'streaming' : 'whole'}`);
        const baseUrl = provider === 'openai' ? `${model.url}/v1` : model.url;
        const overheads: number[] = [];
        const durations: number[] = [];
        for (let i = 0; i < runs + 20; i++) {
          const job = await server.completions.run(
            {
              model: { provider, model: 'bench', baseUrl },
              messages: [{ role: 'user', content: 'add 2 and 3' }],
            },
            { stream },
          );
          if (job.status !== 'succeeded') throw new Error(`bench run ${job.status}: ${job.error?.message}`);
          if (i < 20) continue; // warm-up
          overheads.push((job.timing.overheadMs * 1000) / job.steps.length);
          durations.push(job.timing.durationMs);
        }
        rows.push({ provider, stream, overheadUs: median(overheads), runMs: median(durations) });
      }
    }
  } finally {
    await server.close();
    await model.close();
  }
  return { runs, stepsPerRun: 2, rows };
}

export function renderCompletions(f: CompletionFigures): string {
  return [
    `**Completions** (the loop's own overhead per step against the loopback model: run time not spent in the model or the tools; median of ${f.runs} runs of ${f.stepsPerRun} steps):`,
    '',
    '| Provider | Mode | overhead per step | whole run |',
    '| --- | --- | ---: | ---: |',
    ...f.rows.map(
      (r) =>
        `| ${r.provider} | ${r.stream ? 'streaming' : 'whole'} | ${r.overheadUs.toFixed(0)} µs | ${r.runMs.toFixed(2)} ms |`,
    ),
  ].join('\n');
}
