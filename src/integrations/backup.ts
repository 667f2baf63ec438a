/**
 * Backups of integrations: the export document and the reading of one for an import.
 *
 * An export holds each integration as the input that recreates it. Its secrets (the model's API key
 * and every `secrets` entry) are, by the admin's choice: sealed under a transfer key (`sealed`, the
 * default: AES-256-GCM under a key PBKDF2 stretches from a passphrase the admin gives, with a fresh
 * salt per export, each value bound to its integration and field), in clear (`plaintext`, asked for
 * by name), or left out (`omit`). The server's own `secret.key` never leaves it: the target opens
 * the values with the transfer key and seals them again under its own key.
 *
 * Reading never throws for one bad integration: each one's problem becomes an {@link ImportIssue},
 * so a dry run reports them all. What spoils the whole document (its format, the transfer key) throws.
 * Messages name fields, never values.
 */
import { McpKitError, quote } from '../core/errors.js';
import { jsonDepth, MAX_JSON_DEPTH } from '../core/safeJson.js';
import { parseSealed, type TransferKdf, transferCipher } from './cipher.js';
import { inputOf, type Live } from './live.js';
import type { IntegrationInput, SecretCipher } from './types.js';
import {
  fieldError,
  INTEGRATION_ID,
  LOCAL_NAME,
  RESERVED_INTEGRATION_IDS,
  validateIntegrationInput,
} from './validation.js';

/** The `format` of an export document. */
export const EXPORT_FORMAT = 'mcpkit.integrations.export';
/** The export format version this build writes and reads. */
export const EXPORT_VERSION = 1;

/** How an export carries secrets: sealed under a transfer key, in clear, or not at all. */
export type ExportSecretsMode = 'sealed' | 'plaintext' | 'omit';

/**
 * What `IntegrationManager.export` takes.
 *
 * @example
 * ```ts
 * const options: IntegrationExportOptions = { transferKey: process.env.TRANSFER_KEY, ids: ['crm'] };
 * ```
 */
export interface IntegrationExportOptions {
  /** Default `sealed`, which needs `transferKey`. */
  secrets?: ExportSecretsMode;
  /** The passphrase secrets are sealed under (16 to 1024 characters); the import needs the same one. */
  transferKey?: string;
  /** Only these integrations (default: all). An unknown id is `NOT_FOUND`. */
  ids?: readonly string[];
}

/** The `secrets` block of an export: how its values are to be opened. */
export type ExportSecrets =
  | {
      mode: 'sealed';
      kdf: TransferKdf /** A known value sealed under the key: proves it first. */;
      check: string;
    }
  | { mode: 'plaintext' }
  | { mode: 'omit' };

/**
 * An export document (JSON), as `GET /integrations/export` answers it.
 *
 * @example
 * ```ts
 * const backup: IntegrationExport = await server.integrations.export({ secrets: 'omit' });
 * ```
 */
export interface IntegrationExport {
  format: typeof EXPORT_FORMAT;
  version: number;
  exportedAt: string;
  secrets: ExportSecrets;
  /** Each integration as the input that recreates it, its secrets as `secrets` says. */
  integrations: IntegrationInput[];
}

/** What an import does with an integration whose id the server already has. */
export type ImportConflictPolicy = 'fail' | 'skip' | 'replace';

/**
 * What `IntegrationManager.import` takes.
 *
 * @example
 * ```ts
 * const options: IntegrationImportOptions = { transferKey: process.env.TRANSFER_KEY, onConflict: 'skip', dryRun: true };
 * ```
 */
export interface IntegrationImportOptions {
  /** The passphrase the export was sealed under (needed for a `sealed` document). */
  transferKey?: string;
  /** Default `fail`: an existing id is a conflict and nothing is imported. */
  onConflict?: ImportConflictPolicy;
  /** Check everything and report; write nothing. */
  dryRun?: boolean;
}

/** One problem an import found with one integration of the document. */
export interface ImportIssue {
  /** Its position in the document's `integrations`. */
  index: number;
  /** Its id, when it has a valid one. */
  id?: string;
  /**
   * `exists`: the server has this id (with `onConflict: 'fail'`); `duplicate`: the document holds the
   * id twice; `namespace`: a name it would put in the catalog is taken; `invalid`: it is not a valid
   * integration here (its fields, its secrets, the outbound policy).
   */
  kind: 'exists' | 'duplicate' | 'namespace' | 'invalid';
  /** The field, from the document's root (`integrations[2].tools[0]`). */
  field?: string;
  message: string;
}

