/**
 * OpenTelemetry traces without a dependency on `@opentelemetry/api`: a small duck-typed view of the
 * API, found at run time through the API's own global registration (what `trace.setGlobalTracerProvider`
 * and `context.setGlobalContextManager` write under `Symbol.for('opentelemetry.js.api.1')`), or
 * handed in as the `tracing` option. With neither, every helper here is a no-op that costs one
 * property lookup.
 */

/** Span attribute values mcpkit sets. */
export type SpanAttributes = Record<string, string | number | boolean>;

/** The identity of a span (`SpanContext` of `@opentelemetry/api`). */
export interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: TraceStateLike;
}

/** A `TraceState` of `@opentelemetry/api`. */
export interface TraceStateLike {
  set(key: string, value: string): TraceStateLike;
  unset(key: string): TraceStateLike;
  get(key: string): string | undefined;
  serialize(): string;
}

/** The part of an OpenTelemetry `Span` mcpkit uses. */
export interface SpanLike {
  spanContext(): SpanContextLike;
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: unknown): unknown;
  updateName(name: string): unknown;
  end(): void;
}

/** An OpenTelemetry `Context`: immutable, keyed by symbols. */
export interface ContextLike {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): ContextLike;
  deleteValue(key: symbol): ContextLike;
}

/** The options of `Tracer.startSpan` mcpkit passes. */
export interface SpanOptionsLike {
  kind?: number | undefined;
  attributes?: SpanAttributes | undefined;
  links?: { context: SpanContextLike }[] | undefined;
}

/** The part of an OpenTelemetry `Tracer` mcpkit uses. */
export interface TracerLike {
  startSpan(name: string, options?: SpanOptionsLike, context?: ContextLike): SpanLike;
}

/** A `ContextManager`, or the API's `context` (both have `active` and `with`). */
export interface ContextManagerLike {
  active(): ContextLike;
  with<R>(context: ContextLike, fn: () => R): R;
}

interface CarrierGetter<C> {
  get(carrier: C, key: string): string | undefined;
  keys(carrier: C): string[];
}

/** A `TextMapPropagator`, or the API's `propagation`. */
export interface PropagatorLike {
  extract<C>(context: ContextLike, carrier: C, getter: CarrierGetter<C>): ContextLike;
}

/** The part of the `@opentelemetry/api` module mcpkit uses: pass the module itself. */
export interface OpenTelemetryApiLike {
  trace: { getTracer(name: string, version?: string): TracerLike };
  context: ContextManagerLike;
  propagation?: PropagatorLike;
}

/**
 * The `tracing` option of `createMcpServer`. Default: the globally registered OpenTelemetry tracer
 * provider, context manager and propagator, when there are any. `false` turns tracing off.
 */
export type TracingOptions =
  | false
  | {
      /** The tracer to start spans with. Default: `api.trace.getTracer('mcpkit')`, or the global one. */
      tracer?: TracerLike;
      /** The `@opentelemetry/api` module (its `context` and `propagation` are used). Default: the global registration. */
      api?: OpenTelemetryApiLike;
    };

/** `SpanKind` values of the API. */
export const SPAN_KIND = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;
/** `SpanStatusCode` values of the API. */
export const SPAN_STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;

/** Where `@opentelemetry/api` 1.x registers its globals. */
const GLOBAL_KEY = Symbol.for('opentelemetry.js.api.1');
/** The API's context key for the active span (`createContextKey` uses `Symbol.for`). */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');
const TRACER_NAME = 'mcpkit';

interface GlobalApi {
  trace?: { getTracer(name: string, version?: string): TracerLike };
  context?: ContextManagerLike;
  propagation?: PropagatorLike;
}

/** A context for runtimes with no context manager registered: spans still work, but do not nest on their own. */
class BaseContext implements ContextLike {
  readonly #values: Map<symbol, unknown>;
  constructor(values?: Map<symbol, unknown>) {
    this.#values = values ?? new Map();
  }
  getValue(key: symbol): unknown {
    return this.#values.get(key);
  }
  setValue(key: symbol, value: unknown): ContextLike {
    const values = new Map(this.#values);
    values.set(key, value);
    return new BaseContext(values);
  }
  deleteValue(key: symbol): ContextLike {
    const values = new Map(this.#values);
    values.delete(key);
    return new BaseContext(values);
  }
}

const ROOT = new BaseContext();
const NO_CONTEXT_MANAGER: ContextManagerLike = { active: () => ROOT, with: (_context, fn) => fn() };

const HEADER_GETTER: CarrierGetter<Headers> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: (carrier) => [...carrier.keys()],
};

/** Reads an MCP request's `params._meta`, where SEP-414 puts `traceparent`, `tracestate` and `baggage`. */
const META_GETTER: CarrierGetter<Record<string, unknown>> = {
  get: (carrier, key) => (typeof carrier[key] === 'string' ? (carrier[key] as string) : undefined),
  keys: (carrier) => Object.keys(carrier),
};

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** A W3C `traceparent` value as a remote span context, or `undefined` when it is not valid. */
export function parseTraceparent(value: string | null | undefined): SpanContextLike | undefined {
  const match = value ? TRACEPARENT.exec(value.trim()) : null;
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: Number.parseInt(flags!, 16) & 1, isRemote: true };
}

