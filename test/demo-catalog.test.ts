/**
 * The demo catalog's answers to input it cannot use (issue 23, item 5): the calculator answered "2+"
 * after three attempts and about 550 ms of backoff, as an INTERNAL failure.
 */
import { createMcpServer } from 'mcpkit';
import { request } from 'mcpkit/testing';
import { ATTEMPTS_META_KEY, ERROR_META_KEY } from 'mcpkit/unstable';
import { describe, expect, it } from 'vitest';
import { registerDemoCatalog } from '../examples/demo-catalog.js';

function demo() {
  const server = createMcpServer({ name: 'demo', version: '1.0.0', logLevel: 'silent' });
  registerDemoCatalog(server);
  const retries: string[] = [];
  server.executor.on('retry', (e) => retries.push(e.tool));
  return { server, retries };
}

describe('examples/demo-catalog.ts', () => {
  it('answers an expression it cannot evaluate with INVALID_ARGUMENT, in one attempt', async () => {
    const { server, retries } = demo();
    const cases: Array<[string, string]> = [
      ['2+', 'Invalid expression: unexpected end of expression'],
      ['(1', 'Invalid expression: expected ")"'],
      ['2 $ 3', 'Invalid expression: unexpected "$"'],
      ['1/0', 'Invalid expression: the result is not a finite number'],
    ];
    for (const [expression, message] of cases) {
      const result = await server.executor.execute('calculate', { expression });
      expect(result.isError, expression).toBe(true);
      expect(result._meta?.[ERROR_META_KEY], expression).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(result._meta?.[ATTEMPTS_META_KEY], expression).toBeUndefined();
      expect(result.content[0], expression).toMatchObject({
        text: expect.stringMatching(new RegExp(`^${message.replace(/[()$]/g, '\\$&')} \\(error id`)),
      });
    }
    expect(retries).toEqual([]);
    expect(await server.executor.execute('calculate', { expression: '2 * (3 + 4)' })).toMatchObject({
      structuredContent: { expression: '2 * (3 + 4)', value: 14 },
    });
  });

  it('answers units of different quantities with INVALID_ARGUMENT, in one attempt', async () => {
    const { server, retries } = demo();
    const result = await server.executor.execute('convert_units', { value: 1, from: 'c', to: 'kg' });
    expect(result._meta?.[ERROR_META_KEY]).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(result._meta?.[ATTEMPTS_META_KEY]).toBeUndefined();
    expect(retries).toEqual([]);
  });

  it('answers "2+" over REST with a 400 problem at once', async () => {
    const { server, retries } = demo();
    const response = await request(server, '/tools/calculate/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { expression: '2+' } }),
    });
    expect(response.status).toBe(400);
    const problem = await response.json();
    expect(problem).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(problem.detail).toMatch(/^Invalid expression: unexpected end of expression/);
    expect(retries).toEqual([]);
  });
});
