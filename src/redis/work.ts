/**
 * MCP tasks and completion jobs over Redis: one hash per task or job, written by the node that runs
 * it and read by every other; cancellation as a flag in the hash plus a message on the running
 * node's own channel; a lease key per node, refreshed by its heartbeat, so work whose node died is
 * reported failed instead of running forever.
 *
 * Size: one module because tasks and jobs share every mechanism (scripts, heartbeat, inbox, retried
 * writes); only their record shapes differ.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CompletionSnapshot } from '../completions/types.js';
import { ERROR_CODES, McpKitError } from '../core/errors.js';
import type { JobStore, SharedJob, TaskStore, WorkRunner } from '../state/shared.js';
import type { TaskSnapshot } from '../tasks/manager.js';

const TERMINAL_LUA = `local function ended(s) return s == 'completed' or s == 'failed' or s == 'cancelled' or s == 'succeeded' end`;

/**
 * The running node writes its record. KEYS[1] the record; ARGV: doc, status, ttl ms, whether to
 * renew the TTL of a record that exists ('1'/'0'), node, owner (JSON). A record another node ended
 * (cancelled, or failed as an orphan) is left as it is and its status answered, so the runner
 * stops. A missing record (new, or lost with a Redis restart) is written whole with the TTL, unless
 * that TTL has run out ('gone').
 */
const SAVE = `${TERMINAL_LUA}
local cur = redis.call('HGET', KEYS[1], 'status')
if cur and ended(cur) and redis.call('HEXISTS', KEYS[1], 'override') == 1 then return cur end
local ttl = tonumber(ARGV[3])
if not cur and ttl <= 0 then return 'gone' end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'status', ARGV[2], 'node', ARGV[5], 'owner', ARGV[6])
if not cur or ARGV[4] == '1' then redis.call('PEXPIRE', KEYS[1], ttl) end
return 'ok'
`;

/**
 * Another node ends a running record: KEYS[1] the record; ARGV: status, override (JSON), cancel flag
 * ('1' to set it). Answers { outcome, node }: 'ok', the terminal status it already had, or nothing
 * for an unknown record.
 */
const END = `${TERMINAL_LUA}
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return false end
local node = redis.call('HGET', KEYS[1], 'node') or ''
if ended(cur) then return { cur, node } end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'override', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'cancel', '1') end
return { 'ok', node }
`;

/** The longest id looked up in Redis (mcpkit's ids are 36-character UUIDs). */
const MAX_ID_LENGTH = 256;

/** The largest message between nodes (input answers included), in bytes. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Options of the Redis work stores (`redisState` passes its own). */
export interface RedisWorkOptions {
  prefix: string;
  /** How long a node's work outlives its last heartbeat. */
  leaseMs: number;
  /** The largest record kept, in bytes. */
  maxRecordBytes: number;
  /** Awaited before a request's first command (the first connection). */
  before?: () => Promise<void>;
  /** Where write failures that will be retried are reported. */
  onDeferred?: (reason: string) => void;
}

/** The client with the scripts defined on it. */
interface Scripted {
  mcpkitWorkSave(key: string, ...args: (string | number)[]): Promise<string>;
  mcpkitWorkEnd(key: string, ...args: string[]): Promise<[string, string] | null>;
}

type Kind = 'task' | 'job';

interface Message {
  kind: Kind;
  op: 'cancel' | 'update';
  id: string;
  reason?: string;
  inputResponses?: Record<string, unknown>;
}

/** What the running node writes: the record's JSON, status, owner and TTL. */
interface RecordWrite {
  doc: string;
  status: string;
  /** The TTL of a record written anew; with `renew`, of an existing record too. */
  ttlMs: number;
  renew: boolean;
  /** The caller that owns it, or undefined. */
  owner: string | undefined;
}

/** A record as read. */
interface RawRecord {
  doc: string;
  status: string;
  override?: string;
  node: string;
  owner: string;
}

const UNREACHABLE = 'Shared task and job state is unavailable; try again later';

/** The retryable refusal of a request that needs the shared store while it is out of reach. */
function storeDown(cause: unknown): McpKitError {
  return new McpKitError('UNAVAILABLE', UNREACHABLE, { cause, details: { retryAfterSeconds: 1 } });
}

