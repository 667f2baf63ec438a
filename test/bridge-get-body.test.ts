/**
 * A GET or HEAD whose body a host app's parser (express.json()) already read: the bridged request is
 * bodiless, as a full request of that method must be, whatever reads it (a verify hook that copies
 * or logs the request, say).
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import express from 'express';
import { createMcpServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { describe, expect, it } from 'vitest';
import { closeHttp } from './fixtures.js';

function send(port: number, method: string, body: string | undefined): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const client = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/tools',
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined && {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
          }),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    client.on('error', reject);
    client.end(body);
  });
}

describe('a GET or HEAD with a body express.json() read, under the Express adapter', () => {
  it.each([
    ['new Request(request)', (request: Request) => void new Request(request)],
    ['request.clone()', (request: Request) => void request.clone()],
    ['inspect(request)', (request: Request) => void inspect(request)],
  ])('is served like one without a body when a verify hook uses %s', async (_what, use) => {
    const kit = createMcpServer({
      name: 't',
      version: '1',
      logLevel: 'silent',
      auth: {
        verify: (request) => {
          use(request);
          return { id: 'hooked', roles: ['admin'] };
        },
      },
    });
    const app = express();
    app.use(express.json());
    app.use(mcpkitExpress(kit));
    const httpServer = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => httpServer.once('listening', resolve));
    const port = (httpServer.address() as AddressInfo).port;
    try {
      for (const method of ['GET', 'HEAD']) {
        expect(await send(port, method, undefined), method).toBe(200);
        expect(await send(port, method, '{}'), `${method} with a body`).toBe(200);
      }
    } finally {
      await closeHttp(httpServer);
      await kit.close();
    }
  });
});
