/**
 * Forwarded `tools/call` requests written to an upstream's transport directly, past the SDK
 * client's request funnel, on a 2025-era connection. The funnel is general: it resolves the era's
 * codec, builds closures for cancellation, a timer for its timeout (the gateway sets none that can
 * fire), parses each response with zod to tell a result from an error, and validates the result in
 * a promise of its own. A forwarded call needs none of that, so here it is one entry in a table:
 *
 * - the request is the message the client would send, byte for byte: the same id (taken from the
 *   client's own counter, so no id is ever used twice on the connection), the same key order, the
 *   progress token in `_meta` when progress is asked for;
 * - its response is recognised by id before the client's classification sees it: a result as the
 *   2025 codec decodes it (`resultType` dropped) then checked against the caller's schema, an
 *   error as the SDK's `ProtocolError.fromError` builds it;
 * - its progress notifications reach the caller's `onprogress` through the client's own progress
 *   table, so they are checked and delivered as the client checks and delivers any;
 * - the caller's abort sends `notifications/cancelled` and fails the call with the SDK's error;
 * - the connection's close fails every call in flight with the SDK's `CONNECTION_CLOSED`.
 *
 * Anything else the transport delivers (notifications, requests, other responses, and responses
 * that neither of the SDK's response schemas accepts) goes on to the client. A connection of the
 * 2026-07-28 era (envelopes, `input_required` rounds), an SDK without the members used here, or a
 * transport the link cannot watch keeps the client's own path (`DirectCalls.open` says which).
 */
import type { Client, Transport } from '@modelcontextprotocol/client';
import type { StandardSchemaV1 } from '@modelcontextprotocol/server';
import type { CancelSignal } from '../execution/signal.js';
import { isPlainResult } from './upstreamMessages.js';

type ClientModule = typeof import('@modelcontextprotocol/client');

/** What the direct path uses of the SDK client module: its errors and its two response guards. */
type SdkParts = Pick<
  ClientModule,
  'SdkError' | 'SdkErrorCode' | 'ProtocolError' | 'isJSONRPCResultResponse' | 'isJSONRPCErrorResponse'
>;

/** The client's private members the direct path shares: its request counter and progress table. */
interface ClientInternals {
  _requestMessageId: number;
  _progressHandlers: Map<number, (progress: unknown) => void>;
}

/** The params of one forwarded call, as the link builds them. */
export interface DirectCallParams {
  name: string;
  arguments: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

/** Per-call options: the caller's cancellation and, when the caller takes it, its progress. */
export interface DirectCallOptions {
  signal: CancelSignal;
  onprogress?: ((progress: { progress: number; total?: number; message?: string }) => void) | undefined;
}

/** One call in flight. */
interface Pending {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  schema: StandardSchemaV1<unknown, unknown>;
  options: DirectCallOptions;
  onAbort: () => void;
}

/** What the SDK's transports are handed with a request the client sends on its own behalf. */
const SEND_OPTIONS = Object.freeze({
  relatedRequestId: undefined,
  resumptionToken: undefined,
  onresumptiontoken: undefined,
  headers: undefined,
  requestSignal: undefined,
});
/** The same for a notification. */
const NOTIFY_OPTIONS = Object.freeze({
  relatedRequestId: undefined,
  resumptionToken: undefined,
  onresumptiontoken: undefined,
});

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A result as the 2025 codec decodes it: an object's `resultType` dropped, anything else as it is. */
function decoded(result: unknown): unknown {
  if (!isRecord(result) || !('resultType' in result)) return result;
  const stripped = { ...result };
  delete stripped.resultType;
  return stripped;
}

/** A schema issue as the SDK words it: `path: message`, or the message alone. */
function issueText(issue: StandardSchemaV1.Issue): string {
  if (!issue.path?.length) return issue.message;
  const path = issue.path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
  return `${path}: ${issue.message}`;
}

/** The `tools/call` requests of one upstream connection sent past the client's request funnel. */
export class DirectCalls {
  readonly #client: Client;
  readonly #internals: ClientInternals;
  readonly #transport: Transport;
  readonly #sdk: SdkParts;
  readonly #pending = new Map<number, Pending>();

  private constructor(client: Client, transport: Transport, sdk: SdkParts) {
    this.#client = client;
    this.#internals = client as unknown as ClientInternals;
    this.#transport = transport;
    this.#sdk = sdk;
  }

  /**
   * The direct path for a connected `client` over `transport`, or `undefined` where it must not be
   * taken: a connection of another era than 2025's, or an SDK without the members it uses. The
   * caller must hand it every message the transport delivers ({@link take}) before the client,
   * and tell it when the connection closes ({@link closed}).
   */
  static open(client: Client, transport: Transport, sdk: SdkParts): DirectCalls | undefined {
    if (typeof client.getProtocolEra !== 'function' || client.getProtocolEra() !== 'legacy') return undefined;
    const internals = client as unknown as Partial<ClientInternals>;
    if (!Number.isSafeInteger(internals._requestMessageId) || !(internals._progressHandlers instanceof Map))
      return undefined;
    if (
      typeof sdk.SdkError !== 'function' ||
      typeof sdk.ProtocolError?.fromError !== 'function' ||
      typeof sdk.SdkErrorCode?.RequestTimeout !== 'string' ||
      typeof sdk.SdkErrorCode.ConnectionClosed !== 'string' ||
      typeof sdk.SdkErrorCode.InvalidResult !== 'string' ||
      typeof sdk.isJSONRPCResultResponse !== 'function' ||
      typeof sdk.isJSONRPCErrorResponse !== 'function'
    )
      return undefined;
    return new DirectCalls(client, transport, sdk);
  }