/** What a record whose node stopped heartbeating reports. */
const ORPHAN_MESSAGE =
  'The server node running this work stopped before it finished (no heartbeat); start it again';

function parseMessage(text: string): Message | undefined {
  if (text.length > MAX_MESSAGE_BYTES) return undefined;
  try {
    const m = JSON.parse(text) as Partial<Message>;
    if ((m.kind !== 'task' && m.kind !== 'job') || typeof m.id !== 'string') return undefined;
    if (m.op === 'cancel') return { kind: m.kind, op: 'cancel', id: m.id, reason: String(m.reason ?? '') };
    if (m.op === 'update' && typeof m.inputResponses === 'object' && m.inputResponses !== null) {
      return { kind: m.kind, op: 'update', id: m.id, inputResponses: m.inputResponses };
    }
  } catch {
    // Malformed: dropped.
  }
  return undefined;
}

/**
 * One node's side of shared work over Redis: its id and lease, its inbox channel, and the writes it
 * retries. Builds the {@link TaskStore} and {@link JobStore} that `redisState` hands the server.
 */
export class RedisWork {
  readonly node = randomUUID();
  readonly #client: Redis;
  readonly #subscriber: Redis;
  readonly #options: RedisWorkOptions;
  readonly #runners = new Map<Kind, WorkRunner>();
  /** The latest unsent write of each record, and the records with a write in flight. */
  readonly #pending = new Map<string, () => Promise<void>>();
  readonly #inFlight = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #subscribed = false;
  #lost = false;
  #closed = false;
  #down = false;
  /** Whether this node's lease was set at least once (new work needs it before it is announced). */
  #leased = false;

