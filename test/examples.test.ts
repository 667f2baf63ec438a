/**
 * examples/secure-server.ts as a user runs it: it refuses to start without an admin key, and with
 * one it serves /health to anyone and everything else only to a key.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const ADMIN_KEY = 'example-admin-key-0123456789abcdef';

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

/** Starts the example; resolves with its exit or with the URL it prints, whichever comes first. */
function start(
  env: Record<string, string | undefined>,
): Promise<{ url?: string; code?: number | null; stderr: string }> {
  const { MCPKIT_API_KEY: _k, MCPKIT_VIEWER_KEY: _v, MCPKIT_USER_KEY: _u, ...base } = process.env;
  child = spawn(tsx, ['--tsconfig', `${root}tsconfig.json`, `${root}examples/secure-server.ts`], {
    env: { ...base, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  return new Promise((resolve) => {
    child!.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child!.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk;
      const match = /listening on (http:\/\/[^\s]+)\/mcp/.exec(stderr);
      if (match) resolve({ url: match[1]!, stderr });
    });
    child!.once('exit', (code) => {
      expect(stdout).toBe('');
      resolve({ code, stderr });
    });
  });
}

describe('examples/secure-server.ts', () => {
  it('refuses to start without MCPKIT_API_KEY, or with one too short', async () => {
    const unset = await start({});
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('MCPKIT_API_KEY is not set');
    const short = await start({ MCPKIT_API_KEY: 'short' });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/MCPKIT_API_KEY is 5 characters long/);
  });

  it('serves /health to anyone and the rest only with the key', async () => {
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
