/**
 * mcpkit/client's reading of `POST /completions/stream`: the same events however the stream is cut
 * into reads (a blank line or a CRLF split between two reads included), any line-end style, and a
 * large event read in linear time.
 */
import { type CompletionStreamEvent, parseCompletionEvent, readCompletionEvents } from 'mcpkit/client';
import { describe, expect, it } from 'vitest';

/** A 200 event-stream answer whose body arrives in `pieces`. */
function answer(pieces: string[]): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

async function read(pieces: string[]): Promise<CompletionStreamEvent[]> {
  const events: CompletionStreamEvent[] = [];
  for await (const event of readCompletionEvents(answer(pieces))) events.push(event);
  return events;
}

const STREAM = [
  ': keepalive',
  '',
  'event: start',
  'data: {"id":"j1","model":{"provider":"openai","model":"m"}}',
  '',
  'event: text',
  'data: {"step":0,"delta":"Hel"}',
  '',
  'event: text',
  'data: {"step":0,"delta":"lo"}',
  '',
  'event: done',
  'data: {"job":{"id":"j1","status":"succeeded","output":"Hello"}}',
  '',
  '',
];

const EXPECTED = [
  { type: 'start', id: 'j1', model: { provider: 'openai', model: 'm' } },
  { type: 'text', step: 0, delta: 'Hel' },
  { type: 'text', step: 0, delta: 'lo' },
  { type: 'done', job: { id: 'j1', status: 'succeeded', output: 'Hello' } },
];

describe('readCompletionEvents', () => {
  it.each(['\n', '\r\n', '\r'])('reads the same events cut at every position (line ends %j)', async (eol) => {
    const text = STREAM.join(eol);
    for (let cut = 0; cut <= text.length; cut++) {
      expect(await read([text.slice(0, cut), text.slice(cut)])).toEqual(EXPECTED);
    }
    // One character per read.
    expect(await read([...text])).toEqual(EXPECTED);
  });

  it('reads a large event that arrives in many small reads', async () => {
    const output = 'x'.repeat(4 * 1024 * 1024);
    const text = `event: done\ndata: ${JSON.stringify({ job: { id: 'j', status: 'succeeded', output } })}\n\n`;
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += 1024) pieces.push(text.slice(i, i + 1024));
    const events = await read(pieces);
    expect(events).toHaveLength(1);
    expect((events[0] as { job: { output: string } }).job.output.length).toBe(output.length);
  });

  it('refuses an unknown event name and data that is not an object', () => {
    expect(() => parseCompletionEvent('explode', {})).toThrow(TypeError);
    expect(() => parseCompletionEvent('text', [1])).toThrow(TypeError);
    expect(parseCompletionEvent('text', { type: 'done', step: 1, delta: 'a' })).toMatchObject({
      type: 'text',
    });
  });
});
