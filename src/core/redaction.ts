/**
 * The one redaction of the package. Whatever leaves the process for someone other than its operator
 * (a tool error, a provider error, an audit event) or stays in memory for later (a log record, an
 * audit entry) passes through it: credential-shaped strings and given secrets are removed, absolute
 * file paths scrubbed, and structured values bounded by bytes, not only by count.
 */
import { detach, scrubPaths } from './errors.js';

/** Keys whose values are never logged or audited, wherever they appear. */
export const SECRET_KEY =
  /authorization|api[-_]?key|secret|token|password|passwd|cookie|credential|private[-_]?key/i;

const REDACTED = '[redacted]';

/**
 * Credential shapes, each matched in linear time (no nested quantifiers, no alternation that can
 * backtrack into itself): a run of text that looks like one of these is replaced whole.
 */
const CREDENTIALS: ReadonlyArray<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // HTTP authorization values, when what follows the scheme looks like a credential and not like
  // prose ("Invalid token provided", "Basic authentication failed" stay as they are).
  [
    /\b(Bearer|Basic|Digest|Token)[ \t]+([A-Za-z0-9._~+/=-]{6}[A-Za-z0-9._~+/=-]*)/gi,
    (match, scheme, value) => (credentialLike(value!) ? `${scheme} ${REDACTED}` : match),
  ],
  // Vendor key formats: OpenAI and Anthropic, GitHub, Slack, AWS, Google, Stripe. (`{n}x*` rather
  // than `{n,}`: the same language, and no deep backtracking stack on megabytes of input.)
  [/\bsk-[A-Za-z0-9_*-]{6}[A-Za-z0-9_*-]*/g, REDACTED],
  [/\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{20}[A-Za-z0-9]*/g, REDACTED],
  [/\bgithub_pat_[A-Za-z0-9_]{20}[A-Za-z0-9_]*/g, REDACTED],
  [/\bxox[abposr]-[A-Za-z0-9-]{10}[A-Za-z0-9-]*/g, REDACTED],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, REDACTED],
  [/\bAIza[A-Za-z0-9_-]{35}/g, REDACTED],
  [/\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10}[A-Za-z0-9]*/g, REDACTED],
  // JSON Web Tokens: three base64url segments, the first a JSON header.
  [
    /\beyJ[A-Za-z0-9_-]{6}[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{6}[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{6}[A-Za-z0-9_-]*/g,
    REDACTED,
  ],
  // `password=…`, `api_key: …`, `Authorization: Bearer …` and the like, in query strings, headers,
  // configuration dumps: there, whatever the value looks like.
  [
    /\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|aws_secret_access_key|authorization)([ \t]*[=:][ \t]*)((?:Bearer|Basic|Digest|Token)[ \t]+)?(?!\[redacted\])[^\s"'&,;]+/gi,
    `$1$2$3${REDACTED}`,
  ],
  // `"apiKey": "…"` in JSON text.
  [
    /("(?:[A-Za-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|authorization|credential|cookie)[A-Za-z0-9_-]*)"[ \t]*:[ \t]*)"(?:[^"\\]|\\.)*"/gi,
    `$1"${REDACTED}"`,
  ],
  // Credentials inside URLs: `https://user:pass@host`, up to the last `@` before the path (a
  // password may hold one).
  [/\b([a-z][a-z0-9+.-]{0,20}:\/\/)[^\s/@:]{1,256}:[^\s/]{0,256}@/gi, `$1${REDACTED}@`],
];

/**
 * Whether the word after an authorization scheme looks like a credential: it holds a digit or a
 * token character, mixes case inside itself, or is long.
 */
function credentialLike(value: string): boolean {
  return /[0-9._~+/=-]/.test(value) || /[a-z][A-Z]/.test(value) || value.length >= 24;
}

const PEM_BEGIN = /-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----/;
const PEM_END = /-----END [A-Z ]{0,40}PRIVATE KEY-----/;

/** Private key blocks, found by their markers with plain searches (no regex spans the body). */
function scrubPrivateKeys(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const begin = PEM_BEGIN.exec(rest);
    if (!begin) return out + rest;
    out += `${rest.slice(0, begin.index)}${REDACTED}`;
    rest = rest.slice(begin.index + begin[0].length);
    const end = PEM_END.exec(rest);
    if (!end) return out;
    rest = rest.slice(end.index + end[0].length);
  }
}

/**
 * `text` with every one of `secrets` (those of four characters or more) replaced by `[redacted]`, and
 * nothing else changed: for a body whose length and shape must stay as they were.
 *
 * @example
 * ```ts
 * maskSecrets('key=abcd1234&q=1', ['abcd1234']); // 'key=[redacted]&q=1'
 * ```
 */
