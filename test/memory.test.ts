/**
 * Attacker-sized data is not kept: a restricted caller that sends tens of megabytes of names and
 * URIs it may not use (refused, audited, counted) leaves the heap where it was. Measured, with a
 * forced garbage collection before and after.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryAuditSink } from 'mcpkit';
import { jsonRpcPost, request } from 'mcpkit/testing';
import { describe, expect, it } from 'vitest';
import { fixtureServer } from './fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

const KEY = 'observer-key-0123456789abcdef';
const MODERN = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'memory', version: '1' },
};

describe('refused names and URIs', () => {
  it('do not grow the heap: 96 MiB of unique ones from an observer key leave it within 8 MiB', async () => {
    const audit = new MemoryAuditSink(1000);
    const server = fixtureServer({
      auth: { apiKeys: [{ id: 'observer', roles: ['viewer'], key: KEY }] },
      rules: [
        { tools: ['secret*'], roles: ['admin'] },
        { resources: ['fixture://*'], roles: ['admin'] },
        { prompts: ['secret*'], roles: ['admin'] },
      ],
      audit: { sinks: [audit] },
    });
    const headers = {
      authorization: `Bearer ${KEY}`,
      'mcp-protocol-version': '2026-07-28',
    };
    const send = (method: string, params: Record<string, unknown>, name: string) =>
      request(
        server,
        '/mcp',
        jsonRpcPost(
          { jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: MODERN } },
          { ...headers, 'mcp-method': method, 'mcp-name': name.slice(0, 64) },
        ),
      );
    let unique = 0;
    const name = (length: number) => {
      const tag = String(unique++).padStart(10, '0');
      return `${tag}${'x'.repeat(length - tag.length)}`;
    };
    // A warm-up round, so the heap figure does not count code and caches that exist anyway.
    const round = async (bytes: number) => {
      let sent = 0;
      while (sent < bytes) {
        const uri = `fixture://items/${name(8000)}`;
        const tool = `secret${name(100)}`;
        // Longer than any catalog name can be, and named by a rule: refused before anything looks at it.
        const longTool = `secret${name(64 * 1024)}`;
        const prompt = `secret${name(100)}`;
        const longPrompt = `secret${name(64 * 1024)}`;
        const responses = await Promise.all([
          send('resources/read', { uri }, uri),
          send('tools/call', { name: tool, arguments: {} }, tool),
          send('tools/call', { name: longTool, arguments: {} }, longTool),
          send('prompts/get', { name: prompt }, prompt),
          request(server, `/tools/${encodeURIComponent(longTool)}`, {
            headers: { authorization: `Bearer ${KEY}` },
          }),
          request(server, `/resources/${encodeURIComponent(uri)}`, {
            headers: { authorization: `Bearer ${KEY}` },
          }),
        ]);
        for (const response of responses) {
          const text = await response.text();
          // Refused, and the refusal never carries the name back.
          expect(text.length).toBeLessThan(600);
        }
        sent += uri.length * 2 + tool.length + longTool.length * 2 + prompt.length + longPrompt.length * 2;
      }
    };
    await round(4 * 1024 * 1024);
    const before = heapAfterGc();
    await round(96 * 1024 * 1024);
    const after = heapAfterGc();
    const grownMiB = (after - before) / (1024 * 1024);
    // The audit ring keeps its last 1,000 refusals (bounded entries); nothing else stays.
    expect(audit.events().length).toBe(1000);
    expect(grownMiB).toBeLessThan(8);
    await server.close();
  }, 120_000);
});
