/**
 * An upstream that fails by echoing what it was sent (its credential included): the failure shown
 * in the integration's state and the server's log never carries the integration's secrets
 * (regression: the upstream's error text was kept as it came).
 */
import { createServer } from 'node:http';
import { createMcpServer, type Logger } from 'mcpkit';
import { request } from 'mcpkit/testing';
import { afterEach, expect, it, vi } from 'vitest';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("redacts the integration's secrets from an upstream's failure", async () => {
  const key = 'zq7-echoed-credential-4815162342';
  const echo = createServer((req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `invalid credential: ${req.headers.authorization}` }));
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => echo.close(resolve)));
  const port = (echo.address() as { port: number }).port;
  const logged: string[] = [];
  const keep = (obj: unknown, msg?: string) => {
    logged.push(JSON.stringify(obj) + (msg ?? ''));
  };
  const logger = { trace: keep, debug: keep, info: keep, warn: keep, error: keep, fatal: keep } as Record<
    string,
    unknown
  >;
  logger.child = () => logger;
  const gateway = createMcpServer({
    logger: logger as unknown as Logger,
    outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
  });
  cleanups.push(() => gateway.close());
  const created = await request(gateway, '/integrations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'echoing',
      name: 'Echoing',
      upstream: {
        url: `http://127.0.0.1:${port}/mcp`,
        headers: { Authorization: 'Bearer {{secrets.TOKEN}}' },
      },
      secrets: { TOKEN: key },
    }),
  });
  expect(created.status).toBe(201);
  await vi.waitFor(
    () => expect(gateway.integrations.get('echoing')?.upstreamState?.lastError).toEqual(expect.any(String)),
    { timeout: 10_000, interval: 20 },
  );
  const shown = await (await request(gateway, '/integrations/echoing')).text();
  expect(shown).toContain('lastError');
  expect(shown).not.toContain(key);
  expect(logged.join('\n')).not.toContain(key);
});
