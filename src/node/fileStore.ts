/**
 * The file store for integrations: one JSON document, `<dataDir>/integrations.json`, replaced
 * atomically (temporary file, fsync, rename, fsync of the directory), guarded by a lock file so only
 * one process writes a directory.
 *
 * A second process pointed at the same directory is refused with an error that names the holder (its
 * pid and host). A lock left by a process that died (same host, pid gone) is taken over.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromDocument, IntegrationStoreError, STORE_VERSION, toDocument } from '../integrations/store.js';
import type { IntegrationSnapshot, IntegrationStore, SecretCipher } from '../integrations/types.js';
import type { Logger } from '../types.js';
import { type LoadSecretCipherOptions, loadSecretCipher, resolveDataDir } from './secrets.js';

/** The store's file name inside the data directory. */
export const INTEGRATIONS_FILE = 'integrations.json';
/** The lock file's name inside the data directory. */
export const LOCK_FILE = 'integrations.lock';
const TEMP_PREFIX = `.${INTEGRATIONS_FILE}.`;
const TEMP_SUFFIX = '.tmp';

/** Options for {@link openFileIntegrationStore}. */
export interface FileIntegrationStoreOptions {
  /** The data directory. Default `MCP_DATA_DIR`, else `./.mcpkit`. Created (mode 0700) if missing. */
  dataDir?: string;
  /** Skip fsync (for benchmarks of the cost; never in production). Default `false`. */
  unsafeNoSync?: boolean;
}

/** The file store, open and locked. */
export interface FileIntegrationStore extends IntegrationStore {
  readonly dataDir: string;
  readonly file: string;
  /** Temporary files from an interrupted write that were removed at open. */
  readonly swept: readonly string[];
  /** Releases the lock. */
  close(): Promise<void>;
}

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function acquireLock(dir: string): Promise<string> {
  const file = path.join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      try {
        await handle.writeFile(JSON.stringify(mine));
        await handle.sync();
      } finally {
        await handle.close();
      }
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder: Partial<LockInfo> = {};
    try {
      holder = JSON.parse(await fs.readFile(file, 'utf8')) as LockInfo;
    } catch {
      // unreadable or half-written: judged below by its age
    }
    const sameHost = holder.host === mine.host;
    if (typeof holder.pid === 'number' && sameHost && !alive(holder.pid)) {
      await fs.rm(file, { force: true });
      continue;
    }
    if (typeof holder.pid !== 'number') {
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > 10_000) {
        await fs.rm(file, { force: true });
        continue;
      }
    }
    throw new Error(
      `The data directory ${dir} is in use by another process (pid ${holder.pid ?? 'unknown'} on ${
        holder.host ?? 'an unknown host'
      }, since ${holder.startedAt ?? 'unknown'}). One process writes a data directory: stop the other one, or give this one its own MCP_DATA_DIR. If no such process runs, delete ${file}.`,
    );
  }
  throw new Error(`Could not take the lock ${file}`);
}

/**
 * Opens the file store: creates the directory, takes the lock (refusing a second process), removes
 * temporary files an interrupted write left, and reads the file once so a corrupt or unreadable one
 * stops start-up here with its path in the message. The file is left as it is.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { loadSecretCipher, openFileIntegrationStore } from 'mcpkit/node';
 *
 * const store = await openFileIntegrationStore({ dataDir: '/var/lib/app' });
 * const cipher = await loadSecretCipher({ dataDir: '/var/lib/app' });
 * const server = createMcpServer({ integrations: { store, cipher } });
 * await server.integrations.ready;
 * ```
 */
export async function openFileIntegrationStore(
  options: FileIntegrationStoreOptions = {},
): Promise<FileIntegrationStore> {
  const dataDir = resolveDataDir(options.dataDir);
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = await acquireLock(dataDir);
  const release = () => {
    try {
      removeSync(lock);
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  const file = path.join(dataDir, INTEGRATIONS_FILE);
  const sync = !options.unsafeNoSync;
  let closed = false;
  try {
    const swept: string[] = [];
    for (const name of await fs.readdir(dataDir)) {
      if (name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX)) {
        await fs.rm(path.join(dataDir, name), { force: true });
        swept.push(name);
      }
    }
    if (swept.length > 0 && sync) await fsyncDir(dataDir);

    const read = async (): Promise<IntegrationSnapshot | undefined> => {
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return undefined;
        throw new IntegrationStoreError(file, `cannot be read (${code}); it was left as it is`, {
          cause: error,
        });
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new IntegrationStoreError(
          file,
          'is not valid JSON (corrupt or truncated); it was left as it is. Restore it from a backup, or move it away to start empty.',
          { cause: error },
        );
      }
      const { snapshot, version } = fromDocument(file, parsed);
      if (version < STORE_VERSION) {
        const backup = `${file}.v${version}.bak`;
        await fs.copyFile(file, backup, constants.COPYFILE_EXCL).catch(() => {});
      }
      return snapshot;
    };
    let initial: IntegrationSnapshot | undefined | null = await read();

    return {
      label: file,
      dataDir,
      file,
      swept,
      async load() {
        if (initial !== null) {
          const first = initial;
          initial = null;
          return first;
        }
        return read();
      },
      async save(snapshot) {
        if (closed) throw new Error(`The integration store ${file} is closed`);
        const temp = path.join(
          dataDir,
          `${TEMP_PREFIX}${process.pid}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`,
        );
        const handle = await fs.open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
        try {
          try {
            await handle.writeFile(JSON.stringify(toDocument(snapshot)));
            if (sync) await handle.sync();
          } finally {
            await handle.close();
          }
          await fs.rename(temp, file);
        } catch (error) {
          await fs.rm(temp, { force: true });
          throw error;
        }
        if (sync) await fsyncDir(dataDir);
      },
      async close() {
        if (closed) return;
        closed = true;
        process.removeListener('exit', release);
        await fs.rm(lock, { force: true });
      },
    };
  } catch (error) {
    process.removeListener('exit', release);
    await fs.rm(lock, { force: true });
    throw error;
  }
}

function removeSync(file: string): void {
  // Synchronous on purpose: runs in the process 'exit' handler.
  rmSync(file, { force: true });
}

/** Options for {@link openFileIntegrations}. */
export interface FileIntegrationsOptions
  extends FileIntegrationStoreOptions,
    Omit<LoadSecretCipherOptions, 'logger'> {
  logger?: Pick<Logger, 'warn'>;
}

/**
 * The file store and the secret cipher together, for `createMcpServer({ integrations })`.
 *
 * @example
 * ```ts
 * const server = createMcpServer({ integrations: await openFileIntegrations() });
 * await server.integrations.ready;
 * ```
 */
export async function openFileIntegrations(
  options: FileIntegrationsOptions = {},
): Promise<{ store: FileIntegrationStore; cipher: SecretCipher }> {
  const store = await openFileIntegrationStore(options);
  try {
    return { store, cipher: await loadSecretCipher(options) };
  } catch (error) {
    await store.close();
    throw error;
  }
}
