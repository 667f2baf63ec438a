/**
 * `GET /docs`: the interactive API reference. In process: the page and its two files are public and
 * carry their CSP, nothing else of Swagger UI's folder is reachable, Host/Origin still apply, the
 * document behind it still needs a key, it turns off, and a missing package gets a clear page. Then
 * on every real mount (listen, Express, Fastify, Hono), and in a real Chromium: the page renders the
 * tools routes, a "try it" call of `POST /tools/{name}/execute` succeeds with a key and shows the 401
 * without one.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMcpServer, loadEnvConfig } from 'mcpkit';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, MOUNTS, type Mount, openMount, PUBLIC_HOST, rawRequest } from './doors.js';
import { whichProgram } from './support/systemPackages.js';

const KEY = 'docs-page-admin-key-0123456789abcdef';

function server(options: Parameters<typeof createMcpServer>[0] = {}) {
  return createMcpServer({
    name: 'docs-test',
    logLevel: 'silent',
    auth: { apiKeys: [{ id: 'ops', roles: ['admin'], key: KEY }] },
    ...options,
  });
}

const get = (s: ReturnType<typeof server>, path: string, headers: Record<string, string> = {}) =>
  s.fetch(new Request(`http://localhost${path}`, { headers }));

describe('/docs in process', () => {
  it('serves the page and its files without a key, with a CSP that allows no inline script', async () => {
    const s = server();
    const page = await get(s, '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).not.toMatch(/<script>/); // every script is a file of its own
    expect(html).toContain('src="/docs/swagger-ui-bundle.js"');
    expect(html).toContain('data-openapi="/openapi.json"');
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
    const css = await get(s, '/docs/swagger-ui.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await css.text()).length).toBeGreaterThan(10_000);
    const bundle = await get(s, '/docs/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const init = await get(s, '/docs/mcpkit-docs.js');
    expect(await init.text()).toContain('SwaggerUIBundle');
    // The files are validated: a second load costs a 304.
    const again = await get(s, '/docs/swagger-ui.css', { 'if-none-match': css.headers.get('etag') ?? '' });
    expect(again.status).toBe(304);
    // The data is not public: the document the page shows needs a key.
    expect((await get(s, '/openapi.json')).status).toBe(401);
    expect((await get(s, '/openapi.json', { authorization: `Bearer ${KEY}` })).status).toBe(200);
    await s.close();
  });

  it('serves no other file, whatever the spelling', async () => {
    const s = server();
    for (const name of [
      'package.json',
      'index.html',
      'swagger-ui-bundle.js.map',
      '..%2Fpackage.json',
      '%2e%2e%2fpackage.json',
      'swagger-ui.css%00.js',
      '__proto__',
      'constructor',
    ]) {
      const answer = await get(s, `/docs/${name}`);
      expect(answer.status, name).toBe(404);
      const text = await answer.text();
      expect(text).not.toContain('node_modules');
      expect(text).not.toContain(process.cwd());
    }
    // A path with more segments is no route at all, and needs a key like any unknown route.
    expect((await get(s, '/docs/a/b')).status).toBe(401);
    expect((await get(s, '/docs/a/b', { authorization: `Bearer ${KEY}` })).status).toBe(404);
    await s.close();
  });

  it('refuses a foreign Host and Origin like every door', async () => {
    const s = server();
    const foreign = await s.fetch(
      new Request('http://evil.example/docs', { headers: { host: 'evil.example' } }),
    );
    expect(foreign.status).toBe(403);
    const origin = await get(s, '/docs/swagger-ui.css', { origin: 'http://evil.example' });
    expect(origin.status).toBe(403);
    await s.close();
  });

  it('turns off with docs: false or MCP_DOCS=off', async () => {
    const off = server({ docs: false });
    expect((await get(off, '/docs')).status).toBe(404);
    expect((await get(off, '/docs/swagger-ui.css')).status).toBe(404);
    await off.close();
    expect(loadEnvConfig({ MCP_DOCS: 'OFF' }).docs).toBe(false);
    expect(loadEnvConfig({ MCP_DOCS: 'yes' }).docs).toBe(true);
    expect(() => loadEnvConfig({ MCP_DOCS: 'maybe' })).toThrow(
      /MCP_DOCS must be on or off .* \(got "maybe"\)/,
    );
    const saved = process.env.MCP_DOCS;
    process.env.MCP_DOCS = 'off';
    try {
      const env = server();
      expect((await get(env, '/docs')).status).toBe(404);
      await env.close();
      const code = server({ docs: true }); // code wins over the environment
      expect((await get(code, '/docs')).status).toBe(200);
      await code.close();
    } finally {
      if (saved === undefined) delete process.env.MCP_DOCS;
      else process.env.MCP_DOCS = saved;
    }
  });

  it('says what to install when Swagger UI is missing, without naming a path', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'mcpkit-docs-'));
    writeFileSync(join(empty, 'swagger-ui.css'), 'body{}');
    const s = server({ docs: { assetsDir: empty } });
    const page = await get(s, '/docs');
    expect(page.status).toBe(503);
    const html = await page.text();
    expect(html).toContain('npm install swagger-ui-dist@5');
    expect(html).toContain('MCP_DOCS=off');
    expect(html).not.toContain(empty);
    const file = await get(s, '/docs/swagger-ui-bundle.js');
    expect(file.status).toBe(503);
    const problem = await file.json();
    expect(problem.detail).toContain('npm install swagger-ui-dist@5');
    expect(JSON.stringify(problem)).not.toContain(empty);
    await s.close();
    expect(() => server({ docs: { assetsDir: '' } })).toThrow(/docs.assetsDir must be a folder path/);
  });

  it('links its files under the mount point', async () => {
    const s = server({ http: { basePath: '/api' } });
    const html = await (await get(s, '/api/docs')).text();
    expect(html).toContain('src="/api/docs/swagger-ui-bundle.js"');
    expect(html).toContain('data-openapi="/api/openapi.json"');
    expect((await get(s, '/api/docs/swagger-ui.css')).status).toBe(200);
    await s.close();
  });
});

describe.each(MOUNTS)('/docs on %s', (name) => {
  let mount: Mount;
  beforeAll(async () => {
    mount = await openMount(name);
  });
  afterAll(() => mount.close());

  it('serves the page and files without a key, refuses a foreign Host, keeps the document behind a key', async () => {
    const page = await rawRequest(mount.port, { path: '/docs' });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const css = await rawRequest(mount.port, { path: '/docs/swagger-ui.css' });
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await rawRequest(mount.port, { path: '/docs', headers: { host: 'evil.example' } })).status).toBe(
      403,
    );
    expect((await rawRequest(mount.port, { path: '/docs', headers: { host: PUBLIC_HOST } })).status).toBe(
      200,
    );
    expect((await rawRequest(mount.port, { path: '/docs/package.json' })).status).toBe(404);
    expect((await rawRequest(mount.port, { path: '/openapi.json' })).status).toBe(401);
    const doc = await rawRequest(mount.port, {
      path: '/openapi.json',
      headers: { authorization: `Bearer ${KEYS.admin}` },
    });
    expect(doc.status).toBe(200);
  });
});

describe('/docs in Chromium', () => {
  let mount: Mount;
  beforeAll(async () => {
    mount = await openMount('listen');
  });
  afterAll(() => mount.close());

  it('renders the tools routes; "try it" succeeds with a key and shows the 401 without one', async () => {
    const executablePath = whichProgram('chromium');
    expect(executablePath, 'chromium is installed by the global setup').toBeDefined();
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' && /Content Security Policy|Refused/i.test(message.text())) {
          problems.push(message.text());
        }
      });
      page.on('pageerror', (error) => problems.push(error.message));
      await page.goto(`${mount.base}/docs`);
      await page.getByText('This server needs an API key').waitFor();

      await page.fill('#mcpkit-docs-key', KEYS.admin);
      await page.click('#mcpkit-docs-form button[type=submit]');
      const execute = page.locator('#operations-tools-executeTool, .opblock').filter({
        has: page.locator('.opblock-summary-path[data-path="/tools/{name}/execute"]'),
      });
      await execute.first().waitFor();
      expect(await page.locator('.opblock-summary-path[data-path="/tools"]').count()).toBeGreaterThan(0);

      const operation = execute.first();
      await operation.locator('.opblock-summary').click();
      await operation.locator('tr[data-param-name="name"] input').fill('public.echo');
      await operation
        .locator('textarea.body-param__text')
        .fill('{"arguments": {"text": "from the browser"}}');
      const ok = page.waitForResponse((r) => r.url().endsWith('/tools/public.echo/execute'));
      await operation.locator('button.execute').click();
      expect((await ok).status()).toBe(200);
      await operation.locator('.live-responses-table .response-col_status').getByText('200').waitFor();
      expect(await operation.locator('.live-responses-table').textContent()).toContain('from the browser');
      const shot = process.env.MCPKIT_SCREENSHOT
        ? join(process.cwd(), 'docs', 'api-docs.png')
        : join(mkdtempSync(join(tmpdir(), 'mcpkit-docs-shot-')), 'api-docs.png');
      const png = await page.screenshot({ path: shot });
      expect(png.subarray(1, 4).toString()).toBe('PNG');

      // Without the key, the same call is refused, and the page shows the 401.
      await page.fill('#mcpkit-docs-key', '');
      await page.click('#mcpkit-docs-form button[type=submit]');
      const refused = page.waitForResponse((r) => r.url().endsWith('/tools/public.echo/execute'));
      await operation.locator('button.execute').click();
      expect((await refused).status()).toBe(401);
      await operation.locator('.live-responses-table .response-col_status').getByText('401').waitFor();
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
