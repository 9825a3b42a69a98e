// A token bucket for background transfers: `take(n)` waits until n more bytes fit under
// the rate. Its waiters count, so a worker can report itself throttled rather than busy.
import { sleep } from "../util/sleep.ts";

/** A byte-rate limit shared by one worker's transfers. */
export interface RateLimiter {
  /** Wait until `n` bytes fit under the rate; rejects with the signal's reason if it aborts first. */
  take(n: number, signal: AbortSignal): Promise<void>;
  /** Callers waiting now. */
  readonly waiting: number;
}

/** Create a limiter of `perSecond` bytes per second (a burst of one second's worth). */
export function createRateLimiter(perSecond: number): RateLimiter {
  let available = perSecond;
  let last = performance.now();
  let waiting = 0;
  return {
    get waiting() {
      return waiting;
    },
    async take(n, signal) {
      for (;;) {
        signal.throwIfAborted();
        const now = performance.now();
        available = Math.min(perSecond, available + ((now - last) / 1000) * perSecond);
        last = now;
        // A transfer bigger than the whole burst goes once the bucket is full (or it never would).
        if (available >= n || available >= perSecond) {
          available -= n;
          return;
        }
        waiting++;
        try {
          await sleep(Math.ceil(((n - available) / perSecond) * 1000), signal);
        } finally {
          waiting--;
        }
      }
    },
  };
}
