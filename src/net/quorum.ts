// Calling a set of peers and settling on a quorum: resolve as soon as `quorum` calls
// succeed, fail as soon as that has become impossible. Calls still running go on in the
// background (a write's last replica completes after the client has its answer). The
// quorum never shrinks to the peers at hand: with fewer candidates, or fewer that are
// believed reachable, than the quorum, the call fails before anything is sent, so a cut-off
// peer neither acknowledges nor half-applies a write.
import { QuorumError } from "../errors.ts";

/** Outcome of one call. */
export type Outcome<T> = { peer: string; ok: true; value: T } | { peer: string; ok: false; error: Error };

/** Result of a quorum call. */
export interface QuorumResult<T> {
  /** The successes, at least `quorum` of them. */
  values: Array<{ peer: string; value: T }>;
  /** Settles when every call has finished, for work that waits for all of them. */
  all: Promise<Outcome<T>[]>;
}

/** Call `fn` for every peer; resolve once `quorum` succeed. `reachable` tells which peers could answer now. */
export function callQuorum<T>(peers: string[], quorum: number, fn: (peer: string) => Promise<T>, what: string, reachable: (peer: string) => boolean = () => true): Promise<QuorumResult<T>> {
  const values: Array<{ peer: string; value: T }> = [];
  const failures: Array<{ peer: string; error: Error }> = [];
  const need = quorum;
  const candidates = peers.filter(reachable).length;
  if (candidates < need) {
    return Promise.reject(new QuorumError(`${what}: needs ${need} replicas, but only ${candidates} of its ${peers.length} placed replicas are reachable`));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const all = Promise.all(
      peers.map(async (peer): Promise<Outcome<T>> => {
        try {
          const value = await fn(peer);
          values.push({ peer, value });
          if (!settled && values.length >= need) {
            settled = true;
            resolve({ values: [...values], all });
          }
          return { peer, ok: true, value };
        } catch (err) {
          failures.push({ peer, error: err as Error });
          if (!settled && peers.length - failures.length < need) {
            settled = true;
            const why = failures.map((f) => `${f.peer.slice(-6)}: ${f.error.message}`).join("; ");
            reject(new QuorumError(`${what}: ${values.length} of ${need} needed replicas answered (${why})`));
          }
          return { peer, ok: false, error: err as Error };
        }
      }),
    );
    if (need === 0) {
      settled = true;
      resolve({ values, all });
    }
  });
}
