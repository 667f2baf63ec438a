import { Hono } from 'hono';
import { directBodyReader, type NodeBodySource, RAW_BODY, type RawBodyReader } from '../core/bodyLimit.js';
import { sourceOf } from '../core/forwarded.js';
import type { FetchOptions, McpKitServer } from '../server.js';
import { joinPaths } from './mount.js';

/** What `@hono/node-server` puts in the environment as `incoming`: the node:http request. */
interface NodeIncoming extends Partial<Omit<NodeBodySource, 'headers'>> {
  socket?: { remoteAddress?: string; encrypted?: boolean };
  headers?: Record<string, string | string[] | undefined>;
}

/**
 * Whether mcpkit may read the body of `request` straight from `incoming` (under its limits) instead
 * of through the web stream, which `@hono/node-server` builds only when something asks for it (a
 * `Request` with a stream and a signal: most of a small request's cost). Only for a body nothing
 * has touched: a request rebuilt here, or one a middleware read, keeps its stream.
 */
function readsDirectly(request: Request, incoming: NodeIncoming): incoming is NodeIncoming & NodeBodySource {
  return (
    request.method !== 'GET' &&
    request.method !== 'HEAD' &&
    !request.bodyUsed &&
    !webRequestBuilt(request) &&
    typeof incoming.on === 'function' &&
    typeof incoming.once === 'function' &&
    typeof incoming.off === 'function' &&
    typeof incoming.pause === 'function' &&
    incoming.headers !== undefined
  );
}

/**
 * Whether `@hono/node-server` has built the web `Request` behind its lightweight one (something
 * touched `body`, or called `clone()`): a clone's branch of the body stream then waits for data that
 * only the web stream delivers, so the body must be read through it. Looked up by the symbol's name
 * (`requestCache`), which `@hono/node-server` keeps private.
 */
function webRequestBuilt(request: Request): boolean {
  for (const symbol of Object.getOwnPropertySymbols(request)) {
    if (
      symbol.description === 'requestCache' &&
      (request as unknown as Record<symbol, unknown>)[symbol] !== undefined
    )
      return true;
  }
  return false;
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
    let rebuilt = false;
    if (request.bodyUsed) {
      rebuilt = true;
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
      if (url.origin !== source.origin) {
        request = new Request(`${source.origin}${url.pathname}${url.search}`, request);
        rebuilt = true;
      }
      if (!rebuilt && readsDirectly(request, incoming)) {
        (request as Request & { [RAW_BODY]?: RawBodyReader })[RAW_BODY] = directBodyReader(incoming, {
          taken: false,
        });
      }
    }
    return server.fetch(request, {
      ...(clientAddress !== undefined && { clientAddress }),
      ...options.fetchOptions?.(request),
      basePath,
    });
  });
  return app;
}
