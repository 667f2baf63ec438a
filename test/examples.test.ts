/**
 * The examples as a user runs them: the quickstart's banner shows a curl exchange that works when
 * pasted into a shell; examples/secure-server.ts refuses to start without an admin key, and with one
 * serves /health to anyone and everything else only to a key; examples/integrations.ts says where it
 * keeps its sealed secrets, and its default store is one git ignores.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { INTEGRATIONS_FILE, LOCK_FILE } from '../src/node/fileStore.js';
import { DEFAULT_DATA_DIR, SECRET_KEY_FILE } from '../src/node/secrets.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_KEY = 'example-admin-key-0123456789abcdef';

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

/**
 * Starts `examples/<name>` from the repository root with `env` over the environment (`PORT=0`);
 * resolves with its exit, or with the first match of `ready` in its stderr (or stdout, for an
 * example that prints its banner there), whichever comes first. An example that answers on stderr
 * must print nothing on stdout.
 */
function startExample(
  name: string,
  env: Record<string, string | undefined>,
  ready: RegExp,
  on: 'stderr' | 'stdout' = 'stderr',
): Promise<{ match?: RegExpExecArray; code?: number | null; stderr: string; stdout: string }> {
  const base = { ...process.env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete base[key];
  // Node itself with tsx's loader, not the tsx CLI: the CLI runs the example in a child process of
  // its own, which a SIGKILL of the CLI would leave running after the test.
  child = spawn(process.execPath, ['--import', 'tsx', `${root}examples/${name}`], {
    cwd: root,
    env: { ...base, PORT: '0', TSX_TSCONFIG_PATH: `${root}tsconfig.json`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  return new Promise((resolve) => {
    const check = () => {
      const match = ready.exec(on === 'stderr' ? stderr : stdout);
      if (match) resolve({ match, stderr, stdout });
    };
    child!.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
      if (on === 'stdout') check();
    });
    child!.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk;
      if (on === 'stderr') check();
    });
    child!.once('exit', (code) => {
      if (on === 'stderr') expect(stdout).toBe('');
      resolve({ code, stderr, stdout });
    });
  });
}

/** Starts examples/secure-server.ts; resolves with its exit or with the URL it prints. */
async function start(
  env: Record<string, string | undefined>,
): Promise<{ url?: string; code?: number | null; stderr: string }> {
  const started = await startExample(
    'secure-server.ts',
    { MCPKIT_API_KEY: undefined, MCPKIT_VIEWER_KEY: undefined, MCPKIT_USER_KEY: undefined, ...env },
    /listening on (http:\/\/[^\s]+)\/mcp/,
  );
  return { ...(started.match && { url: started.match[1]! }), code: started.code, stderr: started.stderr };
}

