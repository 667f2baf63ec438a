/**
 * The gateway's direct `tools/call` path (src/integrations/upstreamCalls.ts) against the SDK
 * client's own request path, which it stands in for on 2025-era connections: the same bytes on the
 * wire, the same results and the same errors for every answer an upstream may give (hostile ones
 * included), the same progress, cancellation and close; then end to end, through mcpkit, beside an
 * upstream whose transport keeps the client's path.
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Client,
  InMemoryTransport,
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  ProtocolError,
  SdkError,
  SdkErrorCode,
} from '@modelcontextprotocol/client';
import { McpServer } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { stdioUpstream } from 'mcpkit/node';
import { connectClient } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { answerDirectly, CALL_RESULT } from '../src/integrations/upstream.js';
import { DirectCalls } from '../src/integrations/upstreamCalls.js';
import { upstreamReady } from './fixtures.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'upstreamServer.mjs');
const SDK = { SdkError, SdkErrorCode, ProtocolError, isJSONRPCResultResponse, isJSONRPCErrorResponse };
const NO_SDK_TIMEOUT = 2_147_483_647;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * The raw text of each answer a hostile upstream gives to `tools/call` of a tool, after
 * `{"jsonrpc":"2.0","id":<id>,`: results of every shape, errors, and things that are neither.
 */
const ANSWERS: Record<string, string> = {
  plain: '"result":{"content":[{"type":"text","text":"hi"}]}}',
  structured: '"result":{"content":[{"type":"text","text":"{}"}],"structuredContent":{"a":[1,{"b":null}]}}}',
  noContent: '"result":{}}',
  extraKeys: '"result":{"content":[{"type":"text","text":"x","extra":1}],"other":{"deep":[1,2]}}}',
  protoKeys: '"result":{"content":[{"type":"text","text":"x"}],"__proto__":{"polluted":true}}}',
  protoInBlock: '"result":{"content":[{"type":"text","text":"x","__proto__":{"polluted":true}}]}}',
  resultType: '"result":{"resultType":"complete","content":[{"type":"text","text":"typed"}]}}',
  meta: '"result":{"content":[],"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"x"},"k":1}}}',
  image: '"result":{"content":[{"type":"image","data":"AAAA","mimeType":"image/png"}]}}',
  resource:
    '"result":{"content":[{"type":"resource","resource":{"uri":"memo://a","text":"t"}},{"type":"audio","data":"AA","mimeType":"audio/wav"}]}}',
  isErrorTrue: '"result":{"content":[{"type":"text","text":"bad"}],"isError":true}}',
  isErrorString: '"result":{"content":[],"isError":"yes"}}',
  contentNotArray: '"result":{"content":"text"}}',
  blockWithoutType: '"result":{"content":[{"text":"x"}]}}',
  resultArray: '"result":[1,2]}',
  resultNull: '"result":null}',
  resultString: '"result":"text"}',
  huge: `"result":{"content":[{"type":"text","text":"${'x'.repeat(300_000)}"}]}}`,
  deep: `"result":{"content":[],"structuredContent":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}}`,
  error: '"error":{"code":-32602,"message":"bad arguments"}}',
  errorWithData: '"error":{"code":-32000,"message":"failed","data":{"why":"because","n":[1]}}}',
  errorNotFound: '"error":{"code":-32002,"message":"gone","data":{"uri":"memo://gone"}}}',
  errorExtraKey: '"error":{"code":-32603,"message":"odd","extra":true}}',
  errorBadCode: '"error":{"code":1.5,"message":"odd"}}',
  bothResultAndError: '"result":{"content":[]},"error":{"code":1,"message":"x"}}',
  stringId: '"result":{"content":[{"type":"text","text":"string id"}]}}',
};

/** Answers that are no response by the SDK's schemas: the client reports them, and the call waits on. */
const UNANSWERED = ['resultArray', 'resultNull', 'resultString', 'errorBadCode', 'bothResultAndError'];

