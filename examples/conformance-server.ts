/**
 * The server `npm run test:conformance` runs the official MCP conformance suite against: every
 * fixture tool, resource and prompt the suite's server scenarios ask for, served by one mcpkit
 * server over both protocol eras (2025-era sessions and the 2026-07-28 stateless wire).
 *
 *   npx tsx examples/conformance-server.ts            (PORT defaults to 3000; PORT=0 picks a free one)
 *   MOUNT=express npx tsx examples/conformance-server.ts
 *
 * `MOUNT` picks how the server is mounted: `listen` (mcpkit's own node:http server, the default),
 * `express`, `fastify` or `hono` (on `@hono/node-server`), each beside a route of the framework's
 * own, the way an application would mount it: the suite then checks the MCP endpoint through that
 * framework. Prints `LISTENING <url>` (the MCP endpoint) on stdout once it accepts connections.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  acceptedContent,
  CLIENT_CAPABILITIES_META_KEY,
  type ClientCapabilities,
  createRequestStateCodec,
  type InputRequest,
  inputRequired,
  inputResponse,
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { createMcpServer, type McpKitServer, runAsTask } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { z } from 'zod';

/** A 1×1 red PNG. */
const IMG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
/** A minimal WAV file. */
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Seals the multi-round-trip `requestState` (HMAC): a tampered echo is a -32602 error. */
const stateCodec = createRequestStateCodec<{ tool: string; step: string; data?: Record<string, unknown> }>({
  key: randomBytes(32),
});

function mcpContext(ctx: { mcp?: ServerContext }): ServerContext {
  if (!ctx.mcp) throw new Error('This tool only runs over MCP');
  return ctx.mcp;
}

/** Verifies the echoed `requestState` of this round, if any; a bad one is a JSON-RPC -32602 error. */
async function verifiedState(mcp: ServerContext, tool: string) {
  const raw = mcp.mcpReq.requestState<string>();
  if (raw === undefined) return undefined;
  try {
    const state = await stateCodec.verify(raw, mcp);
    if (state.tool !== tool) throw new Error('state minted for another tool');
    return state;
  } catch {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid or expired requestState');
  }
}

/** The capabilities the client declared in this request's `_meta` envelope (2026-07-28 wire). */
function declaredCapabilities(mcp: ServerContext): ClientCapabilities | undefined {
  const envelope = mcp.mcpReq.envelope as Record<string, unknown> | undefined;
  return envelope?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined;
}

const askName = (message = 'What is your name?') =>
  inputRequired.elicit({
    message,
    requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
  });

