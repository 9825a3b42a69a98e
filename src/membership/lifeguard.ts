// Lifeguard's refinements of SWIM (Dadgar et al., 2018; HashiCorp memberlist's
// awareness.go and suspicion.go), which tell a slow member from a dead one:
// - a prober's own health score stretches its probe timeouts and interval while it is
//   failing probes or being suspected itself, so a busy peer does not accuse others;
// - probe timeouts follow each member's observed round trips (srtt + 4 rttvar, as TCP's
//   retransmission timer does), never below the configured floor;
// - a suspicion lasts from `max` (--dead-after) down to `min` as independent members
//   confirm it, so a real death is declared quickly and a lone accusation slowly.
// Pure state and arithmetic: swim.ts feeds it what happens.

/** Highest health score: timeouts stretch up to (MAX_SCORE + 1) times. */
export const MAX_SCORE = 8;

/** The prober's own health: 0 is healthy; each point stretches timeouts by one more multiple. */
export class Awareness {
  private value = 0;

  /** The current score, 0 to MAX_SCORE. */
  get score(): number {
    return this.value;
  }

  /** Add `delta` (negative after a successful probe), kept within 0..MAX_SCORE. */
  apply(delta: number): void {
    this.value = Math.max(0, Math.min(MAX_SCORE, this.value + delta));
  }

  /** `ms` stretched by the score. */
  scale(ms: number): number {
    return ms * (this.value + 1);
  }
}

/** Round-trip estimates per member (Jacobson/Karels, as TCP keeps them). */
export class RoundTrips {
  private readonly est = new Map<string, { srtt: number; rttvar: number }>();

  /** Record one measured round trip to `id`. */
  observe(id: string, rttMs: number): void {
    const e = this.est.get(id);
    if (!e) {
      this.est.set(id, { srtt: rttMs, rttvar: rttMs / 2 });
      return;
    }
    e.rttvar = 0.75 * e.rttvar + 0.25 * Math.abs(e.srtt - rttMs);
    e.srtt = 0.875 * e.srtt + 0.125 * rttMs;
  }

  /** A probe timeout for `id`: srtt + 4 rttvar, at least `floorMs` and at most `ceilingMs`. */
  timeout(id: string, floorMs: number, ceilingMs: number): number {
    const e = this.est.get(id);
    if (!e) return floorMs;
    return Math.min(ceilingMs, Math.max(floorMs, e.srtt + 4 * e.rttvar));
  }

  /** Forget a member (it left, or its link changed with a restart). */
  forget(id: string): void {
    this.est.delete(id);
  }
}

/**
 * How long a suspicion lasts after `confirmations` independent members have also
 * suspected the member, out of `expected` that could: from `maxMs` with none down to
 * `minMs` with all, on a log scale (the first confirmations count most).
 */
export function suspicionTimeout(minMs: number, maxMs: number, expected: number, confirmations: number): number {
  if (expected < 1) return maxMs;
  const fraction = Math.log(Math.min(confirmations, expected) + 1) / Math.log(expected + 1);
  return Math.max(minMs, Math.floor(maxMs - (maxMs - minMs) * fraction));
}
