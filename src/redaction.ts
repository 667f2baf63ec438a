/**
 * The one redaction of the package. Whatever leaves the process for someone other than its operator
 * (a tool error, a provider error, an audit event) or stays in memory for later (a log record, an
 * audit entry) passes through it: credential-shaped strings and given secrets are removed, absolute
 * file paths scrubbed, and structured values bounded by bytes, not only by count.
 */
import { scrubPaths } from './errors.js';

/** Keys whose values are never logged or audited, wherever they appear. */
export const SECRET_KEY =
  /authorization|api[-_]?key|secret|token|password|passwd|cookie|credential|private[-_]?key/i;

const REDACTED = '[redacted]';

/**
 * Credential shapes, each matched in linear time (no nested quantifiers, no alternation that can
 * backtrack into itself): a run of text that looks like one of these is replaced whole.
 */
const CREDENTIALS: ReadonlyArray<[RegExp, string]> = [
  // HTTP authorization values.
  [/\b(Bearer|Basic|Digest|Token)[ \t]+[A-Za-z0-9._~+/=-]{6,}/gi, `$1 ${REDACTED}`],
  // Vendor key formats: OpenAI and Anthropic, GitHub, Slack, AWS, Google, Stripe.
  [/\bsk-[A-Za-z0-9_*-]{6,}/g, REDACTED],
  [/\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{20,}/g, REDACTED],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, REDACTED],
  [/\bxox[abposr]-[A-Za-z0-9-]{10,}/g, REDACTED],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, REDACTED],
  [/\bAIza[A-Za-z0-9_-]{35}/g, REDACTED],
  [/\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}/g, REDACTED],
  // JSON Web Tokens: three base64url segments, the first a JSON header.
  [/\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}/g, REDACTED],
  // `password=…`, `api_key: …` and the like, in query strings, headers, configuration dumps.
  [
    /\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|aws_secret_access_key|authorization)([ \t]*[=:][ \t]*)(?!\[redacted\])[^\s"'&,;]+/gi,
    `$1$2${REDACTED}`,
  ],
  // `"apiKey": "…"` in JSON text.
  [
    /("(?:[A-Za-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|authorization|credential|cookie)[A-Za-z0-9_-]*)"[ \t]*:[ \t]*)"(?:[^"\\]|\\.)*"/gi,
    `$1"${REDACTED}"`,
  ],
  // Credentials inside URLs: `https://user:pass@host`.
  [/\b([a-z][a-z0-9+.-]{0,20}:\/\/)[^\s/@:]{1,256}:[^\s/@]{1,256}@/gi, `$1${REDACTED}@`],
];

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
  for (const secret of options.secrets ?? []) {
    if (secret && secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  out = scrubPrivateKeys(out);
  for (const [pattern, replacement] of CREDENTIALS) out = out.replace(pattern, replacement);
  if (!options.keepPaths) out = scrubPaths(out);
  return out.length > maxLength ? `${out.slice(0, maxLength)}…(${text.length} chars)` : out;
}

/** Options of {@link redactValue}: the bounds of the result. */
export interface RedactValueOptions {
  /** About how many bytes of JSON the result may take. Default 8 KiB. */
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
    const redacted = redactText(head, { maxLength: head.length + 64, keepPaths });
    const out = v.length > head.length ? `${redacted}…(${v.length} chars)` : redacted;
    budget -= out.length + 2;
    return out;
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
        const shownKey = key.length > 128 ? `${key.slice(0, 128)}…` : key;
        budget -= shownKey.length + 4;
        const safeKey = shownKey === '__proto__' ? '[__proto__]' : shownKey;
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
