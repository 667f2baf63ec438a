import type { AuthInfo } from '@modelcontextprotocol/server';

/** Who is calling: set by the policy layer when authentication is configured. */
export interface CallerIdentity {
  /** A stable id: an API key's id, an OAuth subject, or `anonymous`. */
  id: string;
  /** Role names (built-in or from the `roles` option). */
  roles?: string[];
  /** Permissions held directly (for example OAuth scopes named after permissions). */
  permissions?: string[];
  /** OAuth token details, when the caller authenticated with a bearer token. */
  authInfo?: AuthInfo;
}

/** Log levels, most to least verbose. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** A log method in pino's shape: an optional object of fields, then a message. */
export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

/**
 * A structured logger. pino loggers fit as they are; the default writes JSON lines to stderr so that
 * stdio servers keep stdout for MCP messages only.
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: object): Logger;
}
