/**
 * Integration benchmarks on the file store (fsync on, as in production): create and update latency,
 * update latency with 1,000 integrations stored, and start-up time (open, decrypt, compile and
 * register) with 1,000 integrations holding 10 tools each.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createMcpServer, type IntegrationInput } from 'mcpkit';
import { openFileIntegrations } from 'mcpkit/node';

export interface IntegrationFigures {
  create: { count: number; medianMs: number; p95Ms: number };
  update: { stored: number; medianMs: number; p95Ms: number };
  startup: { integrations: number; tools: number; fileMb: number; medianMs: number };
}

function integration(i: number, tools: number): IntegrationInput {
  return {
    id: `int-${i}`,
    name: `Integration ${i}`,
    description: 'A benchmark integration',
    model: { provider: 'openai', model: 'gpt-4.1', apiKey: `sk-bench-${randomBytes(16).toString('hex')}` },
    tools: Array.from({ length: tools }, (_, t) => ({
      name: `tool${t}`,
      kind: 'chain' as const,
      description: `Tool ${t} of integration ${i}`,
      inputSchema: { type: 'object', properties: { q: { type: 'string' } } },
      steps: [{ tool: 'echo', args: { text: { $ref: 'input.q' } } }],
    })),
  };
}

function stats(samples: number[]): { medianMs: number; p95Ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    medianMs: sorted[Math.floor(sorted.length / 2)]!,
    p95Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]!,
  };
}

async function open(dataDir: string, key: string) {
  const integrations = await openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } });
  const server = createMcpServer({ logLevel: 'silent', integrations });
  await server.integrations.ready;
  return server;
}

/** Runs the integration benchmarks; `log` receives progress lines. */
export async function measureIntegrations(log: (message: string) => void): Promise<IntegrationFigures> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-bench-integrations-'));
  const key = randomBytes(32).toString('base64');
  try {
    // Create latency into a growing store (1 tool each).
    let server = await open(dataDir, key);
    const creates: number[] = [];
    const createCount = 200;
    for (let i = 0; i < createCount; i++) {
      const started = performance.now();
      await server.integrations.create(integration(i, 1));
      creates.push(performance.now() - started);
    }
    const create = { count: createCount, ...stats(creates) };
    log(
      `  integration create (file store): median ${create.medianMs.toFixed(2)} ms, p95 ${create.p95Ms.toFixed(2)} ms`,
    );
    await server.close();
    await fs.rm(dataDir, { recursive: true, force: true });

    // 1,000 integrations × 10 tools, written in one go through the manager.
    const stored = 1000;
    server = await open(dataDir, key);
    for (let i = 0; i < stored; i++) await server.integrations.create(integration(i, 10));
    const updates: number[] = [];
    for (let i = 0; i < 100; i++) {
      const started = performance.now();
      await server.integrations.update(`int-${i * 7}`, { description: `updated ${i}` });
      updates.push(performance.now() - started);
    }
    const update = { stored, ...stats(updates) };
    log(
      `  integration update with ${stored} stored: median ${update.medianMs.toFixed(2)} ms, p95 ${update.p95Ms.toFixed(2)} ms`,
    );
    await server.close();

    const fileMb = (await fs.stat(path.join(dataDir, 'integrations.json'))).size / (1024 * 1024);
    const startups: number[] = [];
    let tools = 0;
    for (let run = 0; run < 5; run++) {
      const started = performance.now();
      const s = await open(dataDir, key);
      startups.push(performance.now() - started);
      tools = s.tools.size;
      await s.close();
    }
    const startup = { integrations: stored, tools, fileMb, medianMs: stats(startups).medianMs };
    log(
      `  start-up with ${stored} integrations / ${tools} tools (${fileMb.toFixed(1)} MB): ${startup.medianMs.toFixed(0)} ms`,
    );
    return { create, update, startup };
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

/** The integrations section of the benchmark report. */
export function renderIntegrations(f: IntegrationFigures): string {
  const fmt = (n: number, digits = 1) => n.toFixed(digits);
  return [
    '**Integrations** (file store with fsync; AES-256-GCM secrets):',
    '',
    '| Measurement | median | p95 |',
    '| --- | ---: | ---: |',
    `| create (store growing to ${f.create.count}) | ${fmt(f.create.medianMs, 2)} ms | ${fmt(f.create.p95Ms, 2)} ms |`,
    `| update with ${f.update.stored.toLocaleString('en-US')} integrations stored | ${fmt(f.update.medianMs, 2)} ms | ${fmt(f.update.p95Ms, 2)} ms |`,
    `| start-up: ${f.startup.integrations.toLocaleString('en-US')} integrations, ${f.startup.tools.toLocaleString('en-US')} tools (${fmt(f.startup.fileMb)} MB file) | ${fmt(f.startup.medianMs, 0)} ms | — |`,
  ].join('\n');
}
