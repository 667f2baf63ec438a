/**
 * `GET /docs`: an interactive reference of the REST API, drawn by Swagger UI (the `swagger-ui-dist`
 * package, an optional peer) from the server's own `/openapi.json`. mcpkit serves the page and
 * Swagger UI's files itself, so it works without internet. The page and its files are public; the
 * document it shows and every call it makes carry the API key the reader types in, through the same
 * authentication as any other request.
 *
 * Node's modules are reached through `process.getBuiltinModule` (Node ≥ 20.16), so the root entry
 * stays runtime-neutral; elsewhere, and when the package is missing, the page says what to do.
 */
import { McpKitError } from '../core/errors.js';

/** Options of the `/docs` page (`createMcpServer({ docs })`). */
export interface DocsOptions {
  /**
   * The folder holding Swagger UI's files (`swagger-ui-bundle.js`, `swagger-ui.css`). Default: the
   * `swagger-ui-dist` package, resolved from the working directory, then from the main script's.
   */
  assetsDir?: string;
  /** The page's title. Default: the server's title or name, then "API reference". */
  title?: string;
}

/** One file the page loads: its bytes, content type and validator. */
interface Asset {
  readonly body: Uint8Array;
  readonly type: string;
  readonly etag: string;
}

/** Swagger UI's files the page uses, with their types; nothing else of the folder is ever served. */
const VENDOR_FILES: Readonly<Record<string, string>> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
};

/** The script that starts Swagger UI: a file of its own, so the page's CSP allows no inline script. */
const INIT_FILE = 'mcpkit-docs.js';

/** The package to install, named in every message about it. */
export const DOCS_PACKAGE = 'swagger-ui-dist';

/**
 * The page's headers: no script but the page's own files, calls only to this origin, never framed.
 * Swagger UI sets inline styles, hence `'unsafe-inline'` for styles (never for scripts).
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const;

/** What starts Swagger UI: the key lives in the tab's sessionStorage and goes only to this origin. */
const INIT_SCRIPT = `'use strict';
(function () {
  var root = document.getElementById('mcpkit-docs');
  var status = document.getElementById('mcpkit-docs-status');
  var input = document.getElementById('mcpkit-docs-key');
  var STORE = 'mcpkit-docs-api-key';
  var key = '';
  try { key = sessionStorage.getItem(STORE) || ''; } catch (e) {}
  input.value = key;
  function remember(value) {
    key = value.trim();
    try { if (key) sessionStorage.setItem(STORE, key); else sessionStorage.removeItem(STORE); } catch (e) {}
  }
  function sameOrigin(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
  }
  function load() {
    status.textContent = 'Loading the API description…';
    var headers = key ? { authorization: 'Bearer ' + key } : {};
    fetch(root.dataset.openapi, { headers: headers, credentials: 'omit' }).then(function (response) {
      if (response.status === 401 || response.status === 403) {
        status.textContent = response.status === 401
          ? 'This server needs an API key to show its API: enter one above.'
          : 'This key may not read the API description (it needs tools:read).';
        return undefined;
      }
      if (!response.ok) { status.textContent = 'The API description could not be loaded (HTTP ' + response.status + ').'; return undefined; }
      return response.json();
    }).then(function (spec) {
      if (!spec) return;
      status.textContent = '';
      window.SwaggerUIBundle({
        spec: spec,
        dom_id: '#swagger-ui',
        deepLinking: false,
        tryItOutEnabled: true,
        validatorUrl: null,
        requestInterceptor: function (request) {
          if (key && sameOrigin(request.url)) request.headers.authorization = 'Bearer ' + key;
          return request;
        },
      });
    }, function () { status.textContent = 'The API description could not be loaded.'; });
  }
  document.getElementById('mcpkit-docs-form').addEventListener('submit', function (event) {
    event.preventDefault();
    remember(input.value);
    load();
  });
  load();
})();
`;

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** A weak validator from a file's size and a cheap hash of its bytes (FNV-1a over a sample). */
function etagOf(body: Uint8Array): string {
  let hash = 0x811c9dc5;
  const step = Math.max(1, Math.floor(body.length / 4096));
  for (let i = 0; i < body.length; i += step) hash = Math.imul(hash ^ (body[i] as number), 0x01000193) >>> 0;
  return `W/"${body.length.toString(36)}-${hash.toString(36)}"`;
}

type NodeFs = { readFileSync(path: string): Uint8Array; existsSync(path: string): boolean };
type NodeModule = { createRequire(path: string): { resolve(id: string): string } };
type NodePath = { join(...parts: string[]): string; dirname(path: string): string };

function builtin<T>(id: string): T | undefined {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    ?.getBuiltinModule;
  return get?.(id) as T | undefined;
}

/** Where `swagger-ui-dist` is installed, looked up from the working directory, then the main script's. */
function findAssetsDir(): string | undefined {
  const mod = builtin<NodeModule>('node:module');
  const path = builtin<NodePath>('node:path');
  const proc = (globalThis as { process?: { cwd?: () => string; argv?: string[] } }).process;
  if (!mod || !path || !proc?.cwd) return undefined;
  const bases = [path.join(proc.cwd(), 'index.js')];
  const main = proc.argv?.[1];
  if (main) bases.push(main);
  for (const base of bases) {
    try {
      return path.dirname(mod.createRequire(base).resolve(`${DOCS_PACKAGE}/package.json`));
    } catch {
      // not found from there: try the next place
    }
  }
  return undefined;
}

