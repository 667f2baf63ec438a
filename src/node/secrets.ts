/**
 * Secrets at rest on Node: AES-256-GCM on node:crypto (random 12-byte nonce per seal, full 16-byte
 * tag, the integration id and field name as associated data) under a key from `MCP_SECRET_KEY` or a
 * generated key file (`<dataDir>/secret.key`, mode 0600).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { parseSealed, SEALED_PREFIX } from '../integrations/cipher.js';
import type { SecretCipher } from '../integrations/types.js';
import type { Logger } from '../types.js';

/** The file a generated key is kept in, inside the data directory. */
export const SECRET_KEY_FILE = 'secret.key';
/** The data directory when neither `dataDir` nor `MCP_DATA_DIR` names one, relative to the working directory. */
export const DEFAULT_DATA_DIR = '.mcpkit';

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('mcpkit-key-id').update(key).digest('base64url').slice(0, 11);
}

/**
 * Parses a 32-byte key given as 64 hex characters or base64 (standard or URL-safe). `name` is used in
 * the error; the value never is.
 */
export function parseSecretKey(value: string, name = 'MCP_SECRET_KEY'): Buffer {
  const text = value.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, 'base64');
  if (key?.length !== 32) {
    throw new TypeError(
      `${name} must be a 32-byte key written as 64 hex characters or as base64 (generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64'))")`,
    );
  }
  return key;
}

/**
 * An AES-256-GCM {@link SecretCipher}. `previous` keys only open values (found by the key id in each
 * sealed value); sealing always uses `key`. Values sealed with a previous key are re-sealed by the
 * manager on load: that is key rotation.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * const cipher = createAesGcmCipher(randomBytes(32));
 * ```
 */
export function createAesGcmCipher(key: Uint8Array, previous: readonly Uint8Array[] = []): SecretCipher {
  const current = Buffer.from(key);
  if (current.length !== 32) throw new TypeError('key must be 32 bytes');
  const keyId = keyIdOf(current);
  const keys = new Map<string, Buffer>([[keyId, current]]);
  for (const k of previous) {
    const buffer = Buffer.from(k);
    if (buffer.length !== 32) throw new TypeError('previous keys must be 32 bytes');
    if (!keys.has(keyIdOf(buffer))) keys.set(keyIdOf(buffer), buffer);
  }
  return {
    keyId,
    async seal(plaintext, aad) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, nonce, { authTagLength: 16 });
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${SEALED_PREFIX}${keyId}:${nonce.toString('base64url')}:${body.toString('base64url')}`;
    },
    async open(sealed, aad) {
      const parts = parseSealed(sealed);
      if (!parts) throw new Error('the value is not a sealed secret (corrupt)');
      const k = keys.get(parts.keyId);
      if (!k) {
        throw new Error(
          `it was sealed with key id ${parts.keyId}, but the configured key is ${keyId} (wrong MCP_SECRET_KEY or key file)`,
        );
      }
      const nonce = Buffer.from(parts.nonce, 'base64url');
      const body = Buffer.from(parts.body, 'base64url');
      if (nonce.length !== 12) throw new Error('the nonce is not 12 bytes (corrupt)');
      if (body.length < 16) throw new Error('the authentication tag is truncated');
      try {
        const decipher = createDecipheriv('aes-256-gcm', k, nonce, { authTagLength: 16 });
        decipher.setAAD(Buffer.from(aad, 'utf8'));
        decipher.setAuthTag(body.subarray(body.length - 16));
        return Buffer.concat([
          decipher.update(body.subarray(0, body.length - 16)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        throw new Error('authentication failed: the ciphertext was tampered with, truncated or moved');
      }
    },
    isCurrent: (sealed) => parseSealed(sealed)?.keyId === keyId,
  };
}

function warn(options: LoadSecretCipherOptions, message: string): void {
  if (options.logger) options.logger.warn(message);
  else console.warn(message);
}

/** Options for {@link loadSecretCipher}. */
export interface LoadSecretCipherOptions {
  /** Where a generated key file goes. Default `MCP_DATA_DIR`, else `./.mcpkit`. */
  dataDir?: string;
  /** The environment to read `MCP_SECRET_KEY` and `MCP_SECRET_KEY_PREVIOUS` from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Receives the warning when a key file is generated. Default: `console.warn`. */
  logger?: Pick<Logger, 'warn'>;
}

/** The data directory: `MCP_DATA_DIR`, else `./.mcpkit`. */
export function resolveDataDir(
  dataDir?: string,
  env: Record<string, string | undefined> = process.env,
): string {
  return path.resolve(dataDir ?? (env.MCP_DATA_DIR || DEFAULT_DATA_DIR));
}

/**
 * The cipher for integration secrets. The key comes from `MCP_SECRET_KEY` (32 bytes, hex or base64);
 * without it, from `<dataDir>/secret.key`, which is generated (mode 0600, with a warning) when
 * missing. `MCP_SECRET_KEY_PREVIOUS` (comma-separated) opens values sealed before a rotation: they are
 * re-sealed under the new key at start.
 *
 * @example
 * ```ts
 * const cipher = await loadSecretCipher({ dataDir: '/var/lib/app' });
 * ```
 */
export async function loadSecretCipher(options: LoadSecretCipherOptions = {}): Promise<SecretCipher> {
  const env = options.env ?? process.env;
  const previous = (env.MCP_SECRET_KEY_PREVIOUS ?? '')
    .split(',')
    .filter((k) => k.trim() !== '')
    .map((k) => parseSecretKey(k, 'MCP_SECRET_KEY_PREVIOUS'));
  if (env.MCP_SECRET_KEY) return createAesGcmCipher(parseSecretKey(env.MCP_SECRET_KEY), previous);
  const dir = resolveDataDir(options.dataDir, env);
  const file = path.join(dir, SECRET_KEY_FILE);
  let text: string | undefined;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text === undefined) {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const key = randomBytes(32);
    const handle = await fs.open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    try {
      await handle.writeFile(`${key.toString('base64')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const dirHandle = await fs.open(dir, 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
    warn(
      options,
      `mcpkit: generated a new secret key in ${file} (mode 0600). Integration secrets cannot be read without it: back it up, or set MCP_SECRET_KEY to manage the key yourself.`,
    );
    return createAesGcmCipher(key, previous);
  }
  const stat = await fs.stat(file);
  if ((stat.mode & 0o077) !== 0) {
    warn(options, `mcpkit: ${file} is readable by other users; chmod 600 it.`);
  }
  return createAesGcmCipher(parseSecretKey(text, file), previous);
}
