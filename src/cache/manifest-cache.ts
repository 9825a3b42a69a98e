// The holder side of manifest caching (issue 15, item 4): hot object manifests (and the
// small objects inlined in them, and "no such key") kept in memory on the peer that reads
// them, under read leases from a quorum of each row's replicas (the argument is in
// src/cache/manifest-leases.ts). A lease is short (LEASE_MS); a hot object costs one
// quorum read per lease instead of one per request, and an acknowledged overwrite or
// delete through any peer is never answered from a cache.
//
// Three rules keep the holder's side of the bargain:
//   - an entry is trusted until the lease ends counted from BEFORE the read was sent,
//     less a margin, so it always runs out before any replica's record of it;
//   - a revoke names the write's stamp: an entry at least as new is kept (a write that
//     reached a slow replica after the holder read it from the others costs no miss); an
//     older one is dropped, and a read still under way keeps its answer only if that is at
//     least as new as every revoke that arrived meanwhile (the replica may have answered
//     before the write it is revoking for);
//   - an entry is dropped when the row's voters are no longer those that granted it (a
//     membership change moves the row's quorums).
import type { AbortOptions } from "@libp2p/interface";
import type { IndexEntry } from "../metadata/types.ts";
import type { Rpc } from "../net/rpc.ts";
import { byteBoundedCache } from "../util/lru.ts";
import { ratio, type TierStats } from "./disk-tier.ts";
import { LEASE_MS, RevokeMethod } from "./manifest-leases.ts";

/** How much sooner than the lease an entry is dropped (timer slack, not clock offset: both ends use their own monotonic clock). */
const LEASE_MARGIN_MS = 250;
/** Entries are weighed by their JSON size plus this much for the row name and bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 200;

/** A quorum read that also asks the replicas for leases. */
export interface LeasedRead {
  entry: IndexEntry | null;
  /** Did a quorum of the row's voters grant a lease (and the answer come from them)? */
  leased: boolean;
  /** The voters the read asked (an entry is trusted only while they are still the row's voters). */
  voters: readonly string[];
}

/** What the cache needs. */
export interface ManifestCacheDeps {
  /** Quorum read of one row with lease requests (src/metadata/index-client.ts readLeased). */
  readLeased(shard: string, row: string, opts?: AbortOptions): Promise<LeasedRead>;
  /** The row's voters now. */
  voters(shard: string): readonly string[];
  rpc: Pick<Rpc, "register" | "unregister">;
  /** Bytes of entries held at most (0: off; every read goes to the replicas). */
  maxBytes: number;
  leaseMs?: number;
  /** Monotonic ms. */
  monotonic?: () => number;
}

/** The manifest cache of one peer. */
export interface ManifestCache {
  /** The row as a quorum read would answer it now: from the cache while leased, else read (and kept if leased). */
  read(shard: string, row: string, opts?: AbortOptions): Promise<IndexEntry | null>;
  /** A write stamped `ts` of the row is about to be acknowledged: forget anything older; true if the lease must stand (a copy kept, or a read under way). */
  drop(shard: string, row: string, ts: string): boolean;
  stats(): TierStats;
  /** Serve `cache.revoke`. */
  start(): void;
  stop(): void;
}

interface Held {
  entry: IndexEntry | null;
  /** Monotonic ms after which the lease may have ended. */
  until: number;
  voters: string;
}

/** Create the manifest cache of one peer. */
export function createManifestCache(deps: ManifestCacheDeps): ManifestCache {
  const leaseMs = deps.leaseMs ?? LEASE_MS;
  const mono = deps.monotonic ?? (() => performance.now());
  const lru = deps.maxBytes > 0 ? byteBoundedCache<string, Held>({ maxBytes: deps.maxBytes }) : null;
  // Reads under way per row; a revoke raises their floor: what they read is kept only if at least that new.
  const reading = new Map<string, Set<{ floor: string }>>();
  const counts = { hits: 0, misses: 0 };

  const rowKey = (shard: string, row: string) => `${shard}\n${row}`;

  function drop(shard: string, row: string, ts: string): boolean {
    const k = rowKey(shard, row);
    const underway = reading.get(k);
    for (const r of underway ?? []) if (ts > r.floor) r.floor = ts;
    // A read under way may still keep an answer as new as the write: its lease must stand.
    let kept = underway !== undefined;
    const held = lru?.get(k);
    if (held?.entry && held.entry.ts >= ts) kept = true;
    else if (held) lru?.delete(k);
    return kept;
  }

  return {
    async read(shard, row, opts) {
      if (!lru) return (await deps.readLeased(shard, row, opts)).entry;
      const k = rowKey(shard, row);
      const held = lru.get(k);
      if (held && mono() < held.until && held.voters === deps.voters(shard).join(",")) {
        counts.hits++;
        // A copy: callers may build on what they get, and the cached one must stay as read.
        return structuredClone(held.entry);
      }
      counts.misses++;
      if (held) lru.delete(k);
      const token = { floor: "" };
      let pending = reading.get(k);
      if (!pending) reading.set(k, (pending = new Set()));
      pending.add(token);
      const asked = mono();
      try {
        const got = await deps.readLeased(shard, row, opts);
        const until = asked + leaseMs - LEASE_MARGIN_MS;
        const asNew = token.floor === "" || (got.entry !== null && got.entry.ts >= token.floor);
        if (got.leased && asNew && mono() < until) {
          const weight = ENTRY_OVERHEAD_BYTES + row.length + (got.entry ? JSON.stringify(got.entry).length : 0);
          lru.set(k, { entry: structuredClone(got.entry), until, voters: got.voters.join(",") }, weight);
        }
        return got.entry;
      } finally {
        pending.delete(token);
        if (pending.size === 0) reading.delete(k);
      }
    },

    drop,

    stats: () => ({ bytes: lru?.bytes ?? 0, maxBytes: deps.maxBytes, entries: lru?.size ?? 0, hits: counts.hits, misses: counts.misses, hitRatio: ratio(counts.hits, counts.misses) }),

    start() {
      deps.rpc.register(RevokeMethod, async ({ params: { shard, row, ts } }) => ({ result: drop(shard, row, ts) }));
    },
    stop: () => deps.rpc.unregister(RevokeMethod),
  };
}
