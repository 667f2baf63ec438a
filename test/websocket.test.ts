/**
 * MCP over WebSocket on real sockets (port 0): the SDK 1.x `WebSocketClientTransport` and the SDK v2
 * `Client` over mcpkit's client transport, then the faults the door must survive.
 */
import { createServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport as WebSocketV1 } from '@modelcontextprotocol/sdk/client/websocket.js';
import {
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { CallerIdentity, McpKitServer } from 'mcpkit';
import {
  type AttachWebSocketOptions,
  attachWebSocket,
  type Listening,
  listen,
  toNodeListener,
  type WebSocketAttachment,
  WebSocketClientTransport,
  type WebSocketServerTransport,
} from 'mcpkit/node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { deferred, fixtureServer } from './fixtures.js';
import { closeOf, openRaw, rawPeer, refusedStatus } from './websocketHelpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fixture server with tools for cancellation, large results and blocking, listening on port 0. */
async function start(options: { websocket?: AttachWebSocketOptions; server?: McpKitServer } = {}) {
  const server = options.server ?? fixtureServer();
  const aborted = deferred<string>();
  const started = deferred();
  const gates: Array<() => void> = [];
  server.tools.register({
    name: 'wait_for_cancel',
    description: 'Runs until cancelled',
    handler: (_args, ctx) =>
      new Promise((_resolve, reject) => {
        started.resolve();
        ctx.signal.addEventListener('abort', () => {
          aborted.resolve(String(ctx.signal.reason ?? 'aborted'));
          reject(new Error('cancelled'));
        });
      }),
  });
  server.tools.register({
    name: 'big',
    description: 'Returns about 1 MiB of text',
    handler: () => 'x'.repeat(1024 * 1024),
  });
  server.tools.register({
    name: 'gate',
    description: 'Waits until the test opens the gate',
    handler: () => new Promise<string>((resolve) => gates.push(() => resolve('opened'))),
  });
  server.tools.register({
    name: 'whoami',
    description: 'The caller id',
    handler: (_args, ctx) => ctx.caller?.id ?? 'anonymous',
  });
  const connections: Array<{ transport: WebSocketServerTransport; request: IncomingMessage }> = [];
  const connected = new Set<(c: { transport: WebSocketServerTransport; request: IncomingMessage }) => void>();
  const listening: Listening = await listen(server, {
    port: 0,
    websocket: {
      ...options.websocket,
      onConnection: (transport, request) => {
        const entry = { transport, request };
        connections.push(entry);
        for (const c of connected) c(entry);
      },
    },
  });
  cleanups.push(() => listening.close());
  const url = `${listening.url.replace(/^http/, 'ws')}/mcp`;
  /** The server side of the next connection whose upgrade carried `x-test: tag`. */
  const serverSide = (tag: string) =>
    new Promise<WebSocketServerTransport>((resolve) => {
      const found = connections.find((c) => c.request.headers['x-test'] === tag);
      if (found) return resolve(found.transport);
      const watch = (c: { transport: WebSocketServerTransport; request: IncomingMessage }) => {
        if (c.request.headers['x-test'] !== tag) return;
        connected.delete(watch);
        resolve(c.transport);
      };
      connected.add(watch);
    });
  return {
    server,
    listening,
    url,
    attachment: listening.websocket!,
    aborted: aborted.promise,
    started: started.promise,
    openGates: () => {
      for (const open of gates.splice(0)) open();
    },
    gateCount: () => gates.length,
    serverSide,
  };
}

/** What both SDK generations' clients offer for what we exercise. */
interface AnyClient {
  listTools(): Promise<{ tools: Array<{ name: string }> }>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<any>;
  subscribeResource(params: { uri: string }): Promise<unknown>;
  close(): Promise<void>;
}

interface Harness {
  connect(url: string): Promise<AnyClient>;
  onUpdated(client: AnyClient, listener: (uri: string) => void): void;
  onToolsChanged(client: AnyClient, listener: () => void): void;
  callWithSignal(client: AnyClient, name: string, signal: AbortSignal): Promise<unknown>;
}

const info = { name: 'ws-test', version: '1.0.0' };

const v1: Harness = {
  async connect(url) {
    // Node 20 has no global WebSocket: the 1.x transport gets ws's for the time of its start().
    const g = globalThis as { WebSocket?: unknown };
    const previous = g.WebSocket;
    g.WebSocket = WebSocket;
    try {
      const client = new ClientV1(info);
      await client.connect(new WebSocketV1(new URL(url)));
      return client as unknown as AnyClient;
    } finally {
      g.WebSocket = previous;
    }
  },
  onUpdated(client, listener) {
    (client as unknown as ClientV1).setNotificationHandler(ResourceUpdatedNotificationSchema, (n) =>
      listener(n.params.uri),
    );
  },
  onToolsChanged(client, listener) {
    (client as unknown as ClientV1).setNotificationHandler(ToolListChangedNotificationSchema, () =>
      listener(),
    );
  },
  callWithSignal(client, name, signal) {
    return (client as unknown as ClientV1).callTool({ name }, undefined, { signal });
  },
};

const v2 = (clientOptions?: ConstructorParameters<typeof ClientV2>[1]): Harness => ({
  async connect(url) {
    const client = new ClientV2(info, clientOptions);
    await client.connect(new WebSocketClientTransport(url));
    return client as unknown as AnyClient;
  },
  onUpdated(client, listener) {
    (client as unknown as ClientV2).setNotificationHandler('notifications/resources/updated', (n) =>
      listener(n.params.uri),
    );
  },
  onToolsChanged(client, listener) {
    (client as unknown as ClientV2).setNotificationHandler('notifications/tools/list_changed', () =>
      listener(),
    );
  },
  callWithSignal(client, name, signal) {
    return (client as unknown as ClientV2).callTool({ name }, { signal });
  },
});

describe.each([
  ['SDK 1.x WebSocketClientTransport', v1],
  ['SDK v2 Client over WebSocketClientTransport', v2()],
] as const)('%s', (_name, harness) => {
  it('connects, lists tools and calls them', async () => {
    const { url, server } = await start();
    const client = await harness.connect(url);
    cleanups.push(() => client.close());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['add', 'echo', 'boom']));
    const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    expect(sum.structuredContent).toEqual({ sum: 42 });
    const boom = await client.callTool({ name: 'boom' });
    expect(boom.isError).toBe(true);
    expect(JSON.stringify(boom)).not.toContain('/home/app');
    expect(server.connectionCounts().connections.websocket).toBe(1);
  });

  it('receives a resource update after resources/subscribe', async () => {
    const { url, server } = await start();
    const client = await harness.connect(url);
    cleanups.push(() => client.close());
    const updated = deferred<string>();
    harness.onUpdated(client, (uri) => updated.resolve(uri));
    await client.subscribeResource({ uri: 'fixture://greeting' });
    server.resources.notifyUpdated('fixture://greeting');
    expect(await updated.promise).toBe('fixture://greeting');
  });

  it('receives tools/list_changed when the catalog changes', async () => {
    const { url, server } = await start();
    const client = await harness.connect(url);
    cleanups.push(() => client.close());
    const changed = deferred();
    harness.onToolsChanged(client, () => changed.resolve());
    server.tools.register({ name: 'late', description: 'Registered later', handler: () => 'late' });
    await changed.promise;
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('late');
  });

  it('cancels a call: the AbortSignal reaches the handler', async () => {
    const { url, aborted, started } = await start();
    const client = await harness.connect(url);
    cleanups.push(() => client.close());
    const controller = new AbortController();
    const call = harness.callWithSignal(client, 'wait_for_cancel', controller.signal);
    call.catch(() => {});
    await started;
    controller.abort('user pressed stop');
    await expect(call).rejects.toThrow();
    expect(await aborted).toBeTruthy();
    // the connection is still usable, and the cancelled request freed its in-flight slot
    const sum = await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
    expect(sum.structuredContent).toEqual({ sum: 2 });
  });
});

