/**
 * Consistent-hash ring with virtual nodes.
 *
 * A ring is a pure function of the member view: the same set of (id, weight)
 * pairs yields the same placement on every process and machine, regardless of
 * input order. Used for both chunk placement (key = 64-hex chunk id) and
 * metadata index shards (key = any string such as "shard:0042").
 */

/** A member of the ring; weight defaults to 1 (scales the number of virtual nodes, e.g. by capacity). */
export interface RingMember {
  id: string;
  weight?: number;
}

/** Ring construction options. */
export interface RingOptions {
  /** Virtual nodes per unit of weight (default {@link DEFAULT_VNODES}). */
  vnodes?: number;
}

/** An immutable placement view over a fixed member set. */
export interface Ring {
  /** Member ids, sorted. */
  readonly members: readonly string[];
  /** The first `rf` DISTINCT member ids walking clockwise from the key's hash; fewer if the ring has fewer members; [] on an empty ring. Deterministic. */
  replicasFor(key: string, rf: number): string[];
  /**
   * For each member (sorted by id), the fraction of the key space for which it is one of
   * the `rf` replicas: exact arc lengths between vnode positions, no sampling. The shares
   * sum to min(rf, members). Computed once per rf and kept (the ring never changes).
   */
  replicaShares(rf: number): ReadonlyArray<{ id: string; share: number }>;
}

/** Default virtual nodes per unit of weight; 512 keeps 16 equal members within ~1.08x (typ.) / ~1.15x (worst seen) of the mean load. */
export const DEFAULT_VNODES = 512;

const HEX64 = /^[0-9a-f]{64}$/;

/** The number of ring positions (32-bit). */
const RING_SIZE = 2 ** 32;

// 2^21 owner slots x 2^32 positions = 2^53: the packed sort key stays an exact double.
const OWNER_SLOTS = 2 ** 21;

/** Big-endian uint32 at byte offset `o`. */
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** The 32-bit ring position of a key; stable across processes and machines (no random seeds). */
export function ringPosition(key: string): number {
  // Chunk ids are already SHA-256 output, so their leading bits are uniform: skip rehashing.
  if (key.length === 64 && HEX64.test(key)) return parseInt(key.slice(0, 8), 16) >>> 0;
  return u32(Bun.CryptoHasher.hash("sha256", key) as Uint8Array, 0);
}

/** Collapse duplicates (max weight wins, so input order never matters) and validate. */
function normalize(members: readonly RingMember[]): Map<string, number> {
  const byId = new Map<string, number>();
  for (const m of members) {
    const w = m.weight ?? 1;
    if (typeof m.id !== "string" || m.id.length === 0) throw new TypeError("ring member id must be a non-empty string");
    if (!Number.isFinite(w) || w <= 0) throw new RangeError(`ring member ${m.id}: weight must be a positive finite number, got ${w}`);
    byId.set(m.id, Math.max(byId.get(m.id) ?? 0, w));
  }
  return byId;
}

