// Anti-entropy and handoff for index shards. Each pass, for every shard this peer holds
// or replicates:
// - as a replica, it compares per-bucket digests with every other replica and exchanges
//   only the rows of buckets that differ, both ways (LWW makes the merge order-free);
// - as a former replica (the ring moved), it pushes all its rows to the replicas and
//   drops them once every replica has taken them;
// - delete markers older than the tombstone lifetime are dropped once every replica has
//   them (their digest buckets match everywhere), so they are not carried forever.
// A pass is a sequence of steps: the digest requests, then one shard per step (a handoff:
// one batch of its rows per step).
import type { IndexClient } from "../metadata/index-client.ts";
import { allShards, KEYS_SHARD } from "../metadata/keys.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore, ScanRow } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { untilAborted } from "./abortable.ts";

/** Counters shown in /cluster/status. */
export interface ShardSyncStats {
  /** Shards (held or replicated here) with a replica that differs or did not answer. */
  underReplicated: number;
  rowsRepaired: number;
  rowsHandedOff: number;
  tombstonesDropped: number;
  lastPassMs: number;
  /** Wall-clock start of the latest pass in which every live replica answered and every exchange and handoff succeeded (0: none yet). */
  lastCompletePassStartedMs: number;
}

/** Dependencies of shard sync. */
export interface ShardSyncDeps {
  self: string;
  store: IndexStore;
  index: IndexClient;
  placement: Placement;
  indexShards: number;
  isExpiredTombstone(ts: string): boolean;
  /**
   * How often a shard's rows are read to find delete markers past their lifetime. The
   * read decodes every row of the shard (manifests and events), so it is not done at
   * every pass; 0: at every pass.
   */
  tombstoneScanEveryMs?: number;
  log: Logger;
  clock?: () => number;
}

/** Rows per handoff step. */
const HANDOFF_ROWS = 1000;

/** Shard sync as a job of bounded steps. */
export interface ShardSync {
  /** One pass over the shards held or replicated here; each step is one shard. */
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: ShardSyncStats;
}

