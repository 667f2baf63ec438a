/**
 * Answers mcpkit builds from a string keep their headers as plain fields until something asks for
 * the `Headers` object, and the Node bridge writes those fields directly. These tests pin that the
 * shortcut never changes what a client receives: a header `Headers` would normalise or refuse goes
 * through `Headers` as before, and the wire carries the same fields either way.
 */
import { request as httpRequest } from 'node:http';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { describe, expect, it } from 'vitest';
import { bodyTextOf, plainFieldsOf, setPlainHeader, textResponse } from '../src/http/bodyText.js';
import { withHeader } from '../src/http/mcpAnswers.js';

describe('plain answer headers', () => {
  it('keeps plain fields until Headers is asked for, then hands everything to it', () => {
    const response = textResponse('{}', { status: 201, headers: { 'content-type': 'application/json' } });
    expect(setPlainHeader(response, 'x-request-id', 'abc-1')).toBe(true);
    expect(plainFieldsOf(response)).toEqual({ 'content-type': 'application/json', 'x-request-id': 'abc-1' });
    // Asking for Headers moves the fields there; later sets go through it.
    expect(response.headers.get('x-request-id')).toBe('abc-1');
    expect(plainFieldsOf(response)).toBeUndefined();
    expect(setPlainHeader(response, 'x-other', '1')).toBe(false);
    expect(withHeader(response, 'x-other', '1').headers.get('x-other')).toBe('1');
    expect(bodyTextOf(response)).toBe('{}');
  });

  it('leaves to Headers every name or value it would change or refuse', () => {
    const response = textResponse('{}', { headers: { 'content-type': 'application/json' } });
    for (const [name, value] of [
      ['x-a', ' padded'],
      ['x-a', 'padded\t'],
      ['x-a', 'line\r\nbreak'],
      ['x-a', 'nul\0byte'],
      ['x-a', 'caf\u00e9'],
      ['X-Upper', 'v'],
      ['bad name', 'v'],
    ] as const) {
      expect(setPlainHeader(response, name, value), `${JSON.stringify(name)}: ${JSON.stringify(value)}`).toBe(
        false,
      );
    }
    // What Headers does with them is what the client gets: a trimmed value, a refused line break.
    const trimmed = withHeader(response, 'x-a', ' padded ');
    expect(trimmed.headers.get('x-a')).toBe('padded');
    expect(() => withHeader(textResponse('{}', {}), 'x-a', 'line\r\nbreak')).toThrow();
  });

  it('does not take initial headers that are not plain fields', () => {
    expect(plainFieldsOf(textResponse('', { headers: new Headers({ a: '1' }) }))).toBeUndefined();
    expect(plainFieldsOf(textResponse('', { headers: [['a', '1']] }))).toBeUndefined();
    expect(plainFieldsOf(textResponse('', { headers: { A: '1' } }))).toBeUndefined();
    expect(plainFieldsOf(textResponse('', { headers: { a: ' 1' } }))).toBeUndefined();
    expect(plainFieldsOf(new Response('x'))).toBeUndefined();
  });

  it('writes the same fields on the wire as the Headers path, with the exact length', async () => {
    const server = createMcpServer({
      name: 'plain',
      version: '1.0.0',
      logLevel: 'silent',
      http: { stateless: true },
    });
    const handle = await listen(server, { port: 0 });
    try {
      const raw = (path: string, headers: Record<string, string>, body?: string) =>
        new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>(
          (resolve, reject) => {
            const req = httpRequest(
              { host: '127.0.0.1', port: handle.port, path, method: body ? 'POST' : 'GET', headers },
              (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => {
                  text += chunk;
                });
                res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
              },
            );
            req.on('error', reject);
            req.end(body);
          },
        );
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
      const answer = await raw(
        '/mcp',
        {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
          'x-request-id': 'client-chosen-7',
        },
        body,
      );
      expect(answer.status).toBe(200);
      expect(answer.headers['x-request-id']).toBe('client-chosen-7');
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
      expect(JSON.parse(answer.body)).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
      // A request id the pipeline does not accept is replaced, never echoed.
      const replaced = await raw('/health', { 'x-request-id': 'not ok' });
      expect(replaced.headers['x-request-id']).not.toBe('not ok');
      expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(Number(replaced.headers['content-length'])).toBe(Buffer.byteLength(replaced.body));
    } finally {
      await handle.close();
    }
  });
});