function registerContentTools(server: McpKitServer): void {
  server.tools.register({
    name: 'test_simple_text',
    description: 'Returns a simple text response',
    handler: () => 'This is a simple text response for testing.',
  });
  server.tools.register({
    name: 'test_image_content',
    description: 'Returns an image',
    handler: () => ({ type: 'image', data: IMG, mimeType: 'image/png' }),
  });
  server.tools.register({
    name: 'test_audio_content',
    description: 'Returns audio',
    handler: () => ({ type: 'audio', data: WAV, mimeType: 'audio/wav' }),
  });
  server.tools.register({
    name: 'test_embedded_resource',
    description: 'Returns an embedded resource',
    handler: () => ({
      type: 'resource',
      resource: {
        uri: 'test://embedded-resource',
        mimeType: 'text/plain',
        text: 'This is an embedded resource content.',
      },
    }),
  });
  server.tools.register({
    name: 'test_multiple_content_types',
    description: 'Returns text, an image and an embedded resource',
    handler: () => [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: IMG, mimeType: 'image/png' },
      {
        type: 'resource',
        resource: {
          uri: 'test://mixed-content-resource',
          mimeType: 'application/json',
          text: JSON.stringify({ test: 'data', value: 123 }),
        },
      },
    ],
  });
  server.tools.register({
    name: 'test_error_handling',
    description: 'Always fails with a tool error',
    handler: () => {
      throw new Error('This tool intentionally returns an error for testing');
    },
  });
  server.tools.register({
    name: 'test_tool_with_logging',
    description: 'Sends log messages while it runs',
    handler: async (_args, ctx) => {
      await ctx.log.info('Tool execution started');
      await sleep(50);
      await ctx.log.info('Tool processing data');
      await sleep(50);
      await ctx.log.info('Tool execution completed');
      return 'Tool with logging executed successfully';
    },
  });
  server.tools.register({
    name: 'test_tool_with_progress',
    description: 'Reports progress while it runs',
    handler: async (_args, ctx) => {
      for (const progress of [0, 50, 100]) {
        await ctx.progress(progress, 100, `Completed step ${progress / 50 + 1} of 3`);
        if (progress < 100) await sleep(50);
      }
      return String(ctx.mcp?.mcpReq._meta?.progressToken ?? 'no progress token');
    },
  });
  server.tools.register({
    name: 'test_reconnection',
    description: 'Closes its SSE stream before answering, so the client must resume (SEP-1699)',
    handler: async (_args, ctx) => {
      ctx.mcp?.http?.closeSSE?.();
      await sleep(100);
      return 'Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.';
    },
  });
  server.tools.register({
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    // Plain JSON Schema is served exactly as written.
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: {
          $anchor: 'addressDef',
          type: 'object',
          properties: { street: { type: 'string' }, city: { type: 'string' } },
        },
      },
      properties: {
        name: { type: 'string' },
        address: { $ref: '#/$defs/address' },
        contactMethod: { type: 'string', enum: ['phone', 'email'] },
        phone: { type: 'string' },
        email: { type: 'string' },
      },
      allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
      if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
      // biome-ignore lint/suspicious/noThenProperty: `then` is a JSON Schema keyword here, not a thenable.
      then: { required: ['phone'] },
      else: { required: ['email'] },
      additionalProperties: false,
    },
    handler: (args) => `Received: ${JSON.stringify(args)}`,
  });
  server.tools.register({
    name: 'test_custom_header',
    description: 'Echoes a region that the client mirrors into the Mcp-Param-Region header (SEP-2243)',
    inputSchema: {
      type: 'object',
      properties: {
        region: { type: 'string', description: 'A region name', 'x-mcp-header': 'Region' },
      },
      required: ['region'],
    },
    handler: (args) => `Region: ${String(args.region)}`,
  });
}

function registerClientRequestTools(server: McpKitServer): void {
  // 2025-era tools that call back into the client during the call.
  server.tools.register({
    name: 'test_sampling',
    description: 'Asks the client for an LLM completion',
    inputSchema: { prompt: z.string() },
    handler: async ({ prompt }, ctx) => {
      const result = await mcpContext(ctx).mcpReq.requestSampling({
        messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
        maxTokens: 100,
      });
      const content = Array.isArray(result.content) ? result.content[0] : result.content;
      return `LLM response: ${content?.type === 'text' ? content.text : 'No response'}`;
    },
  });
  server.tools.register({
    name: 'test_elicitation',
    description: 'Asks the user for information',
    inputSchema: { message: z.string() },
    handler: async ({ message }, ctx) => {
      const result = await mcpContext(ctx).mcpReq.elicitInput({
        message,
        requestedSchema: {
          type: 'object',
          properties: {
            username: { type: 'string', description: "User's response" },
            email: { type: 'string', description: "User's email address" },
          },
          required: ['username', 'email'],
        },
      });
      return `User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`;
    },
  });
  server.tools.register({
    name: 'test_elicitation_sep1034_defaults',
    description: 'Elicitation with default values for every primitive type (SEP-1034)',
    handler: async (_args, ctx) => {
      const result = await mcpContext(ctx).mcpReq.elicitInput({
        message: 'Please review and update the form fields with defaults',
        requestedSchema: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'User name', default: 'John Doe' },
            age: { type: 'integer', description: 'User age', default: 30 },
            score: { type: 'number', description: 'User score', default: 95.5 },
            status: {
              type: 'string',
              description: 'User status',
              enum: ['active', 'inactive', 'pending'],
              default: 'active',
            },
            verified: { type: 'boolean', description: 'Verification status', default: true },
          },
          required: [],
        },
      });
      return `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`;
    },
  });
  server.tools.register({
    name: 'test_elicitation_sep1330_enums',
    description: 'Elicitation with every enum schema variant (SEP-1330)',
    handler: async (_args, ctx) => {
      const result = await mcpContext(ctx).mcpReq.elicitInput({
        message: 'Please select options from the enum fields',
        requestedSchema: {
          type: 'object',
          properties: {
            untitledSingle: {
              type: 'string',
              description: 'Select one option',
              enum: ['option1', 'option2', 'option3'],
            },
            titledSingle: {
              type: 'string',
              description: 'Select one option with titles',
              oneOf: [
                { const: 'value1', title: 'First Option' },
                { const: 'value2', title: 'Second Option' },
                { const: 'value3', title: 'Third Option' },
              ],
            },
            legacyEnum: {
              type: 'string',
              description: 'Select one option (legacy)',
              enum: ['opt1', 'opt2', 'opt3'],
              enumNames: ['Option One', 'Option Two', 'Option Three'],
            },
            untitledMulti: {
              type: 'array',
              description: 'Select multiple options',
              minItems: 1,
              maxItems: 3,
              items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
            },
            titledMulti: {
              type: 'array',
              description: 'Select multiple options with titles',
              minItems: 1,
              maxItems: 3,
              items: {
                anyOf: [
                  { const: 'value1', title: 'First Choice' },
                  { const: 'value2', title: 'Second Choice' },
                  { const: 'value3', title: 'Third Choice' },
                ],
              },
            },
          },
          required: [],
        },
      });
      return `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`;
    },
  });
}

