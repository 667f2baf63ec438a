/**
 * Consumer fixture (scripts/check-consumers.mjs): `mcpkit/testing`, with only
 * `@modelcontextprotocol/client` installed.
 */
import { createMcpServer } from 'mcpkit';
import { connectClient, createModelServer, jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';

const server = createMcpServer({ name: 'under-test', version: '1.0.0' });

export async function suite(): Promise<number> {
  const { client, close } = await connectClient(server, { clientInfo: { name: 'suite', version: '1.0.0' } });
  const { tools } = await client.listTools();
  await close();
  const answer = await readJsonRpc(
    await request(server, '/mcp', jsonRpcPost({ jsonrpc: '2.0', id: 1, method: 'ping' })),
  );
  const model = await createModelServer();
  await model.close();
  return tools.length + Number(answer.id);
}
