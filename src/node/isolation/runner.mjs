/**
 * The entry an isolated tool runs in: a worker thread of the worker level, or a child process of the
 * process level (both started by tinypool). Plain JavaScript on purpose: the same file runs from
 * `src/` under the tests and from `dist/` in the package, with no loader in the worker.
 *
 * One call at a time per worker. The call talks to the main thread over a link (the worker thread's
 * one MessagePort, kept for its life, each message tagged with the call's id; the IPC channel in a
 * child process): progress, logs, nested tool calls, the abort of its signal. What the handler
 * returns is checked here, before it leaves: it must be cloneable and its JSON at most
 * `maxResultBytes` long.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { serialize } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

const inProcess = isMainThread;
const realExit = process.exit.bind(process);
/** Set once the worker is ending: the call in it must not answer. */
let exiting = false;
/** @type {Map<string, Function>} */
const handlers = new Map();
/** The link of the call running now (one at a time). */
let current;

/**
 * Worker thread: the port to the main thread that every call of this worker talks over, adopted from
 * the first task that carries one (src/node/isolation/links.ts). A message from the main thread
 * names its call: only the call running now hears it.
 */
let workerLink;
/**
 * Ids of calls whose abort came before their task (the link and tinypool's port are two channels):
 * the call is aborted as it starts. The main thread sends an abort to every worker of its pool
 * while it does not know which one runs the call, so most are for calls elsewhere: a few are kept.
 */
const earlyAborts = [];

function adopt(port) {
  if (workerLink) {
    // This worker has its link: the main thread forgets the spare once it closes.
    port.close();
    return;
  }
  workerLink = port;
  port.on('message', (message) => {
    if (!message || typeof message !== 'object') return;
    if (current && current.id === message.call) current.receive(message);
    else if (message.type === 'abort') {
      earlyAborts.push(message.call);
      if (earlyAborts.length > 32) earlyAborts.shift();
    }
  });
}

/**
 * Child process: messages of mcpkit's own come over IPC beside tinypool's, and an error thrown
 * outside the call (from a timer) is reported before the process ends. (A worker thread's uncaught
 * error reaches the main thread as the worker's `error` event.)
 */
if (inProcess) {
  process.on('message', (message) => {
    if (message && message.mcpkit === 1) current?.receive(message);
  });
}
process.on('uncaughtException', (error) => {
  const message = String(error instanceof Error ? error.message : error).split('\n')[0];
  exiting = true;
  if (inProcess) process.send({ mcpkit: 1, type: 'uncaught', message }, () => realExit(70));
  else {
    current?.send({ type: 'uncaught', message });
    realExit(70);
  }
});

/** Sends `message`, or a string form of it when it cannot be cloned. */
function sendTo(post, message) {
  try {
    post(message);
  } catch {
    post({ ...message, data: String(message.data), obj: undefined });
  }
}

/** What one call's progress and log messages may cost, copies included (the main thread's budget). */
const MESSAGE_BUDGET_BYTES = 1024 * 1024;
const BUDGETED = new Set(['progress', 'log', 'logger']);

/** The bytes a message's copy costs, or 0 when it cannot be copied (it then goes as text). */
function copyBytes(message) {
  try {
    return serialize(message).byteLength;
  } catch {
    return 0;
  }
}

function linkOf(task) {
  const listeners = new Set();
  /** What is left of the call's message budget: the main thread counts JSON, blind to binary data. */
  let budget = MESSAGE_BUDGET_BYTES;
  const post = inProcess
    ? (message) => process.send(message)
    : (message) => {
        workerLink.postMessage({ ...message, call: task.call });
        link.sent = true;
      };
  const link = {
    /** The call's id on its worker's link (worker thread). */
    id: task.call,
    /** Whether its call still runs: a context kept past its call's end sends nothing more. */
    open: true,
    /** Whether anything went over the worker's link for the call: its answer then follows it there. */
    sent: false,
    send: (message) => {
      // A child process has one channel for every call: a late message would reach the call that
      // runs next, another caller's. A worker's port is closed by then, but the rule is the same.
      if (!link.open) return;
      if (BUDGETED.has(message.type)) {
        if (budget <= 0) return;
        budget -= copyBytes(message);
        // Past the budget nothing more is sent (the main thread's warning comes from its own count).
        if (budget < 0) return;
      }
      sendTo(post, { mcpkit: 1, ...message });
    },
    receive: (message) => {
      for (const listener of listeners) listener(message);
    },
    listen: (listener) => listeners.add(listener),
  };
  return link;
}

/** `process.exit` inside a tool ends its worker; the main thread is told which limit was hit first. */
process.exit = (code) => {
  const link = current;
  if (link && inProcess) {
    // IPC is asynchronous: the process ends once the news is out, and the call never answers.
    exiting = true;
    process.send({ mcpkit: 1, type: 'exit', code: code ?? 0 }, () => realExit(code));
    return undefined;
  }
  if (!exiting) link?.send({ type: 'exit', code: code ?? 0 });
  exiting = true;
  return realExit(code);
};

