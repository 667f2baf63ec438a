/**
 * Retries: failed calls of idempotent tools tried again with exponential backoff and jitter, but only
 * for failures that may pass on their own.
 */
import { ProtocolError } from '@modelcontextprotocol/server';
import pRetry, { AbortError } from 'p-retry';
import type { RegisteredTool } from '../catalog/tools.js';
import { isAbortError, McpKitError, type McpKitErrorCode } from '../core/errors.js';
import { isValidationError } from '../schema.js';
import type { CallScope } from './scope.js';

/**
 * How failed calls of idempotent tools are retried (exponential backoff with jitter). Only failures
 * that may pass on their own are: never one the caller's input caused (docs/tools.md, "Retries").
 */
export interface RetryPolicy {
  /** Further attempts after the first. */
  retries?: number;
  minTimeoutMs?: number;
  maxTimeoutMs?: number;
  factor?: number;
}

/** The executor's policy when none is given. */
export const DEFAULT_RETRY: Readonly<Required<RetryPolicy>> = Object.freeze({
  retries: 2,
  minTimeoutMs: 100,
  maxTimeoutMs: 2000,
  factor: 2,
});

/** Retries allowed for a tool: only idempotent tools are retried. */
export function retriesFor(tool: RegisteredTool, fallback: number): number {
  const { definition } = tool;
  const idempotent = definition.idempotent ?? definition.annotations?.idempotentHint === true;
  if (!idempotent) return 0;
  return definition.retries ?? fallback;
}

/**
 * The codes of a thrown {@link McpKitError} that may pass on their own: an upstream or a resource
 * that is down, busy, limiting or slow to answer, and failures of unknown cause.
 */
const TRANSIENT_CODES: ReadonlySet<McpKitErrorCode> = new Set<McpKitErrorCode>([
  'UNAVAILABLE',
  'UPSTREAM_ERROR',
  'BUSY',
  'RATE_LIMITED',
  'TIMEOUT',
  'INTERNAL',
]);

/**
 * Whether a handler's failure is worth another attempt (of an idempotent tool): an `McpKitError` with
 * a transient code, or an error of unknown cause (a dropped connection, an upstream's 503). Never one
 * the caller's input caused (an `McpKitError` with any other code, such as `INVALID_ARGUMENT`, or a
 * validation failure), an abort, or an SDK `ProtocolError`, which asks for a JSON-RPC error.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof McpKitError) return TRANSIENT_CODES.has(error.code);
  return !(error instanceof ProtocolError) && !isAbortError(error) && !isValidationError(error);
}

/** One call's attempts: how they run, how many were made, and who hears of a retry. */
export interface Attempts {
  /** Further attempts allowed after the first (more than 0 here). */
  readonly retries: number;
  readonly policy: Readonly<Required<RetryPolicy>>;
  /** The call's scope: every attempt runs in it, and a call that ended is never tried again. */
  readonly scope: CallScope;
  /** Attempts made so far. */
  count: number;
  /** Called before another attempt, with the failure and the number of the attempt that failed. */
  onRetry(error: unknown, attempt: number): void;
}

/**
 * Runs `attempt` until it succeeds, fails for good, or runs out of retries; counts the attempts in
 * `attempts.count`. Rejects with the last failure.
 */
export function withRetries<T>(attempt: () => T | Promise<T>, attempts: Attempts): Promise<T> {
  const { scope, policy } = attempts;
  return pRetry(
    async () => {
      attempts.count++;
      try {
        return await scope.run(attempt);
      } catch (error) {
        // Only a failure that may pass on its own is tried again: never a cancelled or timed-out
        // call, nor one the caller's input caused (docs/tools.md, "Retries").
        if (scope.ended || !isRetryable(error)) throw new AbortError(error as Error);
        throw error;
      }
    },
    {
      retries: attempts.retries,
      minTimeout: policy.minTimeoutMs,
      maxTimeout: policy.maxTimeoutMs,
      factor: policy.factor,
      randomize: true,
      signal: scope.signal,
      // Asked only when another attempt follows (p-retry itself never retries a TypeError other
      // than a network failure), which is when a `retry` event is due.
      shouldRetry: ({ error, attemptNumber }) => {
        attempts.onRetry(error, attemptNumber);
        return true;
      },
    },
  );
}
