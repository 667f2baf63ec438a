import type { Route } from './rest.js';

interface OpenApiHost {
  readonly info: { name: string; version: string; title?: string };
  readonly tools: { list(): ReadonlyArray<{ name: string; description?: string; inputSchema: object }> };
}

const PROBLEM = {
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'requestId'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    requestId: { type: 'string' },
  },
};

const ANY_OBJECT = { type: 'object', additionalProperties: true };

const CALL_RESULT = {
  type: 'object',
  required: ['content'],
  properties: {
    content: { type: 'array', items: ANY_OBJECT },
    structuredContent: ANY_OBJECT,
    isError: { type: 'boolean' },
    durationMs: { type: 'number' },
  },
};

/** The index (`GET /`): links are paths from the server's root, with the mount point. */
const INDEX = {
  type: 'object',
  required: ['name', 'version', 'links'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    title: { type: 'string' },
    links: {
      type: 'object',
      required: ['mcp', 'openapi', 'health'],
      properties: {
        mcp: { type: 'string', description: 'The MCP endpoint (Streamable HTTP)' },
        openapi: { type: 'string', description: 'This document' },
        health: { type: 'string', description: 'Liveness and readiness' },
      },
    },
  },
};

const USAGE_STATS = {
  type: 'object',
  properties: {
    calls: { type: 'integer' },
    errors: { type: 'integer' },
    p50Ms: { type: ['number', 'null'] },
    p95Ms: { type: ['number', 'null'] },
    inputTokens: { type: 'integer' },
    outputTokens: { type: 'integer' },
  },
};
const USAGE_WINDOWS = {
  type: 'object',
  properties: { hour: USAGE_STATS, day: USAGE_STATS, start: USAGE_STATS },
};
const USAGE_SECTION = {
  type: 'object',
  required: ['items', 'folded', 'other'],
  properties: {
    items: {
      type: 'array',
      items: {
        ...USAGE_WINDOWS,
        required: ['key'],
        properties: { key: { type: 'string' }, ...USAGE_WINDOWS.properties },
      },
    },
    folded: { type: 'integer', description: 'Keys folded into `other` past the memory bound' },
    other: { oneOf: [USAGE_WINDOWS, { type: 'null' }] },
  },
};

/** `GET /usage`: per caller (key id), per tool, per model, over each window asked for. */
const USAGE = {
  type: 'object',
  required: ['startedAt', 'scope', 'totals', 'callers', 'tools', 'models'],
  properties: {
    startedAt: { type: 'string', format: 'date-time' },
    scope: { type: 'string', enum: ['node'], description: 'The figures are this process’s' },
    totals: { type: 'object', properties: { tools: USAGE_WINDOWS, models: USAGE_WINDOWS } },
    callers: USAGE_SECTION,
    tools: USAGE_SECTION,
    models: USAGE_SECTION,
  },
};

/** Query parameters of the routes that take them (beside the lists' cursor and limit). */
const QUERY: Record<string, object[]> = {
  '/usage': [
    {
      name: 'window',
      in: 'query',
      required: false,
      description: 'hour, day or start (comma-separated or repeated); default all three',
      schema: { type: 'string' },
    },
    { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } },
  ],
};

/** Response schemas of routes that declare theirs. */
const SCHEMAS: Record<string, object> = { '/': INDEX, '/usage': USAGE };

function problemResponse(description: string) {
  return {
    description,
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
}

function jsonResponse(description: string, schema: object = ANY_OBJECT) {
  return { description, content: { 'application/json': { schema } } };
}

/** The words of a route's path (`/tools/:name` → `tools`, `by-name`); the root is the index. */
function pathWords(route: Route): string[] {
  const words = route.path
    .split('/')
    .filter(Boolean)
    .map((s) => (s.startsWith(':') ? `by-${s.slice(1)}` : s.replace('.json', '')));
  return words.length > 0 ? words : ['index'];
}

function operationId(route: Route): string {
  return [route.method.toLowerCase(), ...pathWords(route)].join('-');
}

function executeOperation(
  { name, description, inputSchema }: { name: string; description?: string | undefined; inputSchema: object },
  routeSummary: string,
) {
  return {
    operationId: `execute-tool-${name}`,
    summary: `${routeSummary}: ${name}`,
    ...(description && { description }),
    tags: ['tools'],
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { arguments: inputSchema, timeoutMs: { type: 'number', exclusiveMinimum: 0 } },
          },
        },
      },
    },
    responses: {
      '200': jsonResponse('The tool result (isError true for a tool-level failure)', CALL_RESULT),
      '400': problemResponse('Invalid arguments: one issue per field'),
      '404': problemResponse('No such tool'),
      '504': problemResponse('The tool timed out'),
    },
  };
}

/**
 * The OpenAPI 3.1 document of the REST surface, with one execute operation per registered tool whose
 * request body carries that tool's input schema, so generated clients and API consoles work.
 */
export function buildOpenApi(
  host: OpenApiHost,
  routes: readonly Route[],
  { url, visible = () => true }: { url: URL; visible?: (tool: string) => boolean },
): object {
  const base = url.pathname.replace(/\/openapi\.json$/, '');
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => ({
      name: m[1]!,
      in: 'path',
      required: true,
      schema: { type: 'string' },
      ...(m[1] === 'uri' && { description: 'The resource URI, percent-encoded as one path segment' }),
    }));
    const isList = route.method === 'GET' && ['/tools', '/resources', '/prompts'].includes(route.path);
    const hasBody = route.method === 'POST' || route.method === 'PUT';
    const stream = route.path.endsWith('/subscribe');
    paths[path] ??= {};
    paths[path]![route.method.toLowerCase()] = {
      operationId: operationId(route),
      summary: route.summary,
      tags: [pathWords(route)[0]!],
      parameters: [
        ...params,
        ...(route.parameters ?? []).map((p) => ({ ...p, required: false })),
        ...(isList
          ? [
              { name: 'cursor', in: 'query', required: false, schema: { type: 'string' } },
              {
                name: 'limit',
                in: 'query',
                required: false,
                schema: { type: 'integer', minimum: 1, maximum: 1000 },
              },
            ]
          : []),
        ...(QUERY[route.path] ?? []),
      ],
      ...(hasBody && {
        requestBody: { required: !stream, content: { 'application/json': { schema: ANY_OBJECT } } },
      }),
      responses: {
        [route.method === 'DELETE'
          ? '204'
          : route.method === 'POST' && !route.path.includes('/', 1)
            ? '201'
            : '200']: stream
          ? {
              description: 'Server-sent events',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            }
          : route.method === 'DELETE'
            ? { description: 'Removed' }
            : jsonResponse(route.summary, SCHEMAS[route.path] ?? ANY_OBJECT),
        default: problemResponse('An error (RFC 9457 problem details)'),
      },
    };
  }
  for (const tool of host.tools.list()) {
    if (!visible(tool.name)) continue;
    const path = `/tools/${encodeURIComponent(tool.name)}/execute`;
    paths[path] = { post: executeOperation(tool, 'Execute') };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: host.info.title ?? host.info.name,
      version: host.info.version,
      description:
        'REST surface of an mcpkit server: the same tools, resources and prompts its MCP endpoint serves.',
    },
    servers: [{ url: base === '' ? '/' : base }],
    paths,
    components: { schemas: { Problem: PROBLEM } },
  };
}