  constructor(client: Redis, subscriber: Redis, options: RedisWorkOptions) {
    this.#client = client;
    this.#subscriber = subscriber;
    this.#options = options;
    const c = client as unknown as Partial<Scripted>;
    if (!c.mcpkitWorkSave) client.defineCommand('mcpkitWorkSave', { numberOfKeys: 1, lua: SAVE });
    if (!c.mcpkitWorkEnd) client.defineCommand('mcpkitWorkEnd', { numberOfKeys: 1, lua: END });
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#inbox) return;
      const message = parseMessage(text);
      if (message) this.#deliver(message);
    });
    subscriber.on('close', () => {
      if (this.#subscribed) this.#lost = true;
    });
    subscriber.on('ready', () => {
      // A cancellation published while this node was unsubscribed is caught from the flags.
      if (!this.#lost) return;
      this.#lost = false;
      void this.#beat();
    });
    client.on('close', () => {
      this.#down = true;
    });
    client.on('ready', () => {
      if (!this.#down) {
        if (this.#timer) void this.#beat();
        return;
      }
      this.#down = false;
      // Back after an outage: renew the lease at once, and write every record held again (a Redis
      // that restarted without persistence lost them; records another node ended stay ended).
      void this.#beat().then(() => {
        for (const runner of this.#runners.values()) runner.resync?.();
      });
    });
  }

  get #scripted(): Scripted {
    return this.#client as unknown as Scripted;
  }

  get #inbox(): string {
    return `${this.#options.prefix}node:${this.node}`;
  }

  #lease(node: string): string {
    return `${this.#options.prefix}lease:${node}`;
  }

  #key(kind: Kind, id: string): string {
    return `${this.#options.prefix}${kind}:${id}`;
  }

  /** Starts serving `kind`: the heartbeat and the inbox start with the first runner. */
  serve(kind: Kind, runner: WorkRunner): () => void {
    this.#runners.set(kind, runner);
    if (!this.#subscribed) {
      this.#subscribed = true;
      this.#subscriber.subscribe(this.#inbox).catch(() => {
        this.#subscribed = false;
      });
    }
    if (!this.#timer && !this.#closed) {
      void this.#beat();
      this.#timer = setInterval(() => void this.#beat(), Math.max(50, Math.floor(this.#options.leaseMs / 3)));
      this.#timer.unref?.();
    }
    return () => {
      if (this.#runners.get(kind) === runner) this.#runners.delete(kind);
    };
  }

  #deliver(message: Message): void {
    const runner = this.#runners.get(message.kind);
    if (!runner) return;
    if (message.op === 'cancel') runner.cancel(message.id, message.reason || 'Cancelled by the client');
    else runner.update?.(message.id, message.inputResponses ?? {});
  }

  /**
   * The heartbeat: renews this node's lease, sends the writes that waited, and checks the cancel
   * flags of what it runs (a cancellation whose message was missed is caught here).
   */
  async #beat(): Promise<void> {
    if (this.#closed || this.#client.status !== 'ready') return;
    try {
      await this.#renewLease();
    } catch {
      return;
    }
    for (const key of [...this.#pending.keys()]) this.#pump(key);
    for (const [kind, runner] of this.#runners) {
      runner.beat?.();
      const ids = [...runner.running()];
      if (ids.length === 0) continue;
      try {
        const flags = await Promise.all(ids.map((id) => this.#client.hget(this.#key(kind, id), 'cancel')));
        flags.forEach((flag, i) => {
          if (flag === '1') runner.cancel(ids[i]!, 'Cancelled by the client');
        });
      } catch {
        // Checked again on the next beat.
      }
    }
  }

  async #renewLease(): Promise<void> {
    await this.#client.set(this.#lease(this.node), '1', 'PX', this.#options.leaseMs);
    this.#leased = true;
  }

  /** Queues the latest write of one record; one write per record is in flight at a time. */
  #enqueue(key: string, write: () => Promise<void>): void {
    this.#pending.set(key, write);
    this.#pump(key);
  }

  #pump(key: string): void {
    if (this.#inFlight.has(key) || this.#closed) return;
    const write = this.#pending.get(key);
    if (!write) return;
    this.#pending.delete(key);
    this.#inFlight.add(key);
    write().then(
      () => {
        this.#inFlight.delete(key);
        this.#pump(key);
      },
      () => {
        this.#inFlight.delete(key);
        // Kept for the next heartbeat (or the reconnect), unless a newer write replaced it.
        if (!this.#pending.has(key)) this.#pending.set(key, write);
        this.#options.onDeferred?.('redis unreachable; a task or job update waits to be written');
      },
    );
  }

  /** Writes a record as its running node; stops the local work when another node ended it. */
  async #write(kind: Kind, id: string, write: RecordWrite): Promise<void> {
    const outcome = await this.#scripted.mcpkitWorkSave(
      this.#key(kind, id),
      write.doc,
      write.status,
      Math.floor(write.ttlMs),
      write.renew ? '1' : '0',
      this.node,
      // As JSON, so "no owner" and an empty id stay apart.
      JSON.stringify(write.owner ?? null),
    );
    if (outcome !== 'cancelled' && outcome !== 'failed') return;
    // Another node ended the record first, and the store keeps that end: this node adopts it.
    const runner = this.#runners.get(kind);
    const reason = outcome === 'cancelled' ? 'Cancelled by the client' : ORPHAN_MESSAGE;
    if (runner?.ended) runner.ended(id, outcome, reason);
    else runner?.cancel(id, reason);
  }

  /** Records new work; rejects with `UNAVAILABLE` while Redis is out of reach. */
  async #create(kind: Kind, id: string, write: RecordWrite): Promise<void> {
    await this.#options.before?.();
    try {
      if (!this.#leased) await this.#renewLease();
      await this.#write(kind, id, write);
    } catch (error) {
      throw storeDown(error);
    }
  }

  /** Reads a record; one whose node's lease lapsed while it ran is ended as failed first. */
  async #read(kind: Kind, id: string, orphan: (raw: RawRecord) => string): Promise<RawRecord | undefined> {
    // Ids are UUIDs: a longer one names nothing, and is not worth a round trip.
    if (id.length > MAX_ID_LENGTH) return undefined;
    await this.#options.before?.();
    const key = this.#key(kind, id);
    try {
      const fields = await this.#client.hgetall(key);
      if (fields.doc === undefined || fields.status === undefined || fields.node === undefined)
        return undefined;
      const raw: RawRecord = {
        doc: fields.doc,
        status: fields.status,
        ...(fields.override !== undefined && { override: fields.override }),
        node: fields.node,
        owner: fields.owner ?? 'null',
      };
      if (isRunning(raw.status) && raw.node !== this.node) {
        const alive = await this.#client.exists(this.#lease(raw.node));
        if (alive === 0) {
          const override = orphan(raw);
          const ended = await this.#scripted.mcpkitWorkEnd(key, 'failed', override, '0');
          if (ended?.[0] === 'ok') return { ...raw, status: 'failed', override };
          return this.#read(kind, id, orphan);
        }
      }
      return raw;
    } catch (error) {
      if (error instanceof McpKitError) throw error;
      throw storeDown(error);
    }
  }

  /** Ends a record another node runs as cancelled, and tells that node. */
  async #cancel(kind: Kind, id: string, end: { override: string; reason: string }): Promise<boolean> {
    const { override, reason } = end;
    if (id.length > MAX_ID_LENGTH) return false;
    await this.#options.before?.();
    try {
      const ended = await this.#scripted.mcpkitWorkEnd(this.#key(kind, id), 'cancelled', override, '1');
      if (!ended) return false;
      const [outcome, node] = ended;
      if (outcome === 'ok' && node !== '') {
        const message: Message = { kind, op: 'cancel', id, reason };
        // At most once; the flag in the record catches a missed message on the owner's next beat.
        await this.#client.publish(`${this.#options.prefix}node:${node}`, JSON.stringify(message));
      }
      return true;
    } catch (error) {
      throw storeDown(error);
    }
  }

  /** Stops the heartbeat and gives up the lease: this node's unfinished work reads as failed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
    if (this.#client.status !== 'ready') return;
    await this.#client.del(this.#lease(this.node)).catch(() => {});
  }

  /** The {@link TaskStore} of this node. */
  tasks(): TaskStore {
    const { maxRecordBytes } = this.#options;
    const orphan = (raw: RawRecord) => {
      const doc = JSON.parse(raw.doc) as TaskSnapshot;
      return JSON.stringify({
        status: 'failed',
        lastUpdatedAt: Math.max(Date.now(), doc.lastUpdatedAt),
        error: { code: ERROR_CODES.UNAVAILABLE.jsonRpc, message: ORPHAN_MESSAGE },
      });
    };
    const snapshotOf = (raw: RawRecord): TaskSnapshot => {
      const doc = JSON.parse(raw.doc) as TaskSnapshot & Record<string, unknown>;
      if (raw.override === undefined) return doc;
      // Ended by another node: the running node's result, progress and input requests do not apply.
      const { result: _r, inputRequests: _i, error: _e, ...rest } = doc;
      return { ...rest, ...(JSON.parse(raw.override) as Partial<TaskSnapshot>) } as TaskSnapshot;
    };
    return {
      maxRecordBytes,
      create: (task) =>
        this.#create('task', task.taskId, {
          doc: JSON.stringify(task),
          status: task.status,
          ttlMs: task.ttlMs,
          renew: false,
          owner: task.owner,
        }),
      save: (taskId, task) => {
        this.#enqueue(this.#key('task', taskId), () => {
          const now = task();
          // A task lives ttlMs from its creation; written anew (after a Redis restart) with what is left.
          return this.#write('task', taskId, {
            doc: JSON.stringify(now),
            status: now.status,
            ttlMs: now.createdAt + now.ttlMs - Date.now(),
            renew: false,
            owner: now.owner,
          });
        });
      },
      get: async (taskId) => {
        const raw = await this.#read('task', taskId, orphan);
        return raw && snapshotOf(raw);
      },
      cancel: async (taskId, reason) => {
        const override = JSON.stringify({ status: 'cancelled', lastUpdatedAt: Date.now() });
        if (!(await this.#cancel('task', taskId, { override, reason }))) return undefined;
        const raw = await this.#read('task', taskId, orphan);
        return raw && snapshotOf(raw);
      },
      update: async (taskId, inputResponses) => {
        const text = JSON.stringify({ kind: 'task', op: 'update', id: taskId, inputResponses });
        if (Buffer.byteLength(text) > MAX_MESSAGE_BYTES) {
          throw new McpKitError('PAYLOAD_TOO_LARGE', `Input responses over ${MAX_MESSAGE_BYTES} bytes`);
        }
        const raw = await this.#read('task', taskId, orphan);
        if (!raw) return false;
        if (!isRunning(raw.status)) return true;
        try {
          const heard = await this.#client.publish(`${this.#options.prefix}node:${raw.node}`, text);
          return heard > 0;
        } catch (error) {
          throw storeDown(error);
        }
      },
      serve: (runner) => this.serve('task', runner),
    };
  }

  /** The {@link JobStore} of this node. */
  jobs(): JobStore {
    const { maxRecordBytes, leaseMs } = this.#options;
    /** A running job's record lives until its node's lease would have lapsed, then as long as a finished one. */
    const ttl = (status: string, keepFinishedMs: number) =>
      Math.max(1, isRunning(status) ? keepFinishedMs + 3 * leaseMs : keepFinishedMs);
    const bounded = (snapshot: CompletionSnapshot) => boundedJob(snapshot, maxRecordBytes);
    const orphan = () => {
      const finishedAt = new Date().toISOString();
      return JSON.stringify({
        status: 'failed',
        stopReason: 'error',
        finishedAt,
        error: { code: 'UNAVAILABLE', message: ORPHAN_MESSAGE },
      });
    };
    const jobOf = (raw: RawRecord): SharedJob => {
      const doc = JSON.parse(raw.doc) as CompletionSnapshot;
      const owner = JSON.parse(raw.owner) as string | null;
      const snapshot = raw.override
        ? ({ ...doc, ...(JSON.parse(raw.override) as Partial<CompletionSnapshot>) } as CompletionSnapshot)
        : doc;
      return { snapshot, ...(typeof owner === 'string' && { owner }) };
    };
    return {
      maxRecordBytes,
      create: (job, keepFinishedMs) =>
        this.#create('job', job.snapshot.id, {
          doc: bounded(job.snapshot),
          status: job.snapshot.status,
          ttlMs: ttl(job.snapshot.status, keepFinishedMs),
          renew: true,
          owner: job.owner,
        }),
      save: (id, job, keepFinishedMs) => {
        this.#enqueue(this.#key('job', id), () => {
          const { snapshot, owner } = job();
          return this.#write('job', id, {
            doc: bounded(snapshot),
            status: snapshot.status,
            ttlMs: ttl(snapshot.status, keepFinishedMs),
            renew: true,
            owner,
          });
        });
      },
      get: async (id) => {
        const raw = await this.#read('job', id, orphan);
        return raw && jobOf(raw);
      },
      cancel: async (id) => {
        const override = JSON.stringify({
          status: 'cancelled',
          stopReason: 'cancelled',
          finishedAt: new Date().toISOString(),
          error: { code: 'CANCELLED', message: 'The completion was cancelled' },
        });
        if (!(await this.#cancel('job', id, { override, reason: 'The completion was cancelled' }))) {
          return undefined;
        }
        const raw = await this.#read('job', id, orphan);
        return raw && jobOf(raw).snapshot;
      },
      serve: (runner) => this.serve('job', runner),
    };
  }
}

function isRunning(status: string): boolean {
  return status === 'working' || status === 'input_required' || status === 'running';
}

/**
 * A job's JSON within `maxBytes`: whole when it fits, else without its steps, and then with its
 * output cut to what fits.
 */
function boundedJob(snapshot: CompletionSnapshot, maxBytes: number): string {
  const whole = JSON.stringify(snapshot);
  if (Buffer.byteLength(whole) <= maxBytes) return whole;
  const { steps: _steps, output, ...rest } = snapshot;
  const lean = JSON.stringify({ ...rest, steps: [] });
  if (output === undefined) return lean;
  const room = Math.max(0, maxBytes - Buffer.byteLength(lean) - 64);
  // Characters, not bytes: a character takes at most 4 bytes in UTF-8 (and up to 6 escaped in JSON).
  const cut = output.length * 6 > room ? `${output.slice(0, Math.floor(room / 6))}…` : output;
  return JSON.stringify({ ...rest, steps: [], output: cut });
}
