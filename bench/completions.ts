/**
 * The completion loop's own overhead per step against the loopback model: the time of a run not
 * spent waiting for the model or running tools (building requests, parsing, tool dispatch,
 * bookkeeping), median over many runs of a two-step loop (one tool call, then the answer). And the
 * same streamed answer through both client doors: time to first text and text deltas per second,
 * over a completion socket (WebSocket) and over `POST /completions/stream` (SSE), alternating.
 */

import { fileURLToPath } from 'node:url';
import { createMcpServer } from 'mcpkit';
import {
  type CompletionStreamEvent,
  connectCompletions,
  readCompletionEvents,
  type WebSocketConstructor,
} from 'mcpkit/client';
import { listen } from 'mcpkit/node';
import { createModelServer } from 'mcpkit/testing';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { forkServer, median } from './measure.js';

/** The argument that makes this module a server child of {@link measureDoors}. */
const DOORS_CHILD_FLAG = '--completion-doors-child';
const DOOR_DELTAS = 500;

/**
 * The server child of {@link measureDoors}: the loopback model and an mcpkit server with both doors,
 * in a process of their own, so the client's reading never waits on the server's writing.
 */
async function doorsChild(): Promise<void> {
  const model = await createModelServer({ chunkSize: 4, fallback: { text: 'word'.repeat(DOOR_DELTAS) } });
  const baseUrl = `${model.url}/v1`;
  const server = createMcpServer({
    logLevel: 'silent',
    outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
    completions: { resolveModel: () => ({ provider: 'openai', model: 'bench', apiKey: 'k', baseUrl }) },
  });
  const listening = await listen(server, { port: 0 });
  process.on('message', async (message) => {
    if (message !== 'exit') return;
    await listening.close();
    await server.close();
    await model.close();
    process.exit(0);
  });
  process.send!({ type: 'ready', port: listening.port });
}

export interface CompletionFigures {
  runs: number;
  stepsPerRun: number;
  /** Median overhead per step in microseconds, by provider and mode. */
  rows: Array<{ provider: string; stream: boolean; overheadUs: number; runMs: number }>;
  /** The same streamed answer through the two client doors. */
  doors: { runs: number; deltas: number; rows: DoorRow[] };
}

/** One client door's figures: medians over the runs. */
export interface DoorRow {
  door: 'WebSocket' | 'SSE';
  firstTextMs: number;
  deltasPerSecond: number;
}

/** Time to the first text delta and the rate of the rest, for one streamed completion. */
async function timeStream(events: AsyncIterable<CompletionStreamEvent>, started: number) {
  let first = 0;
  let last = 0;
  let count = 0;
  for await (const event of events) {
    if (event.type === 'error') throw new Error(`bench stream failed: ${event.code} ${event.message}`);
    if (event.type !== 'text') continue;
    last = performance.now();
    if (count++ === 0) first = last;
  }
  return { firstTextMs: first - started, deltasPerSecond: ((count - 1) * 1000) / (last - first), count };
}

/** The same loopback answer streamed over WebSocket and over SSE, alternating, `runs` times each. */
export async function measureDoors(
  log: (message: string) => void,
  runs: number,
): Promise<CompletionFigures['doors']> {
  const deltas = DOOR_DELTAS;
  const child = await forkServer(fileURLToPath(import.meta.url), [DOORS_CHILD_FLAG], { name: 'completions' });
  const url = `http://127.0.0.1:${child.port}`;
  const client = await connectCompletions(`ws://127.0.0.1:${child.port}/mcp`, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
  });
  const request = { messages: [{ role: 'user' as const, content: 'stream' }] };
  type Sample = { firstTextMs: number; deltasPerSecond: number };
  const samples: Record<DoorRow['door'], Sample[]> = { WebSocket: [], SSE: [] };
  log('completions: WebSocket and SSE streams');
  try {
    for (let i = 0; i < runs + 5; i++) {
      let started = performance.now();
      const ws = await timeStream(client.stream(request), started);
      started = performance.now();
      const response = await fetch(`${url}/completions/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      const sse = await timeStream(readCompletionEvents(response), started);
      if (ws.count !== deltas || sse.count !== deltas) throw new Error('bench stream lost deltas');
      if (i < 5) continue; // warm-up
      samples.WebSocket.push(ws);
      samples.SSE.push(sse);
    }
  } finally {
    client.close();
    await child.stop();
  }
  const rows = (['WebSocket', 'SSE'] as const).map((door) => ({
    door,
    firstTextMs: median(samples[door].map((s) => s.firstTextMs)),
    deltasPerSecond: median(samples[door].map((s) => s.deltasPerSecond)),
  }));
  return { runs, deltas, rows };
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
  return { runs, stepsPerRun: 2, rows, doors: await measureDoors(log, 50) };
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
    '',
    `**Completion streams by door** (the same loopback answer of ${f.doors.deltas} text deltas, streamed over a completion socket and over \`POST /completions/stream\` from a server in a child process, alternating; medians of ${f.doors.runs} runs each; the time to first text includes the request, the model request and its first chunk):`,
    '',
    '| Door | time to first text | text deltas per second |',
    '| --- | ---: | ---: |',
    ...f.doors.rows.map(
      (r) =>
        `| ${r.door} | ${r.firstTextMs.toFixed(2)} ms | ${Math.round(r.deltasPerSecond).toLocaleString('en-US')} |`,
    ),
  ].join('\n');
}

if (process.argv[2] === DOORS_CHILD_FLAG) await doorsChild();
