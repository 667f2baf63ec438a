/**
 * Sealing of secrets: the cipher in use and the store's key check. A model's API key and each
 * `secrets` entry are sealed with associated data naming their integration and field
 * (`secretAad`), opened once when the store is loaded, and re-sealed all together when the key
 * changes. The key check (a random value sealed under `KEY_CHECK_AAD`) proves a key before any secret
 * is read.
 */
import { KEY_CHECK_AAD, secretAad } from './cipher.js';
import type { Live } from './live.js';
import { randomId } from './live.js';
import { IntegrationStoreError } from './store.js';
import type { IntegrationStore, SecretCipher, StoredIntegration } from './types.js';

/** An integration's record and the secrets to seal into it, in clear. */
export type ClearSecrets = Pick<Live, 'stored' | 'apiKey' | 'secrets'>;

/** An integration's secrets as opened from its stored record. */
export interface OpenedSecrets {
  apiKey: string | undefined;
  secrets: Record<string, string>;
  /** Whether any of them was sealed under a key other than the current one. */
  stale: boolean;
}

/** How many secrets an integration holds (its API key counts as one). */
export function secretCount(clear: ClearSecrets): number {
  return (clear.apiKey !== undefined ? 1 : 0) + Object.keys(clear.secrets).length;
}

/** `clear.stored` with its sealed fields replaced by `clear`'s values sealed under `cipher`. */
export async function sealAll(cipher: SecretCipher, clear: ClearSecrets): Promise<StoredIntegration> {
  const { stored, apiKey, secrets } = clear;
  const out: StoredIntegration = { ...stored };
  if (stored.model) {
    const { apiKey: _old, ...model } = stored.model;
    out.model =
      apiKey === undefined
        ? model
        : { ...model, apiKey: await cipher.seal(apiKey, secretAad(stored.id, 'model.apiKey')) };
  }
  delete out.secrets;
  const names = Object.keys(secrets);
  if (names.length > 0) {
    out.secrets = {};
    for (const name of names)
      out.secrets[name] = await cipher.seal(secrets[name]!, secretAad(stored.id, `secrets.${name}`));
  }
  return out;
}

/** A fresh key check sealed under `cipher`. */
export function sealKeyCheck(cipher: SecretCipher): Promise<string> {
  return cipher.seal(randomId(), KEY_CHECK_AAD);
}

/** The cipher in use and the key check saved with every snapshot. */
export class SecretSealer {
  readonly #store: Pick<IntegrationStore, 'label'>;
  #cipher: SecretCipher | undefined;
  #keyCheck: string | undefined;

  /** `store` names the store in the errors of values that do not open. */
  constructor(store: Pick<IntegrationStore, 'label'>) {
    this.#store = store;
  }

  /** The cipher new secrets are sealed with (set before anything is loaded). */
  get cipher(): SecretCipher {
    return this.#cipher!;
  }

  /** From now on, seals with `cipher` and saves `keyCheck` (when given) with every snapshot. */
  use(cipher: SecretCipher, keyCheck?: string): void {
    this.#cipher = cipher;
    if (keyCheck !== undefined) this.#keyCheck = keyCheck;
  }

  /**
   * Proves the cipher opens a loaded store's key check and keeps it; resolves to whether it was sealed
   * under a previous key. A store saved without one proves nothing and is not stale.
   */
  async admit(keyCheck: string | undefined): Promise<boolean> {
    if (keyCheck === undefined) return false;
    try {
      await this.cipher.open(keyCheck, KEY_CHECK_AAD);
    } catch (error) {
      throw new IntegrationStoreError(
        this.#label,
        `the secret key does not open this store (${(error as Error).message}). Set MCP_SECRET_KEY to the key it was saved with (during a rotation, the old key goes in MCP_SECRET_KEY_PREVIOUS).`,
      );
    }
    const stale = !this.cipher.isCurrent(keyCheck);
    this.#keyCheck = keyCheck;
    return stale;
  }

  /** The key check to save, sealed under the current cipher the first time it is needed. */
  async keyCheck(): Promise<string> {
    this.#keyCheck ??= await sealKeyCheck(this.cipher);
    return this.#keyCheck;
  }

  /** `clear.stored` with `clear`'s secrets sealed in under the current cipher. */
  seal(clear: ClearSecrets): Promise<StoredIntegration> {
    return sealAll(this.cipher, clear);
  }

  /** Opens the secrets of a stored integration: its API key first, then each secret in order. */
  async open(stored: StoredIntegration): Promise<OpenedSecrets> {
    const cipher = this.cipher;
    const sealedKey = stored.model?.apiKey;
    const apiKey = sealedKey === undefined ? undefined : await this.#open(stored, 'model.apiKey', sealedKey);
    const secrets: Record<string, string> = {};
    let stale = false;
    for (const [name, sealed] of Object.entries(stored.secrets ?? {})) {
      secrets[name] = await this.#open(stored, `secrets.${name}`, sealed);
      stale ||= !cipher.isCurrent(sealed);
    }
    if (sealedKey !== undefined) stale ||= !cipher.isCurrent(sealedKey);
    return { apiKey, secrets, stale };
  }

  get #label(): string {
    return this.#store.label ?? 'integration store';
  }

  async #open(stored: StoredIntegration, field: string, sealed: string): Promise<string> {
    try {
      return await this.cipher.open(sealed, secretAad(stored.id, field));
    } catch (error) {
      throw new IntegrationStoreError(
        this.#label,
        `cannot open ${field} of integration "${stored.id}": ${(error as Error).message}`,
      );
    }
  }
}
