/**
 * The connection-oriented door (stdio, in memory, WebSocket): each transport served in whichever
 * protocol era its client speaks, through the policy when it has a caller, and counted by origin
 * until it ends.
 */
import type { Transport } from '@modelcontextprotocol/server';
import type { CallOrigin } from '../catalog/tools.js';
import type { Policy } from '../policy/policy.js';
import type { CallerIdentity, Logger } from '../types.js';
import { serveConnection } from './connection.js';
import { AdmissionTransport } from './gate.js';
import { createSessionServer, type SessionHost } from './session.js';

/** Options of one connection (`server.connect`). */
export interface ConnectOptions {
  /** The door, for audit, metrics and rate limits (`websocket` is rate limited). Default `memory`. */
  origin?: CallOrigin;
  /**
   * Who is on the other end. With a caller, every request passes the policy (permissions,
   * visibility, rate limits) before the SDK sees it; without one the connection is the local user's.
   */
  caller?: CallerIdentity;
  /** The client's network address, for rate limits and audit. */
  clientAddress?: string;
  /**
   * Called with a request's id once its handler has really finished, even when the client cancelled
   * it first: a transport that bounds requests in flight holds a cancelled one's slot until then.
   */
  onRequestSettled?: (id: string | number) => void;
}

/** A live connection served by `server.connect`. */
export interface Connection {
  /** Closes the connection and its transport. */
  close(): Promise<void>;
}

/** What the connections need from the server: a session host, its logger and its policy. */
export interface ConnectionsHost extends SessionHost {
  readonly logger: Logger;
  readonly policy?: Policy;
}

/** The live connections of one server. */
export class Connections {
  readonly #host: ConnectionsHost;
  readonly #live = new Set<{ origin: CallOrigin; close(): Promise<void> }>();

  constructor(host: ConnectionsHost) {
    this.#host = host;
  }

  /** Serves `transport` until it or the server closes. */
  async connect(transport: Transport, options: ConnectOptions = {}): Promise<Connection> {
    const host = this.#host;
    const origin = options.origin ?? 'memory';
    const entry = { origin, close: async () => {} };
    this.#live.add(entry);
    const { caller, clientAddress, onRequestSettled } = options;
    // A connection with a caller passes every request through the policy before the SDK sees it;
    // without one (stdio, in-process) it is the local user's.
    const guarded =
      host.policy && caller
        ? new AdmissionTransport(transport, host.policy, {
            caller,
            origin,
            ...(clientAddress !== undefined && { address: clientAddress }),
          })
        : transport;
    const served = await serveConnection(
      guarded,
      (era) =>
        createSessionServer(host, {
          era,
          origin,
          live: true,
          caller,
          ...(clientAddress !== undefined && { clientAddress }),
          ...(onRequestSettled && { onRequestSettled }),
        }),
      {
        onerror: (error) => host.logger.debug({ err: error }, 'MCP connection error'),
        onEnd: () => this.#live.delete(entry),
      },
    );
    entry.close = async () => {
      this.#live.delete(entry);
      await served.close();
    };
    return { close: entry.close };
  }

  /** Live connections by origin. */
  byOrigin(): Partial<Record<CallOrigin, number>> {
    const counts: Partial<Record<CallOrigin, number>> = {};
    for (const c of this.#live) counts[c.origin] = (counts[c.origin] ?? 0) + 1;
    return counts;
  }

  /** Closes every live connection. */
  async close(): Promise<void> {
    await Promise.all([...this.#live].map((c) => c.close()));
  }
}
