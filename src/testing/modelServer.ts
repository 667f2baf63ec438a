/**
 * A loopback model server for tests: speaks OpenAI Chat Completions (`POST /v1/chat/completions`)
 * and Anthropic Messages (`POST /v1/messages`), streaming and not, from a script of turns — tool
 * calls, answers, injected errors with retry headers, slow chunks. Binds 127.0.0.1 on a free port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted model turn. */
export interface ModelTurn {
  /** The answer text (streamed in `chunkSize`-character deltas). */
  text?: string;
  /** Tool calls the model makes in this turn (in parallel). */
  toolCalls?: Array<{ name: string; arguments: Record<string, unknown>; id?: string }>;
  /** Answer with this HTTP error instead (the turn is consumed). */
  error?: { status: number; message?: string; type?: string; headers?: Record<string, string> };
  /** Delay before the response starts. */
  delayMs?: number;
  /** Delay between streamed chunks. */
  chunkDelayMs?: number;
  /** Token usage reported. Default `{ inputTokens: 10, outputTokens: 5 }`. */
  usage?: { inputTokens: number; outputTokens: number };
}

/** A request the server received. */
export interface ModelServerRequest {
  format: 'openai' | 'anthropic';
  headers: Record<string, string>;
  body: any;
  /** Whether the client went away before the response ended. */
  aborted: boolean;
  /**
   * Streamed events written so far. The server honours backpressure (it waits for `drain`), so a
   * client that stops reading its stream stops this count from growing.
   */
  eventsSent: number;
}

/** Options for {@link createModelServer}. */
export interface ModelServerOptions {
  /** Turns answered in order; after them, `fallback` answers. */
  turns?: ModelTurn[];
  /** Answers when the script is exhausted. Default: the text `ok`. */
  fallback?: ModelTurn | ((request: ModelServerRequest) => ModelTurn);
  /** Characters per streamed text delta. Default 4. */
  chunkSize?: number;
  /** Port. Default 0 (a free one). */
  port?: number;
}

