/**
 * Fixtures of the door matrix (`doors.test.ts`): one richly configured server per mount (`listen()`,
 * Express 5, Fastify 5, Hono 4 on `@hono/node-server`), each serving four wires on one real port
 * (REST, `/mcp` with a 2025-era session, stateless `/mcp` in the 2026-07-28 era, MCP over
 * WebSocket), and one small client per wire that answers in door-neutral terms ({@link Answer}), so
 * an invariant is written once and run on every door.
 */
import { EventEmitter } from 'node:events';
import http, { type Server as HttpServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import {
  type AuthInfo,
  localhostAllowedHostnames,
  OAuthError,
  OAuthErrorCode,
} from '@modelcontextprotocol/server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { createMcpServer, type McpKitServer, MemoryAuditSink } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { mcpkitHono } from 'mcpkit/hono';
import { type AttachWebSocketOptions, attachWebSocket, listen } from 'mcpkit/node';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { TemplateVariables } from '../src/catalog/uriTemplate.js';
import { ERROR_CODES } from '../src/core/errors.js';
import { closeHttp, waitListening } from './fixtures.js';
import { openRaw, RefusedUpgrade } from './websocketHelpers.js';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** The rate-limit window of every class; the limiter's clock is moved past it between tests. */
export const WINDOW_MS = 60_000;
/** Tokens per window and per caller, by class: small, so every limit is reachable in a test. */
export const LIMITS = { read: 20, execute: 4, manage: 4, completions: 4 } as const;
/** 2025-era sessions one caller may hold (`http.maxSessionsPerCaller`). */
export const SESSIONS_PER_CALLER = 3;
/** Requests in flight per WebSocket connection (`maxInFlight`). */
export const MAX_IN_FLIGHT = 3;
/** Streams one caller may hold open (`http.maxStreamsPerCaller`). */
export const STREAMS_PER_CALLER = 3;
/** WebSocket connections one caller may hold open (`maxConnectionsPerCaller`). */
export const CONNECTIONS_PER_CALLER = 4;
/** A public name the servers accept in `Host` besides the loopback names. */
export const PUBLIC_HOST = 'mcp.example.test';
/** The one bearer token the fake OAuth verifier accepts. */
export const OAUTH_TOKEN = 'oauth-token-accepted-by-the-fake-verifier';
/** The 2026-07-28 per-request envelope. */
export const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'doors', version: '1' },
};
/** The 2025-era protocol version the session and WebSocket clients speak (batches need 2025-03-26). */
export const LEGACY_VERSION = '2025-11-25';

/** Every API key: its role. Rate-limited invariants each have their own key. */
const CALLERS = {
  admin: 'admin',
  operator: 'operator',
  user: 'user',
  viewer: 'viewer',
  /** custom role: runs and manages `public.*` tools and manages integrations */
  integrator: 'integrator',
  /** custom role: reads `fixture://items/*` and `files://*` */
  librarian: 'librarian',
  pinger: 'user',
  batcher: 'user',
  chainer: 'user',
  shareA: 'user',
  shareB: 'user',
  inflight: 'user',
  streamer: 'user',
  restStreamer: 'user',
  connector: 'user',
} as const;

export type CallerName = keyof typeof CALLERS;

/** The API key of each caller. */
export const KEYS = Object.fromEntries(
  Object.keys(CALLERS).map((id) => [id, `doors-${id}-key-0123456789abcdef`]),
) as Record<CallerName, string>;

// ---------------------------------------------------------------------------------------------
// The world behind one mount: its server and what its handlers observed
// ---------------------------------------------------------------------------------------------

/** A promise with its resolve exposed. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The `slow` tool: its handler ignores its signal and ends only when the test releases it. */
export class SlowTool {
  started = 0;
  finished = 0;
  #gate = deferred();
  readonly #events = new EventEmitter();

  readonly handler = async (): Promise<string> => {
    const gate = this.#gate;
    this.started++;
    this.#events.emit('change');
    await gate.promise;
    if (gate === this.#gate) {
      this.finished++;
      this.#events.emit('change');
    }
    return 'slow done';
  };

