/**
 * What kind of address a host is: one classifier for every outbound check. IP literals are parsed
 * in every spelling a URL or a resolver produces (dotted, hexadecimal and short IPv4 forms, IPv6
 * with `::`, zone ids and embedded IPv4), and IPv6 forms that carry an IPv4 address (mapped,
 * compatible, NAT64, 6to4) are judged by the address they carry.
 */

/**
 * The range an address belongs to. Everything but `public` is refused by the outbound policy unless
 * private networks are allowed.
 */
export type AddressRange =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'shared'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'protocol'
  | 'unique-local'
  | 'site-local'
  | 'discard'
  | 'translation';

/** A parsed IP address: 4 bytes or 16. */
export interface IpAddress {
  readonly version: 4 | 6;
  readonly bytes: Uint8Array;
}

/** Names that never leave the machine or the local network, whatever a resolver says (RFC 6761, 6762, 8375). */
const LOCAL_NAMES = ['localhost', 'local', 'internal', 'home.arpa', 'localdomain'];

function ipv4Number(part: string): number | undefined {
  if (part === '') return undefined;
  if (/^0x[0-9a-f]*$/i.test(part)) return part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return Number.parseInt(part.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number(part);
  return undefined;
}

/**
 * Parses IPv4 as WHATWG URL and `inet_aton` do: 1 to 4 parts, each decimal, octal (`0` prefix) or
 * hexadecimal (`0x`), the last filling the remaining bytes (`127.1`, `0x7f000001`, `2130706433`).
 */
function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length === 0 || parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = ipv4Number(part);
    if (n === undefined || !Number.isFinite(n)) return undefined;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return undefined;
  let value = last;
  numbers.forEach((n, i) => {
    value += n * 256 ** (3 - i);
  });
  return Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
}

function parseIpv6(text: string): Uint8Array | undefined {
  let host = text;
  const zone = host.indexOf('%');
  if (zone !== -1) host = host.slice(0, zone);
  if (host.length > 45 || !/^[0-9a-f:.]+$/.test(host)) return undefined;
  // An IPv4 address in the last 32 bits (`::ffff:127.0.0.1`).
  let tail: Uint8Array | undefined;
  const lastColon = host.lastIndexOf(':');
  const last = host.slice(lastColon + 1);
  if (last.includes('.')) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(last)) return undefined;
    const octets = last.split('.').map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    tail = Uint8Array.from(octets);
    host = host.slice(0, lastColon + 1);
    if (!host.endsWith('::')) host = host.slice(0, -1);
  }
  const halves = host.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0]!);
  const rest = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const wanted = tail ? 6 : 8;
  const missing = wanted - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes = new Uint8Array(16);
  for (const [i, group] of groups.slice(0, wanted).entries()) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return undefined;
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 255;
  }
  if (tail) bytes.set(tail, 12);
  return bytes;
}

/**
 * Parses an IP literal (brackets allowed around IPv6), or returns `undefined` for anything else.
 *
 * @example
 * ```ts
 * parseIp('[::ffff:7f00:1]'); // { version: 6, bytes: … }
 * parseIp('0x7f.1');          // { version: 4, bytes: [127, 0, 0, 1] }
 * ```
 */
export function parseIp(address: string): IpAddress | undefined {
  const host = address
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (host.includes(':')) {
    const bytes = parseIpv6(host);
    return bytes && { version: 6, bytes };
  }
  const bytes = parseIpv4(host);
  return bytes && { version: 4, bytes };
}

