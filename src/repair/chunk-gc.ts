// Garbage collection of chunks no manifest references (overwritten or deleted objects,
// aborted uploads). Each pass asks every member that may hold manifests which of this
// peer's chunks the manifests in its index shards reference; a chunk seen unreferenced by
// all of them for longer than the grace period is deleted. If any of them does not
// answer, the pass does nothing: an unseen manifest might reference anything. Chunk
// repair does not push chunks that GC is waiting to collect, so the two never undo each other.
//
// Who is asked: every member except those gone for good (removed) and those out of the
// live ring (dead for longer than the repair delay). A member that left the ring is not
// waited for, or GC would stop for as long as its record is kept (the tombstone lifetime,
// 7 days). Leaving it out is safe only when no manifest can live on departed members
// alone, which `waitingFor` (repair-service.ts) checks before each pass: an acknowledged
// manifest sits on W of its shard's voters, so while fewer than W voters of every object
// shard have left the ring, a member holding it is among those asked (a partition that
// cuts off a whole voter set keeps GC waiting, as it should: those manifests are
// unseen). It also waits for a complete shard-sync pass since the last departure, so the
// departed members' shards are back on their live replicas before GC counts on them.
import { Type } from "@sinclair/typebox";
import type { ObjectManifest } from "../metadata/types.ts";
import { ChunkIdsSchema, inPieces } from "../objects/chunk-client.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";

/** Counters shown in /cluster/status. */
export interface GcStats {
  chunksCollected: number;
  /** Chunks currently seen unreferenced, waiting out the grace period. */
  pending: number;
  lastPassMs: number;
  /** Why the last pass did nothing, if it did nothing. */
  skipped?: string;
}

/** Dependencies of chunk GC. */
export interface ChunkGcDeps {
  self: string;
  chunkStore: ChunkStore;
  indexStore: IndexStore;
  rpc: Rpc;
  /** Every peer that may hold manifests: members except those removed or out of the live ring (and this peer). */
  peersToAsk(): string[];
  /** Why GC must wait (e.g. shard repair after a member left the ring), or undefined. */
  waitingFor?(): string | undefined;
  graceMs: number;
  /** Chunks of uploads in progress on this peer: referenced by no manifest yet, but kept. */
  uploading(): Iterable<string>;
  log: Logger;
  clock?: () => number;
}

/** Of `ids`, those that manifests in the callee's index shards reference. */
const Referenced = defineMethod("gc.referenced", { params: Type.Object({ ids: ChunkIdsSchema }), result: ChunkIdsSchema });

/** Create the GC pass; `start` serves its RPC method to the other peers' passes, `stop` withdraws it. */
export function createChunkGc(deps: ChunkGcDeps): { pass(): Promise<void>; stats: GcStats; collecting(id: string): boolean; start(): void; stop(): void } {
  const { self, rpc, log } = deps;
  const clock = deps.clock ?? Date.now;
  const stats: GcStats = { chunksCollected: 0, pending: 0, lastPassMs: 0 };
  const unreferencedSince = new Map<string, number>();

  /** Chunk ids referenced by live manifests in the shards this peer stores. */
  async function localReferences(): Promise<Set<string>> {
    const refs = new Set<string>(deps.uploading());
    for (const shard of deps.indexStore.shards()) {
      if (!shard.startsWith("o")) continue;
      for (const [, entry] of await deps.indexStore.rowsIn(shard)) {
        // Manifests and multipart parts both list chunks; upload records list none.
        const m = entry.value as Partial<ObjectManifest> | null;
        if (m?.chunks) for (const c of m.chunks) refs.add(c.id);
      }
    }
    return refs;
  }

  const start = () =>
    rpc.register(Referenced, async ({ params: { ids } }) => {
      const refs = await localReferences();
      return { result: ids.filter((id) => refs.has(id)) };
    });

  async function referencedOn(peer: string, ids: string[]): Promise<string[]> {
    if (peer === self) {
      const refs = await localReferences();
      return ids.filter((id) => refs.has(id));
    }
    return inPieces(ids, async (piece) => (await rpc.call(peer, Referenced, { ids: piece }, { timeoutMs: 30_000 })).result);
  }

  async function pass(): Promise<void> {
    const started = performance.now();
    const local: string[] = [];
    for await (const id of deps.chunkStore.list()) local.push(id);
    if (!local.length) {
      unreferencedSince.clear();
      stats.pending = 0;
      return;
    }
    const waiting = deps.waitingFor?.();
    if (waiting) {
      stats.skipped = waiting;
      return;
    }
    const referenced = new Set<string>();
    try {
      const answers = await Promise.all([self, ...deps.peersToAsk()].map((p) => referencedOn(p, local)));
      for (const ids of answers) for (const id of ids) referenced.add(id);
    } catch (err) {
      stats.skipped = `a member did not answer: ${(err as Error).message}`;
      return;
    }
    stats.skipped = undefined;
    const now = clock();
    const present = new Set(local);
    for (const id of [...unreferencedSince.keys()]) if (!present.has(id) || referenced.has(id)) unreferencedSince.delete(id);
    for (const id of local) {
      if (referenced.has(id)) continue;
      const since = unreferencedSince.get(id) ?? now;
      unreferencedSince.set(id, since);
      if (now - since >= deps.graceMs) {
        await deps.chunkStore.delete(id);
        unreferencedSince.delete(id);
        stats.chunksCollected++;
        log.debug(`collected unreferenced chunk ${id.slice(0, 12)}`);
      }
    }
    stats.pending = unreferencedSince.size;
    stats.lastPassMs = Math.round(performance.now() - started);
  }

  return { pass, stats, collecting: (id) => unreferencedSince.has(id), start, stop: () => rpc.unregister(Referenced) };
}
