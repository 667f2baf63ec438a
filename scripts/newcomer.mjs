#!/usr/bin/env node
/**
 * A newcomer's first hour, replayed on every `npm test`: the README's set-up must work on a fresh
 * clone exactly as written, and print nothing the README does not explain.
 *
 *   npm run check:newcomer          clone, install, start, connect a desktop client, install a tarball
 *   node scripts/newcomer.mjs --keep   leave the temporary folder behind to look at
 *
 * 1. Clones this repository into a temporary folder (with any uncommitted change to a tracked file
 *    applied on top, so what is checked is what you are about to commit).
 * 2. Runs the README's "Two commands" set-up in it: `npm install` must print no warning (a package
 *    the registry marks deprecated is reported, not failed: that is the registry's state, not the
 *    repository's), then `npm start` must serve MCP, checked with an SDK client.
 * 3. Starts the stdio example as the README's Claude Desktop configuration does, from a folder
 *    outside the clone with a desktop client's bare environment, and lists its tools over stdio.
 *    Nothing is built before steps 2 and 3: the examples run from `src/`, as a newcomer's would.
 * 4. Follows the README's install section: `npm pack` in the clone, then `npm install <tarball> zod`
 *    in a new application, whose ESM and CommonJS code each serve a tool through mcpkit.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const STEP_TIMEOUT_MS = 300_000;
const START_TIMEOUT_MS = 60_000;

const work = mkdtempSync(join(tmpdir(), 'mcpkit-newcomer-'));
const clone = join(work, 'mcpkit');
const started = Date.now();

// A step that throws (a client that cannot connect, an answer that is not JSON) fails like any other:
// what was started is stopped and the temporary folder removed.
process.on('uncaughtException', (error) => fail(`unexpected error: ${error?.stack ?? error}`));
// Interrupted (Ctrl+C, a CI timeout): `npm start` runs in a process group of its own, which the
// signal meant for this check never reaches.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => fail(`interrupted by ${signal}`));

function log(message) {
  console.log(`newcomer: ${message} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/** What was started and must be stopped however the check ends (`npm start`'s process group). */
const cleanups = [];

function fail(message) {
  console.error(`newcomer: FAILED: ${message}`);
  for (const cleanup of cleanups.splice(0)) cleanup();
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.error(`newcomer: kept ${work}`);
  process.exit(1);
}

/**
 * The environment of a newcomer's shell: this process's, without what `npm run` adds about the
 * package that runs this script (a child npm would take those for its own).
 */
function shellEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle|node_execpath|execpath|command)/i.test(name) || name === 'INIT_CWD')
      continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

/** Runs one shell command in `cwd`; fails the check on a non-zero exit. Returns its output. */
function run(command, cwd, env = shellEnv()) {
  const result = spawnSync(command, { cwd, env, shell: true, encoding: 'utf8', timeout: STEP_TIMEOUT_MS });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0) {
    fail(`\`${command}\` in ${cwd} exited with ${result.status ?? result.signal}:\n${output.slice(-4000)}`);
  }
  return output;
}

/** npm's warnings in `output`, but for deprecation notices, which follow the registry's state. */
function warningsIn(output, step) {
  const lines = output.split('\n').filter((line) => /^npm (warn|WARN)\b/.test(line));
  for (const line of lines.filter((l) => /\bdeprecated\b/.test(l))) console.log(`newcomer: ${step}: ${line}`);
  return lines.filter((line) => !/\bdeprecated\b/.test(line));
}

/** The body of the first fenced block of `lang` after the heading or line that contains `anchor`. */
function blockAfter(readme, anchor, lang) {
  const at = readme.indexOf(anchor);
  if (at < 0) fail(`README.md has no "${anchor}"`);
  const open = readme.indexOf(`\`\`\`${lang}\n`, at);
  const close = readme.indexOf('\n```', open + 1);
  if (open < 0 || close < 0) fail(`README.md has no \`\`\`${lang} block after "${anchor}"`);
  return readme.slice(open + lang.length + 4, close);
}

