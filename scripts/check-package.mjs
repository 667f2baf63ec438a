#!/usr/bin/env node
/**
 * The package checks of `npm test`: publint on the package as it would be published, "Are the
 * Types Wrong?" on the tarball, then the tarball installed into strict consumer projects whose
 * programs use every entry (`scripts/check-consumers.mjs`). The tarball is packed without running
 * `prepack` (which builds `dist/`): `npm test` has just built it, and a second build would only add
 * half a minute.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConsumers } from './check-consumers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Runs `command`; its exit status. */
function run(command, args) {
  return (
    spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' }).status ?? 1
  );
}

const linted = run(npx, ['publint', '--strict']);
if (linted !== 0) process.exit(linted);
const packed = spawnSync(npm, ['pack', '--ignore-scripts', '--json'], {
  cwd: root,
  encoding: 'utf8',
  shell: process.platform === 'win32',
});
if (packed.status !== 0) {
  process.stderr.write(packed.stderr);
  process.exit(packed.status ?? 1);
}
const tarball = join(root, JSON.parse(packed.stdout)[0].filename);
process.on('exit', () => rmSync(tarball, { force: true }));
const typed = run(npx, ['attw', tarball, '--profile', 'node16']);
if (typed !== 0) process.exit(typed);
process.exit((await checkConsumers(tarball)) === 0 ? 0 : 1);