/** Build a ring over `members` (order-independent; duplicate ids collapse to their largest weight). */
export function buildRing(members: readonly RingMember[], opts: RingOptions = {}): Ring {
  const perWeight = opts.vnodes ?? DEFAULT_VNODES;
  if (!Number.isInteger(perWeight) || perWeight <= 0) throw new RangeError(`vnodes must be a positive integer, got ${perWeight}`);

  const weights = normalize(members);
  const ids = [...weights.keys()].sort();
  if (ids.length > OWNER_SLOTS) throw new RangeError(`ring supports at most ${OWNER_SLOTS} members`);

  // A member's vnode positions depend only on (id, index), so a member keeps the
  // same vnodes in every view: that is what makes membership changes minimal.
  // One SHA-256 digest yields 8 positions (32 bytes), which keeps building cheap.
  const counts = ids.map((id) => Math.max(1, Math.round(perWeight * weights.get(id)!)));
  const total = counts.reduce((a, b) => a + b, 0);
  const rawPos = new Uint32Array(total);
  const rawOwner = new Uint32Array(total);
  let n = 0;
  ids.forEach((id, mi) => {
    for (let block = 0; block * 8 < counts[mi]; block++) {
      const d = Bun.CryptoHasher.hash("sha256", `${id}\0${block}`) as Uint8Array;
      for (let j = 0; j < 8 && block * 8 + j < counts[mi]; j++, n++) {
        rawPos[n] = u32(d, j * 4);
        rawOwner[n] = mi;
      }
    }
  });

  // Sort by position; ties (rare 32-bit collisions) break by member index, i.e. by sorted id.
  // Packing (position, owner) into one exact float lets the native numeric sort do the work.
  const packed = new Float64Array(total);
  for (let i = 0; i < total; i++) packed[i] = rawPos[i] * OWNER_SLOTS + rawOwner[i];
  packed.sort();
  const pos = new Uint32Array(total);
  const owner = new Uint32Array(total);
  for (let i = 0; i < total; i++) {
    owner[i] = packed[i] % OWNER_SLOTS;
    pos[i] = (packed[i] - owner[i]) / OWNER_SLOTS;
  }

  // Scratch marks for the distinct-member walk; a generation counter avoids clearing per call.
  const seen = new Uint32Array(ids.length);
  let gen = 0;

  /** Index of the first vnode at or clockwise after position `p` (wraps to 0). */
  function firstAtOrAfter(p: number): number {
    let lo = 0;
    let hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pos[mid] < p) lo = mid + 1;
      else hi = mid;
    }
    return lo === total ? 0 : lo;
  }

  function replicasFor(key: string, rf: number): string[] {
    const want = Math.min(Math.floor(rf), ids.length);
    if (!(want > 0)) return [];
    if (++gen === 0xffffffff) {
      seen.fill(0);
      gen = 1;
    }
    const out: string[] = [];
    let i = firstAtOrAfter(ringPosition(key));
    for (let steps = 0; steps < total && out.length < want; steps++) {
      const m = owner[i];
      if (seen[m] !== gen) {
        seen[m] = gen;
        out.push(ids[m]);
      }
      if (++i === total) i = 0;
    }
    return out;
  }

  /**
   * The keys whose first vnode at or after their position is vnode i are those in the arc
   * (pos[i-1], pos[i]] (wrapping at 0), and their replicas are the distinct members walking
   * from i. So each member's share is the sum of the arcs of the vnodes whose walk meets it.
   */
  function computeShares(rf: number): Array<{ id: string; share: number }> {
    const want = Math.min(Math.floor(rf), ids.length);
    const arcs = new Float64Array(ids.length);
    if (want > 0) {
      for (let v = 0; v < total; v++) {
        const arc = v === 0 ? pos[0] + RING_SIZE - pos[total - 1] : pos[v] - pos[v - 1];
        if (arc === 0) continue;
        if (++gen === 0xffffffff) {
          seen.fill(0);
          gen = 1;
        }
        let found = 0;
        for (let i = v, steps = 0; steps < total && found < want; steps++) {
          const m = owner[i];
          if (seen[m] !== gen) {
            seen[m] = gen;
            arcs[m] += arc;
            found++;
          }
          if (++i === total) i = 0;
        }
      }
    }
    return ids.map((id, m) => ({ id, share: arcs[m] / RING_SIZE }));
  }
  const shares = new Map<number, ReadonlyArray<{ id: string; share: number }>>();

  return {
    members: Object.freeze(ids),
    replicasFor,
    replicaShares(rf) {
      let known = shares.get(rf);
      if (!known) {
        // Bounded: a caller asks for its one rf; keep a few at most.
        if (shares.size >= 8) shares.clear();
        shares.set(rf, (known = Object.freeze(computeShares(rf))));
      }
      return known;
    },
  };
}
