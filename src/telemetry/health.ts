/** The outcome of one readiness check. */
export interface CheckResult {
  ok: boolean;
  detail?: string;
}

/** A readiness check: storage writable, providers configured, within limits, … */
export type HealthCheck = () => CheckResult | boolean | Promise<CheckResult | boolean>;

/** The readiness view `GET /health` returns (503 when `status` is not `ok`). */
export interface HealthReport {
  status: 'ok' | 'unavailable';
  uptimeMs: number;
  checks: Record<string, CheckResult>;
}

/**
 * Named readiness checks (`server.health`). Liveness is answering at all; readiness is every check
 * passing. A check that throws or takes longer than `timeoutMs` fails, with its reason.
 *
 * @example
 * ```ts
 * server.health.register('database', async () => ({ ok: await db.ping(), detail: 'primary' }));
 * ```
 */
export class HealthChecks {
  readonly #checks = new Map<string, HealthCheck>();
  readonly #startedAt: number;
  readonly #timeoutMs: number;

  constructor(startedAt: number, timeoutMs = 2_000) {
    this.#startedAt = startedAt;
    this.#timeoutMs = timeoutMs;
  }

  register(name: string, check: HealthCheck): () => void {
    if (this.#checks.has(name)) throw new TypeError(`health check ${name} is already registered`);
    this.#checks.set(name, check);
    return () => this.#checks.delete(name);
  }

  async report(): Promise<HealthReport> {
    const entries = await Promise.all(
      [...this.#checks].map(async ([name, check]): Promise<[string, CheckResult]> => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          const timeout = new Promise<CheckResult>((resolve) => {
            timer = setTimeout(
              () => resolve({ ok: false, detail: `no answer within ${this.#timeoutMs} ms` }),
              this.#timeoutMs,
            );
          });
          const result = await Promise.race([Promise.resolve().then(check), timeout]);
          return [name, typeof result === 'boolean' ? { ok: result } : result];
        } catch (error) {
          return [
            name,
            { ok: false, detail: error instanceof Error ? error.message.split('\n')[0] : 'check failed' },
          ];
        } finally {
          if (timer !== undefined) clearTimeout(timer);
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    return {
      status: entries.every(([, r]) => r.ok) ? 'ok' : 'unavailable',
      uptimeMs: Math.round(Date.now() - this.#startedAt),
      checks,
    };
  }
}
