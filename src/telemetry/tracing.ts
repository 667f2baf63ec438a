/**
 * OpenTelemetry traces through `@opentelemetry/api`, the package OpenTelemetry publishes for
 * libraries to depend on: spans go to the tracer provider, context manager and propagator the
 * application registers with it (`NodeSDK`, `trace.setGlobalTracerProvider`, …), or to what the
 * `tracing` option hands in. While no provider is registered, every helper here is a no-op that
 * costs asking the API for its provider.
 *
 * The types below are structural (the few members mcpkit calls), so a tracer or an API module of
 * another copy of `@opentelemetry/api` fits the `tracing` option as well as this one's.
 *
 * Size: the structural types and the one `Tracing` seam every layer shares; splitting them would
 * only move the types away from the code that explains them.
 */
import {
  context as apiContext,
  propagation as apiPropagation,
  type Context,
  createContextKey,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

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

const TRACER_NAME = 'mcpkit';

/** What the API's provider hands calls to while no provider is registered. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
/** The provider the API last answered with, and it as the API's proxy (`undefined` if it is not one). */
let lastProvider: TracerProvider | undefined;
let lastProxy: ProxyTracerProvider | undefined;

/**
 * The tracer provider registered with the API, or `undefined` while there is none. The API always
 * answers with its proxy; the provider behind it is what counts.
 */
function registeredProvider(): TracerProvider | undefined {
  const provider = trace.getTracerProvider();
  if (provider !== lastProvider) {
    // Remembered: the API hands out the same proxy until a provider is registered or disabled.
    lastProvider = provider;
    lastProxy = provider instanceof ProxyTracerProvider ? provider : undefined;
  }
  const delegate = lastProxy ? lastProxy.getDelegate() : provider;
  return delegate === NOOP_PROVIDER ? undefined : delegate;
}

/** `context` with `span` as its active span. */
function withSpan(context: ContextLike, span: SpanLike): ContextLike {
  return trace.setSpan(context as Context, span as Span);
}

/** The active span of `context`. */
function spanOf(context: ContextLike): SpanLike | undefined {
  return trace.getSpan(context as Context);
}

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
  return trace.wrapSpanContext(spanContext as SpanContext);
}

interface Binding {
  tracer: TracerLike;
  contexts: ContextManagerLike;
  propagator: PropagatorLike | undefined;
  /** Whether `contexts` was seen to make a context active (see {@link carriesContext}). */
  nests: boolean;
}

/** A context made active only to ask a context manager whether it carries contexts. */
const PROBE = ROOT_CONTEXT.setValue(createContextKey('mcpkit context probe'), true);

/**
 * Whether `contexts` makes a context active for the code it runs. The API's own `context` hands
 * `with` to the registered context manager, or to a no-op one while there is none; then making a
 * span's context active would copy a context and change nothing.
 */
function carriesContext(contexts: ContextManagerLike): boolean {
  return contexts.with(PROBE, () => contexts.active() === PROBE);
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
 *
 * @example
 * ```ts
 * import { Tracing } from 'mcpkit/unstable';
 *
 * const tracing = new Tracing(); // the provider registered with @opentelemetry/api, when there is one
 * const rows = await tracing.span('load rows', async (span) => {
 *   span?.setAttribute('table', 'notes');
 *   return [1, 2, 3];
 * });
 * ```
 */
export class Tracing {
  readonly #options: Exclude<TracingOptions, false> | undefined;
  #provider: TracerProvider | undefined;
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
        nests: false,
      };
      return this.#cached;
    }
    const provider = registeredProvider();
    if (!options.tracer && !provider) return undefined;
    // A provider can be registered (or replaced) at any time; the binding is rebuilt only when it is.
    const cached = this.#cached;
    if (cached && this.#provider === provider) return cached;
    this.#provider = provider;
    // The API's context and propagation hand each call to whatever is registered at the time (a
    // context manager, a propagator), or to its no-op ones.
    this.#cached = {
      tracer: options.tracer ?? provider!.getTracer(TRACER_NAME),
      contexts: apiContext,
      propagator: apiPropagation,
      nests: false,
    };
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
      // Asked until a context manager is seen (one is usually registered once, at start).
      binding.nests ||= carriesContext(binding.contexts);
      result = binding.nests ? binding.contexts.with(withSpan(parent, span), () => fn(span)) : fn(span);
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
    const context = withSpan(parent, span);
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
      // A span other than the active one is what the propagator found (the API's no-op propagator,
      // used while none is registered, finds nothing).
      const extracted = binding.propagator.extract(active, headers, HEADER_GETTER);
      const span = spanOf(extracted);
      if (span !== undefined && span !== spanOf(active)) return extracted;
    }
    const remote = parseTraceparent(headers.get('traceparent'));
    return remote ? withSpan(active, remoteSpan(remote)) : undefined;
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
    const ambient = spanOf(active)?.spanContext();
    const links = ambient ? [ambient] : [];
    if (binding.propagator) {
      const extracted = binding.propagator.extract(active, carrier, META_GETTER);
      const span = spanOf(extracted);
      if (span && span.spanContext() !== ambient) return { parent: extracted, links };
    }
    const remote = parseTraceparent(carrier.traceparent as string);
    return remote ? { parent: withSpan(active, remoteSpan(remote)), links } : undefined;
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
