// Placement as this peer sees it: the ring over the members that are alive or suspect
// (only dead peers leave the ring), rebuilt when the member view changes. Chunks and
// index shards are placed by the same ring.
import type { MemberTable } from "../membership/member-table.ts";
import { buildRing, type Ring } from "./ring.ts";

/** Replica sets for chunks and index shards. */
export interface Placement {
  /** The RF owners of a chunk (fewer when fewer peers are in the ring). */
  chunkOwners(chunkId: string): string[];
  /** The RF replicas of an index shard. */
  shardReplicas(shard: string): string[];
  /** Members currently in the ring. */
  members(): readonly string[];
  readonly rf: number;
}

/** Create placement that follows the member table. */
export function createPlacement(table: MemberTable, rf: number): Placement {
  let ring: Ring | undefined;
  const current = () => {
    if (!ring) ring = buildRing([table.self.id, ...table.idsIn("alive", "suspect")].map((id) => ({ id })));
    return ring;
  };
  // Rebuild lazily: only dead/alive transitions change the ring, but any change is cheap.
  table.onChange(() => {
    ring = undefined;
  });
  return {
    rf,
    chunkOwners: (id) => current().replicasFor(id, rf),
    shardReplicas: (shard) => current().replicasFor(`shard:${shard}`, rf),
    members: () => current().members,
  };
}
