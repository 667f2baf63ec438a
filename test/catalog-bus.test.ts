/**
 * The catalog's one event bus reaches the 2026-07-28 door: a `subscriptions/listen` stream over
 * HTTP hears `tools/list_changed` when a tool is registered and `resources/updated` for a resource
 * it subscribed to, and a closed server leaves no listener on the bus.
 */
import { createMcpServer } from 'mcpkit';
import { jsonRpcPost, request } from 'mcpkit/testing';
import { describe, expect, it } from 'vitest';
import { HttpHandler } from '../src/http/handler.js';
import { buildServices } from '../src/services.js';

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'listen', version: '1' },
};

/** Reads SSE `data:` messages from `body` until `done(messages)` says so (or 5 s pass). */
async function readUntil(body: ReadableStream<Uint8Array>, done: (messages: any[]) => boolean) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const messages: any[] = [];
  let buffer = '';
  const deadline = Date.now() + 5000;
  while (!done(messages) && Date.now() < deadline) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split('\n'))
        if (line.startsWith('data:')) messages.push(JSON.parse(line.slice(5)));
      cut = buffer.indexOf('\n\n');
    }
  }
  await reader.cancel();
  return messages;
}

describe('the catalog bus', () => {
  it('reaches a 2026-07-28 subscriptions/listen stream: list_changed and resources/updated', async () => {
    const server = createMcpServer({ name: 'bus', logLevel: 'silent' });
    server.resources.register({ uri: 'mem://a', name: 'a', read: () => 'a' });
    const response = await request(
      server,
      '/mcp',
      jsonRpcPost(
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'subscriptions/listen',
          params: {
            notifications: { toolsListChanged: true, resourceSubscriptions: ['mem://a'] },
            _meta: MODERN_META,
          },
        },
        { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
      ),
    );
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const methods = (messages: any[]) => messages.map((m) => m.method);
    const reading = readUntil(response.body!, (messages) =>
      methods(messages).includes('notifications/resources/updated'),
    );
    // After the stream is acknowledged, change the catalog and update the resource.
    setTimeout(() => {
      server.tools.register({ name: 'late', inputSchema: {}, handler: () => 'late' });
      setTimeout(() => server.resources.notifyUpdated('mem://a'), 20);
    }, 50);
    const messages = await reading;
    expect(methods(messages)).toContain('notifications/tools/list_changed');
    const updated = messages.find((m) => m.method === 'notifications/resources/updated');
    expect(updated?.params?.uri).toBe('mem://a');
    await server.close();
  });

  it('is left with no listener of the HTTP door once the door closes', async () => {
    const services = buildServices({ name: 'bus', logLevel: 'silent' });
    const counts = () =>
      (['toolsChanged', 'resourcesChanged', 'promptsChanged', 'resourceUpdated'] as const).map((name) =>
        services.events.listenerCount(name),
      );
    const before = counts();
    const http = new HttpHandler(
      { logger: services.logger, events: services.events, createServer: () => undefined as never },
      {},
    );
    expect(counts()).toEqual(before.map((n) => n + 1));
    await http.close();
    expect(counts()).toEqual(before);
  });
});
