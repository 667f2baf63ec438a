import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { bridgeRequest, failed, requestSource, writeWebResponse } from '../node/bridge.js';
import { RequestPacer } from '../node/pacer.js';
import type { FetchOptions, McpKitServer } from '../server.js';
import { joinPaths } from './mount.js';

/** Options for {@link mcpkitFastify}. */
export interface McpkitFastifyOptions {
  server: McpKitServer;
  /** Per-request fetch options, e.g. `authInfo` from your own authentication hook. */
  fetchOptions?: (request: FastifyRequest) => FetchOptions | undefined;
}

/**
 * A Fastify 5 plugin serving mcpkit's MCP endpoint and REST API under the prefix it is registered
 * with. It is encapsulated: inside it every content type is left unparsed for mcpkit to read (with
 * its own size limit), while the host app's parsers and routes elsewhere stay as they are.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { mcpkitFastify } from 'mcpkit/fastify';
 *
 * const app = Fastify();
 * app.get('/', async () => 'my app');
 * await app.register(mcpkitFastify, { server, prefix: '/api' });
 * await app.listen({ port: 3000, host: '127.0.0.1' });
 * ```
 */
export const mcpkitFastify: FastifyPluginAsync<McpkitFastifyOptions> = async (
  fastify: FastifyInstance,
  options: McpkitFastifyOptions,
) => {
  const { server } = options;
  if (!server || typeof server.fetch !== 'function') throw new TypeError('mcpkitFastify needs { server }');
  fastify.removeAllContentTypeParsers();
  // Leave the raw body stream unread: mcpkit reads it, once, with its own limit.
  fastify.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  // `http.basePath` sits below the plugin's prefix, as below an Express mount point.
  const basePath = joinPaths(fastify.prefix, server.httpOptions.basePath);
  const serve = async (request: FastifyRequest, reply: FastifyReply, queuedMs: number) => {
    try {
      // mcpkit's `http.trustProxy` decides who the client is, whatever Fastify's own setting.
      const source = requestSource(request.raw, server.httpOptions.trustProxy);
      const fetchOptions = {
        ...(source.address !== undefined && { clientAddress: source.address }),
        queuedMs,
        ...options.fetchOptions?.(request),
        basePath,
      };
      const response = await server.fetch(bridgeRequest(request.raw, reply.raw, { source }), fetchOptions);
      await writeWebResponse(request.raw, reply.raw, response);
    } catch {
      failed(reply.raw);
    }
  };
  // As under listen(): requests are served in bounded turns of the event loop, so the server keeps
  // accepting connections under load, and overload shedding sees how long each one waited (see
  // node/pacer.ts). A request whose client left while it waited is not started.
  const pacer = new RequestPacer<[FastifyRequest, FastifyReply]>(([request, reply], waited) => {
    if (reply.raw.destroyed) return;
    void serve(request, reply, waited);
  });
  const accepted = () => pacer.accepted();
  fastify.server.on('connection', accepted);
  fastify.addHook('onClose', (_instance, done) => {
    fastify.server.off('connection', accepted);
    done();
  });
  const handler = (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    pacer.push([request, reply]);
  };
  fastify.all('/', handler);
  fastify.all('/*', handler);
};

Object.assign(mcpkitFastify, {
  [Symbol.for('fastify.display-name')]: 'mcpkit',
  [Symbol.for('plugin-meta')]: { name: 'mcpkit', fastify: '5.x' },
});
