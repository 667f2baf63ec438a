/**
 * Integrations persisted under MCP_DATA_DIR (default ./.mcpkit), secrets sealed with MCP_SECRET_KEY
 * (or a generated key file), editable over REST at /integrations.
 *
 *   MCP_SECRET_KEY=$(node -e "console.log(require('crypto').randomBytes(32).toString('base64'))") \
 *     npx tsx examples/integrations.ts
 *   curl -s localhost:3000/integrations | jq
 */
import { createMcpServer } from 'mcpkit';
import { listen, openFileIntegrations } from 'mcpkit/node';

const server = createMcpServer({
  name: 'integrations-demo',
  integrations: await openFileIntegrations(),
  outbound: { allowedHosts: ['api.github.com'] },
});
await server.integrations.ready; // a corrupt store or a wrong key stops start-up here

server.integrations.on('created', ({ integration }) => console.error(`created ${integration.id}`));

if (!server.integrations.get('github')) {
  await server.integrations.create({
    id: 'github',
    name: 'GitHub',
    model: {
      provider: 'openai',
      model: 'gpt-4.1',
      apiKey: process.env.OPENAI_API_KEY ?? 'sk-example-key-0000',
    },
    secrets: { token: process.env.GITHUB_TOKEN ?? 'ghp_example_token_0000' },
    tools: [
      {
        name: 'repo',
        kind: 'http',
        description: 'Describe a GitHub repository',
        inputSchema: {
          type: 'object',
          properties: { owner: { type: 'string' }, repo: { type: 'string' } },
          required: ['owner', 'repo'],
        },
        http: {
          url: 'https://api.github.com/repos/{owner}/{repo}',
          headers: { authorization: 'Bearer {{secrets.token}}', 'user-agent': 'mcpkit-example' },
        },
      },
    ],
    prompts: [
      { name: 'triage', messages: [{ role: 'user', content: 'Triage issue {{number}} of {{repo}}' }] },
    ],
  });
}

// Code-backed tools attach to an integration (in memory: attach them again at each start).
server.integrations.attachTool('github', {
  name: 'whoami',
  description: 'Which token is configured (never the token itself)',
  handler: () => ({ configured: server.integrations.secret('github', 'token') !== undefined }),
});

const { url } = await listen(server, { port: 3000 });
console.error(`MCP at ${url}/mcp; tools github__repo and github__whoami; REST at ${url}/integrations`);
