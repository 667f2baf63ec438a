/**
 * Per-caller shares of what a caller can hold open: 2025-era sessions, streams, WebSocket
 * connections. A global cap alone lets one caller hold everything and lock the rest out; a share
 * bounds each caller (a key's id, or an anonymous client's address) beside it.
 */

/** Counts what each caller holds of one kind of resource, up to `limit` each. */
export class Shares {
  readonly limit: number;
  readonly #held = new Map<string, number>();

  constructor(limit: number, what: string) {
    if (!(Number.isInteger(limit) && limit > 0)) throw new TypeError(`${what} must be a positive integer`);
    this.limit = limit;
  }

  /** How many `key` holds. */
  held(key: string): number {
    return this.#held.get(key) ?? 0;
  }

  /**
   * Takes one of `key`'s share: the function that gives it back (idempotent), or `undefined` when
   * `key` already holds its whole share. Only keys holding something are remembered.
   */
  take(key: string): (() => void) | undefined {
    const held = this.#held.get(key) ?? 0;
    if (held >= this.limit) return undefined;
    this.#held.set(key, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.#held.get(key) ?? 1) - 1;
      if (left <= 0) this.#held.delete(key);
      else this.#held.set(key, left);
    };
  }
}
