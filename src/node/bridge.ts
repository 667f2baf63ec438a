import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The one bridge between node:http and the web-standard handler, used by `listen()` and by every
 * framework adapter.
 *
 * - The body is streamed, with backpressure; if the handler stops reading early (a body over the
 *   limit), the rest is drained and the socket closed once the response is out.
 * - The request's `signal` aborts when the client goes away.
 * - The response is streamed with backpressure; SSE headers are flushed at once.
 */
export function toWebRequest(req: IncomingMessage, res?: ServerResponse): Request {
  const controller = new AbortController();
  if (res) {
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
  }
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    // HTTP/2 pseudo-headers are not valid in a Headers object
    if (name.startsWith(':')) continue;
    try {
      headers.append(name, req.rawHeaders[i + 1]!);
    } catch {
      // a header value undici refuses is dropped, not fatal
    }
  }
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://localhost');
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: controller.signal };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = bodyStream(req);
    init.duplex = 'half';
  }
  return new Request(url, init);
}

function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let discarding = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.on('data', (chunk: Buffer) => {
          if (discarding) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 1) <= 0) req.pause();
        });
        req.once('end', () => {
          if (!discarding) controller.close();
        });
        req.once('error', (error) => {
          if (!discarding) controller.error(error);
        });
      },
      pull() {
        req.resume();
      },
      cancel() {
        discarding = true;
        req.resume();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
}

/** Writes a web `Response` to a node:http response, streaming the body with backpressure. */
export async function writeWebResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  const cookies = response.headers.getSetCookie();
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie') continue;
    res.setHeader(name, value);
  }
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  // A request body the handler did not read (refused as too large, say) would hold the socket.
  if (!req.complete) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.destroy());
  }
  if (!response.body) {
    res.end();
    return;
  }
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) res.flushHeaders();
  const reader = response.body.getReader();
  const onClose = () => {
    reader.cancel().catch(() => {});
  };
  res.once('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const settle = () => {
            res.off('drain', settle);
            res.off('close', settle);
            resolve();
          };
          res.once('drain', settle);
          res.once('close', settle);
        });
      }
    }
  } catch {
    // the stream failed or the client left; nothing more can be sent
  } finally {
    res.off('close', onClose);
    if (!res.destroyed) res.end();
  }
}

/** A node:http request listener over a web-standard `fetch` handler. */
export function toNodeListener(
  fetch: (request: Request) => Promise<Response>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let request: Request;
    try {
      request = toWebRequest(req, res);
    } catch {
      res.statusCode = 400;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32600, message: 'Bad request' }, id: null }));
      return;
    }
    fetch(request)
      .then((response) => writeWebResponse(req, res, response))
      .catch(() => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }),
          );
        } else res.destroy();
      });
  };
}
