import { Hono } from 'hono';
import { sourceOf } from '../core/forwarded.js';
import type { FetchOptions, McpKitServer } from '../server.js';
import { joinPaths } from './mount.js';

/** What `@hono/node-server` puts in the environment as `incoming`: the node:http request. */
interface NodeIncoming {
  socket?: { remoteAddress?: string; encrypted?: boolean };
  headers?: Record<string, string | string[] | undefined>;
}

/** Options for {@link mcpkitHono}. */
export interface McpkitHonoOptions {
  /** Per-request fetch options, e.g. `authInfo` from your own authentication middleware. */
  fetchOptions?: (request: Request) => FetchOptions | undefined;
}

/**
 * A Hono app serving mcpkit's MCP endpoint and REST API, to mount with `app.route(prefix, …)`. Runs
 * on `@hono/node-server`, on edge runtimes, and in process with `app.request`.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { serve } from '@hono/node-server';
 * import { mcpkitHono } from 'mcpkit/hono';
 *
 * const app = new Hono();
 * app.get('/', (c) => c.text('my app'));
 * app.route('/api', mcpkitHono(server));
 * serve({ fetch: app.fetch, port: 3000, hostname: '127.0.0.1' });
 * ```
 */
export function mcpkitHono(server: McpKitServer, options: McpkitHonoOptions = {}): Hono {
  const app = new Hono();
  app.all('*', async (c) => {
    // The route this handler matched carries the mount prefix: `/api/*` under app.route('/api', …).
    // `http.basePath` sits below it, as below an Express mount point.
    const basePath = joinPaths(c.req.routePath.replace(/\/?\*$/, ''), server.httpOptions.basePath);
    let request = c.req.raw;
    if (request.bodyUsed) {
      // A middleware read the body already (c.req.json()); Hono keeps it, so rebuild the request.
      request = new Request(request, { body: await c.req.arrayBuffer() });
    }
    // @hono/node-server puts the node:http request in the environment: the client's address is there,
    // and what trusted proxies say about the client (the server's `http.trustProxy`).
    const incoming = (c.env as { incoming?: NodeIncoming } | undefined)?.incoming;
    let clientAddress: string | undefined;
    if (incoming?.socket) {
      const source = sourceOf(
        {
          peer: incoming.socket.remoteAddress,
          encrypted: incoming.socket.encrypted === true,
          header: (name) => incoming.headers?.[name],
        },
        server.httpOptions.trustProxy,
      );
      clientAddress = source.address;
      const url = new URL(request.url);
      if (url.origin !== source.origin)
        request = new Request(`${source.origin}${url.pathname}${url.search}`, request);
    }
    return server.fetch(request, {
      ...(clientAddress !== undefined && { clientAddress }),
      ...options.fetchOptions?.(request),
      basePath,
    });
  });
  return app;
}