/**
 * What an import did, or (dry run) would do.
 *
 * @example
 * ```ts
 * const report: IntegrationImportReport = await server.integrations.import(backup, { dryRun: true });
 * for (const issue of report.issues) console.warn(issue.field, issue.message);
 * ```
 */
export interface IntegrationImportReport {
  dryRun: boolean;
  /** Whether anything was written: `false` for a dry run and whenever `issues` is not empty. */
  applied: boolean;
  onConflict: ImportConflictPolicy;
  /** How the document carried its secrets. */
  secrets: ExportSecretsMode;
  created: string[];
  replaced: string[];
  skipped: string[];
  issues: ImportIssue[];
}

/** The most integrations one document may hold. */
export const MAX_IMPORT_INTEGRATIONS = 10_000;
/** PBKDF2 iterations an import accepts: enough to mean something, few enough to bound the work. */
const MIN_ITERATIONS = 100_000;
const MAX_ITERATIONS = 5_000_000;
const CHECK_AAD = 'mcpkit:transfer-check';
const CHECK_TEXT = 'mcpkit transfer key check';
const MODES: readonly ExportSecretsMode[] = ['sealed', 'plaintext', 'omit'];
const DOCUMENT_KEYS = ['format', 'version', 'exportedAt', 'secrets', 'integrations'];

