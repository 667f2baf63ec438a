/**
 * Sessions share one handler table (src/protocol/sharedHandlers.ts): a session's SDK server installs
 * a method's handler when its client first calls the method, bound to that session's own state. A
 * server installs nothing its client has not used, and two WebSocket connections of one server,
 * served by the same table, keep their log levels, resource subscriptions and cancellations apart.
 */
import { InMemoryTransport, type JSONRPCMessage, type Server } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { connectClient } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type RawPeer, rawPeer } from './websocketHelpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Whether `server` holds an installed handler for `method` (not one its handler view offers). */
function installed(server: Server, method: string): boolean {
  const handlers = (server as unknown as { _requestHandlers: Map<string, unknown> })._requestHandlers;
  return Map.prototype.has.call(handlers, method);
}

/** A session server connected in memory, with a way to send raw requests to it. */
async function inMemory(server: Server) {
  const [client, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const answers = new Map<unknown, (message: any) => void>();
  client.onmessage = (message) => {
    const id = (message as { id?: unknown }).id;
    answers.get(id)?.(message);
    answers.delete(id);
  };
  await client.start();
  let next = 1;
  const ask = (method: string, params?: unknown) =>
    new Promise<any>((resolve) => {
      const id = next++;
      answers.set(id, resolve);
      void client.send({
        jsonrpc: '2.0',
        id,
        method,
        ...(params !== undefined && { params }),
      } as JSONRPCMessage);
    });
  await ask('initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'shared', version: '1' },
  });
  await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
  return ask;
}

