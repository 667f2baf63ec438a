/**
 * scripts/newcomer.mjs cleans up after itself when it fails: what it started (`npm start`, in a
 * process group of its own) is stopped and its temporary folder (a whole clone with its
 * node_modules) is removed, whichever step failed and however. `npm` is replaced on PATH by a fake
 * whose `install` does nothing and whose `start` serves a stand-in for the quickstart.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');

let scratch: string | undefined;
const started: number[] = [];
afterEach(() => {
  // A server the check left running (the failure this file is about) is stopped here.
  for (const pid of started.splice(0)) {
    if (!alive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs scripts/newcomer.mjs with a fake `npm` whose `start` runs `server` (TypeScript, through tsx),
 * in a temporary folder of its own (TMPDIR). Resolves with its exit code, the pid the fake server
 * wrote, and the folders the script left in TMPDIR.
 */
async function runNewcomer(
  server: string,
  interrupt?: NodeJS.Signals,
): Promise<{ code: number | null; pid?: number; left: string[] }> {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'newcomer-test-'));
  const bin = path.join(scratch, 'bin');
  const tmp = path.join(scratch, 'tmp');
  mkdirSync(bin);
  mkdirSync(tmp);
  const pidFile = path.join(scratch, 'server.pid');
  writeFileSync(path.join(scratch, 'server.mts'), server);
  writeFileSync(
    path.join(bin, 'npm'),
    `#!/bin/sh\ncase "$1" in\n  start) exec "${process.execPath}" "${tsxCli}" --tsconfig "${root}tsconfig.json" "${scratch}/server.mts" "${pidFile}" ;;\n  *) exit 0 ;;\nesac\n`,
  );
  chmodSync(path.join(bin, 'npm'), 0o755);
  const child = spawn(process.execPath, [path.join(root, 'scripts', 'newcomer.mjs')], {
    cwd: root,
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.resume();
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (interrupt) {
    // Interrupted (Ctrl+C, a CI timeout) once its client is talking to the server.
    while (!existsSync(`${pidFile}.connected`) && child.exitCode === null)
      await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill(interrupt);
  }
  const code = await exited;
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined;
  if (pid !== undefined) started.push(pid);
  return {
    code,
    ...(pid !== undefined && { pid }),
    left: readdirSync(tmp).filter((name) => name.startsWith('mcpkit-newcomer-')),
  };
}

/** A quickstart stand-in: writes its pid, prints the banner line the script waits for, then stays up. */
const SERVER = (refused: boolean) => `
import { writeFileSync } from 'node:fs';
import { createMcpServer } from '${root}src/index.ts';
import { listen } from '${root}src/node/index.ts';
writeFileSync(process.argv[2]!, String(process.pid));
const server = createMcpServer({ name: 'stand-in', version: '1', logLevel: 'silent' });
server.tools.register({ name: 'other', description: 'Not the calculator', handler: () => 'no' });
const { url } = await listen(server, { port: 0, websocket: false });
console.log(\`listening on \${${refused} ? 'http://127.0.0.1:9/mcp' : \`\${url}/mcp\`}\`);
setInterval(() => {}, 60_000);
`;

/** A server that takes connections and never answers: the check's client waits on it. */
const SILENT = `
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
writeFileSync(process.argv[2]!, String(process.pid));
const server = createServer(() => writeFileSync(\`\${process.argv[2]}.connected\`, ''));
server.listen(0, '127.0.0.1', () => {
  console.log(\`listening on http://127.0.0.1:\${(server.address() as { port: number }).port}/mcp\`);
});
`;

describe('scripts/newcomer.mjs, failing', () => {
  it('stops npm start when the quickstart serves the wrong tools', async () => {
    const { code, pid, left } = await runNewcomer(SERVER(false));
    expect(code).toBe(1);
    expect(pid).toBeDefined();
    // SIGINT is on its way: give the server a moment to go.
    for (let i = 0; i < 50 && alive(pid!); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(alive(pid!), 'the npm start server outlived the check').toBe(false);
    expect(left).toEqual([]);
  }, 120_000);

  it('removes its temporary folder when a client cannot connect', async () => {
    // The banner names an endpoint nothing listens on: the SDK client's connect throws.
    const { code, left } = await runNewcomer(SERVER(true));
    expect(code).not.toBe(0);
    expect(left, 'the temporary clone was left behind').toEqual([]);
  }, 120_000);

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'stops npm start and cleans up when interrupted (%s)',
    async (signal) => {
      const { pid, left } = await runNewcomer(SILENT, signal);
      expect(pid).toBeDefined();
      for (let i = 0; i < 50 && alive(pid!); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      // npm start runs in a process group of its own: a Ctrl+C meant for the check never reaches it.
      expect(alive(pid!), 'the npm start server outlived the interrupted check').toBe(false);
      expect(left, 'the temporary clone was left behind').toEqual([]);
    },
    120_000,
  );
});