function registerInputRequiredTools(server: McpKitServer): void {
  // 2026-07-28 multi-round-trip requests (SEP-2322): the handler returns `input_required` and the
  // client retries the same call with `inputResponses` (and the echoed `requestState`).
  server.tools.register({
    name: 'test_input_required_result_elicitation',
    description: 'Asks for the user name through an input_required result',
    handler: (_args, ctx) => {
      const answer = acceptedContent(mcpContext(ctx).mcpReq.inputResponses, 'user_name');
      if (typeof answer?.name !== 'string') return inputRequired({ inputRequests: { user_name: askName() } });
      return `Hello, ${answer.name}!`;
    },
  });
  server.tools.register({
    name: 'test_input_required_result_sampling',
    description: 'Asks the client for a completion through an input_required result',
    handler: (_args, ctx) => {
      const answer = inputResponse(mcpContext(ctx).mcpReq.inputResponses, 'capital_question');
      if (answer.kind !== 'sampling') {
        return inputRequired({
          inputRequests: {
            capital_question: inputRequired.createMessage({
              messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }],
              maxTokens: 100,
            }),
          },
        });
      }
      const content = Array.isArray(answer.result.content) ? answer.result.content[0] : answer.result.content;
      return `Sampling response: ${content?.type === 'text' ? content.text : '(non-text)'}`;
    },
  });
  server.tools.register({
    name: 'test_input_required_result_list_roots',
    description: "Asks for the client's roots through an input_required result",
    handler: (_args, ctx) => {
      const answer = inputResponse(mcpContext(ctx).mcpReq.inputResponses, 'client_roots');
      if (answer.kind !== 'roots')
        return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
      return `Client roots: ${answer.roots.map((r) => r.uri).join(', ') || '(none)'}`;
    },
  });
  server.tools.register({
    name: 'test_input_required_result_request_state',
    description: 'Round-trips an integrity-protected requestState',
    handler: async (_args, ctx) => {
      const mcp = mcpContext(ctx);
      const state = await verifiedState(mcp, 'request_state');
      const answer = acceptedContent(mcp.mcpReq.inputResponses, 'confirm');
      if (state?.step !== 'confirm' || typeof answer?.ok !== 'boolean') {
        return inputRequired({
          inputRequests: {
            confirm: inputRequired.elicit({
              message: 'Please confirm',
              requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
            }),
          },
          requestState: await stateCodec.mint({ tool: 'request_state', step: 'confirm' }),
        });
      }
      return `state-ok: confirmed=${answer.ok}`;
    },
  });
  server.tools.register({
    name: 'test_input_required_result_multiple_inputs',
    description: 'Asks for an elicitation, a completion and the roots at once',
    handler: async (_args, ctx) => {
      const mcp = mcpContext(ctx);
      const state = await verifiedState(mcp, 'multiple_inputs');
      const responses = mcp.mcpReq.inputResponses;
      const name = acceptedContent(responses, 'user_name');
      const greeting = inputResponse(responses, 'greeting');
      const roots = inputResponse(responses, 'client_roots');
      if (state && typeof name?.name === 'string' && greeting.kind === 'sampling' && roots.kind === 'roots') {
        return `Got name=${name.name}, a greeting and ${roots.roots.length} root(s)`;
      }
      return inputRequired({
        inputRequests: {
          user_name: askName(),
          greeting: inputRequired.createMessage({
            messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }],
            maxTokens: 50,
          }),
          client_roots: inputRequired.listRoots(),
        },
        requestState: await stateCodec.mint({ tool: 'multiple_inputs', step: 'all' }),
      });
    },
  });
  server.tools.register({
    name: 'test_input_required_result_multi_round',
    description: 'Asks two questions over two rounds, with a new requestState each round',
    handler: async (_args, ctx) => {
      const mcp = mcpContext(ctx);
      const state = await verifiedState(mcp, 'multi_round');
      const responses = mcp.mcpReq.inputResponses;
      if (state?.step === 'step2') {
        const color = acceptedContent(responses, 'step2');
        if (typeof color?.color === 'string') {
          return `Hello ${String(state.data?.name)}, your favorite color is ${color.color}`;
        }
      }
      const name = state?.step === 'step1' ? acceptedContent(responses, 'step1') : undefined;
      if (typeof name?.name === 'string' || state?.step === 'step2') {
        return inputRequired({
          inputRequests: {
            step2: inputRequired.elicit({
              message: 'Step 2: What is your favorite color?',
              requestedSchema: {
                type: 'object',
                properties: { color: { type: 'string' } },
                required: ['color'],
              },
            }),
          },
          requestState: await stateCodec.mint({
            tool: 'multi_round',
            step: 'step2',
            data: { name: name?.name ?? state?.data?.name },
          }),
        });
      }
      return inputRequired({
        inputRequests: { step1: askName('Step 1: What is your name?') },
        requestState: await stateCodec.mint({ tool: 'multi_round', step: 'step1' }),
      });
    },
  });
  server.tools.register({
    name: 'test_input_required_result_tampered_state',
    description: 'Rejects a requestState that fails its integrity check',
    handler: async (_args, ctx) => {
      const mcp = mcpContext(ctx);
      const state = await verifiedState(mcp, 'tampered_state');
      const answer = acceptedContent(mcp.mcpReq.inputResponses, 'user_name');
      if (state && typeof answer?.name === 'string') return `Hello, ${answer.name}! (state verified)`;
      return inputRequired({
        inputRequests: { user_name: askName() },
        requestState: await stateCodec.mint({ tool: 'tampered_state', step: 'ask' }),
      });
    },
  });
  server.tools.register({
    name: 'test_input_required_result_capabilities',
    description: 'Only asks for input the client declared it can give',
    handler: (_args, ctx) => {
      const mcp = mcpContext(ctx);
      const caps = declaredCapabilities(mcp) ?? {};
      const responses = mcp.mcpReq.inputResponses;
      const requests: Record<string, InputRequest> = {};
      if (caps.elicitation && acceptedContent(responses, 'user_name') === undefined)
        requests.user_name = askName();
      if (caps.sampling && inputResponse(responses, 'capital_question').kind !== 'sampling') {
        requests.capital_question = inputRequired.createMessage({
          messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }],
          maxTokens: 100,
        });
      }
      if (!caps.elicitation && !caps.sampling) {
        throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } });
      }
      if (Object.keys(requests).length > 0) return inputRequired({ inputRequests: requests });
      return 'All declared capabilities answered';
    },
  });
}

