import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Refusal, type RefusalCode, refuse } from '../core/refusal.js';
import { bridgeRequest, failed, requestSource, writeWebResponse } from '../node/bridge.js';
import type { FetchOptions, McpKitServer } from '../server.js';
import { joinPaths } from './mount.js';

/** Options for {@link mcpkitExpress}. */
export interface McpkitExpressOptions {
  /** Per-request fetch options, e.g. `authInfo` from your own authentication middleware. */
  fetchOptions?: (req: IncomingMessage) => FetchOptions | undefined;
}

type ParsedRequest = IncomingMessage & { body?: unknown; _body?: boolean };

/** What Express adds to a request: the path it was mounted at, and the URL before it stripped that. */
type MountedRequest = IncomingMessage & { baseUrl?: unknown; originalUrl?: unknown };

/** The body a parser (express.json, express.text, express.raw) already consumed, re-serialised. */
function consumedBody(req: ParsedRequest): Uint8Array | string | undefined {
  if (req._body !== true && !req.readableEnded) return undefined;
  const { body } = req;
  if (body === undefined) return '';
  if (body instanceof Uint8Array || typeof body === 'string') return body;
  return JSON.stringify(body);
}

type Next = (error?: unknown) => void;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
// Express tells error middleware from the rest by its four parameters: this signature is Express's.
// biome-ignore lint/complexity/useMaxParams: Express's error-middleware signature (arity 4).
type ErrorMiddleware = (error: unknown, req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** What body-parser (behind express.json) throws for a body it could not take. */
interface BodyParserError {
  type?: string;
  body?: string;
  limit?: number;
}

/** body-parser's refusals of a body, by its error `type`, as mcpkit refuses the same. */
const PARSER_REFUSALS: ReadonlyMap<string, readonly [RefusalCode, string]> = new Map([
  [
    'entity.too.large',
    ['PAYLOAD_TOO_LARGE', "Payload Too Large: the body is larger than the host app's parser allows"],
  ],
  [
    'parameters.too.many',
    [
      'PAYLOAD_TOO_LARGE',
      "Payload Too Large: the body has more parameters than the host app's parser allows",
    ],
  ],
  [
    'encoding.unsupported',
    [
      'UNSUPPORTED_MEDIA_TYPE',
      "Unsupported Media Type: the host app's parser cannot decode this Content-Encoding",
    ],
  ],
  [
    'charset.unsupported',
    ['UNSUPPORTED_MEDIA_TYPE', "Unsupported Media Type: the host app's parser cannot read this charset"],
  ],
  ['request.aborted', ['INVALID_REQUEST', 'Bad Request: the body could not be read']],
  ['request.size.invalid', ['INVALID_REQUEST', 'Bad Request: the body could not be read']],
]);

/** A body-parser refusal as mcpkit's own, or `undefined` for another error (the host app's to handle). */
function parserRefusal(failure: BodyParserError | undefined): Refusal | undefined {
  const known = typeof failure?.type === 'string' ? PARSER_REFUSALS.get(failure.type) : undefined;
  if (!known) return undefined;
  const [code, message] = known;
  const limit = typeof failure?.limit === 'number' ? ` (${failure.limit} bytes)` : '';
  return refuse(code, code === 'PAYLOAD_TOO_LARGE' ? `${message}${limit}` : message);
}

/**
 * Express middleware (Express 5, and 4) serving mcpkit's MCP endpoint and REST API wherever it is
 * mounted. It works whether or not `express.json()` ran before it: a body that parser already read
 * is re-serialised, and a body it refused reaches mcpkit's own error answers (JSON, never Express's
 * HTML page). Mount it before `express.json()` to keep mcpkit's own body limit in force.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { mcpkitExpress } from 'mcpkit/express';
 *
 * const app = express();
 * app.get('/', (_req, res) => res.send('my app'));
 * app.use('/api', mcpkitExpress(server)); // MCP at /api/mcp, REST at /api/tools, …
 * // (an array of a handler and an error handler: app.use takes it as it is)
 * app.listen(3000, '127.0.0.1');
 * ```
 */
export function mcpkitExpress(
  server: McpKitServer,
  options: McpkitExpressOptions = {},
): [Middleware, ErrorMiddleware] {
  /** Answers one exchange: with the body a parser already read, or the refusal of one that failed. */
  const serve = (
    req: IncomingMessage,
    res: ServerResponse,
    { body, refusal }: { body?: Uint8Array | string | undefined; refusal?: Refusal },
  ) => {
    // Everything from here on is answered by mcpkit, failures included (JSON, never Express's page).
    try {
      const source = requestSource(req, server.httpOptions.trustProxy);
      // Express strips its mount point from req.url: the handler sees the path the client sent and is
      // told where it is mounted, so what it links to (the index, OpenAPI's servers) includes it.
      const { baseUrl, originalUrl } = req as MountedRequest;
      const mounted = typeof baseUrl === 'string' && baseUrl !== '' && typeof originalUrl === 'string';
      const request = bridgeRequest(req, res, {
        source,
        ...(body !== undefined && { body }),
        ...(mounted && { target: originalUrl }),
      });
      server
        .fetch(request, {
          ...(source.address !== undefined && { clientAddress: source.address }),
          ...(mounted && { basePath: joinPaths(baseUrl, server.httpOptions.basePath) }),
          ...options.fetchOptions?.(req),
          ...(refusal && { refusal }),
        })
        .then((response) => writeWebResponse(req, res, response))
        .catch(() => failed(res));
    } catch {
      failed(res);
    }
  };
  const handler: Middleware = (req, res) => serve(req, res, { body: consumedBody(req as ParsedRequest) });
  // biome-ignore lint/complexity/useMaxParams: Express's error-middleware signature (arity 4).
  const onParserError: ErrorMiddleware = (error, req, res, next) => {
    const failure = error as BodyParserError;
    // Malformed JSON: hand mcpkit the raw text, so it answers as the route would (-32700 or a problem).
    if (failure?.type === 'entity.parse.failed' && typeof failure.body === 'string') {
      serve(req, res, { body: failure.body });
      return;
    }
    // A body the parser refused otherwise (too large, an encoding or charset it cannot read): mcpkit
    // answers it as it answers its own refusals, in the route's form, after Host, Origin and credentials.
    const refusal = parserRefusal(failure);
    if (refusal) {
      serve(req, res, { body: '', refusal });
      return;
    }
    next(error);
  };
  return [handler, onParserError];
}
