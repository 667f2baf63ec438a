/**
 * The layers of src/, checked by `npm run lint` (`depcruise src`) and proven by test/layers.test.ts.
 * docs/architecture.md draws them; from the bottom up:
 *
 *   core/       runtime-neutral pieces every layer shares (errors, redaction, JSON safety, body
 *               limits, paginator, SSE writer, refusals, option checks, paths): imports only core/
 *   services    catalogs, the executor, schema, config, logger, declarative tools, net/, providers/,
 *               telemetry/, policy/ and the managers (tasks/, integrations/, completions/)
 *   protocol/   MCP sessions over the SDK, the admission gate, wire JSON
 *   http/       the fetch handler, REST routes, HTTP session transports
 *   server.ts   the composition root
 *   node/, testing/   the Node doors and the test helpers
 *   redis/      mcpkit/redis: shared implementations of the state seams (state/) over ioredis; it
 *               stands on services and core only, and nothing in src/ imports it
 *   adapters/   Express, Fastify, Hono: only the public server contract
 *
 * A layer may import what is below it and never what is above it. Type-only imports count.
 */

/** Every service-layer module (the "core code"), by path below the repository root. */
const SERVICES =
  '^src/(catalog|execution|integrations|completions|tasks|providers|telemetry|policy|net|state)/' +
  '|^src/(schema|config|logger|types|declarative)\\.ts$';
/** The doors and everything above them: what no service imports. */
const DOORS_AND_ABOVE =
  '^src/(protocol|http|node|adapters|testing)/|^src/(server|services|index|unstable)\\.ts$';

/**
 * A rule: nothing matching `from` imports what `to` describes (a path pattern, or a dependency
 * matcher of dependency-cruiser's own).
 */
function forbid(name, comment, from, to) {
  return {
    name,
    comment,
    severity: 'error',
    from: typeof from === 'string' ? { path: from } : from,
    to: typeof to === 'string' ? { path: to } : to,
  };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    forbid(
      'core-imports-only-core',
      'src/core/ is the bottom layer: it imports nothing from the rest of src/ (move the shared piece down into core/ instead).',
      '^src/core/',
      { path: '^src/', pathNot: '^src/core/' },
    ),
    forbid(
      'core-is-runtime-neutral',
      'src/core/ runs on every runtime: no Node built-in, no framework, no package at all (web globals only).',
      '^src/core/',
      { pathNot: '^src/' },
    ),
    forbid(
      'services-not-doors',
      'Services (catalogs, executor, policy, telemetry, managers, providers, …) import no door: not protocol/, http/, node/, adapters/, testing/, nor server.ts or index.ts. Policy in particular does not import protocol/.',
      SERVICES,
      DOORS_AND_ABOVE,
    ),
    forbid(
      'managers-independent',
      'The managers (integrations/, completions/, tasks/) do not import each other: the composition root wires them through injected interfaces or the event bus.',
      '^src/(integrations|completions|tasks)/',
      { path: '^src/(integrations|completions|tasks)/', pathNot: '^src/$1/' },
    ),
    forbid(
      'protocol-below-http',
      'protocol/ (MCP sessions over the SDK) imports no HTTP, Node or adapter code, nor the composition root.',
      '^src/protocol/',
      '^src/(http|node|adapters|testing)/|^src/(server|index)\\.ts$',
    ),
    forbid(
      'http-below-node',
      'http/ is the runtime-neutral fetch handler: no Node door, adapter or composition root in it.',
      '^src/http/',
      '^src/(node|adapters|testing)/|^src/(server|index)\\.ts$',
    ),
    forbid(
      'root-below-entries',
      'The composition root (server.ts, and services.ts that it builds on) imports no entry of its own: not node/, adapters/, testing/, index.ts or unstable.ts.',
      '^src/(server|services)\\.ts$',
      '^src/(node|adapters|testing)/|^src/(index|unstable)\\.ts$',
    ),
    forbid(
      'redis-is-a-leaf-over-services',
      'redis/ (the mcpkit/redis entry) implements the state seams: it imports core/, state/, policy/ and the service types, never a door or the composition root.',
      '^src/redis/',
      '^src/(protocol|http|node|adapters|testing)/|^src/(server|services|index|unstable)\\.ts$',
    ),
    forbid(
      'nothing-imports-redis',
      'Only the mcpkit/redis entry loads ioredis: nothing else in src/ imports redis/, so the root stays free of it.',
      '^src/(?!redis/)',
      '^src/redis/',
    ),
    forbid(
      'node-not-adapters',
      'node/ is what the adapters stand on, not the other way round.',
      '^src/(node|testing)/',
      '^src/adapters/|^src/index\\.ts$',
    ),
    forbid(
      'client-stands-alone',
      'src/client/ (mcpkit/client) runs in browsers: it imports nothing of src/ but the completion types (type-only), and no package or Node built-in.',
      '^src/client/',
      { path: '^src/', pathNot: '^src/client/|^src/completions/types\\.ts$' },
    ),
    forbid(
      'client-is-runtime-neutral',
      'mcpkit/client runs in browsers: no Node built-in and no package (web globals only).',
      '^src/client/',
      { pathNot: '^src/' },
    ),
    forbid(
      'client-names-only-types',
      'mcpkit/client takes only types from the server side: a value import would pull server code into a browser bundle.',
      '^src/client/',
      { path: '^src/completions/', dependencyTypesNot: ['type-only'] },
    ),
    forbid(
      'client-is-a-leaf',
      'Nothing of the server imports mcpkit/client: it is a separate entry for the other side of the wire.',
      { pathNot: '^src/client/' },
      '^src/client/',
    ),
    forbid(
      'adapters-use-the-contract',
      'Adapters translate only, over the public server contract: server.ts (types only), node/bridge.ts and node/pacer.ts (the Node request/response bridge and its request queue), core/ and each other. Anything else they need belongs in that contract first.',
      '^src/adapters/',
      { path: '^src/', pathNot: '^src/(adapters|core)/|^src/server\\.ts$|^src/node/(bridge|pacer)\\.ts$' },
    ),
    forbid(
      'adapters-name-only-server-types',
      'Adapters hold the server they are given: from server.ts they import types, never values.',
      '^src/adapters/',
      { path: '^src/server\\.ts$', dependencyTypesNot: ['type-only'] },
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: a layer may not name an upper layer's types either.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
