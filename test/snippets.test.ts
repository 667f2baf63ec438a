/**
 * `scripts/check-snippets.mjs` passes snippets that match the API and fails on one that drifted,
 * saying where it is in its Markdown file. One run of the check (a whole compile) serves both.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

const DOCUMENT = [
  '# Snippets', // 1
  '',
  '```ts',
  "const server = createMcpServer({ name: 'demo' });", // 4: good, imports left out
  "server.tools.register({ name: 'add', inputSchema: { a: z.number() }, handler: ({ a }) => String(a + 1) });",
  '```',
  '',
  '```ts',
  "http: { allowedHosts: ['mcp.example.com'] },", // 9: good options
  '```',
  '',
  '```ts',
  "server.tools.register({ name: 'add', inputSchema: { a: z.number() }, handler: ({ a }) => a.toUpperCase() });", // 13
  '```',
  '',
  '```ts',
  'http: {',
  "  allowedHostz: ['mcp.example.com'],", // 18
  '},',
  '```',
  '',
  '```ts',
  "import { listen } from 'mcpkit';", // 23
  '```',
  '',
  '```ts fragment',
  'this is not TypeScript',
  '```',
].join('\n');

it('passes what matches the API and fails on what drifted, at its Markdown line', { timeout: 90_000 }, () => {
  const folder = mkdtempSync(join(tmpdir(), 'mcpkit-snippets-'));
  try {
    const document = join(folder, 'doc.md');
    writeFileSync(document, DOCUMENT);
    const result = spawnSync(process.execPath, [join(root, 'scripts/check-snippets.mjs')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, MCPKIT_SNIPPET_DOCS: document, MCPKIT_SNIPPET_OUT: '.snippets-test' },
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status).toBe(1);
    expect(output).toContain('5 snippets checked');
    const errors = output.split('\n').filter((line) => line.includes(': error TS'));
    expect(errors.map((line) => /doc\.md:(\d+):/.exec(line)?.[1])).toEqual(['13', '18', '23']);
    expect(errors[0]).toContain("Property 'toUpperCase' does not exist on type 'number'");
    expect(errors[1]).toContain("'allowedHostz' does not exist in type 'HttpOptions'");
    expect(errors[2]).toContain("has no exported member 'listen'");
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
