/**
 * The transport to an HTTP upstream: the SDK's Streamable HTTP client transport (either protocol
 * era; the client negotiates), sending through the server's outbound policy (allow-list, no private
 * addresses unless allowed, connections pinned to the checked address, redirects never followed),
 * with every response and every server-sent event bounded in bytes.
 */
import type { Transport } from '@modelcontextprotocol/server';
import { McpKitError, quote } from '../core/errors.js';
import type { OutboundPolicy } from '../net/outbound.js';
import { SECRET_REF } from './contributions.js';
import { loadClientModule } from './upstream.js';
import type { UpstreamSpec } from './upstreamTypes.js';

/** An upstream's header values with `{{secrets.NAME}}` resolved; a missing secret is an error naming it. */
export function upstreamHeaders(spec: UpstreamSpec, secrets: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    headers[name] = value.replace(SECRET_REF, (_, secret: string) => {
      const resolved = secrets[secret];
      if (resolved === undefined) {
        throw new McpKitError(
          'INVALID_ARGUMENT',
          `upstream.headers.${name} refers to secrets.${secret}, which is not set`,
          {
            details: { field: `upstream.headers.${name}` },
          },
        );
      }
      return resolved;
    });
  }
  return headers;
}

/**
 * A body that errors once `max` bytes pass in all (`perEvent: false`) or since the last blank line
 * (`perEvent: true`, for an event stream that may stay open for hours but whose every event is bounded).
 */
function bounded(
  body: ReadableStream<Uint8Array>,
  max: number,
  perEvent: boolean,
): ReadableStream<Uint8Array> {
  let count = 0;
  let previous = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (perEvent) {
          for (const byte of chunk) {
            count = byte === 10 && previous === 10 ? 0 : count + 1;
            if (byte !== 13) previous = byte;
            if (count > max) break;
          }
        } else count += chunk.byteLength;
        if (count > max) {
          controller.error(
            new Error(`the upstream sent more than ${max} bytes in one ${perEvent ? 'event' : 'response'}`),
          );
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
}

/** A `fetch` for the SDK transport that goes through the outbound policy, with bounded answers. */
function outboundFetch(outbound: OutboundPolicy, maxBytes: number): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string')
      throw new TypeError('upstream requests carry JSON text');
    const response = await outbound.fetch(url, {
      method: init?.method ?? 'GET',
      ...(init?.headers !== undefined && {
        headers: init.headers as ConstructorParameters<typeof Headers>[0],
      }),
      ...(typeof body === 'string' && { body }),
      ...(init?.signal && { signal: init.signal }),
    });
    if (!response.body) return response;
    const stream = (response.headers.get('content-type') ?? '').includes('text/event-stream');
    return new Response(bounded(response.body, maxBytes, stream), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** What opening an HTTP upstream needs. */
export interface HttpUpstream {
  spec: UpstreamSpec;
  /** The integration's secrets in clear. */
  secrets: Record<string, string>;
  outbound: OutboundPolicy;
  maxResponseBytes: number;
}

/** Checks an upstream URL against the outbound policy; the error names the field. */
export function checkUpstreamUrl(url: string, outbound: OutboundPolicy): void {
  try {
    outbound.check(new URL(url));
  } catch (error) {
    if (!(error instanceof McpKitError)) throw error;
    throw new McpKitError(error.code, `upstream.url: ${error.message}`, {
      details: { field: 'upstream.url' },
    });
  }
}

/** The opener of a transport to an HTTP upstream (one new transport per connection). */
export function httpOpener(upstream: HttpUpstream): () => Promise<Transport> {
  const headers = upstreamHeaders(upstream.spec, upstream.secrets);
  const url = new URL(upstream.spec.url);
  const fetchThrough = outboundFetch(upstream.outbound, upstream.maxResponseBytes);
  return async () => {
    const { StreamableHTTPClientTransport } = await loadClientModule();
    return new StreamableHTTPClientTransport(url, {
      fetch: fetchThrough,
      requestInit: { headers },
      // Reconnection is the link's (with its backoff); the transport's own GET stream retries stay few.
      reconnectionOptions: {
        maxRetries: 2,
        initialReconnectionDelay: 1000,
        maxReconnectionDelay: 5000,
        reconnectionDelayGrowFactor: 2,
      },
    }) as unknown as Transport;
  };
}

/** The origin an upstream URL is shown as (no path, no query: they may carry tokens). */
export function upstreamTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return quote(url);
  }
}
