import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    unstable: 'src/unstable.ts',
    node: 'src/node/index.ts',
    testing: 'src/testing/index.ts',
    express: 'src/adapters/express.ts',
    fastify: 'src/adapters/fastify.ts',
    hono: 'src/adapters/hono.ts',
  },
  // Frameworks are optional peers: never bundled.
  external: ['express', 'fastify', 'hono', '@hono/node-server', 'ws'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
});
