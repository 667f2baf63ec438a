/**
 * RFC 6570 URI templates (levels 1–4 syntax) with matching in linear time. Matching walks the URI
 * once, finding each expression's end with a plain substring search for the literal that follows
 * it; no regular expression is built from the template, so no input can make it backtrack (a
 * regex-based matcher in the MCP SDK was a ReDoS CVE).
 */

type Operator = '' | '+' | '#' | '.' | '/' | ';' | '?' | '&';

interface VarSpec {
  name: string;
  explode: boolean;
  /** The `:n` prefix modifier: at most this many characters of the value. */
  prefix?: number;
}

type Token = { kind: 'literal'; text: string } | { kind: 'expr'; op: Operator; vars: VarSpec[] };

const OPERATORS = new Set(['+', '#', '.', '/', ';', '?', '&']);
const VAR_NAME = /^(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*$/;
/** Characters a simple (`{var}`) value may hold: unreserved, percent-encoded, and `,` between values. */
const SIMPLE_VALUE = /^(?:[A-Za-z0-9\-._~,]|%[0-9A-Fa-f]{2})*$/;
const MAX_TEMPLATE = 1024;

const PREFIX: Record<Operator, string> = {
  '': '',
  '+': '',
  '#': '#',
  '.': '.',
  '/': '/',
  ';': ';',
  '?': '?',
  '&': '&',
};
const SEPARATOR: Record<Operator, string> = {
  '': ',',
  '+': ',',
  '#': ',',
  '.': '.',
  '/': '/',
  ';': ';',
  '?': '&',
  '&': '&',
};
const NAMED = new Set<Operator>([';', '?', '&']);

/** Variables matched out of a URI: a string, or an array for exploded or list values. */
export type TemplateVariables = Record<string, string | string[]>;

/**
 * A compiled URI template.
 *
 * @example
 * ```ts
 * const t = new UriTemplate('users://{id}/posts{?limit}');
 * t.match('users://42/posts?limit=5'); // { id: '42', limit: '5' }
 * ```
 */
export class UriTemplate {
  readonly source: string;
  readonly variableNames: readonly string[];
  readonly #tokens: Token[];

  constructor(source: string) {
    if (typeof source !== 'string' || source.length === 0)
      throw new TypeError('a URI template must be a non-empty string');
    if (source.length > MAX_TEMPLATE)
      throw new TypeError(`a URI template may be at most ${MAX_TEMPLATE} characters`);
    this.source = source;
    this.#tokens = parse(source);
    this.variableNames = this.#tokens.flatMap((t) => (t.kind === 'expr' ? t.vars.map((v) => v.name) : []));
  }

  toString(): string {
    return this.source;
  }

  /**
   * The URI this template gives for `variables` (RFC 6570 expansion): undefined variables expand to
   * nothing, values are percent-encoded as their operator asks (`{+x}` and `{#x}` keep reserved
   * characters).
   */
  expand(variables: Readonly<Record<string, string | readonly string[] | undefined>>): string {
    let out = '';
    for (const token of this.#tokens) {
      out += token.kind === 'literal' ? token.text : expandExpression(token.op, token.vars, variables);
    }
    return out;
  }

  /** The variables of `uri` if it matches this template, else `undefined`. Linear in `uri.length`. */
  match(uri: string): TemplateVariables | undefined {
    const tokens = this.#tokens;
    const out: TemplateVariables = {};
    let pos = 0;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token.kind === 'literal') {
        if (!uri.startsWith(token.text, pos)) return undefined;
        pos += token.text.length;
        continue;
      }
      const end = boundary(uri, pos, tokens[i + 1]);
      if (end < 0) return undefined;
      if (!matchExpression(token, uri.slice(pos, end), out)) return undefined;
      pos = end;
    }
    return pos === uri.length ? out : undefined;
  }
}

function parse(source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < source.length) {
    const open = source.indexOf('{', pos);
    const close = source.indexOf('}', pos);
    if (close >= 0 && (open < 0 || close < open))
      throw new TypeError(`unbalanced "}" at ${close} in URI template`);
    if (open < 0) {
      tokens.push({ kind: 'literal', text: source.slice(pos) });
      break;
    }
    if (open > pos) tokens.push({ kind: 'literal', text: source.slice(pos, open) });
    const end = source.indexOf('}', open);
    if (end < 0) throw new TypeError(`unclosed "{" at ${open} in URI template`);
    let body = source.slice(open + 1, end);
    let op: Operator = '';
    if (body.length > 0 && OPERATORS.has(body[0]!)) {
      op = body[0] as Operator;
      body = body.slice(1);
    }
    if (body.includes('{')) throw new TypeError(`nested "{" at ${open} in URI template`);
    const vars = body.split(',').map((spec): VarSpec => {
      const explode = spec.endsWith('*');
      const bare = explode ? spec.slice(0, -1) : spec;
      const modifier = /:(\d{1,4})$/.exec(bare);
      const name = modifier ? bare.slice(0, modifier.index) : bare;
      if (!VAR_NAME.test(name)) throw new TypeError(`invalid variable "${spec}" in URI template`);
      return modifier ? { name, explode, prefix: Number(modifier[1]) } : { name, explode };
    });
    const previous = tokens.at(-1);
    if (previous?.kind === 'expr' && op === '' && previous.op === '') {
      throw new TypeError('adjacent simple expressions cannot be told apart; put a literal between them');
    }
    tokens.push({ kind: 'expr', op, vars });
    pos = end + 1;
  }
  return tokens;
}