/**
 * The `/docs` page and its files. Files are read once, on their first request, and kept (about
 * 2 MB); a missing package is looked for again on the next request, so installing it needs no
 * restart.
 *
 * @example
 * ```ts
 * const docs = new DocsPage({ assetsDir: '/opt/app/node_modules/swagger-ui-dist' });
 * const page = docs.page('/api', 'My API'); // the HTML of /api/docs
 * ```
 */
export class DocsPage {
  readonly #options: DocsOptions;
  readonly #assets = new Map<string, Asset>();
  #dir: string | undefined;
  #found = false;

  constructor(options: DocsOptions = {}) {
    if (
      options.assetsDir !== undefined &&
      (typeof options.assetsDir !== 'string' || options.assetsDir === '')
    ) {
      throw new TypeError('docs.assetsDir must be a folder path');
    }
    if (options.title !== undefined && typeof options.title !== 'string') {
      throw new TypeError('docs.title must be a string');
    }
    this.#options = options;
    this.#dir = options.assetsDir;
  }

  /** The page served at `<base>/docs`, for a server called `name`. */
  page(base: string, name: string): Response {
    const title = escapeHtml(this.#options.title ?? `${name} — API reference`);
    const at = escapeHtml(base);
    const available = this.#available();
    const body = available
      ? `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="${at}/docs/swagger-ui.css">
</head><body>
<header style="font-family: sans-serif; padding: 12px 20px; border-bottom: 1px solid #ddd">
<form id="mcpkit-docs-form" style="display: flex; gap: 8px; align-items: center">
<strong style="margin-right: auto">${title}</strong>
<label for="mcpkit-docs-key">API key</label>
<input id="mcpkit-docs-key" type="password" autocomplete="off" spellcheck="false" size="36">
<button type="submit">Use key</button></form>
<p id="mcpkit-docs-status" role="status" style="margin: 8px 0 0"></p></header>
<div id="mcpkit-docs" data-openapi="${at}/openapi.json"></div><div id="swagger-ui"></div>
<script src="${at}/docs/swagger-ui-bundle.js"></script><script src="${at}/docs/${INIT_FILE}"></script>
</body></html>`
      : `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>API reference not installed</h1>
<p>This page draws the API from <a href="${at}/openapi.json">openapi.json</a> with Swagger UI, which mcpkit
serves itself. Install it beside mcpkit and reload: <code>npm install ${DOCS_PACKAGE}@5</code></p>
<p>To turn this page off, pass <code>docs: false</code> to <code>createMcpServer</code> or set <code>MCP_DOCS=off</code>.</p>
</body></html>`;
    return new Response(body, {
      status: available ? 200 : 503,
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...PAGE_HEADERS },
    });
  }

  /** One of the page's files, by name; 404 for any other name. */
  asset(name: string, ifNoneMatch: string | null): Response {
    const asset = this.#asset(name);
    const headers = {
      'content-type': asset.type,
      etag: asset.etag,
      'cache-control': 'public, max-age=3600',
      ...PAGE_HEADERS,
    };
    if (ifNoneMatch?.split(',').some((tag) => tag.trim() === asset.etag)) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(asset.body as Uint8Array<ArrayBuffer>, { status: 200, headers });
  }

  #available(): boolean {
    // Found once, kept; a missing package is looked for again on the next request.
    if (this.#found) return true;
    this.#dir ??= findAssetsDir();
    const fs = builtin<NodeFs>('node:fs');
    const path = builtin<NodePath>('node:path');
    this.#found = !!(this.#dir && fs && path && fs.existsSync(path.join(this.#dir, 'swagger-ui-bundle.js')));
    return this.#found;
  }

  #asset(name: string): Asset {
    const cached = this.#assets.get(name);
    if (cached) return cached;
    let asset: Asset;
    if (name === INIT_FILE) {
      const body = new TextEncoder().encode(INIT_SCRIPT);
      asset = { body, type: 'text/javascript; charset=utf-8', etag: etagOf(body) };
    } else {
      const type = Object.hasOwn(VENDOR_FILES, name) ? VENDOR_FILES[name] : undefined;
      if (type === undefined) throw new McpKitError('NOT_FOUND', 'No such file of the docs page');
      const fs = builtin<NodeFs>('node:fs');
      const path = builtin<NodePath>('node:path');
      if (!this.#available() || !fs || !path || !this.#dir) {
        throw new McpKitError(
          'UNAVAILABLE',
          `The docs page needs ${DOCS_PACKAGE}: npm install ${DOCS_PACKAGE}@5`,
        );
      }
      let body: Uint8Array;
      try {
        body = fs.readFileSync(path.join(this.#dir, name));
      } catch {
        // A damaged install: say what to do, never where the files are.
        throw new McpKitError('UNAVAILABLE', `The docs page cannot read ${DOCS_PACKAGE}: reinstall it`);
      }
      asset = { body, type, etag: etagOf(body) };
    }
    this.#assets.set(name, asset);
    return asset;
  }
}