/** Create shard sync. */
export function createShardSync(deps: ShardSyncDeps): ShardSync {
  const { self, store, index, placement, log } = deps;
  const stats: ShardSyncStats = { underReplicated: 0, rowsRepaired: 0, rowsHandedOff: 0, tombstonesDropped: 0, lastPassMs: 0, lastCompletePassStartedMs: 0 };
  const clock = deps.clock ?? Date.now;
  const everyShard = allShards(deps.indexShards);

  const isExpired = ([, e]: ScanRow) => e.value === null && deps.isExpiredTombstone(e.ts);
  /** When each shard's rows were last read for expired markers. */
  const tombstoneScans = new Map<string, number>();
  const tombstoneScanDue = (shard: string) => {
    const last = tombstoneScans.get(shard);
    if (last !== undefined && clock() - last < (deps.tombstoneScanEveryMs ?? 0)) return false;
    tombstoneScans.set(shard, clock());
    return true;
  };

  async function dropTombstones(shard: string, rows: ScanRow[]): Promise<void> {
    // A revoked key stays revoked: its marker is kept for good, so a replica that was away
    // longer than the tombstone lifetime cannot bring the key back.
    if (!rows.length || shard === KEYS_SHARD) return;
    await store.drop(shard, rows.map(([row, e]) => [row, e.ts]));
    stats.tombstonesDropped += rows.length;
  }

  async function syncAsReplica(shard: string, replicas: string[], digests: Map<string, Record<string, string[]>>, signal: AbortSignal): Promise<boolean> {
    const mine = store.digests(shard);
    const others = replicas.filter((p) => p !== self);
    let inSync = true;
    for (const peer of others) {
      const theirs = digests.get(peer)?.[shard];
      if (!theirs) {
        inSync = false;
        continue;
      }
      const differing = mine.flatMap((d, i) => (d !== theirs[i] ? [i] : []));
      if (!differing.length) continue;
      // Differing buckets are exchanged now; only a failed exchange leaves the shard under-replicated.
      try {
        const [their, ours] = await Promise.all([index.rowsOn(peer, shard, differing, { signal }), store.rowsIn(shard, differing)]);
        const gained = await index.applyManyOn(self, shard, their, { signal });
        // An expired delete marker the other replica no longer has was dropped there after
        // every replica had it: drop ours too instead of sending it back.
        const theirRows = new Set(their.map(([row]) => row));
        const gone = ours.filter((r) => isExpired(r) && !theirRows.has(r[0]));
        await dropTombstones(shard, gone);
        const dropped = new Set(gone);
        const given = await index.applyManyOn(peer, shard, ours.filter((r) => !dropped.has(r)), { signal });
        stats.rowsRepaired += gained + given;
      } catch (err) {
        inSync = false;
        log.debug(`anti-entropy ${shard} with ${peer.slice(-6)}: ${(err as Error).message}`);
      }
    }
    const voters = placement.shardVoters(shard);
    if (replicas.length >= placement.rf && others.every((p) => digests.get(p)?.[shard]) && voters.every((v) => v === self || digests.get(v)?.[shard]) && tombstoneScanDue(shard)) {
      // Delete markers past their lifetime go once every replica has them: only in digest
      // buckets where every replica matches us, and only while every voter is among them (a
      // dead voter that comes back must not find its old row unopposed).
      const agreed = mine.flatMap((d, i) => (others.every((p) => digests.get(p)![shard][i] === d) ? [i] : []));
      if (agreed.length) await dropTombstones(shard, (await store.rowsIn(shard, agreed)).filter(isExpired));
    }
    return inSync;
  }

  /** Hand a shard we no longer replicate to its replicas, one batch of rows per step; false if a replica did not take a batch. */
  async function* handOff(shard: string, replicas: string[], signal: AbortSignal): AsyncGenerator<void, boolean> {
    let after: string | undefined;
    for (;;) {
      const rows = await store.scan(shard, { prefix: "", after, limit: HANDOFF_ROWS });
      if (!rows.length) return true;
      try {
        await untilAborted(Promise.all(replicas.map((p) => index.applyManyOn(p, shard, rows, { signal }))), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        log.debug(`handoff of ${shard}: ${(err as Error).message}`);
        return false;
      }
      // Rows rewritten meanwhile stay (drop checks the stamp) and go in a later pass.
      await store.drop(shard, rows.map(([row, e]) => [row, e.ts]));
      stats.rowsHandedOff += rows.length;
      after = rows[rows.length - 1][0];
      yield;
    }
  }

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    const started = performance.now();
    const startedAt = clock();
    const held = store.shards();
    const replicaSets = new Map(everyShard.map((s) => [s, placement.shardReplicas(s)]));
    const mine = everyShard.filter((s) => replicaSets.get(s)!.includes(self));
    const mineSet = new Set(mine);
    // One digest request per peer, for every shard we share with it.
    const byPeer = new Map<string, string[]>();
    for (const s of mine) {
      for (const p of replicaSets.get(s)!) {
        if (p === self) continue;
        const list = byPeer.get(p);
        if (list) list.push(s);
        else byPeer.set(p, [s]);
      }
    }
    const digests = new Map<string, Record<string, string[]>>();
    await untilAborted(
      Promise.all(
        [...byPeer].map(async ([peer, shards]) => {
          try {
            digests.set(peer, await index.digestsOn(peer, shards, { signal }));
          } catch {
            // unreachable this pass
          }
        }),
      ),
      signal,
    );
    yield;
    let under = 0;
    // Fewer live replicas than rf (a small mesh after a death) is under-replication, but
    // not an incomplete pass: every replica there is has every row.
    let complete = true;
    for (const s of mine) {
      const reps = replicaSets.get(s)!;
      const answered = new Map([...digests].filter(([p]) => reps.includes(p)));
      const inSync = await untilAborted(syncAsReplica(s, reps, answered, signal), signal);
      if (!inSync) complete = false;
      if (!inSync || reps.length < placement.rf) under++;
      yield;
    }
    for (const s of held) {
      if (mineSet.has(s)) continue;
      // A draining peer hands a shard only to a full set of replicas (as chunks: chunk-repair.ts).
      if (replicaSets.get(s)!.length < placement.rf) continue;
      if (!(yield* handOff(s, replicaSets.get(s)!, signal))) {
        under++;
        complete = false;
      }
    }
    stats.underReplicated = under;
    if (complete) stats.lastCompletePassStartedMs = startedAt;
    stats.lastPassMs = Math.round(performance.now() - started);
  }

  return { pass, stats };
}