describe('handlers shared by the sessions of one server', () => {
  it('are installed on a session only when its client first calls their method', async () => {
    const server = createMcpServer({ name: 'shared', logLevel: 'silent' });
    server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
    cleanups.push(() => server.close());
    const first = server.createSessionServer({ era: 'legacy' });
    const second = server.createSessionServer({ era: 'legacy' });
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    for (const method of ['tools/list', 'tools/call', 'resources/read', 'prompts/get']) {
      expect(installed(first, method), method).toBe(false);
    }
    const ask = await inMemory(first);
    const listed = await ask('tools/list');
    expect(listed.result.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
    const called = await ask('tools/call', { name: 'echo', arguments: { text: 'hi' } });
    expect(called.result.content).toEqual([{ type: 'text', text: 'hi' }]);
    expect(installed(first, 'tools/list')).toBe(true);
    expect(installed(first, 'tools/call')).toBe(true);
    expect(installed(first, 'prompts/get')).toBe(false);
    // The other session installed nothing by the first one's calls.
    expect(installed(second, 'tools/list')).toBe(false);
    expect(installed(second, 'tools/call')).toBe(false);
  });

  it('stay removed when the SDK removes one before it was installed', async () => {
    const server = createMcpServer({ name: 'shared', logLevel: 'silent' });
    cleanups.push(() => server.close());
    const session = server.createSessionServer({ era: 'legacy' });
    cleanups.push(() => session.close());
    session.removeRequestHandler('tools/list');
    const ask = await inMemory(session);
    expect((await ask('tools/list')).error).toMatchObject({ code: -32601 });
    expect((await ask('prompts/list')).result).toEqual({ prompts: [] });
  });

  it("keep two connections' log levels apart", async () => {
    const server = createMcpServer({ name: 'shared', logLevel: 'silent' });
    server.tools.register({
      name: 'say',
      description: 'Logs at info and at error',
      inputSchema: {},
      handler: (_args, ctx) => {
        ctx.log.info('info from say');
        ctx.log.error('error from say');
        return 'said';
      },
    });
    cleanups.push(() => server.close());
    const levels = async (threshold: 'error' | 'info') => {
      const { client, close } = await connectClient(server);
      cleanups.push(close);
      const logged: string[] = [];
      client.setNotificationHandler('notifications/message', (n) => {
        logged.push(n.params.level);
      });
      await client.setLoggingLevel(threshold);
      return { client, logged };
    };
    const quiet = await levels('error');
    const chatty = await levels('info');
    await Promise.all([quiet.client.callTool({ name: 'say' }), chatty.client.callTool({ name: 'say' })]);
    await Promise.all([quiet.client.ping(), chatty.client.ping()]);
    expect(quiet.logged).toEqual(['error']);
    expect(chatty.logged).toEqual(['info', 'error']);
  });

  it('keep two WebSocket connections apart: subscriptions, cancellations, departures', async () => {
    const server = createMcpServer({ name: 'shared', logLevel: 'silent' });
    const waiting: Array<() => void> = [];
    const aborted: string[] = [];
    server.tools.register({
      name: 'wait',
      description: 'Runs until released or cancelled',
      inputSchema: { who: z.string() },
      handler: ({ who }, ctx) =>
        new Promise<string>((resolve, reject) => {
          waiting.push(() => resolve(`${who} done`));
          ctx.signal.addEventListener('abort', () => {
            aborted.push(who);
            reject(new Error('cancelled'));
          });
        }),
    });
    server.resources.register({ uri: 'mem://a', name: 'a', read: () => 'a' });
    const listening = await listen(server, { port: 0 });
    cleanups.push(() => listening.close());
    const url = `${listening.url.replace(/^http/, 'ws')}/mcp`;
    const a = await rawPeer(url);
    const b = await rawPeer(url);
    cleanups.push(
      () => a.socket.terminate(),
      () => b.socket.terminate(),
    );
    const methodsOf = (peer: RawPeer, method: string) =>
      (peer.messages as Array<{ method?: string; params?: any }>).filter((m) => m.method === method);
    /** A round trip on `peer`: whatever the server sent it before is in by then. */
    const flush = (peer: RawPeer) => peer.request('ping');

    // Subscriptions: an update reaches the connection that subscribed, and only it.
    const updated = 'notifications/resources/updated';
    expect((await a.request('resources/subscribe', { uri: 'mem://a' })).result).toEqual({});
    const toA = a.next((m) => m.method === updated);
    server.resources.notifyUpdated('mem://a');
    expect((await toA).params).toEqual({ uri: 'mem://a' });
    await flush(b);
    expect(methodsOf(b, updated)).toEqual([]);
    expect((await b.request('resources/subscribe', { uri: 'mem://a' })).result).toEqual({});
    expect((await a.request('resources/unsubscribe', { uri: 'mem://a' })).result).toEqual({});
    const toB = b.next((m) => m.method === updated);
    server.resources.notifyUpdated('mem://a');
    expect((await toB).params).toEqual({ uri: 'mem://a' });
    await flush(a);
    expect(methodsOf(a, updated)).toHaveLength(1);

    // Cancellation: the same request id on both; cancelling it on one leaves the other running.
    const callA = a.request('tools/call', { name: 'wait', arguments: { who: 'a' } }, 'same');
    const callB = b.request('tools/call', { name: 'wait', arguments: { who: 'b' } }, 'same');
    void callA;
    await expect.poll(() => waiting.length).toBe(2);
    a.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'same' } });
    await expect.poll(() => aborted).toEqual(['a']);
    for (const release of waiting.splice(0)) release();
    expect((await callB).result.content).toEqual([{ type: 'text', text: 'b done' }]);
    await flush(a);
    expect((a.messages as Array<{ id?: unknown }>).filter((m) => m.id === 'same')).toEqual([]);

    // Catalog changes reach every live connection, and the rest once one has gone.
    const changed = 'notifications/tools/list_changed';
    const both = [a.next((m) => m.method === changed), b.next((m) => m.method === changed)];
    server.tools.register({ name: 'late', inputSchema: {}, handler: () => 'late' });
    await Promise.all(both);
    a.socket.close();
    await expect.poll(() => server.connectionCounts().connections.websocket ?? 0).toBe(1);
    const again = b.next((m) => m.method === changed);
    server.tools.register({ name: 'later', inputSchema: {}, handler: () => 'later' });
    await again;
  });
});
