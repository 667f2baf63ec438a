/** Raw `ws` clients for the WebSocket suites: open, refuse, JSON-RPC round trips. */
import type { IncomingMessage } from 'node:http';
import { type ClientOptions, WebSocket } from 'ws';

export interface RawOptions {
  protocols?: string[];
  headers?: Record<string, string>;
  origin?: string;
}

/** Opens a raw WebSocket; rejects with the HTTP status when the upgrade is refused. */
export function openRaw(url: string, options: RawOptions = {}): Promise<WebSocket> {
  const wsOptions: ClientOptions = {
    ...(options.headers && { headers: options.headers }),
    ...(options.origin && { origin: options.origin }),
  };
  const socket = new WebSocket(url, options.protocols ?? ['mcp'], wsOptions);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.once('end', () => reject(new RefusedUpgrade(res.statusCode ?? 0, body, res.headers)));
      res.once('error', () => reject(new RefusedUpgrade(res.statusCode ?? 0, body, res.headers)));
    });
    socket.once('error', reject);
  });
}

export class RefusedUpgrade extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: IncomingMessage['headers'],
  ) {
    super(`upgrade refused with HTTP ${status}: ${body}`);
  }
}

/** The HTTP status an upgrade attempt is refused with. */
export async function refusedStatus(url: string, options: RawOptions = {}): Promise<RefusedUpgrade> {
  try {
    const socket = await openRaw(url, options);
    socket.terminate();
  } catch (error) {
    if (error instanceof RefusedUpgrade) return error;
    throw error;
  }
  throw new Error('the upgrade was accepted');
}

/** Resolves with the code and reason of the socket's close. */
export function closeOf(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

/** A JSON-RPC peer on a raw socket: requests by id, every message kept. */
export class RawPeer {
  readonly messages: unknown[] = [];
  #nextId = 1;
  readonly #waiting = new Map<string | number, (message: unknown) => void>();
  readonly #watchers = new Set<(message: unknown) => void>();

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { id?: string | number };
      this.messages.push(message);
      for (const watch of this.#watchers) watch(message);
      if (message.id !== undefined && message.id !== null) {
        this.#waiting.get(message.id)?.(message);
        this.#waiting.delete(message.id);
      }
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends a request and resolves with its response (result or error). */
  request(method: string, params?: unknown, id: string | number = this.#nextId++): Promise<any> {
    const answer = new Promise<unknown>((resolve) => this.#waiting.set(id, resolve));
    this.send({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) });
    return answer;
  }

  /** Resolves with the next message that matches. */
  next(match: (message: any) => boolean): Promise<any> {
    return new Promise((resolve) => {
      const watch = (message: unknown) => {
        if (!match(message)) return;
        this.#watchers.delete(watch);
        resolve(message);
      };
      this.#watchers.add(watch);
    });
  }

  async initialize(): Promise<void> {
    const response = await this.request('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'raw', version: '1' },
    });
    if (!response.result) throw new Error(`initialize failed: ${JSON.stringify(response)}`);
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }
}

/** Opens and initializes a raw MCP peer. */
export async function rawPeer(url: string, options: RawOptions = {}): Promise<RawPeer> {
  const peer = new RawPeer(await openRaw(url, options));
  await peer.initialize();
  return peer;
}
