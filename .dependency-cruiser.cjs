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
 *   adapters/   Express, Fastify, Hono: only the public server contract
 *
 * A layer may import what is below it and never what is above it. Type-only imports count.
 */

/** Every service-layer module (the "core code"), by path below the repository root. */
const SERVICES =
  '^src/(catalog|execution|integrations|completions|tasks|providers|telemetry|policy|net)/' +
  '|^src/(executor|schema|config|logger|types|declarative)\\.ts$';
/** The doors and everything above them: what no service imports. */
const DOORS_AND_ABOVE = '^src/(protocol|http|node|adapters|testing)/|^src/(server|index)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-imports-only-core',
      comment:
        'src/core/ is the bottom layer: it imports nothing from the rest of src/ (move the shared piece down into core/ instead).',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'core-is-runtime-neutral',
      comment:
        'src/core/ runs on every runtime: no Node built-in, no framework, no package at all (web globals only).',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { pathNot: '^src/' },
    },
    {
      name: 'services-not-doors',
      comment:
        'Services (catalogs, executor, policy, telemetry, managers, providers, …) import no door: not protocol/, http/, node/, adapters/, testing/, nor server.ts or index.ts. Policy in particular does not import protocol/.',
      severity: 'error',
      from: { path: SERVICES },
      to: { path: DOORS_AND_ABOVE },
    },
    {
      name: 'managers-independent',
      comment:
        'The managers (integrations/, completions/, tasks/) do not import each other: the composition root wires them through injected interfaces or the event bus.',
      severity: 'error',
      from: { path: '^src/(integrations|completions|tasks)/' },
      to: { path: '^src/(integrations|completions|tasks)/', pathNot: '^src/$1/' },
    },
    {
      name: 'protocol-below-http',
      comment:
        'protocol/ (MCP sessions over the SDK) imports no HTTP, Node or adapter code, nor the composition root.',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: '^src/(http|node|adapters|testing)/|^src/(server|index)\\.ts$' },
    },
    {
      name: 'http-below-node',
      comment: 'http/ is the runtime-neutral fetch handler: no Node door, adapter or composition root in it.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/(node|adapters|testing)/|^src/(server|index)\\.ts$' },
    },
    {
      name: 'root-below-entries',
      comment:
        'The composition root (server.ts) imports no entry of its own: not node/, adapters/, testing/ or index.ts.',
      severity: 'error',
      from: { path: '^src/server\\.ts$' },
      to: { path: '^src/(node|adapters|testing)/|^src/index\\.ts$' },
    },
    {
      name: 'node-not-adapters',
      comment: 'node/ is what the adapters stand on, not the other way round.',
      severity: 'error',
      from: { path: '^src/(node|testing)/' },
      to: { path: '^src/adapters/|^src/index\\.ts$' },
    },
    {
      name: 'adapters-use-the-contract',
      comment:
        'Adapters translate only, over the public server contract: server.ts (types only), node/bridge.ts (the Node request/response bridge), core/ and each other. Anything else they need belongs in that contract first.',
      severity: 'error',
      from: { path: '^src/adapters/' },
      to: { path: '^src/', pathNot: '^src/(adapters|core)/|^src/server\\.ts$|^src/node/bridge\\.ts$' },
    },
    {
      name: 'adapters-name-only-server-types',
      comment: 'Adapters hold the server they are given: from server.ts they import types, never values.',
      severity: 'error',
      from: { path: '^src/adapters/' },
      to: { path: '^src/server\\.ts$', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: a layer may not name an upper layer's types either.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
