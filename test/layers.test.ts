/**
 * The layering lint (`.dependency-cruiser.cjs`, run by `npm run lint`) reports a wrong import: each
 * rule is run on a small tree written to a temporary folder with one forbidden import in it, and must
 * name that import; the imports the layers allow stay quiet; and src/ itself passes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type IConfiguration, type ICruiseResult } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const config = createRequire(import.meta.url)(`${root}.dependency-cruiser.cjs`) as IConfiguration;
const folders: string[] = [];

afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

interface Reported {
  rule: string;
  from: string;
  to: string;
}

/** The violations the project's rules report on `baseDir`'s src/. */
async function violations(baseDir: string): Promise<Reported[]> {
  const { output } = await cruise(['src'], {
    ...config.options,
    ruleSet: { forbidden: config.forbidden ?? [] },
    validate: true,
    baseDir,
  });
  const result = output as ICruiseResult;
  return result.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

/**
 * A temporary tree: `importer` (a path below src/) imports each of `imports` (specifiers relative to
 * it, or a package), and every imported src/ file exists.
 */
function tree(importer: string, imports: string[], typeOnly = false): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcpkit-layers-'));
  folders.push(dir);
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  };
  const lines = imports.map((specifier, i) => {
    if (specifier.startsWith('.')) {
      const target = path.posix.join(path.posix.dirname(importer), specifier).replace(/\.js$/, '.ts');
      write(target, `export interface Shape${i} { n: number }\nexport const value${i} = 1;\n`);
    }
    return typeOnly
      ? `import type { Shape${i} } from '${specifier}';\nexport type T${i} = Shape${i};`
      : `import * as m${i} from '${specifier}';\nexport const v${i} = m${i};`;
  });
  write(importer, `${lines.join('\n')}\n`);
  return dir;
}

describe('the layering lint', () => {
  it.each([
    ['core-imports-only-core', 'src/core/pieces.ts', '../http/handler.js', 'src/http/handler.ts'],
    ['core-imports-only-core', 'src/core/pieces.ts', '../policy/policy.js', 'src/policy/policy.ts'],
    ['core-is-runtime-neutral', 'src/core/pieces.ts', 'node:fs', 'fs'],
    ['services-not-doors', 'src/completions/manager.ts', '../http/safeJson.js', 'src/http/safeJson.ts'],
    ['services-not-doors', 'src/telemetry/standard.ts', '../http/overload.js', 'src/http/overload.ts'],
    ['services-not-doors', 'src/policy/policy.ts', '../protocol/methods.js', 'src/protocol/methods.ts'],
    ['services-not-doors', 'src/declarative.ts', './server.js', 'src/server.ts'],
    ['managers-independent', 'src/completions/manager.ts', '../tasks/manager.js', 'src/tasks/manager.ts'],
    [
      'managers-independent',
      'src/integrations/manager.ts',
      '../completions/manager.js',
      'src/completions/manager.ts',
    ],
    ['protocol-below-http', 'src/protocol/session.ts', '../http/handler.js', 'src/http/handler.ts'],
    ['http-below-node', 'src/http/handler.ts', '../node/bridge.js', 'src/node/bridge.ts'],
    ['root-below-entries', 'src/server.ts', './node/listen.js', 'src/node/listen.ts'],
    ['node-not-adapters', 'src/node/listen.ts', '../adapters/express.js', 'src/adapters/express.ts'],
    ['adapters-use-the-contract', 'src/adapters/hono.ts', '../http/handler.js', 'src/http/handler.ts'],
    ['adapters-use-the-contract', 'src/adapters/express.ts', '../policy/refusal.js', 'src/policy/refusal.ts'],
    ['adapters-name-only-server-types', 'src/adapters/fastify.ts', '../server.js', 'src/server.ts'],
    ['client-stands-alone', 'src/client/index.ts', '../core/errors.js', 'src/core/errors.ts'],
    ['client-is-runtime-neutral', 'src/client/index.ts', 'node:fs', 'fs'],
    ['client-names-only-types', 'src/client/index.ts', '../completions/types.js', 'src/completions/types.ts'],
    ['client-is-a-leaf', 'src/node/websocket.ts', '../client/index.js', 'src/client/index.ts'],
    ['redis-is-a-leaf-over-services', 'src/redis/index.ts', '../http/handler.js', 'src/http/handler.ts'],
    ['redis-is-a-leaf-over-services', 'src/redis/index.ts', '../server.js', 'src/server.ts'],
    ['nothing-imports-redis', 'src/services.ts', './redis/index.js', 'src/redis/index.ts'],
    ['nothing-imports-redis', 'src/node/listen.ts', '../redis/rateLimits.js', 'src/redis/rateLimits.ts'],
    ['services-not-doors', 'src/state/shared.ts', '../http/handler.js', 'src/http/handler.ts'],
  ])('%s: reports %s importing %s', async (rule, importer, specifier, to) => {
    const found = await violations(tree(importer, [specifier]));
    expect(found).toContainEqual({ rule, from: importer, to });
  });

  it('counts a type-only import as an import', async () => {
    const found = await violations(tree('src/core/pieces.ts', ['../http/handler.js'], true));
    expect(found).toEqual([
      { rule: 'core-imports-only-core', from: 'src/core/pieces.ts', to: 'src/http/handler.ts' },
    ]);
  });

  it.each([
    ['src/core/pieces.ts', ['./errors.js']],
    ['src/http/rest.ts', ['../core/paginate.js', '../protocol/gate.js', '../policy/policy.js']],
    ['src/protocol/gate.ts', ['../policy/policy.js', '../tasks/manager.js', '../core/refusal.js']],
    ['src/completions/manager.ts', ['../providers/http.js', '../catalog/tools.js', '../executor.js']],
    ['src/tasks/manager.ts', ['../execution/executor.js']],
    ['src/adapters/express.ts', ['../node/bridge.js', '../core/refusal.js', './mount.js']],
    ['src/adapters/fastify.ts', ['../node/bridge.js', '../node/pacer.js']],
    ['src/node/websocket.ts', ['../http/answers.js', '../protocol/fence.js', '../server.js']],
    ['src/redis/index.ts', ['../state/shared.js', '../policy/rateLimit.js', './rateLimits.js']],
  ])('allows %s to import %j', async (importer, imports) => {
    expect(await violations(tree(importer, imports))).toEqual([]);
  });

  it('allows an adapter the server contract as types', async () => {
    expect(await violations(tree('src/adapters/hono.ts', ['../server.js'], true))).toEqual([]);
  });

  it('finds nothing wrong in src/', async () => {
    expect(await violations(root)).toEqual([]);
  }, 30_000);
});
