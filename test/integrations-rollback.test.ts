/**
 * A write whose save fails changes nothing: IntegrationManager swaps contributions into the catalogs
 * before it saves, and must put them back when the store refuses the snapshot. Checked against two
 * real stores: the memory store with a save that fails on demand, and the file store whose file has
 * been replaced by a directory (the rename onto it fails with EISDIR, even for root).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createEphemeralCipher,
  createMcpServer,
  createMemoryIntegrationStore,
  type IntegrationInput,
  type IntegrationStore,
  type McpKitServer,
  type SecretCipher,
} from 'mcpkit';
import { openFileIntegrations } from 'mcpkit/node';
import { connectClient } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

interface FailingStore {
  store: IntegrationStore;
  cipher: SecretCipher;
  /** Makes every save fail until `heal()`. */
  fail(): Promise<void>;
  heal(): Promise<void>;
  /** The persisted document as text (while failing too). */
  persisted(): Promise<string | undefined>;
  /** How a failed save rejects. */
  failure: object;
  cleanup(): Promise<void>;
}

async function memoryStore(): Promise<FailingStore> {
  const inner = createMemoryIntegrationStore();
  let failing = false;
  return {
    store: {
      label: 'memory store',
      load: () => inner.load(),
      async save(snapshot) {
        if (failing) throw new Error('memory store: save refused');
        await inner.save(snapshot);
      },
    },
    cipher: await createEphemeralCipher(),
    fail: async () => {
      failing = true;
    },
    heal: async () => {
      failing = false;
    },
    persisted: async () => inner.text,
    failure: { message: 'memory store: save refused' },
    cleanup: async () => {},
  };
}

async function fileStore(): Promise<FailingStore> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-rollback-'));
  const { store, cipher } = await openFileIntegrations({
    dataDir,
    env: { MCP_SECRET_KEY: randomBytes(32).toString('base64') },
  });
  const file = path.join(dataDir, 'integrations.json');
  const aside = path.join(dataDir, 'kept-aside.json');
  let failing = false;
  return {
    store,
    cipher,
    fail: async () => {
      await fs.rename(file, aside);
      await fs.mkdir(file);
      failing = true;
    },
    heal: async () => {
      await fs.rmdir(file);
      await fs.rename(aside, file);
      failing = false;
    },
    persisted: () => fs.readFile(failing ? aside : file, 'utf8').catch(() => undefined),
    failure: { code: 'EISDIR' },
    cleanup: () => fs.rm(dataDir, { recursive: true, force: true }),
  };
}

const echo = (text: string) => [
  { name: 'say', kind: 'chain' as const, steps: [{ tool: 'echo', args: { text } }] },
];

function integration(id: string, version: string, extra: Partial<IntegrationInput> = {}): IntegrationInput {
  return {
    id,
    name: id.toUpperCase(),
    secrets: { token: `${id}-secret-token` },
    tools: echo(`${id} ${version}`),
    resources: [{ name: 'readme', mimeType: 'text/plain', text: `${id} readme ${version}` }],
    prompts: [{ name: 'summary', messages: [{ role: 'user', content: `${id} ${version}: {{topic}}` }] }],
    ...extra,
  };
}

const TOOLS = ['crm__say', 'crm__ping', 'off__say', 'new__say'];
const RESOURCES = ['integration://crm/readme', 'integration://off/readme', 'integration://new/readme'];
const PROMPTS = ['crm__summary', 'off__summary', 'new__summary'];

/** Everything a client and code can see of the integrations, served through an MCP client. */
async function observe(server: McpKitServer) {
  const { client, close } = await connectClient(server);
  try {
    const absent = () => 'absent';
    const served: Record<string, unknown> = {};
    for (const name of TOOLS) {
      served[name] = await client
        .callTool({ name, arguments: {} })
        .then((r) => (r.content as Array<{ text: string }>)[0]?.text, absent);
    }
    for (const uri of RESOURCES) {
      served[uri] = await client
        .readResource({ uri })
        .then((r) => (r.contents[0] as { text: string }).text, absent);
    }
    for (const name of PROMPTS) {
      served[name] = await client
        .getPrompt({ name, arguments: { topic: 't' } })
        .then((r) => (r.messages[0]!.content as { text: string }).text, absent);
    }
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    return {
      tools: [...server.tools.list()].sort(byName),
      resources: [...server.resources.listStatic()].sort(byName),
      prompts: [...server.prompts.list()].sort(byName),
      listedTools: (await client.listTools()).tools.map((t) => t.name).sort(),
      integrations: server.integrations.list(),
      crm: server.integrations.get('crm'),
      served,
    };
  } finally {
    await close();
  }
}

type Observed = Awaited<ReturnType<typeof observe>>;

