// Placement as this peer sees it: a ring over the members that are alive, suspect, or
// dead for less than the repair delay (so a quick restart moves no data), minus those
// draining. Rebuilt when that set changes. Chunks and index shards use the same ring.
import type { MemberTable } from "../membership/member-table.ts";
import { quorumRule, type QuorumRule } from "./quorum-rule.ts";
import { buildRing, type Ring } from "./ring.ts";

/** Replica sets for chunks and index shards. */
export interface Placement {
  /** The RF owners of a chunk (fewer when fewer peers are in the ring). */
  chunkOwners(chunkId: string): string[];
  /** The RF replicas of an index shard. */
  shardReplicas(shard: string): string[];
  /** Members currently in the ring. */
  members(): readonly string[];
  /** The write (and read) quorum, counted over the mesh's members (src/placement/quorum-rule.ts). */
  quorum(): QuorumRule;
  /** Could `peer` answer now, as far as this peer knows (itself, or alive or suspect)? */
  reachable(peer: string): boolean;
  readonly rf: number;
}

/** How often the ring's member set is re-derived (dead peers leave it as their delay expires). */
const RECHECK_MS = 200;

/** Create placement that follows the member table; `memberCount` counts the mesh's members for quorums (the roster). */
export function createPlacement(table: MemberTable, rf: number, repairDelayMs: number, memberCount: () => number, clock: () => number = Date.now): Placement {
  let ring: Ring | undefined;
  let key = "";
  let checkedAt = 0;

  function ringMembers(): string[] {
    const now = clock();
    const ids = table.others()
      .filter((m) => !m.draining && (m.state !== "dead" || now - m.stateSinceMs < repairDelayMs))
      .map((m) => m.id);
    if (!table.self.draining) ids.push(table.self.id);
    return ids.sort();
  }

  function current(): Ring {
    const now = clock();
    if (!ring || now - checkedAt >= RECHECK_MS) {
      checkedAt = now;
      const ids = ringMembers();
      const k = ids.join(",");
      if (!ring || k !== key) {
        key = k;
        ring = buildRing(ids.map((id) => ({ id })));
      }
    }
    return ring;
  }
  table.onChange(() => {
    checkedAt = 0;
  });

  return {
    rf,
    chunkOwners: (id) => current().replicasFor(id, rf),
    shardReplicas: (shard) => current().replicasFor(`shard:${shard}`, rf),
    members: () => current().members,
    quorum: () => quorumRule(rf, memberCount()),
    reachable: (peer) => {
      if (peer === table.self.id) return true;
      const state = table.get(peer)?.state;
      return state === "alive" || state === "suspect";
    },
  };
}