function registerDiagnosticTools(server: McpKitServer): void {
  // Hooks the 2026-07-28 server-stateless scenario (SEP-2575) drives.
  server.tools.register({
    name: 'test_missing_capability',
    description: 'Requires the sampling client capability; fails with -32021 without it',
    handler: (_args, ctx) => {
      const caps = declaredCapabilities(mcpContext(ctx));
      if (!caps?.sampling)
        throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } });
      return 'sampling capability present';
    },
  });
  server.tools.register({
    name: 'test_streaming_elicitation',
    description:
      'Streams progress, then asks for input through an input_required result (never a push request)',
    handler: async (_args, ctx) => {
      const answer = acceptedContent(mcpContext(ctx).mcpReq.inputResponses, 'user_name');
      if (typeof answer?.name === 'string') return `Hello, ${answer.name}!`;
      await ctx.progress(1, 2, 'asking for input');
      return inputRequired({ inputRequests: { user_name: askName() } });
    },
  });
  server.tools.register({
    name: 'test_logging_tool',
    description: 'Logs to the client; sends nothing unless the request set a log level',
    handler: async (_args, ctx) => {
      await ctx.log.info('test_logging_tool ran');
      return 'Logged (if the client asked for logs)';
    },
  });
  server.tools.register({
    name: 'test_trigger_tool_change',
    description: 'Adds and removes a tool, so listeners get notifications/tools/list_changed',
    handler: () => {
      const handle = server.tools.register({
        name: 'test_temporary_tool',
        description: 'Exists for a moment',
        handler: () => 'temporary',
      });
      handle.remove();
      return 'Tool list changed';
    },
  });
  server.tools.register({
    name: 'test_trigger_prompt_change',
    description: 'Adds and removes a prompt, so listeners get notifications/prompts/list_changed',
    handler: () => {
      const handle = server.prompts.register({
        name: 'test_temporary_prompt',
        description: 'Exists for a moment',
        messages: [{ role: 'user', content: 'temporary' }],
      });
      handle.remove();
      return 'Prompt list changed';
    },
  });
}