function ipv4Range(b: Uint8Array): AddressRange {
  const [a, c] = [b[0]!, b[1]!];
  if (a === 0) return b.every((x) => x === 0) ? 'unspecified' : 'reserved';
  if (a === 10) return 'private';
  if (a === 100 && c >= 64 && c <= 127) return 'shared';
  if (a === 127) return 'loopback';
  if (a === 169 && c === 254) return 'link-local';
  if (a === 172 && c >= 16 && c <= 31) return 'private';
  if (a === 192 && c === 0 && b[2] === 0) return 'protocol';
  if (a === 192 && c === 0 && b[2] === 2) return 'documentation';
  if (a === 192 && c === 88 && b[2] === 99) return 'translation';
  if (a === 192 && c === 168) return 'private';
  if (a === 198 && (c === 18 || c === 19)) return 'benchmarking';
  if (a === 198 && c === 51 && b[2] === 100) return 'documentation';
  if (a === 203 && c === 0 && b[2] === 113) return 'documentation';
  if (a >= 224 && a <= 239) return 'multicast';
  if (b.every((x) => x === 255)) return 'broadcast';
  if (a >= 240) return 'reserved';
  return 'public';
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], bits = prefix.length * 8): boolean {
  for (let i = 0; i * 8 < bits; i++) {
    const mask = bits - i * 8 >= 8 ? 255 : (255 << (8 - (bits - i * 8))) & 255;
    if ((bytes[i]! & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if it carries one. */
export function embeddedIpv4(address: IpAddress): Uint8Array | undefined {
  const b = address.bytes;
  if (address.version === 4) return undefined;
  const zeros = (n: number) => b.subarray(0, n).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT), ::a.b.c.d (compatible, deprecated).
  if (zeros(10) && b[10] === 0xff && b[11] === 0xff) return b.subarray(12);
  if (zeros(8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return b.subarray(12);
  if (zeros(12) && !(b[12] === 0 && b[13] === 0 && b[14] === 0 && b[15]! <= 1)) return b.subarray(12);
  // 64:ff9b::/96, the well-known NAT64 prefix.
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0])) return b.subarray(12);
  // 2002::/16, 6to4: the IPv4 address is the next 32 bits.
  if (b[0] === 0x20 && b[1] === 0x02) return b.subarray(2, 6);
  return undefined;
}

function ipv6Range(address: IpAddress): AddressRange {
  const b = address.bytes;
  const carried = embeddedIpv4(address);
  if (carried) return ipv4Range(carried);
  if (b.every((x) => x === 0)) return 'unspecified';
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback';
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, 0, 1], 48)) return 'translation';
  if (startsWith(b, [0x01, 0, 0, 0, 0, 0, 0, 0])) return 'discard';
  if (startsWith(b, [0x20, 0x01, 0x0d, 0xb8])) return 'documentation';
  if (startsWith(b, [0x3f, 0xff], 20)) return 'documentation';
  if (startsWith(b, [0x20, 0x01], 23)) return 'protocol';
  if (startsWith(b, [0xfc], 7)) return 'unique-local';
  if (startsWith(b, [0xfe, 0x80], 10)) return 'link-local';
  if (startsWith(b, [0xfe, 0xc0], 10)) return 'site-local';
  if (b[0] === 0xff) return 'multicast';
  // Only 2000::/3 is global unicast; the rest is unassigned or reserved.
  if (!startsWith(b, [0x20], 3)) return 'reserved';
  return 'public';
}

/**
 * The range of an IP literal, or of a name that is local by definition (`localhost`, `*.local`, …);
 * `undefined` for any other name (only resolving it can tell).
 *
 * @example
 * ```ts
 * addressRange('[::ffff:7f00:1]'); // 'loopback'
 * addressRange('64:ff9b::a00:1');  // 'private' (NAT64 for 10.0.0.1)
 * addressRange('example.com');     // undefined
 * ```
 */
export function addressRange(address: string): AddressRange | undefined {
  const ip = parseIp(address);
  if (ip) return ip.version === 4 ? ipv4Range(ip.bytes) : ipv6Range(ip);
  const name = address.trim().toLowerCase().replace(/\.+$/, '');
  if (name === '') return 'unspecified';
  for (const local of LOCAL_NAMES) {
    if (name === local || name.endsWith(`.${local}`)) return local === 'localhost' ? 'loopback' : 'private';
  }
  return undefined;
}

/**
 * Whether `address` (an IP literal in any spelling, or a name) is loopback, private, link-local or
 * otherwise not a public unicast address. IPv6 forms that carry an IPv4 address — `[::ffff:7f00:1]`
 * as WHATWG URL writes it, NAT64, 6to4 — are judged by that IPv4 address. Names other than the local
 * ones (`localhost`, `*.local`, `*.internal`, `*.home.arpa`) are not private by themselves: resolve
 * them and check the addresses.
 *
 * @example
 * ```ts
 * isPrivateAddress('[::ffff:7f00:1]'); // true
 * isPrivateAddress('0x7f.1');          // true (127.0.0.1)
 * isPrivateAddress('93.184.215.14');   // false
 * ```
 */
export function isPrivateAddress(address: string): boolean {
  const range = addressRange(address);
  return range !== undefined && range !== 'public';
}