/** A client connected to a hostile upstream that answers with {@link ANSWERS}; what it was sent. */
async function hostile(direct: boolean) {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const sent: JSONRPCMessage[] = [];
  serverSide.onmessage = (message) => {
    const m = message as { id?: number; method?: string; params?: { name?: string } };
    if (m.method !== 'initialize') sent.push(structuredClone(message));
    if (m.id === undefined) return;
    let text: string;
    if (m.method === 'initialize')
      text = `"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"hostile","version":"1"}}}`;
    else if (m.method === 'tools/call') {
      const name = String(m.params?.name);
      if (name === 'never') return; // never answers
      text = ANSWERS[name] ?? '"error":{"code":-32601,"message":"no such tool"}}';
    } else text = '"error":{"code":-32601,"message":"Method not found"}}';
    const id = JSON.stringify(m.params?.name === 'stringId' ? String(m.id) : m.id);
    void serverSide.send(JSON.parse(`{"jsonrpc":"2.0","id":${id},${text}`));
  };
  await serverSide.start();
  // Writes that fail: rejected, or thrown by a transport that throws instead.
  const send = clientSide.send.bind(clientSide);
  clientSide.send = (message, options) => {
    const name = (message as { params?: { name?: unknown } }).params?.name;
    if (name === 'sendRejects') return Promise.reject(new Error('write failed'));
    if (name === 'sendThrows') throw new Error('write threw');
    return send(message, options);
  };
  return { ...(await connected(clientSide, direct)), sent, serverSide };
}

