/**
 * Three mcpkit nodes in child processes behind a per-request round-robin proxy, sharing one real
 * redis-server (test/support/cluster.ts): 2025-era sessions are served through any node (forwarded
 * to the node that holds them), a rate limit holds once across the three, a change made through one
 * node reaches subscribers of another over HTTP and WebSocket, the 2026-07-28 era and
 * `http.stateless` need no affinity, a killed owner's sessions answer 404 and clients start over,
 * Redis restarting is survived, resumable streams resume through another node, and a forged
 * forwarding header is refused.
 *
 * Size: over 400 lines because it is one suite over one cluster (three child processes and a Redis
 * that take seconds to start); split, each file would start its own.
 */
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, postMcp } from './fixtures.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { CLUSTER_EXECUTE_LIMIT, CLUSTER_KEYS } from './support/clusterServer.js';
import { rawPeer } from './websocketHelpers.js';

const MODULE = fileURLToPath(new URL('./support/clusterServer.ts', import.meta.url));
const info = { name: 'cluster-test', version: '1.0.0' };
const LEGACY = '2025-06-18';

let cluster: Cluster;
let redis: Redis;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  cluster = await startCluster(3, MODULE);
  redis = new Redis(cluster.redis.url);
  // The suite restarts Redis: this client reconnects by itself.
  redis.on('error', () => {});
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
}, 30_000);
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

type Who = keyof typeof CLUSTER_KEYS;
const bearer = (who: Who) => ({ authorization: `Bearer ${CLUSTER_KEYS[who]}` });

/** An SDK v2 client of `base` (the proxy, or one node), as `who`. */
async function v2(base: string, who: Who, options?: ConstructorParameters<typeof Client>[1]) {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: bearer(who) },
  });
  const client = new Client(info, options);
  await client.connect(transport);
  cleanups.push(() => client.close());
  return { client, transport };
}

const textOf = (result: unknown) => (result as { content: { text: string }[] }).content[0]!.text;

/** The node (by index) the session directory names as the owner of `sessionId`. */
async function ownerOf(sessionId: string): Promise<number> {
  const address = await redis.get(`${cluster.prefix}session:${sessionId}`);
  const index = cluster.nodes.findIndex((node) => node.url === address);
  expect(index).toBeGreaterThanOrEqual(0);
  return index;
}

/** Calls `attempt` until it resolves, for at most `ms`; the last failure otherwise. */
async function eventually<T>(attempt: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe('2025-era sessions through a round-robin proxy', { timeout: 30_000 }, () => {
  it('serve an SDK v2 session on every node without a 404: each request runs on the node holding it', async () => {
    const before = [...cluster.served];
    const { client, transport } = await v2(cluster.url, 'alice');
    expect(transport.sessionId).toBeDefined();
    const owner = await ownerOf(transport.sessionId!);
    const ran: string[] = [];
    for (let i = 0; i < 8; i++) {
      ran.push(textOf(await client.callTool({ name: 'whoami', arguments: {} })));
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('touch');
      await client.ping();
    }
    expect(new Set(ran)).toEqual(new Set([`node-${owner}`]));
    // The proxy spread the session's requests over all three nodes.
    for (let i = 0; i < 3; i++) expect(cluster.served[i]! - before[i]!).toBeGreaterThanOrEqual(5);
  });

  it('serve an SDK 1.x session the same way', async () => {
    const transport = new HttpV1(new URL(`${cluster.url}/mcp`), { requestInit: { headers: bearer('bob') } });
    const client = new ClientV1(info);
    await client.connect(transport);
    cleanups.push(() => client.close());
    expect(transport.sessionId).toBeDefined();
    const owner = await ownerOf(transport.sessionId!);
    for (let i = 0; i < 8; i++) {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      expect(textOf(result)).toBe(`node-${owner}`);
      expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['mem://doc']);
    }
  });

  it('refuse a forged forwarding header from outside with 403, credentials or not', async () => {
    const { transport } = await v2(cluster.nodes[0]!.url, 'alice');
    const sessionId = transport.sessionId!;
    const now = Math.floor(Date.now() / 1000);
    const forged = `v1.${now}.${btoa('203.0.113.9').replace(/=+$/, '')}.${btoa('http://127.0.0.1').replace(/=+$/, '')}.AAAA`;
    const body = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
    for (const node of cluster.nodes) {
      for (const headers of [{ ...bearer('alice') }, {}]) {
        const res = await postMcp(`${node.url}/mcp`, body, {
          ...headers,
          'mcp-session-id': sessionId,
          'mcp-protocol-version': LEGACY,
          'mcpkit-forwarded': forged,
        });
        expect(res.status).toBe(403);
        expect(await res.json()).toMatchObject({ error: { message: expect.stringMatching(/forwarding/) } });
      }
    }
    // Without credentials, a session on another node is refused by the node asked (never forwarded).
    const res = await postMcp(`${cluster.nodes[1]!.url}/mcp`, body, {
      'mcp-session-id': sessionId,
      'mcp-protocol-version': LEGACY,
    });
    expect(res.status).toBe(401);
    // Another caller's credentials reach the owner, which does not know the session for them.
    const other = await postMcp(`${cluster.nodes[1]!.url}/mcp`, body, {
      ...bearer('carol'),
      'mcp-session-id': sessionId,
      'mcp-protocol-version': LEGACY,
    });
    expect(other.status).toBe(404);
  });
});

