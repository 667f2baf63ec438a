/**
 * Resource benchmarks: cache-hit read latency in process, `resources/list` time and memory at 10,000
 * resources (mcpkit and the bare SDK side by side), and how long one update takes to reach 1,000
 * subscribed sessions.
 */
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, McpServer } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { median, sample, settle } from './measure.js';

const CLIENT_INFO = { name: 'mcpkit-bench', version: '0.0.0' };
const ctx = () => ({ signal: new AbortController().signal });

export interface ResourceFigures {
  cacheHitNs: number;
  uncachedReadNs: number;
  list: { resources: number; mcpkitMs: number; sdkMs: number; mcpkitHeapMb: number; sdkHeapMb: number };
  fanOut: { sessions: number; medianMs: number };
}

function heapMb(): number {
  return process.memoryUsage().heapUsed / (1024 * 1024);
}

async function perCall(op: () => Promise<unknown>, count: number): Promise<number> {
  for (let i = 0; i < count / 10; i++) await op();
  const started = performance.now();
  for (let i = 0; i < count; i++) await op();
  return ((performance.now() - started) * 1e6) / count;
}

async function readLatency(): Promise<{ cached: number; uncached: number }> {
  const server = createMcpServer({ logLevel: 'silent', cache: { ttlMs: 3_600_000 } });
  server.resources.register({ uri: 'bench://cached', name: 'cached', read: () => 'x'.repeat(1024) });
  server.resources.register({ uri: 'bench://live', name: 'live', ttlMs: 0, read: () => 'x'.repeat(1024) });
  const context = ctx();
  const cached = await perCall(() => server.resources.read('bench://cached', context), 200_000);
  const uncached = await perCall(() => server.resources.read('bench://live', context), 200_000);
  return { cached, uncached };
}

async function listAt(count: number): Promise<ResourceFigures['list']> {
  await settle();
  const before = heapMb();
  const kit = createMcpServer({ logLevel: 'silent' });
  for (let i = 0; i < count; i++) {
    kit.resources.register({
      uri: `bench://r/${i}`,
      name: `r${i}`,
      mimeType: 'text/plain',
      read: () => String(i),
    });
  }
  await settle();
  const mcpkitHeapMb = heapMb() - before;
  const sdkBefore = heapMb();
  const sdk = new McpServer({ name: 'bench', version: '0' }, { capabilities: { resources: {} } });
  for (let i = 0; i < count; i++) {
    sdk.registerResource(`r${i}`, `bench://r/${i}`, { mimeType: 'text/plain' }, (uri) => ({
      contents: [{ uri: uri.href, text: String(i) }],
    }));
  }
  await settle();
  const sdkHeapMb = heapMb() - sdkBefore;

  const [kitClientSide, kitServerSide] = InMemoryTransport.createLinkedPair();
  await kit.connect(kitServerSide);
  const kitClient = new Client(CLIENT_INFO);
  await kitClient.connect(kitClientSide);
  const [sdkClientSide, sdkServerSide] = InMemoryTransport.createLinkedPair();
  await sdk.connect(sdkServerSide);
  const sdkClient = new Client(CLIENT_INFO);
  await sdkClient.connect(sdkClientSide);
  const list = (client: Client) => async () => {
    const { resources } = await client.listResources(undefined, { cacheMode: 'bypass' });
    if (resources.length !== count) throw new Error(`listed ${resources.length} of ${count} resources`);
  };
  await sample(list(kitClient), 2);
  await sample(list(sdkClient), 2);
  const mcpkitMs = median(await sample(list(kitClient), 5));
  const sdkMs = median(await sample(list(sdkClient), 5));
  await kitClient.close();
  await sdkClient.close();
  await kit.close();
  return { resources: count, mcpkitMs, sdkMs, mcpkitHeapMb, sdkHeapMb };
}

async function fanOut(sessions: number): Promise<ResourceFigures['fanOut']> {
  const server = createMcpServer({ logLevel: 'silent' });
  server.resources.register({ uri: 'bench://watched', name: 'watched', read: () => 'x' });
  let received = 0;
  let done: (() => void) | undefined;
  const clients: Client[] = [];
  for (let i = 0; i < sessions; i++) {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client(CLIENT_INFO);
    await client.connect(clientSide);
    client.setNotificationHandler('notifications/resources/updated', () => {
      received++;
      if (received === sessions) done?.();
    });
    await client.subscribeResource({ uri: 'bench://watched' });
    clients.push(client);
  }
  const times: number[] = [];
  for (let round = 0; round < 7; round++) {
    received = 0;
    const arrived = new Promise<void>((resolve) => {
      done = resolve;
    });
    const started = performance.now();
    server.resources.notifyUpdated('bench://watched');
    await arrived;
    times.push(performance.now() - started);
  }
  await Promise.all(clients.map((c) => c.close()));
  await server.close();
  return { sessions, medianMs: median(times.slice(2)) };
}

/** Runs the resource benchmarks. */
export async function measureResources(log: (message: string) => void): Promise<ResourceFigures> {
  const latency = await readLatency();
  log(
    `  resources/read in process: cached ${latency.cached.toFixed(0)} ns, uncached ${latency.uncached.toFixed(0)} ns`,
  );
  const list = await listAt(10_000);
  log(`  resources/list 10000: mcpkit ${list.mcpkitMs.toFixed(1)} ms, sdk ${list.sdkMs.toFixed(1)} ms`);
  const fan = await fanOut(1_000);
  log(`  update to ${fan.sessions} subscribed sessions: ${fan.medianMs.toFixed(1)} ms`);
  return { cacheHitNs: latency.cached, uncachedReadNs: latency.uncached, list, fanOut: fan };
}

/** The markdown for the resource figures. */
export function renderResources(f: ResourceFigures): string {
  const fmt = (n: number, digits = 1) => n.toFixed(digits);
  return [
    '**Resources** (mcpkit; the bare SDK has no read cache and no `resources/subscribe`):',
    '',
    '| Measurement | mcpkit | bare SDK |',
    '| --- | ---: | ---: |',
    `| \`resources/read\` in process, cache hit | ${fmt(f.cacheHitNs / 1000, 2)} µs | — |`,
    `| \`resources/read\` in process, uncached (\`ttlMs: 0\`) | ${fmt(f.uncachedReadNs / 1000, 2)} µs | — |`,
    `| \`resources/list\` via Client, ${f.list.resources.toLocaleString('en-US')} resources | ${fmt(f.list.mcpkitMs)} ms | ${fmt(f.list.sdkMs)} ms |`,
    `| heap for ${f.list.resources.toLocaleString('en-US')} registered resources | ${fmt(f.list.mcpkitHeapMb)} MB | ${fmt(f.list.sdkHeapMb)} MB |`,
    `| one update reaching ${f.fanOut.sessions.toLocaleString('en-US')} subscribed in-memory sessions | ${fmt(f.fanOut.medianMs)} ms | — |`,
  ].join('\n');
}
