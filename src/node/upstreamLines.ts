/**
 * The reader of a stdio upstream's output: newline-delimited JSON-RPC messages, as the SDK's stdio
 * client transport reads them (its `ReadBuffer`), with one difference: the two messages that make
 * up nearly all of a gateway's traffic, a result response and a notification, are recognised by
 * their shape instead of being parsed again by the SDK's zod schema of every JSON-RPC message (a
 * union of four strict objects, tried in order, which builds the issues of each miss). Anything
 * else, and either of those with anything the schema would have to look into (a `_meta`, a key the
 * schema does not know), goes through the SDK's own parse, so what reaches the client is what the
 * SDK's reader would have handed it.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { quickMessage } from '../integrations/upstreamMessages.js';

/** What the reader needs of the SDK: its parse of one message, for whatever is not recognised. */
export interface LineReaderOptions {
  /** Bytes the unread output may take; past it the reader is cleared and `append` throws. */
  maxBufferSize: number;
  /** The SDK's parse of a JSON value into a JSON-RPC message (throws when it is not one). */
  parse(value: unknown): JSONRPCMessage;
}

/**
 * The `append` / `readMessage` / `clear` of the SDK's `ReadBuffer`, with the same bound, the same
 * error past it, and the same treatment of a line that is not JSON (skipped) or not a message
 * (thrown, which the transport reports through `onerror`).
 */
export class UpstreamLineReader {
  #buffer: Buffer | undefined;
  readonly #options: LineReaderOptions;

  constructor(options: LineReaderOptions) {
    this.#options = options;
  }

  append(chunk: Buffer): void {
    const max = this.#options.maxBufferSize;
    if ((this.#buffer?.length ?? 0) + chunk.length > max) {
      this.clear();
      throw new Error(`ReadBuffer exceeded maximum size of ${max} bytes`);
    }
    this.#buffer = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : chunk;
  }

  readMessage(): JSONRPCMessage | null {
    while (this.#buffer) {
      const buffer = this.#buffer;
      const end = buffer.indexOf(10); // '\n'
      if (end === -1) return null;
      const last = end > 0 && buffer[end - 1] === 13 ? end - 1 : end; // a '\r' before it goes too
      const line = buffer.toString('utf8', 0, last);
      this.#buffer = end + 1 < buffer.length ? buffer.subarray(end + 1) : undefined;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        if (error instanceof SyntaxError) continue; // not JSON: skipped, as the SDK's reader does
        throw error;
      }
      return quickMessage(value) ?? this.#options.parse(value);
    }
    return null;
  }

  clear(): void {
    this.#buffer = undefined;
  }
}
