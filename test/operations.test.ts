/**
 * Operations: Prometheus metrics after a known workload (exact counters and histogram counts, parsed
 * by a third-party parser), bounded labels, structured logs behind GET /logs with redaction,
 * readiness checks, and configuration errors that name the variable.
 */
import { ConfigError, createLogger, createMcpServer, ENV_VARIABLES, loadEnvConfig } from 'mcpkit';
import { connectClient, request } from 'mcpkit/testing';
import { MetricsRegistry } from 'mcpkit/unstable';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

interface Family {
  name: string;
  type: string;
  metrics: Array<{
    labels?: Record<string, string>;
    value?: string;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }>;
}

async function scrape(server: ReturnType<typeof createMcpServer>): Promise<Map<string, Family>> {
  const res = await request(server, '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await res.text()) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

function value(family: Family | undefined, labels: Record<string, string>): number | undefined {
  const metric = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return metric?.value === undefined ? undefined : Number(metric.value);
}

describe('metrics', () => {
  it('counts a known workload exactly', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({ name: 'ok', inputSchema: { n: z.number() }, handler: ({ n }) => String(n) });
    server.tools.register({ name: 'bad', handler: () => Promise.reject(new Error('no')) });
    server.resources.register({ uri: 'r://x', name: 'x', ttlMs: 60_000, read: () => 'x' });
    const { client, close } = await connectClient(server);
    for (let i = 0; i < 5; i++) await client.callTool({ name: 'ok', arguments: { n: i } });
    for (let i = 0; i < 2; i++) await client.callTool({ name: 'bad', arguments: {} });
    await client.callTool({ name: 'ok', arguments: { n: 'not a number' } });
    for (let i = 0; i < 3; i++) await client.readResource({ uri: 'r://x' });
    await request(server, '/tools');
    await request(server, '/tools');
    await request(server, '/tools/nope');

    const m = await scrape(server);
    expect(m.get('mcpkit_tool_calls_total')?.type).toBe('COUNTER');
    expect(value(m.get('mcpkit_tool_calls_total'), { tool: 'ok', outcome: 'success' })).toBe(5);
    expect(value(m.get('mcpkit_tool_calls_total'), { tool: 'ok', outcome: 'error' })).toBe(1);
    expect(value(m.get('mcpkit_tool_calls_total'), { tool: 'bad', outcome: 'error' })).toBe(2);
    expect(m.get('mcpkit_tool_call_duration_seconds')?.type).toBe('HISTOGRAM');
    // the parser keeps no labels on histogram series: read the counts from the exposition itself
    const text = await (await request(server, '/metrics')).text();
    expect(text).toContain('mcpkit_tool_call_duration_seconds_count{tool="ok"} 6');
    expect(text).toContain('mcpkit_tool_call_duration_seconds_bucket{tool="ok",le="+Inf"} 6');
    expect(text).toContain('mcpkit_tool_call_duration_seconds_count{tool="bad"} 2');
    expect(
      value(m.get('mcpkit_http_requests_total'), { route: '/tools', method: 'GET', status: '200' }),
    ).toBe(2);
    expect(
      value(m.get('mcpkit_http_requests_total'), { route: '/tools/:name', method: 'GET', status: '404' }),
    ).toBe(1);
    expect(value(m.get('mcpkit_resource_cache_hits_total'), {})).toBe(2);
    expect(value(m.get('mcpkit_resource_cache_misses_total'), {})).toBe(1);
    expect(value(m.get('mcpkit_sessions'), { transport: 'memory' })).toBe(1);
    expect(Number(m.get('process_resident_memory_bytes')?.metrics[0]?.value)).toBeGreaterThan(0);
    await close();
    const after = await scrape(server);
    expect(value(after.get('mcpkit_sessions'), { transport: 'memory' })).toBe(0);
  });

  it('keeps labels bounded: 10,000 calls to 1,000 distinct URIs add no per-URI series', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.resources.register({ uriTemplate: 'doc://{id}', name: 'doc', read: (_u, { id }) => String(id) });
    for (let i = 0; i < 10_000; i++) {
      await request(server, `/resources/${encodeURIComponent(`doc://${i % 1000}`)}`);
    }
    const text = await (await request(server, '/metrics')).text();
    expect(text).not.toContain('doc://');
    const series = text.split('\n').filter((l) => l.startsWith('mcpkit_http_requests_total{'));
    expect(series).toEqual([
      'mcpkit_http_requests_total{route="/resources/:uri",method="GET",status="200"} 10000',
    ]);
    expect(text.split('\n').length).toBeLessThan(400);
  });

  it('finds each label set again, with no labels, with missing ones, and past the series cap', () => {
    const registry = new MetricsRegistry({ maxSeries: 3 });
    const plain = registry.counter('plain_total', 'No labels');
    const pairs = registry.counter('pairs_total', 'Two labels', ['a', 'b']);
    plain.inc();
    plain.inc({}, 2);
    pairs.inc({ a: 'x', b: 'y' });
    pairs.inc({ a: 'x', b: 'z' });
    pairs.inc({ a: 'x', b: 'y' }, 5);
    pairs.inc({ a: 'x' }); // a missing label reads as ''
    pairs.inc({ a: 'x', b: '' });
    pairs.inc({ a: 'q', b: 'y' }); // a fourth set: folded into "other"
    pairs.inc({ a: 'r', b: 'y' });
    expect(plain.get()).toBe(3);
    expect(pairs.get({ a: 'x', b: 'y' })).toBe(6);
    expect(pairs.get({ a: 'x', b: 'z' })).toBe(1);
    expect(pairs.get({ a: 'x', b: '' })).toBe(2);
    expect(pairs.get({ a: 'other', b: 'other' })).toBe(2);
    expect(
      registry
        .render()
        .split('\n')
        .filter((l) => l.startsWith('pairs_total')),
    ).toEqual([
      'pairs_total{a="x",b="y"} 6',
      'pairs_total{a="x",b="z"} 1',
      'pairs_total{a="x",b=""} 2',
      'pairs_total{a="other",b="other"} 2',
    ]);
  });

  it('answers JSON for Accept: application/json, and user metrics join the registry', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.metrics.counter('myapp_jobs_total', 'Jobs', ['kind']).inc({ kind: 'import' }, 3);
    const json = await (
      await request(server, '/metrics', { headers: { accept: 'application/json' } })
    ).json();
    expect(json.myapp_jobs_total).toEqual({
      type: 'counter',
      help: 'Jobs',
      series: [{ labels: { kind: 'import' }, value: 3 }],
    });
    const text = await (await request(server, '/metrics', { headers: { accept: 'text/plain' } })).text();
    expect(text).toContain('myapp_jobs_total{kind="import"} 3');
  });
});

