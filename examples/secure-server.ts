/**
 * The demo server with the policy layer on (docs/security.md): API keys from the environment, a
 * custom role, a rule reserving a dangerous tool for admin, rate limits, and an audit log kept in
 * memory (GET /audit) and written to stderr as JSON lines. Listens on loopback only.
 *
 *   MCPKIT_API_KEY=$(openssl rand -hex 32) npx tsx examples/secure-server.ts
 *
 * Environment:
 *   MCPKIT_API_KEY     required, at least 16 characters: the admin key (everything)
 *   MCPKIT_VIEWER_KEY  optional: a read-only key (custom role "observer": lists the catalog, reads
 *                      /metrics, /logs, /summary and /audit; runs nothing)
 *   MCPKIT_USER_KEY    optional: a key with the built-in "user" role (runs tools, but not the ones
 *                      the rule reserves for admin)
 *   MCPKIT_TRUST_PROXY optional: proxies to believe about the client's address and host when the
 *                      server sits behind one, comma-separated (`loopback`, `private`, addresses,
 *                      CIDR ranges); unset believes only the connection
 *   PORT               default 3000
 */
import { createMcpServer, jsonLinesAuditSink, MemoryAuditSink } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { z } from 'zod';
import { registerDemoCatalog } from './demo-catalog.js';

const MIN_KEY_LENGTH = 16;

function fail(message: string): never {
  process.stderr.write(`secure-server: ${message}\n`);
  process.exit(1);
}

/** The key in `name`, or `undefined` when unset; refuses to start on a key too short to be one. */
function keyFrom(name: string, required: boolean): string | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (!required) return undefined;
    fail(
      `${name} is not set. Set it to a secret of at least ${MIN_KEY_LENGTH} characters, for example:\n` +
        `  export ${name}=$(openssl rand -hex 32)`,
    );
  }
  if (value.length < MIN_KEY_LENGTH) {
    fail(`${name} is ${value.length} characters long; use at least ${MIN_KEY_LENGTH} (openssl rand -hex 32)`);
  }
  return value;
}

const adminKey = keyFrom('MCPKIT_API_KEY', true)!;
const viewerKey = keyFrom('MCPKIT_VIEWER_KEY', false);
const userKey = keyFrom('MCPKIT_USER_KEY', false);
// Two keys with the same secret would make one caller the other: refuse rather than guess.
const secrets = [adminKey, viewerKey, userKey].filter((k) => k !== undefined);
if (new Set(secrets).size !== secrets.length)
  fail('MCPKIT_API_KEY, MCPKIT_VIEWER_KEY and MCPKIT_USER_KEY must differ');

const audit = new MemoryAuditSink(1000);
const server = createMcpServer({
  name: 'mcpkit-secure',
  version: '0.1.0',
  logLevel: 'warn',
  instructions: 'Demo server behind API keys: a calculator, a unit converter, text statistics, notes.',
  auth: {
    apiKeys: [
      { id: 'admin', roles: ['admin'], key: adminKey },
      ...(viewerKey ? [{ id: 'viewer', roles: ['observer'], key: viewerKey }] : []),
      ...(userKey ? [{ id: 'user', roles: ['user'], key: userKey }] : []),
    ],
  },
  roles: {
    observer: {
      description: 'Reads the catalog and the operations endpoints; runs nothing',
      permissions: ['tools:read', 'resources:read', 'prompts:read', 'admin:read'],
    },
  },
  // Whatever their permissions, only admin callers see or run the purge.
  rules: [{ tools: ['notes_purge'], roles: ['admin'] }],
  // Requests per minute and key (per client address for anonymous callers).
  rateLimit: { execute: 60, read: 600, manage: 10, completions: 10 },
  audit: { sinks: [audit, jsonLinesAuditSink(process.stderr)] },
  http: {
    trustProxy: process.env.MCPKIT_TRUST_PROXY ? process.env.MCPKIT_TRUST_PROXY.split(',') : false,
  },
});
registerDemoCatalog(server);

// A tiny note store, with the dangerous tool the rule reserves for admin.
const notes: string[] = [];
server.tools.register({
  name: 'note_add',
  description: 'Keep a short note in memory.',
  inputSchema: { text: z.string().min(1).max(1000) },
  handler: ({ text }) => {
    notes.push(text);
    return { count: notes.length };
  },
});
server.tools.register({
  name: 'notes_list',
  description: 'List the notes kept so far.',
  annotations: { readOnlyHint: true },
  handler: () => ({ notes }),
});
server.tools.register({
  name: 'notes_purge',
  description: 'Delete every note. Admin only.',
  annotations: { destructiveHint: true },
  handler: () => {
    const deleted = notes.length;
    notes.length = 0;
    return { deleted };
  },
});

const port = Number(process.env.PORT ?? 3000);
const listening = await listen(server, { port, host: '127.0.0.1' });
const url = listening.url;

process.stderr.write(`mcpkit secure server listening on ${url}/mcp (loopback only)

Keys: admin${viewerKey ? ', viewer (observer role, read-only)' : ''}${userKey ? ', user' : ''}. Every route but /health needs one:
  curl -s ${url}/health
  curl -s ${url}/tools -H "Authorization: Bearer $MCPKIT_API_KEY"
  curl -s ${url}/tools/calculate/execute -H "Authorization: Bearer $MCPKIT_API_KEY" \\
       -H 'content-type: application/json' -d '{"arguments":{"expression":"6*7"}}'
  curl -s ${url}/audit -H "Authorization: Bearer $MCPKIT_API_KEY"
MCP clients: ${url}/mcp with the header "Authorization: Bearer <key>" (or X-API-Key: <key>).
Audit events follow on stderr, one JSON line each. Press Ctrl+C to stop.
`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void listening.close().then(() => process.exit(0));
  });
}
