/**
 * An exchange (one POST waiting for its answers) lets go of what it held once it is over, and the
 * stateless transport's departure listener holds only what it names. Something may still point at
 * either after the request (V8 keeps young objects an older one points at through young-generation
 * collections); when that happens it must not keep the request reachable. Checked with weak
 * references and forced collections.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { Exchange } from '../src/http/sessionTransport.js';
import { LADDER_REFUSED, StatelessTransport } from '../src/http/statelessTransport.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether `ref`'s object is gone after a few full collections. */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return ref.deref() === undefined;
}

/** An exchange for id 1 whose response, resolver and `onEnd` are reachable only through it. */
function heldExchange(): {
  exchange: Exchange;
  refs: { response: WeakRef<object>; resolver: WeakRef<object>; onEnd: WeakRef<object> };
  answered: { status?: number };
} {
  const answered: { status?: number } = {};
  const resolver = (response: Response) => {
    answered.status = response.status;
  };
  const exchange = new Exchange({ ids: [1], headers: {} }, resolver);
  const ended = { big: 'x'.repeat(1000) };
  exchange.onEnd = () => void ended;
  const response = { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'y'.repeat(1000) }] } };
  exchange.deliver(response as JSONRPCMessage, 1, true);
  return {
    exchange,
    refs: { response: new WeakRef(response), resolver: new WeakRef(resolver), onEnd: new WeakRef(ended) },
    answered,
  };
}

describe('an exchange that is over', () => {
  it('answers, then holds neither its responses, its resolver nor its onEnd', async () => {
    const { exchange, refs, answered } = heldExchange();
    expect(answered.status).toBe(200);
    expect(exchange.answered(1)).toBe(true);
    // The exchange itself is still held here.
    expect(await collected(refs.response)).toBe(true);
    expect(await collected(refs.resolver)).toBe(true);
    expect(await collected(refs.onEnd)).toBe(true);
    // Over is over: nothing more reaches the resolver.
    exchange.abandon();
    exchange.end();
    expect(exchange.deliver({ jsonrpc: '2.0', id: 1, result: {} } as JSONRPCMessage, 1, true)).toBe(false);
  });

  it('ended without an answer runs onEnd once and resolves nothing', () => {
    let ends = 0;
    let resolved = 0;
    const exchange = new Exchange({ ids: [1], headers: {} }, () => resolved++);
    exchange.onEnd = () => ends++;
    exchange.end();
    exchange.end();
    exchange.abandon();
    expect({ ends, resolved }).toEqual({ ends: 1, resolved: 0 });
  });
});

describe("the stateless transport's departure listener", () => {
  it('keeps neither the request nor its body reachable once the answer is given', async () => {
    const transport = new StatelessTransport({ jsonResponse: true });
    transport.onmessage = (message) => {
      const { id } = message as { id: number };
      void transport.send({ jsonrpc: '2.0', id, result: { content: [] } } as JSONRPCMessage);
    };
    const listeners: (() => void)[] = [];
    const serve = async () => {
      const body = {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'echo', big: 'z'.repeat(1000) },
      };
      const request = {
        headers: new Headers({
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
        }),
        signal: {
          aborted: false,
          addEventListener: (_type: string, listener: () => void) => listeners.push(listener),
          removeEventListener: () => {},
        },
      };
      const response = await transport.handle(request as unknown as Request, body, undefined);
      expect((response as Response).status).toBe(200);
      return { body: new WeakRef(body), request: new WeakRef(request) };
    };
    const refs = await serve();
    // Something still holds the listener (here, this test): the request it was made for is gone.
    expect(listeners).toHaveLength(1);
    expect(await collected(refs.body)).toBe(true);
    expect(await collected(refs.request)).toBe(true);
    await transport.close();
  });
});

describe("the stateless transport's held ids", () => {
  /** A transport that never answers, and a way to serve one request and make its client leave. */
  function quietTransport() {
    const transport = new StatelessTransport({ jsonResponse: true });
    const served: unknown[] = [];
    transport.onmessage = (message) => {
      if ((message as { method?: string }).method === 'tools/call')
        served.push((message as { id: unknown }).id);
    };
    const send = (id: string | number) => {
      let leave: (() => void) | undefined;
      const request = {
        headers: new Headers({ accept: 'application/json, text/event-stream' }),
        signal: {
          aborted: false,
          addEventListener: (_type: string, listener: () => void) => {
            leave = listener;
          },
          removeEventListener: () => {},
        },
      };
      const body = { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'slow' } };
      const answer = transport.handle(request as unknown as Request, body, undefined);
      return { answer, leave: () => leave!() };
    };
    return { transport, served, send };
  }

  it('serves a request under a private id while a handler that outlived its request holds the id', async () => {
    const { transport, served, send } = quietTransport();
    const first = send(1);
    first.leave();
    expect(((await first.answer) as Response).status).toBe(200);
    send(1);
    expect(served[0]).toBe(1);
    expect(served[1]).toMatch(/^mcpkit-stateless-/);
    // The first handler reports its end: id 1 is the client's again.
    transport.requestSettled(1);
    send(1);
    expect(served[2]).toBe(1);
    await transport.close();
  });

  it('does not hold the id of a request refused before any handler ran (2026-07-28 ladder)', async () => {
    const transport = new StatelessTransport({
      jsonResponse: true,
      modern: { era: 'modern', revision: '2026-07-28' },
    });
    const served: unknown[] = [];
    let refuse = true;
    transport.onmessage = (message) => {
      const { id } = message as { id: string | number };
      served.push(id);
      const answer = refuse
        ? { jsonrpc: '2.0', id, error: { code: -32602, message: 'Invalid params' } }
        : { jsonrpc: '2.0', id, result: { content: [] } };
      void transport.send(answer as JSONRPCMessage);
    };
    const request = {
      headers: new Headers(),
      signal: { aborted: false, addEventListener: () => {}, removeEventListener: () => {} },
    } as unknown as Request;
    const body = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'x' } };
    expect(await transport.handle(request, body, undefined)).toBe(LADDER_REFUSED);
    refuse = false;
    expect(((await transport.handle(request, body, undefined)) as Response).status).toBe(200);
    expect(served).toEqual([3, 3]);
    await transport.close();
  });

  it('holds at most 1 MiB of ids: long ones push the oldest out', async () => {
    const { transport, served, send } = quietTransport();
    const long = (n: number) => `${n}-${'i'.repeat(100_000)}`;
    // Twelve ids of about 200 KB each (UTF-16): the first ones are let go.
    for (let n = 0; n < 12; n++) send(long(n)).leave();
    const before = served.length;
    send(long(0));
    send(long(11));
    expect(served[before]).toBe(long(0));
    expect(served[before + 1]).toMatch(/^mcpkit-stateless-/);
    await transport.close();
  });
});
