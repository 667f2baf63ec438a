#!/usr/bin/env node
/**
 * The published types as a strict consumer compiles them. The packed tarball is installed once into
 * a temporary project, with zod, @types/node and every optional peer (the versions this repository
 * tests with); then each fixture of `test/consumers/` is compiled in three consumer setups:
 *
 *   esm-nodenext  "type": "module",   module/moduleResolution nodenext, lib ES2022 (no DOM)
 *   esm-bundler   "type": "module",   module esnext, moduleResolution bundler, lib ES2022 + DOM
 *   cjs-node16    "type": "commonjs", module/moduleResolution node16, lib ES2022 (no DOM)
 *
 * all with `strict: true`, `skipLibCheck: false`, `types: ["node"]`. Each fixture sees only the
 * optional peers it is allowed (below): the others are hidden from the compiler as if they were not
 * installed, so `bare.ts` (the root entry and `mcpkit/node`) compiles with no optional peer at all,
 * and an adapter's fixture with its own peer and nothing else.
 *
 * Reported: every diagnostic of the fixtures and of mcpkit's own declaration files, plus option,
 * global and syntax errors anywhere (what `tsc` would print for these files). Other packages'
 * declaration files are checked only with `--all` (that is what `tsc` with `skipLibCheck: false`
 * does, and it costs about 10 s of checking zod, the SDK and @types/node per program).
 *
 * Before compiling, `mcpkit/testing` is run (ESM and CommonJS) with `@modelcontextprotocol/client`
 * moved out of `node_modules`: its helpers must work without it, and `connectClient` must say what
 * to install.
 *
 * Usage: `node scripts/check-consumers.mjs [tarball] [--all]`. Without a tarball it packs `dist/`
 * as it is (`npm pack --ignore-scripts`: build first). `scripts/check-package.mjs` calls
 * {@link checkConsumers} with the tarball it packed.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'test', 'consumers');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Fixture file → the optional peers (and their `@types`) it may see. Every file of `test/consumers/` is listed. */
const FIXTURES = {
  'bare.ts': [],
  'express.ts': ['express', '@types/express'],
  'fastify.ts': ['fastify'],
  'hono.ts': ['hono'],
  'redis.ts': ['ioredis'],
  'testing.ts': ['@modelcontextprotocol/client'],
  'websocket.ts': ['ws', '@types/ws'],
  'unstable.ts': [],
  'client.ts': [],
};

/** Packages the fixture project installs besides mcpkit, at the versions this repository uses. */
const INSTALL = [
  'zod',
  '@types/node',
  '@opentelemetry/api',
  'express',
  '@types/express',
  'fastify',
  'hono',
  'ioredis',
  '@modelcontextprotocol/client',
  'ws',
  '@types/ws',
];

const BASE = {
  strict: true,
  skipLibCheck: false,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  types: ['node'],
  esModuleInterop: true,
};

const SETUPS = {
  'esm-nodenext': {
    type: 'module',
    options: {
      ...BASE,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2022.d.ts'],
    },
  },
  'esm-bundler': {
    type: 'module',
    options: {
      ...BASE,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    },
  },
  'cjs-node16': {
    type: 'commonjs',
    options: {
      ...BASE,
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      lib: ['lib.es2022.d.ts'],
    },
  },
};

/** The `@types` package that holds `name`'s types. */
function typesOf(name) {
  return name.startsWith('@') ? `@types/${name.slice(1).replace('/', '__')}` : `@types/${name}`;
}

/**
 * Runs `command` in `cwd`; resolves with its exit status, its stdout, and stdout and stderr as they
 * came (`output`). `onChild` receives the process.
 */
function run(command, args, cwd, onChild) {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd, shell: process.platform === 'win32' });
    onChild?.(child);
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', (error) =>
      resolvePromise({ status: 1, stdout, output: `${output}${error.message}\n` }),
    );
    child.on('close', (status) => resolvePromise({ status: status ?? 1, stdout, output }));
  });
}

