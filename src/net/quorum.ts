// Calling a set of peers and settling on a quorum: resolve as soon as `quorum` of the
// voters succeed, fail as soon as that has become impossible. Calls still running go on
// in the background (a write's last replica completes after the client has its answer).
// The quorum never shrinks to the peers at hand: with fewer voters believed reachable
// than the quorum, the call fails before anything is sent, so a cut-off peer neither
// acknowledges nor half-applies a write.
import { QuorumError } from "../errors.ts";

/** Outcome of one call. */
export type Outcome<T> = { peer: string; ok: true; value: T } | { peer: string; ok: false; error: Error };

/** Result of a quorum call. */
export interface QuorumResult<T> {
  /** The successes so far: at least `quorum` voters, and any others that answered first. */
  values: Array<{ peer: string; value: T }>;
  /** Settles when every call has finished, for work that waits for all of them. */
  all: Promise<Outcome<T>[]>;
}

/** Who is called, and whose answers count toward the quorum. */
export interface QuorumTargets {
  /** The voters: `quorum` of them must succeed (src/placement/placement.ts). */
  voters: string[];
  /** Peers called too, whose answers do not count (live owners that are not voters). */
  extra?: string[];
  /** Could a peer answer now? Too few reachable voters fail the call before anything is sent. */
  reachable?: (peer: string) => boolean;
}

/** Call `fn` for every target; resolve once `quorum` voters succeed. */
export function callQuorum<T>(targets: QuorumTargets, quorum: number, fn: (peer: string) => Promise<T>, what: string): Promise<QuorumResult<T>> {
  const { voters } = targets;
  const reachable = targets.reachable ?? (() => true);
  // Peers known to be down are not called: a dial to a dead host can hang for seconds,
  // holding the caller's buffers all that time. Their votes count as failed from the start.
  const peers = [...new Set([...voters, ...(targets.extra ?? [])])].filter(reachable);
  const isVoter = new Set(voters);
  const values: Array<{ peer: string; value: T }> = [];
  const failures: Array<{ peer: string; error: Error }> = [];
  const need = quorum;
  let votes = 0;
  const candidates = voters.filter(reachable).length;
  let voterFailures = voters.length - candidates;
  if (candidates < need) {
    return Promise.reject(new QuorumError(`${what}: needs ${need} of its ${voters.length} voting replicas, but only ${candidates} are reachable`));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const all = Promise.all(
      peers.map(async (peer): Promise<Outcome<T>> => {
        try {
          const value = await fn(peer);
          values.push({ peer, value });
          if (isVoter.has(peer)) votes++;
          if (!settled && votes >= need) {
            settled = true;
            resolve({ values: [...values], all });
          }
          return { peer, ok: true, value };
        } catch (err) {
          failures.push({ peer, error: err as Error });
          if (isVoter.has(peer)) voterFailures++;
          if (!settled && voters.length - voterFailures < need) {
            settled = true;
            const why = failures.map((f) => `${f.peer.slice(-6)}: ${f.error.message}`).join("; ");
            reject(new QuorumError(`${what}: ${votes} of ${need} needed voting replicas answered (${why})`));
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
