import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCatalog } from '../src/catalog/prompts.js';
import { ResourceCatalog } from '../src/catalog/resources.js';
import { ToolCatalog } from '../src/catalog/tools.js';
import { IntegrationManager } from '../src/integrations/manager.js';
import { openFileIntegrations } from '../src/node/fileStore.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the project, so the bundle's bare imports resolve from node_modules.
const bundleDir = path.join(root, 'node_modules', '.cache', 'mcpkit-integrations-test');
const bundle = path.join(bundleDir, `writer-${process.pid}.mjs`);
const key = randomBytes(32).toString('base64');
const dirs: string[] = [];

beforeAll(async () => {
  await build({
    entryPoints: [path.join(root, 'test/fixtures/integrationsWriter.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    logLevel: 'silent',
  });
});

afterAll(async () => {
  await fs.rm(bundle, { force: true });
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-crash-'));
  dirs.push(dir);
  return dir;
}

function run(args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<void> } {
  const child = spawn(process.execPath, [bundle, ...args], {
    env: { ...process.env, MCP_SECRET_KEY: key },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { child, lines, exited };
}

async function loadCounter(dataDir: string) {
  const { store, cipher } = await openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } });
  const manager = new IntegrationManager({
    store,
    cipher,
    tools: new ToolCatalog({ onChange: () => {} }),
    resources: new ResourceCatalog({ onChange: () => {} }),
    prompts: new PromptCatalog({ onChange: () => {} }),
  });
  try {
    await manager.ready;
    const counter = manager.get('counter');
    if (!counter) return { n: 0, swept: store.swept.length };
    const n = Number(counter.description);
    // Every part of the state must come from the same write.
    expect(manager.modelConfig('counter')?.apiKey).toBe(`sk-crash-test-secret-${n}`);
    expect(counter.tools).toHaveLength(n % 5);
    return { n, swept: store.swept.length };
  } finally {
    await manager.close();
  }
}

describe('file store under SIGKILL', () => {
  it('holds the previous or the next state after each of 100 kills', async () => {
    const dataDir = await tempDir();
    let state = 0;
    let midWrite = 0;
    let swept = 0;
    const kills = 100;
    const started = Date.now();
    for (let i = 0; i < kills; i++) {
      const { child, lines, exited } = run(['write', dataDir]);
      // One kill in ten lands during start-up; the rest a random 0-30 ms into the write loop.
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, Math.random() * 60));
      else {
        const deadline = Date.now() + 5000;
        while (!lines.some((l) => l.startsWith('ready')) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 2));
        }
        await new Promise((r) => setTimeout(r, Math.random() * 30));
      }
      child.kill('SIGKILL');
      await exited;
      const last = lines.filter((l) => /^(begin|ok) \d+$/.test(l)).at(-1);
      expect(lines.find((l) => l.startsWith('error'))).toBeUndefined();
      const loaded = await loadCounter(dataDir);
      swept += loaded.swept;
      if (last === undefined) expect(loaded.n).toBe(state);
      else {
        const [kind, value] = last.split(' ') as [string, string];
        const n = Number(value);
        if (kind === 'ok') expect(loaded.n).toBe(n);
        else {
          midWrite++;
          expect([n - 1, n]).toContain(loaded.n);
        }
      }
      expect(loaded.n).toBeGreaterThanOrEqual(state);
      state = loaded.n;
    }
    const names = await fs.readdir(dataDir);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(state).toBeGreaterThan(kills);
    expect(midWrite).toBeGreaterThan(kills / 3);
    console.log(
      `crash test: ${kills} kills in ${Date.now() - started} ms, ${midWrite} with a write in flight, ${swept} temp files swept, final state ${state}`,
    );
  }, 90_000);

  it('an import killed at any moment leaves all of its integrations or none', async () => {
    const dataDir = await tempDir();
    let state = 0;
    let midWrite = 0;
    const kills = 20;
    for (let i = 0; i < kills; i++) {
      const { child, lines, exited } = run(['import', dataDir]);
      const deadline = Date.now() + 5000;
      while (!lines.some((l) => l.startsWith('ready')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 2));
      }
      // An import of 20 takes tens of milliseconds: a random moment among the first few.
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      child.kill('SIGKILL');
      await exited;
      expect(lines.find((l) => l.startsWith('error'))).toBeUndefined();
      const last = lines.filter((l) => /^(begin|ok) \d+$/.test(l)).at(-1);
      const { store, cipher } = await openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } });
      const manager = new IntegrationManager({
        store,
        cipher,
        tools: new ToolCatalog({ onChange: () => {} }),
        resources: new ResourceCatalog({ onChange: () => {} }),
        prompts: new PromptCatalog({ onChange: () => {} }),
      });
      let n: number;
      try {
        await manager.ready;
        const all = manager.list();
        n = all.length === 0 ? 0 : Number(all[0]!.description);
        // Every integration, key included, comes from the same import.
        expect(all).toHaveLength(n === 0 ? 0 : 20);
        for (const integration of all) {
          expect(integration.description).toBe(String(n));
          expect(manager.modelConfig(integration.id)?.apiKey).toBe(`sk-import-${n}-${integration.id}`);
        }
      } finally {
        await manager.close();
      }
      if (last !== undefined) {
        const [kind, value] = last.split(' ') as [string, string];
        if (kind === 'ok') expect(n).toBe(Number(value));
        else {
          midWrite++;
          expect([Number(value) - 1, Number(value)]).toContain(n);
        }
      } else expect(n).toBe(state);
      expect(n).toBeGreaterThanOrEqual(state);
      state = n;
    }
    expect(state).toBeGreaterThan(kills);
    expect(midWrite).toBeGreaterThan(kills / 3);
    console.log(
      `import crash test: ${kills} kills, ${midWrite} with an import in flight, final state ${state}`,
    );
  }, 90_000);

  it('refuses a second process on the same data directory, naming the holder', async () => {
    const dataDir = await tempDir();
    const { store } = await openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } });
    try {
      const { lines, exited } = run(['hold', dataDir]);
      await exited;
      expect(lines[0]).toMatch(/^refused: The data directory .* is in use by another process \(pid \d+/);
      expect(lines[0]).toContain(`pid ${process.pid}`);
    } finally {
      await store.close();
    }
    // Released: the next process may open it.
    const { lines, exited } = run(['hold', dataDir]);
    await exited;
    expect(lines[0]).toBe('opened');
  });
});