/** The version range this repository uses for `name`. */
function versionOf(pkg, name) {
  const range = pkg.dependencies?.[name] ?? pkg.devDependencies?.[name] ?? pkg.peerDependencies?.[name];
  if (!range) throw new Error(`check-consumers: ${name} is not in package.json`);
  return `${name}@${range}`;
}

/**
 * A compiler host for `options` that hides the packages in `hidden` (folders under `node_modules`)
 * as if they were not installed, and shares parsed declaration files through `cache` (one per setup:
 * a parsed file depends on the options).
 */
function hidingHost(options, hidden, cache) {
  const host = ts.createCompilerHost(options, true);
  const isHidden = (path) => {
    const normal = resolve(path);
    for (const folder of hidden) if (normal === folder || normal.startsWith(folder + sep)) return true;
    return false;
  };
  const { fileExists, directoryExists, readFile, getSourceFile } = host;
  host.fileExists = (path) => !isHidden(path) && fileExists.call(host, path);
  host.directoryExists = (path) => !isHidden(path) && (directoryExists?.call(host, path) ?? true);
  host.readFile = (path) => (isHidden(path) ? undefined : readFile.call(host, path));
  host.getSourceFile = (fileName, languageVersion, onError, fresh) => {
    if (isHidden(fileName)) return undefined;
    const format = typeof languageVersion === 'object' ? languageVersion.impliedNodeFormat : undefined;
    const key = `${fileName}\0${format}`;
    let file = fresh ? undefined : cache.get(key);
    if (!file) {
      file = getSourceFile.call(host, fileName, languageVersion, onError, fresh);
      if (file && /\.d\.[cm]?ts$/.test(fileName)) cache.set(key, file);
    }
    return file;
  };
  return host;
}

const RUNTIME_PROBE = (load) => `${load}
const server = createMcpServer({ name: 'probe', version: '1.0.0', logLevel: 'silent' });
const status = (await request(server, '/health')).status;
let message = 'connected';
await connectClient(server).catch((error) => { message = error.message; });
await server.close();
console.log(JSON.stringify({ status, message }));`;

/**
 * `mcpkit/testing` run (ESM and CommonJS) with `@modelcontextprotocol/client` moved out of the
 * way: its other helpers work, and `connectClient` says what to install. Resolves with the number
 * of failures.
 */
async function checkTestingWithoutClient(dir, log) {
  const client = join(dir, 'node_modules', '@modelcontextprotocol', 'client');
  const away = `${client}.away`;
  const probes = {
    'probe.mjs': RUNTIME_PROBE(
      "import { createMcpServer } from 'mcpkit';\nimport { connectClient, request } from 'mcpkit/testing';",
    ),
    'probe.cjs': `(async () => {
const { createMcpServer } = require('mcpkit');
const { connectClient, request } = require('mcpkit/testing');
${RUNTIME_PROBE('')}
})();`,
  };
  let failed = 0;
  renameSync(client, away);
  try {
    for (const [name, text] of Object.entries(probes)) {
      writeFileSync(join(dir, name), text);
      const ran = await run(process.execPath, [name], dir);
      let answer;
      try {
        answer = JSON.parse(ran.stdout.trim().split('\n').at(-1));
      } catch {}
      const ok =
        ran.status === 0 &&
        answer?.status === 200 &&
        answer.message.includes('npm install --save-dev @modelcontextprotocol/client');
      if (ok) continue;
      failed++;
      log(`\n✗ runtime/${name}: mcpkit/testing without @modelcontextprotocol/client\n${ran.output}`);
    }
  } finally {
    renameSync(away, client);
  }
  return failed;
}