  /** Lets every handler waiting now finish. */
  release(): void {
    this.#gate.resolve();
  }

  /** Releases stragglers of an earlier test and starts counting afresh. */
  reset(): void {
    this.#gate.resolve();
    this.#gate = deferred();
    this.started = 0;
    this.finished = 0;
  }

  /** Resolves once `predicate` holds, checked on every start and finish (no polling). */
  until(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate()) return;
        this.#events.off('change', check);
        resolve();
      };
      this.#events.on('change', check);
    });
  }
}

/** One mount's server and what its handlers saw. */
export interface World {
  readonly server: McpKitServer;
  readonly audit: MemoryAuditSink;
  /** The rate limiter's clock, in ms. */
  now: number;
  /** Times the reserved tool `secret.wipe` ran. */
  secretRuns: number;
  /** The `path` variable the `files://{+path}` template's reader was called with, in order. */
  readonly reads: string[];
  /** Times the static `files://secret` resource's reader ran. */
  staticSecretReads: number;
  readonly slow: SlowTool;
  /** Refills every bucket: moves the limiter's clock ten windows on. */
  refill(): void;
  /** Forgets what the handlers saw and refills every bucket. */
  reset(): void;
}

/** Values the `files://{+path}` completer offers: reserved ones in several spellings among them. */
export const FILE_COMPLETIONS = [
  'public/doc',
  'secret',
  'sec%72et',
  '%73ecret',
  'secret/keys',
  'secret%2Fkeys',
];
/** Values the `fixture://items/{id}` completer offers; item 7 is reserved for admin. */
export const ITEM_COMPLETIONS = ['1', '2', '7', '10'];

const fakeVerifier = {
  async verifyAccessToken(token: string): Promise<AuthInfo> {
    if (token !== OAUTH_TOKEN) throw new OAuthError(OAuthErrorCode.InvalidToken, 'unknown token');
    return { token, clientId: 'oauth-app', scopes: ['user'], expiresAt: 4e9 };
  },
};

