/**
 * Real clients against real transports: the SDK v2 Client (default and auto version negotiation)
 * and the SDK 1.x Client, over in-memory, stdio (a child process) and Streamable HTTP (port 0).
 */
import { fileURLToPath } from 'node:url';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport as InMemoryV1 } from '@modelcontextprotocol/sdk/inMemory.js';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { type Listening, listen } from 'mcpkit/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDemoCatalog } from '../examples/demo-catalog.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const stdioArgs = ['--tsconfig', `${root}tsconfig.json`, `${root}examples/stdio.ts`];

const server = createMcpServer({ name: 'interop', version: '1.0.0', logLevel: 'silent' });
registerDemoCatalog(server);
let listening: Listening;

beforeAll(async () => {
  listening = await listen(server, { port: 0 });
});
afterAll(async () => {
  await listening.close();
});

/** The common shape both SDK generations' clients offer for what we exercise. */
interface AnyClient {
  listTools(): Promise<{ tools: Array<{ name: string; inputSchema: unknown }> }>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown>;
  close(): Promise<void>;
}

type Connect = () => Promise<AnyClient>;

const info = { name: 'interop-test', version: '1.0.0' };

const cases: Array<[string, Connect]> = [
  [
    'v2 client, in-memory',
    async () => {
      const [c, s] = InMemoryTransport.createLinkedPair();
      await server.connect(s);
      const client = new ClientV2(info);
      await client.connect(c);
      return client as unknown as AnyClient;
    },
  ],
  [
    'v2 client (auto negotiation), in-memory',
    async () => {
      const [c, s] = InMemoryTransport.createLinkedPair();
      await server.connect(s);
      const client = new ClientV2(info, { versionNegotiation: { mode: 'auto' } });
      await client.connect(c);
      return client as unknown as AnyClient;
    },
  ],
  [
    'v1 client, in-memory',
    async () => {
      const [c, s] = InMemoryV1.createLinkedPair();
      await server.connect(s as never);
      const client = new ClientV1(info);
      await client.connect(c);
      return client as unknown as AnyClient;
    },
  ],
  [
    'v2 client, Streamable HTTP',
    async () => {
      const client = new ClientV2(info);
      await client.connect(new HttpV2(new URL(`${listening.url}/mcp`)));
      return client as unknown as AnyClient;
    },
  ],
  [
    'v2 client (auto negotiation), Streamable HTTP',
    async () => {
      const client = new ClientV2(info, { versionNegotiation: { mode: 'auto' } });
      await client.connect(new HttpV2(new URL(`${listening.url}/mcp`)));
      return client as unknown as AnyClient;
    },
  ],
  [
    'v1 client, Streamable HTTP',
    async () => {
      const client = new ClientV1(info);
      await client.connect(new HttpV1(new URL(`${listening.url}/mcp`)));
      return client as unknown as AnyClient;
    },
  ],
  [
    'v2 client, stdio child process',
    async () => {
      const client = new ClientV2(info);
      await client.connect(new StdioV2({ command: tsx, args: stdioArgs, stderr: 'pipe' }));
      return client as unknown as AnyClient;
    },
  ],
  [
    'v2 client (auto negotiation), stdio child process',
    async () => {
      const client = new ClientV2(info, { versionNegotiation: { mode: 'auto' } });
      await client.connect(new StdioV2({ command: tsx, args: stdioArgs, stderr: 'pipe' }));
      return client as unknown as AnyClient;
    },
  ],
  [
    'v1 client, stdio child process',
    async () => {
      const client = new ClientV1(info);
      await client.connect(new StdioV1({ command: tsx, args: stdioArgs, stderr: 'pipe' }));
      return client as unknown as AnyClient;
    },
  ],
];

describe.each(cases)('%s', (_name, connect) => {
  it('lists the quickstart tools with their JSON Schemas and calls them', { timeout: 30_000 }, async () => {
    const client = await connect();
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['calculate', 'convert_units', 'text_stats', 'countdown']);
      const calculate = tools.find((t) => t.name === 'calculate')!;
      expect(calculate.inputSchema).toMatchObject({
        type: 'object',
        properties: { expression: { type: 'string' } },
        required: ['expression'],
      });

      const sum = (await client.callTool({
        name: 'calculate',
        arguments: { expression: '2 * (3 + 4)' },
      })) as {
        structuredContent?: unknown;
        isError?: boolean;
      };
      expect(sum.isError).toBeFalsy();
      expect(sum.structuredContent).toEqual({ expression: '2 * (3 + 4)', value: 14 });

      const converted = (await client.callTool({
        name: 'convert_units',
        arguments: { value: 100, from: 'c', to: 'f' },
      })) as { content: Array<{ type: string; text?: string }> };
      expect(converted.content).toEqual([{ type: 'text', text: '100 c = 212 f' }]);

      const invalid = (await client.callTool({ name: 'calculate', arguments: { expression: 42 } })) as {
        isError?: boolean;
        content: Array<{ text?: string }>;
      };
      expect(invalid.isError).toBe(true);
      expect(invalid.content[0]?.text).toContain('expression');

      // Input the handler cannot use is the caller's mistake: answered at once, never retried.
      const unparsable = (await client.callTool({ name: 'calculate', arguments: { expression: '2+' } })) as {
        isError?: boolean;
        content: Array<{ text?: string }>;
        _meta?: Record<string, unknown>;
      };
      expect(unparsable.isError).toBe(true);
      expect(unparsable.content[0]?.text).toMatch(/^Invalid expression: unexpected end of expression/);
      expect(unparsable._meta?.['io.mcpkit/error']).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(unparsable._meta?.['io.mcpkit/attempts']).toBeUndefined();
    } finally {
      await client.close();
    }
  });
});