/** The commands of a sh block: one per line, comments and blank lines dropped. */
function commandsOf(block) {
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'));
}

/** Connects `transport` with an SDK client, lists the demo tools and calculates 2+3; closes the client. */
async function listAndCall(transport, where) {
  const client = new Client({ name: 'newcomer', version: '1.0.0' });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    if (!tools.some((tool) => tool.name === 'calculate')) {
      fail(
        `${where}: tools/list has no "calculate" tool (got ${tools.map((t) => t.name).join(', ') || 'none'})`,
      );
    }
    const result = await client.callTool({ name: 'calculate', arguments: { expression: '2+3' } });
    if (result.isError || !JSON.stringify(result.content).includes('5')) {
      fail(`${where}: calculate 2+3 answered ${JSON.stringify(result).slice(0, 500)}`);
    }
    return tools.length;
  } finally {
    await client.close().catch(() => {});
  }
}

// 1. The clone, with uncommitted changes to tracked files on top.
run(`git clone --quiet --no-hardlinks "${root}" "${clone}"`, work);
const diff = spawnSync('git', ['diff', 'HEAD', '--binary'], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
if (diff.status !== 0) fail('git diff HEAD failed');
if (diff.stdout.length > 0) {
  const applied = spawnSync('git', ['apply', '--whitespace=nowarn'], { cwd: clone, input: diff.stdout });
  if (applied.status !== 0) fail(`could not apply the working tree's changes: ${applied.stderr}`);
  log('cloned, with the working tree changes to tracked files applied');
} else {
  log('cloned');
}
const readme = readFileSync(join(clone, 'README.md'), 'utf8');

// 2. The README's two commands. The first line installs and starts the quickstart.
const [setUp, testCommand] = commandsOf(blockAfter(readme, '## Two commands', 'sh'));
if (setUp !== 'npm install && npm start' || testCommand !== 'npm test') {
  fail(`README.md's "Two commands" changed (got ${JSON.stringify([setUp, testCommand])}): update this check`);
}
const installOutput = run('npm install', clone);
const installWarnings = warningsIn(installOutput, 'npm install');
if (installWarnings.length > 0) fail(`npm install warned:\n${installWarnings.join('\n')}`);
if (existsSync(join(clone, 'dist'))) fail('npm install built dist/: the examples must not need it');
log('npm install: no warnings');

// `npm start` on a free port; the banner names the endpoint.
const start = spawn('npm start', {
  cwd: clone,
  // A free port on loopback, whatever HOST the environment exports (some shells and CIs set one).
  env: shellEnv({ PORT: '0', HOST: '127.0.0.1' }),
  shell: true,
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: process.platform !== 'win32',
});
let banner = '';
const endpoint = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve(undefined), START_TIMEOUT_MS);
  const onData = (chunk) => {
    banner += chunk;
    const match = /listening on (http:\/\/\S+\/mcp)/.exec(banner);
    if (match) {
      clearTimeout(timer);
      resolve(match[1]);
    }
  };
  start.stdout.on('data', onData);
  start.stderr.on('data', onData);
  start.once('exit', () => resolve(undefined));
});
let stopped = false;
/** Stops `npm start` and everything it started (once). */
const stopStart = () => {
  if (stopped) return;
  stopped = true;
  try {
    if (process.platform === 'win32') start.kill();
    else process.kill(-start.pid, 'SIGINT');
  } catch {}
};
cleanups.push(stopStart);
if (!endpoint) {
  stopStart();
  fail(`npm start printed no endpoint within ${START_TIMEOUT_MS / 1000} s:\n${banner.slice(-2000)}`);
}
try {
  const count = await listAndCall(new StreamableHTTPClientTransport(new URL(endpoint)), 'npm start');
  log(`npm start: ${endpoint} serves ${count} tools`);
} finally {
  stopStart();
}

