/**
 * Integrations shared through Redis (mcpkit/redis), against a real redis-server and two (or three)
 * mcpkit nodes in this process, each on its own port and Redis connection, driven over HTTP: an
 * integration written on one node is served fresh on the others (catalog, list_changed, ETag);
 * racing conditional writes on two nodes let exactly one win; secrets stay sealed in Redis; while
 * Redis is down writes answer 503 with Retry-After and reads are served from each node's copy, and
 * once it is back (empty: the test server keeps no data) nothing acknowledged is lost.
 */
import { randomBytes } from 'node:crypto';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { createAesGcmCipher, type Listening, listen } from 'mcpkit/node';
import { type RedisState, redisState } from 'mcpkit/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from './support/redisServer.js';

let redis: RedisServer;
let prefixes = 0;
/** A fresh key prefix, so no test sees another's integrations. */
const freshPrefix = () => `ti${process.pid}-${++prefixes}:`;
const cleanups: (() => Promise<unknown>)[] = [];
const KEY = randomBytes(32);

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

interface Node {
  server: McpKitServer;
  listening: Listening;
  state: RedisState;
  url: string;
}

/** One node sharing `prefix`, with the same secret key as every other. */
async function startNode(prefix: string): Promise<Node> {
  const state = redisState({ url: redis.url, prefix, commandTimeoutMs: 500 });
  const server = createMcpServer({
    state,
    logLevel: 'silent',
    integrations: { cipher: createAesGcmCipher(KEY) },
  });
  server.tools.register({
    name: 'echo',
    handler: (args) => `echo ${(args as { text?: string }).text ?? ''}`,
  });
  const listening = await listen(server, { port: 0, websocket: false });
  cleanups.push(async () => {
    await listening.close();
    await server.close();
  });
  await state.ready();
  await server.integrations.ready;
  await until(() => state.healthy!());
  return { server, listening, state, url: listening.url };
}

function send(
  node: Node,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(`${node.url}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

/** Resolves once `check` holds, polling every 20 ms, or fails after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function mcpClient(node: Node): Promise<Client> {
  const c = new Client({ name: 'redis-integrations-test', version: '0.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`)));
  cleanups.push(() => c.close());
  return c;
}

const crm = (text: string) => ({
  id: 'crm',
  name: 'CRM',
  secrets: { token: 'sk-very-secret-token' },
  resources: [{ name: 'readme', text }],
  prompts: [{ name: 'hello', messages: [{ role: 'user', content: `Hello ${text}` }] }],
});

