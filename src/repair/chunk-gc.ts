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
//
// A pass goes through the local chunks one batch of at most 5,000 ids at a time (one
// step, one question per member); the members answer from references they keep per
// shard (gc-references.ts) instead of reading every manifest for every batch.
import { Type } from "@sinclair/typebox";
import { ChunkIdsSchema, inPieces, MAX_IDS_PER_CALL } from "../objects/chunk-client.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { untilAborted } from "./abortable.ts";
import { inBatches } from "./batches.ts";
import { createReferenceIndex } from "./gc-references.ts";

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

/** GC as a job of bounded steps. */
export interface ChunkGc {
  /** One pass over the local chunks; each step is one batch of at most MAX_IDS_PER_CALL ids. */
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: GcStats;
  /** Is GC waiting out the grace period of this chunk (chunk repair must not spread it)? */
  collecting(id: string): boolean;
  /** Serve the RPC method other peers' passes ask. */
  start(): void;
  /** Withdraw it. */
  stop(): void;
}

/** Of `ids`, those that manifests in the callee's index shards reference. */
const Referenced = defineMethod("gc.referenced", { params: Type.Object({ ids: ChunkIdsSchema }), result: ChunkIdsSchema });

/** A chunk seen unreferenced: since when, and in which pass it was last seen. */
interface Unreferenced {
  since: number;
  pass: number;
}

/** Create the GC pass; `start` serves its RPC method to the other peers' passes, `stop` withdraws it. */
export function createChunkGc(deps: ChunkGcDeps): ChunkGc {
  const { self, rpc, log } = deps;
  const clock = deps.clock ?? Date.now;
  const stats: GcStats = { chunksCollected: 0, pending: 0, lastPassMs: 0 };
  const unreferenced = new Map<string, Unreferenced>();
  const references = createReferenceIndex(deps.indexStore);
  let passes = 0;

  /** Chunk ids referenced by live manifests in the shards this peer stores, or by its uploads in progress. */
  async function localReferences(): Promise<{ has(id: string): boolean }> {
    const uploading = new Set(deps.uploading());
    const referenced = await references.lookup();
    return { has: (id) => uploading.has(id) || referenced(id) };
  }

  const start = () =>
    rpc.register(Referenced, async ({ params: { ids } }) => {
      const refs = await localReferences();
      return { result: ids.filter((id) => refs.has(id)) };
    });

  async function referencedOn(peer: string, ids: string[], signal: AbortSignal): Promise<string[]> {
    if (peer === self) {
      const refs = await localReferences();
      return ids.filter((id) => refs.has(id));
    }
    return inPieces(ids, async (piece) => (await rpc.call(peer, Referenced, { ids: piece }, { timeoutMs: 30_000, signal })).result);
  }

  /**
   * One batch: ask every member which of these chunks their manifests reference, then
   * delete those unreferenced for longer than the grace period. False if GC must wait.
   */
  async function step(batch: string[], pass: number, signal: AbortSignal): Promise<boolean> {
    const waiting = deps.waitingFor?.();
    if (waiting) {
      stats.skipped = waiting;
      return false;
    }
    const referenced = new Set<string>();
    try {
      const answers = await untilAborted(Promise.all([self, ...deps.peersToAsk()].map((p) => referencedOn(p, batch, signal))), signal);
      for (const ids of answers) for (const id of ids) referenced.add(id);
    } catch (err) {
      if (signal.aborted) throw err;
      stats.skipped = `a member did not answer: ${(err as Error).message}`;
      return false;
    }
    stats.skipped = undefined;
    // Uploads that started while the members answered count too.
    for (const id of deps.uploading()) referenced.add(id);
    const now = clock();
    for (const id of batch) {
      if (referenced.has(id)) {
        unreferenced.delete(id);
        continue;
      }
      const seen = unreferenced.get(id) ?? { since: now, pass };
      seen.pass = pass;
      unreferenced.set(id, seen);
      if (now - seen.since >= deps.graceMs) {
        signal.throwIfAborted();
        await deps.chunkStore.delete(id);
        unreferenced.delete(id);
        stats.chunksCollected++;
        log.debug(`collected unreferenced chunk ${id.slice(0, 12)}`);
      }
    }
    return true;
  }

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    const started = performance.now();
    const thisPass = ++passes;
    let any = false;
    for await (const batch of inBatches(deps.chunkStore.list(), MAX_IDS_PER_CALL)) {
      any = true;
      if (!(await step(batch, thisPass, signal))) return;
      yield;
    }
    // Chunks not seen in a whole pass are gone: forget them.
    for (const [id, seen] of unreferenced) if (seen.pass !== thisPass) unreferenced.delete(id);
    stats.pending = unreferenced.size;
    if (any) stats.lastPassMs = Math.round(performance.now() - started);
  }

  return { pass, stats, collecting: (id) => unreferenced.has(id), start, stop: () => rpc.unregister(Referenced) };
}
