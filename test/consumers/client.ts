/** Consumer fixture (scripts/check-consumers.mjs): `mcpkit/client`, with no optional peer installed. */
import {
  type CompletionSnapshot,
  type CompletionStreamEvent,
  connectCompletions,
  parseCompletionEvent,
  readCompletionEvents,
  type WebSocketConstructor,
} from 'mcpkit/client';

export const event: CompletionStreamEvent = parseCompletionEvent('text', { step: 0, delta: 'hi' });

export async function stream(WebSocket: WebSocketConstructor): Promise<CompletionSnapshot> {
  const client = await connectCompletions('ws://127.0.0.1:3000/mcp', { apiKey: 'key', WebSocket });
  const completion = client.stream({ messages: [{ role: 'user', content: 'Hello' }] });
  for await (const e of completion) if (e.type === 'text') console.log(e.delta);
  const job = await completion.result;
  client.close();
  return job;
}

export async function sse(response: Response): Promise<number> {
  let count = 0;
  for await (const e of readCompletionEvents(response)) if (e.type !== 'error') count++;
  return count;
}
