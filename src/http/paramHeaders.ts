/**
 * SEP-2243 `Mcp-Param-*` headers (2026-07-28 Streamable HTTP): a tool input property annotated with
 * `x-mcp-header: Name` is mirrored by the client into an `Mcp-Param-Name` header, which the server
 * must check against the body before dispatch. The SDK performs this check only for `McpServer`
 * products; mcpkit serves a low-level `Server`, so the HTTP layer does it here with the same rules.
 */

/** JSON-RPC `HeaderMismatch` (2026-07-28). */
export const JSONRPC_HEADER_MISMATCH = -32020;

interface Declaration {
  readonly path: readonly string[];
  readonly header: string;
  readonly type: string | undefined;
}

const declarationsCache = new WeakMap<object, readonly Declaration[]>();

/**
 * The `x-mcp-header` declarations of an input schema: properties reachable through a chain of
 * `properties` keys only (annotations anywhere else do not count).
 */
export function headerDeclarations(inputSchema: object): readonly Declaration[] {
  const cached = declarationsCache.get(inputSchema);
  if (cached) return cached;
  const found: Declaration[] = [];
  const visit = (node: unknown, path: string[]) => {
    if (node === null || typeof node !== 'object') return;
    const schema = node as Record<string, unknown>;
    const header = schema['x-mcp-header'];
    if (path.length > 0 && typeof header === 'string' && header.length > 0) {
      found.push({ path, header, type: typeof schema.type === 'string' ? schema.type : undefined });
    }
    const properties = schema.properties;
    if (properties !== null && typeof properties === 'object') {
      for (const [key, child] of Object.entries(properties)) visit(child, [...path, key]);
    }
  };
  visit(inputSchema, []);
  declarationsCache.set(inputSchema, found);
  return found;
}

const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CANONICAL_DECIMAL = /^-?\d+(\.\d+)?$/;

/** Decodes a `=?base64?…?=` header value; other values are literal. `undefined` for bad Base64. */
function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX))) return value;
  const b64 = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
  if (!CANONICAL_BASE64.test(b64)) return undefined;
  try {
    const binary = atob(b64);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function primitiveToString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * Checks the `Mcp-Param-*` headers of a `tools/call` against its body arguments. Returns the
 * reason for a mismatch (missing header, bad Base64, different value), or `undefined` when they
 * agree. A body value that is absent or `null` expects no header.
 */
export function paramHeaderMismatch(
  inputSchema: object,
  args: unknown,
  headers: Headers,
): { header: string; message: string } | undefined {
  for (const decl of headerDeclarations(inputSchema)) {
    const header = `Mcp-Param-${decl.header}`;
    const bodyValue = valueAt(args, decl.path);
    if (bodyValue === undefined || bodyValue === null) continue;
    const bodyString = primitiveToString(bodyValue);
    if (bodyString === undefined) continue;
    const raw = headers.get(header);
    const where = decl.path.join('.');
    if (raw === null)
      return { header, message: `the body carries ${where} but the ${header} header is absent` };
    const decoded = decodeHeaderValue(raw);
    if (decoded === undefined) return { header, message: `the ${header} header carries invalid Base64` };
    const numeric = (decl.type === 'integer' || decl.type === 'number') && typeof bodyValue === 'number';
    const equal =
      numeric && CANONICAL_DECIMAL.test(decoded) ? Number(decoded) === bodyValue : decoded === bodyString;
    if (!equal) return { header, message: `the ${header} header does not match ${where} in the body` };
  }
  return undefined;
}
