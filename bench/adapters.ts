/**
 * REST `POST /tools/{name}/execute` throughput through each mount (autocannon, 64 connections), beside
 * a bare route of the same framework that returns the same JSON: the adapter's and REST layer's
 * overhead as a ratio, measured in the same run.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import autocannon from 'autocannon';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { createMcpServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { mcpkitHono } from 'mcpkit/hono';
import { toNodeListener } from 'mcpkit/node';
import { z } from 'zod';

const BODY = JSON.stringify({ arguments: { text: 'hello' } });
const RESULT = { content: [{ type: 'text', text: 'hello' }], durationMs: 0 };

interface Host {
  name: string;
  base: string;
  close(): Promise<void>;
}

export interface AdapterRow {
  adapter: string;
  mcpkit: number;
  bare: number;
}

function kit() {
  const server = createMcpServer({ logLevel: 'silent' });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  return server;
}

function closeNode(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function nodeHost(): Promise<Host> {
  const server = kit();
  const listener = toNodeListener((request) => server.fetch(request));
  const httpServer = createServer((req, res) => {
    if (req.url === '/bare') {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(RESULT));
      });
      return;
    }
    listener(req, res);
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    name: 'node:http',
    base: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`,
    close: () => closeNode(httpServer),
  };
}

async function expressHost(): Promise<Host> {
  const server = kit();
  const app = express();
  app.post('/bare', express.json(), (_req, res) => {
    res.json(RESULT);
  });
  app.use('/api', mcpkitExpress(server));
  const httpServer = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => httpServer.once('listening', resolve));
  return {
    name: 'Express 5',
    base: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`,
    close: () => closeNode(httpServer),
  };
}

async function fastifyHost(): Promise<Host> {
  const server = kit();
  const app = Fastify();
  app.post('/bare', async () => RESULT);
  await app.register(mcpkitFastify, { server, prefix: '/api' });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { name: 'Fastify 5', base, close: () => app.close() };
}

async function honoHost(): Promise<Host> {
  const server = kit();
  const app = new Hono();
  app.post('/bare', async (c) => {
    await c.req.json();
    return c.json(RESULT);
  });
  app.route('/api', mcpkitHono(server));
  const httpServer = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return {
    name: 'Hono 4 (@hono/node-server)',
    base: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => httpServer.close(() => resolve())),
  };
}

async function rps(url: string, seconds: number): Promise<number> {
  const result = await autocannon({
    url,
    method: 'POST',
    connections: 64,
    duration: seconds,
    headers: { 'content-type': 'application/json' },
    body: BODY,
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result.requests.average;
}

/** Runs every adapter; `seconds` per measurement, mcpkit and bare alternating. */
export async function measureAdapters(log: (m: string) => void, seconds: number): Promise<AdapterRow[]> {
  const rows: AdapterRow[] = [];
  for (const make of [nodeHost, expressHost, fastifyHost, honoHost]) {
    const host = await make();
    try {
      const mcpkitUrl = `${host.base}${host.name === 'node:http' ? '' : '/api'}/tools/echo/execute`;
      await rps(mcpkitUrl, 1);
      await rps(`${host.base}/bare`, 1);
      const bare = await rps(`${host.base}/bare`, seconds);
      const mcpkit = await rps(mcpkitUrl, seconds);
      rows.push({ adapter: host.name, mcpkit, bare });
      log(
        `  REST execute via ${host.name}: mcpkit ${Math.round(mcpkit)} req/s, bare route ${Math.round(bare)} req/s`,
      );
    } finally {
      await host.close();
    }
  }
  return rows;
}

export function renderAdapters(rows: AdapterRow[], seconds: number): string {
  const n = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  return [
    `**REST \`POST /tools/{name}/execute\` through each adapter** (autocannon, 64 connections, ${seconds} s each; the bare route returns the same JSON without mcpkit):`,
    '',
    '| Mount | mcpkit (req/s) | bare route (req/s) | mcpkit / bare |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.adapter} | ${n.format(r.mcpkit)} | ${n.format(r.bare)} | ${(r.mcpkit / r.bare).toFixed(2)}× |`,
    ),
  ].join('\n');
}
