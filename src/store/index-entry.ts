// A versioned index row and the order that decides between two versions of it. It lives
// with the store that applies it; src/metadata/ re-exports it with the rest of what the
// index holds, and decides which shards treat deletes as final.

/** A versioned index value; `value: null` is a tombstone. `ts` is an encoded HLC timestamp. */
export interface IndexEntry<V = unknown> {
  ts: string;
  value: V | null;
  /**
   * Set when a consensus round wrote again a value an earlier round proposed (src/metadata/consensus.ts):
   * that round's stamp, so its proposer knows the value as its own. Absent: the value is `ts`'s own.
   */
  origin?: string;
}

/**
 * Does `a` replace `b`? The last writer wins, except where deletes are final (the keys
 * shard: a revoked key stays revoked). There a delete marker replaces any value and no
 * value replaces one, whatever their stamps, so no row, not even one stamped in the
 * future, can bring a revoked key back. Either way the order is total, so replicas converge.
 */
export function newer(a: IndexEntry, b: IndexEntry | null | undefined, deletesFinal = false): boolean {
  if (!b) return true;
  if (deletesFinal && (a.value === null) !== (b.value === null)) return a.value === null;
  return a.ts > b.ts;
}