const UTF8 = new TextEncoder();

/** Percent-encodes `value`, keeping unreserved characters (and reserved ones and escapes when `reserved`). */
function encodeValue(value: string, reserved: boolean): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (/[A-Za-z0-9\-._~]/.test(c)) out += c;
    else if (reserved && /[:/?#[\]@!$&'()*+,;=]/.test(c)) out += c;
    else if (reserved && c === '%' && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) out += c;
    else {
      const point = value.codePointAt(i)!;
      const char = String.fromCodePoint(point);
      if (char.length === 2) i++;
      for (const byte of UTF8.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

function expandExpression(
  op: Operator,
  vars: VarSpec[],
  values: Readonly<Record<string, string | readonly string[] | undefined>>,
): string {
  const reserved = op === '+' || op === '#';
  const named = NAMED.has(op);
  const separator = SEPARATOR[op];
  const parts: string[] = [];
  for (const spec of vars) {
    const value = Object.hasOwn(values, spec.name) ? values[spec.name] : undefined;
    if (value === undefined) continue;
    if (typeof value === 'string') {
      const cut = spec.prefix === undefined ? value : value.slice(0, spec.prefix);
      const encoded = encodeValue(cut, reserved);
      parts.push(
        named
          ? encoded === ''
            ? `${spec.name}${op === ';' ? '' : '='}`
            : `${spec.name}=${encoded}`
          : encoded,
      );
      continue;
    }
    if (value.length === 0) continue;
    const items = value.map((item) => encodeValue(item, reserved));
    if (spec.explode)
      parts.push(named ? items.map((item) => `${spec.name}=${item}`).join(separator) : items.join(separator));
    else parts.push(named ? `${spec.name}=${items.join(',')}` : items.join(','));
  }
  return parts.length === 0 ? '' : PREFIX[op] + parts.join(separator);
}

/** Where the expression starting at `pos` ends: at the next literal, the next expression's prefix, or the end. */
function boundary(uri: string, pos: number, next: Token | undefined): number {
  if (next === undefined) return uri.length;
  if (next.kind === 'literal') return uri.indexOf(next.text, pos);
  const prefix = PREFIX[next.op];
  if (prefix === '') return uri.length;
  const at = uri.indexOf(prefix, pos);
  return at < 0 ? uri.length : at;
}

function decode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

function matchExpression(
  { op, vars }: Extract<Token, { kind: 'expr' }>,
  segment: string,
  out: TemplateVariables,
): boolean {
  if (segment === '') return true;
  const prefix = PREFIX[op];
  if (prefix !== '') {
    if (!segment.startsWith(prefix)) return false;
    segment = segment.slice(prefix.length);
  }
  if (op === '' && !SIMPLE_VALUE.test(segment)) return false;
  const parts = segment.split(SEPARATOR[op]);
  if (NAMED.has(op)) {
    const byName = new Map(vars.map((v) => [v.name, v]));
    for (const part of parts) {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const spec = byName.get(name);
      if (!spec) continue; // a query parameter the template does not name is ignored
      const value = decode(eq < 0 ? '' : part.slice(eq + 1));
      if (value === undefined) return false;
      const existing = out[spec.name];
      if (spec.explode && existing !== undefined)
        out[spec.name] = [...(Array.isArray(existing) ? existing : [existing]), value];
      else out[spec.name] = spec.explode ? [value] : value;
    }
    return true;
  }
  if (vars.length === 1) {
    const spec = vars[0]!;
    // Unexploded, a value cannot hold its operator's separator (`/` in {/x}, `.` in {.x}).
    if (!spec.explode && parts.length > 1 && (op === '.' || op === '/')) return false;
    if (spec.explode) {
      const values = parts.map(decode);
      if (values.some((v) => v === undefined)) return false;
      out[spec.name] = values as string[];
      return true;
    }
    const value = decode(segment);
    if (value === undefined) return false;
    out[spec.name] = value;
    return true;
  }
  if (parts.length > vars.length) return false;
  for (let i = 0; i < parts.length; i++) {
    const value = decode(parts[i]!);
    if (value === undefined) return false;
    out[vars[i]!.name] = value;
  }
  return true;
}