/** Waits `ms`, or rejects as soon as `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

function registerTaskTools(server: McpKitServer): void {
  // The tasks extension (SEP-2663): tools that run as tasks for clients that declare
  // io.modelcontextprotocol/tasks, polled with tasks/get, answered with tasks/update.
  server.tools.register({
    name: 'greet',
    description: 'Greets someone (synchronous only)',
    inputSchema: { name: z.string() },
    handler: ({ name }) => `Hello, ${name}!`,
  });
  server.tools.register({
    name: 'slow_compute',
    description: 'Sleeps `seconds` seconds, then answers; runs as a task when it can',
    inputSchema: { seconds: z.number().min(0).max(600), label: z.string().optional() },
    task: 'optional',
    handler: async ({ seconds, label }, ctx) => {
      await abortableSleep(seconds * 1000, ctx.signal);
      return `Computed ${label ?? 'result'} after ${seconds}s`;
    },
  });
  server.tools.register({
    name: 'failing_job',
    description: 'Always ends in a tool error after about a second; runs only as a task',
    task: 'required',
    handler: async (_args, ctx) => {
      await abortableSleep(1000, ctx.signal);
      return { content: [{ type: 'text', text: 'failing_job always fails' }], isError: true };
    },
  });
  server.tools.register({
    name: 'protocol_error_job',
    description: 'Fails with a JSON-RPC protocol error; runs as a task when it can',
    task: 'optional',
    handler: () => {
      throw new ProtocolError(ProtocolErrorCode.InternalError, 'protocol_error_job failed on purpose');
    },
  });
  server.tools.register({
    name: 'confirm_delete',
    description: 'Asks for confirmation, then "deletes" the file; runs as a task when it can',
    inputSchema: { filename: z.string() },
    task: 'optional',
    handler: ({ filename }, ctx) => {
      const answer = acceptedContent(ctx.mcp?.mcpReq.inputResponses, 'confirm');
      if (answer === undefined) {
        return inputRequired({
          inputRequests: {
            confirm: inputRequired.elicit({
              message: `Delete ${filename}?`,
              requestedSchema: {
                type: 'object',
                properties: { confirm: { type: 'boolean' } },
                required: ['confirm'],
              },
            }),
          },
        });
      }
      return answer.confirm === true ? `Deleted ${filename}` : `Kept ${filename}`;
    },
  });
  server.tools.register({
    name: 'multi_input',
    description: 'Asks two questions at once; runs as a task when it can',
    task: 'optional',
    handler: (_args, ctx) => {
      const responses = ctx.mcp?.mcpReq.inputResponses;
      const first = acceptedContent(responses, 'first');
      const second = acceptedContent(responses, 'second');
      if (first === undefined || second === undefined) {
        return inputRequired({
          inputRequests: {
            first: askName('First: what is your name?'),
            second: askName('Second: what is your name?'),
          },
        });
      }
      return `Got ${String(first.name)} and ${String(second.name)}`;
    },
  });
  server.tools.register({
    name: 'test_tool_with_task',
    description: 'Asks for a name in the request (input_required), then finishes as a task',
    // The handler runs in the request first, and creates the task itself with runAsTask.
    task: { support: 'required', start: 'handler' },
    handler: (_args, ctx) => {
      const answer = acceptedContent(ctx.mcp?.mcpReq.inputResponses, 'user_name');
      if (typeof answer?.name !== 'string') return inputRequired({ inputRequests: { user_name: askName() } });
      const name = answer.name;
      return runAsTask(async (_a, task) => {
        await abortableSleep(100, task.signal);
        return `Hello, ${name}! (from a task)`;
      });
    },
  });
}

function registerResources(server: McpKitServer): void {
  server.resources.register({
    uri: 'test://static-text',
    name: 'static-text',
    description: 'A static text resource',
    mimeType: 'text/plain',
    read: () => 'This is the content of the static text resource.',
  });
  server.resources.register({
    uri: 'test://static-binary',
    name: 'static-binary',
    description: 'A static binary resource (a PNG image)',
    mimeType: 'image/png',
    read: () => ({ blob: IMG }),
  });
  server.resources.register({
    uriTemplate: 'test://template/{id}/data',
    name: 'template',
    description: 'A resource template with an id parameter',
    mimeType: 'application/json',
    read: (_uri, { id }) => JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
  });
  server.resources.register({
    uri: 'test://watched-resource',
    name: 'watched-resource',
    description: 'A resource clients can subscribe to',
    mimeType: 'text/plain',
    read: () => 'Watched resource content',
  });
}

function registerPrompts(server: McpKitServer): void {
  server.prompts.register({
    name: 'test_simple_prompt',
    description: 'A prompt without arguments',
    messages: [{ role: 'user', content: 'This is a simple prompt for testing.' }],
  });
  server.prompts.register({
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
    complete: { arg1: (value) => ['test', 'testValue1', 'other'].filter((v) => v.startsWith(value)) },
    messages: [{ role: 'user', content: "Prompt with arguments: arg1='{{arg1}}', arg2='{{arg2}}'" }],
  });
  server.prompts.register({
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt that embeds a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
    render: ({ resourceUri = '' }) => [
      {
        role: 'user',
        content: {
          type: 'resource',
          resource: {
            uri: resourceUri,
            mimeType: 'text/plain',
            text: 'Embedded resource content for testing.',
          },
        },
      },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
    ],
  });
  server.prompts.register({
    name: 'test_prompt_with_image',
    description: 'A prompt with an image',
    render: () => [
      { role: 'user', content: { type: 'image', data: IMG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
    ],
  });
  server.prompts.register({
    name: 'test_input_required_result_prompt',
    description: 'A prompt that asks for context through an input_required result',
    render: (_args, ctx) => {
      const answer = acceptedContent(ctx.mcp?.mcpReq.inputResponses, 'user_context');
      if (typeof answer?.context !== 'string') {
        return inputRequired({
          inputRequests: {
            user_context: inputRequired.elicit({
              message: 'What context should the prompt use?',
              requestedSchema: {
                type: 'object',
                properties: { context: { type: 'string' } },
                required: ['context'],
              },
            }),
          },
        });
      }
      return `Answer using this context: ${answer.context}`;
    },
  });
}

function createConformanceServer(): McpKitServer {
  const server = createMcpServer({
    name: 'mcpkit-conformance-server',
    version: '1.0.0',
    // Quiet unless MCP_LOG_LEVEL asks otherwise: test_error_handling fails on purpose.
    ...(process.env.MCP_LOG_LEVEL ? {} : { logLevel: 'silent' as const }),
    // Resumable SSE streams, so test_reconnection's client can pick up where the stream dropped.
    http: { eventStore: 'memory', sseRetryMs: 500 },
  });
  registerContentTools(server);
  registerClientRequestTools(server);
  registerInputRequiredTools(server);
  registerDiagnosticTools(server);
  registerTaskTools(server);
  registerResources(server);
  registerPrompts(server);
  return server;
}

/** A running mount: where its MCP endpoint is, and how to stop it. */
interface Mounted {
  url: string;
  close(): Promise<void>;
}

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

