/**
 * A client that leaves before mcpkit's own door sees its request (a host app's middleware or hook was
 * still running): the bridged request must report the departure, so nothing runs for it.
 */

import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { describe, expect, it } from 'vitest';
import { closeHttp } from './fixtures.js';

/** A promise and the function that settles it. */
function latch(): { signal: () => void; settled: Promise<void> } {
  let signal!: () => void;
  const settled = new Promise<void>((resolve) => {
    signal = resolve;
  });
  return { signal, settled };
}

/** What `kit.fetch` answers first, as it answers it (wrapping `fetch` to see it). */
function firstAnswer(kit: McpKitServer): Promise<Promise<Response>> {
  const fetch = kit.fetch;
  return new Promise((resolve) => {
    kit.fetch = (request, options) => {
      const response = fetch(request, options);
      resolve(response);
      return response;
    };
  });
}

describe('a client that left before the Express adapter ran', () => {
  it.each([
    ['REST execute', '/tools/count/execute', { arguments: {} }, {}],
    [
      'stateless /mcp',
      '/mcp',
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'count', arguments: {} },
      },
      { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    ],
  ])('runs nothing for %s', async (_what, path, body, headers) => {
    const kit = createMcpServer({ name: 't', version: '1', logLevel: 'silent', http: { stateless: true } });
    let ran = 0;
    kit.tools.register({
      name: 'count',
      description: 'Counts its calls',
      handler: () => {
        ran++;
        return 'counted';
      },
    });
    const { signal: arrived, settled: arrival } = latch();
    // What mcpkit answered the request (nobody is left to read it).
    const answer = firstAnswer(kit);
    const app = express();
    app.use(express.json());
    // A host app's middleware that is still busy when the client gives up (a slow auth check, say).
    app.use((_req: IncomingMessage, res: ServerResponse, next: () => void) => {
      res.once('close', () => setImmediate(next));
      arrived();
    });
    app.use(mcpkitExpress(kit));
    const httpServer = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => httpServer.once('listening', resolve));
    try {
      const client = httpRequest({
        host: '127.0.0.1',
        port: (httpServer.address() as AddressInfo).port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
      });
      client.on('error', () => {});
      client.end(JSON.stringify(body));
      await arrival;
      client.destroy();
      // Settled once the call ran, or was refused for the client's departure.
      await await answer;
      expect(ran).toBe(0);
    } finally {
      await closeHttp(httpServer);
      await kit.close();
    }
  });
});

describe.each(['express', 'fastify'] as const)(
  'a client that left before the %s adapter read its body',
  (mount) => {
    it('is answered at once, not after http.bodyTimeoutMs', async () => {
      const kit = createMcpServer({
        name: 't',
        version: '1',
        logLevel: 'silent',
        http: { bodyTimeoutMs: 5_000 },
      });
      let ran = 0;
      kit.tools.register({
        name: 'count',
        description: 'Counts its calls',
        handler: () => {
          ran++;
          return 'counted';
        },
      });
      const answer = firstAnswer(kit);
      const { signal: arrived, settled: arrival } = latch();
      let port: number;
      let stop: () => Promise<void>;
      if (mount === 'express') {
        // No body parser: mcpkit reads the body itself, after a host app's middleware that outlived the client.
        const app = express();
        app.use((_req: IncomingMessage, res: ServerResponse, next: () => void) => {
          res.once('close', () => setImmediate(next));
          arrived();
        });
        app.use(mcpkitExpress(kit));
        const httpServer = app.listen(0, '127.0.0.1');
        await new Promise((resolve) => httpServer.once('listening', resolve));
        port = (httpServer.address() as AddressInfo).port;
        stop = () => closeHttp(httpServer);
      } else {
        const app = Fastify();
        app.addHook('onRequest', (request, _reply, done) => {
          request.raw.socket.once('close', () => setImmediate(done));
          arrived();
        });
        await app.register(mcpkitFastify, { server: kit });
        await app.listen({ port: 0, host: '127.0.0.1' });
        port = (app.server.address() as AddressInfo).port;
        stop = () => app.close();
      }
      try {
        const client = httpRequest({
          host: '127.0.0.1',
          port,
          path: '/tools/count/execute',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
        });
        client.on('error', () => {});
        client.end(JSON.stringify({ arguments: {} }));
        await arrival;
        client.destroy();
        if (mount === 'fastify') {
          // The plugin queues requests as listen() does (node/pacer.ts): one whose client left
          // while it waited for its turn is never started, so mcpkit is not even asked.
          let asked = false;
          void answer.then(() => {
            asked = true;
          });
          await new Promise((resolve) => setTimeout(resolve, 200));
          expect(asked).toBe(false);
          expect(ran).toBe(0);
          return;
        }
        const started = performance.now();
        const response = await await answer;
        // The body can never arrive: waiting for it holds the request for the whole body timeout.
        expect(response.status).not.toBe(408);
        expect(performance.now() - started).toBeLessThan(2_500);
        expect(ran).toBe(0);
      } finally {
        await stop();
        await kit.close();
      }
    });
  },
);
