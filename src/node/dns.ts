import { lookup } from 'node:dns/promises';

/**
 * Resolves a hostname with the operating system's resolver, as `outbound.resolveHost` expects. On
 * Node ≥ 20.16 the outbound policy already resolves with the system resolver (and connects to the
 * address it checked) without it; give it where that is not so, or wrap it to add rules of yours.
 *
 * @example
 * ```ts
 * import { nodeDnsResolver } from 'mcpkit/node';
 * createMcpServer({ outbound: { allowedHosts: ['api.example.com'], resolveHost: nodeDnsResolver } });
 * ```
 */
export async function nodeDnsResolver(hostname: string): Promise<string[]> {
  const addresses = await lookup(hostname, { all: true, verbatim: true });
  return addresses.map((a) => a.address);
}
