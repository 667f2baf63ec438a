#!/usr/bin/env node
/**
 * Type-checks every TypeScript block (```ts) of README.md and docs/*.md against the source, so no
 * snippet can drift from the API. Each block becomes a module of its own under `.snippets/` (removed
 * afterwards), compiled with the project's tsconfig (`mcpkit` and its subpaths resolve to `src/`)
 * and a few ambient names that prose around a snippet introduces (`server`, an app, a client):
 * a block that declares one of them itself shadows the ambient one. An error is reported at its
 * line in the Markdown file.
 *
 * A snippet may use a name of mcpkit's entries (or `z` of zod) without importing it, as prose
 * shows a call without repeating its imports: the check imports it from the entry that exports it.
 * A snippet that imports a name from the wrong entry still fails.
 *
 * A block that shows options of `createMcpServer` (it begins with `name: …` or `name: {`) is checked
 * as the body of a `Partial<CreateMcpServerOptions>` literal, so a misspelt or mistyped option fails
 * too. A block that is deliberately not TypeScript on its own is written ```ts fragment and skipped;
 * the check prints how many were.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, process.env.MCPKIT_SNIPPET_OUT ?? '.snippets');

const AMBIENT = `import type { McpKitServer } from 'mcpkit';
import type { Express } from 'express';
import type { FastifyInstance } from 'fastify';
import type { Hono } from 'hono';
import type { Server } from 'node:http';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
declare global {
  /** The server the prose around a snippet has created. */
  const server: McpKitServer;
  /** The reader's own application, which snippets mount mcpkit on. */
  const app: Express;
  const fastify: FastifyInstance;
  const hono: Hono;
  const httpServer: Server;
  const request: Request;
  /** The reader's own code and data, which snippets call. */
  const config: Record<string, unknown>;
  const json: string;
  const logoBase64: string;
  const cities: string[];
  const users: Array<{ id: string; name: string }>;
  function ordersOf(userId: string, status?: unknown): unknown[];
  const index: { search(query: string, options: { limit?: number; signal?: AbortSignal }): Promise<unknown[]> };
  const db: { ping(): Promise<boolean> };
  function fetchForecast(city: string, days: number, signal?: AbortSignal): Promise<{ temperature: number; conditions: string }>;
  function renderReport(month: string, signal?: AbortSignal): Promise<string>;
  function slowGreeting(name: string, signal?: AbortSignal): Promise<string>;
  function askName(): import('@modelcontextprotocol/server').InputRequest;
  function introspect(token: string): Promise<import('@modelcontextprotocol/server').AuthInfo>;
  const logger: { info(fields: object, message?: string): void; debug(fields: object, message?: string): void };
  const metrics: { increment(name: string, labels: Record<string, string | undefined>): void };
  const exporter: SpanExporter;
}
export {};
`;

/** The names the ambient declarations give: never imported from an entry. */
const AMBIENT_NAMES = new Set([...AMBIENT.matchAll(/^ {2}(?:const|function) (\w+)/gm)].map((m) => m[1]));

/** Where each entry's source is. */
const ENTRIES = {
  mcpkit: 'src/index.ts',
  'mcpkit/node': 'src/node/index.ts',
  'mcpkit/testing': 'src/testing/index.ts',
  'mcpkit/client': 'src/client/index.ts',
  'mcpkit/express': 'src/adapters/express.ts',
  'mcpkit/fastify': 'src/adapters/fastify.ts',
  'mcpkit/hono': 'src/adapters/hono.ts',
  'mcpkit/redis': 'src/redis/index.ts',
};

/** Every name an entry exports, under its exported name: name → its entry, and whether it is a type. */
function exportedNames() {
  const names = new Map([['z', { entry: 'zod', type: false }]]);
  for (const [entry, path] of Object.entries(ENTRIES)) {
    const source = readFileSync(join(root, path), 'utf8');
    for (const list of source.matchAll(/^export (type )?\{([^}]*)\}/gm)) {
      for (const item of list[2].split(',')) {
        const type = list[1] !== undefined || /^\s*type\s/.test(item);
        const name = item
          .replace(/^\s*type\s+/, '')
          .split(/\s+as\s+/)
          .pop()
          .trim();
        if (name && !names.has(name)) names.set(name, { entry, type });
      }
    }
    for (const declared of source.matchAll(
      /^export (?:declare )?(?:async )?(const|function|class|interface|type) (\w+)/gm,
    )) {
      const type = declared[1] === 'interface' || declared[1] === 'type';
      if (!names.has(declared[2])) names.set(declared[2], { entry, type });
    }
  }
  return names;
}

/** The imports a snippet leaves out: each name it uses but neither imports nor declares. */
function missingImports(code, names) {
  const declared = new Set();
  for (const m of code.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const item of m[1].split(','))
      declared.add(
        item
          .replace(/^\s*type\s+/, '')
          .split(/\s+as\s+/)
          .pop()
          .trim(),
      );
  }
  for (const m of code.matchAll(/import\s+(?:\*\s+as\s+)?(\w+)\s+from/g)) declared.add(m[1]);
  for (const m of code.matchAll(/\b(?:const|let|var|function|class|interface|type)\s+(\w+)/g))
    declared.add(m[1]);
  const byEntry = new Map();
  for (const [name, { entry, type }] of names) {
    if (declared.has(name) || AMBIENT_NAMES.has(name)) continue;
    if (!new RegExp(`(?<![\\w.'"])${name}\\b`).test(code)) continue;
    byEntry.set(entry, [...(byEntry.get(entry) ?? []), type ? `type ${name}` : name]);
  }
  return [...byEntry].map(([entry, list]) => `import { ${list.join(', ')} } from '${entry}';`).join(' ');
}

