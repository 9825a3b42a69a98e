// A background worker: runs `pass` every `intervalMs` until the signal aborts, and can
// be woken early (a ring change, a drain). A failing pass is logged, never fatal.
import type { Logger } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";

/** A periodic background job. */
export interface Worker {
  start(): void;
  /** Run the next pass as soon as the current one ends. */
  wake(): void;
  /** Resolves after the loop has exited (once the signal aborted). */
  readonly done: Promise<void>;
}

/** Create a worker around one pass function. */
export function createWorker(name: string, intervalMs: number, pass: () => Promise<void>, log: Logger, signal: AbortSignal): Worker {
  let wakeUp: AbortController = new AbortController();
  let started = false;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return {
    done,
    wake: () => wakeUp.abort(),
    start() {
      if (started) return;
      started = true;
      void (async () => {
        while (!signal.aborted) {
          try {
            await pass();
          } catch (err) {
            if (!signal.aborted) log.warn(`${name} pass failed: ${(err as Error).message}`);
          }
          await sleep(intervalMs, AbortSignal.any([signal, wakeUp.signal]));
          wakeUp = new AbortController();
        }
        finish();
      })();
    },
  };
}

/** A token bucket: `take(n)` waits until n more bytes fit under `perSecond`. */
export function createRateLimiter(perSecond: number, signal?: AbortSignal): { take(n: number): Promise<void> } {
  let available = perSecond;
  let last = performance.now();
  return {
    async take(n) {
      while (!signal?.aborted) {
        const now = performance.now();
        available = Math.min(perSecond, available + ((now - last) / 1000) * perSecond);
        last = now;
        if (available >= n || available >= perSecond) {
          available -= n;
          return;
        }
        await sleep(Math.ceil(((n - available) / perSecond) * 1000), signal);
      }
    },
  };
}

