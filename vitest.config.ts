import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const r = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^mcpkit\/node$/, replacement: r('./src/node/index.ts') },
      { find: /^mcpkit\/unstable$/, replacement: r('./src/unstable.ts') },
      { find: /^mcpkit\/testing$/, replacement: r('./src/testing/index.ts') },
      { find: /^mcpkit\/client$/, replacement: r('./src/client/index.ts') },
      { find: /^mcpkit\/express$/, replacement: r('./src/adapters/express.ts') },
      { find: /^mcpkit\/fastify$/, replacement: r('./src/adapters/fastify.ts') },
      { find: /^mcpkit\/hono$/, replacement: r('./src/adapters/hono.ts') },
      { find: /^mcpkit\/redis$/, replacement: r('./src/redis/index.ts') },
      { find: /^mcpkit$/, replacement: r('./src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    globalSetup: ['test/globalSetup.ts'],
    coverage: {
      provider: 'v8',
      include: ['src/**'],
      reporter: ['text-summary', 'html', 'cobertura', 'lcov'],
      reportsDirectory: 'coverage',
    },
  },
});
