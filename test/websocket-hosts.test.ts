/**
 * WebSocket on the same port as HTTP, for each host: node:http via listen(), Express 5
 * (`app.listen(0)`), Fastify (`fastify.server`) and Hono on @hono/node-server. On each, one SDK v2
 * client speaks MCP over Streamable HTTP, another over WebSocket, and the host's own route answers.
 */
import type { Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import type { McpKitServer } from 'mcpkit';
import { attachWebSocket, listen, toNodeListener, WebSocketClientTransport } from 'mcpkit/node';
import { describe, expect, it } from 'vitest';
import { closeHttp, fixtureServer, portOf, waitListening } from './fixtures.js';

interface Host {
  /** Base URL (http://127.0.0.1:port). */
  url: string;
  close(): Promise<void>;
  /** Whether the host serves a `/hello` route of its own (listen() serves only mcpkit). */
  ownRoute?: boolean;
}

const hosts: Array<[string, (server: McpKitServer) => Promise<Host>]> = [
  [
    'node:http via listen()',
    async (server) => {
      const listening = await listen(server, { port: 0 });
      return { url: listening.url, close: () => listening.close(), ownRoute: false };
    },
  ],
  [
    'Express 5 (app.listen)',
    async (server) => {
      const app = express();
      app.get('/hello', (_req, res) => {
        res.send('hello from express');
      });
      const mcp = toNodeListener((request) => server.fetch(request));
      app.all('/mcp', (req, res) => mcp(req, res));
      const httpServer = app.listen(0, '127.0.0.1');
      const ws = await attachWebSocket(httpServer, server);
      await waitListening(httpServer);
      return {
        url: `http://127.0.0.1:${portOf(httpServer)}`,
        close: async () => {
          await ws.close();
          await server.close();
          await closeHttp(httpServer);
        },
      };
    },
  ],
  [
    'Fastify 5 (fastify.server)',
    async (server) => {
      const fastify = Fastify();
      fastify.get('/hello', async () => 'hello from fastify');
      const mcp = toNodeListener((request) => server.fetch(request));
      // Before body parsing: mcpkit reads the body itself, with its own limit.
      fastify.addHook('onRequest', (request, reply, done) => {
        if (request.url.split('?')[0] !== '/mcp') return done();
        reply.hijack();
        mcp(request.raw, reply.raw);
      });
      const ws = await attachWebSocket(fastify.server, server);
      await fastify.listen({ port: 0, host: '127.0.0.1' });
      return {
        url: `http://127.0.0.1:${portOf(fastify.server)}`,
        close: async () => {
          await ws.close();
          await server.close();
          fastify.server.closeAllConnections();
          await fastify.close();
        },
      };
    },
  ],
  [
    'Hono on @hono/node-server',
    async (server) => {
      const app = new Hono();
      app.get('/hello', (c) => c.text('hello from hono'));
      app.all('/mcp', (c) => server.fetch(c.req.raw));
      const httpServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as HttpServer;
      const ws = await attachWebSocket(httpServer, server);
      await waitListening(httpServer);
      return {
        url: `http://127.0.0.1:${portOf(httpServer)}`,
        close: async () => {
          await ws.close();
          await server.close();
          await closeHttp(httpServer);
        },
      };
    },
  ],
];

describe.each(hosts)('%s', (name, make) => {
  it('serves MCP over Streamable HTTP and WebSocket on one port, beside its own routes', async () => {
    const server = fixtureServer();
    const host = await make(server);
    try {
      if (host.ownRoute !== false) {
        const hello = await fetch(`${host.url}/hello`);
        expect(await hello.text()).toMatch(/^hello from/);
      }

      const overHttp = new Client({ name: 'http', version: '1' });
      await overHttp.connect(new StreamableHTTPClientTransport(new URL(`${host.url}/mcp`)));
      const overWs = new Client({ name: 'ws', version: '1' });
      await overWs.connect(new WebSocketClientTransport(`${host.url.replace(/^http/, 'ws')}/mcp`));

      const [viaHttp, viaWs] = await Promise.all([
        overHttp.callTool({ name: 'add', arguments: { a: 20, b: 1 } }),
        overWs.callTool({ name: 'add', arguments: { a: 20, b: 2 } }),
      ]);
      expect(viaHttp.structuredContent).toEqual({ sum: 21 });
      expect(viaWs.structuredContent).toEqual({ sum: 22 });
      expect(server.connectionCounts()).toMatchObject({ httpSessions: 1, connections: { websocket: 1 } });

      // a list change reaches the WebSocket session
      const changed = new Promise<void>((resolve) =>
        overWs.setNotificationHandler('notifications/tools/list_changed', () => resolve()),
      );
      server.tools.register({ name: `added_on_${name.length}`, description: 'x', handler: () => 'x' });
      await changed;

      await overHttp.close();
      await overWs.close();
    } finally {
      await host.close();
    }
  });
});
