/**
 * Integrations persisted under MCP_DATA_DIR (default ./.mcpkit in the working directory, which
 * .gitignore lists), secrets sealed with MCP_SECRET_KEY (or a key file generated beside the store),
 * editable over REST at /integrations. It prints where it writes.
 *
 *   MCP_DATA_DIR=$HOME/.local/share/mcpkit-demo \
 *   MCP_SECRET_KEY=$(node -e "console.log(require('crypto').randomBytes(32).toString('base64'))") \
 *     npx tsx examples/integrations.ts
 *   curl -s localhost:3000/integrations | jq
 *
 * PORT and HOST change where it listens (default 127.0.0.1:3000).
 */
import { createMcpServer } from 'mcpkit';
import { listen, openFileIntegrations } from 'mcpkit/node';

const integrations = await openFileIntegrations();
// Sealed secrets, and without MCP_SECRET_KEY the key that opens them: say where they are.
const { dataDir } = integrations.store;
console.error(
  process.env.MCP_SECRET_KEY
    ? `Integrations stored in ${dataDir} (secrets sealed with MCP_SECRET_KEY)`
    : `Integrations stored in ${dataDir}, with the key that seals their secrets (secret.key): keep it out of version control and back it up`,
);

const server = createMcpServer({
  name: 'integrations-demo',
  integrations,
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

const { url } = await listen(server, {
  port: Number(process.env.PORT ?? 3000),
  host: process.env.HOST ?? '127.0.0.1',
});
console.error(`MCP at ${url}/mcp; tools github__repo and github__whoami; REST at ${url}/integrations`);
