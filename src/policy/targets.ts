/**
 * Catalog entries as the policy sees them: bounded in length before anything looks at them, and
 * checked in every spelling a reader could receive. A resource URI reaches a template's reader
 * percent-decoded (`files://sec%72et` reads the variable `secret`), so a rule written for
 * `files://secret` must refuse that spelling too: a URI is checked as sent and as decoded, and
 * either one being refused refuses it.
 */
import { quote } from '../core/errors.js';
import { type Refusal, refuse } from '../core/refusal.js';
import type { TargetKind } from './permissions.js';

/** The longest tool or prompt name the catalogs accept; a longer one cannot exist. */
export const MAX_NAME_LENGTH = 128;
/** The longest resource URI (or template) the catalog accepts. */
export const MAX_URI_LENGTH = 8192;

/** A catalog entry an operation names. */
export interface Target {
  readonly kind: TargetKind;
  /** A tool or prompt name, or a resource URI (or template). */
  readonly name: string;
}

/**
 * The spellings of `target` the policy must accept for it to be used: the name itself, and for a
 * URI with percent-escapes its decoded form too. A refusal when the name is too long, or a URI's
 * escapes cannot be decoded (no reader could match it either).
 */
export function spellingsOf(target: Target): readonly string[] | Refusal {
  const { kind, name } = target;
  if (kind !== 'resources') {
    if (name.length > MAX_NAME_LENGTH) {
      return refuse(
        'INVALID_ARGUMENT',
        `The ${kind.slice(0, -1)} name is longer than ${MAX_NAME_LENGTH} characters`,
      );
    }
    return [name];
  }
  if (name.length > MAX_URI_LENGTH) {
    return refuse('INVALID_ARGUMENT', `The resource URI is longer than ${MAX_URI_LENGTH} characters`);
  }
  if (!name.includes('%')) return [name];
  let decoded: string;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    return refuse('INVALID_ARGUMENT', `The resource URI ${quote(name)} is not valid percent-encoding`);
  }
  return decoded === name ? [name] : [name, decoded];
}
