/**
 * The root entry is runtime-neutral: bundled for a worker runtime from its source (as tsup builds
 * it, with esbuild; never from a `dist/` that may be stale) it pulls in no Node built-in, and the
 * bundle serves MCP over `fetch` in a context that has only web globals (no process, require,
 * Buffer). `mcpkit/unstable`, made of the same modules, is neutral too, and so is `mcpkit/client`, which
 * browsers load.
 */
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The entry at `path` (from the repository root), bundled as a worker runtime would load it. */
async function bundleForWorker(path: string): Promise<string> {
  const result = await build({
    entryPoints: [`${root}${path}`],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: 'mcpkit',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

let code = '';

beforeAll(async () => {
  code = await bundleForWorker('src/index.ts');
}, 60_000);

describe('the root entry', () => {
  it('bundles for a worker runtime without any Node built-in', () => {
    expect(code.length).toBeGreaterThan(1000);
    expect(code).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });

  it('has an unstable entry that is as neutral', async () => {
    const unstable = await bundleForWorker('src/unstable.ts');
    expect(unstable).toContain('UriTemplate');
    expect(unstable).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });

  it('has a client entry that runs with web globals alone', async () => {
    const client = await bundleForWorker('src/client/index.ts');
    expect(client).toContain('mcpkit.completions');
    expect(client).not.toMatch(/from\s*["']node:|require\(/);
    const sandbox = vm.createContext({ TextEncoder, btoa });
    const mod = vm.runInContext(`${client}; mcpkit`, sandbox) as typeof import('../src/client/index.js');
    expect(mod.parseCompletionEvent('text', { step: 0, delta: 'a' })).toEqual({
      type: 'text',
      step: 0,
      delta: 'a',
    });
  });

  it('serves MCP over fetch in a context with only web globals', async () => {
    const globals = {
      URL,
      URLSearchParams,
      Request,
      Response,
      Headers,
      TextEncoder,
      TextDecoder,
      crypto: globalThis.crypto,
      AbortController,
      AbortSignal,
      ReadableStream,
      WritableStream,
      TransformStream,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      queueMicrotask,
      structuredClone,
      atob,
      btoa,
      performance,
      EventTarget,
      Event,
      DOMException,
      console: { log() {}, warn() {}, error() {}, info() {}, debug() {} },
    };
    const context = vm.createContext({ ...globals });
    vm.runInContext(code, context);
    const lib = (context as { mcpkit: typeof import('../src/index.js') }).mcpkit;
    expect(vm.runInContext('typeof process + typeof require + typeof Buffer', context)).toBe(
      'undefinedundefinedundefined',
    );

    const server = lib.createMcpServer({ name: 'edge', logLevel: 'silent' });
    server.tools.register({
      name: 'shout',
      inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
      handler: (args) => String(args.text).toUpperCase(),
    });
    const post = (body: unknown) =>
      server.fetch(
        new Request('http://localhost/mcp', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-protocol-version': '2025-11-25',
          },
          body: JSON.stringify(body),
        }),
      );
    const init = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'edge', version: '1' } },
    });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id');
    expect(sessionId).toBeTruthy();
    await init.text();
    const call = await server.fetch(
      new Request('http://localhost/mcp', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-11-25',
          'mcp-session-id': sessionId!,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'shout', arguments: { text: 'edge' } },
        }),
      }),
    );
    expect(await call.text()).toContain('"text":"EDGE"');
    await server.close();
  });
});
