/**
 * Live resources: a clock and a ticker price that change every few seconds and notify their
 * subscribers, served over HTTP like the quickstart (PORT and HOST honoured).
 *
 *   npx tsx examples/live-resources.ts
 *
 * In the MCP Inspector: Resources → live://clock → Subscribe, and watch the updates arrive.
 */
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';

const server = createMcpServer({
  name: 'mcpkit-live-resources',
  version: '0.1.0',
  // Reads are cached for a minute; every change below invalidates the entry it touches.
  cache: { ttlMs: 60_000 },
});

let tick = 0;
const prices = new Map<string, number>([
  ['ACME', 100],
  ['GLOBEX', 42],
  ['INITECH', 7.5],
]);

server.resources.register({
  uri: 'live://clock',
  name: 'clock',
  title: 'Server clock',
  description: 'The server time, updated every 2 seconds',
  mimeType: 'application/json',
  read: () => JSON.stringify({ now: new Date().toISOString(), tick }),
});

server.resources.register({
  uriTemplate: 'live://ticker/{symbol}',
  name: 'ticker',
  title: 'Ticker price',
  description: 'A simulated price for a ticker symbol, moving every 3 seconds',
  mimeType: 'application/json',
  list: () => [...prices.keys()].map((symbol) => ({ uri: `live://ticker/${symbol}`, name: symbol })),
  complete: { symbol: (prefix) => [...prices.keys()].filter((s) => s.startsWith(prefix.toUpperCase())) },
  read: (_uri, { symbol }) => {
    const price = prices.get(String(symbol));
    if (price === undefined) throw new Error(`Unknown symbol ${String(symbol)}`);
    return JSON.stringify({ symbol, price });
  },
});

const clock = setInterval(() => {
  tick++;
  server.resources.notifyUpdated('live://clock');
}, 2_000);

const market = setInterval(() => {
  for (const [symbol, price] of prices) {
    prices.set(symbol, Math.round(price * (1 + (Math.random() - 0.5) * 0.02) * 100) / 100);
    server.resources.notifyUpdated(`live://ticker/${symbol}`);
  }
}, 3_000);

// Code can subscribe too, with no MCP client involved.
server.resources.subscribe('live://ticker/ACME', (uri) => console.error(`updated: ${uri}`));

const listening = await listen(server, {
  port: Number(process.env.PORT ?? 3000),
  host: process.env.HOST ?? '127.0.0.1',
});
console.log(`live resources on ${listening.url}/mcp — subscribe to live://clock or live://ticker/ACME`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    clearInterval(clock);
    clearInterval(market);
    void listening.close().then(() => process.exit(0));
  });
}