/** An isolated tool of the installed package, run at both levels; prints what each answered. */
const ISOLATION_PROBE = (imports) => `${imports}
const server = createMcpServer({ logLevel: 'silent' });
const isolation = createIsolation({ maxWorkers: 1 });
const tool = require('node:path').join(process.cwd(), 'tool.mjs');
server.tools.register(isolation.tool(tool, { name: 'worker' }));
server.tools.register(isolation.tool(tool, { name: 'process', isolate: { level: 'process' } }));
const answers = [];
for (const name of ['worker', 'process']) answers.push((await server.executor.execute(name, { text: name })).structuredContent);
await isolation.close();
await server.close();
console.log(JSON.stringify(answers));`;

/**
 * Isolated tools from the installed package (ESM and CommonJS): the runner in `dist/` loads in a
 * worker thread and in a child process under the permission model. Resolves with the number of
 * failures.
 */
async function checkIsolationRuns(dir, log) {
  writeFileSync(join(dir, 'tool.mjs'), 'export default ({ text }) => ({ echoed: text });\n');
  const probes = {
    'isolation.mjs': `import { createRequire } from 'node:module';
import { createMcpServer } from 'mcpkit';
import { createIsolation } from 'mcpkit/node';
const require = createRequire(import.meta.url);
${ISOLATION_PROBE('')}`,
    'isolation.cjs': `(async () => {
const { createMcpServer } = require('mcpkit');
const { createIsolation } = require('mcpkit/node');
${ISOLATION_PROBE('')}
})();`,
  };
  let failed = 0;
  for (const [name, text] of Object.entries(probes)) {
    writeFileSync(join(dir, name), text);
    const ran = await run(process.execPath, [name], dir);
    const last = ran.stdout.trim().split('\n').at(-1);
    if (ran.status === 0 && last === '[{"echoed":"worker"},{"echoed":"process"}]') continue;
    failed++;
    log(`\n✗ runtime/${name}: an isolated tool from the installed package\n${ran.output}`);
  }
  return failed;
}

/**
 * Installs `tarball` into a temporary consumer project and compiles every fixture in every setup.
 * Resolves with the number of programs (and runtime probes) that failed (0: all passed); the folder is removed
 * whatever happens.
 */
