import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { loadSecretCipher, openFileIntegrations } from 'mcpkit/node';
import { connectClient, request } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';

const API_KEY = 'sk-live-0123456789abcdefPLAINTEXT';
const TOKEN = 'crm-token-very-secret-42';
const dirs: string[] = [];
const servers: McpKitServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpkit-integrations-'));
  dirs.push(dir);
  return dir;
}

const upstream = vi.fn(async (url: URL | string, init?: RequestInit) => {
  const auth = new Headers(init?.headers).get('authorization');
  return new Response(JSON.stringify({ url: String(url), authorized: auth === `Bearer ${TOKEN}` }), {
    headers: { 'content-type': 'application/json' },
  });
});

async function fileServer(dataDir: string, key: string, previous?: string) {
  const integrations = await openFileIntegrations({
    dataDir,
    env: { MCP_SECRET_KEY: key, ...(previous && { MCP_SECRET_KEY_PREVIOUS: previous }) },
  });
  const server = createMcpServer({
    logLevel: 'silent',
    integrations,
    declarativeTools: { allowedHosts: ['crm.example.com'], fetch: upstream as typeof fetch },
  });
  servers.push(server);
  return server;
}

const crm = {
  id: 'crm',
  name: 'CRM',
  description: 'Our CRM',
  model: { provider: 'openai', model: 'gpt-4.1', apiKey: API_KEY, defaults: { temperature: 0.2 } },
  secrets: { token: TOKEN },
  tools: [
    {
      name: 'lookup',
      kind: 'http',
      description: 'Find an account',
      inputSchema: { type: 'object', properties: { q: { type: 'string' } } },
      http: {
        url: 'https://crm.example.com/accounts?q={q}',
        headers: { authorization: 'Bearer {{secrets.token}}' },
      },
    },
  ],
  resources: [{ name: 'readme', mimeType: 'text/markdown', text: '# CRM' }],
  prompts: [{ name: 'summary', messages: [{ role: 'user', content: 'Summarise {{account}}' }] }],
};

