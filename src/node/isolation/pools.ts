/**
 * The pools isolated tools run in, over tinypool: worker threads with V8 heap limits, or child
 * processes under Node's permission model with a heap limit and an empty environment. Also where the
 * runner (`runner.mjs`) is found, from the source under the tests and from `dist/` in the package.
 */
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Tinypool } from 'tinypool';
import type { IsolationLevel, ProcessPermissions } from './types.js';

/** `true` in the CommonJS build, `false` in the ESM one (tsup.config.ts); undeclared in the source. */
declare const __MCPKIT_CJS__: boolean | undefined;
const IN_CJS = typeof __MCPKIT_CJS__ !== 'undefined' && __MCPKIT_CJS__;

/** What one pool is made of; calls with the same spec share a pool. */
export interface PoolSpec {
  readonly level: IsolationLevel;
  readonly maxMemoryMb: number;
  readonly maxWorkers: number;
  /** Process level: the tool's module, readable by the child. */
  readonly module?: string;
  readonly permissions?: ProcessPermissions;
  readonly env?: Record<string, string>;
}

/** The key under which calls share a pool: the level and everything a worker is started with. */
export function poolKey(spec: PoolSpec): string {
  return JSON.stringify([
    spec.level,
    spec.maxMemoryMb,
    spec.maxWorkers,
    spec.module ?? null,
    spec.permissions ?? null,
    spec.env ?? null,
  ]);
}

function hereUrl(): string {
  return IN_CJS ? pathToFileURL(__filename).href : import.meta.url;
}

const located = new Map<string, string>();

/**
 * A plain-JavaScript file of the isolation: `dist/<packaged>` in the package (tsup.config.ts copies
 * it there), `<source>` beside this file in the source.
 */
function locate(packaged: string, source: string): string {
  const known = located.get(source);
  if (known !== undefined) return known;
  const here = dirname(fileURLToPath(hereUrl()));
  for (const candidate of [join(here, packaged), join(here, source)]) {
    if (existsSync(candidate)) {
      const path = realpathSync(candidate);
      located.set(source, path);
      return path;
    }
  }
  throw new Error(`mcpkit's isolation file ${source} is missing beside ${here}; reinstall mcpkit`);
}

/** The runner's path: `dist/isolation-runner.mjs` in the package, `runner.mjs` beside this file in the source. */
export function runnerPath(): string {
  return locate('isolation-runner.mjs', 'runner.mjs');
}

/** The module that reads declarative HTTP tools' upstream answers in isolation (`httpAnswer.mjs`). */
export function httpAnswerModule(): string {
  return pathToFileURL(locate('isolation-http-answer.mjs', 'httpAnswer.mjs')).href;
}

type TinypoolClass = typeof Tinypool;
let tinypool: Promise<TinypoolClass> | undefined;

/** tinypool, imported once (an ES module only: the CommonJS build imports it too, not `require`). */
function loadTinypool(): Promise<TinypoolClass> {
  if (!tinypool) {
    const load = IN_CJS
      ? (
          new Function('specifier', 'return import(specifier)') as (
            s: string,
          ) => Promise<{ Tinypool: TinypoolClass }>
        )('tinypool')
      : import('tinypool');
    tinypool = load.then((loaded) => loaded.Tinypool);
  }
  return tinypool;
}

/** tinypool's own files, which a child process reads to start. */
function tinypoolDir(): string {
  const entry = createRequire(fileURLToPath(hereUrl())).resolve('tinypool');
  return dirname(realpathSync(entry));
}

/** A directory and what is in it, as the permission model spells it. */
function withContents(path: string): string {
  return path.endsWith('*') ? path : `${path.replace(/\/+$/, '')}/*`;
}

/**
 * One `--allow-fs-*` flag per path: Node 20 reads no lists (a comma is part of the path), and takes
 * the flag many times. Absolute paths only.
 */
function allowances(flag: string, paths: readonly string[], option: string): string[] {
  return paths.map((path) => {
    if (typeof path !== 'string' || !isAbsolute(path) || path.includes('\0')) {
      throw new TypeError(`${option} must hold absolute paths (got ${JSON.stringify(path)})`);
    }
    return `${flag}=${path}`;
  });
}

/** The flags a child process of the process level starts with. */
export function processFlags(spec: PoolSpec): string[] {
  const permissions = spec.permissions ?? {};
  const reads = [runnerPath(), withContents(tinypoolDir())];
  if (spec.module) reads.push(withContents(dirname(fileURLToPath(spec.module))));
  for (const path of permissions.fsRead ?? []) reads.push(path);
  const flags = [
    '--experimental-permission',
    ...allowances('--allow-fs-read', reads, 'isolate.permissions.fsRead'),
    ...allowances('--allow-fs-write', permissions.fsWrite ?? [], 'isolate.permissions.fsWrite'),
    `--max-old-space-size=${spec.maxMemoryMb}`,
    '--disable-warning=ExperimentalWarning',
  ];
  if (permissions.childProcess) flags.push('--allow-child-process');
  return flags;
}

/** Starts a pool for `spec` (its workers start on demand and leave after 30 s idle). */
export async function startPool(spec: PoolSpec): Promise<Tinypool> {
  const Pool = await loadTinypool();
  const common: PoolOptions = {
    filename: pathToFileURL(runnerPath()).href,
    minThreads: 0,
    maxThreads: spec.maxWorkers,
    idleTimeout: 30_000,
  };
  const pool = spec.level === 'worker' ? threadPool(Pool, common, spec) : processPool(Pool, common, spec);
  // A worker that dies with no call in it (while starting, or idle) is replaced on the next call;
  // tinypool reports it as the pool's `error` event, which must not crash the server.
  pool.on('error', () => {});
  return pool;
}

type PoolOptions = ConstructorParameters<TinypoolClass>[0] & object;

function threadPool(Pool: TinypoolClass, common: PoolOptions, spec: PoolSpec): Tinypool {
  return new Pool({
    ...common,
    runtime: 'worker_threads',
    resourceLimits: { maxOldGenerationSizeMb: spec.maxMemoryMb, maxYoungGenerationSizeMb: 16 },
  });
}

function processPool(Pool: TinypoolClass, common: PoolOptions, spec: PoolSpec): Tinypool {
  return new Pool({
    ...common,
    runtime: 'child_process',
    execArgv: processFlags(spec),
    env: { ...spec.env },
    serialization: 'advanced',
  });
}