describe('shared state across the three nodes', { timeout: 30_000 }, () => {
  it('enforces a rate limit once across the three (2026-07-28 requests land on every node)', async () => {
    const { client, transport } = await v2(cluster.url, 'metered', { versionNegotiation: { mode: 'auto' } });
    expect(transport.sessionId).toBeUndefined();
    const outcomes: string[] = [];
    for (let i = 0; i < CLUSTER_EXECUTE_LIMIT + 6; i++) {
      try {
        outcomes.push(textOf(await client.callTool({ name: 'whoami', arguments: {} })));
      } catch (error) {
        outcomes.push(`refused ${(error as { code?: number }).code}`);
      }
    }
    const served = outcomes.filter((o) => o.startsWith('node-'));
    expect(served).toHaveLength(CLUSTER_EXECUTE_LIMIT);
    expect(new Set(served).size).toBe(3);
    expect(outcomes.slice(CLUSTER_EXECUTE_LIMIT)).toEqual(Array(6).fill('refused -32029'));
  });

  it('needs no affinity in the 2026-07-28 era: any node answers any request', async () => {
    const { client, transport } = await v2(cluster.url, 'dave', { versionNegotiation: { mode: 'auto' } });
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(transport.sessionId).toBeUndefined();
    const ran = [];
    for (let i = 0; i < 6; i++) {
      ran.push(textOf(await client.callTool({ name: 'whoami', arguments: {} })));
      await client.listTools();
    }
    expect(new Set(ran)).toEqual(new Set(['node-0', 'node-1', 'node-2']));
  });

  it('notifies a subscriber on node A of a change made through node C over HTTP', async () => {
    const { client: onA } = await v2(cluster.nodes[0]!.url, 'carol');
    const heard: string[] = [];
    onA.setNotificationHandler('notifications/resources/updated', (n) => {
      heard.push(n.params.uri);
    });
    await onA.subscribeResource({ uri: 'mem://doc' });
    const { client: onC } = await v2(cluster.nodes[2]!.url, 'carol');
    // The client's GET stream opens after initialize: touch until it has heard (at most a few times).
    await eventually(async () => {
      expect(textOf(await onC.callTool({ name: 'touch', arguments: {} }))).toBe('touched on node-2');
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(heard).toContain('mem://doc');
    }, 5_000);
  });

  it('notifies a WebSocket subscriber on node A of a change made through node C', async () => {
    const peer = await rawPeer(`${cluster.nodes[0]!.url.replace(/^http/, 'ws')}/mcp`, {
      headers: bearer('dave'),
    });
    cleanups.push(async () => peer.socket.close());
    expect(await peer.request('resources/subscribe', { uri: 'mem://ws-doc' })).toMatchObject({ result: {} });
    const heard = peer.next((m) => m.method === 'notifications/resources/updated');
    const { client: onC } = await v2(cluster.nodes[2]!.url, 'dave');
    await onC.callTool({ name: 'touch', arguments: { uri: 'mem://ws-doc' } });
    expect(await heard).toMatchObject({ params: { uri: 'mem://ws-doc' } });
  });
});