export function maskSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join(REDACTED);
  return out;
}

/** Options of {@link redactText}. */
export interface RedactTextOptions {
  /** Values to remove wherever they appear (a provider's API key, an integration's secrets). */
  secrets?: ReadonlyArray<string | undefined>;
  /** The longest result; longer text is cut and marked. Default 2,000 characters. */
  maxLength?: number;
  /**
   * Keep absolute file paths (for the operator's own logs, where they help). Default `false`: they
   * become `<path>`, since text for a caller must not map the server's files.
   */
  keepPaths?: boolean;
}

/**
 * `text` without credential-shaped strings (authorization values, vendor API keys, JWTs, private
 * keys, `password=…` pairs, credentials in URLs), without the given `secrets`, with absolute file
 * paths replaced by `<path>`, and cut to `maxLength`. Linear in the length of `text`.
 *
 * @example
 * ```ts
 * redactText('upstream said: invalid key sk-abc123def456 for /srv/app/config.json');
 * // 'upstream said: invalid key [redacted] for <path>'
 * ```
 */
export function redactText(text: string, options: RedactTextOptions = {}): string {
  const maxLength = options.maxLength ?? 2000;
  // Redaction never makes text longer by much; bound the work on hostile input first.
  let out = text.length > maxLength * 4 ? text.slice(0, maxLength * 4) : text;
  out = maskSecrets(out, options.secrets ?? []);
  out = scrubPrivateKeys(out);
  for (const [pattern, replacement] of CREDENTIALS) out = out.replace(pattern, replacement as string);
  if (!options.keepPaths) out = scrubPaths(out);
  // Detached: a short result must not keep a caller's long original alive.
  return detach(out.length > maxLength ? `${out.slice(0, maxLength)}…(${text.length} chars)` : out);
}

/** How many bytes one UTF-16 unit takes in a JSON string: escapes, and UTF-8 (2 + 2 for a pair). */
function unitBytes(c: number): number {
  if (c < 0x20) return c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
  if (c === 0x22 || c === 0x5c) return 2;
  if (c < 0x80) return 1;
  if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) return 2;
  return 3;
}

/** How many bytes `text` takes as the contents of a JSON string (UTF-8, escapes included). */
export function jsonBytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) bytes += unitBytes(text.charCodeAt(i));
  return bytes;
}

/** The longest prefix of `text` that takes at most `max` bytes in JSON, never splitting a pair. */
function cutToBytes(text: string, max: number): string {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    bytes += unitBytes(c);
    if (bytes > max) return text.slice(0, c >= 0xdc00 && c <= 0xdfff ? i - 1 : i);
  }
  return text;
}

/** Options of {@link redactValue}: the bounds of the result. */
export interface RedactValueOptions {
  /** About how many bytes of JSON (UTF-8, escapes counted) the result may take. Default 8 KiB. */
  budget?: number;
  /** Strings are cut past this many characters. Default 2,000. */
  maxString?: number;
  /** Arrays and objects keep this many entries. Default 50. */
  maxItems?: number;
  /** Nesting past this depth becomes a marker. Default 6. */
  maxDepth?: number;
  /** Replace absolute file paths in strings with `<path>`. Default `false` (logs and audit keep them). */
  scrubPaths?: boolean;
}

/**
 * A copy of `value` safe to keep or show: values under secret-looking keys become `[redacted]`,
 * strings go through {@link redactText} and are cut past `maxString`, arrays and objects keep their
 * first `maxItems` entries, nesting past `maxDepth` becomes a marker, cycles are named, and the whole
 * is bounded to about `budget` bytes of JSON. Never throws: a getter that throws, a Proxy, a BigInt,
 * a symbol become markers.
 *
 * @example
 * ```ts
 * redactValue({ password: 'x', note: 'Bearer abc.def.ghi', list: new Array(10_000).fill(1) }, { budget: 4096 });
 * // { password: '[redacted]', note: 'Bearer [redacted]', list: [1, …, '…(9950 more)'] }
 * ```
 */
