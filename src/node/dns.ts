import { lookup } from 'node:dns/promises';

/**
 * Resolves a hostname with the operating system's resolver, for `declarativeTools.resolveHost`: a
 * declarative HTTP tool then refuses allow-listed names that point at private addresses.
 *
 * @example
 * ```ts
 * import { nodeDnsResolver } from 'mcpkit/node';
 * createMcpServer({ declarativeTools: { allowedHosts: ['api.example.com'], resolveHost: nodeDnsResolver } });
 * ```
 */
export async function nodeDnsResolver(hostname: string): Promise<string[]> {
  const addresses = await lookup(hostname, { all: true, verbatim: true });
  return addresses.map((a) => a.address);
}
