// A background worker, shaped like Garage's: a job's pass is a sequence of bounded steps
// (a batch of chunk ids, one shard, one chunk), and the worker runs passes one step at a
// time. Between steps it checks for stop, so stopping never waits for a whole pass; a
// failed pass is retried after a backoff that doubles per consecutive failure (bounded,
// with jitter, so peers that fail together do not retry together). Its state is visible
// in `/cluster/status`.
import type { Logger } from "../util/log.ts";

/** What a worker is doing now. */
export type WorkerState = "idle" | "busy" | "throttled" | "error";

/** A worker's figures for `/cluster/status`. */
export interface WorkerStatus {
  state: WorkerState;
  /** Steps done since start. */
  steps: number;
  /** Passes completed since start. */
  passes: number;
  /** Duration of the last completed pass. */
  lastPassMs: number;
  /** Failed passes in a row (0 once a pass completes). */
  errors: number;
  /** The latest failure, kept after recovery. */
  lastError?: { message: string; atMs: number };
}

/** A background job: one pass over its work, in bounded steps. */
export interface Job {
  /** Run one pass; each `yield` ends a bounded step. Awaits inside a step give up when `signal` aborts. */
  pass(signal: AbortSignal): AsyncIterable<unknown>;
  /** True while the job waits on its rate limit (the worker then reports "throttled"). */
  throttled?(): boolean;
}

/** A running background job. */
export interface Worker {
  readonly name: string;
  start(): void;
  /** Start the next pass as soon as the current one ends (or now, if waiting). */
  wake(): void;
  /** Interrupt the current pass at the next step or abortable await; resolves once the loop has exited. */
  stop(): Promise<void>;
  /** Resolves once the loop has exited. */
  readonly done: Promise<void>;
  status(): WorkerStatus;
}

/** Options of a worker. */
export interface WorkerOptions {
  /** Pause between passes. */
  intervalMs: number;
  log: Logger;
  /** Stops the worker too when it aborts (the peer's signal). */
  signal?: AbortSignal;
  /** Source of jitter, in [0, 1). */
  random?: () => number;
}

/** Backoff after consecutive failures grows up to this many intervals. */
const MAX_BACKOFF_INTERVALS = 16;

/** Wait after `errors` failures in a row: the interval doubled per failure, capped, times a jitter in [0.5, 1). */
export function backoffMs(intervalMs: number, errors: number, random: () => number): number {
  const base = intervalMs * Math.min(MAX_BACKOFF_INTERVALS, 2 ** Math.max(0, errors - 1));
  return Math.round(base * (0.5 + random() / 2));
}

/** Create a worker around one job. */
export function createWorker(name: string, job: Job, opts: WorkerOptions): Worker {
  const random = opts.random ?? Math.random;
  const stopping = new AbortController();
  const signal = stopping.signal;
  opts.signal?.addEventListener("abort", () => stopping.abort(opts.signal!.reason), { once: true });
  if (opts.signal?.aborted) stopping.abort(opts.signal.reason);

  const status: WorkerStatus = { state: "idle", steps: 0, passes: 0, lastPassMs: 0, errors: 0 };
  let running = false;
  let woken = false;
  let endWait: (() => void) | undefined;
  let started = false;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));

  /** Sleep `ms`, cut short by wake() or stop. */
  function waitForWork(ms: number): Promise<void> {
    if (woken || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", end);
        endWait = undefined;
        resolve();
      };
      const timer = setTimeout(end, ms);
      signal.addEventListener("abort", end, { once: true });
      endWait = end;
    });
  }

  async function loop(): Promise<void> {
    while (!signal.aborted) {
      woken = false;
      running = true;
      const passStarted = performance.now();
      try {
        for await (const _ of job.pass(signal)) {
          status.steps++;
          if (signal.aborted) break;
        }
        if (!signal.aborted) {
          status.passes++;
          status.lastPassMs = Math.round(performance.now() - passStarted);
          status.errors = 0;
        }
      } catch (err) {
        if (signal.aborted) break;
        status.errors++;
        status.lastError = { message: (err as Error).message, atMs: Date.now() };
        opts.log.warn(`${name} pass failed (${status.errors} in a row): ${(err as Error).message}`);
      }
      running = false;
      await waitForWork(status.errors ? backoffMs(opts.intervalMs, status.errors, random) : opts.intervalMs);
    }
    running = false;
    finish();
  }

  return {
    name,
    done,
    start() {
      if (started) return;
      started = true;
      if (signal.aborted) return finish();
      void loop();
    },
    wake() {
      woken = true;
      endWait?.();
    },
    async stop() {
      stopping.abort();
      if (!started) finish();
      await done;
    },
    status() {
      const state: WorkerState = running ? (job.throttled?.() ? "throttled" : "busy") : status.errors ? "error" : "idle";
      return { ...status, state, ...(status.lastError && { lastError: { ...status.lastError } }) };
    },
  };
}
