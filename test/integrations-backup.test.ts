/**
 * Backups of integrations between two real servers: each under `listen()` on its own port, each with
 * its own data directory and its own generated `secret.key`. What crosses the wire is read as raw
 * bytes: the secrets never appear in clear unless the admin asks for it by name.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createMcpServer, type McpKitServer, MemoryAuditSink } from 'mcpkit';
import { type Listening, listen, openFileIntegrations } from 'mcpkit/node';
import { createModelServer, type ModelServer } from 'mcpkit/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PromptCatalog } from '../src/catalog/prompts.js';
import { ResourceCatalog } from '../src/catalog/resources.js';
import { ToolCatalog } from '../src/catalog/tools.js';
import { IntegrationManager } from '../src/integrations/manager.js';
import { OutboundPolicy } from '../src/net/outbound.js';

const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };
const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  operator: 'operator-key-0123456789abcdef',
  user: 'user-key-0123456789abcdef',
  wildcard: 'wildcard-key-0123456789abcdef',
  backup: 'backup-key-0123456789abcdef',
};
const API_KEY = 'sk-live-PLAINTEXT-4f9a2c';
const TOKEN = 'tok-PLAINTEXT-77d1e0';
const TRANSFER = 'correct horse battery staple 42';

interface Node {
  server: McpKitServer;
  listening: Listening;
  url: string;
  dataDir: string;
  audit: MemoryAuditSink;
  file: string;
}

const cleanups: Array<() => Promise<void>> = [];
let model: ModelServer;

beforeEach(async () => {
  model = await createModelServer({ fallback: { text: 'hello from the model' } });
  cleanups.push(() => model.close());
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startNode(options: { maxBodyBytes?: number } = {}): Promise<Node> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-backup-'));
  // No MCP_SECRET_KEY: each node generates its own secret.key in its data directory.
  const integrations = await openFileIntegrations({ dataDir, env: {}, logger: { warn: () => {} } });
  const audit = new MemoryAuditSink(1000);
  const server = createMcpServer({
    logLevel: 'silent',
    auth: {
      apiKeys: [
        { id: 'admin', roles: ['admin'], key: KEYS.admin },
        { id: 'operator', roles: ['operator'], key: KEYS.operator },
        { id: 'user', roles: ['user'], key: KEYS.user },
        { id: 'wildcard', roles: ['integrator'], key: KEYS.wildcard },
        { id: 'backup', roles: ['backup'], key: KEYS.backup },
      ],
    },
    roles: {
      // Every integrations permission an area wildcard reaches; the backup one is not among them.
      integrator: { permissions: ['integrations:*'] },
      backup: { permissions: ['integrations:read', 'integrations:backup'] },
    },
    audit: { sinks: [audit] },
    integrations,
    outbound: LOOPBACK,
    ...(options.maxBodyBytes !== undefined && { http: { maxBodyBytes: options.maxBodyBytes } }),
  });
  await server.integrations.ready;
  const listening = await listen(server, { port: 0 });
  cleanups.push(async () => {
    await listening.close();
    await server.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  return {
    server,
    listening,
    url: listening.url.replace(/\/$/, ''),
    dataDir,
    audit,
    file: path.join(dataDir, 'integrations.json'),
  };
}

function crm(id = 'crm') {
  return {
    id,
    name: 'CRM',
    model: { provider: 'custom' as const, model: 'm', apiKey: API_KEY, baseUrl: `${model.url}/v1` },
    secrets: { token: TOKEN },
    tools: [
      {
        kind: 'http' as const,
        name: 'search',
        http: { url: `${model.url}/search`, headers: { authorization: 'Bearer {{secrets.token}}' } },
      },
    ],
    prompts: [{ name: 'hello', messages: [{ role: 'user' as const, content: 'Hello {{name}}' }] }],
  };
}

async function call(
  node: Node,
  route: string,
  init: { method?: string; key?: string; body?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; raw: Buffer; json: any }> {
  const response = await fetch(`${node.url}${route}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${init.key ?? KEYS.admin}`,
      ...(init.body !== undefined && { 'content-type': 'application/json' }),
      ...init.headers,
    },
    ...(init.body !== undefined && { body: init.body as BodyInit }),
  });
  const raw = Buffer.from(await response.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, raw, json };
}

const exportFrom = (node: Node, query = '', key = TRANSFER) =>
  call(node, `/integrations/export${query}`, { headers: { 'mcpkit-transfer-key': key } });

const importInto = (node: Node, body: string | Uint8Array, query = '', key = TRANSFER) =>
  call(node, `/integrations/import${query}`, {
    method: 'POST',
    body,
    headers: { 'mcpkit-transfer-key': key },
  });

async function fileText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

describe('export from A, import into B (different secret keys)', () => {
  it('moves an integration whose secrets work on B and never cross the wire in clear', async () => {
    const a = await startNode();
    const b = await startNode();
    await a.server.integrations.create(crm());
    const keyA = await fs.readFile(path.join(a.dataDir, 'secret.key'));
    const keyB = await fs.readFile(path.join(b.dataDir, 'secret.key'));
    expect(keyA.equals(keyB)).toBe(false);

    const exported = await exportFrom(a);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('cache-control')).toBe('no-store');
    expect(exported.headers.get('mcpkit-warning')).toBeNull();
    for (const secret of [API_KEY, TOKEN, TRANSFER])
      expect(exported.raw.includes(Buffer.from(secret))).toBe(false);
    // Not A's sealed values either: they are sealed again under the transfer key.
    const storedA = JSON.parse((await fileText(a.file))!);
    expect(exported.raw.includes(Buffer.from(storedA.integrations[0].secrets.token))).toBe(false);
    expect(exported.json).toMatchObject({
      format: 'mcpkit.integrations.export',
      version: 1,
      secrets: { mode: 'sealed', kdf: { name: 'PBKDF2-SHA-256' } },
      integrations: [{ id: 'crm', name: 'CRM', model: { provider: 'custom' } }],
    });

    const imported = await importInto(b, exported.raw);
    expect(imported.status).toBe(200);
    expect(imported.json).toMatchObject({ applied: true, created: ['crm'], issues: [] });
    for (const secret of [API_KEY, TOKEN]) expect(imported.raw.includes(Buffer.from(secret))).toBe(false);

    // B sealed them under its own key: on disk, nothing in clear, and not A's ciphertexts.
    const storedB = (await fileText(b.file))!;
    for (const secret of [API_KEY, TOKEN]) expect(storedB).not.toContain(secret);
    expect(storedB).not.toContain(storedA.integrations[0].secrets.token);
    expect(b.server.integrations.get('crm')?.contributes.tools).toEqual(['crm__search']);

    // The integration works on B: a completion through its model sends its key.
    const completion = await call(b, '/completions', {
      method: 'POST',
      body: JSON.stringify({ integrationId: 'crm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(completion.status).toBe(200);
    expect(completion.json.status).toBe('succeeded');
    expect(model.requests.at(-1)!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    // And its tool sends the secret where its header says.
    expect(b.server.integrations.secret('crm', 'token')).toBe(TOKEN);

    // Both are audited, without a secret.
    const exports = a.audit.events({ action: 'integration.export' });
    expect(exports).toMatchObject([
      { callerId: 'admin', outcome: 'success', details: { carries: 'sealed', integrations: ['crm'] } },
    ]);
    const imports = b.audit.events({ action: 'integration.import' });
    expect(imports).toMatchObject([
      {
        callerId: 'admin',
        outcome: 'success',
        details: { carries: 'sealed', applied: true, created: ['crm'] },
      },
    ]);
    const auditText = JSON.stringify([...a.audit.events(), ...b.audit.events()]);
    for (const secret of [API_KEY, TOKEN, TRANSFER]) expect(auditText).not.toContain(secret);
  });

  it('a restarted B opens what it imported with its own key file', async () => {
    const a = await startNode();
    const b = await startNode();
    await a.server.integrations.create(crm());
    await importInto(b, (await exportFrom(a)).raw);
    await b.listening.close();
    await b.server.close();
    const again = await openFileIntegrations({ dataDir: b.dataDir, env: {}, logger: { warn: () => {} } });
    const server = createMcpServer({ logLevel: 'silent', integrations: again, outbound: LOOPBACK });
    await server.integrations.ready;
    expect(server.integrations.modelConfig('crm')?.apiKey).toBe(API_KEY);
    expect(server.integrations.secret('crm', 'token')).toBe(TOKEN);
    await server.close();
  });

  it('plaintext only when asked by name, with a warning header; omit carries no secret', async () => {
    const a = await startNode();
    await a.server.integrations.create(crm());
    const noKey = await call(a, '/integrations/export');
    expect(noKey.status).toBe(400);
    expect(noKey.json.detail).toMatch(/transferKey is required/);

    const plain = await call(a, '/integrations/export?secrets=plaintext');
    expect(plain.status).toBe(200);
    expect(plain.headers.get('mcpkit-warning')).toMatch(/in clear/);
    expect(plain.json.integrations[0].model.apiKey).toBe(API_KEY);

    const bogus = await call(a, '/integrations/export?secrets=everything');
    expect(bogus.status).toBe(400);
    expect(bogus.json.detail).toMatch(/secrets must be one of sealed, plaintext, omit/);
    await a.server.integrations.create({ id: 'other', name: 'Other' });
    const one = await call(a, '/integrations/export?secrets=omit&ids=other');
    expect(one.json.integrations.map((i: { id: string }) => i.id)).toEqual(['other']);
    expect((await call(a, '/integrations/export?secrets=omit&ids=nope')).status).toBe(404);

    const omitted = await call(a, '/integrations/export?secrets=omit');
    expect(omitted.status).toBe(200);
    for (const secret of [API_KEY, TOKEN]) expect(omitted.raw.includes(Buffer.from(secret))).toBe(false);
    expect(omitted.json.integrations[0].secrets).toBeUndefined();
    expect(omitted.json.integrations.map((i: { id: string }) => i.id)).toEqual(['crm', 'other']);

    // A plaintext document imports without a transfer key.
    const b = await startNode();
    const imported = await call(b, '/integrations/import', { method: 'POST', body: plain.raw });
    expect(imported.json).toMatchObject({ applied: true, secrets: 'plaintext', created: ['crm'] });
    expect(b.server.integrations.modelConfig('crm')?.apiKey).toBe(API_KEY);
  });

  it('refuses both routes to callers without integrations:backup (operator, user)', async () => {
    const a = await startNode();
    await a.server.integrations.create(crm());
    const exported = await exportFrom(a);
    for (const key of [KEYS.operator, KEYS.user]) {
      const out = await call(a, '/integrations/export', {
        key,
        headers: { 'mcpkit-transfer-key': TRANSFER },
      });
      expect(out.status).toBe(403);
      const into = await call(a, '/integrations/import?onConflict=replace', {
        method: 'POST',
        key,
        body: exported.raw,
        headers: { 'mcpkit-transfer-key': TRANSFER },
      });
      expect(into.status).toBe(403);
    }
    const noCredential = await fetch(`${a.url}/integrations/export`);
    expect(noCredential.status).toBe(401);
  });

  it('integrations:* does not reach integrations:backup; naming it (or admin) does', async () => {
    const a = await startNode();
    await a.server.integrations.create(crm());
    const exported = await exportFrom(a);
    // The wildcard role manages integrations, but neither exports nor imports them.
    expect((await call(a, '/integrations', { key: KEYS.wildcard })).status).toBe(200);
    for (const secrets of ['plaintext', 'sealed']) {
      const out = await call(a, `/integrations/export?secrets=${secrets}`, {
        key: KEYS.wildcard,
        headers: { 'mcpkit-transfer-key': TRANSFER },
      });
      expect(out.status).toBe(403);
      expect(out.raw.includes(Buffer.from(API_KEY))).toBe(false);
    }
    const refused = await call(a, '/integrations/import?onConflict=replace', {
      method: 'POST',
      key: KEYS.wildcard,
      body: exported.raw,
      headers: { 'mcpkit-transfer-key': TRANSFER },
    });
    expect(refused.status).toBe(403);
    expect(a.server.policy.grantOf({ id: 'w', roles: ['integrator'] }).has('integrations:manage')).toBe(true);
    expect(a.server.policy.grantOf({ id: 'w', roles: ['integrator'] }).has('integrations:backup')).toBe(
      false,
    );

    // A role that names the permission, and admin (`*`), may.
    for (const key of [KEYS.backup, KEYS.admin]) {
      const out = await call(a, '/integrations/export', {
        key,
        headers: { 'mcpkit-transfer-key': TRANSFER },
      });
      expect(out.status).toBe(200);
      const into = await call(a, '/integrations/import?onConflict=replace', {
        method: 'POST',
        key,
        body: out.raw,
        headers: { 'mcpkit-transfer-key': TRANSFER },
      });
      expect(into.status).toBe(200);
      expect(into.json).toMatchObject({ applied: true, replaced: ['crm'] });
    }
  });

  it('a wrong transfer key or an altered value is a 400 that echoes nothing', async () => {
    const a = await startNode();
    const b = await startNode();
    await a.server.integrations.create(crm());
    const exported = await exportFrom(a);
    const wrong = await importInto(b, exported.raw, '', 'not the transfer key at all');
    expect(wrong.status).toBe(400);
    expect(wrong.json.detail).toMatch(/transferKey does not open this document/);

    // A sealed value moved to another integration's place fails its binding.
    const doc = exported.json;
    doc.integrations.push({ ...structuredClone(doc.integrations[0]), id: 'copy' });
    const moved = await importInto(b, JSON.stringify(doc), '?dryRun=true');
    expect(moved.status).toBe(200);
    expect(moved.json.issues).toMatchObject([
      { index: 1, id: 'copy', kind: 'invalid', field: 'integrations[1].model.apiKey' },
    ]);
    for (const text of [wrong.raw, moved.raw]) {
      expect(text.includes(Buffer.from(TRANSFER))).toBe(false);
      expect(text.includes(Buffer.from(b.dataDir))).toBe(false);
      expect(text.includes(Buffer.from(doc.integrations[0].model.apiKey))).toBe(false);
    }
    expect(await fileText(b.file)).toBeUndefined();
  });
});

describe('import: dry run, conflicts, all or nothing', () => {
  async function pair() {
    const a = await startNode();
    const b = await startNode();
    await a.server.integrations.create(crm('crm'));
    await a.server.integrations.create({ ...crm('billing'), name: 'Billing' });
    await a.server.integrations.create({ id: 'notes', name: 'Notes', prompts: crm().prompts });
    // On B: crm exists already, and a tool registered in code holds billing's namespace name.
    await b.server.integrations.create({ id: 'crm', name: 'Old CRM' });
    b.server.tools.register({ name: 'billing__search', handler: () => 'mine' });
    const exported = await exportFrom(a);
    return { a, b, exported };
  }

  it('a dry run reports every conflict and writes nothing', async () => {
    const { b, exported } = await pair();
    const doc = exported.json;
    doc.integrations.push({ id: 'broken', name: '', tools: 'nope' });
    doc.integrations.push({ id: 'notes', name: 'Twice' });
    const before = await fs.readFile(b.file);
    const beforeStat = await fs.stat(b.file);
    const report = await importInto(b, JSON.stringify(doc), '?dryRun=true');
    expect(report.status).toBe(200);
    expect(report.json).toMatchObject({ dryRun: true, applied: false, created: ['notes'], replaced: [] });
    const kinds = report.json.issues.map((i: any) => [i.id, i.kind]);
    expect(kinds).toEqual([
      ['crm', 'exists'],
      ['billing', 'namespace'],
      ['broken', 'invalid'],
      ['notes', 'duplicate'],
    ]);
    expect(report.json.issues[1].message).toContain('tools[0]: billing__search is already in the catalog');
    expect((await fs.readFile(b.file)).equals(before)).toBe(true);
    expect((await fs.stat(b.file)).mtimeMs).toBe(beforeStat.mtimeMs);
    expect(b.server.integrations.list().map((i) => i.id)).toEqual(['crm']);
    expect(b.server.integrations.get('crm')?.name).toBe('Old CRM');
    expect(b.server.prompts.get('notes__hello')).toBeUndefined();
  });

  it('with a conflict the real import is a 409 and writes nothing, not even the rest', async () => {
    const { b, exported } = await pair();
    b.server.tools.remove('billing__search');
    const before = await fs.readFile(b.file);
    const refused = await importInto(b, exported.raw);
    expect(refused.status).toBe(409);
    expect(refused.json.details.issues).toMatchObject([{ id: 'crm', kind: 'exists' }]);
    expect((await fs.readFile(b.file)).equals(before)).toBe(true);
    expect(b.server.integrations.list().map((i) => i.id)).toEqual(['crm']);
    expect(b.server.tools.has('billing__search')).toBe(false);
    expect(b.audit.events({ action: 'integration.import' })).toMatchObject([
      { outcome: 'failure', code: 'CONFLICT' },
    ]);
  });

  it('onConflict skip keeps what B has; replace takes the export', async () => {
    const { b, exported } = await pair();
    b.server.tools.remove('billing__search');
    const skipped = await importInto(b, exported.raw, '?onConflict=skip');
    expect(skipped.json).toMatchObject({ applied: true, created: ['billing', 'notes'], skipped: ['crm'] });
    expect(b.server.integrations.get('crm')?.name).toBe('Old CRM');
    const replaced = await importInto(b, exported.raw, '?onConflict=replace');
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ replaced: ['crm', 'billing', 'notes'], created: [] });
    expect(b.server.integrations.get('crm')?.name).toBe('CRM');
    expect(b.server.integrations.modelConfig('crm')?.apiKey).toBe(API_KEY);
    const stored = JSON.parse((await fileText(b.file))!);
    expect(stored.integrations.map((i: any) => i.id)).toEqual(['crm', 'billing', 'notes']);
  });

  it('a save that fails on the real file leaves the file, the table and the catalogs as before', async () => {
    const { b, exported } = await pair();
    b.server.tools.remove('billing__search');
    const before = await fs.readFile(b.file);
    const tools = b.server.tools.list().map((t) => t.name);
    // The store renames a temporary file onto integrations.json: a directory there makes it fail.
    const aside = path.join(b.dataDir, 'aside.json');
    await fs.rename(b.file, aside);
    await fs.mkdir(b.file);
    const failed = await importInto(b, exported.raw, '?onConflict=replace');
    expect(failed.status).toBe(500);
    expect(failed.raw.includes(Buffer.from(b.dataDir))).toBe(false);
    expect(b.server.integrations.list().map((i) => [i.id, i.name])).toEqual([['crm', 'Old CRM']]);
    expect(b.server.tools.list().map((t) => t.name)).toEqual(tools);
    expect(b.server.prompts.get('notes__hello')).toBeUndefined();
    await fs.rmdir(b.file);
    await fs.rename(aside, b.file);
    expect((await fs.readFile(b.file)).equals(before)).toBe(true);
    // Healed, the same import goes through whole.
    const healed = await importInto(b, exported.raw, '?onConflict=replace');
    expect(healed.json).toMatchObject({ applied: true, replaced: ['crm'], created: ['billing', 'notes'] });
    expect(b.server.tools.has('billing__search')).toBe(true);
  });
});

describe('a failure in the middle of an import', () => {
  it('a catalog that refuses the third integration puts the first two back; the file is untouched', async () => {
    const a = await startNode();
    await a.server.integrations.create(crm('crm'));
    await a.server.integrations.create({ ...crm('billing'), name: 'Billing' });
    await a.server.integrations.create({ id: 'notes', name: 'Notes', prompts: crm().prompts });
    const backup = await a.server.integrations.export({ transferKey: TRANSFER });

    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-backup-mid-'));
    cleanups.push(() => fs.rm(dataDir, { recursive: true, force: true }));
    const { store, cipher } = await openFileIntegrations({ dataDir, env: {}, logger: { warn: () => {} } });
    const prompts = new PromptCatalog({ onChange: () => {} });
    let armed = true;
    // Once billing's tool is in, someone else takes the prompt name notes is about to register.
    const tools = new ToolCatalog({
      onChange: () => {},
      observe: (op, key) => {
        if (armed && op === 'add' && key === 'billing__search') {
          armed = false;
          prompts.register({ name: 'notes__hello', messages: [{ role: 'user', content: 'taken' }] });
        }
      },
    });
    const resources = new ResourceCatalog({ onChange: () => {} });
    const manager = new IntegrationManager({
      store,
      cipher,
      tools,
      resources,
      prompts,
      declarative: { outbound: new OutboundPolicy(LOOPBACK) },
    });
    cleanups.push(() => manager.close());
    await manager.ready;
    await manager.create({
      id: 'crm',
      name: 'Old CRM',
      prompts: [{ name: 'old', messages: [{ role: 'user', content: 'old' }] }],
    });
    const file = path.join(dataDir, 'integrations.json');
    const before = await fs.readFile(file);
    const toolsBefore = tools.list().map((t) => t.name);

    await expect(
      manager.import(backup, { transferKey: TRANSFER, onConflict: 'replace' }),
    ).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('notes__hello') });
    expect(armed).toBe(false);
    expect((await fs.readFile(file)).equals(before)).toBe(true);
    expect(manager.list().map((i) => [i.id, i.name])).toEqual([['crm', 'Old CRM']]);
    expect(tools.list().map((t) => t.name)).toEqual(toolsBefore);
    expect(tools.has('billing__search')).toBe(false);
    expect(prompts.has('crm__old')).toBe(true);
    expect(prompts.has('crm__hello')).toBe(false);

    // With the name free again, the same import goes through whole.
    prompts.remove('notes__hello');
    const report = await manager.import(backup, { transferKey: TRANSFER, onConflict: 'replace' });
    expect(report).toMatchObject({ applied: true, replaced: ['crm'], created: ['billing', 'notes'] });
    expect(manager.secret('billing', 'token')).toBe(TOKEN);
    const stored = JSON.parse(await fs.readFile(file, 'utf8'));
    expect(stored.integrations.map((i: { id: string }) => i.id)).toEqual(['crm', 'billing', 'notes']);
  });
});

describe('hostile documents', () => {
  it('wrong types, NUL bytes in ids, pollution keys and bad options are clear 400s', async () => {
    const b = await startNode();
    const frame = { format: 'mcpkit.integrations.export', version: 1, secrets: { mode: 'omit' } };
    const cases: Array<[unknown, RegExp, string?]> = [
      [[], /document must be a JSON object/],
      [{ ...frame, format: 'other' }, /format must be "mcpkit.integrations.export"/],
      [{ ...frame, version: 99 }, /version is newer/],
      [{ ...frame, integrations: 'all' }, /integrations must be an array/],
      [{ ...frame, secrets: { mode: 'sealed' }, integrations: [] }, /secrets\.kdf must be/],
      [{ ...frame, integrations: [], extra: 1 }, /holds a field an export does not have/],
      [{ ...frame, integrations: [] }, /onConflict must be one of/, '?onConflict=merge'],
      [{ ...frame, integrations: [] }, /dryRun must be true or false/, '?dryRun=maybe'],
    ];
    for (const [doc, message, query] of cases) {
      const answer = await importInto(b, JSON.stringify(doc), query ?? '');
      expect(answer.status, String(message)).toBe(400);
      expect(answer.json.detail).toMatch(message);
    }
    const entries = [
      { id: 'a\u0000b', name: 'NUL' },
      { id: 'ok', name: 42 },
      { id: 'two', name: 'Two', secrets: { token: 'x' } },
      'not an object',
    ];
    const report = await importInto(b, JSON.stringify({ ...frame, integrations: entries }), '?dryRun=1');
    expect(report.json.issues.map((i: any) => i.field)).toEqual([
      'integrations[0].id',
      'integrations[1].name',
      'integrations[2].secrets',
      'integrations[3]',
    ]);
    expect(report.raw.includes(Buffer.from('a\u0000b'))).toBe(false);

    // At the REST door, __proto__ keys are dropped before anyone reads them; nothing is polluted.
    const polluted = `{"format":"mcpkit.integrations.export","version":1,"secrets":{"mode":"omit"},"integrations":[{"id":"p","name":"P","__proto__":{"polluted":true}}]}`;
    const answer = await importInto(b, polluted, '?dryRun=1');
    expect(answer.json).toMatchObject({ created: ['p'], issues: [] });
    expect(({} as any).polluted).toBeUndefined();
    // Through the API, where nothing stripped them, the document is refused.
    await expect(b.server.integrations.import(JSON.parse(polluted))).rejects.toThrow(
      /document\.integrations\[0\] holds a key that could reach a prototype/,
    );
    expect(await fileText(b.file)).toBeUndefined();
  });

  it('a deep or huge body is refused by the common limits (400, 413)', async () => {
    const b = await startNode({ maxBodyBytes: 64 * 1024 });
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const nested = await importInto(b, `{"format":"mcpkit.integrations.export","x":${deep}}`);
    expect(nested.status).toBe(400);
    expect(nested.json.detail).toMatch(/nests deeper/);
    const huge = JSON.stringify({
      format: 'mcpkit.integrations.export',
      version: 1,
      secrets: { mode: 'omit' },
      integrations: [{ id: 'big', name: 'x'.repeat(128 * 1024) }],
    });
    const tooLarge = await importInto(b, huge);
    expect(tooLarge.status).toBe(413);
    expect(await fileText(b.file)).toBeUndefined();
  });
});

describe('OpenAPI', () => {
  it('documents both routes with their parameters', async () => {
    const a = await startNode();
    const doc = (await call(a, '/openapi.json')).json;
    const exportOp = doc.paths['/integrations/export'].get;
    expect(exportOp.parameters.map((p: any) => `${p.in}:${p.name}`)).toEqual([
      'query:secrets',
      'query:ids',
      'header:Mcpkit-Transfer-Key',
    ]);
    const importOp = doc.paths['/integrations/import'].post;
    expect(importOp.parameters.map((p: any) => p.name)).toEqual([
      'onConflict',
      'dryRun',
      'Mcpkit-Transfer-Key',
    ]);
    expect(importOp.requestBody).toBeDefined();
  });
});