/** A client on `transport`, with the direct path in place or not. */
async function connected(transport: InMemoryTransport, direct: boolean) {
  const client = new Client({ name: 'test', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  client.onerror = () => {};
  await client.connect(transport);
  cleanups.push(() => client.close());
  const calls = direct ? DirectCalls.open(client, transport as never, SDK) : undefined;
  if (direct) {
    expect(calls).toBeDefined();
    expect(answerDirectly(client, transport as never, calls)).toBe(true);
  }
  client.onclose = () => calls?.closed();
  return { client, calls };
}

type Asker = (
  params: { name: string; arguments: Record<string, unknown>; _meta?: Record<string, unknown> },
  options: { signal: AbortSignal; onprogress?: (p: unknown) => void },
) => Promise<unknown>;

/** How the link asks on each path. */
function askerOf({ client, calls }: { client: Client; calls: DirectCalls | undefined }): Asker {
  if (calls) return (params, options) => calls.call(params, CALL_RESULT, options);
  return (params, options) =>
    client.request({ method: 'tools/call', params }, CALL_RESULT, {
      signal: options.signal,
      timeout: NO_SDK_TIMEOUT,
      ...(options.onprogress && { onprogress: options.onprogress, resetTimeoutOnProgress: true }),
    });
}

/** A settled call as the comparison sees it: its value, or its error's class, code, message and data. */
function outcome(p: Promise<unknown>, waitMs = 100): Promise<unknown> {
  return Promise.race([
    p.then(
      (value) => ({ value }),
      (error: { constructor: { name: string }; code?: unknown; message?: unknown; data?: unknown }) => ({
        error: { class: error.constructor.name, code: error.code, message: error.message, data: error.data },
      }),
    ),
    new Promise((resolve) => setTimeout(() => resolve('still pending'), waitMs)),
  ]);
}

describe('the direct tools/call path', () => {
  it('is taken on a 2025-era connection, and only with the members it uses', async () => {
    const fast = await hostile(true);
    expect(fast.client.getProtocolEra()).toBe('legacy');
    const fake = (era: string, extra: Record<string, unknown> = {}) =>
      ({ getProtocolEra: () => era, _requestMessageId: 0, _progressHandlers: new Map(), ...extra }) as never;
    const [transport] = InMemoryTransport.createLinkedPair();
    expect(DirectCalls.open(fake('legacy'), transport as never, SDK)).toBeDefined();
    expect(DirectCalls.open(fake('modern'), transport as never, SDK)).toBeUndefined();
    expect(
      DirectCalls.open(fake('legacy', { _requestMessageId: '1' }), transport as never, SDK),
    ).toBeUndefined();
    expect(
      DirectCalls.open(fake('legacy', { _progressHandlers: {} }), transport as never, SDK),
    ).toBeUndefined();
    expect(
      DirectCalls.open(fake('legacy'), transport as never, { ...SDK, SdkError: undefined } as never),
    ).toBeUndefined();
  });

  it('sends what the client sends, and answers every answer as the client does', async () => {
    const fast = await hostile(true);
    const plain = await hostile(false);
    const run = async (side: typeof fast) => {
      const ask = askerOf(side);
      const signal = new AbortController().signal;
      const seen: Record<string, unknown> = {};
      for (const name of Object.keys(ANSWERS))
        seen[name] = await outcome(ask({ name, arguments: { n: 1 } }, { signal }));
      seen.withMeta = await outcome(
        ask({ name: 'plain', arguments: {}, _meta: { 'io.mcpkit/caller': { id: 'u' } } }, { signal }),
      );
      seen.unknown = await outcome(ask({ name: 'missing', arguments: {} }, { signal }));
      seen.sendRejects = await outcome(ask({ name: 'sendRejects', arguments: {} }, { signal }));
      seen.sendThrows = await outcome(ask({ name: 'sendThrows', arguments: {} }, { signal }));
      seen.afterAll = await outcome(ask({ name: 'plain', arguments: { again: true } }, { signal }));
      return seen;
    };
    const seenFast = await run(fast);
    const seenPlain = await run(plain);
    expect(seenFast).toEqual(seenPlain);
    expect(JSON.stringify(fast.sent)).toBe(JSON.stringify(plain.sent)); // key order too
    // The comparison covers what it means to: results, each kind of error, and calls left hanging.
    expect(seenFast.plain).toEqual({ value: { content: [{ type: 'text', text: 'hi' }] } });
    expect(seenFast.resultType).toEqual({ value: { content: [{ type: 'text', text: 'typed' }] } });
    expect(seenFast.noContent).toEqual({ value: { content: [] } });
    expect(seenFast.protoKeys).toMatchObject({ value: { content: [{ type: 'text', text: 'x' }] } });
    expect({} as { polluted?: unknown }).not.toHaveProperty('polluted');
    expect(seenFast.contentNotArray).toMatchObject({
      error: { class: 'SdkError', code: SdkErrorCode.InvalidResult },
    });
    expect(seenFast.errorWithData).toEqual({
      error: { class: 'ProtocolError', code: -32000, message: 'failed', data: { why: 'because', n: [1] } },
    });
    expect(seenFast.sendRejects).toMatchObject({ error: { class: 'Error', message: 'write failed' } });
    expect(seenFast.sendThrows).toMatchObject({ error: { class: 'Error', message: 'write threw' } });
    expect(seenFast.errorNotFound).toMatchObject({ error: { class: 'ResourceNotFoundError' } });
    const pending = Object.keys(seenFast).filter((name) => seenFast[name] === 'still pending');
    expect(pending).toEqual(UNANSWERED);
    expect(seenFast.stringId).toEqual({ value: { content: [{ type: 'text', text: 'string id' }] } });
    expect(
      (seenFast.huge as { value: { content: Array<{ text: string }> } }).value.content[0]!.text,
    ).toHaveLength(300_000);
    expect(fast.calls!.size).toBe(UNANSWERED.length); // answered in a form neither path takes
  });

  it('reports progress, cancels, and fails calls in flight on close, as the client does', async () => {
    const run = async (direct: boolean) => {
      const server = new McpServer({ name: 'bare', version: '1.0.0' });
      const cancelled: string[] = [];
      server.registerTool('waits', { inputSchema: z.object({}) }, async (_args, ctx) => {
        const token = ctx.mcpReq._meta?.progressToken;
        if (token !== undefined)
          await ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken: token, progress: 1, total: 2, message: 'half' },
          });
        await new Promise<void>((resolve) => {
          const done = () => {
            cancelled.push(String(ctx.mcpReq.signal.reason));
            resolve();
          };
          if (ctx.mcpReq.signal.aborted) done();
          else ctx.mcpReq.signal.addEventListener('abort', done);
        });
        return { content: [] };
      });
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await server.connect(serverSide);
      cleanups.push(() => server.close());
      // What the client side writes, cancellations included.
      const sent: unknown[] = [];
      const send = clientSide.send.bind(clientSide);
      clientSide.send = (message, options) => {
        sent.push(structuredClone(message));
        return send(message, options);
      };
      const side = await connected(clientSide, direct);
      expect(side.client.getProtocolEra()).toBe('legacy');
      const ask = askerOf(side);
      const progress: unknown[] = [];
      const controller = new AbortController();
      const aborted = outcome(
        ask(
          { name: 'waits', arguments: {} },
          {
            signal: controller.signal,
            onprogress: (p) => {
              progress.push(p);
              controller.abort('enough');
            },
          },
        ),
        2000,
      );
      const first = await aborted;
      await vi.waitFor(() => expect(cancelled).toHaveLength(1));
      const already = await outcome(
        ask({ name: 'waits', arguments: {} }, { signal: AbortSignal.abort('before') }),
      );
      const inFlight = outcome(
        ask({ name: 'waits', arguments: {} }, { signal: new AbortController().signal }),
        2000,
      );
      await new Promise((r) => setTimeout(r, 20));
      await side.client.close();
      const closed = await inFlight;
      const afterClose = await outcome(
        ask({ name: 'waits', arguments: {} }, { signal: new AbortController().signal }),
      );
      return { progress, first, cancelled, already, closed, afterClose, sent, left: side.calls?.size ?? 0 };
    };
    const fast = await run(true);
    const plain = await run(false);
    expect(fast).toEqual(plain);
    expect(JSON.stringify(fast.sent)).toBe(JSON.stringify(plain.sent));
    expect(fast.progress).toEqual([{ progress: 1, total: 2, message: 'half' }]);
    expect(fast.first).toEqual({
      error: { class: 'SdkError', code: SdkErrorCode.RequestTimeout, message: 'enough', data: undefined },
    });
    expect(fast.cancelled[0]).toBe('enough');
    expect(fast.already).toMatchObject({ error: { class: 'SdkError', message: 'before' } });
    expect(fast.closed).toMatchObject({ error: { class: 'SdkError', code: SdkErrorCode.ConnectionClosed } });
    expect(fast.afterClose).toMatchObject({ error: { class: 'Error', message: 'Not connected' } });
    expect(fast.sent).toContainEqual({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: expect.any(Number), reason: 'enough' },
    });
    expect(fast.left).toBe(0);
  });
});

