import { copyFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    unstable: 'src/unstable.ts',
    node: 'src/node/index.ts',
    testing: 'src/testing/index.ts',
    client: 'src/client/index.ts',
    express: 'src/adapters/express.ts',
    fastify: 'src/adapters/fastify.ts',
    hono: 'src/adapters/hono.ts',
    redis: 'src/redis/index.ts',
  },
  // Optional peers (frameworks, ws, the SDK client of mcpkit/testing, ioredis): never bundled.
  external: ['express', 'fastify', 'hono', 'ws', '@modelcontextprotocol/client', 'ioredis'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
  // Which build a module is in, for the few places that must differ (mcpkit/testing's client load).
  // The isolation runner (and the reader of declarative tools' answers) is plain JavaScript loaded by worker threads and child processes, from
  // beside the chunk that starts them (src/node/isolation/pools.ts finds it).
  async onSuccess() {
    copyFileSync('src/node/isolation/runner.mjs', 'dist/isolation-runner.mjs');
    copyFileSync('src/node/isolation/httpAnswer.mjs', 'dist/isolation-http-answer.mjs');
  },
  esbuildOptions(options, context) {
    options.define = { ...options.define, __MCPKIT_CJS__: context.format === 'cjs' ? 'true' : 'false' };
  },
});