function buildWorld(): World {
  const audit = new MemoryAuditSink(5000);
  const slow = new SlowTool();
  const world = {
    audit,
    now: 1_000_000,
    secretRuns: 0,
    reads: [] as string[],
    staticSecretReads: 0,
    slow,
    refill() {
      world.now += 10 * WINDOW_MS;
    },
    reset() {
      world.secretRuns = 0;
      world.reads.length = 0;
      world.staticSecretReads = 0;
      world.slow.reset();
      world.refill();
    },
  } as Omit<World, 'server'> & { server?: McpKitServer };
  const rule = (limit: number) => ({ limit, windowMs: WINDOW_MS });
  world.server = createMcpServer({
    name: 'doors',
    version: '1.0.0',
    logLevel: 'silent',
    auth: {
      apiKeys: Object.entries(CALLERS).map(([id, role]) => ({
        id,
        roles: [role],
        key: KEYS[id as CallerName],
      })),
      oauth: { verifier: fakeVerifier, authorizationServers: ['https://auth.example.test'] },
    },
    roles: {
      integrator: {
        permissions: [
          'tools:read',
          'tools:execute',
          'tools:manage',
          'integrations:read',
          'integrations:manage',
        ],
        tools: ['public.*', 'integ-*'],
      },
      librarian: {
        permissions: ['resources:read', 'prompts:read', 'tools:read'],
        resources: ['fixture://items/*', 'files://*'],
        prompts: ['greet'],
      },
    },
    rules: [
      { tools: 'secret.*', roles: ['admin'] },
      { prompts: 'secret-prompt', roles: ['admin'] },
      { resources: ['files://secret', 'files://secret/*', 'fixture://items/7'], roles: ['admin'] },
    ],
    rateLimit: {
      read: rule(LIMITS.read),
      execute: rule(LIMITS.execute),
      manage: rule(LIMITS.manage),
      completions: rule(LIMITS.completions),
      now: () => world.now,
    },
    audit: { sinks: [audit] },
    completions: { allowInlineBaseUrl: true },
    // The loopback model listens on a private address.
    outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
    http: {
      maxSessions: 100,
      maxSessionsPerCaller: SESSIONS_PER_CALLER,
      maxStreamsPerCaller: STREAMS_PER_CALLER,
      allowedHosts: [...localhostAllowedHostnames(), PUBLIC_HOST],
      trustProxy: ['127.0.0.1'],
    },
    tools: [
      {
        name: 'public.echo',
        description: 'Echoes its text',
        inputSchema: { text: z.string().optional() },
        handler: ({ text }) => text ?? 'echo',
      },
      {
        name: 'secret.wipe',
        description: 'Reserved for admin',
        handler: () => {
          world.secretRuns++;
          return 'wiped';
        },
      },
      { name: 'slow', description: 'Ignores its signal', handler: slow.handler },
    ],
    resources: [
      {
        uri: 'files://secret',
        name: 'secret-file',
        read: () => {
          world.staticSecretReads++;
          return 'the static secret';
        },
      },
      {
        uri: 'files://readme',
        name: 'readme',
        read: () => 'read me',
      },
      {
        uriTemplate: 'files://{+path}',
        name: 'files',
        complete: { path: (value) => FILE_COMPLETIONS.filter((v) => v.startsWith(value)) },
        read: (_uri: string, { path }: TemplateVariables) => {
          world.reads.push(String(path));
          return `file ${String(path)}`;
        },
      },
      {
        uriTemplate: 'fixture://items/{id}',
        name: 'item',
        complete: { id: (value) => ITEM_COMPLETIONS.filter((v) => v.startsWith(value)) },
        read: (_uri: string, { id }: TemplateVariables) => JSON.stringify({ id }),
      },
    ],
    prompts: [
      {
        name: 'greet',
        arguments: [{ name: 'name', required: true }],
        complete: { name: (value) => ['Ada', 'Alan', 'Grace'].filter((v) => v.startsWith(value)) },
        messages: [{ role: 'user', content: 'Say hello to {{name}}.' }],
      },
      {
        name: 'secret-prompt',
        arguments: [{ name: 'topic', required: false }],
        complete: { topic: (value) => ['launch codes'].filter((v) => v.startsWith(value)) },
        messages: [{ role: 'user', content: 'The secret plan.' }],
      },
    ],
  });
  return world as World;
}

// ---------------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------------

export const MOUNTS = ['listen', 'express', 'fastify', 'hono'] as const;
export type MountName = (typeof MOUNTS)[number];

/** One mount of one server: a real listener on 127.0.0.1, every wire on its port. */
export interface Mount {
  readonly name: MountName;
  readonly world: World;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  /** `ws://127.0.0.1:<port>/mcp` */
  readonly wsUrl: string;
  close(): Promise<void>;
}

const WS_OPTIONS: AttachWebSocketOptions = {
  maxInFlight: MAX_IN_FLIGHT,
  heartbeatMs: 0,
  maxConnectionsPerCaller: CONNECTIONS_PER_CALLER,
};