describe('a forwarded call on the direct path', () => {
  it('answers the calling client as a call on the client path does, hostile answers included', async () => {
    const upstream = (claimed: boolean) => ({
      connect: async () => {
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
        serverSide.onmessage = (message) => {
          const m = message as { id?: number; method?: string; params?: { name?: string } };
          if (m.id === undefined) return;
          let text: string;
          if (m.method === 'initialize')
            text = `"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"hostile","version":"1"}}}`;
          else if (m.method === 'tools/list')
            text = `"result":{"tools":${JSON.stringify(Object.keys(ANSWERS).map((name) => ({ name, inputSchema: { type: 'object' } })))}}}`;
          else if (m.method === 'tools/call')
            text = ANSWERS[String(m.params?.name)] ?? '"error":{"code":-32601,"message":"no such tool"}}';
          else if (m.method === 'ping') text = '"result":{}}';
          else text = '"error":{"code":-32601,"message":"Method not found"}}';
          const id = JSON.stringify(m.params?.name === 'stringId' ? String(m.id) : m.id);
          void serverSide.send(JSON.parse(`{"jsonrpc":"2.0","id":${id},${text}`));
        };
        await serverSide.start();
        // A transport with an onmessage of its own keeps the client's path.
        if (claimed) clientSide.onmessage = () => {};
        return clientSide;
      },
    });
    const server = createMcpServer({
      logLevel: 'silent',
      integrations: { upstreams: { fast: upstream(false), plain: upstream(true) } },
    });
    cleanups.push(() => server.close());
    await upstreamReady(server, 'fast');
    await upstreamReady(server, 'plain');
    const request = vi.spyOn(Client.prototype, 'request');
    const { client, close } = await connectClient(server);
    cleanups.push(close);
    const seen = async (id: string) => {
      const out: Record<string, unknown> = {};
      for (const name of Object.keys(ANSWERS)) {
        if (UNANSWERED.includes(name)) continue; // ends only with the call's timeout
        const result = await client.callTool({ name: `${id}__${name}`, arguments: {} }).catch((e: Error) => ({
          thrown: e.message.replaceAll(id, '<id>'),
        }));
        out[name] = JSON.parse(
          JSON.stringify(result)
            .replaceAll(id, '<id>')
            .replace(/error id [0-9a-f]+/g, 'error id <e>')
            .replace(/"errorId":"[0-9a-f]+"/g, '"errorId":"<e>"'),
        );
      }
      return out;
    };
    // The forwarded requests mcpkit's upstream clients made through `request` (not the test's own).
    const forwardedByRequest = () =>
      request.mock.calls.filter(
        ([r], i) => request.mock.contexts[i] !== client && (r as { method?: string }).method === 'tools/call',
      ).length;
    const fast = await seen('fast');
    expect(forwardedByRequest()).toBe(0); // every forwarded call of `fast` went past the client's request
    const plain = await seen('plain');
    expect(forwardedByRequest()).toBe(Object.keys(ANSWERS).length - UNANSWERED.length);
    request.mockRestore();
    expect(fast).toEqual(plain);
    expect(fast.plain).toEqual({ content: [{ type: 'text', text: 'hi' }] });
    expect(JSON.stringify(fast.deep)).toMatch(/nested deeper/);
    expect((fast.huge as { content: Array<{ text: string }> }).content[0]!.text).toHaveLength(300_000);
    expect(fast.errorWithData).toMatchObject({ isError: true });
  });
});