describe('logs', () => {
  it('keeps recent records with request ids, redacts secrets, and filters', async () => {
    const lines: string[] = [];
    const { createLogger } = await import('mcpkit');
    const server = createMcpServer({
      logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
      logLevel: 'debug',
    });
    server.tools.register({
      name: 'leaky',
      handler: (_a, ctx) => {
        ctx.logger.info(
          { apiKey: 'sk-live-123', nested: { password: 'hunter2', ok: 1 } },
          'calling upstream',
        );
        throw new Error('upstream down');
      },
    });
    const res = await request(server, '/tools/leaky/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-42' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    const all = await (await request(server, '/logs?limit=50')).json();
    const info = all.items.find((r: { msg?: string }) => r.msg === 'calling upstream');
    expect(info).toMatchObject({
      level: 'info',
      tool: 'leaky',
      apiKey: '[redacted]',
      nested: { password: '[redacted]', ok: 1 },
    });
    const errors = await (await request(server, '/logs?level=error&requestId=req-42')).json();
    expect(errors.items).toHaveLength(1);
    expect(errors.items[0]).toMatchObject({ level: 'error', requestId: 'req-42', tool: 'leaky' });
    expect(lines.join('\n')).not.toContain('sk-live-123');
    expect(lines.join('\n')).not.toContain('hunter2');
    const future = await (await request(server, `/logs?since=${Date.now() + 60_000}`)).json();
    expect(future.items).toEqual([]);
    expect((await request(server, '/logs?level=loud')).status).toBe(400);
  });

  it('summarises huge and deeply nested values instead of breaking', async () => {
    const server = createMcpServer({ logLevel: 'info', logger: (await import('mcpkit')).silentLogger });
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 100; i++) deep = { deep };
    server.logger.info(
      { deep, big: 'x'.repeat(100_000), many: Array.from({ length: 10_000 }, (_, i) => i) },
      'huge',
    );
    const [record] = (await (await request(server, '/logs?limit=1')).json()).items;
    expect(JSON.stringify(record).length).toBeLessThan(10_000);
    expect(record.big).toMatch(/…\(100000 chars\)$/);
  });
});