describe('SDK v2 Client in the 2026-07-28 era over WebSocket', () => {
  it('negotiates the modern era and lists and calls tools', async () => {
    const { url } = await start();
    const client = await v2({ versionNegotiation: { mode: 'auto' } }).connect(url);
    cleanups.push(() => client.close());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('add');
    const sum = await client.callTool({ name: 'add', arguments: { a: 3, b: 4 } });
    expect(sum.structuredContent).toEqual({ sum: 7 });
  });
});

describe('a tool over WebSocket reaches its client as over any transport', () => {
  it('sends its log messages and progress, and samples the client (regression: the door lost them)', async () => {
    const server = fixtureServer();
    server.tools.register({
      name: 'chatty',
      handler: async (_args, ctx) => {
        await ctx.log.info('working');
        await ctx.progress(1, 2);
        const sampled = await ctx.sample({
          messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }],
          maxTokens: 5,
        });
        return `sampled: ${(sampled.content as { text: string }).text}`;
      },
    });
    const { url } = await start({ server });
    const client = new ClientV2(info, { capabilities: { sampling: {} } });
    client.setRequestHandler('sampling/createMessage', async () => ({
      role: 'assistant',
      model: 'loopback',
      content: { type: 'text', text: 'hello back' },
    }));
    const logged: unknown[] = [];
    client.setNotificationHandler('notifications/message', (n) => {
      logged.push(n.params.data);
    });
    await client.connect(new WebSocketClientTransport(url));
    cleanups.push(() => client.close());
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'chatty' },
      { onprogress: (p: { progress: number }) => progress.push(p.progress) },
    );
    expect(result.content).toEqual([{ type: 'text', text: 'sampled: hello back' }]);
    expect(logged).toEqual(['working']);
    expect(progress).toEqual([1]);
  });
});