describe('examples/secure-server.ts', () => {
  it('refuses to start without MCPKIT_API_KEY, or with one too short', { timeout: 30_000 }, async () => {
    const unset = await start({});
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('MCPKIT_API_KEY is not set');
    const short = await start({ MCPKIT_API_KEY: 'short' });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/MCPKIT_API_KEY is 5 characters long/);
  });

  it('serves /health to anyone and the rest only with the key', { timeout: 30_000 }, async () => {
    const started = await start({ MCPKIT_API_KEY: ADMIN_KEY });
    expect(started.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const url = started.url!;
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/tools`)).status).toBe(401);
    expect((await fetch(`${url}/tools?api_key=${ADMIN_KEY}`)).status).toBe(401);
    const tools = await fetch(`${url}/tools`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(tools.status).toBe(200);
    expect((await tools.json()).items.map((t: { name: string }) => t.name)).toContain('notes_purge');
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child!.kill('SIGTERM');
    await exited;
  });
});

/** Whether git ignores `file` (`git check-ignore`: 0 ignored, 1 not). */
function gitIgnores(file: string): boolean {
  try {
    execFileSync('git', ['check-ignore', '--quiet', file], { cwd: root, stdio: 'ignore' });
    return true;
  } catch (error) {
    if ((error as { status?: number }).status === 1) return false;
    throw error;
  }
}

describe('examples/integrations.ts', () => {
  it('keeps its default store, sealed secrets and key where git ignores them', () => {
    // Run from the repository root, as its header says, without MCP_DATA_DIR: this directory.
    const store = path.join(root, DEFAULT_DATA_DIR);
    for (const file of [INTEGRATIONS_FILE, SECRET_KEY_FILE, LOCK_FILE, `.${INTEGRATIONS_FILE}.1.ab.tmp`]) {
      expect(gitIgnores(path.join(store, file)), file).toBe(true);
    }
    expect(execFileSync('git', ['ls-files', '--', DEFAULT_DATA_DIR], { cwd: root, encoding: 'utf8' })).toBe(
      '',
    );
    // The check can fail: the example itself is not ignored.
    expect(gitIgnores(path.join(root, 'examples', 'integrations.ts'))).toBe(false);
  });

  it('says where it writes the store and the key that seals it', { timeout: 30_000 }, async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mcpkit-example-'));
    try {
      const started = await startExample(
        'integrations.ts',
        { MCP_DATA_DIR: dataDir, MCP_SECRET_KEY: undefined, MCP_SECRET_KEY_PREVIOUS: undefined },
        /MCP at (http:\/\/[^\s]+)\/mcp/,
      );
      expect(started.match, started.stderr).toBeDefined();
      expect(started.stderr).toContain(
        `Integrations stored in ${dataDir}, with the key that seals their secrets`,
      );
      expect(existsSync(path.join(dataDir, INTEGRATIONS_FILE))).toBe(true);
      expect(existsSync(path.join(dataDir, SECRET_KEY_FILE))).toBe(true);
      const url = started.match![1]!;
      const listed = await (await fetch(`${url}/integrations`)).json();
      expect(listed.items.map((i: { id: string }) => i.id)).toEqual(['github']);
    } finally {
      child?.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** The lines of the banner's block under `heading`, as they would be pasted into a shell. */
function bannerBlock(banner: string, heading: string): string {
  const lines = banner.split('\n');
  const start = lines.findIndex((line) => line.startsWith(heading));
  expect(start, banner).toBeGreaterThanOrEqual(0);
  const block: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    block.push(line);
  }
  return block.join('\n');
}

describe('examples/quickstart.ts', () => {
  it('prints a curl exchange that lists and calls tools when pasted into sh', {
    timeout: 30_000,
  }, async () => {
    const started = await startExample('quickstart.ts', {}, /Press Ctrl\+C to stop\./, 'stdout');
    expect(started.match, started.stderr).toBeDefined();
    const script = bannerBlock(started.stdout, 'curl, a whole MCP exchange');
    expect(script).toMatch(/^ {4}URL=http:\/\/127\.0\.0\.1:\d+\/mcp$/m);
    // What the banner shows, run as POSIX sh runs it (dash here, not only bash).
    const ran = await new Promise<{ stdout: string; stderr: string; code: number }>((resolve) => {
      execFile('sh', ['-c', script], { timeout: 15_000 }, (error, stdout, stderr) =>
        resolve({ stdout, stderr, code: typeof error?.code === 'number' ? error.code : error ? 1 : 0 }),
      );
    });
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stderr).toBe('');
    // One line per answer: initialize, notifications/initialized (202, empty), tools/list, tools/call.
    const answers = ran.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line));
    expect(answers.map((a) => a.id)).toEqual([1, 2, 3]);
    expect(answers[0].result.serverInfo.name).toBe('mcpkit-quickstart');
    expect(answers[1].result.tools.map((t: { name: string }) => t.name)).toContain('calculate');
    expect(answers[2].result.structuredContent).toEqual({ expression: '2 * (3 + 4)', value: 14 });
  });
});

describe('examples/gateway.ts', () => {
  it("serves its own tool and both upstreams' tools over REST, with their states", {
    timeout: 60_000,
  }, async () => {
    const started = await startExample(
      'gateway.ts',
      { UPSTREAM_URL: undefined },
      /gateway listening on (http:\/\/[^\s]+)\/mcp/,
    );
    expect(started.match, started.stderr).toBeDefined();
    const base = started.match![1]!;
    let names: string[] = [];
    await vi.waitFor(
      async () => {
        const listed = await (await fetch(`${base}/tools?limit=100`)).json();
        names = listed.items.map((t: { name: string }) => t.name);
        expect(names).toContain('remote__shout');
        expect(names.some((n) => n.startsWith('demo__'))).toBe(true);
      },
      { timeout: 45_000, interval: 250 },
    );
    expect(names).toContain('local');
    const remote = await (await fetch(`${base}/integrations/remote`)).json();
    expect(remote.upstreamState).toMatchObject({ status: 'ready', transport: 'http' });
    expect(JSON.stringify(remote)).not.toContain('example-upstream-token-0000');
    const called = await fetch(`${base}/tools/remote__shout/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { text: 'hi' } }),
    });
    expect((await called.json()).content[0].text).toBe('HI');
  });
});

describe('examples/isolated-tools.ts', () => {
  it('keeps the normal tool answering while a CPU-heavy and a leaking tool fail by their limits', async () => {
    const done = await startExample('isolated-tools.ts', {}, /faults contained: (.+)/, 'stdout');
    expect(done.match, done.stderr).toBeDefined();
    expect(done.stdout).toMatch(/echo answered 20 times/);
    expect(done.stdout).toMatch(/primes: Tool primes timed out after 2000 ms/);
    expect(done.stdout).toMatch(
      /leaky: Tool leaky's process ran out of memory: it reached its heap limit of 64 MB/,
    );
    expect(done.stdout).toMatch(/primes again \(the pool recovered\): \{"below":100000,"count":9592\}/);
    expect(JSON.parse(done.match![1]!)).toMatchObject({ timeout: 1, memory: 1 });
  }, 60_000);
});