/** A span that only carries a remote parent's identity (the API's `NonRecordingSpan`). */
function remoteSpan(spanContext: SpanContextLike): SpanLike {
  return {
    spanContext: () => spanContext,
    setAttribute() {},
    setStatus() {},
    recordException() {},
    updateName() {},
    end() {},
  };
}

interface Binding {
  tracer: TracerLike;
  contexts: ContextManagerLike;
  propagator: PropagatorLike | undefined;
  /**
   * `contexts` is the API's own `context`, which hands `with` to the globally registered context
   * manager: while none is registered, making a span's context active does nothing.
   */
  viaGlobal: boolean;
}

/** Whether a span made active through `binding` would be seen by the code it runs (see `viaGlobal`). */
function nests(binding: Binding): boolean {
  if (binding.contexts === NO_CONTEXT_MANAGER) return false;
  return (
    !binding.viaGlobal ||
    (globalThis as Record<symbol, GlobalApi | undefined>)[GLOBAL_KEY]?.context !== undefined
  );
}

/** How a span starts: its kind, attributes (built only when tracing is on) and parent. */
export interface SpanInit {
  kind?: number;
  attributes?: () => SpanAttributes;
  /** The parent context; default the active one. */
  parent?: ContextLike;
  /** Spans this one is linked to (not parented by). */
  links?: SpanContextLike[];
}

/**
 * The tracing seam every layer shares. Resolves the tracer on each span, so a provider registered
 * after the server was created is picked up; when there is none, {@link Tracing.span} just calls
 * its function.
 */
export class Tracing {
  readonly #options: Exclude<TracingOptions, false> | undefined;
  #provider: unknown;
  #tracer: TracerLike | undefined;
  #cached: Binding | undefined;

  constructor(options: TracingOptions = {}) {
    this.#options = options === false ? undefined : options;
  }

