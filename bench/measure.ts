/** Timing primitives for the benchmark: throughput loops, latency samples, statistics, GC. */
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Result of one fixed-duration throughput run. */
export interface ThroughputRun {
  ops: number;
  elapsedMs: number;
  opsPerSec: number;
  /** CPU time this process spent per call, in µs: less sensitive than ops/s to other load. */
  cpuUsPerOp: number;
}

/**
 * Runs `op` from `concurrency` independent callers for `durationMs`, each starting its next call as
 * soon as the previous one settles. Any failure aborts the run (a benchmark of errors is no use).
 */
export async function throughput(
  op: () => Promise<unknown>,
  concurrency: number,
  durationMs: number,
): Promise<ThroughputRun> {
  let ops = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  const caller = async () => {
    while (performance.now() < deadline) {
      await op();
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { ops, elapsedMs, opsPerSec: (ops / elapsedMs) * 1000, cpuUsPerOp: (used.user + used.system) / ops };
}

/** Times `count` sequential calls of `op`, in milliseconds each. */
export async function sample(op: () => Promise<unknown>, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await op();
    times.push(performance.now() - started);
  }
  return times;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The engine's `gc()`: the global one under `--expose-gc`, otherwise obtained by turning the flag on
 * at run time (works on current V8); `undefined` when neither is possible.
 */
function resolveGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as () => void) : undefined;
  } catch {
    return undefined;
  }
}

const gc = resolveGc();

/** Whether {@link settle} can force a full collection. */
export const canForceGc = gc !== undefined;

/** Forces a full GC where possible, then yields so pending I/O and timers drain before the next phase. */
export async function settle(): Promise<void> {
  gc?.();
  await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * The child's side of {@link forkServer}: tells the parent the server listens on `port`, then
 * answers `cpu` with its CPU time so far (µs) and resident memory, and exits on `exit`.
 */
export function serveParent(port: number): void {
  process.on('message', (message: string) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send!({ type: 'cpu', micros: user + system, rssBytes: process.memoryUsage.rss() });
    }
    if (message === 'exit') process.exit(0);
  });
  process.send!({ type: 'ready', port });
}

/** A server running in a child process, spoken to over IPC. */
export interface ChildServer {
  readonly port: number;
  /** Sends `request` and resolves with the child's reply of the same `type`. */
  ask<T>(request: string): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Forks `file` with `args` as a server child. The child sends `{ type: 'ready', port }` once it
 * listens, answers each request string with a message of that `type`, and exits on `'exit'`.
 */
export async function forkServer(
  file: string,
  args: readonly string[],
  options: { name: string; execArgv?: readonly string[]; env?: NodeJS.ProcessEnv },
): Promise<ChildServer> {
  const proc: ChildProcess = fork(file, [...args], {
    execArgv: [...(options.execArgv ?? process.execArgv)],
    env: options.env ?? process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(type: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (message: { type: string } & T) => {
        if (message.type !== type) return;
        proc.off('message', onMessage);
        proc.off('exit', onExit);
        resolve(message);
      };
      const onExit = (code: number | null) => reject(new Error(`${options.name} server exited (${code})`));
      proc.on('message', onMessage);
      proc.once('exit', onExit);
    });
  const { port } = await next<{ port: number }>('ready');
  return {
    port,
    ask: <T>(request: string) => {
      const reply = next<T>(request);
      proc.send(request);
      return reply;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.send('exit');
      }),
  };
}
