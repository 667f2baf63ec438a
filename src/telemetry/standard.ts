import type { ResourceCatalog } from '../catalog/resources.js';
import type { ToolExecutor } from '../execution/executor.js';
import type { MetricsRegistry } from './metrics.js';

/** Why a request was shed: the label of `mcpkit_overload_shed_total{reason}`. */
export type ShedReason = 'event_loop_delay' | 'queue_wait';

/** The doors a request can be shed at: the label of `mcpkit_overload_shed_total{door}`. */
export type ShedDoor = 'mcp' | 'rest' | 'websocket';

/** What the standard metrics read from the server. */
export interface TelemetrySources {
  executor: ToolExecutor;
  /** The policy layer, whose refusals are counted. */
  policy?: { onRefusal: ((kind: 'auth' | 'permission' | 'rate', label: string) => void) | undefined };
  resources: ResourceCatalog;
  /** The load shedder, whose event-loop delay is reported (the handler counts the requests shed). */
  overload?: { readonly eventLoopDelayMs: number; readonly overloaded: boolean };
}

/** The HTTP request metrics the handler records into. */
export interface HttpMetrics {
  observe(request: { route: string; method: string; status: number; seconds: number }): void;
  /** A request shed by the load shedder. */
  shed(door: ShedDoor, reason: ShedReason): void;
}

/**
 * Registers mcpkit's standard metrics: tool calls by tool and outcome with a duration histogram,
 * HTTP requests by route and status, live sessions by transport, WebSocket connections, cache
 * counters, and process metrics where the runtime has them. Every label is bounded: tools by the
 * catalog, routes by the route table (never raw paths, URIs or session ids).
 */
