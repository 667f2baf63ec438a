/**
 * The persisted format (shared by every store that writes a document) and the in-memory store.
 */
import type { IntegrationSnapshot, IntegrationStore } from './types.js';

/** The `format` field of a stored document. */
export const STORE_FORMAT = 'mcpkit.integrations';
/** The format version this build writes. */
export const STORE_VERSION = 1;

/** A stored document: the snapshot with its format and version. */
export interface StoredDocument extends IntegrationSnapshot {
  format: typeof STORE_FORMAT;
  version: number;
  savedAt: string;
}

/**
 * Upgrades from each older version to the next: `MIGRATIONS[n]` turns a version-`n` document into
 * a version-`n + 1` one. A store runs them in order on load and writes the result on the next save
 * (the file store keeps the original as `<file>.v<n>.bak` first). Version 1 is the first format.
 */
export const MIGRATIONS: Readonly<Record<number, (doc: Record<string, unknown>) => Record<string, unknown>>> =
  Object.freeze({});

/** Thrown for a stored document that cannot be used: names the source, never a secret. */
export class IntegrationStoreError extends Error {
  override readonly name = 'IntegrationStoreError';
  /** Where the document came from (a file path for the file store). */
  readonly source: string;
  constructor(source: string, message: string, options?: { cause?: unknown }) {
    super(`${source}: ${message}`, options);
    this.source = source;
  }
}

/** Wraps a snapshot as the current-version document. */
export function toDocument(snapshot: IntegrationSnapshot): StoredDocument {
  return {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    savedAt: new Date().toISOString(),
    ...(snapshot.keyCheck !== undefined && { keyCheck: snapshot.keyCheck }),
    integrations: snapshot.integrations,
  };
}

/**
 * Checks a parsed document and migrates it to the current version. `source` names it in errors.
 * Returns the snapshot and the version it was stored with.
 */
export function fromDocument(
  source: string,
  value: unknown,
): { snapshot: IntegrationSnapshot; version: number } {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new IntegrationStoreError(source, 'is not an integrations document (expected a JSON object)');
  let doc = value as Record<string, unknown>;
  if (doc.format !== STORE_FORMAT)
    throw new IntegrationStoreError(
      source,
      `is not an integrations document (format is not "${STORE_FORMAT}")`,
    );
  const stored = doc.version;
  if (typeof stored !== 'number' || !Number.isInteger(stored) || stored < 1)
    throw new IntegrationStoreError(source, 'has no valid format version');
  if (stored > STORE_VERSION) {
    throw new IntegrationStoreError(
      source,
      `was written by a newer mcpkit (format version ${stored}; this one reads up to ${STORE_VERSION}). Upgrade mcpkit or restore a backup.`,
    );
  }
  for (let v = stored; v < STORE_VERSION; v++) {
    const step = MIGRATIONS[v];
    if (!step) throw new IntegrationStoreError(source, `has format version ${v}, which has no migration`);
    doc = step(doc);
  }
  if (!Array.isArray(doc.integrations)) throw new IntegrationStoreError(source, 'has no integrations array');
  doc.integrations.forEach((entry, i) => {
    const e = entry as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.id !== 'string' || typeof e.name !== 'string')
      throw new IntegrationStoreError(source, `integrations[${i}] is malformed`);
  });
  return {
    snapshot: {
      ...(typeof doc.keyCheck === 'string' && { keyCheck: doc.keyCheck }),
      integrations: doc.integrations as IntegrationSnapshot['integrations'],
    },
    version: stored,
  };
}

/**
 * A store that keeps the snapshot in memory (serialised, so nothing shares references with the
 * manager): for tests and ephemeral servers. Everything is gone when the process ends.
 *
 * @example
 * ```ts
 * import { createMcpServer, createMemoryIntegrationStore } from 'mcpkit';
 *
 * const server = createMcpServer({ integrations: { store: createMemoryIntegrationStore() } });
 * ```
 */
export function createMemoryIntegrationStore(initial?: IntegrationSnapshot): IntegrationStore & {
  /** The stored document as JSON text (what a file store would write). */
  readonly text: string | undefined;
} {
  let text = initial ? JSON.stringify(toDocument(initial)) : undefined;
  return {
    get text() {
      return text;
    },
    async load() {
      return text === undefined ? undefined : fromDocument('memory store', JSON.parse(text)).snapshot;
    },
    async save(snapshot) {
      text = JSON.stringify(toDocument(snapshot));
    },
  };
}
