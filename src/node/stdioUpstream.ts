/**
 * `stdioUpstream()`: an upstream MCP server that is a program mcpkit starts and speaks to over its
 * stdin and stdout (the SDK's stdio client transport). Only code can attach one; no request can.
 */
import { loadClientModule } from '../integrations/upstream.js';
import type { UpstreamSource } from '../integrations/upstreamTypes.js';
import { UpstreamLineReader } from './upstreamLines.js';

/** Options of {@link stdioUpstream}. */
export interface StdioUpstreamOptions {
  /** The program to run. */
  command: string;
  args?: string[];
  /**
   * Its environment. Default: the SDK's safe subset of this process's (`PATH`, `HOME`, …), so
   * mcpkit's own secrets (`MCP_SECRET_KEY`, API keys) are not handed to it.
   */
  env?: Record<string, string>;
  cwd?: string;
  /** What views show for it. Default `stdio: <command>` (without its arguments, which may hold secrets). */
  label?: string;
  /** As `UpstreamSpec.forwardCaller`. */
  forwardCaller?: 'none' | 'meta';
  /** As `UpstreamSpec.hideUnavailable`. */
  hideUnavailable?: boolean;
  /** Bytes a single message from the program may take before it is refused. Default: the SDK's. */
  maxBufferSize?: number;
}

/**
 * An upstream started as a program over stdio, for `server.integrations.attachUpstream()` or
 * `createMcpServer({ integrations: { upstreams } })`. It is started again (with backoff) when it
 * exits; its stderr is discarded.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { stdioUpstream } from 'mcpkit/node';
 *
 * const server = createMcpServer({
 *   integrations: { upstreams: { files: stdioUpstream({ command: 'node', args: ['files-server.js'] }) } },
 * });
 * ```
 */
export function stdioUpstream(options: StdioUpstreamOptions): UpstreamSource {
  if (typeof options?.command !== 'string' || options.command === '')
    throw new TypeError('stdioUpstream: command must be a non-empty string');
  if (
    options.args !== undefined &&
    (!Array.isArray(options.args) || options.args.some((a) => typeof a !== 'string'))
  )
    throw new TypeError('stdioUpstream: args must be an array of strings');
  return {
    label: options.label ?? `stdio: ${options.command}`,
    ...(options.forwardCaller && { forwardCaller: options.forwardCaller }),
    ...(options.hideUnavailable !== undefined && { hideUnavailable: options.hideUnavailable }),
    connect: async () => {
      let module: typeof import('@modelcontextprotocol/client/stdio');
      try {
        module = await import('@modelcontextprotocol/client/stdio');
      } catch (error) {
        throw new Error(
          'stdio upstreams need the SDK client, "@modelcontextprotocol/client" (an optional peer dependency of mcpkit)',
          { cause: error },
        );
      }
      const transport = new module.StdioClientTransport({
        command: options.command,
        ...(options.args && { args: options.args }),
        ...(options.env && { env: options.env }),
        ...(options.cwd && { cwd: options.cwd }),
        ...(options.maxBufferSize && { maxBufferSize: options.maxBufferSize }),
        stderr: 'ignore',
      });
      await readFaster(transport, options.maxBufferSize);
      return transport as never;
    },
  };
}

/**
 * Gives the SDK's stdio transport mcpkit's reader of its program's output ({@link UpstreamLineReader}:
 * the same messages, without a zod parse of each common one), when the transport is built as this
 * was written against: a `_readBuffer` with `append`, `readMessage` and `clear`. Any other shape
 * (a later SDK) keeps the SDK's own reader. Returns whether the reader was swapped.
 */
export async function readFaster(transport: object, maxBufferSize: number | undefined): Promise<boolean> {
  const target = transport as { _readBuffer?: Record<string, unknown> };
  const current = target._readBuffer;
  if (
    typeof current?.append !== 'function' ||
    typeof current.readMessage !== 'function' ||
    typeof current.clear !== 'function'
  )
    return false;
  const sdk = await loadClientModule();
  if (typeof sdk.parseJSONRPCMessage !== 'function' || typeof sdk.STDIO_DEFAULT_MAX_BUFFER_SIZE !== 'number')
    return false;
  target._readBuffer = new UpstreamLineReader({
    maxBufferSize: maxBufferSize || sdk.STDIO_DEFAULT_MAX_BUFFER_SIZE,
    parse: sdk.parseJSONRPCMessage,
  }) as unknown as Record<string, unknown>;
  return true;
}
