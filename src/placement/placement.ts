// Placement as this peer sees it, on two rings built the same way (ring.ts):
// - the live ring holds the members that are alive, suspect, or dead for less than the
//   repair delay (so a quick restart moves no data), minus those draining. It says where
//   copies should be: writes go there, and repair restores RF copies there.
// - the member ring holds every member the mesh counts (the roster: dead members too,
//   until an operator removes them). Its replicas of a key are the key's voters: a write
//   is acknowledged once W of them have it, and a read asks W of them. Because every
//   write and every read meet W of the same r voters, they always share one, however the
//   live ring moves; a side of a partition that holds fewer than W of a key's voters can
//   neither acknowledge a write of it nor answer for it (quorum-rule.ts).
// When nobody is dead the two rings are the same.
//
// Mesh-wide shards (the buckets and the access keys, a few small rows that every request
// needs) live on every member instead of RF of them, and their quorum is a majority of
// the whole mesh: the side of a partition with most members can always check keys and
// buckets, and the other side never can, rather than a random two of three holding them.
import type { MemberTable } from "../membership/member-table.ts";
import { majority, quorumRule, type QuorumRule } from "./quorum-rule.ts";
import { buildRing, type Ring } from "./ring.ts";

/** Replica sets for chunks and index shards. */
export interface Placement {
  /** The RF owners of a chunk on the live ring (fewer when fewer peers are in it). */
  chunkOwners(chunkId: string): string[];
  /** The RF replicas of an index shard on the live ring. */
  shardReplicas(shard: string): string[];
  /** A chunk's voters: its r owners on the member ring. */
  chunkVoters(chunkId: string): string[];
  /** An index shard's voters: its r replicas on the member ring (every member for a mesh-wide shard). */
  shardVoters(shard: string): string[];
  /** Voters that must agree for a write or read of a shard: a majority of its voters. */
  shardQuorum(shard: string): number;
  /** Members currently in the live ring. */
  members(): readonly string[];
  /** Each live-ring member's share of the key space as one of its rf owners (ring.ts replicaShares; kept with the ring). */
  shares(): ReadonlyArray<{ id: string; share: number }>;
  /** The write (and read) quorum, counted over the mesh's members (src/placement/quorum-rule.ts). */
  quorum(): QuorumRule;
  /** Could `peer` answer now, as far as this peer knows (itself, or alive or suspect)? */
  reachable(peer: string): boolean;
  readonly rf: number;
}

/** How often the rings' member sets are re-derived (dead peers leave the live ring as their delay expires). */
const RECHECK_MS = 200;

/** A ring rebuilt only when its member list changes; `invalidate` makes the next use re-derive the list. */
function cachedRing(members: () => string[], clock: () => number): { get(): Ring; invalidate(): void } {
  let ring: Ring | undefined;
  let key = "";
  let checkedAt = 0;
  const get = () => {
    const now = clock();
    if (!ring || now - checkedAt >= RECHECK_MS) {
      checkedAt = now;
      const ids = members().sort();
      const k = ids.join(",");
      if (!ring || k !== key) {
        key = k;
        ring = buildRing(ids.map((id) => ({ id })));
      }
    }
    return ring;
  };
  return { get, invalidate: () => (checkedAt = 0) };
}

/**
 * Create placement that follows the member table. `meshMembers` lists the members counted
 * for quorums (the roster, this peer included unless it is draining).
 */
export function createPlacement(table: MemberTable, rf: number, repairDelayMs: number, meshMembers: () => string[], meshWideShards: string[] = [], clock: () => number = Date.now): Placement {
  const meshWide = new Set(meshWideShards);
  const live = cachedRing(() => {
    const now = clock();
    const ids = table
      .others()
      .filter((m) => !m.draining && (m.state !== "dead" || now - m.stateSinceMs < repairDelayMs))
      .map((m) => m.id);
    if (!table.self.draining) ids.push(table.self.id);
    return ids;
  }, clock);
  const member = cachedRing(meshMembers, clock);
  // A state change may move either ring: re-derive them at the next use.
  table.onChange(() => {
    live.invalidate();
    member.invalidate();
  });

  return {
    rf,
    chunkOwners: (id) => live.get().replicasFor(id, rf),
    shardReplicas: (shard) => (meshWide.has(shard) ? [...live.get().members] : live.get().replicasFor(`shard:${shard}`, rf)),
    chunkVoters: (id) => member.get().replicasFor(id, rf),
    shardVoters: (shard) => (meshWide.has(shard) ? [...member.get().members] : member.get().replicasFor(`shard:${shard}`, rf)),
    shardQuorum: (shard) => (meshWide.has(shard) ? majority(member.get().members.length) : quorumRule(rf, member.get().members.length).w),
    members: () => live.get().members,
    shares: () => live.get().replicaShares(rf),
    quorum: () => quorumRule(rf, member.get().members.length),
    reachable: (peer) => {
      if (peer === table.self.id) return true;
      const state = table.get(peer)?.state;
      return state === "alive" || state === "suspect";
    },
  };
}