describe('a stdio upstream', () => {
  it('takes the direct path, with progress and cancellation, and counts its requests', async () => {
    const server = createMcpServer({
      logLevel: 'silent',
      integrations: { upstreams: { fx: stdioUpstream({ command: process.execPath, args: [FIXTURE] }) } },
    });
    cleanups.push(() => server.close());
    await upstreamReady(server, 'fx');
    const request = vi.spyOn(Client.prototype, 'request');
    cleanups.push(() => request.mockRestore());
    const { client, close } = await connectClient(server);
    cleanups.push(close);
    const echoed = await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'echo:hi' }]);
    const progress: number[] = [];
    const controller = new AbortController();
    const slow = client
      .callTool(
        { name: 'fx__slow', arguments: { ms: 20_000 } },
        {
          signal: controller.signal,
          onprogress: (p) => {
            progress.push(p.progress);
            controller.abort('enough');
          },
        },
      )
      .catch((error: Error) => error.message);
    expect(await slow).toMatch(/enough/);
    expect(progress).toEqual([1]);
    // The upstream was told: it answers the next call at once, the cancelled one being over.
    const after = await client.callTool({ name: 'fx__echo', arguments: { text: 'after' } });
    expect(after.content).toEqual([{ type: 'text', text: 'echo:after' }]);
    const forwarded = request.mock.calls.filter(
      ([r], i) => request.mock.contexts[i] !== client && (r as { method?: string }).method === 'tools/call',
    );
    expect(forwarded).toHaveLength(0);
    const scrape = await server.metrics.render();
    expect(scrape).toMatch(
      /mcpkit_upstream_requests_total\{integration="fx",method="tools\/call",outcome="ok"\} 2/,
    );
  });
});