function mountOf(name: MountName, world: World, port: number, close: () => Promise<void>): Mount {
  return {
    name,
    world,
    port,
    base: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/mcp`,
    close,
  };
}

/** Builds one server and mounts it `name`'s way, WebSocket attached to the same node:http server. */
export async function openMount(name: MountName): Promise<Mount> {
  const world = buildWorld();
  const { server } = world;
  await server.integrations.ready;
  if (name === 'listen') {
    const listening = await listen(server, { port: 0, websocket: WS_OPTIONS });
    return mountOf(name, world, listening.port, () => listening.close());
  }
  let httpServer: HttpServer;
  let closeHost: () => Promise<void>;
  if (name === 'express') {
    const app = express();
    app.use(mcpkitExpress(server));
    httpServer = app.listen(0, '127.0.0.1');
    closeHost = () => closeHttp(httpServer);
  } else if (name === 'fastify') {
    const app = Fastify();
    await app.register(mcpkitFastify, { server });
    await app.listen({ port: 0, host: '127.0.0.1' });
    httpServer = app.server;
    closeHost = async () => {
      app.server.closeAllConnections();
      await app.close();
    };
  } else {
    const app = new Hono();
    app.route('/', mcpkitHono(server));
    httpServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as HttpServer;
    closeHost = () => closeHttp(httpServer);
  }
  const ws = await attachWebSocket(httpServer, server, WS_OPTIONS);
  await waitListening(httpServer);
  const port = (httpServer.address() as AddressInfo).port;
  return mountOf(name, world, port, async () => {
    await ws.close();
    await server.close();
    await closeHost();
  });
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for what fetch cannot send (a Host header, a source address, an unnormalised path)
// ---------------------------------------------------------------------------------------------

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

export interface RawInit {
  method?: string;
  /** The request target exactly as sent. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** The local address to connect from (`127.0.0.2` is a peer `trustProxy` does not trust). */
  localAddress?: string;
}

/** One HTTP/1.1 request on a fresh connection; resolves once the whole response has arrived. */
export function rawRequest(port: number, init: RawInit): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: init.method ?? 'GET',
        path: init.path,
        headers: init.headers ?? {},
        agent: false,
        ...(init.localAddress !== undefined && { localAddress: init.localAddress }),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(init.body);
  });
}

// ---------------------------------------------------------------------------------------------
// Door-neutral answers
// ---------------------------------------------------------------------------------------------

export const WIRES = ['rest', 'mcp2025', 'mcp2026', 'ws'] as const;
export type Wire = (typeof WIRES)[number];

/** A door: one wire of one mount. */
export interface Door {
  readonly mount: MountName;
  readonly wire: Wire;
  readonly label: string;
}

export const DOORS: readonly Door[] = MOUNTS.flatMap((mount) =>
  WIRES.map((wire) => ({ mount, wire, label: `${mount} ${wire}` })),
);

/** The JSON-RPC code of each mcpkit error code, and back (-32602 reads as INVALID_ARGUMENT). */
const CODE_OF_RPC = new Map<number, string>();
for (const [name, info] of Object.entries(ERROR_CODES)) {
  if (!CODE_OF_RPC.has(info.jsonRpc)) CODE_OF_RPC.set(info.jsonRpc, name);
}
CODE_OF_RPC.set(-32601, 'METHOD_NOT_FOUND');
CODE_OF_RPC.set(-32700, 'PARSE_ERROR');
CODE_OF_RPC.set(-32002, 'RESOURCE_NOT_FOUND');

/** What an operation ended as, whatever the door. */
export interface Answer {
  readonly ok: boolean;
  /** The HTTP status of the response that carried it (none on WebSocket). */
  readonly status?: number;
  /** How a failure was told: a problem (REST), a JSON-RPC error, or a tool's error result. */
  readonly via?: 'problem' | 'rpc' | 'result';
  /** mcpkit's code: the problem's `code`, the JSON-RPC code's name, or the tool error's code. */
  readonly code?: string;
  /** The JSON-RPC error code (MCP wires). */
  readonly rpc?: number;
  /** The error message (problem `detail`, JSON-RPC `message`, the tool error's text). */
  readonly message?: string;
  readonly data?: any;
  /** What succeeded: the REST body or the JSON-RPC result (lists: their names). */
  readonly value?: any;
  /** The answer as it came off the wire. */
  readonly text: string;
  /** The HTTP response headers, lower-case (HTTP wires). */
  readonly headers?: Record<string, string>;
}

function headersOf(headers: Headers | IncomingHttpHeaders | undefined): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  if (headers instanceof Headers) return Object.fromEntries(headers);
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v ?? '')]),
  );
}

/** The answer a JSON-RPC response message gives. */
export function answerOfMessage(
  message: any,
  text: string,
  status?: number,
  headers?: Headers | IncomingHttpHeaders,
): Answer {
  const common = {
    text,
    ...(status !== undefined && { status }),
    ...(headers && { headers: headersOf(headers) }),
  };
  if (message?.error) {
    const rpc = message.error.code as number;
    return {
      ...common,
      ok: false,
      via: 'rpc',
      rpc,
      code: CODE_OF_RPC.get(rpc) ?? `RPC${rpc}`,
      message: message.error.message,
      data: message.error.data,
    };
  }
  const result = message?.result;
  if (result?.isError) {
    const meta = result._meta?.['io.mcpkit/error'];
    return {
      ...common,
      ok: false,
      via: 'result',
      code: meta?.code ?? 'TOOL_ERROR',
      message: result.content?.find((c: { type: string }) => c.type === 'text')?.text,
      value: result,
    };
  }
  return { ...common, ok: true, value: result };
}

/** The JSON-RPC messages of a `/mcp` response body: a JSON value (or array), or SSE `data:` lines. */
export function messagesOf(text: string, contentType: string | null | undefined): any[] {
  if (contentType?.includes('text/event-stream')) {
    return text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6))
      .filter((data) => data.trim() !== '')
      .map((data) => JSON.parse(data));
  }
  if (text.trim() === '') return [];
  const parsed = JSON.parse(text);
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The answer of one `/mcp` HTTP response to one request. */
export async function answerOfHttp(response: Response): Promise<Answer> {
  const text = await response.text();
  let message: any;
  try {
    const messages = messagesOf(text, response.headers.get('content-type'));
    message = messages.filter((m) => 'result' in m || 'error' in m).at(-1) ?? messages.at(-1);
  } catch {
    message = undefined;
  }
  if (message === undefined)
    return { ok: false, status: response.status, text, headers: headersOf(response.headers) };
  return answerOfMessage(message, text, response.status, response.headers);
}

/** The answer of one REST response. */
function answerOfRest(status: number, text: string, headers: Headers): Answer {
  let body: any;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  const common = { status, text, headers: headersOf(headers) };
  if (status >= 400) {
    return { ...common, ok: false, via: 'problem', code: body?.code, message: body?.detail, data: body };
  }
  if (body?.isError) {
    const meta = body._meta?.['io.mcpkit/error'];
    return {
      ...common,
      ok: false,
      via: 'result',
      code: meta?.code ?? 'TOOL_ERROR',
      message: body.content?.find((c: { type: string }) => c.type === 'text')?.text,
      value: body,
    };
  }
  return { ...common, ok: true, value: body };
}

// ---------------------------------------------------------------------------------------------
// One client per wire, all with the same small interface
// ---------------------------------------------------------------------------------------------

export interface DoorClient {
  readonly wire: Wire;
  callTool(name: string, args?: Record<string, unknown>): Promise<Answer>;
  readResource(uri: string): Promise<Answer>;
  getPrompt(name: string, args?: Record<string, string>): Promise<Answer>;
  /** `value`: the names listed. */
  listTools(): Promise<Answer>;
  /** `value`: the URIs listed. */
  listResources(): Promise<Answer>;
  /** `value`: the names listed. */
  listPrompts(): Promise<Answer>;
  /** `completion/complete` (MCP wires); `value`: the values offered. */
  complete(ref: Record<string, unknown>, argument: { name: string; value: string }): Promise<Answer>;
  /** `ping` (MCP wires). */
  ping(): Promise<Answer>;
  /** Any JSON-RPC request (MCP wires), the SDK's built-in methods included. */
  request(method: string, params?: Record<string, unknown>, id?: string | number): Promise<Answer>;
  /**
   * Raw text as one message (MCP wires: a POST body to `/mcp`, one frame on WebSocket; REST: a POST
   * body to `path`).
   */
  sendText(text: string, path?: string): Promise<Answer>;
  close(): Promise<void>;
}

const enc = encodeURIComponent;

/** What a list names: each item's URI (resources) or name (tools, prompts). */
function names(list: Array<{ name?: string; uri?: string }> | undefined): string[] {
  return (list ?? []).map((item) => item.uri ?? item.name ?? '');
}

/** The REST client: one HTTP request per operation, the key in `Authorization`. */
class RestClient implements DoorClient {
  readonly wire = 'rest';
  readonly #base: string;
  readonly #key: string;

  constructor(base: string, key: string) {
    this.#base = base;
    this.#key = key;
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Answer> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.#key}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const response = await fetch(`${this.#base}${path}`, { ...init, headers });
    return answerOfRest(response.status, await response.text(), response.headers);
  }

  post(path: string, body: unknown): Promise<Answer> {
    return this.fetch(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
  }

  callTool(name: string, args: Record<string, unknown> = {}) {
    return this.post(`/tools/${enc(name)}/execute`, { arguments: args });
  }
  readResource(uri: string) {
    return this.fetch(`/resources/${enc(uri)}`);
  }
  getPrompt(name: string, args: Record<string, string> = {}) {
    return this.post(`/prompts/${enc(name)}/generate`, { arguments: args });
  }
  async #list(path: string): Promise<Answer> {
    const answer = await this.fetch(path);
    return answer.ok ? { ...answer, value: names(answer.value.items) } : answer;
  }
  listTools() {
    return this.#list('/tools');
  }
  listResources() {
    return this.#list('/resources');
  }
  listPrompts() {
    return this.#list('/prompts');
  }
  complete(): Promise<Answer> {
    throw new Error('REST has no completion/complete');
  }
  ping(): Promise<Answer> {
    throw new Error('REST has no ping');
  }
  request(): Promise<Answer> {
    throw new Error('REST has no JSON-RPC');
  }
  sendText(text: string, path = '/tools/public.echo/execute') {
    return this.post(path, text);
  }
  async close() {}
}

/** What the MCP clients share: the operations as JSON-RPC requests. */
abstract class McpClient implements DoorClient {
  abstract readonly wire: Wire;
  #nextId = 1;

  protected abstract exchange(message: Record<string, unknown>): Promise<Answer>;
  abstract sendText(text: string): Promise<Answer>;
  abstract close(): Promise<void>;

  request(method: string, params: Record<string, unknown> = {}, id: string | number = this.#nextId++) {
    return this.exchange({ jsonrpc: '2.0', id, method, params });
  }
  callTool(name: string, args: Record<string, unknown> = {}) {
    return this.request('tools/call', { name, arguments: args });
  }
  readResource(uri: string) {
    return this.request('resources/read', { uri });
  }
  getPrompt(name: string, args: Record<string, string> = {}) {
    return this.request('prompts/get', { name, arguments: args });
  }
  async #list(method: string, field: string): Promise<Answer> {
    const answer = await this.request(method);
    return answer.ok ? { ...answer, value: names(answer.value[field]) } : answer;
  }
  listTools() {
    return this.#list('tools/list', 'tools');
  }
  listResources() {
    return this.#list('resources/list', 'resources');
  }
  listPrompts() {
    return this.#list('prompts/list', 'prompts');
  }
  async complete(ref: Record<string, unknown>, argument: { name: string; value: string }) {
    const answer = await this.request('completion/complete', { ref, argument });
    return answer.ok ? { ...answer, value: answer.value.completion.values } : answer;
  }
  ping() {
    return this.request('ping');
  }
}