describe('catalog and integration writes across the three nodes', { timeout: 30_000 }, () => {
  const send = (index: number, method: string, path: string, body?: unknown, headers = {}) =>
    fetch(`${cluster.nodes[index]!.url}${path}`, {
      method,
      headers: {
        ...bearer('erin'),
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });

  it("lists on node A a resource added over REST on node B, with list_changed to A's client", async () => {
    const { client: onA } = await v2(cluster.nodes[0]!.url, 'erin');
    let changed = 0;
    onA.setNotificationHandler('notifications/resources/list_changed', () => {
      changed++;
    });
    // The client's GET stream opens after initialize: wait until it is there to hear the change.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const added = await send(1, 'POST', '/resources', {
      uri: 'memo://from-b',
      name: 'from-b',
      text: 'made on B',
    });
    expect(added.status).toBe(201);
    await eventually(async () => {
      const { resources } = await onA.listResources();
      expect(resources.map((r) => r.uri)).toContain('memo://from-b');
      expect(changed).toBeGreaterThan(0);
    });
    const read = await onA.readResource({ uri: 'memo://from-b' });
    expect((read.contents[0] as { text: string }).text).toBe('made on B');
    // Removed on C: gone from A too.
    expect((await send(2, 'DELETE', `/resources/${encodeURIComponent('memo://from-b')}`)).status).toBe(204);
    await eventually(async () => {
      const { resources } = await onA.listResources();
      expect(resources.map((r) => r.uri)).not.toContain('memo://from-b');
    });
  });

  it('serves on node A an integration edited on node B, and lets one of two racing If-Match writes win', async () => {
    const created = await send(0, 'POST', '/integrations', {
      id: 'shared',
      name: 'Shared',
      secrets: { token: 'sk-cluster-secret-token' },
      resources: [{ name: 'readme', text: 'first' }],
    });
    expect(created.status).toBe(201);
    const etag = created.headers.get('etag')!;
    const edited = await send(
      1,
      'PUT',
      '/integrations/shared',
      { name: 'Shared', resources: [{ name: 'readme', text: 'second' }] },
      { 'if-match': etag },
    );
    expect(edited.status).toBe(200);
    const fresh = edited.headers.get('etag')!;
    await eventually(async () => {
      const onA = await send(0, 'GET', '/integrations/shared');
      expect(onA.headers.get('etag')).toBe(fresh);
      expect(JSON.stringify(await onA.json())).toContain('second');
    });
    // The secret stays sealed in Redis.
    const stored = await redis.hget(`${cluster.prefix}integrations`, 'shared');
    expect(stored).not.toContain('sk-cluster-secret-token');
    // Racing conditional writes on B and C: exactly one wins, the other is told the winner's tag.
    for (let round = 0; round < 5; round++) {
      const current = (await send(0, 'GET', '/integrations/shared')).headers.get('etag')!;
      const answers = await Promise.all(
        [1, 2].map((node) =>
          send(
            node,
            'PUT',
            '/integrations/shared',
            { name: `Node ${node} round ${round}` },
            { 'if-match': current },
          ),
        ),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([200, 412]);
    }
    expect((await send(2, 'DELETE', '/integrations/shared')).status).toBe(204);
  });
});

describe('Redis restarting', { timeout: 30_000 }, () => {
  it('recovers when Redis restarts mid-run: the same session goes on through every node', async () => {
    const { client, transport } = await v2(cluster.url, 'erin');
    const sessionId = transport.sessionId!;
    const owner = await ownerOf(sessionId);
    await client.listTools();
    await cluster.redis.stop();
    await cluster.redis.start();
    // The owner writes its sessions back as soon as it reconnects; until then a call may get 503.
    await eventually(async () => {
      expect(await redis.get(`${cluster.prefix}session:${sessionId}`)).toBe(cluster.nodes[owner]!.url);
      expect(textOf(await client.callTool({ name: 'whoami', arguments: {} }))).toBe(`node-${owner}`);
    });
    for (let i = 0; i < 4; i++) expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  }, 30_000);
});

