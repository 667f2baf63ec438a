/**
 * Tool spans, after the OpenTelemetry MCP conventions: one `execute_tool {tool}` span per execution
 * (or the outcome recorded on a span the caller already has for it), marked failed for a tool error.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { RegisteredTool } from '../catalog/tools.js';
import { markError, type SpanAttributes, type SpanLike, type Tracing } from '../telemetry/tracing.js';
import type { ExecuteOptions } from './options.js';
import { errorCodeOf } from './results.js';

/**
 * Marks `span` failed when `result` is a tool error, as the OpenTelemetry MCP conventions ask:
 * `error.type` is `tool_error`, and mcpkit's own code goes in `mcpkit.error.code`.
 */
export function recordOutcome(span: SpanLike, result: CallToolResult): CallToolResult {
  if (result.isError) {
    const code = errorCodeOf(result) ?? 'UPSTREAM_ERROR';
    span.setAttribute('mcpkit.error.code', code);
    markError(span, 'tool_error', code);
  }
  return result;
}

/** Runs `run`, the execution of `call.tool`, in an `execute_tool <name>` span of `tracing`. */
export function inToolSpan(
  tracing: Tracing,
  call: { tool: RegisteredTool; options: ExecuteOptions },
  run: () => Promise<CallToolResult>,
): Promise<CallToolResult> {
  const { tool, options } = call;
  return tracing.span(
    `execute_tool ${tool.name}`,
    async (span) => {
      const result = await run();
      return span ? recordOutcome(span, result) : result;
    },
    {
      attributes: () => {
        const attributes: SpanAttributes = {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': tool.name,
          'mcpkit.origin': options.origin ?? 'internal',
        };
        if (options.caller) attributes['mcpkit.caller.id'] = options.caller.id;
        return attributes;
      },
    },
  );
}
