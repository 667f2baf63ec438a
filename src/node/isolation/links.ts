/**
 * The links of a worker-thread pool: one `MessagePort` per worker, made once and kept for the
 * worker's life, that every call the worker runs talks over (progress, logs, nested calls, the abort
 * of its signal), each message tagged with its call's id. A channel made and transferred for every
 * call cost more of the main thread than the rest of an echo call's round trip.
 *
 * A worker gets its link with a call: when the pool has fewer links than workers, the next task
 * carries a fresh port, which a worker without a link adopts and one with a link closes. A worker
 * that starts for a task carrying none answers that it needs one, and the task is sent again with
 * one (a worker's first call pays that round trip, beside its start).
 *
 * A call is bound to the link that first speaks for it: a message for it from another link is
 * dropped, and so is one for a call that has ended, so two calls never cross their messages. A
 * link that closes is a worker that ended; the calls bound to it are told.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';

/** What a link tells the call it is bound to. */
export interface LinkedCall {
  /** A message of the call's handler (its id already checked). */
  receive(message: object): void;
  /** The worker the call's messages came from ended (its link closed). */
  linkClosed(): void;
}

/** The ids of calls are numbers, unique in their pool; the worker echoes them in `call`. */
interface Tagged {
  call?: unknown;
}

/** The links of one worker-thread pool and the calls in flight on it. */
export class WorkerLinks {
  readonly #calls = new Map<number, LinkedCall>();
  /** The link each call spoke over first: it is the only one heard for the call after that. */
  readonly #bound = new Map<number, MessagePort>();
  /** The main thread's ends of links given out: adopted by a worker, or on their way to one. */
  readonly #ports = new Set<MessagePort>();
  /**
   * Aborts sent while their call had not spoken: a worker that gets its link later (one starting
   * for the call, say) is sent them too, as its link's first messages.
   */
  readonly #aborts = new Map<number, Record<string, unknown>>();
  #nextId = 0;

  /** Registers a call; its id goes with its task. */
  add(call: LinkedCall): number {
    const id = ++this.#nextId;
    this.#calls.set(id, call);
    return id;
  }

  /** The call has ended: nothing more of it is heard, and the link it was bound to is free of it. */
  remove(id: number): void {
    this.#calls.delete(id);
    this.#bound.delete(id);
    this.#aborts.delete(id);
  }

  /**
   * A worker's end of a new link, when the pool has fewer links than its `workers` workers (or has
   * none, so that a pool's first call, which starts its first worker, brings that worker its link).
   */
  offer(workers: number): MessagePort | undefined {
    return this.#ports.size < Math.max(workers, 1) ? this.fresh() : undefined;
  }

  /** A worker's end of a new link, always (for a worker that said it has none). */
  fresh(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.#ports.add(port1);
    port1.on('message', (message: Tagged) => this.#dispatch(port1, message));
    port1.on('close', () => this.#closed(port1));
    // A link lives as long as its worker; it must not keep the server's process alive (tinypool
    // holds the worker's own reference while a call runs).
    port1.unref();
    for (const abort of this.#aborts.values()) port1.postMessage(abort);
    return port2;
  }

  /**
   * Sends `message` to the worker running call `id`: over its link once it has spoken; before that
   * (the worker is not known yet), to every worker of the pool, which each drop it unless they run
   * that call. Only an abort is sent so: it is rare, and it names nothing but the call.
   */
  send(id: number, message: Record<string, unknown>): void {
    const tagged = { mcpkit: 1, call: id, ...message };
    const bound = this.#bound.get(id);
    if (!bound && message.type === 'abort') this.#aborts.set(id, tagged);
    for (const port of bound ? [bound] : this.#ports) {
      try {
        port.postMessage(tagged);
      } catch {
        // The worker is gone: its pool reports its end.
      }
    }
  }

  /** Closes every link (the pool is being destroyed). */
  close(): void {
    for (const port of this.#ports) port.close();
    this.#ports.clear();
  }

  #dispatch(port: MessagePort, message: Tagged): void {
    if (typeof message !== 'object' || message === null) return;
    const id = message.call as number;
    const call = this.#calls.get(id);
    if (!call) return;
    const bound = this.#bound.get(id);
    if (bound === undefined) this.#bound.set(id, port);
    else if (bound !== port) return;
    call.receive(message);
  }

  /**
   * A link closed: a worker ended, or a worker that had a link closed a spare. The calls bound to it
   * are told. A call whose worker ended before it sent anything is not known to be that worker's:
   * tinypool's verdict answers it (a heap blown, an error), or else its hard time limit does.
   */
  #closed(port: MessagePort): void {
    this.#ports.delete(port);
    for (const [id, bound] of this.#bound) {
      if (bound === port) this.#calls.get(id)?.linkClosed();
    }
  }
}