describe('health', () => {
  it('is ready until a check fails, then answers 503 with the reason', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    let storageOk = true;
    server.health.register('storage', () => ({
      ok: storageOk,
      detail: storageOk ? 'writable' : 'read-only filesystem',
    }));
    const ok = await request(server, '/health');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', checks: { storage: { ok: true } } });
    storageOk = false;
    const down = await request(server, '/health');
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      status: 'unavailable',
      checks: { storage: { ok: false, detail: 'read-only filesystem' } },
    });
  });
});

describe('configuration', () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'MCP_LOG_LEVEL',
      'loud',
      /MCP_LOG_LEVEL must be one of trace, debug, info, warn \(or warning\), error, fatal \(or critical\), silent; any case \(got "loud"\)/,
    ],
    ['MCP_LOG_LEVEL', 'WARN\0', /MCP_LOG_LEVEL must be one of .* \(got "WARN\\u0000"\)/],
    ['MCP_LOG_LEVEL', 'NOTSET', /MCP_LOG_LEVEL must be one of/],
    [
      'MCP_MAX_CONNECTIONS',
      '-5',
      /MCP_MAX_CONNECTIONS must be a whole number from 1 to 1000000 \(got "-5"\)/,
    ],
    ['MCP_MAX_CONNECTIONS', '0', /MCP_MAX_CONNECTIONS must be a whole number/],
    ['MCP_CACHE_TTL', 'five', /MCP_CACHE_TTL must be a number of seconds such as 300 .* \(got "five"\)/],
    ['MCP_CACHE_TTL', '-1', /MCP_CACHE_TTL must be a number of seconds/],
    ['MCP_CACHE_TTL', '1e3', /MCP_CACHE_TTL must be a number of seconds/],
    ['MCP_CACHE_TTL', '5 min', /MCP_CACHE_TTL must be a number of seconds/],
    ['MCP_CACHE_TTL', '1.5ms', /MCP_CACHE_TTL must be a number of seconds/],
    ['MCP_CACHE_TTL', '25d', /MCP_CACHE_TTL must be a number of seconds/],
    ['MCP_CACHE_TTL', '2147484', /MCP_CACHE_TTL .*at most 24 days/],
    ['MCP_CACHE_TTL', '9999999999h', /MCP_CACHE_TTL must be a number of seconds/],
    [
      'MCP_SECRET_KEY_PREVIOUS',
      `${'a'.repeat(64)},short`,
      /MCP_SECRET_KEY_PREVIOUS must be .* \(got "<hidden>"\)/,
    ],
    ['MCP_RATE_LIMIT', 'lots', /MCP_RATE_LIMIT must be a whole number of requests per minute/],
    ['MCP_SECRET_KEY', 'short', /MCP_SECRET_KEY must be a 32-byte key .* \(got "<hidden>"\)/],
    ['MCP_DATA_DIR', 'a\0b', /MCP_DATA_DIR must be a directory path/],
  ];
  it.each(cases)('%s=%j fails with a message naming it', (name, bad, message) => {
    expect(() => loadEnvConfig({ [name]: bad })).toThrow(message);
    expect(() => loadEnvConfig({ [name]: bad })).toThrow(ConfigError);
  });

  it('reads MCP_CACHE_TTL in seconds, as the design documents it, or with an explicit unit', () => {
    const ttl = (value: string) => loadEnvConfig({ MCP_CACHE_TTL: value }).cacheTtlMs;
    expect(ttl('300')).toBe(300_000);
    expect(ttl('0')).toBe(0);
    expect(ttl('0.5')).toBe(500);
    expect(ttl('0.001')).toBe(1);
    expect(ttl('1500ms')).toBe(1500);
    expect(ttl('1500 MS')).toBe(1500);
    expect(ttl('90s')).toBe(90_000);
    expect(ttl('5m')).toBe(300_000);
    expect(ttl('1h')).toBe(3_600_000);
    expect(ttl(' 300\r\n')).toBe(300_000);
    expect(ttl('2147483647ms')).toBe(2_147_483_647);
  });

  it('caches a resource for the seconds MCP_CACHE_TTL names (300 is five minutes, not 0.3 s)', async () => {
    const saved = process.env.MCP_CACHE_TTL;
    process.env.MCP_CACHE_TTL = '300';
    let clock = 1_000_000;
    try {
      const server = createMcpServer({ logLevel: 'silent', cache: { now: () => clock } });
      let reads = 0;
      server.resources.register({ uri: 'data://n', name: 'n', read: () => `read ${++reads}` });
      const read = async () => {
        const { contents } = await server.resources.read('data://n', {
          signal: new AbortController().signal,
        });
        return (contents[0] as { text: string }).text;
      };
      expect(await read()).toBe('read 1');
      clock += 299_000;
      expect(await read()).toBe('read 1');
      clock += 2_000;
      expect(await read()).toBe('read 2');
      await server.close();
    } finally {
      if (saved === undefined) delete process.env.MCP_CACHE_TTL;
      else process.env.MCP_CACHE_TTL = saved;
    }
  });

  it('reads log levels in any case, with WARNING and CRITICAL mapped', () => {
    const level = (value: string) => loadEnvConfig({ MCP_LOG_LEVEL: value }).logLevel;
    expect(level('INFO')).toBe('info');
    expect(level('Debug')).toBe('debug');
    expect(level('WARNING')).toBe('warn');
    expect(level('warn')).toBe('warn');
    expect(level('ERROR')).toBe('error');
    expect(level('CRITICAL')).toBe('fatal');
    expect(level('SILENT')).toBe('silent');
    // A JavaScript caller that passes the same names in code gets the same reading, or a TypeError.
    const lines: string[] = [];
    const logger = createLogger({ level: 'WARNING' as never, write: (line) => lines.push(line) });
    logger.info('hidden');
    logger.warn('shown');
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual(['shown']);
    expect(() => createLogger({ level: 'loud' as never })).toThrow(/level must be one of trace/);
    expect(() => createMcpServer({ logLevel: 'loud' as never })).toThrow(/logLevel must be one of trace/);
    const server = createMcpServer({ logLevel: 'ERROR' as never });
    void server.close();
  });

  it('names every variable it reads in ENV_VARIABLES, and every message names the variable and the value', () => {
    for (const name of Object.keys(ENV_VARIABLES)) expect(name).toMatch(/^MCP_[A-Z_]+$/);
    const error = (() => {
      try {
        loadEnvConfig({ MCP_RATE_LIMIT: '0' });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.variable).toBe('MCP_RATE_LIMIT');
    expect(error?.message).toBe(`MCP_RATE_LIMIT must be ${ENV_VARIABLES.MCP_RATE_LIMIT} (got "0")`);
  });

  it('reads good values, and code options win over the environment', () => {
    const key = 'a'.repeat(64);
    expect(
      loadEnvConfig({
        MCP_LOG_LEVEL: 'debug',
        MCP_MAX_CONNECTIONS: '50',
        MCP_CACHE_TTL: '0',
        MCP_SECRET_KEY: key,
        MCP_DATA_DIR: '/tmp/x',
        MCP_RATE_LIMIT: '600',
        MCP_SECRET_KEY_PREVIOUS: ` ${'b'.repeat(64)} , ${'c'.repeat(43)}= ,`,
      }),
    ).toEqual({
      previousSecretKeys: ['b'.repeat(64), `${'c'.repeat(43)}=`],
      logLevel: 'debug',
      maxConnections: 50,
      cacheTtlMs: 0,
      secretKey: key,
      dataDir: '/tmp/x',
      rateLimitPerMinute: 600,
    });
    const saved = process.env.MCP_CACHE_TTL;
    process.env.MCP_CACHE_TTL = 'nope';
    try {
      expect(() => createMcpServer({ logLevel: 'silent' })).toThrow(/MCP_CACHE_TTL/);
    } finally {
      if (saved === undefined) delete process.env.MCP_CACHE_TTL;
      else process.env.MCP_CACHE_TTL = saved;
    }
  });
});
