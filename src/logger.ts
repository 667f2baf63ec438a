import type { LogFn, Logger, LogLevel } from './types.js';

const LEVELS: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: 100,
};

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Where lines go. Default: `console.error` (stderr on Node), never stdout. */
  write?: (line: string) => void;
  /** Fields added to every line. */
  bindings?: object;
}

/** The levels a {@link Logger} has a method for. */
export type LoggerMethodLevel = Exclude<LogLevel, 'silent' | 'fatal'>;

/**
 * A {@link Logger} whose methods are `method(level)` for each level, and whose `child` is `child`:
 * the one shape every logger mcpkit builds has.
 *
 * @example
 * ```ts
 * const logger = loggerOf((level) => (fields) => sink.push({ level, fields }), () => logger);
 * ```
 */
export function loggerOf(method: (level: LoggerMethodLevel) => LogFn, child: Logger['child']): Logger {
  return {
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    child,
  };
}

/** Whether `value` names a log level. */
export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && Object.hasOwn(LEVELS, value);
}

/** Other names for a level, as Python's logging and syslog spell them (keys lower case). */
const LEVEL_ALIASES: Readonly<Record<string, LogLevel>> = {
  warning: 'warn',
  critical: 'fatal',
};

/**
 * The level a name means, in any case, with Python's `WARNING` and `CRITICAL` mapped to `warn` and
 * `fatal`; `undefined` for a name that is not a level.
 *
 * @example
 * ```ts
 * toLogLevel('WARNING'); // 'warn'
 * toLogLevel('Info'); // 'info'
 * toLogLevel('loud'); // undefined
 * ```
 */
export function toLogLevel(value: unknown): LogLevel | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const name = value.toLowerCase();
  if (isLogLevel(name)) return name;
  return Object.hasOwn(LEVEL_ALIASES, name) ? LEVEL_ALIASES[name] : undefined;
}

/** The level names {@link toLogLevel} accepts, for messages. */
export const LOG_LEVEL_NAMES =
  'trace, debug, info, warn (or warning), error, fatal (or critical), silent; any case';

/**
 * A small JSON-lines logger with pino's call shape. Errors are logged with name and stack (the log is
 * the one place a stack may go); nothing here ever reaches a client.
 *
 * @example
 * ```ts
 * const logger = createLogger({ level: 'debug' });
 * logger.info({ tool: 'echo' }, 'called');
 * ```
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const level = toLogLevel(options.level ?? 'info');
  if (level === undefined) throw new TypeError(`level must be one of ${LOG_LEVEL_NAMES}`);
  const threshold = LEVELS[level];
  const write = options.write ?? ((line: string) => console.error(line));
  const make = (bindings: object): Logger => {
    const method = (level: Exclude<LogLevel, 'silent'>): LogFn =>
      ((fields: object | string, message?: string) => {
        if (LEVELS[level] < threshold) return;
        const record: Record<string, unknown> = { level, time: new Date().toISOString(), ...bindings };
        if (typeof fields === 'string') record.msg = fields;
        else {
          for (const [key, value] of Object.entries(fields)) record[key] = serialise(value);
          if (message !== undefined) record.msg = message;
        }
        try {
          write(JSON.stringify(record));
        } catch {
          // a logger must never throw into the code that called it
        }
      }) as LogFn;
    return loggerOf(method, (more) => make({ ...bindings, ...more }));
  };
  return make(options.bindings ?? {});
}

function serialise(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: serialise(value.cause) };
  }
  return value;
}

/** A logger that discards everything. */
export const silentLogger: Logger = createLogger({ level: 'silent' });