/** Reads SSE events from `res` until `done` says so; returns them (id and data). */
async function readEvents(
  res: Response,
  done: (events: { id?: string; data: string }[]) => boolean,
): Promise<{ id?: string; data: string }[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: { id?: string; data: string }[] = [];
  let buffer = '';
  const timer = setTimeout(() => void reader.cancel(), 5_000);
  try {
    while (!done(events)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf('\n\n');
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = /^data: ?(.*)$/m.exec(block)?.[1] ?? '';
        if (id !== undefined || data !== '') events.push({ ...(id !== undefined && { id }), data });
        cut = buffer.indexOf('\n\n');
      }
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  return events;
}

describe('resumable streams and a killed owner', { timeout: 30_000 }, () => {
  it('resumes a dropped GET stream through another node with Last-Event-ID, its events kept in Redis', async () => {
    const headers = { ...bearer('carol'), 'mcp-protocol-version': LEGACY };
    const init = await postMcp(
      `${cluster.nodes[0]!.url}/mcp`,
      {
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: info },
      },
      bearer('carol'),
    );
    const sessionId = init.headers.get('mcp-session-id')!;
    expect(sessionId).toBeTruthy();
    await messagesOf(init);
    const session = { ...headers, 'mcp-session-id': sessionId };
    const via = (i: number) => `${cluster.nodes[i]!.url}/mcp`;
    expect(
      (await postMcp(via(1), { jsonrpc: '2.0', method: 'notifications/initialized' }, session)).status,
    ).toBe(202);
    const subscribed = await postMcp(
      via(1),
      { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'mem://resume' } },
      session,
    );
    expect((await messagesOf(subscribed))[0]).toMatchObject({ id: 1, result: {} });
    const touch = async (id: number) => {
      const touched = await postMcp(
        via(2),
        {
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: 'touch', arguments: { uri: 'mem://resume' } },
        },
        session,
      );
      expect((await messagesOf(touched)).at(-1)).toMatchObject({ id, result: {} });
    };
    // The stream opens through node 1 (forwarded to node 0), hears one update, and drops.
    const stream = await fetch(via(1), { headers: { ...session, accept: 'text/event-stream' } });
    expect(stream.status).toBe(200);
    await touch(10);
    const [seen] = await readEvents(stream, (events) => events.length >= 1);
    expect(seen?.data).toContain('mem://resume');
    expect(seen?.id).toBeTruthy();
    // While it is down, two more updates are made through node 2.
    await touch(11);
    await touch(12);
    const keys = await redis.keys(`${cluster.prefix}ev:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(await redis.pttl(keys[0]!)).toBeGreaterThan(0);
    // Resumed through node 2: both updates are replayed.
    const resumed = await fetch(via(2), {
      headers: { ...session, accept: 'text/event-stream', 'last-event-id': seen!.id! },
    });
    expect(resumed.status).toBe(200);
    const replayed = await readEvents(
      resumed,
      (events) => events.filter((e) => e.data.includes('resources/updated')).length >= 2,
    );
    expect(replayed.filter((e) => e.data.includes('mem://resume'))).toHaveLength(2);

    // The owner is killed: the session dies with it, on every node; its events are of no use now.
    await cluster.kill(0);
    for (const i of [1, 2]) {
      const gone = await fetch(via(i), {
        headers: { ...session, accept: 'text/event-stream', 'last-event-id': seen!.id! },
      });
      expect(gone.status).toBe(404);
      expect(await gone.json()).toMatchObject({ error: { code: -32001, message: 'Session not found' } });
    }
    // The dead owner's record is gone from the directory.
    expect(await redis.get(`${cluster.prefix}session:${sessionId}`)).toBeNull();
  }, 30_000);

  it('answers 404 for the sessions of a SIGKILLed owner on the other nodes, and the client starts over', async () => {
    // Node 0 is gone; open sessions until one lands on node 1, then kill node 1.
    let first: Awaited<ReturnType<typeof v2>> | undefined;
    for (let i = 0; i < 8 && !first; i++) {
      const opened = await v2(cluster.url, 'bob');
      if ((await ownerOf(opened.transport.sessionId!)) === 1) first = opened;
    }
    expect(first).toBeDefined();
    expect(textOf(await first!.client.callTool({ name: 'whoami', arguments: {} }))).toBe('node-1');
    await cluster.kill(1);
    await expect(first!.client.listTools()).rejects.toThrow(/Session not found/);
    const again = await v2(cluster.url, 'bob');
    expect(await ownerOf(again.transport.sessionId!)).toBe(2);
    expect(textOf(await again.client.callTool({ name: 'whoami', arguments: {} }))).toBe('node-2');
  }, 30_000);
});

describe('http.stateless behind the proxy', { timeout: 30_000 }, () => {
  it('needs no affinity: 2025-era requests without sessions land on every node', async () => {
    const stateless = await startCluster(3, MODULE, {
      redis: cluster.redis,
      env: { CLUSTER_STATELESS: '1' },
    });
    cleanups.push(() => stateless.stop());
    const ran = [];
    for (let i = 0; i < 6; i++) {
      const res = await postMcp(
        `${stateless.url}/mcp`,
        { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
        { ...bearer('carol'), 'mcp-protocol-version': LEGACY },
      );
      expect(res.headers.get('mcp-session-id')).toBeNull();
      ran.push((await messagesOf(res))[0].result.content[0].text);
    }
    expect(new Set(ran)).toEqual(new Set(['node-0', 'node-1', 'node-2']));
  }, 60_000);
});