function json(body: unknown, headers: Record<string, string> = {}, method = 'POST'): RequestInit {
  return { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

async function grepDir(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of await fs.readdir(dir)) {
    const text = await fs.readFile(path.join(dir, name), 'utf8');
    for (const needle of needles) if (text.includes(needle)) found.push(`${name}: ${needle}`);
  }
  return found;
}

describe('integrations end to end (REST, MCP client, restart)', () => {
  it('creates over REST, serves its tools to an SDK client, disables, and survives a restart', async () => {
    const dataDir = await tempDir();
    const key = randomBytes(32).toString('base64');
    let server = await fileServer(dataDir, key);
    await server.integrations.ready;

    const created = await request(server, '/integrations', json(crm));
    const createdText = await created.text();
    expect(created.status).toBe(201);
    const etag = created.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]+-1"$/);
    expect(createdText).not.toContain(API_KEY);
    expect(createdText).not.toContain(TOKEN);
    const body = JSON.parse(createdText);
    expect(body.model.apiKey).toBe(`…${API_KEY.slice(-4)}`);
    expect(body.secrets.token).toBe(`…${TOKEN.slice(-4)}`);
    expect(body.contributes).toEqual({
      tools: ['crm__lookup'],
      resources: ['integration://crm/readme'],
      prompts: ['crm__summary'],
    });

    // The data directory holds no plaintext secret.
    expect(await grepDir(dataDir, [API_KEY, TOKEN, key])).toEqual([]);

    const { client, close } = await connectClient(server);
    const { tools } = await client.listTools();
    const lookup = tools.find((t) => t.name === 'crm__lookup');
    expect(lookup).toBeDefined();
    expect(JSON.stringify(lookup)).not.toContain(TOKEN);
    const result = await client.callTool({ name: 'crm__lookup', arguments: { q: 'acme' } });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({
      url: 'https://crm.example.com/accounts?q=acme',
      authorized: true,
    });
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toContain('crm__summary');
    expect((await client.readResource({ uri: 'integration://crm/readme' })).contents[0]).toMatchObject({
      text: '# CRM',
    });

    // PUT needs If-Match; a stale one is refused.
    const current = await request(server, '/integrations/crm');
    expect(current.headers.get('etag')).toBe(etag);
    const edited = { ...(await current.json()), enabled: false };
    expect((await request(server, '/integrations/crm', json(edited, {}, 'PUT'))).status).toBe(428);
    const ok = await request(server, '/integrations/crm', json(edited, { 'if-match': etag }, 'PUT'));
    expect(ok.status).toBe(200);
    const newEtag = ok.headers.get('etag')!;
    expect(newEtag).not.toBe(etag);
    const stale = await request(server, '/integrations/crm', json(edited, { 'if-match': etag }, 'PUT'));
    expect(stale.status).toBe(412);
    expect((await stale.json()).details.etag).toBe(newEtag);

    // Disabled: its contributions are gone, its secrets kept (the redacted echo keeps them).
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('crm__lookup');
    expect((await client.listPrompts()).prompts.map((p) => p.name)).not.toContain('crm__summary');
    expect(server.integrations.modelConfig('crm')?.apiKey).toBe(API_KEY);
    await close();
    await server.close();

    // Restart on the same directory: everything as it was.
    server = await fileServer(dataDir, key);
    await server.integrations.ready;
    const after = await request(server, '/integrations/crm');
    expect(after.headers.get('etag')).toBe(newEtag);
    const restored = await after.json();
    expect(restored).toMatchObject({ id: 'crm', enabled: false, description: 'Our CRM', revision: 2 });
    expect(server.integrations.modelConfig('crm')).toEqual({
      provider: 'openai',
      model: 'gpt-4.1',
      apiKey: API_KEY,
      defaults: { temperature: 0.2 },
    });
    expect(server.tools.has('crm__lookup')).toBe(false);
    await server.integrations.enable('crm');
    const second = await connectClient(server);
    expect((await second.client.listTools()).tools.map((t) => t.name)).toContain('crm__lookup');
    const again = await second.client.callTool({ name: 'crm__lookup', arguments: { q: 'x' } });
    expect(again.structuredContent).toMatchObject({ authorized: true });
    await second.close();

    const list = await request(server, '/integrations');
    expect((await list.json()).items.map((i: { id: string }) => i.id)).toEqual(['crm']);
    expect(
      (await request(server, '/integrations/crm', { method: 'DELETE', headers: { 'if-match': etag } }))
        .status,
    ).toBe(412);
    expect((await request(server, '/integrations/crm', { method: 'DELETE' })).status).toBe(204);
    expect(server.tools.has('crm__lookup')).toBe(false);
    expect((await request(server, '/integrations/crm')).status).toBe(404);
  });

  it('names the field in validation errors and never echoes a secret', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    servers.push(server);
    const cases: Array<[unknown, string]> = [
      [{ ...crm, id: 'Bad Id!' }, 'id'],
      [{ ...crm, model: { ...crm.model, provider: 'acme' } }, 'model.provider'],
      [{ ...crm, model: { provider: 'custom', model: 'x', apiKey: API_KEY } }, 'model.baseUrl'],
      [{ ...crm, apikey: API_KEY }, 'apikey'],
      [{ ...crm, secrets: { token: 42 } }, 'secrets.token'],
      [{ ...crm, tools: [{ ...crm.tools[0], name: 'bad name' }] }, 'tools[0].name'],
      [{ ...crm, prompts: [{ name: 'p', messages: [] }] }, 'prompts[0].messages'],
      [{ ...crm, types: ['tools'] }, 'resources'],
    ];
    for (const [body, field] of cases) {
      const res = await request(server, '/integrations', json(body));
      const text = await res.text();
      expect(res.status, field).toBe(400);
      expect(JSON.parse(text).details.field).toBe(field);
      expect(JSON.parse(text).detail.startsWith(field)).toBe(true);
      expect(text).not.toContain(API_KEY);
    }
    // A host off the allow-list is refused, naming the tool.
    const forbidden = await request(server, '/integrations', json(crm));
    expect(forbidden.status).toBe(403);
    expect((await forbidden.json()).detail).toMatch(/^tools\[0\]: Host crm\.example\.com/);
    expect(server.integrations.size).toBe(0);
  });
});