// 3. The Claude Desktop configuration, as a desktop client runs it: from its own folder, with a
//    bare environment (a GUI app's PATH, no npm variables).
const config = JSON.parse(blockAfter(readme, 'Claude Desktop', 'json'));
const [entry] = Object.values(config.mcpServers ?? {});
if (!entry?.command) fail("README.md's Claude Desktop block names no command");
const placeholder = /\/absolute\/path\/to\/mcpkit/g;
if (!entry.args?.some((arg) => placeholder.test(arg))) {
  fail('the Claude Desktop block no longer uses /absolute/path/to/mcpkit: update this check');
}
const args = entry.args.map((arg) => arg.replace(placeholder, clone));
const elsewhere = join(work, 'desktop-client');
mkdirSync(elsewhere);
const stderr = [];
const stdio = new StdioClientTransport({
  command: entry.command,
  args,
  cwd: elsewhere,
  env: { PATH: process.env.PATH ?? '', HOME: elsewhere },
  stderr: 'pipe',
});
stdio.stderr?.on('data', (chunk) => stderr.push(String(chunk)));
try {
  const count = await listAndCall(stdio, 'the Claude Desktop configuration');
  log(`Claude Desktop configuration: ${count} tools over stdio, started from outside the clone`);
} catch (error) {
  fail(`the Claude Desktop configuration: ${error}\n${stderr.join('').slice(-2000)}`);
}

// 4. The install section: a tarball packed in the clone, installed into a new application.
const install = commandsOf(blockAfter(readme, '## Install', 'sh'));
if (!install.includes('npm pack') || !install.some((line) => /^npm install \S+\.tgz zod$/.test(line))) {
  fail(`README.md's install section no longer packs and installs a tarball (got ${JSON.stringify(install)})`);
}
const packed = run('npm pack --silent', clone).trim().split('\n').at(-1);
if (!packed?.endsWith('.tgz')) fail(`npm pack wrote no tarball (${packed})`);
const app = join(work, 'app');
mkdirSync(app);
writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'app', private: true }, null, 2)}\n`);
const appOutput = run(`npm install "${join(clone, packed)}" zod --no-audit --no-fund`, app);
const appWarnings = warningsIn(appOutput, 'npm install <tarball>');
if (appWarnings.length > 0) fail(`installing the tarball warned:\n${appWarnings.join('\n')}`);
const program = (imports) => `${imports}
const server = createMcpServer({ name: 'app', version: '1.0.0', logLevel: 'silent' });
server.tools.register({ name: 'add', description: 'Adds', inputSchema: { a: z.number(), b: z.number() },
  handler: ({ a, b }) => a + b });
const response = await server.fetch(new Request('http://localhost/tools/add/execute', {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ arguments: { a: 2, b: 3 } }) }));
const body = await response.json();
if (typeof listen !== 'function') throw new Error('mcpkit/node has no listen');
console.log(JSON.stringify({ status: response.status, body }));
await server.close();
`;
writeFileSync(
  join(app, 'esm.mjs'),
  program(
    "import { createMcpServer } from 'mcpkit';\nimport { listen } from 'mcpkit/node';\nimport { z } from 'zod';",
  ),
);
writeFileSync(
  join(app, 'cjs.cjs'),
  `(async () => {\n${program(
    "const { createMcpServer } = require('mcpkit');\nconst { listen } = require('mcpkit/node');\nconst { z } = require('zod');",
  )}})().catch((error) => { console.error(error); process.exit(1); });\n`,
);
for (const file of ['esm.mjs', 'cjs.cjs']) {
  const output = run(`node ${file}`, app);
  const { status, body } = JSON.parse(output.trim().split('\n').at(-1));
  if (status !== 200 || !JSON.stringify(body).includes('5')) {
    fail(`the installed tarball (${file}) answered ${status} ${JSON.stringify(body).slice(0, 500)}`);
  }
}
log(`${packed} installs into a new application and serves a tool from ESM and CommonJS`);

if (keep) log(`kept ${work}`);
else rmSync(work, { recursive: true, force: true });
log('passed');
