/**
 * Completions and the policy layer: the model's tool calls pass the same check as a tool called over
 * REST or MCP (permission, visibility, the caller's `execute` tokens), and who may reach a job is the
 * policy's decision, with or without a policy configured.
 */
import { createMcpServer, type McpKitServer, MemoryAuditSink } from 'mcpkit';
import { createModelServer, type ModelServer } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureServer } from './fixtures.js';

const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };

let model: ModelServer | undefined;
let server: McpKitServer | undefined;
afterEach(async () => {
  await server?.close();
  await model?.close();
  model = undefined;
  server = undefined;
});

const modelOf = (m: ModelServer) => ({ provider: 'custom', model: 'm', apiKey: 'k', baseUrl: `${m.url}/v1` });

describe("a model's tool calls pass the policy's call check", () => {
  it('refuses an offered tool the caller may not execute, and audits it as a denial', async () => {
    model = await createModelServer({
      turns: [{ toolCalls: [{ name: 'echo', arguments: { text: 'hi' } }] }, { text: 'done' }],
    });
    const audit = new MemoryAuditSink();
    server = fixtureServer({
      roles: { asker: { permissions: ['completions:create', 'tools:read'] } },
      audit: { sinks: [audit] },
      completions: { allowInlineBaseUrl: true },
      outbound: LOOPBACK,
    });
    const job = await server.completions.run(
      { model: modelOf(model), messages: [{ role: 'user', content: 'go' }], tools: ['echo'] },
      { caller: { id: 'asker', roles: ['asker'] }, origin: 'rest' },
    );
    expect(job.status).toBe('succeeded');
    // Offered (the caller sees it), but running it is checked as the caller's own call.
    expect(model.requests[0]!.body.tools.map((t: any) => t.function.name)).toEqual(['echo']);
    const call = job.steps[0]!.toolCalls[0]!;
    expect(call).toMatchObject({ name: 'echo', isError: true });
    expect(call.result).toContain('needs the tools:execute permission');
    expect(audit.events({ action: 'permission.denied', callerId: 'asker' })).not.toHaveLength(0);
  });

  it("spends the caller's execute tokens: past them, a call is rate limited", async () => {
    model = await createModelServer({
      turns: [
        {
          toolCalls: [
            { name: 'echo', arguments: { text: 'one' } },
            { name: 'echo', arguments: { text: 'two' } },
          ],
        },
        { text: 'done' },
      ],
    });
    server = fixtureServer({
      rateLimit: { execute: 1 },
      completions: { allowInlineBaseUrl: true },
      outbound: LOOPBACK,
    });
    const job = await server.completions.run(
      { model: modelOf(model), messages: [{ role: 'user', content: 'go' }], tools: ['echo'] },
      { caller: { id: 'u', roles: ['user'] }, origin: 'rest' },
    );
    const calls = job.steps[0]!.toolCalls;
    expect(calls.map((c) => c.isError === true).sort()).toEqual([false, true]);
    expect(calls.find((c) => c.isError)!.result).toMatch(/Rate limit exceeded for execute/);
  });
});

describe('who may reach a job is the policy’s decision', () => {
  it('without any policy configured: its owner and admins, nobody else', async () => {
    model = await createModelServer({ turns: [{ text: 'done' }] });
    server = createMcpServer({ logLevel: 'silent', outbound: LOOPBACK });
    const job = await server.completions.run(
      { model: modelOf(model), messages: [{ role: 'user', content: 'hi' }] },
      { caller: { id: 'ada', roles: ['user'] } },
    );
    const get = (caller: { id: string; roles: string[] }) => server!.completions.get(job.id, { caller });
    expect(get({ id: 'ada', roles: ['user'] })?.id).toBe(job.id);
    expect(get({ id: 'bob', roles: ['user'] })).toBeUndefined();
    expect(get({ id: 'root', roles: ['admin'] })?.id).toBe(job.id);
    expect(server.completions.cancel(job.id, { caller: { id: 'bob', roles: ['user'] } })).toBeUndefined();
    expect(server.completions.get(job.id)?.id).toBe(job.id);
  });

  it('a job started without a caller is reached by admins only', async () => {
    model = await createModelServer({ turns: [{ text: 'done' }] });
    server = createMcpServer({ logLevel: 'silent', outbound: LOOPBACK });
    const job = await server.completions.run({
      model: modelOf(model),
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(server.completions.get(job.id, { caller: { id: 'ada', roles: ['user'] } })).toBeUndefined();
    expect(server.completions.get(job.id, { caller: { id: 'root', roles: ['admin'] } })?.id).toBe(job.id);
    expect(server.policy.reachesWorkOf({ id: 'ada' }, undefined)).toBe(false);
  });
});