  #binding(): Binding | undefined {
    const options = this.#options;
    if (!options) return undefined;
    const api = options.api;
    if (api) {
      // Given explicitly: fixed for the server's life.
      this.#cached ??= {
        tracer: options.tracer ?? api.trace.getTracer(TRACER_NAME),
        contexts: api.context,
        propagator: api.propagation,
        viaGlobal:
          typeof (api.context as { setGlobalContextManager?: unknown }).setGlobalContextManager ===
          'function',
      };
      return this.#cached;
    }
    const registered = (globalThis as Record<symbol, GlobalApi | undefined>)[GLOBAL_KEY];
    const provider = registered?.trace;
    const contexts = registered?.context ?? NO_CONTEXT_MANAGER;
    const propagator = registered?.propagation;
    if (!options.tracer && !provider) return undefined;
    // The global registration can change at any time; the binding is rebuilt only when it does.
    const cached = this.#cached;
    if (
      cached &&
      this.#provider === provider &&
      cached.contexts === contexts &&
      cached.propagator === propagator
    ) {
      return cached;
    }
    if (!options.tracer && provider !== this.#provider) this.#tracer = provider!.getTracer(TRACER_NAME);
    this.#provider = provider;
    this.#cached = { tracer: options.tracer ?? this.#tracer!, contexts, propagator, viaGlobal: false };
    return this.#cached;
  }

  /** Whether spans are recorded now (a tracer is registered or was given). */
  get enabled(): boolean {
    return this.#binding() !== undefined;
  }

  /**
   * Runs `fn` inside a new span that is active for everything `fn` starts. A throw marks the span
   * as an error; other outcomes are `fn`'s to record on the span it receives (`undefined` when
   * tracing is off).
   */
  span<T>(name: string, fn: (span: SpanLike | undefined) => T | Promise<T>, init?: SpanInit): Promise<T> {
    const binding = this.#binding();
    if (binding) return this.#inSpan(binding, { name, init }, fn);
    try {
      return Promise.resolve(fn(undefined));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Written with `then` rather than `async`/`await`: under a context manager every promise costs an
   * async-hook round, and this is on every traced request.
   */
  #inSpan<T>(
    binding: Binding,
    { name, init }: { name: string; init: SpanInit | undefined },
    fn: (span: SpanLike) => T | Promise<T>,
  ): Promise<T> {
    const parent = init?.parent ?? binding.contexts.active();
    const span = binding.tracer.startSpan(name, spanOptions(init), parent);
    let result: T | Promise<T>;
    try {
      // Without a context manager, activating the span's context would change nothing: skip it.
      result = nests(binding)
        ? binding.contexts.with(parent.setValue(SPAN_KEY, span), () => fn(span))
        : fn(span);
    } catch (error) {
      markError(span, error);
      span.end();
      return Promise.reject(error);
    }
    if (!isPromiseLike(result)) {
      span.end();
      return Promise.resolve(result);
    }
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        markError(span, error);
        span.end();
        throw error;
      },
    );
  }

  /**
   * Starts a span for a stretch of code that does not fit one function (a loop's iteration): it
   * becomes active only inside `run`, and ends at the first `end`. A no-op when tracing is off.
   */
  begin(name: string, init?: SpanInit): ActiveSpan {
    const binding = this.#binding();
    if (!binding) return NOOP_ACTIVE_SPAN;
    const parent = init?.parent ?? binding.contexts.active();
    const span = binding.tracer.startSpan(name, spanOptions(init), parent);
    const context = parent.setValue(SPAN_KEY, span);
    let ended = false;
    return {
      span,
      run: (fn) => binding.contexts.with(context, fn),
      setAttributes(attributes) {
        for (const key in attributes) span.setAttribute(key, attributes[key]!);
      },
      end(error) {
        if (ended) return;
        ended = true;
        if (error !== undefined) markError(span, error);
        span.end();
      },
    };
  }

  /**
   * The parent context an HTTP request carries (W3C `traceparent`, or whatever the registered
   * propagator reads), or `undefined` when tracing is off or the request carries none.
   */
  extract(headers: Headers): ContextLike | undefined {
    const binding = this.#binding();
    if (!binding) return undefined;
    const active = binding.contexts.active();
    if (binding.propagator) {
      const extracted = binding.propagator.extract(active, headers, HEADER_GETTER);
      if (extracted.getValue(SPAN_KEY) !== undefined) return extracted;
    }
    const remote = parseTraceparent(headers.get('traceparent'));
    return remote ? active.setValue(SPAN_KEY, remoteSpan(remote)) : undefined;
  }

  /**
   * The trace context an MCP request carries in `params._meta` (SEP-414: `traceparent`, with
   * `tracestate` and `baggage` read by the registered propagator), as the OpenTelemetry MCP
   * conventions ask servers to honour: the parent for the request's span, with the ambient span (the
   * HTTP request's, say) as a link. `undefined` when tracing is off or `_meta` carries none.
   */
  extractMeta(meta: unknown): { parent: ContextLike; links: SpanContextLike[] } | undefined {
    if (typeof (meta as { traceparent?: unknown } | null)?.traceparent !== 'string') return undefined;
    const binding = this.#binding();
    if (!binding) return undefined;
    const carrier = meta as Record<string, unknown>;
    const active = binding.contexts.active();
    const ambient = (active.getValue(SPAN_KEY) as SpanLike | undefined)?.spanContext();
    const links = ambient ? [ambient] : [];
    if (binding.propagator) {
      const extracted = binding.propagator.extract(active, carrier, META_GETTER);
      const span = extracted.getValue(SPAN_KEY) as SpanLike | undefined;
      if (span && span.spanContext() !== ambient) return { parent: extracted, links };
    }
    const remote = parseTraceparent(carrier.traceparent as string);
    return remote ? { parent: active.setValue(SPAN_KEY, remoteSpan(remote)), links } : undefined;
  }
}

/**
 * The `startSpan` options for `init`, built as one plain object literal: options (and attribute
 * objects) assembled with conditional spreads cost the OpenTelemetry SDK about 1 µs more per span.
 */
function spanOptions(init: SpanInit | undefined): SpanOptionsLike {
  if (!init) return {};
  return {
    kind: init.kind,
    attributes: init.attributes?.(),
    links: init.links?.map((context) => ({ context })),
  };
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * Marks `span` as failed with `error`: an exception, or an error type string (with an optional
 * status message). A JSON-RPC error's numeric code becomes its `error.type`, as the MCP conventions
 * ask.
 */
export function markError(span: SpanLike | undefined, error: unknown, message?: string): void {
  if (!span) return;
  if (typeof error === 'string') {
    span.setAttribute('error.type', error);
    span.setStatus({ code: SPAN_STATUS.ERROR, message: message ?? error });
    return;
  }
  span.recordException(error as Error);
  const code = (error as { code?: unknown } | null)?.code;
  span.setAttribute(
    'error.type',
    typeof code === 'string' || typeof code === 'number' ? String(code) : ((error as Error)?.name ?? 'Error'),
  );
  span.setStatus({
    code: SPAN_STATUS.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/** A span started with {@link Tracing.begin}. */
export interface ActiveSpan {
  /** The span; `undefined` when tracing is off. */
  readonly span: SpanLike | undefined;
  /** Runs `fn` with the span active, so the spans `fn` starts are its children. */
  run<T>(fn: () => T): T;
  setAttributes(attributes: SpanAttributes): void;
  /** Ends the span (once); an `error` (exception or error code) marks it failed. */
  end(error?: unknown): void;
}

const NOOP_ACTIVE_SPAN: ActiveSpan = {
  span: undefined,
  run: (fn) => fn(),
  setAttributes() {},
  end() {},
};

/** The tracing every component uses when none was handed in: the global registration. */
export const globalTracing = new Tracing();