export function redactValue(value: unknown, options: RedactValueOptions = {}): unknown {
  const maxString = options.maxString ?? 2000;
  const maxItems = options.maxItems ?? 50;
  const maxDepth = options.maxDepth ?? 6;
  let budget = options.budget ?? 8192;
  const seen = new Set<object>();
  const keepPaths = !options.scrubPaths;
  const text = (v: string): string => {
    const room = Math.max(16, Math.min(maxString, budget));
    const head = v.length > room ? v.slice(0, room) : v;
    let shown = redactText(head, { maxLength: head.length + 64, keepPaths });
    let cut = v.length > head.length;
    // Bounded by bytes, not characters: control characters and non-Latin text take more.
    const allowed = Math.max(16, budget);
    if (jsonBytes(shown) > allowed) {
      shown = cutToBytes(shown, allowed);
      cut = true;
    }
    const out = cut ? `${shown}…(${v.length} chars)` : shown;
    budget -= jsonBytes(out) + 2;
    return out;
  };
  /** A key as the result shows it: cut, detached, counted, never `__proto__`. */
  const keyOf = (key: string): string => {
    const shown = key.length > 128 ? detach(`${key.slice(0, 128)}…`) : key;
    budget -= jsonBytes(shown) + 4;
    return shown === '__proto__' ? '[__proto__]' : shown;
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (budget <= 0) return '…';
    if (typeof v === 'string') return text(v);
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'function' || typeof v === 'symbol') return `[${typeof v}]`;
    if (v === null || typeof v !== 'object') {
      budget -= 8;
      return v;
    }
    if (seen.has(v)) return '[cycle]';
    if (depth >= maxDepth) return Array.isArray(v) ? `[array(${v.length})]` : '[object]';
    seen.add(v);
    try {
      if (v instanceof Error) {
        return { name: text(v.name), message: text(v.message), ...(v.stack && { stack: text(v.stack) }) };
      }
      if (ArrayBuffer.isView(v)) return `[${v.constructor.name}(${v.byteLength} bytes)]`;
      if (v instanceof Map) {
        const entries: Record<string, unknown> = {};
        let n = 0;
        for (const [key, child] of v) {
          if (n++ >= maxItems || budget <= 0) {
            entries['…'] = `${v.size - n + 1} more`;
            break;
          }
          const name = keyOf(String(key));
          entries[name] = SECRET_KEY.test(String(key)) ? REDACTED : walk(child, depth + 1);
        }
        return entries;
      }
      if (v instanceof Set) {
        const items: unknown[] = [];
        for (const item of v) {
          if (items.length >= maxItems || budget <= 0) break;
          items.push(walk(item, depth + 1));
        }
        if (items.length < v.size) items.push(`…(${v.size - items.length} more)`);
        return items;
      }
      // Dates, URLs and anything else that says how it is written as JSON.
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return walk(toJSON.call(v), depth + 1);
      if (Array.isArray(v)) {
        const out: unknown[] = [];
        const length = v.length;
        for (let i = 0; i < length && i < maxItems && budget > 0; i++) out.push(walk(v[i], depth + 1));
        if (out.length < length) out.push(`…(${length - out.length} more)`);
        return out;
      }
      const out: Record<string, unknown> = {};
      let n = 0;
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        if (n >= maxItems || budget <= 0) {
          out['…'] = 'more keys';
          break;
        }
        n++;
        const safeKey = keyOf(key);
        let child: unknown;
        try {
          child = (v as Record<string, unknown>)[key];
        } catch {
          out[safeKey] = '[unreadable]';
          continue;
        }
        out[safeKey] = SECRET_KEY.test(key) ? REDACTED : walk(child, depth + 1);
      }
      return out;
    } catch {
      return '[unreadable]';
    } finally {
      seen.delete(v);
    }
  };
  return walk(value, 0);
}

/** The bounds of a log record's fields: 8 KiB of JSON, the other bounds at their defaults. */
export const LOG_RECORD_BOUNDS: Readonly<RedactValueOptions> = Object.freeze({ budget: 8 * 1024 });

/** The bounds of an audit event's details: 4 KiB of JSON, strings of 256, 20 entries, depth 5. */
export const AUDIT_DETAILS_BOUNDS: Readonly<RedactValueOptions> = Object.freeze({
  budget: 4096,
  maxString: 256,
  maxItems: 20,
  maxDepth: 5,
});

/**
 * {@link redactValue} with the bounds of a log record ({@link LOG_RECORD_BOUNDS}): values under
 * secret-looking keys and credential-shaped strings are redacted, and deep or huge values are
 * summarised instead of breaking the logger.
 *
 * @example
 * ```ts
 * redact({ apiKey: 'sk-…', rows: hugeArray }); // { apiKey: '[redacted]', rows: [… 50 items, '…(n more)'] }
 * ```
 */
export function redact(value: unknown): unknown {
  return redactValue(value, LOG_RECORD_BOUNDS);
}

/**
 * {@link redactValue} with the bounds of an audit event's details ({@link AUDIT_DETAILS_BOUNDS}): a
 * redacted copy of `value` no larger than about 4 KiB as JSON, cycles named instead of followed.
 *
 * @example
 * ```ts
 * summarise({ password: 'x', list: new Array(10_000).fill(1) });
 * // { password: '[redacted]', list: [1, …, '…(9980 more)'] }
 * ```
 */
export function summarise(value: unknown): unknown {
  return redactValue(value, AUDIT_DETAILS_BOUNDS);
}