export async function checkConsumers(tarball, { all = false, log = console.log } = {}) {
  const started = performance.now();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const listed = readdirSync(fixtures).filter((name) => name.endsWith('.ts'));
  const unlisted = listed.filter((name) => !(name in FIXTURES));
  if (unlisted.length > 0) {
    throw new Error(`check-consumers: list the peers of ${unlisted.join(', ')} in FIXTURES`);
  }

  // Every entry of the package is imported by some fixture.
  const imported = new Set(
    listed.flatMap((name) =>
      [...readFileSync(join(fixtures, name), 'utf8').matchAll(/from '(mcpkit(?:\/[\w-]+)?)'/g)].map(
        (m) => m[1],
      ),
    ),
  );
  const entries = Object.keys(pkg.exports)
    .filter((key) => key !== './package.json')
    .map((key) => (key === '.' ? 'mcpkit' : `mcpkit/${key.slice(2)}`));
  const uncovered = entries.filter((entry) => !imported.has(entry));
  if (uncovered.length > 0) {
    throw new Error(`check-consumers: no fixture in test/consumers/ imports ${uncovered.join(', ')}`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'mcpkit-consumers-'));
  let child;
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });
  const interrupted = (signal) => {
    child?.kill(signal);
    cleanUp();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'mcpkit-consumer', private: true }));
    const installed = await run(
      npm,
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--no-package-lock',
        '--loglevel=error',
        resolve(tarball),
        ...INSTALL.map((name) => versionOf(pkg, name)),
      ],
      dir,
      (spawned) => {
        child = spawned;
      },
    );
    child = undefined;
    if (installed.status !== 0) {
      log(`check-consumers: npm install failed\n${installed.output}`);
      return 1;
    }
    const installSeconds = (performance.now() - started) / 1000;

    // Every optional peer of the packed package, and its @types: hidden unless a fixture may see it.
    const packed = JSON.parse(readFileSync(join(dir, 'node_modules', 'mcpkit', 'package.json'), 'utf8'));
    const optional = Object.entries(packed.peerDependenciesMeta ?? {})
      .filter(([, meta]) => meta?.optional)
      .map(([name]) => name);
    const peers = [...new Set([...optional, ...optional.map(typesOf), ...Object.values(FIXTURES).flat()])];

    const probesFailed = await checkTestingWithoutClient(dir, log);
    const isolationFailed = await checkIsolationRuns(dir, log);
    let failed = 0;
    let programs = 0;
    for (const [setupName, setup] of Object.entries(SETUPS)) {
      const project = join(dir, setupName);
      mkdirSync(project);
      writeFileSync(join(project, 'package.json'), JSON.stringify({ private: true, type: setup.type }));
      const cache = new Map();
      /** mcpkit's declaration files already checked in this setup (with fewer peers visible). */
      const checked = new Set();
      for (const [fixture, allowed] of Object.entries(FIXTURES)) {
        // Compiling holds the event loop: let a pending SIGINT run its handler between programs.
        await new Promise((next) => setImmediate(next));
        const file = join(project, fixture);
        copyFileSync(join(fixtures, fixture), file);
        const hidden = peers
          .filter((name) => !allowed.includes(name))
          .map((name) => join(dir, 'node_modules', name));
        const host = hidingHost(setup.options, hidden, cache);
        const program = ts.createProgram({ rootNames: [file], options: setup.options, host });
        const diagnostics = [
          ...program.getOptionsDiagnostics(),
          ...program.getGlobalDiagnostics(),
          ...program.getSyntacticDiagnostics(),
        ];
        for (const source of program.getSourceFiles()) {
          const name = resolve(source.fileName);
          const ours = name === file || name.startsWith(join(dir, 'node_modules', 'mcpkit') + sep);
          if (ours ? checked.has(name) : !all) continue;
          if (ours && name !== file) checked.add(name);
          diagnostics.push(...program.getSemanticDiagnostics(source));
        }
        programs++;
        if (diagnostics.length === 0) continue;
        failed++;
        const sees =
          allowed.length > 0 ? `only ${allowed.join(', ')} of the optional peers` : 'no optional peer';
        log(`\n✗ ${setupName}/${fixture} (installed: mcpkit, zod, @types/node; ${sees})`);
        log(
          ts.formatDiagnostics(diagnostics, {
            getCanonicalFileName: (name) => name,
            getCurrentDirectory: () => dir,
            getNewLine: () => '\n',
          }),
        );
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const summary = `${programs} consumer programs (${Object.keys(SETUPS).join(', ')} × ${listed.length} fixtures${all ? ', every declaration file' : ''}) in ${seconds} s, install ${installSeconds.toFixed(1)} s`;
    log(failed === 0 ? `✓ ${summary}` : `\n✗ ${failed} of ${summary} failed to compile`);
    log(
      probesFailed === 0
        ? '✓ mcpkit/testing without @modelcontextprotocol/client: its helpers run, connectClient says what to install (ESM, CommonJS)'
        : `✗ mcpkit/testing without @modelcontextprotocol/client: ${probesFailed} of 2 probes failed`,
    );
    log(
      isolationFailed === 0
        ? '✓ isolated tools from the installed package: worker thread and child process (ESM, CommonJS)'
        : `✗ isolated tools from the installed package: ${isolationFailed} of 2 probes failed`,
    );
    return failed + probesFailed + isolationFailed;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    cleanUp();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const all = args.includes('--all');
  let tarball = args.find((arg) => !arg.startsWith('--'));
  if (!tarball) {
    const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--loglevel=error'], root);
    if (packed.status !== 0) {
      process.stderr.write(packed.output);
      process.exit(packed.status);
    }
    const packedFile = join(root, JSON.parse(packed.stdout)[0].filename);
    // On every way out, an interruption's process.exit included.
    process.on('exit', () => rmSync(packedFile, { force: true }));
    tarball = packedFile;
  }
  const failed = await checkConsumers(tarball, { all });
  process.exit(failed === 0 ? 0 : 1);
}
