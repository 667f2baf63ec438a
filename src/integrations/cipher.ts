/**
 * The sealed-value format and a runtime-neutral AES-256-GCM {@link SecretCipher} on Web Crypto
 * (`crypto.subtle`). `mcpkit/node` has the same format on node:crypto with key loading from
 * `MCP_SECRET_KEY` or a key file.
 *
 * Sealed value: `enc:v1:<keyId>:<nonce, base64url>:<ciphertext + 16-byte tag, base64url>`.
 */
import type { SecretCipher } from './types.js';

/** Prefix of every sealed value. */
export const SEALED_PREFIX = 'enc:v1:';

/** The associated data of a secret field: binds the ciphertext to its integration and field. */
export function secretAad(integrationId: string, field: string): string {
  return `mcpkit:integration:${integrationId}:${field}`;
}

/** The associated data of the key check value. */
export const KEY_CHECK_AAD = 'mcpkit:key-check';

/** The parts of a sealed value, or `undefined` when it is not one. */
export function parseSealed(sealed: string): { keyId: string; nonce: string; body: string } | undefined {
  if (typeof sealed !== 'string' || !sealed.startsWith(SEALED_PREFIX)) return undefined;
  const parts = sealed.slice(SEALED_PREFIX.length).split(':');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return undefined;
  return { keyId: parts[0]!, nonce: parts[1]!, body: parts[2]! };
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(new ArrayBuffer(s.length));
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * A cipher under a random key that lives only in this process: for in-memory stores, where secrets
 * never reach a disk and need not survive a restart.
 *
 * @example
 * ```ts
 * const cipher = await createEphemeralCipher();
 * const sealed = await cipher.seal('sk-…', 'aad');
 * ```
 */
export async function createEphemeralCipher(): Promise<SecretCipher> {
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  return cipherOfKey(key, b64url(crypto.getRandomValues(new Uint8Array(6))));
}

/** A {@link SecretCipher} over a Web Crypto AES-GCM key, writing `keyId` into what it seals. */
export function cipherOfKey(key: CryptoKey, keyId: string): SecretCipher {
  const encoder = new TextEncoder();
  return {
    keyId,
    async seal(plaintext, aad) {
      const nonce = crypto.getRandomValues(new Uint8Array(12));
      const body = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: nonce, additionalData: encoder.encode(aad), tagLength: 128 },
        key,
        encoder.encode(plaintext),
      );
      return `${SEALED_PREFIX}${keyId}:${b64url(nonce)}:${b64url(new Uint8Array(body))}`;
    },
    async open(sealed, aad) {
      const parts = parseSealed(sealed);
      if (!parts) throw new Error('The value is not a sealed secret');
      if (parts.keyId !== keyId)
        throw new Error(`The secret was sealed with another key (key id ${parts.keyId})`);
      const body = fromB64url(parts.body);
      if (body.byteLength < 16)
        throw new Error('The sealed secret is truncated (no full authentication tag)');
      try {
        const plain = await crypto.subtle.decrypt(
          {
            name: 'AES-GCM',
            iv: fromB64url(parts.nonce),
            additionalData: encoder.encode(aad),
            tagLength: 128,
          },
          key,
          body,
        );
        return new TextDecoder().decode(plain);
      } catch {
        throw new Error('The sealed secret failed authentication: it was tampered with or is corrupt');
      }
    },
    isCurrent: (sealed) => parseSealed(sealed)?.keyId === keyId,
  };
}

/** How a transfer key is stretched into an AES-256-GCM key: PBKDF2 over SHA-256. */
export interface TransferKdf {
  name: 'PBKDF2-SHA-256';
  iterations: number;
  /** 16 random bytes, base64url. */
  salt: string;
}

/**
 * A cipher under the AES-256-GCM key a transfer key (a passphrase the admin chooses) derives with
 * `kdf`: what an export's secrets are sealed under, so only who holds the transfer key opens them.
 * A fresh `kdf` (random salt) when none is given.
 */
export async function transferCipher(
  transferKey: string,
  kdf?: TransferKdf,
): Promise<{ cipher: SecretCipher; kdf: TransferKdf }> {
  const used: TransferKdf = kdf ?? {
    name: 'PBKDF2-SHA-256',
    iterations: TRANSFER_ITERATIONS,
    salt: b64url(crypto.getRandomValues(new Uint8Array(16))),
  };
  const material = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(transferKey),
    'PBKDF2',
    false,
    ['deriveKey'],
  );
  const key = await crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: fromB64url(used.salt), iterations: used.iterations },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
  return { cipher: cipherOfKey(key, 'transfer'), kdf: used };
}

/** PBKDF2 iterations of a new export (OWASP's figure for PBKDF2-HMAC-SHA-256). */
export const TRANSFER_ITERATIONS = 600_000;
