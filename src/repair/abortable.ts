// Giving up on an await when a worker stops. The work itself is not cancelled (a peer
// call runs on until its own timeout), but nobody waits for it any more: its result and
// any failure are dropped, so stop returns at once.

/** `work`, or a rejection with the signal's reason as soon as `signal` aborts. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {}); // abandoned: its failure is nobody's concern
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