/** The headers of a JSON POST to `/mcp`. */
export function mcpHeaders(
  key: string | undefined,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(key !== undefined && { authorization: `Bearer ${key}` }),
    ...extra,
  };
}

/** A 2025-era Streamable HTTP session (`Mcp-Session-Id`), spoken with plain fetch. */
export class SessionClient extends McpClient {
  readonly wire = 'mcp2025';
  readonly url: string;
  readonly key: string;
  readonly version: string;
  sessionId: string | undefined;

  private constructor(url: string, key: string, version: string) {
    super();
    this.url = url;
    this.key = key;
    this.version = version;
  }

  /** Opens a session: `initialize`, then `notifications/initialized`. */
  static async open(base: string, key: string, version = LEGACY_VERSION): Promise<SessionClient> {
    const client = new SessionClient(`${base}/mcp`, key, version);
    const init = await client.post(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'doors', version: '1' } },
      }),
    );
    const answer = await answerOfHttp(init);
    const sessionId = init.headers.get('mcp-session-id');
    if (!answer.ok || sessionId === null) {
      throw new Error(`initialize failed: HTTP ${init.status} ${answer.text.slice(0, 300)}`);
    }
    client.sessionId = sessionId;
    const done = await client.post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    await done.text();
    if (done.status !== 202) throw new Error(`notifications/initialized answered ${done.status}`);
    return client;
  }

  /** A POST of `body` to `/mcp` with this session's headers. */
  post(body: string, extra: Record<string, string> = {}): Promise<Response> {
    return fetch(this.url, {
      method: 'POST',
      headers: mcpHeaders(this.key, {
        'mcp-protocol-version': this.version,
        ...(this.sessionId !== undefined && { 'mcp-session-id': this.sessionId }),
        ...extra,
      }),
      body,
    });
  }

  protected async exchange(message: Record<string, unknown>): Promise<Answer> {
    return answerOfHttp(await this.post(JSON.stringify(message)));
  }

  async sendText(text: string): Promise<Answer> {
    return answerOfHttp(await this.post(text));
  }

  async close(): Promise<void> {
    if (this.sessionId === undefined) return;
    const response = await fetch(this.url, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${this.key}`, 'mcp-session-id': this.sessionId },
    });
    await response.text();
    this.sessionId = undefined;
  }
}

/** What the `Mcp-Name` header mirrors for each method (SEP-2243). */
const NAME_FIELD: Record<string, string> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

/** The `Mcp-Name` header for `value`: as it is, Base64-wrapped when not plain ASCII, none when huge. */
function mcpNameHeader(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 12_000) return undefined;
  if (/^[\u0021-\u007e]([\u0020-\u007e]*[\u0021-\u007e])?$/.test(value)) return value;
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The stateless 2026-07-28 era: every request stands alone, with the per-request envelope. */
export class ModernClient extends McpClient {
  readonly wire = 'mcp2026';
  readonly url: string;
  readonly key: string;

  constructor(base: string, key: string) {
    super();
    this.url = `${base}/mcp`;
    this.key = key;
  }

  /** The body and headers of a modern request. */
  init(message: Record<string, unknown>): RequestInit {
    const method = String(message.method);
    const params = { ...(message.params as object), _meta: MODERN_META };
    const field = NAME_FIELD[method];
    const name = field === undefined ? undefined : mcpNameHeader((params as Record<string, unknown>)[field]);
    return {
      method: 'POST',
      headers: mcpHeaders(this.key, {
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(name !== undefined && { 'mcp-name': name }),
      }),
      body: JSON.stringify({ ...message, params }),
    };
  }

  protected async exchange(message: Record<string, unknown>): Promise<Answer> {
    return answerOfHttp(await fetch(this.url, this.init(message)));
  }

  async sendText(text: string): Promise<Answer> {
    return answerOfHttp(
      await fetch(this.url, {
        method: 'POST',
        headers: mcpHeaders(this.key, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' }),
        body: text,
      }),
    );
  }

  async close() {}
}

/** A raw MCP peer over WebSocket (subprotocol `mcp`), initialized in the 2025 era. */
export class WsClient extends McpClient {
  readonly wire = 'ws';
  readonly socket: WebSocket;
  /** Every message received, in order. */
  readonly received: any[] = [];
  readonly #waiting = new Map<string | number | null, Array<(message: any) => void>>();
  readonly #watchers = new Set<(message: any) => void>();

  private constructor(socket: WebSocket) {
    super();
    this.socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      this.received.push(message);
      for (const watch of [...this.#watchers]) watch(message);
      const id = message.id === undefined ? undefined : message.id;
      if (id === undefined || !('result' in message || 'error' in message)) return;
      const queue = this.#waiting.get(id);
      const next = queue?.shift();
      if (queue?.length === 0) this.#waiting.delete(id);
      next?.(message);
    });
  }

  static async open(url: string, key: string): Promise<WsClient> {
    const client = new WsClient(await openRaw(url, { headers: { authorization: `Bearer ${key}` } }));
    const init = await client.request('initialize', {
      protocolVersion: LEGACY_VERSION,
      capabilities: {},
      clientInfo: { name: 'doors', version: '1' },
    });
    if (!init.ok) throw new Error(`initialize failed: ${init.text}`);
    client.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return client;
  }

  /** Sends a message (or raw text) without waiting for anything. */
  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next message that matches, whatever its id. */
  next(match: (message: any) => boolean): Promise<any> {
    return new Promise((resolve) => {
      const watch = (message: any) => {
        if (!match(message)) return;
        this.#watchers.delete(watch);
        resolve(message);
      };
      this.#watchers.add(watch);
    });
  }

  /** The next response carrying `id` (`null`: an error about a message whose id could not be read). */
  responseTo(id: string | number | null): Promise<any> {
    return new Promise((resolve) => {
      const queue = this.#waiting.get(id) ?? [];
      queue.push(resolve);
      this.#waiting.set(id, queue);
    });
  }

  protected async exchange(message: Record<string, unknown>): Promise<Answer> {
    const answered = this.responseTo(message.id as string | number);
    this.send(message);
    const response = await answered;
    return answerOfMessage(response, JSON.stringify(response));
  }

  /** Sends raw text as one frame; answers with the next error that names no id. */
  async sendText(text: string): Promise<Answer> {
    const answered = this.responseTo(null);
    this.send(text);
    const response = await answered;
    return answerOfMessage(response, JSON.stringify(response));
  }

  async close(): Promise<void> {
    if (this.socket.readyState === this.socket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.close();
    await closed;
  }
}

/** Connects to `door`'s wire on `mount` as the caller with `key`. */
export async function connect(mount: Mount, wire: Wire, key: string): Promise<DoorClient> {
  switch (wire) {
    case 'rest':
      return new RestClient(mount.base, key);
    case 'mcp2025':
      return SessionClient.open(mount.base, key);
    case 'mcp2026':
      return new ModernClient(mount.base, key);
    case 'ws':
      return WsClient.open(mount.wsUrl, key);
  }
}

/** How a first contact was answered: an HTTP status and body, or an accepted upgrade (101). */
export interface FirstContact {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** The first request a client of `wire` makes, with the given credential and headers. */
export async function firstContact(
  mount: Mount,
  wire: Wire,
  options: { key?: string; query?: string; headers?: Record<string, string> } = {},
): Promise<FirstContact> {
  const query = options.query ?? '';
  const headers = {
    ...(options.key !== undefined && { authorization: `Bearer ${options.key}` }),
    ...options.headers,
  };
  switch (wire) {
    case 'rest':
      return rawRequest(mount.port, { path: `/tools${query}`, headers });
    case 'mcp2025':
      return rawRequest(mount.port, {
        method: 'POST',
        path: `/mcp${query}`,
        headers: mcpHeaders(undefined, { 'mcp-protocol-version': LEGACY_VERSION, ...headers }),
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: LEGACY_VERSION,
            capabilities: {},
            clientInfo: { name: 'd', version: '1' },
          },
        }),
      });
    case 'mcp2026': {
      const init = new ModernClient(mount.base, 'unused').init({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      });
      const modernHeaders = { ...(init.headers as Record<string, string>) };
      delete modernHeaders.authorization;
      return rawRequest(mount.port, {
        method: 'POST',
        path: `/mcp${query}`,
        headers: { ...modernHeaders, ...headers },
        body: init.body as string,
      });
    }
    case 'ws':
      try {
        const socket = await openRaw(`${mount.wsUrl}${query}`, { headers });
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        socket.close();
        await closed;
        return { status: 101, headers: {}, text: '' };
      } catch (error) {
        if (error instanceof RefusedUpgrade) {
          return { status: error.status, headers: error.headers, text: error.body };
        }
        throw error;
      }
  }
}