/** The associated data of a secret in an export: its integration and field. */
function transferAad(id: string, field: string): string {
  return `mcpkit:transfer:${id}:${field}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(field: string, message: string): McpKitError {
  return fieldError(field, message);
}

/** Checks a transfer key as given (never echoing it). */
function checkTransferKey(value: unknown): string {
  if (typeof value !== 'string' || value.length < 16 || value.length > 1024)
    throw invalid('transferKey', 'must be a passphrase of 16 to 1024 characters');
  return value;
}

/** Checks an export mode. */
export function exportMode(value: unknown): ExportSecretsMode {
  if (value === undefined) return 'sealed';
  if (typeof value !== 'string' || !MODES.includes(value as ExportSecretsMode))
    throw invalid('secrets', 'must be one of sealed, plaintext, omit');
  return value as ExportSecretsMode;
}

/** Checks a conflict policy. */
export function conflictPolicy(value: unknown): ImportConflictPolicy {
  if (value === undefined) return 'fail';
  if (value !== 'fail' && value !== 'skip' && value !== 'replace')
    throw invalid('onConflict', 'must be one of fail, skip, replace');
  return value;
}

/** The export of `lives` (in this order) with their secrets as `options.secrets` says. */
export async function buildExport(
  lives: readonly Live[],
  options: IntegrationExportOptions,
): Promise<IntegrationExport> {
  const mode = exportMode(options.secrets);
  let secrets: ExportSecrets = { mode } as ExportSecrets;
  let seal: (value: string, id: string, field: string) => Promise<string> = async (value) => value;
  if (mode === 'sealed') {
    if (options.transferKey === undefined)
      throw invalid(
        'transferKey',
        'is required to export sealed secrets (or ask for secrets: plaintext or omit explicitly)',
      );
    const { cipher, kdf } = await transferCipher(checkTransferKey(options.transferKey));
    secrets = { mode, kdf, check: await cipher.seal(CHECK_TEXT, CHECK_AAD) };
    seal = (value, id, field) => cipher.seal(value, transferAad(id, field));
  }
  const integrations: IntegrationInput[] = [];
  for (const live of lives) {
    const input = inputOf(live);
    const id = input.id;
    if (mode !== 'omit') {
      if (input.model && live.apiKey !== undefined)
        input.model.apiKey = await seal(live.apiKey, id, 'model.apiKey');
      const names = Object.keys(live.secrets);
      if (names.length > 0) {
        input.secrets = {};
        for (const name of names)
          input.secrets[name] = await seal(live.secrets[name]!, id, `secrets.${name}`);
      }
    }
    integrations.push(input);
  }
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: new Date().toISOString(),
    secrets,
    integrations,
  };
}

/** One integration of a document as read: its input (secrets in clear), or the issue it has. */
export type ReadEntry = { index: number; input: IntegrationInput } | { index: number; issue: ImportIssue };

/** A document as read for an import. */
export interface ReadExport {
  mode: ExportSecretsMode;
  entries: ReadEntry[];
}

/**
 * The first own `__proto__` key (or `constructor` carrying a `prototype`) in `value`, as a path; an
 * iterative walk over arrays and plain objects, each visited once.
 */
function pollutedPath(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, 'document']];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) stack.push([item, `${path}[${i}]`]);
      continue;
    }
    const proto = Object.getPrototypeOf(node);
    if (proto !== Object.prototype && proto !== null) return path;
    if (Object.hasOwn(node, '__proto__')) return path;
    const record = node as Record<string, unknown>;
    const ctor = Object.hasOwn(node, 'constructor') ? record.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return path;
    for (const key of Object.keys(record)) stack.push([record[key], `${path}.${key}`]);
  }
  return undefined;
}

/** Checks the document's frame and proves the transfer key; returns how to open its secrets. */
async function openFrame(
  document: unknown,
  transferKey: string | undefined,
): Promise<{ mode: ExportSecretsMode; cipher?: SecretCipher; integrations: unknown[] }> {
  if (!isObject(document)) throw invalid('document', 'must be a JSON object (an integrations export)');
  if (jsonDepth(document, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
    throw invalid('document', `nests deeper than ${MAX_JSON_DEPTH} levels`);
  const polluted = pollutedPath(document);
  if (polluted !== undefined)
    throw invalid(polluted, 'holds a key that could reach a prototype (__proto__ or constructor.prototype)');
  for (const key of Object.keys(document))
    if (!DOCUMENT_KEYS.includes(key)) throw invalid('document', 'holds a field an export does not have');
  if (document.format !== EXPORT_FORMAT)
    throw invalid('format', `must be "${EXPORT_FORMAT}" (is this an export of GET /integrations/export?)`);
  if (document.version !== EXPORT_VERSION)
    throw invalid(
      'version',
      typeof document.version === 'number' && document.version > EXPORT_VERSION
        ? `is newer than this mcpkit reads (${EXPORT_VERSION}); upgrade mcpkit`
        : `must be ${EXPORT_VERSION}`,
    );
  if (document.exportedAt !== undefined && typeof document.exportedAt !== 'string')
    throw invalid('exportedAt', 'must be a string');
  const integrations = document.integrations;
  if (!Array.isArray(integrations)) throw invalid('integrations', 'must be an array');
  if (integrations.length > MAX_IMPORT_INTEGRATIONS)
    throw invalid('integrations', `must hold at most ${MAX_IMPORT_INTEGRATIONS} integrations`);
  const secrets = document.secrets;
  if (!isObject(secrets)) throw invalid('secrets', 'must be an object with a mode');
  const mode = exportMode(secrets.mode);
  if (mode !== 'sealed') {
    if (Object.keys(secrets).length !== 1) throw invalid('secrets', 'holds a field its mode does not have');
    return { mode, integrations };
  }
  for (const key of Object.keys(secrets))
    if (key !== 'mode' && key !== 'kdf' && key !== 'check')
      throw invalid('secrets', 'holds a field its mode does not have');
  const kdf = secrets.kdf;
  if (
    !isObject(kdf) ||
    kdf.name !== 'PBKDF2-SHA-256' ||
    typeof kdf.iterations !== 'number' ||
    !Number.isInteger(kdf.iterations) ||
    kdf.iterations < MIN_ITERATIONS ||
    kdf.iterations > MAX_ITERATIONS ||
    typeof kdf.salt !== 'string' ||
    !/^[A-Za-z0-9_-]{16,64}$/.test(kdf.salt)
  )
    throw invalid(
      'secrets.kdf',
      `must be { name: "PBKDF2-SHA-256", iterations (${MIN_ITERATIONS}-${MAX_ITERATIONS}), salt (base64url) }`,
    );
  if (typeof secrets.check !== 'string' || !parseSealed(secrets.check))
    throw invalid('secrets.check', 'must be a sealed value');
  if (transferKey === undefined)
    throw invalid('transferKey', 'is required: the document holds secrets sealed under a transfer key');
  const { cipher } = await transferCipher(checkTransferKey(transferKey), {
    name: 'PBKDF2-SHA-256',
    iterations: kdf.iterations,
    salt: kdf.salt,
  });
  try {
    await cipher.open(secrets.check, CHECK_AAD);
  } catch {
    throw invalid('transferKey', 'does not open this document (not the key it was exported with)');
  }
  return { mode, cipher, integrations };
}

/** An integration's secrets, opened: each field's value in clear, or an issue. */
async function openSecrets(
  entry: Record<string, unknown>,
  where: { index: number; id: string; mode: ExportSecretsMode; cipher: SecretCipher | undefined },
): Promise<{ opened: Record<string, unknown> } | { issue: ImportIssue }> {
  const { index, id, mode, cipher } = where;
  const issue = (field: string, message: string) => ({
    issue: {
      index,
      id,
      kind: 'invalid' as const,
      field: `integrations[${index}].${field}`,
      message: `integrations[${index}].${field} ${message}`,
    },
  });
  const open = async (field: string, value: unknown): Promise<string | { issue: ImportIssue }> => {
    if (typeof value !== 'string') return issue(field, 'must be a string');
    if (mode === 'plaintext') return value;
    if (!parseSealed(value)) return issue(field, 'must be a value sealed under the transfer key');
    try {
      return await cipher!.open(value, transferAad(id, field));
    } catch {
      return issue(field, 'does not open with the transfer key (altered, or moved from elsewhere)');
    }
  };
  const out: Record<string, unknown> = { ...entry };
  const model = entry.model;
  const hasKey = isObject(model) && model.apiKey !== undefined;
  if (mode === 'omit') {
    if (hasKey || entry.secrets !== undefined)
      return issue(hasKey ? 'model.apiKey' : 'secrets', 'is given but the document says secrets are omitted');
    return { opened: out };
  }
  if (hasKey) {
    const apiKey = await open('model.apiKey', model.apiKey);
    if (typeof apiKey !== 'string') return apiKey;
    out.model = { ...model, apiKey };
  }
  if (entry.secrets !== undefined) {
    if (!isObject(entry.secrets)) return issue('secrets', 'must be an object of names to values');
    const secrets: Record<string, string> = {};
    for (const [name, value] of Object.entries(entry.secrets)) {
      if (!LOCAL_NAME.test(name))
        return issue('secrets', 'holds a name that is not 1-60 characters of A-Z a-z 0-9 _ -');
      const opened = await open(`secrets.${name}`, value);
      if (typeof opened !== 'string') return opened;
      secrets[name] = opened;
    }
    out.secrets = secrets;
  }
  return { opened: out };
}

/**
 * Reads an export for an import: the frame checked and the transfer key proven (else it throws an
 * `INVALID_ARGUMENT` naming the field), then each integration validated and its secrets opened, or
 * the issue it has.
 */
export async function readExport(document: unknown, transferKey: string | undefined): Promise<ReadExport> {
  const { mode, cipher, integrations } = await openFrame(document, transferKey);
  const entries: ReadEntry[] = [];
  for (const [index, raw] of integrations.entries()) {
    const at = `integrations[${index}]`;
    if (!isObject(raw)) {
      entries.push({
        index,
        issue: { index, kind: 'invalid', field: at, message: `${at} must be an object` },
      });
      continue;
    }
    if (typeof raw.id !== 'string' || !INTEGRATION_ID.test(raw.id)) {
      const message = `${at}.id must be 1-64 characters of lowercase letters, digits and "-", starting with a letter or digit`;
      entries.push({ index, issue: { index, kind: 'invalid', field: `${at}.id`, message } });
      continue;
    }
    if (RESERVED_INTEGRATION_IDS.includes(raw.id)) {
      const message = `${at}.id "${raw.id}" is reserved (reserved ids: ${RESERVED_INTEGRATION_IDS.join(', ')})`;
      entries.push({ index, issue: { index, kind: 'invalid', field: `${at}.id`, message } });
      continue;
    }
    const id = raw.id;
    const read = await openSecrets(raw, { index, id, mode, cipher });
    if ('issue' in read) {
      entries.push({ index, issue: read.issue });
      continue;
    }
    try {
      entries.push({ index, input: validateIntegrationInput(read.opened) });
    } catch (error) {
      entries.push({ index, issue: issueOf(error, { index, id }) });
    }
  }
  return { mode, entries };
}

/** The issue an error of one integration makes: its field prefixed with the integration's place. */
export function issueOf(error: unknown, where: { index: number; id: string }): ImportIssue {
  const { index, id } = where;
  const at = `integrations[${index}]`;
  if (!(error instanceof McpKitError) || !error.expose) {
    return { index, id, kind: 'invalid', message: `${at} (${quote(id)}) could not be prepared` };
  }
  const field = (error.details as { field?: unknown } | undefined)?.field;
  return {
    index,
    id,
    kind: error.code === 'CONFLICT' ? 'namespace' : 'invalid',
    ...(typeof field === 'string' && { field: `${at}.${field}` }),
    message: `${at} (${quote(id)}): ${error.message}`,
  };
}