describe('integrations shared through Redis', () => {
  it('serves on node A, fresh, what node B wrote: catalog, list_changed, the same ETag', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const client = await mcpClient(a);
    let changed = 0;
    client.setNotificationHandler('notifications/resources/list_changed', () => {
      changed++;
    });
    // The GET stream that carries notifications opens after initialize: wait until A's own change arrives.
    for (let i = 0; changed === 0; i++) {
      a.server.resources.register({ uri: `warm://${i}`, name: 'warm', read: () => 'x' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const before = changed;

    const created = await send(b, 'POST', '/integrations', crm('first'));
    expect(created.status).toBe(201);
    const etag = created.headers.get('etag')!;
    await until(() => a.server.integrations.get('crm') !== undefined);
    expect(a.server.integrations.get('crm')!.etag).toBe(etag);
    await until(() => changed > before);
    const listed = await client.listResources();
    expect(listed.resources.map((r) => r.uri)).toContain('integration://crm/readme');
    const read = await client.readResource({ uri: 'integration://crm/readme' });
    expect(read.contents[0]).toMatchObject({ text: 'first' });

    // Edited on B with If-Match: A serves the new content (its cached read dropped) under the same ETag.
    const edited = await send(b, 'PUT', '/integrations/crm', crm('second'), { 'if-match': etag });
    expect(edited.status).toBe(200);
    const etag2 = edited.headers.get('etag')!;
    expect(etag2).not.toBe(etag);
    await until(() => a.server.integrations.get('crm')?.etag === etag2);
    const onA = await send(a, 'GET', '/integrations/crm');
    expect(onA.headers.get('etag')).toBe(etag2);
    expect((await onA.json()).secrets.token).not.toContain('very-secret');
    expect((await client.readResource({ uri: 'integration://crm/readme' })).contents[0]).toMatchObject({
      text: 'second',
    });
    // The old ETag is refused on A too.
    expect((await send(a, 'PUT', '/integrations/crm', crm('third'), { 'if-match': etag })).status).toBe(412);
    // The secret was opened on A (same key), and is sealed at rest in Redis.
    expect(a.server.integrations.secret('crm', 'token')).toBe('sk-very-secret-token');
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    const stored = await raw.hget(`${prefix}integrations`, 'crm');
    expect(stored).not.toContain('sk-very-secret-token');
    expect(JSON.parse(stored!).secrets.token).toMatch(/^enc:v1:/);

    // Deleted on B: gone from A's catalog, with list_changed.
    const beforeDelete = changed;
    expect((await send(b, 'DELETE', '/integrations/crm')).status).toBe(204);
    await until(() => a.server.integrations.get('crm') === undefined);
    await until(() => changed > beforeDelete);
    expect((await client.listResources()).resources.map((r) => r.uri)).not.toContain(
      'integration://crm/readme',
    );
    expect((await send(a, 'GET', '/integrations/crm')).status).toBe(404);
  });

  it('lets exactly one of two racing If-Match writes on two nodes win, every time', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const created = await send(a, 'POST', '/integrations', { id: 'race', name: 'Race' });
    let etag = created.headers.get('etag')!;
    await until(() => b.server.integrations.get('race')?.etag === etag);
    for (let round = 0; round < 40; round++) {
      const [ra, rb] = await Promise.all([
        send(a, 'PUT', '/integrations/race', { name: `A${round}` }, { 'if-match': etag }),
        send(b, 'PUT', '/integrations/race', { name: `B${round}` }, { 'if-match': etag }),
      ]);
      const statuses = [ra.status, rb.status].sort();
      expect(statuses).toEqual([200, 412]);
      const winner = ra.status === 200 ? ra : rb;
      const loser = ra.status === 200 ? rb : ra;
      const next = winner.headers.get('etag')!;
      // The loser is told the winner's tag.
      expect((await loser.json()).details.etag).toBe(next);
      etag = next;
      await until(
        () =>
          a.server.integrations.get('race')?.etag === etag &&
          b.server.integrations.get('race')?.etag === etag,
      );
      expect(a.server.integrations.get('race')!.name).toBe(b.server.integrations.get('race')!.name);
    }
    expect(a.server.integrations.get('race')!.revision).toBe(41);
    // Unconditional writes racing on two nodes both apply, one after the other: none is lost.
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all([
        a.server.integrations.update('race', { description: `A${round}` }),
        b.server.integrations.update('race', { description: `B${round}` }),
      ]);
      expect(results.map((r) => r.revision).sort()).toEqual([42 + round * 2, 43 + round * 2]);
    }
    await until(
      () =>
        a.server.integrations.get('race')?.revision === 61 &&
        b.server.integrations.get('race')?.revision === 61,
    );
    expect(b.server.integrations.get('race')!.etag).toBe(a.server.integrations.get('race')!.etag);
  });

  it('lets exactly one of two racing creates of one id win', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    for (let round = 0; round < 20; round++) {
      const id = `dup-${round}`;
      const [ra, rb] = await Promise.all([
        send(a, 'POST', '/integrations', { id, name: 'A' }),
        send(b, 'POST', '/integrations', { id, name: 'B' }),
      ]);
      expect([ra.status, rb.status].sort()).toEqual([201, 409]);
    }
    await until(() => a.server.integrations.size === 20 && b.server.integrations.size === 20);
  });

  it('answers writes 503 with Retry-After while Redis is down, serves reads, and loses nothing acknowledged', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const acknowledged = new Map<string, string>();
    for (let i = 0; i < 5; i++) {
      const node = i % 2 === 0 ? a : b;
      const res = await send(node, 'POST', '/integrations', { id: `keep-${i}`, name: `Keep ${i}` });
      expect(res.status).toBe(201);
      acknowledged.set(`keep-${i}`, res.headers.get('etag')!);
    }
    const edited = await send(
      b,
      'PUT',
      '/integrations/keep-0',
      { name: 'Edited' },
      { 'if-match': acknowledged.get('keep-0')! },
    );
    expect(edited.status).toBe(200);
    acknowledged.set('keep-0', edited.headers.get('etag')!);
    await until(() => a.server.integrations.get('keep-0')?.etag === acknowledged.get('keep-0'));

    await redis.stop();
    try {
      const refused = await send(a, 'POST', '/integrations', { id: 'lost', name: 'Lost' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      const problem = await refused.json();
      expect(problem.code).toBe('UNAVAILABLE');
      expect(JSON.stringify(problem)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|at .*\.ts/);
      const put = await send(b, 'PUT', '/integrations/keep-1', { name: 'x' }, { 'if-match': '*' });
      expect(put.status).toBe(503);
      // Reads come from each node's last good copy.
      const read = await send(a, 'GET', '/integrations/keep-0');
      expect(read.status).toBe(200);
      expect(read.headers.get('etag')).toBe(acknowledged.get('keep-0'));
      expect(
        ((await (await send(b, 'GET', '/integrations')).json()) as { items: unknown[] }).items,
      ).toHaveLength(5);
      // Nothing refused was applied anywhere.
      expect(a.server.integrations.get('lost')).toBeUndefined();
    } finally {
      // The test server keeps no data: it comes back empty, and the nodes put their copy back.
      await redis.start();
    }
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    await until(async () => (await raw.hlen(`${prefix}integrations`)) === 5, 10_000);
    // Writes work again by themselves, against the acknowledged state.
    await until(
      async () => (await send(b, 'POST', '/integrations', { id: 'after', name: 'After' })).status === 201,
      10_000,
    );
    // A node answers 503 until it has read the store again (it acts on no data Redis lost).
    let again = await send(
      a,
      'PUT',
      '/integrations/keep-0',
      { name: 'Again' },
      { 'if-match': acknowledged.get('keep-0')! },
    );
    for (let i = 0; again.status === 503 && i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      again = await send(
        a,
        'PUT',
        '/integrations/keep-0',
        { name: 'Again' },
        { 'if-match': acknowledged.get('keep-0')! },
      );
    }
    expect(again.status).toBe(200);
    // A node started now sees every acknowledged integration, with the same ETags.
    const c = await startNode(prefix);
    for (const [id, etag] of acknowledged) {
      if (id === 'keep-0') continue;
      expect(c.server.integrations.get(id)?.etag).toBe(etag);
    }
    expect(c.server.integrations.get('keep-0')?.name).toBe('Again');
    expect(c.server.integrations.get('after')).toBeDefined();
    expect(c.server.integrations.get('lost')).toBeUndefined();
  }, 30_000);
});

