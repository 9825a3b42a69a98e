// The admission gate of the event log on one replica: what makes a reader's cursor safe.
//
// An event's id is the HLC stamp its coordinator gave the write, so events do not reach a
// replica in id order: a write stamped at t may land after one stamped at t+1. A reader
// that served every event up to t+1 and moved its cursor past t would never see the late
// one. So before it scans, a reader asks each replica for a mark, and the replica promises
// to accept no event (from a coordinator's write) with an id at or below that mark from
// then on: a write that arrives too late is refused and fails like any write that missed
// its quorum. The reader then serves, per shard, only events at or below the smallest mark
// of the quorum it asked, which shares a replica with every acknowledged write's quorum:
// an acknowledged event at or below it was on that replica before its mark was given, so
// it is in the answer. (Anti-entropy and repair carry events without asking the gate: they
// copy what a quorum already acknowledged, or what no one was told was written.)
//
// The mark trails the replica's clock by `settleMs`, the time a write may take from its
// stamp to its replicas; writes still being applied hold it below their own ids.
import { MeshError } from "../errors.ts";

/** How far behind its clock a replica's mark trails by default: a write's stamp to its replicas. */
export const DEFAULT_SETTLE_MS = 3000;

/** The gate of one replica. */
export interface LogGate {
  /** Admit an event with id `id` about to be written; throws EventLate when it is at or below a mark already given. Call the returned function once it is on disk (or failed). */
  admit(id: string): () => void;
  /** A mark: no event at or below it will be admitted from now on. Raises the floor. */
  mark(): string;
}

/** The lowest id-space position at wall time `ms`: below every real id stamped at `ms` or later. */
export const positionAt = (ms: number) => `${String(Math.max(0, Math.floor(ms))).padStart(13, "0")}-000000`;

/** Create the gate of one replica. The floor starts `settleMs` behind the clock, as if a reader had asked at start. */
export function createLogGate(settleMs = DEFAULT_SETTLE_MS, clock: () => number = Date.now): LogGate {
  let floor = positionAt(clock() - settleMs);
  /** Ids admitted and not yet on disk, with how many writes carry each. */
  const inFlight = new Map<string, number>();
  return {
    admit(id) {
      if (id <= floor) {
        throw new MeshError("EventLate", "the write reached this replica after readers of its bucket's events had moved past its time; retry it");
      }
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const n = inFlight.get(id)! - 1;
        if (n) inFlight.set(id, n);
        else inFlight.delete(id);
      };
    },
    mark() {
      const next = positionAt(clock() - settleMs);
      if (next > floor) floor = next;
      let mark = floor;
      // A write admitted before the floor rose may still be on its way to disk: stay below it.
      for (const id of inFlight.keys()) {
        const below = positionAt(Number(id.slice(0, 13)));
        if (below < mark) mark = below;
      }
      return mark;
    },
  };
}
