/**
 * One node of a test cluster (see cluster.ts), run in a child process under tsx: builds the server
 * from the module the harness names, serves it with listen() on the port it was given, and says
 * CLUSTER_NODE_READY on stdout. SIGTERM closes it; SIGKILL is the test's to send.
 */
import { pathToFileURL } from 'node:url';
import type { McpKitServer } from '../../src/index.js';
import { listen } from '../../src/node/index.js';
import type { ClusterNodeContext } from './cluster.js';

const env = process.env;
const context: ClusterNodeContext = {
  index: Number(env.CLUSTER_NODE_INDEX),
  redisUrl: env.CLUSTER_REDIS_URL!,
  prefix: env.CLUSTER_PREFIX!,
  advertise: env.CLUSTER_ADVERTISE!,
  secret: env.CLUSTER_SECRET!,
  env,
};
const module = (await import(pathToFileURL(env.CLUSTER_NODE_MODULE!).href)) as {
  createNode(context: ClusterNodeContext): McpKitServer | Promise<McpKitServer>;
};
const server = await module.createNode(context);
const listening = await listen(server, { port: Number(env.CLUSTER_NODE_PORT), host: '127.0.0.1' });
process.stdout.write(`CLUSTER_NODE_READY ${listening.url}\n`);
process.once('SIGTERM', () => {
  void listening
    .close()
    .then(() => server.close())
    .finally(() => process.exit(0));
});
