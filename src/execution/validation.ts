/**
 * A call's arguments and a result's structured content checked against the tool's compiled schemas,
 * and the results that report what failed.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { RegisteredTool } from '../catalog/tools.js';
import { McpKitError } from '../core/errors.js';
import { redactText } from '../core/redaction.js';
import { formatIssues, SchemaCompileError, thrownIssues, type ValidationIssue } from '../schema.js';
import { addErrorMeta, errorResult, failureCode, handlerFailureMessage, MAX_MESSAGE } from './results.js';

/** Arguments the tool's input schema refused: `INVALID_ARGUMENT`, with the fields for REST's 400 problem. */
export function invalidArguments(tool: RegisteredTool, issues: ValidationIssue[]): CallToolResult {
  const invalid = errorResult(
    'INVALID_ARGUMENT',
    `Input validation error: Invalid arguments for tool ${tool.name}: ${formatIssues(issues)}`,
  );
  addErrorMeta(invalid, { issues });
  return invalid;
}

/**
 * The tool's own input schema failed (could not be compiled, or threw while checking): the server's
 * bug, reported to the caller plainly. Our compiler's verdict names the schema's fault; anything else
 * thrown from a validator (a refinement, a getter in a shape) is the server's code, whose message
 * stays in the log.
 */
export function brokenSchema(tool: RegisteredTool, error: unknown): CallToolResult {
  const reason =
    error instanceof SchemaCompileError
      ? error.message
      : 'its input schema failed while checking the arguments';
  return errorResult('INTERNAL', `Tool ${tool.name} cannot run: ${reason}`);
}

/**
 * What is wrong with a result of a tool that has an output schema, or `undefined` when nothing is:
 * its structured content must be there and match.
 */
export async function checkOutput(tool: RegisteredTool, result: CallToolResult): Promise<string | undefined> {
  if (result.structuredContent === undefined) {
    return `Output validation error: tool ${tool.name} has an output schema but returned no structured content`;
  }
  const outcome = await tool.output!.validate(result.structuredContent);
  if (outcome.ok) return undefined;
  return `Output validation error: invalid structured content for tool ${tool.name}: ${formatIssues(outcome.issues)}`;
}

/**
 * The answer to a handler that threw, under its error id: a message safe to show the caller, and its
 * code. A validation failure it threw (Standard Schema issues, a zod parse, a `ValidationError`)
 * names the fields, as invalid arguments do; an `McpKitError` speaks for itself.
 */
export function handlerFailure(tool: RegisteredTool, error: unknown, errorId: string): CallToolResult {
  const code = failureCode(error);
  const issues = error instanceof McpKitError ? undefined : thrownIssues(error);
  const message = issues
    ? redactText(`Invalid input for tool ${tool.name}: ${formatIssues(issues)}`, { maxLength: MAX_MESSAGE })
    : handlerFailureMessage(error);
  const failed = errorResult(code, `${message} (error id ${errorId})`, errorId);
  if (issues) addErrorMeta(failed, { issues });
  return failed;
}
