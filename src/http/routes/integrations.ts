/**
 * REST routes for integrations: `GET/POST /integrations`, `GET/PUT/DELETE /integrations/{id}`, and
 * the backup pair `GET /integrations/export` and `POST /integrations/import` (permission
 * `integrations:backup`, which only the built-in `admin` role holds).
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
import {
  conflictPolicy,
  exportMode,
  type IntegrationExport,
  type IntegrationImportReport,
} from '../../integrations/backup.js';
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

/** The request header that carries the transfer key of an export or import. */
export const TRANSFER_KEY_HEADER = 'mcpkit-transfer-key';

/** The transfer key of a request, if it sent one. */
function transferKeyOf(ctx: RestContext): string | undefined {
  return ctx.request.headers.get(TRANSFER_KEY_HEADER) ?? undefined;
}

/** A boolean query parameter: absent is `false`; `true`/`1` and `false`/`0` are the only words. */
function flag(ctx: RestContext, name: string): boolean {
  const value = ctx.url.searchParams.get(name);
  if (value === null) return false;
  if (value === 'true' || value === '1' || value === '') return true;
  if (value === 'false' || value === '0') return false;
  throw new McpKitError('INVALID_ARGUMENT', `${name} must be true or false`, { details: { field: name } });
}

/** Records a backup's audit event (with a policy), then answers or rethrows. */
async function audited<T>(
  exchange: { ctx: RestContext; host: RestHost },
  event: {
    action: 'integration.export' | 'integration.import';
    details: Record<string, unknown>;
    /** What the audit keeps of the result. */
    describe: (result: T) => Record<string, unknown>;
  },
  run: () => Promise<T>,
): Promise<T> {
  const { ctx, host } = exchange;
  const record = (outcome: 'success' | 'failure', more: Record<string, unknown>, code?: string) => {
    if (host.policy && ctx.facts)
      host.policy.record(ctx.facts, {
        action: event.action,
        outcome,
        target: 'integrations',
        ...(code !== undefined && { code }),
        details: { ...event.details, ...more },
      });
  };
  try {
    const result = await run();
    record('success', event.describe(result));
    return result;
  } catch (error) {
    record('failure', {}, error instanceof McpKitError ? error.code : 'INTERNAL');
    throw error;
  }
}

/** The backup routes: listed before `/integrations/:id`, which would otherwise take their paths. */
const backupRoutes: Route[] = [
  {
    method: 'GET',
    path: '/integrations/export',
    permission: 'integrations:backup',
    rate: 'manage',
    summary:
      'Export integrations for another server (?secrets=sealed|plaintext|omit&ids=a,b; sealed needs the Mcpkit-Transfer-Key header)',
    parameters: [
      {
        name: 'secrets',
        in: 'query',
        description:
          'sealed (default): secrets sealed under the transfer key; plaintext: in clear (answered with a Mcpkit-Warning header); omit: left out',
        schema: { type: 'string', enum: ['sealed', 'plaintext', 'omit'] },
      },
      {
        name: 'ids',
        in: 'query',
        description: 'Comma-separated ids (default: all)',
        schema: { type: 'string' },
      },
      {
        name: 'Mcpkit-Transfer-Key',
        in: 'header',
        description: 'The passphrase (16-1024 characters) the secrets are sealed under; the import needs it',
        schema: { type: 'string' },
      },
    ],
    handler: async (ctx, host) => {
      const integrations = manager(host);
      const q = ctx.url.searchParams;
      const secrets = exportMode(q.get('secrets') ?? undefined);
      const idsParam = q.get('ids');
      const ids = idsParam === null ? undefined : idsParam.split(',').filter((id) => id !== '');
      const transferKey = transferKeyOf(ctx);
      const document = await audited(
        { ctx, host },
        {
          action: 'integration.export',
          details: { carries: secrets },
          describe: (doc: IntegrationExport) => ({ integrations: doc.integrations.map((i) => i.id) }),
        },
        () =>
          integrations.export({
            secrets,
            ...(transferKey !== undefined && { transferKey }),
            ...(ids && { ids }),
          }),
      );
      const date = document.exportedAt.slice(0, 10);
      return json(document, 200, {
        'cache-control': 'no-store',
        'content-disposition': `attachment; filename="integrations-${date}.json"`,
        ...(document.secrets.mode === 'plaintext' && {
          'mcpkit-warning':
            'This export holds every secret in clear. Keep it like a password file and delete it after the import.',
        }),
      });
    },
  },
  {
    method: 'POST',
    path: '/integrations/import',
    permission: 'integrations:backup',
    rate: 'manage',
    summary:
      'Import an export, all or nothing (?onConflict=fail|skip|replace&dryRun=true; Mcpkit-Transfer-Key for sealed secrets)',
    parameters: [
      {
        name: 'onConflict',
        in: 'query',
        description: 'What an id the server already has does: fail (default), skip, replace',
        schema: { type: 'string', enum: ['fail', 'skip', 'replace'] },
      },
      {
        name: 'dryRun',
        in: 'query',
        description: 'Report what the import would do, and every problem, without writing',
        schema: { type: 'boolean' },
      },
      {
        name: 'Mcpkit-Transfer-Key',
        in: 'header',
        description: 'The passphrase the export was sealed under',
        schema: { type: 'string' },
      },
    ],
    handler: async (ctx, host) => {
      const integrations = manager(host);
      const dryRun = flag(ctx, 'dryRun');
      const onConflict = conflictPolicy(ctx.url.searchParams.get('onConflict') ?? undefined);
      const transferKey = transferKeyOf(ctx);
      const document = await ctx.body();
      // A chain tool runs its steps as its caller: who imports one must be able to run each step.
      const tools = (document as { integrations?: Array<{ tools?: unknown }> } | undefined)?.integrations;
      if (Array.isArray(tools)) {
        const steps = tools.flatMap((entry) =>
          Array.isArray(entry?.tools) ? entry.tools.flatMap((tool: unknown) => chainStepTools(tool)) : [],
        );
        if (steps.length > 0)
          ctx.require(
            steps.map((name) => ({ kind: 'tools', name })),
            'tools:execute',
          );
      }
      const report = await audited(
        { ctx, host },
        {
          action: 'integration.import',
          details: { dryRun, onConflict },
          describe: (r: IntegrationImportReport) => ({
            carries: r.secrets,
            applied: r.applied,
            created: r.created,
            replaced: r.replaced,
            skipped: r.skipped,
            issues: r.issues.length,
          }),
        },
        () =>
          integrations.import(document, {
            dryRun,
            onConflict,
            ...(transferKey !== undefined && { transferKey }),
          }),
      );
      return json(report, 200, { 'cache-control': 'no-store' });
    },
  },
];

/** The integration routes, spread into the REST route table. */
export const integrationRoutes: Route[] = [
  ...backupRoutes,
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
