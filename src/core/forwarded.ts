/**
 * Who a request comes from when proxies stand in front of the server: the connection's peer, or,
 * when that peer is a proxy the server trusts (`http.trustProxy`), what the trusted hops say in
 * `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`. Runtime-neutral: the Node bridge
 * and the Hono adapter (on any runtime that exposes the connection) share it.
 */

/**
 * Which proxies to believe about the client (see `HttpOptions.trustProxy`): none, all, how many hops
 * nearest the server, or their addresses and CIDR ranges (`'loopback'`, `'private'` for short).
 */
export type TrustProxy = boolean | number | readonly string[];

/** Where a request came from, once the trusted proxies are taken into account. */
export interface RequestSource {
  /** `http://host:port` as the client addressed it. */
  readonly origin: string;
  /** The client's address: the connection's, or the nearest untrusted `X-Forwarded-For` hop. */
  readonly address: string | undefined;
}

/** A `Host` value a URL is built from: a name or an IP literal, with an optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/;
/** The host of a request that named none (or an unusable one): it fails every Host allow-list. */
const NO_HOST = 'unknown.invalid';

/** An address as 16 bytes (IPv4 as IPv4-mapped IPv6), or `undefined` when it is not an IP literal. */
function bytesOf(address: string): Uint8Array | undefined {
  const text = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...octets]);
  }
  if (!text.includes(':')) return undefined;
  let head = text;
  let tail: number[] = [];
  const embedded = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (embedded) {
    const v4bytes = bytesOf(embedded[2]!);
    if (!v4bytes) return undefined;
    head = `${embedded[1]}0:0`;
    tail = [...v4bytes.subarray(12)];
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const groups =
    halves.length === 2 ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  if (groups.length !== 8 || !groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  });
  if (tail.length === 4) bytes.set(tail, 12);
  return bytes;
}

interface Range {
  bytes: Uint8Array;
  bits: number;
}

const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

const compiledLists = new WeakMap<readonly string[], Range[]>();

/** A `trustProxy` list as ranges (IPv4 ones as IPv4-mapped IPv6), compiled once. */
function rangesOf(list: readonly string[]): Range[] {
  let ranges = compiledLists.get(list);
  if (ranges) return ranges;
  ranges = [];
  for (const entry of list.flatMap((e) => NAMED_RANGES[e] ?? [e])) {
    const [address, bitsText] = entry.split('/');
    const bytes = bytesOf(address!);
    const v4 = !address!.includes(':');
    const bits = bitsText === undefined ? 128 : Number(bitsText) + (v4 ? 96 : 0);
    if (
      !bytes ||
      !(Number.isInteger(bits) && bits >= 0 && bits <= 128) ||
      (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText))
    ) {
      throw new TypeError(`http.trustProxy: ${JSON.stringify(entry)} is not an IP address or CIDR range`);
    }
    ranges.push({ bytes, bits });
  }
  compiledLists.set(list, ranges);
  return ranges;
}

function inRange(address: Uint8Array, range: Range): boolean {
  const whole = range.bits >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== range.bytes[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[whole]! & mask) === (range.bytes[whole]! & mask);
}

/** Throws a `TypeError` naming the option when `value` is not a `trustProxy` setting. */
export function checkTrustProxy(value: unknown): asserts value is TrustProxy {
  if (typeof value === 'boolean') return;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' && v !== '')) {
    rangesOf(value);
    return;
  }
  throw new TypeError(
    'http.trustProxy must be a boolean, a number of hops, or a list of proxy addresses and CIDR ranges',
  );
}

/** Whether the proxy at `address`, `hop` hops from the server (0 is the connection's peer), is believed. */
function trusted(trust: TrustProxy, address: string, hop: number): boolean {
  if (trust === true) return true;
  if (trust === false) return false;
  if (typeof trust === 'number') return hop < trust;
  const bytes = bytesOf(address);
  return bytes !== undefined && rangesOf(trust).some((range) => inRange(bytes, range));
}

/** The comma-separated values of a header, however many times it was sent. */
function listHeader(value: string | string[] | null | undefined): string[] {
  if (value === undefined || value === null) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** How a request arrived: from which peer, whether over TLS, and its headers (lower-case names). */
export interface Arrival {
  peer: string | undefined;
  encrypted: boolean;
  header: (name: string) => string | string[] | null | undefined;
}

/**
 * The source of a request that arrived from `peer` (over TLS when `encrypted`) with the headers
 * `header(name)` gives (lower-case names). The forwarded headers count only when `peer` is trusted;
 * `X-Forwarded-For` is walked from the nearest hop outwards while each hop is trusted, and the first
 * that is not is the client; of `X-Forwarded-Proto` and `-Host`, the value the nearest proxy added.
 */
export function sourceOf(arrival: Arrival, trust: TrustProxy): RequestSource {
  const { peer, encrypted, header } = arrival;
  let scheme = encrypted ? 'https' : 'http';
  let host = header('host') ?? header(':authority');
  let address = peer;
  if (trust !== false && peer !== undefined && trusted(trust, peer, 0)) {
    const chain = listHeader(header('x-forwarded-for'));
    if (chain.length > 0) {
      let i = chain.length - 1;
      for (let hop = 1; i > 0 && trusted(trust, chain[i]!, hop); i--, hop++);
      address = chain[i];
    }
    const proto = listHeader(header('x-forwarded-proto')).at(-1)?.toLowerCase();
    if (proto === 'http' || proto === 'https') scheme = proto;
    const forwardedHost = listHeader(header('x-forwarded-host')).at(-1);
    if (forwardedHost !== undefined) host = forwardedHost;
  }
  const name = Array.isArray(host) ? host[0] : host;
  return {
    origin: `${scheme}://${name !== undefined && name !== null && HOST.test(name) ? name : NO_HOST}`,
    address,
  };
}
