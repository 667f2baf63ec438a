/**
 * The gateway passes an upstream's log messages on (bounded), lists its tools' output schemas and
 * checks their results against them once, and leaves no metrics behind a deleted upstream. Real
 * upstreams: a low-level SDK v2 server (test/fixtures/upstreamExtras.mjs) over stdio and over
 * Streamable HTTP.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getRequestListener } from '@hono/node-server';
import type { Client } from '@modelcontextprotocol/client';
import { createMcpHandler } from '@modelcontextprotocol/server';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { stdioUpstream } from 'mcpkit/node';
import { connectClient, request } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LOG_RATE } from '../src/integrations/upstream.js';
// @ts-expect-error: a plain JavaScript fixture
import { build } from './fixtures/upstreamExtras.mjs';
import { upstreamReady } from './fixtures.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'upstreamExtras.mjs');
const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function gateway() {
  const server = createMcpServer({
    integrations: {
      upstreams: {
        fx: { ...stdioUpstream({ command: process.execPath, args: [FIXTURE, '--stdio'] }), name: 'Fx' },
      },
    },
  });
  cleanups.push(() => server.close());
  return server;
}

async function client(server: McpKitServer) {
  const { client, close } = await connectClient(server);
  cleanups.push(close);
  const logs: Array<{ level: string; logger?: string; data: unknown }> = [];
  client.setNotificationHandler('notifications/message', (n) => {
    logs.push(n.params as never);
  });
  return { client, logs };
}

function text(result: unknown): string {
  return ((result as { content: Array<{ text: string }> }).content[0] ?? { text: '' }).text;
}

/** An SDK v2 server over Streamable HTTP (the 2026-07-28 era), one server per request. */
async function httpUpstream(): Promise<string> {
  const handler = createMcpHandler(() => build());
  const server = http.createServer(getRequestListener((req) => handler.fetch(req)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
}

// Starting a program per test is slow on a loaded machine: each test may take its time.
const SLOW = { timeout: 30_000 };

describe("an upstream's log messages", SLOW, () => {
  it('reach the calling client during a forwarded call, under the integration name', async () => {
    const server = gateway();
    await upstreamReady(server, 'fx');
    const { client: c, logs } = await client(server);
    await c.setLoggingLevel('info');
    expect(text(await c.callTool({ name: 'fx__chatty', arguments: { count: 3 } }))).toBe('said 3');
    await vi.waitFor(() => expect(logs.length).toBe(3));
    expect(logs[0]).toEqual({ level: 'info', logger: 'fx/fx', data: { i: 0, pad: '' } });
    // The client's own level holds: the upstream's debug message stays out.
    expect(logs.some((l) => JSON.stringify(l.data).includes('debug'))).toBe(false);
  });

  it('are rate limited, so a flooding upstream cannot flood mcpkit’s clients', async () => {
    const server = gateway();
    await upstreamReady(server, 'fx');
    const { client: c, logs } = await client(server);
    const started = Date.now();
    const result = await c.callTool({ name: 'fx__chatty', arguments: { count: 400, pad: 2000 } });
    const seconds = (Date.now() - started) / 1000;
    expect(text(result)).toBe('said 400');
    await new Promise((r) => setTimeout(r, 100));
    expect(logs.length).toBeGreaterThan(0);
    // At most a burst, plus what the bucket refilled while the call ran: not the 400 sent.
    const { burst, perSecond } = LOG_RATE.messages;
    expect(logs.length).toBeLessThanOrEqual(burst + Math.ceil((seconds + 0.1) * perSecond));
    expect(logs.length).toBeLessThan(400);
    expect(text(await c.callTool({ name: 'fx__stats', arguments: { n: 1 } }))).toBe('1');
  });

  it('outside calls reach the sessions that used the upstream, and no other', async () => {
    const server = gateway();
    await upstreamReady(server, 'fx');
    const user = await client(server);
    const bystander = await client(server);
    expect(text(await user.client.callTool({ name: 'fx__later', arguments: {} }))).toBe('later');
    await vi.waitFor(() =>
      expect(user.logs).toContainEqual({ level: 'warning', logger: 'fx/bg', data: 'in the background' }),
    );
    expect(bystander.logs).toEqual([]);
  });

  it('pass through from a 2026-07-28 upstream over Streamable HTTP too', async () => {
    const url = await httpUpstream();
    const server = createMcpServer({ outbound: LOOPBACK });
    cleanups.push(() => server.close());
    await server.integrations.ready;
    await server.integrations.create({ id: 'web', name: 'Web', upstream: { url } });
    await upstreamReady(server, 'web');
    expect(server.integrations.get('web')?.upstreamState?.protocolVersion).toBe('2026-07-28');
    const { client: c, logs } = await client(server);
    await c.callTool({ name: 'web__chatty', arguments: { count: 2 } });
    await vi.waitFor(() => expect(logs.filter((l) => l.level === 'info').length).toBe(2));
    expect(logs[0]).toMatchObject({ logger: 'web/fx', data: { i: 0 } });
  });
});

describe("an upstream tool's output schema", SLOW, () => {
  async function listed(c: Client, name: string) {
    return (await c.listTools()).tools.find((t) => t.name === name);
  }

  it('is listed under the namespace and checked once against each result', async () => {
    const server = gateway();
    await upstreamReady(server, 'fx');
    const { client: c } = await client(server);
    expect((await listed(c, 'fx__stats'))?.outputSchema).toEqual({
      type: 'object',
      properties: { n: { type: 'number' } },
      required: ['n'],
    });
    const good = await c.callTool({ name: 'fx__stats', arguments: { n: 3 } });
    expect(good.structuredContent).toEqual({ n: 3 });
    // Structured content the schema refuses, or none at all: an error result, as for a local tool.
    const wrong = await c.callTool({ name: 'fx__stats', arguments: { n: 'three' } });
    expect(wrong.isError).toBe(true);
    expect(text(wrong)).toMatch(/Output validation error/);
    const bare = await c.callTool({ name: 'fx__bare', arguments: {} });
    expect(bare.isError).toBe(true);
    expect(text(bare)).toMatch(/returned no structured content/);
  });

  it('is listed and checked on REST too, from an HTTP upstream', async () => {
    const url = await httpUpstream();
    const server = createMcpServer({ outbound: LOOPBACK });
    cleanups.push(() => server.close());
    await server.integrations.ready;
    await server.integrations.create({ id: 'web', name: 'Web', upstream: { url } });
    await upstreamReady(server, 'web');
    const tools = (await (await request(server, '/tools')).json()).items;
    expect(tools.find((t: { name: string }) => t.name === 'web__stats').outputSchema).toMatchObject({
      required: ['n'],
    });
    const call = (n: unknown) =>
      request(server, '/tools/web__stats/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ arguments: { n } }),
      });
    const ok = await call(5);
    expect(ok.status).toBe(200);
    expect((await ok.json()).structuredContent).toEqual({ n: 5 });
    // The tool ran, and its result failed its schema: 200 with an error result, as REST answers one.
    const wrong = await (await call('five')).json();
    expect(wrong.isError).toBe(true);
    expect(JSON.stringify(wrong.content)).toMatch(/Output validation error/);
    expect(wrong.structuredContent).toBeUndefined();
  });
});

describe("a deleted upstream's metrics", SLOW, () => {
  it('leave the scrape with it', async () => {
    const server = gateway();
    await upstreamReady(server, 'fx');
    await server.executor.execute('fx__stats', { n: 1 });
    const before = await (await request(server, '/metrics')).text();
    expect(before).toContain('mcpkit_upstream_up{integration="fx"} 1');
    expect(before).toContain(
      'mcpkit_upstream_requests_total{integration="fx",method="tools/call",outcome="ok"} 1',
    );
    await server.integrations.delete('fx');
    const after = await (await request(server, '/metrics')).text();
    expect(after).not.toContain('integration="fx"');
    expect(after).toContain('# TYPE mcpkit_upstream_up gauge');
  });
});
