// Coalescing small calls: calls to the same destination made in the same turn of the
// event loop travel as one request. Under load many small object operations land in one
// turn, and each RPC costs far more (stream framing, a noise seal, a socket write, a
// window update) than the few bytes it carries; each LevelDB read, a thread-pool trip.

/** Sends one batch to a destination (a peer id, or "" for a local resource); answers one result per item, in order. */
export type BatchSender<I, O> = (peer: string, items: I[]) => Promise<O[]>;

/** Most items in one batch. */
export const MAX_BATCH = 256;

/** A function that queues `item` for `peer` and resolves with its own result; `signal` withdraws it (or stops waiting for it). */
export function createBatcher<I, O>(send: BatchSender<I, O>): (peer: string, item: I, signal?: AbortSignal) => Promise<O> {
  type Waiting = { item: I; resolve: (o: O) => void; reject: (e: unknown) => void };
  const queues = new Map<string, Waiting[]>();

  const flush = (peer: string) => {
    const queue = queues.get(peer);
    queues.delete(peer);
    if (!queue) return;
    for (let i = 0; i < queue.length; i += MAX_BATCH) {
      const batch = queue.slice(i, i + MAX_BATCH);
      send(peer, batch.map((w) => w.item)).then(
        (results) => {
          if (results.length !== batch.length) {
            const err = new Error(`batch to ${peer.slice(-6)}: ${results.length} results for ${batch.length} items`);
            batch.forEach((w) => w.reject(err));
          } else batch.forEach((w, j) => w.resolve(results[j]));
        },
        (err) => batch.forEach((w) => w.reject(err)),
      );
    }
  };

  return (peer, item, signal) =>
    new Promise<O>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      let queue = queues.get(peer);
      if (!queue) {
        queues.set(peer, (queue = []));
        setImmediate(() => flush(peer));
      }
      if (!signal) return void queue.push({ item, resolve, reject });
      // An aborted item still queued leaves the batch; one already sent is answered but not waited for.
      const withdraw = () => {
        const waiting = queues.get(peer);
        const at = waiting?.indexOf(entry) ?? -1;
        if (at >= 0) waiting!.splice(at, 1);
        reject(signal.reason);
      };
      const done = () => signal.removeEventListener("abort", withdraw);
      const entry: Waiting = {
        item,
        resolve: (o) => (done(), resolve(o)),
        reject: (e) => (done(), reject(e)),
      };
      signal.addEventListener("abort", withdraw, { once: true });
      queue.push(entry);
    });
}
