import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CreateMcpServerOptions, createMcpServer, type Logger, type McpKitServer } from 'mcpkit';
import { expect, vi } from 'vitest';
import { z } from 'zod';

/** A server with a small, known catalog used across the suites. */
export function fixtureServer(options: CreateMcpServerOptions = {}): McpKitServer {
  const server = createMcpServer({ name: 'fixture', version: '1.2.3', logLevel: 'silent', ...options });
  server.tools.register({
    name: 'add',
    description: 'Add two numbers',
    inputSchema: { a: z.number(), b: z.number() },
    outputSchema: { sum: z.number() },
    handler: ({ a, b }) => ({ sum: a + b }),
  });
  server.tools.register({
    name: 'echo',
    description: 'Echo text back',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    handler: (args) => String(args.text),
  });
  server.tools.register({
    name: 'boom',
    description: 'Always throws',
    handler: () => {
      const error = new Error('kaboom at /home/app/secret/config.ts:12');
      throw error;
    },
  });
  server.resources.register({
    uri: 'fixture://greeting',
    name: 'greeting',
    mimeType: 'text/plain',
    read: () => 'hello',
  });
  server.resources.register({
    uriTemplate: 'fixture://items/{id}',
    name: 'item',
    mimeType: 'application/json',
    complete: { id: (value) => ['1', '2', '10', '11'].filter((v) => v.startsWith(value)) },
    read: (_uri, { id }) => JSON.stringify({ id }),
  });
  server.prompts.register({
    name: 'greet',
    description: 'Greet someone',
    arguments: [{ name: 'name', required: true }],
    complete: { name: (value) => ['Ada', 'Alan', 'Grace'].filter((v) => v.startsWith(value)) },
    messages: [{ role: 'user', content: 'Say hello to {{name}}.' }],
  });
  return server;
}

/** A promise with its resolve and reject exposed. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** POSTs `body` as JSON to an MCP endpoint, accepting JSON and SSE answers, with `headers` added. */
export function postMcp(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

/** Every JSON-RPC message of an `/mcp` answer: a JSON body (one message or a batch) or SSE events. */
export async function messagesOf(res: Response): Promise<any[]> {
  const text = await res.text();
  if (!res.headers.get('content-type')?.includes('text/event-stream')) return [JSON.parse(text)].flat();
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: ') && line.length > 6)
    .map((line) => JSON.parse(line.slice(6)));
}

/** The port a listening node:http server is bound to. */
export function portOf(httpServer: HttpServer): number {
  return (httpServer.address() as AddressInfo).port;
}

/** Resolves once `httpServer` listens (at once if it already does). */
export function waitListening(httpServer: HttpServer): Promise<void> {
  if (httpServer.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    httpServer.once('listening', resolve);
    httpServer.once('error', reject);
  });
}

/** Closes `httpServer` and every connection it holds, keep-alive ones included. */
export function closeHttp(httpServer: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    httpServer.close(() => resolve());
    httpServer.closeAllConnections();
  });
}

/** Waits until integration `id` of `server` (an upstream) is connected and ready. */
export async function upstreamReady(server: McpKitServer, id: string): Promise<void> {
  await server.integrations.ready;
  await vi.waitFor(() => expect(server.integrations.get(id)?.upstreamState?.status).toBe('ready'), {
    timeout: 15_000,
    interval: 20,
  });
}

/** A logger that keeps what it is given at `info` in `lines` and drops the rest. */
export function keepingLogger(lines: unknown[]): Logger {
  const ignore = () => {};
  const logger = {
    trace: ignore,
    debug: ignore,
    info: (obj: unknown) => lines.push(obj),
    warn: ignore,
    error: ignore,
    child: () => logger,
  };
  return logger as unknown as Logger;
}
