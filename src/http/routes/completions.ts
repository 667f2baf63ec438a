/**
 * REST routes for completions: `POST /completions` (run to the end), `POST /completions/stream`
 * (SSE: `start` with the job id first, then `text`, `tool_call`, `tool_result`, `usage`, and `done`
 * with the final job), `GET /completions/{id}`, `DELETE /completions/{id}` (cancel).
 */
import type { CompletionManager } from '../../completions/manager.js';
import type { CompletionEvent, CompletionRequest } from '../../completions/types.js';
import { McpKitError, quote } from '../../core/errors.js';
import { eventStreamResponse, openEventStream } from '../../core/sse.js';
import { json } from '../problem.js';
import type { RestContext, RestHost, Route } from '../rest.js';

function manager(host: RestHost): CompletionManager {
  if (!host.completions) throw new McpKitError('NOT_FOUND', 'Completions are not enabled on this server');
  return host.completions;
}

async function requestOf(ctx: RestContext): Promise<CompletionRequest> {
  const body = await ctx.body();
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new McpKitError('INVALID_ARGUMENT', 'body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.tools !== undefined && b.tools !== 'all' && b.tools !== 'none' && !Array.isArray(b.tools))
    throw new McpKitError('INVALID_ARGUMENT', "tools must be 'all', 'none' or an array of tool names");
  if (Array.isArray(b.tools) && !b.tools.every((t) => typeof t === 'string'))
    throw new McpKitError('INVALID_ARGUMENT', 'tools must be tool names');
  return b as CompletionRequest;
}

function runOptions(ctx: RestContext) {
  return {
    origin: 'rest' as const,
    requestId: ctx.requestId,
    ...(ctx.caller && { caller: ctx.caller }),
    ...(ctx.facts?.address !== undefined && { clientAddress: ctx.facts.address }),
  };
}

/** The completion routes, spread into the REST route table. */
export const completionRoutes: Route[] = [
  {
    method: 'POST',
    path: '/completions',
    permission: 'completions:create',
    rate: 'completions',
    summary: 'Run a model with the server tools to the end; answers the finished job',
    handler: async (ctx, host) => {
      const job = await manager(host).run(await requestOf(ctx), {
        ...runOptions(ctx),
        signal: ctx.request.signal,
      });
      return json(job, 200, { location: `completions/${job.id}` });
    },
  },
  {
    method: 'POST',
    path: '/completions/stream',
    permission: 'completions:create',
    rate: 'completions',
    summary: 'Run a model with the server tools, streamed as text/event-stream',
    handler: async (ctx, host) => {
      const completions = manager(host);
      const request = await requestOf(ctx);
      const release = ctx.holdStream();
      let handle: Awaited<ReturnType<typeof completions.start>> | undefined;
      const events = openEventStream({
        onEnd: (cancelled) => {
          release();
          // The client went away: the job stops with it.
          if (cancelled) handle?.cancel();
        },
      });
      const onEvent = (event: CompletionEvent) => {
        const { type, ...data } = event;
        events.send(type, data);
        if (type === 'done') events.close();
      };
      // Validation errors still answer as problem responses: start() throws before any event.
      try {
        handle = await completions.start(request, {
          ...runOptions(ctx),
          stream: true,
          signal: ctx.request.signal,
          onEvent,
          // A reader that falls behind pauses the model stream instead of filling memory.
          ready: () => events.ready(),
        });
      } catch (error) {
        events.close();
        throw error;
      }
      return eventStreamResponse(events.stream, { 'x-completion-id': handle.id });
    },
  },
  {
    method: 'GET',
    path: '/completions/:id',
    permission: 'completions:create',
    rate: 'read',
    summary: 'A completion job: status, steps, tool calls, usage, timing',
    handler: async (ctx, host) => {
      // With a caller, another caller's job is as unknown as one that never existed; with a shared
      // state, a job another node runs is found there.
      const job = await manager(host).find(ctx.params.id!, ctx.caller ? { caller: ctx.caller } : {});
      if (!job) throw new McpKitError('NOT_FOUND', `Completion ${quote(ctx.params.id)} not found`);
      return json(job, 200, { 'cache-control': 'no-store' });
    },
  },
  {
    method: 'DELETE',
    path: '/completions/:id',
    permission: 'completions:create',
    rate: 'completions',
    summary: 'Cancel a completion job (aborts the model request and running tool calls)',
    handler: async (ctx, host) => {
      const job = await manager(host).cancelAnywhere(
        ctx.params.id!,
        ctx.caller ? { caller: ctx.caller } : {},
      );
      if (!job) throw new McpKitError('NOT_FOUND', `Completion ${quote(ctx.params.id)} not found`);
      return json(job);
    },
  },
];