describe('the upgrade', () => {
  it('echoes the mcp subprotocol', async () => {
    const { url } = await start();
    const socket = await openRaw(url, { protocols: ['other', 'mcp'] });
    cleanups.push(() => socket.terminate());
    expect(socket.protocol).toBe('mcp');
  });

  it('refuses a foreign Origin with 403 before upgrading', async () => {
    const { url, attachment } = await start();
    const refused = await refusedStatus(url, { origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32003 }, id: null });
    expect(attachment.connections).toBe(0);
    // a loopback Origin is fine
    const socket = await openRaw(url, { origin: 'http://localhost:5173' });
    socket.terminate();
  });

  it('refuses a foreign Host with 403 (DNS rebinding)', async () => {
    const { url } = await start();
    const refused = await refusedStatus(url, { headers: { host: 'evil.example' } });
    expect(refused.status).toBe(403);
  });

  it('refuses a wrong or missing subprotocol with 400', async () => {
    const { url } = await start();
    expect((await refusedStatus(url, { protocols: ['graphql-ws'] })).status).toBe(400);
    expect((await refusedStatus(url, { protocols: [] })).status).toBe(400);
  });

  it('accepts no subprotocol when requireSubprotocol is false', async () => {
    const { url } = await start({ websocket: { requireSubprotocol: false } });
    const socket = await openRaw(url, { protocols: [] });
    cleanups.push(() => socket.terminate());
    expect(socket.protocol).toBe('');
    expect((await refusedStatus(url, { protocols: ['graphql-ws'] })).status).toBe(400);
  });

  it("admits upgrades with the server's own auth: its verify hook refuses (401) or names the caller", async () => {
    const verify = vi.fn(async (request: Request): Promise<CallerIdentity | false> => {
      const key = request.headers.get('authorization');
      if (key === 'Bearer boom') throw new Error('store down');
      return key === 'Bearer good' ? { id: 'alice', roles: ['admin'] } : false;
    });
    const { url } = await start({ server: fixtureServer({ auth: { verify } }) });
    expect((await refusedStatus(url)).status).toBe(401);
    // A hook that throws refuses like a failed credential, on the upgrade as on any HTTP request.
    expect((await refusedStatus(url, { headers: { authorization: 'Bearer boom' } })).status).toBe(401);
    const client = new ClientV2(info);
    await client.connect(new WebSocketClientTransport(url, { headers: { authorization: 'Bearer good' } }));
    cleanups.push(() => client.close());
    const result = await client.callTool({ name: 'whoami' });
    expect(result.content).toEqual([{ type: 'text', text: 'alice' }]);
    expect(verify).toHaveBeenCalledTimes(3);
    expect(verify.mock.calls[2]![0]).toBeInstanceOf(Request);
  });

  it('leaves other paths to other upgrade listeners, and answers 404 when there are none', async () => {
    const server = fixtureServer();
    const httpServer = createServer(toNodeListener((r) => server.fetch(r)));
    const attachment = await attachWebSocket(httpServer, server);
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => closeHttp(httpServer, attachment, server));
    const base = `ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    expect((await refusedStatus(`${base}/elsewhere`)).status).toBe(404);

    const { WebSocketServer } = await import('ws');
    const other = new WebSocketServer({ noServer: true });
    httpServer.on('upgrade', (req, socket, head) => {
      if (req.url === '/chat') other.handleUpgrade(req, socket, head, (s) => s.send('hello from chat'));
    });
    const chat = new WebSocket(`${base}/chat`);
    const greeting = await new Promise<string>((resolve) => chat.once('message', (d) => resolve(String(d))));
    expect(greeting).toBe('hello from chat');
    chat.terminate();
    other.close();
    const peer = await rawPeer(`${base}/mcp`);
    expect((await peer.request('tools/list')).result.tools.length).toBeGreaterThan(0);
    peer.socket.terminate();
  });

  it('is off with listen({ websocket: false })', async () => {
    const server = fixtureServer();
    const listening = await listen(server, { port: 0, websocket: false });
    cleanups.push(() => listening.close());
    expect(listening.websocket).toBeUndefined();
    const refused = await refusedStatus(`${listening.url.replace(/^http/, 'ws')}/mcp`);
    expect(refused.status).not.toBe(101);
  });
});

describe('messages', () => {
  it('answers malformed JSON with a parse error and keeps the connection', async () => {
    const { url } = await start();
    const peer = await rawPeer(url);
    cleanups.push(() => peer.socket.terminate());
    const parseError = peer.next((m) => m.error?.code === -32700);
    peer.send('{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(await parseError).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    const invalid = peer.next((m) => m.error?.code === -32600);
    peer.send('[1, 2, 3]');
    expect(await invalid).toMatchObject({ id: null, error: { code: -32600 } });
    const response = await peer.request('tools/call', { name: 'add', arguments: { a: 1, b: 2 } });
    expect(response.result.structuredContent).toEqual({ sum: 3 });
  });

  it('answers requests the SDK would drop unanswered with -32600, and keeps their slots free (regression)', async () => {
    const { url } = await start({ websocket: { maxInFlight: 2 } });
    const peer = await rawPeer(url);
    cleanups.push(() => peer.socket.terminate());
    const invalid = [
      { id: 2.5, params: { name: 'add', arguments: { a: 1, b: 2 } } },
      { id: 'p', params: { name: 'add', arguments: { a: 1, b: 2 }, _meta: { progressToken: { a: 1 } } } },
      { id: 'q', params: ['add'] },
    ];
    for (const { id, params } of invalid) {
      const answered = peer.next((m) => m.id === id);
      peer.send({ jsonrpc: '2.0', id, method: 'tools/call', params });
      expect(await answered).toMatchObject({ jsonrpc: '2.0', id, error: { code: -32600 } });
    }
    const response = await peer.request('tools/call', { name: 'add', arguments: { a: 1, b: 2 } });
    expect(response.result.structuredContent).toEqual({ sum: 3 });
  });

  it('closes with 1003 on a binary frame', async () => {
    const { url } = await start();
    const peer = await rawPeer(url);
    const closed = closeOf(peer.socket);
    peer.socket.send(Buffer.from('{"jsonrpc":"2.0","id":9,"method":"ping"}'), { binary: true });
    expect((await closed).code).toBe(1003);
  });

  it('closes with 1009 on a frame over maxPayloadBytes while other sockets keep working', async () => {
    const { url, attachment } = await start({ websocket: { maxPayloadBytes: 4096 } });
    const bystander = await rawPeer(url);
    const offender = await rawPeer(url);
    cleanups.push(() => bystander.socket.terminate());
    const closed = closeOf(offender.socket);
    offender.send({
      jsonrpc: '2.0',
      id: 99,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'x'.repeat(8192) } },
    });
    expect((await closed).code).toBe(1009);
    const response = await bystander.request('tools/call', {
      name: 'echo',
      arguments: { text: 'still here' },
    });
    expect(response.result.content).toEqual([{ type: 'text', text: 'still here' }]);
    await vi.waitFor(() => expect(attachment.connections).toBe(1));
  });

  it('answers requests past maxInFlight with -32005 and serves them again once slots free', async () => {
    const { url, openGates, gateCount } = await start({ websocket: { maxInFlight: 2 } });
    const peer = await rawPeer(url);
    cleanups.push(() => peer.socket.terminate());
    const first = peer.request('tools/call', { name: 'gate' });
    const second = peer.request('tools/call', { name: 'gate' });
    const third = await peer.request('tools/call', { name: 'gate' });
    expect(third.error).toMatchObject({ code: -32005 });
    expect(third.error.message).toMatch(/in flight/);
    await vi.waitFor(() => expect(gateCount()).toBe(2));
    openGates();
    expect((await first).result.content[0].text).toBe('opened');
    expect((await second).result.content[0].text).toBe('opened');
    const fourth = await peer.request('tools/call', { name: 'add', arguments: { a: 2, b: 2 } });
    expect(fourth.result.structuredContent).toEqual({ sum: 4 });
  });
});

describe('limits', () => {
  it('closes a client that stops reading (1008) while 100 others keep working', async () => {
    const { url, serverSide } = await start({
      websocket: { maxBufferedBytes: 256 * 1024, maxInFlight: 1000, heartbeatMs: 0 },
    });
    const others = await Promise.all(Array.from({ length: 100 }, () => rawPeer(url)));
    cleanups.push(() => {
      for (const p of others) p.socket.terminate();
    });
    const slow = await rawPeer(url, { headers: { 'x-test': 'slow' } });
    cleanups.push(() => slow.socket.terminate());
    const transport = await serverSide('slow');
    let closedInfo: { code: number; reason: string } | undefined;
    void transport.closed.then((i) => {
      closedInfo = i;
    });
    // Stop reading, then ask for 1 MiB results until the server gives up on this client.
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    let sent = 0;
    while (!closedInfo && sent < 400) {
      slow.send({ jsonrpc: '2.0', id: `big-${sent++}`, method: 'tools/call', params: { name: 'big' } });
      if (sent % 10 === 0) await Promise.race([transport.closed, new Promise((r) => setImmediate(r))]);
    }
    const info = await transport.closed;
    expect(info.code).toBe(1008);
    expect(transport.bufferedAmount).toBeLessThan(64 * 1024 * 1024);
    const answers = await Promise.all(
      others.map((p, i) => p.request('tools/call', { name: 'add', arguments: { a: i, b: 1 } })),
    );
    expect(answers.map((a) => a.result.structuredContent.sum)).toEqual(others.map((_, i) => i + 1));
  });

  it('reaps a peer that vanished without a close frame via the heartbeat', async () => {
    const { url, serverSide } = await start({ websocket: { heartbeatMs: 200 } });
    const healthy = await rawPeer(url);
    cleanups.push(() => healthy.socket.terminate());
    const vanished = await rawPeer(url, { headers: { 'x-test': 'vanished' } });
    cleanups.push(() => vanished.socket.terminate());
    const transport = await serverSide('vanished');
    // A paused socket neither reads pings nor answers them: to the server the peer is gone,
    // exactly like a host that dropped off the network (destroying the socket would send a FIN).
    (vanished.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    expect(await transport.closed).toEqual({ code: 1006, reason: 'heartbeat timeout' });
    // the healthy peer answers pings and stays
    let pings = 0;
    const threePings = new Promise<void>((resolve) =>
      healthy.socket.on('ping', () => {
        if (++pings === 3) resolve();
      }),
    );
    await threePings;
    const answer = await healthy.request('ping');
    expect(answer.result).toEqual({});
  });

  it('ends the session of a peer whose socket is destroyed', async () => {
    const { url, serverSide, server } = await start();
    const peer = await rawPeer(url, { headers: { 'x-test': 'destroyed' } });
    const transport = await serverSide('destroyed');
    (peer.socket as unknown as { _socket: { destroy(): void } })._socket.destroy();
    expect((await transport.closed).code).toBe(1006);
    await vi.waitFor(() => expect(server.connectionCounts().connections.websocket ?? 0).toBe(0));
  });

  it('refuses new sockets past maxConnections with 503 and leaves the old ones alone', async () => {
    const { url, attachment } = await start({ websocket: { maxConnections: 3 } });
    const peers = await Promise.all([rawPeer(url), rawPeer(url), rawPeer(url)]);
    cleanups.push(() => {
      for (const p of peers) p.socket.terminate();
    });
    const refused = await refusedStatus(url);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    const answers = await Promise.all(
      peers.map((p) => p.request('tools/call', { name: 'add', arguments: { a: 1, b: 2 } })),
    );
    expect(answers.every((a) => a.result.structuredContent.sum === 3)).toBe(true);
    // a slot frees when a socket goes
    peers[0]!.socket.close();
    await vi.waitFor(() => expect(attachment.connections).toBe(2));
    const late = await rawPeer(url);
    late.socket.terminate();
  });

  it('closes every socket with 1001 on listening.close()', async () => {
    const { url, listening } = await start();
    const peer = await rawPeer(url);
    const closed = closeOf(peer.socket);
    await listening.close();
    expect((await closed).code).toBe(1001);
  });
});

describe('validation', () => {
  it('names the option or variable that is wrong', async () => {
    const server = fixtureServer();
    const httpServer = createServer();
    await expect(attachWebSocket(httpServer, server, { maxInFlight: 0 })).rejects.toThrow(/maxInFlight/);
    await expect(attachWebSocket(httpServer, server, { heartbeatMs: -1 })).rejects.toThrow(/heartbeatMs/);
    vi.stubEnv('MCP_MAX_CONNECTIONS', 'lots');
    try {
      await expect(attachWebSocket(httpServer, server)).rejects.toThrow(/MCP_MAX_CONNECTIONS/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('takes MCP_MAX_CONNECTIONS when maxConnections is not set', async () => {
    vi.stubEnv('MCP_MAX_CONNECTIONS', '1');
    let started: Awaited<ReturnType<typeof start>>;
    try {
      started = await start();
    } finally {
      vi.unstubAllEnvs();
    }
    const peer = await rawPeer(started.url);
    cleanups.push(() => peer.socket.terminate());
    expect((await refusedStatus(started.url)).status).toBe(503);
  });
});

async function closeHttp(httpServer: HttpServer, attachment: WebSocketAttachment, server: McpKitServer) {
  await attachment.close();
  await server.close();
  await new Promise<void>((resolve) => {
    httpServer.close(() => resolve());
    httpServer.closeAllConnections();
  });
}
