/**
 * Completion jobs, stored and carried through their life: running ones counted and capped, finished
 * ones kept for a time and up to a number, each readable only by whoever may reach it.
 */
import { McpKitError } from '../core/errors.js';
import type { CallerIdentity } from '../types.js';
import type { CompletionSnapshot, CompletionStatus, CompletionStopReason } from './types.js';

/** A job as the table keeps it. */
export interface Job {
  snapshot: CompletionSnapshot;
  /** The id of the caller who started it, when one was named. */
  owner: string | undefined;
  controller: AbortController;
  started: number;
  finished?: number;
  done: Promise<CompletionSnapshot>;
}

/** How a job ends: its status, why, and the error a failed or cancelled one reports. */
export interface JobEnd {
  status: Exclude<CompletionStatus, 'running'>;
  stopReason: CompletionStopReason;
  error?: CompletionSnapshot['error'];
}

/** The end of a cancelled job. */
export function cancelledEnd(): JobEnd {
  return {
    status: 'cancelled',
    stopReason: 'cancelled',
    error: { code: 'CANCELLED', message: 'The completion was cancelled' },
  };
}

/** The limits of a {@link JobTable}, checked by the manager. */
export interface JobTableOptions {
  /** How long finished jobs stay readable. */
  keepFinishedMs: number;
  /** Finished jobs kept at most (oldest dropped first). */
  maxFinished: number;
  /** Jobs running at once; more are refused with `BUSY`. */
  maxRunning: number;
  /** Whether `caller` may reach a job `owner` started that is not its own (the policy's decision). */
  reaches?: ((caller: CallerIdentity, owner: string | undefined) => boolean) | undefined;
  /** Called once a job ends (the shared store mirrors it). */
  onFinish?: ((job: Job) => void) | undefined;
}

/** The jobs of one manager, newest last. */
export class JobTable {
  readonly #jobs = new Map<string, Job>();
  readonly #options: JobTableOptions;
  #running = 0;
  /**
   * The jobs that hold a place in {@link running}: a job gives its place back once, whichever of
   * {@link finish} (its end, a cancel, `close`) and {@link drop} (its start failed) comes first. A job
   * cancelled while its first write to a shared store was under way, which then fails, meets both.
   */
  readonly #placed = new WeakSet<Job>();

  constructor(options: JobTableOptions) {
    this.#options = options;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /**
   * Makes room for a new job: forgets expired ones, refuses with `BUSY` when too many run, and holds
   * a place for it at once (starts awaiting their model at the same time must not all pass the cap).
   * The place is the job's once {@link add}ed; a start that fails before that gives it back with
   * {@link release}.
   */
  admit(): void {
    this.prune();
    const max = this.#options.maxRunning;
    if (this.#running >= max) throw new McpKitError('BUSY', `${max} completions are running already`);
    this.#running++;
  }

  /** Gives back the place {@link admit} held for a start that failed before its job was added. */
  release(): void {
    this.#running--;
  }

  /** Adds a running job, in the place {@link admit} held for it. */
  add(job: Job): void {
    this.#jobs.set(job.snapshot.id, job);
    this.#placed.add(job);
  }

  /** Gives back the place of `job`, if it still holds one. */
  #vacate(job: Job): void {
    if (this.#placed.delete(job)) this.#running--;
  }

  /**
   * The job `id`, or `undefined` when it is unknown or expired. With `caller`, a job it may not reach
   * (another caller's, unless the policy says otherwise) is unknown too.
   */
  reach(id: string, caller: CallerIdentity | undefined): Job | undefined {
    const job = this.#jobs.get(id);
    return job && this.reaches(caller, job.owner) ? job : undefined;
  }

  /** Whether `caller` may reach a job `owner` started (always without a caller). */
  reaches(caller: CallerIdentity | undefined, owner: string | undefined): boolean {
    if (caller === undefined || owner === caller.id) return true;
    return this.#options.reaches?.(caller, owner) === true;
  }

  /** Whether the job `id` is kept here (whoever may reach it). */
  has(id: string): boolean {
    return this.#jobs.has(id);
  }

  /** Forgets a job whose start failed after it was added (its place is given back, if it still holds it). */
  drop(id: string): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    this.#jobs.delete(id);
    this.#vacate(job);
  }

  /** Every job kept, newest last. */
  all(): IterableIterator<Job> {
    return this.#jobs.values();
  }

  /** Ends a running job (once; a finished one stays as it ended). */
  finish(job: Job, end: JobEnd): void {
    const snapshot = job.snapshot;
    if (snapshot.status !== 'running') return;
    snapshot.status = end.status;
    snapshot.stopReason = end.stopReason;
    if (end.error) snapshot.error = end.error;
    job.finished = performance.now();
    snapshot.finishedAt = new Date().toISOString();
    this.#vacate(job);
    this.#options.onFinish?.(job);
    this.prune();
  }

  /** A copy of the job as callers see it, its timing brought up to now. */
  view(job: Job): CompletionSnapshot {
    const s = job.snapshot;
    const end = job.finished ?? performance.now();
    const durationMs = end - job.started;
    return structuredClone({
      ...s,
      timing: {
        ...s.timing,
        durationMs,
        overheadMs: Math.max(0, durationMs - s.timing.modelMs - s.timing.toolsMs),
      },
    });
  }

  /** Forgets finished jobs past `keepFinishedMs`, and the oldest past `maxFinished`. */
  prune(): void {
    const { keepFinishedMs, maxFinished } = this.#options;
    const now = performance.now();
    let finished = 0;
    for (const job of this.#jobs.values()) if (job.finished !== undefined) finished++;
    for (const [id, job] of this.#jobs) {
      if (job.finished === undefined) continue;
      if (now - job.finished > keepFinishedMs || finished > maxFinished) {
        this.#jobs.delete(id);
        finished--;
      }
    }
  }
}