/** Each write, and what it changes once the store saves again. */
const WRITES: Array<{
  write: string;
  run(server: McpKitServer): Promise<unknown>;
  took(after: Observed): void;
}> = [
  {
    write: 'create',
    run: (server) => server.integrations.create(integration('new', 'v1')),
    took: (after) => {
      expect(after.integrations.map((i) => i.id)).toEqual(['crm', 'off', 'new']);
      expect(after.served).toMatchObject({ new__say: 'new v1', 'integration://new/readme': 'new readme v1' });
    },
  },
  {
    write: 'replace',
    run: (server) =>
      server.integrations.replace('crm', integration('crm', 'v2'), {
        ifMatch: server.integrations.get('crm')!.etag,
      }),
    took: (after) => {
      expect(after.crm?.revision).toBe(2);
      expect(after.served).toMatchObject({
        crm__say: 'crm v2',
        'integration://crm/readme': 'crm readme v2',
        crm__summary: 'crm v2: t',
      });
    },
  },
  {
    write: 'update',
    run: (server) => server.integrations.update('crm', { description: 'changed', tools: echo('crm v3') }),
    took: (after) => {
      expect(after.crm).toMatchObject({ description: 'changed', revision: 2 });
      expect(after.served).toMatchObject({ crm__say: 'crm v3' });
    },
  },
  {
    write: 'disable',
    run: (server) => server.integrations.disable('crm'),
    took: (after) => {
      expect(after.crm?.enabled).toBe(false);
      expect(after.served).toMatchObject({
        crm__say: 'absent',
        crm__ping: 'absent',
        'integration://crm/readme': 'absent',
      });
    },
  },
  {
    write: 'enable',
    run: (server) => server.integrations.enable('off'),
    took: (after) => {
      expect(after.integrations.find((i) => i.id === 'off')?.enabled).toBe(true);
      expect(after.served).toMatchObject({ off__say: 'off v1', off__summary: 'off v1: t' });
    },
  },
  {
    write: 'delete',
    run: (server) => server.integrations.delete('crm'),
    took: (after) => {
      expect(after.integrations.map((i) => i.id)).toEqual(['off']);
      expect(after.listedTools).toEqual(['echo']);
      expect(after.served).toMatchObject({ crm__ping: 'absent' });
    },
  },
  {
    write: 'delete a disabled one',
    run: (server) => server.integrations.delete('off'),
    took: (after) => {
      expect(after.integrations.map((i) => i.id)).toEqual(['crm']);
      expect(after.served).toMatchObject({ off__summary: 'absent' });
    },
  },
];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(open: () => Promise<FailingStore>) {
  const failing = await open();
  cleanups.push(failing.cleanup);
  const server = createMcpServer({
    logLevel: 'silent',
    integrations: { store: failing.store, cipher: failing.cipher },
  });
  cleanups.push(() => server.close());
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  await server.integrations.ready;
  await server.integrations.create(integration('crm', 'v1'));
  await server.integrations.create(integration('off', 'v1', { enabled: false }));
  server.integrations.attachTool('crm', { name: 'ping', handler: () => 'pong' });
  return { server, failing };
}

describe.each([
  ['the memory store, its save failing on demand', memoryStore],
  ['the file store, its file replaced by a directory', fileStore],
])('a write whose save fails changes nothing: %s', (_label, open) => {
  it.each(WRITES)('$write', async ({ run, took }) => {
    const { server, failing } = await setup(open);
    const before = await observe(server);
    // The baseline is what the writes are checked against: make sure it is the expected one.
    expect(before.served).toMatchObject({
      crm__say: 'crm v1',
      crm__ping: 'pong',
      off__say: 'absent',
      new__say: 'absent',
      'integration://crm/readme': 'crm readme v1',
      crm__summary: 'crm v1: t',
    });
    const stored = await failing.persisted();
    expect(stored).toContain('"crm"');

    await failing.fail();
    await expect(run(server)).rejects.toMatchObject(failing.failure);
    expect(await observe(server)).toEqual(before);
    expect(await failing.persisted()).toBe(stored);

    // Once the store saves again, the same write goes through and is persisted.
    await failing.heal();
    await run(server);
    took(await observe(server));
    expect(await failing.persisted()).not.toBe(stored);
  });
});

// Regression: the rollback after a refused change used to register a disabled integration's
// contributions, which were never in the catalogs.
it('a refused enable leaves a disabled integration out of the catalogs', async () => {
  const { server } = await setup(memoryStore);
  server.tools.register({ name: 'off__say', handler: () => 'taken' });
  const before = await observe(server);
  expect(before.served).toMatchObject({ off__say: 'taken', off__summary: 'absent' });
  await expect(server.integrations.enable('off')).rejects.toMatchObject({ code: 'CONFLICT' });
  expect(await observe(server)).toEqual(before);
  expect(server.integrations.get('off')?.enabled).toBe(false);
});
