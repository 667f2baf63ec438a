import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import type { Connection, McpKitServer } from '../server.js';

/** Options for {@link serveStdio}. */
export interface ServeStdioOptions {
  /** Where messages come from. Default `process.stdin`. */
  stdin?: Readable;
  /** Where messages go. Default `process.stdout`; nothing else is ever written there. */
  stdout?: Writable;
}

/**
 * Serves an mcpkit server over stdio, for desktop clients that start the server as a child process.
 * Only MCP messages are written to stdout; logs go to stderr.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { serveStdio } from 'mcpkit/node';
 *
 * const server = createMcpServer({ name: 'desktop-tools' });
 * await serveStdio(server);
 * ```
 */
export async function serveStdio(server: McpKitServer, options: ServeStdioOptions = {}): Promise<Connection> {
  const transport = new StdioServerTransport(options.stdin, options.stdout);
  return server.connect(transport, { origin: 'stdio' });
}