/** The Markdown files whose snippets are checked (`MCPKIT_SNIPPET_DOCS`, `:`-separated, for tests). */
function documents() {
  if (process.env.MCPKIT_SNIPPET_DOCS) return process.env.MCPKIT_SNIPPET_DOCS.split(':');
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(root, 'docs', name));
  return [join(root, 'README.md'), ...docs];
}

/** The ```ts blocks of one Markdown text: their first line number (1-based) and code. */
export function extractSnippets(markdown) {
  const lines = markdown.split('\n');
  const snippets = [];
  let skipped = 0;
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(ts|typescript)(\s+fragment)?\s*$/.exec(lines[i]);
    if (!fence) continue;
    const indent = fence[1].length;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    if (fence[3]) skipped++;
    else
      snippets.push({
        line: start + 1,
        code: lines
          .slice(start, end)
          .map((l) => l.slice(indent))
          .join('\n'),
      });
    i = end;
  }
  return { snippets, skipped };
}

/** Writes the snippets as modules; what each generated file maps back to. */
function writeSnippets() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'ambient.d.ts'), AMBIENT);
  const names = exportedNames();
  const sources = new Map();
  let count = 0;
  let skipped = 0;
  for (const document of documents()) {
    const found = extractSnippets(readFileSync(document, 'utf8'));
    skipped += found.skipped;
    for (const snippet of found.snippets) {
      const name = `${relative(root, document).replace(/[/.]/g, '_')}_${snippet.line}.ts`;
      // Options of createMcpServer: the body of an options literal.
      const options = /^\s*(\/\/[^\n]*\n\s*)*[A-Za-z]+: /.test(snippet.code);
      // On the snippet's first line, so its line numbers stay those of the Markdown.
      const imports = missingImports(snippet.code, names);
      const prelude = `${imports}${options ? ` const options: Partial<import('mcpkit').CreateMcpServerOptions> = {` : ''}\n`;
      const epilogue = options ? '\n};\nvoid options;' : '';
      // A module of its own, so its names never clash with another snippet's.
      writeFileSync(join(out, name), `${prelude}${snippet.code}${epilogue}\nexport {};\n`);
      sources.set(name, { document: relative(root, document), line: snippet.line - 1 });
      count++;
    }
  }
  const files = ['ambient.d.ts', ...sources.keys()];
  writeFileSync(
    join(out, 'tsconfig.json'),
    JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true }, files }, null, 2),
  );
  return { sources, count, skipped };
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const { sources, count, skipped } = writeSnippets();
  const cleanup = () => rmSync(out, { recursive: true, force: true });
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json'), '--pretty', 'false'], {
    cwd: root,
    encoding: 'utf8',
  });
  cleanup();
  const report = `${result.stdout}${result.stderr}`.replace(
    new RegExp(`^${relative(root, out).replace(/[.]/g, '\\.')}/([^(]+)\\((\\d+),(\\d+)\\)`, 'gm'),
    (whole, name, line, column) => {
      const source = sources.get(name);
      return source ? `${source.document}:${source.line + Number(line) - 1}:${column}` : whole;
    },
  );
  if (result.status !== 0) {
    process.stderr.write(report);
    process.stderr.write(`\n${count} snippets checked: type errors above (their Markdown file and line).\n`);
    process.exit(1);
  }
  process.stdout.write(
    `${count} TypeScript snippets in README.md and docs/ type-check (${skipped} fragments).\n`,
  );
}
