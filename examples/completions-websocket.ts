/**
 * Completions over WebSocket in a browser: serves a page (GET /) that streams a completion over one
 * socket with `mcpkit/client` (subprotocol `mcpkit.completions`, on the same port and path as MCP)
 * and can cancel it, beside the MCP and REST routes of the same server. The model is the loopback
 * model of `mcpkit/testing` (it streams a slow, scripted answer), or OpenAI when OPENAI_API_KEY is
 * set; the browser never sees the model's key: `resolveModel` picks the model on the server.
 *
 *   npx tsx examples/completions-websocket.ts            # then open the URL it prints
 *   MCPKIT_API_KEY=$(openssl rand -hex 32) PORT=4000 npx tsx examples/completions-websocket.ts
 *
 * Environment:
 *   MCPKIT_API_KEY  optional: a key the page must present (typed into its key field); unset, the
 *                   server takes no credentials (local development)
 *   OPENAI_API_KEY  optional: use OpenAI (gpt-4o-mini) instead of the loopback model
 *   PORT, HOST      default 3000, 127.0.0.1
 *
 * The page loads the client as an ES module bundled from `mcpkit/client` by esbuild when the server
 * starts; an application would bundle it with the rest of its front end.
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type CompletionModelConfig, createMcpServer } from 'mcpkit';
import { attachWebSocket, toNodeListener } from 'mcpkit/node';
import { createModelServer } from 'mcpkit/testing';
import { registerDemoCatalog } from './demo-catalog.js';

const apiKey = process.env.MCPKIT_API_KEY || undefined;

/** The model: OpenAI with a key, else a loopback model that streams a long answer slowly. */
async function chooseModel(): Promise<{ model: CompletionModelConfig; close: () => Promise<void> }> {
  if (process.env.OPENAI_API_KEY) {
    return {
      model: { provider: 'openai', model: 'gpt-4o-mini', apiKey: process.env.OPENAI_API_KEY },
      close: async () => {},
    };
  }
  const loopback = await createModelServer({
    chunkSize: 6,
    fallback: (request) => {
      const asked = request.body.messages.at(-1)?.content ?? '';
      return {
        text: `You asked: "${String(asked).slice(0, 200)}". This answer streams over a WebSocket, a few characters at a time, so you can watch it arrive and cancel it before it ends.`,
        chunkDelayMs: 40,
      };
    },
  });
  return {
    model: { provider: 'openai', model: 'loopback', apiKey: 'loopback', baseUrl: `${loopback.url}/v1` },
    close: () => loopback.close(),
  };
}

const { model, close: closeModel } = await chooseModel();
const server = createMcpServer({
  name: 'mcpkit-completions-websocket',
  version: '0.1.0',
  logLevel: 'warn',
  // The loopback model listens on 127.0.0.1, which the outbound policy refuses unless told.
  outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
  ...(apiKey && { auth: { apiKeys: [{ id: 'browser', key: apiKey, roles: ['user'] }] } }),
  completions: { resolveModel: () => model },
});
registerDemoCatalog(server);

const root = fileURLToPath(new URL('..', import.meta.url));
const bundled = await build({
  stdin: { contents: "export * from 'mcpkit/client';", resolveDir: root, loader: 'ts' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  write: false,
  logLevel: 'silent',
});
const clientModule = bundled.outputFiles[0]!.text;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mcpkit: completions over WebSocket</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  input, textarea { width: 100%; box-sizing: border-box; font: inherit; }
  #output { white-space: pre-wrap; border: 1px solid #ccc; padding: .75rem; min-height: 6rem; }
  #status { color: #555; }
</style>
</head>
<body>
<h1>Completions over WebSocket</h1>
<label>API key (if the server asks for one) <input id="key" type="password" autocomplete="off"></label>
<label>Prompt <textarea id="prompt" rows="3">What is mcpkit?</textarea></label>
<p><button id="start">Stream</button> <button id="cancel" disabled>Cancel</button>
  <span id="status">idle</span></p>
<div id="output"></div>
<script type="module">
import { connectCompletions } from './client.js';

const $ = (id) => document.getElementById(id);
let client;
let current;

$('start').addEventListener('click', async () => {
  $('output').textContent = '';
  $('status').textContent = 'connecting';
  try {
    const key = $('key').value;
    client ??= await connectCompletions(\`ws://\${location.host}/mcp\`, key ? { apiKey: key } : {});
  } catch (error) {
    client = undefined;
    $('status').textContent = 'error: ' + error.message;
    return;
  }
  current = client.stream({ messages: [{ role: 'user', content: $('prompt').value }] });
  $('cancel').disabled = false;
  $('status').textContent = 'streaming';
  for await (const event of current) {
    if (event.type === 'text') $('output').textContent += event.delta;
    else if (event.type === 'done') $('status').textContent = event.job.status;
    else if (event.type === 'error') $('status').textContent = 'error: ' + event.code + ': ' + event.message;
  }
  $('cancel').disabled = true;
});
$('cancel').addEventListener('click', () => current?.cancel());
</script>
</body>
</html>
`;

const fetchHandler = toNodeListener((request) => server.fetch(request));
const httpServer = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE);
  } else if (req.method === 'GET' && path === '/client.js') {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(clientModule);
  } else {
    fetchHandler(req, res);
  }
});
// MCP (subprotocol "mcp") and completions (subprotocol "mcpkit.completions") on ws://…/mcp.
const websocket = await attachWebSocket(httpServer, server);
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
await new Promise<void>((resolve) => httpServer.listen(port, host, resolve));
const address = httpServer.address();
const actual = typeof address === 'object' && address ? address.port : port;
process.stderr.write(
  `completions page on http://${host}:${actual}/ (WebSocket ws://${host}:${actual}/mcp)${apiKey ? ', key required' : ''}\n`,
);

const shutdown = async () => {
  await websocket.close();
  await server.close();
  httpServer.close();
  await closeModel();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
