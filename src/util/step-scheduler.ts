// The loop behind workers that serve many items in bounded steps (webhook targets,
// write-through buckets): the item list is refreshed now and then, each item says when its
// next step is due, at most `maxConcurrent` steps run at once, items take turns (the loop
// starts from a different one each turn, so none waits behind the same others), and the
// loop sleeps until the next due step, the next refresh, or a poke.

/** An item the scheduler runs steps of. */
export interface Scheduled {
  /** A step of it is under way (the scheduler sets and clears it). */
  busy: boolean;
  /** When its next step is due (the step sets it). */
  nextAtMs: number;
}

/** What the scheduler runs. */
export interface StepSchedulerOptions<T extends Scheduled> {
  /** The items, as they are now. */
  items(): Iterable<T>;
  /** One bounded step of `item`; it sets `item.nextAtMs`. */
  step(item: T): Promise<void>;
  /** A step threw: say so and set when the item is tried again. */
  failed(item: T, err: unknown): void;
  /** Read the items again. */
  refresh(): Promise<void>;
  /** A refresh threw (it is tried again after `refreshEveryMs`). */
  refreshFailed(err: unknown): void;
  refreshEveryMs: number;
  maxConcurrent: number;
  /** The worker's: aborted at stop. */
  signal: AbortSignal;
  clock: () => number;
}

/** A running scheduler. */
export interface StepScheduler {
  start(): void;
  /** Resolves once the loop has exited (after the signal aborted) and its steps have ended. */
  stopped(): Promise<void>;
  /** Refresh the items now. */
  refresh(): void;
  /** Steps under way. */
  inFlight(): number;
}

/** Create a scheduler (started by `start`). */
export function createStepScheduler<T extends Scheduled>(o: StepSchedulerOptions<T>): StepScheduler {
  const steps = new Set<Promise<void>>();
  let refreshedAt = -Infinity;
  let refreshAsked = false;
  let wake: (() => void) | undefined;
  /** Set by a poke that came while the loop was not waiting: its next wait is skipped. */
  let poked = false;
  let done: Promise<void> | undefined;
  const poke = () => {
    poked = true;
    wake?.();
  };
  o.signal.addEventListener("abort", poke, { once: true });

  function launch(item: T): void {
    item.busy = true;
    const p: Promise<void> = o
      .step(item)
      .catch((err: unknown) => o.failed(item, err))
      .finally(() => {
        item.busy = false;
        steps.delete(p);
        poke();
      });
    steps.add(p);
  }

  async function loop(): Promise<void> {
    let turn = 0;
    while (!o.signal.aborted) {
      poked = false;
      if (refreshAsked || o.clock() - refreshedAt >= o.refreshEveryMs) {
        refreshAsked = false;
        await o.refresh().catch(o.refreshFailed);
        refreshedAt = o.clock();
      }
      const now = o.clock();
      let nextAt = refreshedAt + o.refreshEveryMs;
      const all = [...o.items()];
      for (let k = 0; k < all.length; k++) {
        const item = all[(turn + k) % all.length];
        if (item.busy) continue;
        if (item.nextAtMs > now) {
          nextAt = Math.min(nextAt, item.nextAtMs);
          continue;
        }
        if (steps.size >= o.maxConcurrent) break;
        launch(item);
      }
      turn++;
      if (o.signal.aborted) break;
      if (poked) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(end, Math.max(5, nextAt - o.clock()));
        function end() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = end;
      });
    }
    await Promise.allSettled([...steps]);
  }

  return {
    start() {
      if (done || o.signal.aborted) return;
      done = loop();
    },
    async stopped() {
      poke();
      await done;
    },
    refresh() {
      refreshAsked = true;
      poke();
    },
    inFlight: () => steps.size,
  };
}