/** A running loopback model server. */
export interface ModelServer {
  /** `http://127.0.0.1:<port>`: the Anthropic base URL; OpenAI's is `${url}/v1`. */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: ModelServerRequest[];
  /** Appends turns to the script. */
  enqueue(...turns: ModelTurn[]): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `res` can take more (or is gone). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/**
 * Starts a loopback model server.
 *
 * @example
 * ```ts
 * import { createModelServer } from 'mcpkit/testing';
 *
 * const model = await createModelServer({
 *   turns: [
 *     { toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] },
 *     { text: 'The sum is 5.' },
 *   ],
 * });
 * const provider = createOpenAIProvider({ baseUrl: `${model.url}/v1`, apiKey: 'test' });
 * ```
 */
export async function createModelServer(options: ModelServerOptions = {}): Promise<ModelServer> {
  const script: ModelTurn[] = [...(options.turns ?? [])];
  const requests: ModelServerRequest[] = [];
  const chunkSize = options.chunkSize ?? 4;
  let callSeq = 0;

  const nextTurn = (request: ModelServerRequest): ModelTurn => {
    const turn = script.shift();
    if (turn) return turn;
    const fallback = options.fallback ?? { text: 'ok' };
    return typeof fallback === 'function' ? fallback(request) : fallback;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const format = url.endsWith('/chat/completions')
      ? 'openai'
      : url.endsWith('/messages')
        ? 'anthropic'
        : undefined;
    if (req.method !== 'POST' || !format) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const record: ModelServerRequest = {
      format,
      headers,
      body: JSON.parse(raw || '{}'),
      aborted: false,
      eventsSent: 0,
    };
    requests.push(record);
    let ended = false;
    res.on('close', () => {
      if (!ended) record.aborted = true;
    });
    const turn = nextTurn(record);
    if (turn.delayMs) await sleep(turn.delayMs);
    if (turn.error) {
      const { status, message = `error ${status}`, type = 'api_error' } = turn.error;
      const body =
        format === 'openai'
          ? { error: { message, type, code: null } }
          : { type: 'error', error: { type, message } };
      ended = true;
      res.writeHead(status, { 'content-type': 'application/json', ...turn.error.headers });
      res.end(JSON.stringify(body));
      return;
    }
    const calls = (turn.toolCalls ?? []).map((c) => ({
      id: c.id ?? `call_${++callSeq}`,
      name: c.name,
      arguments: JSON.stringify(c.arguments),
    }));
    const text = turn.text ?? (calls.length > 0 ? '' : 'ok');
    const usage = turn.usage ?? { inputTokens: 10, outputTokens: 5 };
    const model = String(record.body.model ?? 'loopback');
    if (!record.body.stream) {
      const body =
        format === 'openai'
          ? {
              id: 'chatcmpl-loopback',
              object: 'chat.completion',
              model,
              choices: [
                {
                  index: 0,
                  message: {
                    role: 'assistant',
                    content: text || null,
                    ...(calls.length > 0 && {
                      tool_calls: calls.map((c) => ({
                        id: c.id,
                        type: 'function',
                        function: { name: c.name, arguments: c.arguments },
                      })),
                    }),
                  },
                  finish_reason: calls.length > 0 ? 'tool_calls' : 'stop',
                },
              ],
              usage: {
                prompt_tokens: usage.inputTokens,
                completion_tokens: usage.outputTokens,
                total_tokens: usage.inputTokens + usage.outputTokens,
              },
            }
          : {
              id: 'msg_loopback',
              type: 'message',
              role: 'assistant',
              model,
              content: [
                ...(text ? [{ type: 'text', text }] : []),
                ...calls.map((c) => ({
                  type: 'tool_use',
                  id: c.id,
                  name: c.name,
                  input: JSON.parse(c.arguments),
                })),
              ],
              stop_reason: calls.length > 0 ? 'tool_use' : 'end_turn',
              usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens },
            };
      ended = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const send = async (event: string | undefined, data: unknown) => {
      if (res.destroyed) return;
      const flushed = res.write(
        `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`,
      );
      record.eventsSent++;
      if (!flushed) await drained(res);
      if (turn.chunkDelayMs) await sleep(turn.chunkDelayMs);
    };
    if (format === 'openai') {
      const base = { id: 'chatcmpl-loopback', object: 'chat.completion.chunk', model };
      await send(undefined, { ...base, choices: [{ index: 0, delta: { role: 'assistant' } }] });
      for (const piece of chunks(text, chunkSize))
        await send(undefined, { ...base, choices: [{ index: 0, delta: { content: piece } }] });
      for (const [index, c] of calls.entries()) {
        await send(undefined, {
          ...base,
          choices: [
            {
              index: 0,
              delta: {
                tool_calls: [
                  { index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } },
                ],
              },
            },
          ],
        });
        for (const piece of chunks(c.arguments, chunkSize))
          await send(undefined, {
            ...base,
            choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: piece } }] } }],
          });
      }
      await send(undefined, {
        ...base,
        choices: [{ index: 0, delta: {}, finish_reason: calls.length > 0 ? 'tool_calls' : 'stop' }],
      });
      await send(undefined, {
        ...base,
        choices: [],
        usage: { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens },
      });
      await send(undefined, '[DONE]');
    } else {
      await send('message_start', {
        type: 'message_start',
        message: { id: 'msg_loopback', model, usage: { input_tokens: usage.inputTokens, output_tokens: 1 } },
      });
      await send('ping', { type: 'ping' });
      let index = 0;
      if (text) {
        await send('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'text', text: '' },
        });
        for (const piece of chunks(text, chunkSize))
          await send('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'text_delta', text: piece },
          });
        await send('content_block_stop', { type: 'content_block_stop', index });
        index++;
      }
      for (const c of calls) {
        await send('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} },
        });
        for (const piece of chunks(c.arguments, chunkSize))
          await send('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: piece },
          });
        await send('content_block_stop', { type: 'content_block_stop', index });
        index++;
      }
      await send('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: calls.length > 0 ? 'tool_use' : 'end_turn' },
        usage: { output_tokens: usage.outputTokens },
      });
      await send('message_stop', { type: 'message_stop' });
    }
    ended = !res.destroyed;
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    enqueue: (...turns) => script.push(...turns),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
