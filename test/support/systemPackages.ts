/**
 * System programs the test suite drives as real peers (a Redis server, a browser), installed from
 * Debian's packages when missing. Vitest's global setup calls `ensureSystemPrograms()` once, before
 * any test file runs, so parallel test files never race for apt's lock.
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** One program a test needs, and the Debian package that provides it. */
export interface SystemProgram {
  command: string;
  debianPackage: string;
}

/** Every program the suite needs. Add an entry here, never an `apt-get` call in a test file. */
export const SYSTEM_PROGRAMS: readonly SystemProgram[] = [
  // test/browser-completions.test.ts and test/docs-page.test.ts drive it through playwright-core.
  { command: 'chromium', debianPackage: 'chromium' },
  // The shared-state suite (mcpkit/redis) runs against a real Redis, never a mock.
  { command: 'redis-server', debianPackage: 'redis-server' },
];

/** The absolute path of `command` on PATH, or undefined. */
export function whichProgram(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/** Installs the packages of every missing program (as root, through apt-get), or throws saying what to install. */
export function ensureSystemPrograms(programs: readonly SystemProgram[] = SYSTEM_PROGRAMS): void {
  const missing = programs.filter((p) => whichProgram(p.command) === undefined);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((p) => p.debianPackage))];
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the tests need ${packages.join(', ')}: run  sudo apt-get install -y ${packages.join(' ')}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], {
    stdio: 'ignore',
    env,
  });
  const still = missing.filter((p) => whichProgram(p.command) === undefined);
  if (still.length > 0)
    throw new Error(
      `apt-get installed ${packages.join(', ')} but ${still.map((p) => p.command).join(', ')} is still missing`,
    );
}