/** A framework's node:http server, mcpkit inside: closing stops the server, then its connections. */
function mountedOn(server: McpKitServer, httpServer: import('node:http').Server): Mounted {
  return {
    url: `http://${host}:${(httpServer.address() as AddressInfo).port}/mcp`,
    close: async () => {
      await server.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

/** mcpkit's own node:http server. */
async function mountListen(server: McpKitServer): Promise<Mounted> {
  const listening = await listen(server, { port, host });
  return { url: `${listening.url}/mcp`, close: () => listening.close() };
}

/** An Express 5 app with a route of its own, mcpkit mounted at its root. */
async function mountExpress(server: McpKitServer): Promise<Mounted> {
  const { default: express } = await import('express');
  const { mcpkitExpress } = await import('mcpkit/express');
  const app = express();
  app.get('/about', (_req, res) => void res.send('an Express app'));
  app.use(mcpkitExpress(server));
  const httpServer = await new Promise<import('node:http').Server>((resolve) => {
    const started = app.listen(port, host, () => resolve(started));
  });
  return mountedOn(server, httpServer);
}

/** A Fastify 5 app with a route of its own, the mcpkit plugin registered at its root. */
async function mountFastify(server: McpKitServer): Promise<Mounted> {
  const { default: Fastify } = await import('fastify');
  const { mcpkitFastify } = await import('mcpkit/fastify');
  const app = Fastify();
  app.get('/about', async () => 'a Fastify app');
  await app.register(mcpkitFastify, { server });
  await app.listen({ port, host });
  return {
    url: `http://${host}:${(app.server.address() as AddressInfo).port}/mcp`,
    close: async () => {
      await server.close();
      await app.close();
    },
  };
}

/** A Hono app on `@hono/node-server` with a route of its own, mcpkit mounted at its root. */
async function mountHono(server: McpKitServer): Promise<Mounted> {
  const { Hono } = await import('hono');
  const { serve } = await import('@hono/node-server');
  const { mcpkitHono } = await import('mcpkit/hono');
  const app = new Hono();
  app.get('/about', (c) => c.text('a Hono app'));
  app.route('/', mcpkitHono(server));
  const httpServer = await new Promise<import('node:http').Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port, hostname: host }, () =>
      resolve(started as import('node:http').Server),
    );
  });
  return mountedOn(server, httpServer);
}

const MOUNTS = { listen: mountListen, express: mountExpress, fastify: mountFastify, hono: mountHono };
const mount = (process.env.MOUNT ?? 'listen') as keyof typeof MOUNTS;
if (!(mount in MOUNTS)) {
  console.error(`MOUNT must be one of ${Object.keys(MOUNTS).join(', ')} (got ${JSON.stringify(mount)})`);
  process.exit(2);
}
const mounted = await MOUNTS[mount](createConformanceServer());
console.log(`LISTENING ${mounted.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void mounted.close().then(() => process.exit(0));
  });
}