export function installStandardMetrics(registry: MetricsRegistry, sources: TelemetrySources): HttpMetrics {
  const calls = registry.counter('mcpkit_tool_calls_total', 'Tool calls by tool and outcome', [
    'tool',
    'outcome',
  ]);
  const duration = registry.histogram('mcpkit_tool_call_duration_seconds', 'Tool call duration', ['tool']);
  const record = (outcome: string) => (e: { tool: string; durationMs: number }) => {
    calls.inc({ tool: e.tool, outcome });
    duration.observe({ tool: e.tool }, e.durationMs / 1000);
  };
  sources.executor.on('success', record('success'));
  sources.executor.on('error', record('error'));
  sources.executor.on('timeout', record('timeout'));
  sources.executor.on('cancel', record('cancelled'));

  if (sources.policy) {
    const authFailures = registry.counter('mcpkit_auth_failures_total', 'Refused credentials by reason', [
      'reason',
    ]);
    const denials = registry.counter(
      'mcpkit_permission_denials_total',
      'Requests refused for a permission or rule',
      ['permission'],
    );
    const limited = registry.counter(
      'mcpkit_rate_limited_total',
      'Requests refused by a rate limit, by class',
      ['class'],
    );
    sources.policy.onRefusal = (kind, label) => {
      if (kind === 'auth') authFailures.inc({ reason: label });
      else if (kind === 'permission') denials.inc({ permission: label });
      else limited.inc({ class: label });
    };
  }

  const { overload } = sources;
  const shed = overload
    ? registry.counter(
        'mcpkit_overload_shed_total',
        'New requests answered 503 because the server was overloaded, by door and reason',
        ['door', 'reason'],
      )
    : undefined;
  if (overload) {
    registry.gauge(
      'mcpkit_event_loop_delay_seconds',
      'Event-loop delay the load shedder measures: the smallest of its last three samples (0 while idle)',
      { labels: [], collect: (gauge) => gauge.set({}, overload.eventLoopDelayMs / 1000) },
    );
    registry.gauge('mcpkit_overloaded', '1 while new requests are shed for event-loop delay', {
      labels: [],
      collect: (gauge) => gauge.set({}, overload.overloaded ? 1 : 0),
    });
  }

  const requests = registry.counter(
    'mcpkit_http_requests_total',
    'HTTP requests by route, method and status',
    ['route', 'method', 'status'],
  );
  const requestDuration = registry.histogram(
    'mcpkit_http_request_duration_seconds',
    'HTTP time to response headers',
    ['route'],
  );

  registry.gauge('mcpkit_tool_calls_active', 'Tool calls running and queued', {
    labels: ['state'],
    collect: (gauge) => {
      const load = sources.executor.load;
      gauge.set({ state: 'running' }, load.active);
      gauge.set({ state: 'queued' }, load.queued);
    },
  });
  const cacheCounter = (name: string, help: string, pick: (s: ResourceCatalog['cacheStats']) => number) =>
    registry.counter(name, help, {
      labels: [],
      collect: (counter) => counter.setTotal({}, pick(sources.resources.cacheStats)),
    });
  cacheCounter('mcpkit_resource_cache_hits_total', 'Resource reads served from the cache', (s) => s.hits);
  cacheCounter(
    'mcpkit_resource_cache_misses_total',
    'Resource reads that called the reader',
    (s) => s.misses,
  );
  cacheCounter(
    'mcpkit_resource_cache_evictions_total',
    'Cache entries evicted for space',
    (s) => s.evictions,
  );
  registry.gauge('mcpkit_resource_cache_entries', 'Entries in the resource cache', {
    labels: [],
    collect: (gauge) => gauge.set({}, sources.resources.cacheStats.size),
  });
  registry.gauge('mcpkit_resource_subscriptions', 'Live resource subscriptions', {
    labels: [],
    collect: (gauge) => gauge.set({}, sources.resources.subscriptionCount),
  });

  const proc = (globalThis as { process?: NodeLikeProcess }).process;
  if (typeof proc?.memoryUsage === 'function' && typeof proc.cpuUsage === 'function') {
    registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes', {
      labels: [],
      collect: (g) => g.set({}, proc.memoryUsage!().rss),
    });
    registry.gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes', {
      labels: [],
      collect: (g) => g.set({}, proc.memoryUsage!().heapUsed),
    });
    registry.counter('process_cpu_seconds_total', 'User and system CPU time, in seconds', {
      labels: [],
      collect: (c) => {
        const usage = proc.cpuUsage!();
        c.setTotal({}, (usage.user + usage.system) / 1e6);
      },
    });
    const started = Date.now() / 1000 - (proc.uptime?.() ?? 0);
    registry.gauge('process_start_time_seconds', 'Start time of the process, in Unix seconds', {
      labels: [],
      collect: (g) => g.set({}, started),
    });
  }

  return {
    observe({ route, method, status, seconds }) {
      requests.inc({ route, method, status: String(status) });
      requestDuration.observe({ route }, seconds);
    },
    shed(door, reason) {
      shed?.inc({ door, reason });
    },
  };
}

interface NodeLikeProcess {
  memoryUsage?: () => { rss: number; heapUsed: number };
  cpuUsage?: () => { user: number; system: number };
  uptime?: () => number;
}

/** Live connections by transport, as {@link installConnectionMetrics} reads them. */
export type ConnectionCountsSource = () => {
  httpSessions: number;
  connections: Partial<Record<string, number>>;
};

/**
 * The gauges of live MCP sessions and connections, read from `connections` at each scrape. Apart
 * from {@link installStandardMetrics}, because the counts come from the doors, which are built after
 * the metrics they record into.
 */
export function installConnectionMetrics(
  registry: MetricsRegistry,
  connections: ConnectionCountsSource,
): void {
  registry.gauge('mcpkit_sessions', 'Live MCP sessions and connections by transport', {
    labels: ['transport'],
    collect: (gauge) => {
      const counts = connections();
      gauge.set({ transport: 'http' }, counts.httpSessions);
      for (const transport of ['stdio', 'websocket', 'memory'] as const) {
        gauge.set({ transport }, counts.connections[transport] ?? 0);
      }
    },
  });
  registry.gauge('mcpkit_websocket_connections', 'Open WebSocket connections', {
    labels: [],
    collect: (gauge) => {
      gauge.set({}, connections().connections.websocket ?? 0);
    },
  });
}