describe('a node started while Redis is down', () => {
  it('starts, refuses integration writes with 503, and reads the store once Redis is back', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    expect((await send(a, 'POST', '/integrations', { id: 'early', name: 'Early' })).status).toBe(201);
    await redis.stop();
    let late: Node;
    try {
      const state = redisState({ url: redis.url, prefix, commandTimeoutMs: 500 });
      const server = createMcpServer({
        state,
        logLevel: 'silent',
        integrations: { cipher: createAesGcmCipher(KEY) },
      });
      const listening = await listen(server, { port: 0, websocket: false });
      cleanups.push(async () => {
        await listening.close();
        await server.close();
      });
      await server.integrations.ready;
      late = { server, listening, state, url: listening.url };
      expect(server.integrations.get('early')).toBeUndefined();
      const refused = await send(late, 'POST', '/integrations', { id: 'x', name: 'X' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
    } finally {
      await redis.start();
    }
    await until(
      async () => (await send(late, 'POST', '/integrations', { id: 'x', name: 'X' })).status === 201,
      10_000,
    );
    await until(() => late.server.integrations.get('early') !== undefined, 10_000);
    await until(() => a.server.integrations.get('x') !== undefined, 10_000);
  }, 30_000);
});

describe('REST catalog writes shared through Redis', () => {
  it('registers on every node what POST /tools, /resources and /prompts add on one, and removes it everywhere', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const client = await mcpClient(a);
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      changed++;
    });
    for (let i = 0; changed === 0; i++) {
      a.server.tools.register({ name: `warm-${i}`, handler: () => 'x' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const before = changed;
    const tool = { name: 'shout', kind: 'chain', steps: [{ tool: 'echo', args: { text: 'hi' } }] };
    expect((await send(b, 'POST', '/tools', tool)).status).toBe(201);
    await until(() => changed > before);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('shout');
    const called = await client.callTool({ name: 'shout', arguments: {} });
    expect(JSON.stringify(called.content)).toContain('echo hi');

    expect(
      (await send(a, 'POST', '/resources', { uri: 'memo://one', name: 'one', text: 'from A' })).status,
    ).toBe(201);
    expect(
      (
        await send(b, 'POST', '/prompts', {
          name: 'greet',
          messages: [{ role: 'user', content: 'Hi {{who}}' }],
        })
      ).status,
    ).toBe(201);
    await until(async () => (await send(b, 'GET', '/resources/memo%3A%2F%2Fone')).status === 200);
    expect((await (await send(b, 'GET', '/resources/memo%3A%2F%2Fone')).json()).contents[0].text).toBe(
      'from A',
    );
    await until(() => a.server.prompts.get('greet') !== undefined);

    // A name added on one node is taken on every node.
    expect((await send(a, 'POST', '/tools', tool)).status).toBe(409);
    // An entry registered in code is each node's own: REST cannot remove it with shared state.
    const refused = await send(a, 'DELETE', '/tools/echo');
    expect(refused.status).toBe(409);
    expect((await refused.json()).detail).toMatch(/not added over REST/);
    expect(a.server.tools.get('echo')).toBeDefined();

    expect((await send(a, 'DELETE', '/tools/shout')).status).toBe(204);
    expect((await send(b, 'DELETE', '/prompts/greet')).status).toBe(204);
    expect((await send(b, 'DELETE', '/resources/memo%3A%2F%2Fone')).status).toBe(204);
    await until(
      () =>
        b.server.tools.get('shout') === undefined &&
        a.server.prompts.get('greet') === undefined &&
        a.server.resources.resolve('memo://one') === undefined,
    );
    expect((await send(b, 'DELETE', '/tools/shout')).status).toBe(404);
  });

  it('lets exactly one of two nodes adding one name win, and both end with the winner', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    for (let round = 0; round < 15; round++) {
      const name = `p${round}`;
      const [ra, rb] = await Promise.all([
        send(a, 'POST', '/prompts', { name, messages: [{ role: 'user', content: 'from A' }] }),
        send(b, 'POST', '/prompts', { name, messages: [{ role: 'user', content: 'from B' }] }),
      ]);
      expect([ra.status, rb.status].sort()).toEqual([201, 409]);
      const winner = ra.status === 201 ? 'from A' : 'from B';
      await until(
        () =>
          JSON.stringify(a.server.prompts.get(name) ?? null) !== 'null' &&
          JSON.stringify(b.server.prompts.get(name) ?? null) !== 'null',
      );
      for (const node of [a, b]) {
        const rendered = await send(node, 'POST', `/prompts/${name}/generate`, { arguments: {} });
        expect(JSON.stringify(await rendered.json())).toContain(winner);
      }
    }
  });

  it('answers 503 while Redis is down and keeps every entry added before across a restart', async () => {
    const prefix = freshPrefix();
    const a = await startNode(prefix);
    const b = await startNode(prefix);
    const tool = (name: string) => ({ name, kind: 'chain', steps: [{ tool: 'echo' }] });
    expect((await send(a, 'POST', '/tools', tool('kept-a'))).status).toBe(201);
    expect((await send(b, 'POST', '/tools', tool('kept-b'))).status).toBe(201);
    await until(
      () => a.server.tools.get('kept-b') !== undefined && b.server.tools.get('kept-a') !== undefined,
    );
    await redis.stop();
    try {
      const refused = await send(a, 'POST', '/tools', tool('refused'));
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(a.server.tools.get('refused')).toBeUndefined();
      expect((await send(b, 'DELETE', '/tools/kept-a')).status).toBe(503);
      expect(b.server.tools.get('kept-a')).toBeDefined();
    } finally {
      await redis.start();
    }
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    await until(async () => (await raw.hlen(`${prefix}catalog`)) === 2, 10_000);
    const c = await startNode(prefix);
    await until(
      () => c.server.tools.get('kept-a') !== undefined && c.server.tools.get('kept-b') !== undefined,
    );
    expect((await send(c, 'DELETE', '/tools/kept-a')).status).toBe(204);
    await until(
      () => a.server.tools.get('kept-a') === undefined && b.server.tools.get('kept-a') === undefined,
    );
  }, 30_000);
});
