/**
 * REST routes for integrations: `GET/POST /integrations`, `GET/PUT/DELETE /integrations/{id}`.
 *
 * - `GET` and `PUT` answer with a strong `ETag`; `If-None-Match` on `GET` gives 304.
 * - `PUT` requires `If-Match` (428 without it), so two editors cannot overwrite each other; a stale
 *   tag gives 412 with the current tag in `details.etag`. `If-Match: *` means "whatever is there".
 * - `DELETE` honours `If-Match` when it is sent (412 when stale) and works without it.
 * - Validation errors are 400 with the field in the message and in `details.field`.
 * - Secrets are never returned: the API key and other secrets come back redacted.
 */

import { McpKitError, quote } from '../../core/errors.js';
import { restPage } from '../../core/paginate.js';
import { chainStepTools } from '../../declarative.js';
import type { Integration, IntegrationInput } from '../../integrations/types.js';
import { json, problem } from '../problem.js';
import type { RestContext, RestHost, Route } from '../rest.js';

function manager(host: RestHost) {
  if (!host.integrations) throw new McpKitError('NOT_FOUND', 'Integrations are not enabled on this server');
  return host.integrations;
}

/** The entity tags of an `If-Match` or `If-None-Match` header (`*` stays `*`); weak tags never match. */
export function parseEntityTags(header: string | null): string[] | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (text === '*') return ['*'];
  return [...text.matchAll(/(W\/)?("[^"]*")/g)].filter((m) => !m[1]).map((m) => m[2]!);
}

function withEtag(integration: Integration, status = 200, headers: Record<string, string> = {}): Response {
  return json(integration, status, { etag: integration.etag, 'cache-control': 'no-store', ...headers });
}

async function inputOf(ctx: RestContext): Promise<IntegrationInput> {
  const body = await ctx.body();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new McpKitError('INVALID_ARGUMENT', 'body must be a JSON object', { details: { field: 'body' } });
  }
  const input = body as IntegrationInput;
  // An integration's chain tools run their steps as whoever calls them; whoever writes the
  // integration must be able to run each step too.
  const steps = Array.isArray(input.tools) ? input.tools.flatMap((tool) => chainStepTools(tool)) : [];
  if (steps.length > 0) {
    ctx.require(
      steps.map((name) => ({ kind: 'tools', name })),
      'tools:execute',
    );
  }
  return input;
}

/** The integration routes, spread into the REST route table. */
export const integrationRoutes: Route[] = [
  {
    method: 'GET',
    path: '/integrations',
    permission: 'integrations:read',
    rate: 'read',
    summary: 'List integrations (secrets redacted)',
    handler: (ctx, host) =>
      json(restPage(manager(host).list(), ctx.url.searchParams), 200, { 'cache-control': 'no-store' }),
  },
  {
    method: 'POST',
    path: '/integrations',
    permission: 'integrations:manage',
    rate: 'manage',
    summary: 'Create an integration',
    handler: async (ctx, host) => {
      const integration = await manager(host).create(await inputOf(ctx));
      return withEtag(integration, 201, { location: `integrations/${encodeURIComponent(integration.id)}` });
    },
  },
  {
    method: 'GET',
    path: '/integrations/:id',
    permission: 'integrations:read',
    rate: 'read',
    summary: 'Describe an integration (secrets redacted; ETag)',
    handler: (ctx, host) => {
      const integration = manager(host).get(ctx.params.id!);
      if (!integration) throw new McpKitError('NOT_FOUND', `Integration ${quote(ctx.params.id)} not found`);
      const noneMatch = parseEntityTags(ctx.request.headers.get('if-none-match'));
      // The ETag names the stored revision; an upstream's live state changes without one, so an
      // integration with an upstream is always sent whole.
      if (!integration.upstreamState && noneMatch?.some((t) => t === '*' || t === integration.etag)) {
        return new Response(null, { status: 304, headers: { etag: integration.etag } });
      }
      return withEtag(integration);
    },
  },
  {
    method: 'PUT',
    path: '/integrations/:id',
    permission: 'integrations:manage',
    rate: 'manage',
    summary: 'Replace an integration (requires If-Match)',
    handler: async (ctx, host) => {
      const ifMatch = parseEntityTags(ctx.request.headers.get('if-match'));
      const integrations = manager(host);
      if (ifMatch === undefined || ifMatch.length === 0) {
        const current = integrations.get(ctx.params.id!);
        if (!current) throw new McpKitError('NOT_FOUND', `Integration ${quote(ctx.params.id)} not found`);
        return problem(
          'PRECONDITION_FAILED',
          'Send If-Match with the ETag from GET /integrations/{id} (or If-Match: * to overwrite whatever is there)',
          { requestId: ctx.requestId, status: 428, fields: { title: 'Precondition required' } },
        );
      }
      const integration = await integrations.replace(ctx.params.id!, await inputOf(ctx), { ifMatch });
      return withEtag(integration);
    },
  },
  {
    method: 'DELETE',
    path: '/integrations/:id',
    permission: 'integrations:manage',
    rate: 'manage',
    summary: 'Delete an integration (honours If-Match)',
    handler: async (ctx, host) => {
      const ifMatch = parseEntityTags(ctx.request.headers.get('if-match'));
      const removed = await manager(host).delete(ctx.params.id!, ifMatch ? { ifMatch } : {});
      if (!removed) throw new McpKitError('NOT_FOUND', `Integration ${quote(ctx.params.id)} not found`);
      return new Response(null, { status: 204 });
    },
  },
];
