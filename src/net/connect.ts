/**
 * The Node connector of the outbound policy: one HTTP request over `node:http`/`node:https` whose
 * socket connects to an address the policy resolved and checked, in the same lookup, so a name
 * cannot resolve to a public address for the check and to a private one for the connection (DNS
 * rebinding). Node's modules are reached through `process.getBuiltinModule` (Node ≥ 20.16), so the
 * runtime-neutral entry imports nothing from Node; elsewhere there is no connector and the policy
 * falls back to check-then-fetch.
 */
import type * as Dns from 'node:dns';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import type * as Stream from 'node:stream';

/** An address the policy resolved and allowed. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a hostname to the addresses a connection may use (refusing by throwing). */
export type CheckedResolve = (hostname: string) => Promise<ResolvedAddress[]>;

/** What a connector sends: a method, headers, an optional body and an abort signal. */
export interface OutboundInit {
  method?: string;
  /** What `new Headers()` takes (`HeadersInit`, which Node-only programs without the DOM library lack). */
  headers?: ConstructorParameters<typeof Headers>[0];
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

/** Sends one request (redirects are never followed) and resolves with its response, body streamed. */
export interface Connector {
  request(url: URL, init: OutboundInit, resolve: CheckedResolve): Promise<Response>;
  /** The operating system's resolver. */
  lookup(hostname: string): Promise<ResolvedAddress[]>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

interface NodeModules {
  http: typeof Http;
  https: typeof Https;
  dns: typeof Dns;
  stream: typeof Stream;
}

let modules: NodeModules | null | undefined;

function nodeModules(): NodeModules | undefined {
  if (modules === undefined) {
    const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
      ?.getBuiltinModule;
    modules =
      typeof get === 'function'
        ? {
            http: get('node:http') as typeof Http,
            https: get('node:https') as typeof Https,
            dns: get('node:dns') as typeof Dns,
            stream: get('node:stream') as typeof Stream,
          }
        : null;
  }
  return modules ?? undefined;
}

const NO_BODY = new Set([101, 204, 205, 304]);

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | Dns.LookupAddress[],
  family?: number,
) => void;

/** A `net.connect` lookup that answers with the checked addresses only. */
function lookupWith(resolve: CheckedResolve) {
  return (hostname: string, options: unknown, maybeCallback?: LookupCallback) => {
    const callback = (typeof options === 'function' ? options : maybeCallback) as LookupCallback;
    const opts = (typeof options === 'object' && options !== null ? options : {}) as Dns.LookupOptions;
    const family = typeof options === 'number' ? options : opts.family;
    resolve(hostname).then(
      (resolved) => {
        const usable = family === 4 || family === 6 ? resolved.filter((a) => a.family === family) : resolved;
        if (usable.length === 0) {
          const error: NodeJS.ErrnoException = new Error('no usable address');
          error.code = 'ENOTFOUND';
          return callback(error, '');
        }
        if (opts.all) return callback(null, usable);
        return callback(null, usable[0]!.address, usable[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

/**
 * The Node connector, with its own keep-alive agents (a socket connected under one policy is never
 * reused by another), or `undefined` where Node's modules are not reachable.
 */
export function createNodeConnector(): Connector | undefined {
  const node = nodeModules();
  if (!node) return undefined;
  const agents = {
    'http:': new node.http.Agent({ keepAlive: true }),
    'https:': new node.https.Agent({ keepAlive: true }),
  };
  return {
    lookup: async (hostname) => {
      const found = await node.dns.promises.lookup(hostname, { all: true, verbatim: true });
      return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
    },
    close: () => {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
    request: (url, init, resolve) =>
      new Promise<Response>((fulfil, reject) => {
        const protocol = url.protocol as 'http:' | 'https:';
        const client = protocol === 'https:' ? node.https : node.http;
        const headers: Record<string, string> = {};
        new Headers(init.headers).forEach((value, name) => {
          headers[name] = value;
        });
        const body = init.body;
        if (body !== undefined)
          headers['content-length'] = String(
            typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength,
          );
        const method = (init.method ?? 'GET').toUpperCase();
        const request = client.request(url, {
          method,
          headers,
          agent: agents[protocol],
          lookup: lookupWith(resolve) as never,
          ...(init.signal && { signal: init.signal }),
        });
        // `on`, not `once`: a socket can fail again after the response, with nothing left to settle.
        request.on('error', reject);
        request.once('response', (response) => {
          const status = response.statusCode ?? 0;
          try {
            const answer = new Headers();
            const raw = response.rawHeaders;
            for (let i = 0; i + 1 < raw.length; i += 2) answer.append(raw[i]!, raw[i + 1]!);
            const empty = NO_BODY.has(status) || method === 'HEAD';
            if (empty) response.resume();
            const stream = empty
              ? null
              : (node.stream.Readable.toWeb(response) as ReadableStream<Uint8Array>);
            fulfil(
              new Response(stream, {
                status,
                ...(response.statusMessage && { statusText: response.statusMessage }),
                headers: answer,
              }),
            );
          } catch (error) {
            response.destroy();
            reject(error);
          }
        });
        request.end(body);
      }),
  };
}