describe('reserved integration ids', () => {
  it('refuses export and import on create, on import of a backup and for an upstream, naming them', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    servers.push(server);
    for (const id of ['export', 'import']) {
      const res = await request(server, '/integrations', json({ id, name: 'Shadowed' }));
      expect(res.status, id).toBe(400);
      const body = await res.json();
      expect(body.details.field).toBe('id');
      expect(body.detail).toContain(`"${id}" is reserved`);
      expect(body.detail).toContain('reserved ids: export, import');
      await expect(server.integrations.create({ id, name: 'Shadowed' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      // A configured upstream creates its integration under its id: refused the same way.
      expect(() => server.integrations.attachUpstream(id, { connect: async () => ({}) as never })).toThrow(
        /is reserved/,
      );
    }
    // Ids that merely start with a reserved word are fine.
    expect((await request(server, '/integrations', json({ id: 'export-crm', name: 'Fine' }))).status).toBe(
      201,
    );

    // A backup document carrying a reserved id: a 400 naming the entry, nothing written.
    const exported = await (await request(server, '/integrations/export?secrets=omit')).json();
    expect(exported.integrations.map((i: { id: string }) => i.id)).toEqual(['export-crm']);
    exported.integrations.push({ ...exported.integrations[0], id: 'import' });
    const dry = await request(server, '/integrations/import?dryRun=true&onConflict=skip', json(exported));
    expect(dry.status).toBe(200);
    expect((await dry.json()).issues).toMatchObject([
      {
        index: 1,
        kind: 'invalid',
        field: 'integrations[1].id',
        message: expect.stringContaining('is reserved'),
      },
    ]);
    const refused = await request(server, '/integrations/import?onConflict=skip', json(exported));
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain('reserved ids: export, import');
    expect(server.integrations.list().map((i) => i.id)).toEqual(['export-crm']);
  });
});

describe('IntegrationManager (in memory)', () => {
  it('namespaces contributions, attaches code tools, and emits typed events', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    servers.push(server);
    const events: string[] = [];
    for (const name of ['created', 'updated', 'disabled', 'enabled', 'deleted', 'toolAttached'] as const) {
      server.integrations.on(name, () => events.push(name));
    }
    await server.integrations.ready;
    const prompt = { name: 'search', messages: [{ role: 'user' as const, content: 'find {{q}}' }] };
    await server.integrations.create({ id: 'a', name: 'A', prompts: [prompt] });
    await server.integrations.create({ id: 'b', name: 'B', prompts: [prompt] });
    expect(server.prompts.list().map((p) => p.name)).toEqual(['a__search', 'b__search']);

    const attached = server.integrations.attachTool('a', { name: 'ping', handler: () => 'pong' });
    expect(attached.name).toBe('a__ping');
    expect(server.tools.has('a__ping')).toBe(true);
    expect(server.integrations.get('a')?.contributes.tools).toEqual(['a__ping']);
    const { client, close } = await connectClient(server);
    expect((await client.callTool({ name: 'a__ping', arguments: {} })).content).toEqual([
      { type: 'text', text: 'pong' },
    ]);
    await server.integrations.disable('a');
    expect(server.tools.has('a__ping')).toBe(false);
    expect(server.prompts.has('a__search')).toBe(false);
    await server.integrations.enable('a');
    expect(server.tools.has('a__ping')).toBe(true);
    await server.integrations.update(
      'a',
      { description: 'changed' },
      { ifMatch: server.integrations.get('a')!.etag },
    );
    await expect(
      server.integrations.update('a', { description: 'x' }, { ifMatch: '"stale-1"' }),
    ).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
    });
    await expect(server.integrations.create({ id: 'b', name: 'again' })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
    await server.integrations.delete('a');
    expect(server.tools.has('a__ping')).toBe(false);
    attached.remove();
    expect(events).toEqual([
      'created',
      'created',
      'toolAttached',
      'disabled',
      'updated',
      'enabled',
      'updated',
      'updated',
      'deleted',
    ]);
    await close();
  });

  it('refuses a contribution whose name another tool already holds, changing nothing', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    servers.push(server);
    server.tools.register({ name: 'x__t', handler: () => 'mine' });
    await expect(
      server.integrations.create({
        id: 'x',
        name: 'X',
        tools: [{ name: 't', kind: 'chain', steps: [{ tool: 'y' }] }],
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(server.integrations.size).toBe(0);
    expect(server.tools.list().map((t) => t.name)).toEqual(['x__t']);
  });
});

describe('secrets and storage failures', () => {
  async function saved() {
    const dataDir = await tempDir();
    const key = randomBytes(32).toString('hex');
    const server = await fileServer(dataDir, key);
    await server.integrations.ready;
    await server.integrations.create({
      id: 'crm',
      name: 'CRM',
      model: { provider: 'anthropic', model: 'c', apiKey: API_KEY },
    });
    await server.close();
    return { dataDir, key, file: path.join(dataDir, 'integrations.json') };
  }

  it('fails loudly on a tampered ciphertext, naming the file and field', async () => {
    const { dataDir, key, file } = await saved();
    const doc = JSON.parse(await fs.readFile(file, 'utf8'));
    const sealed: string = doc.integrations[0].model.apiKey;
    const flipped = sealed.slice(0, -3) + (sealed.at(-3) === 'A' ? 'B' : 'A') + sealed.slice(-2);
    doc.integrations[0].model.apiKey = flipped;
    await fs.writeFile(file, JSON.stringify(doc));
    const server = await fileServer(dataDir, key);
    await expect(server.integrations.ready).rejects.toThrow(
      `${file}: cannot open model.apiKey of integration "crm": authentication failed`,
    );
    expect((await request(server, '/integrations', json({ id: 'x', name: 'x' }))).status).toBe(503);
  });

  it('fails loudly on a truncated tag and on a ciphertext moved to another integration', async () => {
    const { dataDir, key, file } = await saved();
    const doc = JSON.parse(await fs.readFile(file, 'utf8'));
    const sealed: string = doc.integrations[0].model.apiKey;
    doc.integrations[0].model.apiKey = sealed.slice(0, sealed.lastIndexOf(':') + 8);
    await fs.writeFile(file, JSON.stringify(doc));
    await expect((await fileServer(dataDir, key)).integrations.ready).rejects.toThrow(/tag is truncated/);
    await servers.pop()!.close();
    doc.integrations[0].model.apiKey = sealed;
    doc.integrations[0].id = 'other';
    await fs.writeFile(file, JSON.stringify(doc));
    await expect((await fileServer(dataDir, key)).integrations.ready).rejects.toThrow(
      /authentication failed/,
    );
  });

  it('fails loudly on a wrong MCP_SECRET_KEY', async () => {
    const { dataDir } = await saved();
    const server = await fileServer(dataDir, randomBytes(32).toString('base64'));
    await expect(server.integrations.ready).rejects.toThrow(
      /the secret key does not open this store .*key id/,
    );
    await expect(loadSecretCipher({ env: { MCP_SECRET_KEY: 'short' } })).rejects.toThrow(
      /^MCP_SECRET_KEY must be a 32-byte key/,
    );
  });

  it('stops on a corrupt file, naming it and keeping it', async () => {
    const { dataDir, key, file } = await saved();
    const garbage = '{"format":"mcpkit.integrations","version":1,"integr';
    await fs.writeFile(file, garbage);
    await expect(openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } })).rejects.toThrow(
      `${file}: is not valid JSON (corrupt or truncated); it was left as it is`,
    );
    expect(await fs.readFile(file, 'utf8')).toBe(garbage);
    await fs.writeFile(
      file,
      JSON.stringify({ format: 'mcpkit.integrations', version: 99, integrations: [] }),
    );
    await expect(openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } })).rejects.toThrow(
      /written by a newer mcpkit \(format version 99/,
    );
    // The failed opens released the lock.
    const ok = await openFileIntegrations({ dataDir, env: { MCP_SECRET_KEY: key } }).catch((e) => e);
    expect(String(ok)).not.toMatch(/in use/);
  });

  it('rotates the key: MCP_SECRET_KEY_PREVIOUS opens the old values and everything is re-sealed at start', async () => {
    const { dataDir, key, file } = await saved();
    const next = randomBytes(32).toString('base64');
    const server = await fileServer(dataDir, next, key);
    const rotated = vi.fn();
    server.integrations.on('keyRotated', rotated);
    await server.integrations.ready;
    expect(rotated).toHaveBeenCalledWith(expect.objectContaining({ secrets: 1 }));
    await server.close();
    servers.pop();
    const again = await fileServer(dataDir, next);
    await again.integrations.ready;
    expect(again.integrations.modelConfig('crm')?.apiKey).toBe(API_KEY);
    expect(await fs.readFile(file, 'utf8')).not.toContain(API_KEY);
  });

  it('generates a key file with mode 0600 and a warning when MCP_SECRET_KEY is not set', async () => {
    const dataDir = await tempDir();
    const warn = vi.fn();
    const cipher = await loadSecretCipher({ dataDir, env: {}, logger: { warn } });
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('generated a new secret key'));
    expect((await fs.stat(path.join(dataDir, 'secret.key'))).mode & 0o777).toBe(0o600);
    const same = await loadSecretCipher({ dataDir, env: {}, logger: { warn } });
    expect(same.keyId).toBe(cipher.keyId);
    expect(await same.open(await cipher.seal('x', 'aad'), 'aad')).toBe('x');
  });

  it('sweeps leftover temporary files and takes over a lock whose process is gone', async () => {
    const dataDir = await tempDir();
    await fs.writeFile(path.join(dataDir, '.integrations.json.1.abc.tmp'), '{"torn');
    await fs.writeFile(
      path.join(dataDir, 'integrations.lock'),
      JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), startedAt: 'then' }),
    );
    const { store } = await openFileIntegrations({
      dataDir,
      env: { MCP_SECRET_KEY: randomBytes(32).toString('hex') },
    });
    expect(store.swept).toEqual(['.integrations.json.1.abc.tmp']);
    await store.close();
    expect(await fs.readdir(dataDir)).toEqual([]);
  });
});
