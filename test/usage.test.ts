/**
 * Usage analytics (`GET /usage`, `server.usage`): windows, percentiles and the `other` row on an
 * injected clock; memory with 100,000 distinct callers, measured; and totals that match the calls
 * made through REST, MCP over Streamable HTTP and MCP over WebSocket with different keys, with a
 * completion's tokens counted per caller and per model, and the same totals on `/metrics`.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { listen, WebSocketClientTransport } from 'mcpkit/node';
import { createModelServer, type ModelServer, request } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { USAGE_ROW_BYTES, UsageMeter } from '../src/telemetry/usage.js';

const MINUTE = 60_000;

describe('UsageMeter', () => {
  it('keeps the last hour, the last day and since start apart as the clock moves', () => {
    let now = Date.UTC(2026, 0, 1, 10, 0, 0);
    const meter = new UsageMeter({ now: () => now });
    meter.record({ caller: 'k1', tool: 'add' }, { calls: 1, durationMs: 10 });
    meter.record({ caller: 'k1', tool: 'add' }, { calls: 1, error: true, durationMs: 10 });
    now += 30 * MINUTE;
    meter.record({ caller: 'k2', tool: 'add' }, { calls: 1, durationMs: 1000 });
    let report = meter.report();
    expect(report.tools.items[0]).toMatchObject({ key: 'add', hour: { calls: 3, errors: 1 } });
    now += 31 * MINUTE; // the first two are now more than an hour old
    report = meter.report();
    const add = report.tools.items[0]!;
    expect(add.hour).toMatchObject({ calls: 1, errors: 0 });
    expect(add.day).toMatchObject({ calls: 3, errors: 1 });
    expect(add.start).toMatchObject({ calls: 3, errors: 1 });
    expect(report.callers.items.map((r) => [r.key, r.hour?.calls])).toEqual([
      ['k1', 0],
      ['k2', 1],
    ]);
    now += 25 * 60 * MINUTE; // past a day
    report = meter.report({ windows: ['day', 'start'] });
    expect(report.tools.items[0]!.day).toMatchObject({ calls: 0, p50Ms: null });
    expect(report.tools.items[0]!.start).toMatchObject({ calls: 3 });
    expect(report.tools.items[0]!.hour).toBeUndefined();
  });

  it('estimates p50 and p95 within a bin (about 19 %)', () => {
    const meter = new UsageMeter();
    for (let i = 1; i <= 100; i++) meter.record({ tool: 't' }, { calls: 1, durationMs: i });
    const { p50Ms, p95Ms } = meter.report().tools.items[0]!.start!;
    expect(p50Ms! / 50).toBeGreaterThan(0.8);
    expect(p50Ms! / 50).toBeLessThan(1.2);
    expect(p95Ms! / 95).toBeGreaterThan(0.8);
    expect(p95Ms! / 95).toBeLessThan(1.2);
  });

  it('folds the least active keys into `other` past its bytes, keeping totals exact', () => {
    const meter = new UsageMeter({ maxBytes: USAGE_ROW_BYTES * 3 * 6 });
    expect(meter.capacity).toBe(4);
    for (let i = 0; i < 50; i++) meter.record({ caller: 'busy', tool: 't' }, { calls: 1, durationMs: 1 });
    for (let i = 0; i < 20; i++) meter.record({ caller: `c${i}`, tool: 't' }, { calls: 1, durationMs: 1 });
    const { callers, totals } = meter.report();
    expect(callers.items).toHaveLength(4);
    expect(callers.items[0]).toMatchObject({ key: 'busy', start: { calls: 50 } });
    expect(callers.folded).toBe(17);
    const sum = callers.items.reduce((n, r) => n + r.start!.calls, 0) + callers.other!.start!.calls;
    expect(sum).toBe(70);
    expect(callers.other!.hour!.calls).toBe(17);
    expect(totals.tools.start!.calls).toBe(70);
  });

  it('stays within its bytes with 100,000 distinct callers (heap measured)', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const maxBytes = 8 * 1024 * 1024;
    gc();
    // Typed arrays live outside the V8 heap: count both.
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const before = used();
    const meter = new UsageMeter({ maxBytes });
    for (let i = 0; i < 100_000; i++) {
      meter.record(
        { caller: `caller-${i}-${'x'.repeat(40)}`, tool: `tool-${i % 1000}` },
        { calls: 1, durationMs: i % 500 },
      );
    }
    gc();
    const delta = used() - before;
    const report = meter.report({ limit: 1000 });
    // Exact totals, bounded rows, bounded heap.
    const callers =
      report.callers.items.reduce((n, r) => n + r.start!.calls, 0) + report.callers.other!.start!.calls;
    expect(callers).toBe(100_000);
    expect(report.totals.tools.start!.calls).toBe(100_000);
    expect(meter.bytes).toBeLessThanOrEqual(maxBytes);
    console.log(
      `usage meter: 100,000 callers, heap + array buffers delta ${(delta / 1024 / 1024).toFixed(2)} MiB (bound ${maxBytes / 1024 / 1024} MiB), ${meter.bytes} bytes counted`,
    );
    expect(delta).toBeLessThan(maxBytes * 1.25);
    expect(meter).toBeDefined(); // keeps the meter alive until after the measurement
  });
});

describe('usage: false', () => {
  it('keeps nothing and answers GET /usage with 404', async () => {
    const server = createMcpServer({ logLevel: 'silent', usage: false });
    server.tools.register({ name: 'noop', handler: () => 'ok' });
    await server.executor.execute('noop', {});
    expect(server.usage).toBeUndefined();
    const res = await request(server, '/usage');
    expect(res.status).toBe(404);
    expect(server.metrics.render()).not.toContain('mcpkit_usage_');
    await server.close();
  });
});

describe('GET /usage across doors', () => {
  const KEYS = {
    admin: 'usage-admin-key-0000000000001',
    rest: 'usage-rest-key-00000000000001',
    mcp: 'usage-mcp-key-000000000000001',
    ws: 'usage-ws-key-0000000000000001',
    user: 'usage-user-key-00000000000001',
  };
  let server: McpKitServer | undefined;
  let model: ModelServer | undefined;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    await model?.close();
  });

  it('counts N calls on each door under each key, a completion’s tokens, and the same on /metrics', async () => {
    model = await createModelServer({
      turns: [
        {
          toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }],
          usage: { inputTokens: 7, outputTokens: 3 },
        },
        { text: 'two', usage: { inputTokens: 11, outputTokens: 2 } },
      ],
    });
    server = createMcpServer({
      logLevel: 'silent',
      auth: {
        apiKeys: [
          { id: 'admin', roles: ['admin'], key: KEYS.admin },
          { id: 'rest-key', roles: ['user'], key: KEYS.rest },
          { id: 'mcp-key', roles: ['user'], key: KEYS.mcp },
          { id: 'ws-key', roles: ['user'], key: KEYS.ws },
          { id: 'plain-user', roles: ['user'], key: KEYS.user },
        ],
      },
      completions: { allowInlineBaseUrl: true },
      outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
    });
    server.tools.register({
      name: 'add',
      inputSchema: { a: z.number(), b: z.number() },
      handler: ({ a, b }) => ({ sum: a + b }),
    });
    server.tools.register({
      name: 'fails',
      handler: () => {
        throw new Error('no');
      },
    });
    const listening = await listen(server, { port: 0 });
    close = listening.close;
    const url = listening.url;
    const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
    const N = 5;

    for (let i = 0; i < N; i++) {
      const res = await fetch(`${url}/tools/add/execute`, {
        method: 'POST',
        headers: { ...bearer(KEYS.rest), 'content-type': 'application/json' },
        body: JSON.stringify({ arguments: { a: i, b: 1 } }),
      });
      expect(res.status).toBe(200);
    }
    const mcp = new Client({ name: 'usage', version: '1' });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: bearer(KEYS.mcp) },
      }),
    );
    for (let i = 0; i < N; i++) await mcp.callTool({ name: 'add', arguments: { a: i, b: 2 } });
    await mcp.callTool({ name: 'fails', arguments: {} });
    await mcp.close();
    const ws = new Client({ name: 'usage', version: '1' });
    await ws.connect(
      new WebSocketClientTransport(new URL(`${url.replace('http', 'ws')}/mcp`), { headers: bearer(KEYS.ws) }),
    );
    for (let i = 0; i < N; i++) await ws.callTool({ name: 'add', arguments: { a: i, b: 3 } });
    await ws.close();
    const completion = await fetch(`${url}/completions`, {
      method: 'POST',
      headers: { ...bearer(KEYS.rest), 'content-type': 'application/json' },
      body: JSON.stringify({
        model: { provider: 'custom', model: 'loop', apiKey: 'k', baseUrl: `${model.url}/v1` },
        messages: [{ role: 'user', content: '1 + 1?' }],
        tools: ['add'],
      }),
    });
    expect(completion.status).toBe(200);
    expect((await completion.json()).status).toBe('succeeded');

    expect((await fetch(`${url}/usage`)).status).toBe(401);
    expect((await fetch(`${url}/usage`, { headers: bearer(KEYS.user) })).status).toBe(403);
    const res = await fetch(`${url}/usage`, { headers: bearer(KEYS.admin) });
    expect(res.status).toBe(200);
    const usage = await res.json();
    const byKey = (section: { items: Array<{ key: string }> }): Record<string, any> =>
      Object.fromEntries(section.items.map((r) => [r.key, r]));
    const callers = byKey(usage.callers);
    // REST: N calls and the model's one tool call on its behalf; tokens of both turns.
    expect(callers['rest-key'].hour).toMatchObject({
      calls: N + 1,
      errors: 0,
      inputTokens: 18,
      outputTokens: 5,
    });
    expect(callers['mcp-key'].hour).toMatchObject({ calls: N + 1, errors: 1, inputTokens: 0 });
    expect(callers['ws-key'].hour).toMatchObject({ calls: N, errors: 0 });
    expect(callers['ws-key'].start.p50Ms).toBeGreaterThan(0);
    expect(JSON.stringify(usage)).not.toContain(KEYS.rest);
    const tools = byKey(usage.tools);
    expect(tools.add.day).toMatchObject({ calls: 3 * N + 1, errors: 0 });
    expect(tools.fails.start).toMatchObject({ calls: 1, errors: 1 });
    expect(usage.totals.tools.start).toMatchObject({ calls: 3 * N + 2, errors: 1 });
    expect(byKey(usage.models)['custom/loop'].start).toMatchObject({
      calls: 1,
      errors: 0,
      inputTokens: 18,
      outputTokens: 5,
    });
    expect(usage.totals.models.hour).toMatchObject({ calls: 1, inputTokens: 18, outputTokens: 5 });

    const metrics = await (await fetch(`${url}/metrics`, { headers: bearer(KEYS.admin) })).text();
    expect(metrics).toContain(`mcpkit_usage_caller_calls_total{caller="rest-key"} ${N + 1}`);
    expect(metrics).toContain(`mcpkit_usage_caller_calls_total{caller="ws-key"} ${N}`);
    expect(metrics).toContain('mcpkit_usage_caller_errors_total{caller="mcp-key"} 1');
    expect(metrics).toContain('mcpkit_usage_caller_tokens_total{caller="rest-key",direction="in"} 18');
    expect(metrics).toContain('mcpkit_usage_model_tokens_total{model="custom/loop",direction="out"} 5');
    expect(metrics).toContain(
      'mcpkit_usage_model_completions_total{model="custom/loop",outcome="succeeded"} 1',
    );

    const narrow = await (
      await fetch(`${url}/usage?window=hour&limit=1`, { headers: bearer(KEYS.admin) })
    ).json();
    expect(narrow.callers.items).toHaveLength(1);
    expect(narrow.callers.items[0].day).toBeUndefined();
    expect((await fetch(`${url}/usage?window=week`, { headers: bearer(KEYS.admin) })).status).toBe(400);
  });
});