  /** Calls in flight. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Sends one `tools/call` and resolves with its result, checked by `schema`; fails as the client's
   * `request` would (the same errors, with the same codes and messages).
   */
  call(
    params: DirectCallParams,
    schema: StandardSchemaV1<unknown, unknown>,
    options: DirectCallOptions,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const transport = this.#transport;
      if (this.#client.transport !== transport) {
        reject(new Error('Not connected'));
        return;
      }
      const { signal, onprogress } = options;
      if (signal.aborted) {
        reject(this.#cancelError(signal.reason));
        return;
      }
      const internals = this.#internals;
      const id = internals._requestMessageId++;
      const message = {
        method: 'tools/call',
        params: onprogress ? { ...params, _meta: { ...params._meta, progressToken: id } } : params,
        jsonrpc: '2.0' as const,
        id,
      };
      const onAbort = () => this.#cancel(id, signal.reason);
      this.#pending.set(id, { resolve, reject, schema, options, onAbort });
      if (onprogress) internals._progressHandlers.set(id, onprogress as (progress: unknown) => void);
      signal.addEventListener('abort', onAbort, { once: true });
      const failed = (error: unknown) => {
        if (this.#forget(id) !== undefined) reject(error);
      };
      try {
        transport.send(message as never, SEND_OPTIONS).catch(failed);
      } catch (error) {
        failed(error); // a transport that throws instead of rejecting
      }
    });
  }

  /**
   * Takes `message` when it is a response to a call in flight here; `false` for anything else,
   * which then goes to the client.
   */
  take(message: unknown): boolean {
    return isRecord(message) && 'id' in message && this.#response(message);
  }

  /** The connection closed: every call in flight fails as the client's do. */
  closed(): void {
    if (this.#pending.size === 0) return;
    const error = new this.#sdk.SdkError(this.#sdk.SdkErrorCode.ConnectionClosed, 'Connection closed');
    for (const id of [...this.#pending.keys()]) this.#forget(id)?.reject(error);
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Takes a call's entry out of the table (and its abort listener off the signal). */
  #forget(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    if (pending.options.onprogress) this.#internals._progressHandlers.delete(id);
    pending.options.signal.removeEventListener('abort', pending.onAbort);
    return pending;
  }

  /**
   * A response to a call here, classified as the client classifies it (a result, else an error,
   * else not a response at all, which the client then reports), and settled as the client would.
   */
  #response(message: Record<string, unknown>): boolean {
    const id = Number(message.id);
    if (!this.#pending.has(id)) return false;
    const sdk = this.#sdk;
    const isResult = isPlainResult(message) || sdk.isJSONRPCResultResponse(message);
    if (!isResult && !sdk.isJSONRPCErrorResponse(message)) return false;
    const pending = this.#forget(id)!;
    if (isResult) this.#settle(pending, decoded((message as { result?: unknown }).result));
    else {
      const {
        code,
        message: text,
        data,
      } = message.error as { code: number; message: string; data?: unknown };
      pending.reject(sdk.ProtocolError.fromError(code, text, data));
    }
    return true;
  }

  /** A result checked against the call's schema, as the client's `validateStandardSchema` does. */
  #settle(pending: Pending, result: unknown): void {
    let outcome: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
    try {
      outcome = pending.schema['~standard'].validate(result);
    } catch (error) {
      pending.reject(error);
      return;
    }
    const finish = (checked: StandardSchemaV1.Result<unknown>) => {
      if (checked.issues && checked.issues.length > 0) {
        const sdk = this.#sdk;
        const text = checked.issues.map(issueText).join(', ');
        pending.reject(
          new sdk.SdkError(sdk.SdkErrorCode.InvalidResult, `Invalid result for tools/call: ${text}`),
        );
      } else pending.resolve((checked as { value: unknown }).value);
    };
    if (typeof (outcome as { then?: unknown }).then === 'function')
      (outcome as Promise<StandardSchemaV1.Result<unknown>>).then(finish, pending.reject);
    else finish(outcome as StandardSchemaV1.Result<unknown>);
  }

  /** The caller gave up: the upstream is told, and the call fails with the SDK's error. */
  #cancel(id: number, reason: unknown): void {
    const pending = this.#forget(id);
    if (pending === undefined) return;
    if (this.#client.transport === this.#transport)
      this.#transport
        .send(
          {
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId: id, reason: String(reason) },
          } as never,
          NOTIFY_OPTIONS,
        )
        .catch(() => {});
    pending.reject(this.#cancelError(reason));
  }

  #cancelError(reason: unknown): unknown {
    const sdk = this.#sdk;
    return reason instanceof sdk.SdkError
      ? reason
      : new sdk.SdkError(sdk.SdkErrorCode.RequestTimeout, String(reason));
  }
}