/** Console output of a tool goes to the server's log, never to the server's stdout (stdio MCP). */
for (const [method, level] of [
  ['log', 'info'],
  ['info', 'info'],
  ['debug', 'debug'],
  ['warn', 'warn'],
  ['error', 'error'],
]) {
  console[method] = (...parts) => {
    current?.send({
      type: 'logger',
      level,
      msg: parts.map((p) => (typeof p === 'string' ? p : safeText(p))).join(' '),
    });
  };
}

// Writes to stdout too (the server's stdout may be its stdio transport); stderr stays as it is.
process.stdout.write = (chunk, encoding, done) => {
  current?.send({ type: 'logger', level: 'info', msg: String(chunk).slice(0, 10_000) });
  const callback = typeof encoding === 'function' ? encoding : done;
  if (typeof callback === 'function') queueMicrotask(callback);
  return true;
};

function safeText(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

async function handlerOf(module, exportName) {
  const key = `${module}#${exportName}`;
  let handler = handlers.get(key);
  if (handler) return handler;
  const loaded = await import(module);
  handler = loaded[exportName];
  if (typeof handler !== 'function' && loaded.default && typeof loaded.default === 'object') {
    handler = loaded.default[exportName];
  }
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`The tool module has no function export "${exportName}"`), {
      code: 'INTERNAL',
      expose: true,
    });
  }
  handlers.set(key, handler);
  return handler;
}

/** Ids of nested calls, unique in the worker: an answer meant for one call never matches another's. */
let nextCallId = 0;

/**
 * A call's abort, whose `AbortSignal` is only built once the handler asks for `ctx.signal`: building
 * one costs more than the rest of an echo call's time in the worker.
 */
function lazyAbort() {
  let controller;
  let reason;
  return {
    abort(why) {
      if (reason !== undefined) return;
      reason = why;
      controller?.abort(why);
    },
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (reason !== undefined) controller.abort(reason);
      }
      return controller.signal;
    },
  };
}

function contextOf(task, link, controller) {
  const pending = new Map();
  link.listen((message) => {
    if (message.type === 'called') {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (message.error)
        waiting.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      else waiting.resolve(message.result);
    }
  });
  const clientLog = (level) => (data, logger) => {
    link.send({ type: 'log', level, data, logger });
    return Promise.resolve();
  };
  const serverLog = (level) => (obj, msg) => {
    if (typeof obj === 'string') link.send({ type: 'logger', level, msg: obj });
    else link.send({ type: 'logger', level, obj, msg });
  };
  return {
    get signal() {
      return controller.signal;
    },
    ...task.meta,
    log: {
      debug: clientLog('debug'),
      info: clientLog('info'),
      warning: clientLog('warning'),
      error: clientLog('error'),
    },
    logger: {
      debug: serverLog('debug'),
      info: serverLog('info'),
      warn: serverLog('warn'),
      error: serverLog('error'),
    },
    progress(progress, total, message) {
      link.send({ type: 'progress', progress, total, message });
      return Promise.resolve();
    },
    callTool(name, args) {
      if (!link.open) {
        const ended = new Error('This call of the tool has ended: its ctx.callTool can no longer be used');
        return Promise.reject(Object.assign(ended, { code: 'UNAVAILABLE' }));
      }
      const id = ++nextCallId;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        link.send({ type: 'call', id, name, args: args ?? {} });
      });
    },
  };
}

/** What a handler's failure carries back: its message's first line and its code; never a stack. */
function failureOf(error) {
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : 'Tool failed';
  const code = error && typeof error === 'object' && typeof error.code === 'string' ? error.code : undefined;
  const issues =
    error && typeof error === 'object' && Array.isArray(error.issues) ? safeIssues(error.issues) : undefined;
  return {
    message: String(message).split('\n')[0].slice(0, 2000),
    ...(code && { code }),
    ...(error?.expose === true && { expose: true }),
    ...(issues && { issues }),
  };
}

function safeIssues(issues) {
  try {
    return JSON.parse(JSON.stringify(issues.slice(0, 50)));
  } catch {
    return undefined;
  }
}

/**
 * Checks a result before it leaves: cloneable, and within the byte limit both as JSON (what goes on
 * the wire) and as the copy that crosses to the main thread (binary data, a `Map`, whose JSON is `{}`).
 * A short text needs no measuring: its JSON is at most 6 bytes a character (`\uXXXX`) and 2 quotes,
 * its copy at most 2 bytes a character and a header.
 */
function checked(value, maxResultBytes) {
  if (typeof value === 'string' && value.length * 6 + 16 <= maxResultBytes) return { ok: true, value };
  let copied;
  try {
    // The structured clone's own serializer: what the copy out of the worker will cost, in bytes.
    copied = serialize(value).byteLength;
  } catch (error) {
    return { ok: false, fault: 'uncloneable', message: String(error?.message ?? error).split('\n')[0] };
  }
  if (copied > maxResultBytes) return { ok: false, fault: 'result-too-large', bytes: copied };
  let text;
  try {
    text = value === undefined ? '' : JSON.stringify(value);
  } catch (error) {
    return { ok: false, fault: 'uncloneable', message: String(error?.message ?? error).split('\n')[0] };
  }
  const bytes = Buffer.byteLength(text ?? '', 'utf8');
  if (bytes > maxResultBytes) return { ok: false, fault: 'result-too-large', bytes };
  return { ok: true, value };
}

/**
 * A worker thread that sent messages for the call answers over its link, so the answer arrives
 * after them (tinypool's port is another channel); one that sent none answers through tinypool, one
 * message in all. A child process has one channel.
 */
function answer(link, outcome) {
  if (inProcess || !link.sent) return outcome;
  sendTo((message) => workerLink.postMessage(message), {
    mcpkit: 1,
    call: link.id,
    type: 'answer',
    answer: outcome,
  });
  return { viaLink: true };
}

/** Whether this thread's scheduling priority was lowered already (by its first call). */
let lowered = false;

/**
 * Lowers this thread's scheduling priority, once: a worker that burns CPU then yields a shared core
 * to the server's own thread. On Linux a thread has a priority of its own, so this lowers the worker
 * thread (or the child process's main thread) only.
 *
 * - `'idle'`: a worker thread is put under `SCHED_IDLE` (with `chrt`, which needs no privilege to
 *   lower a thread's own policy): it runs only on a core no other thread wants, and the scheduler
 *   counts a core running only such threads as free when the server's thread wakes. Where that
 *   fails, and in a child process (its permission model may forbid spawning), 19 nice levels.
 * - a number: that many nice levels below the one the thread started with (the server's).
 *
 * Where the system refuses, the worker keeps the server's priority.
 */
function lowerPriority(priority) {
  if (lowered) return;
  lowered = true;
  if (priority === 'idle' && !inProcess && scheduleIdle()) return;
  const steps = priority === 'idle' ? 19 : priority;
  if (typeof steps !== 'number' || steps <= 0) return;
  try {
    setPriority(0, Math.min(19, getPriority(0) + steps));
  } catch {
    // not permitted here: the worker keeps the server's priority
  }
}

/**
 * Where `chrt` is looked for: util-linux's own places first, so a `chrt` earlier on the server's
 * `PATH` (an npm script puts `node_modules/.bin` there) is not the one run; `PATH` only where neither
 * exists (NixOS, say).
 */
const CHRT_PLACES = ['/usr/bin/chrt', '/bin/chrt'];

/** Puts this thread under `SCHED_IDLE`; false where it cannot (no `/proc`, no `chrt`, refused). */
function scheduleIdle() {
  try {
    // `/proc/thread-self` names this thread's own task: `<pid>/task/<tid>`.
    const tid = readlinkSync('/proc/thread-self').split('/').pop();
    if (!tid || !/^[0-9]+$/.test(tid)) return false;
    const chrt = CHRT_PLACES.find((path) => existsSync(path)) ?? 'chrt';
    execFileSync(chrt, ['--idle', '--pid', '0', tid], { stdio: 'ignore', timeout: 2000 });
    return true;
  } catch {
    return false;
  }
}

/** Tinypool's task function: one call of an isolated tool. */
export default async function runIsolatedCall(task) {
  lowerPriority(task.priority);
  if (!inProcess) {
    if (task.port) adopt(task.port);
    // A worker started for a task that carried no link: the main thread sends it again with one.
    if (!workerLink) return { needLink: true };
  }
  const link = linkOf(task);
  current = link;
  const controller = lazyAbort();
  // Heard from the start: an abort that comes while the handler's module loads is not lost.
  link.listen((message) => {
    if (message.type === 'abort') controller.abort(new Error(message.reason ?? 'The call was cancelled'));
  });
  const early = inProcess ? -1 : earlyAborts.indexOf(task.call);
  if (early >= 0) {
    earlyAborts.splice(early, 1);
    controller.abort(new Error('The call was cancelled'));
  }
  try {
    const handler = await handlerOf(task.module, task.exportName);
    const ctx = contextOf(task, link, controller);
    const value = await handler(task.args, ctx);
    if (exiting) return new Promise(() => {});
    return answer(link, checked(value, task.maxResultBytes));
  } catch (error) {
    if (exiting) return new Promise(() => {});
    return answer(link, { ok: false, error: failureOf(error) });
  } finally {
    // The worker's link stays open for its next call (its close means the worker died).
    if (current === link) current = undefined;
    link.open = false;
  }
}
