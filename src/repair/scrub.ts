// Scrub: re-read and verify every local chunk at a bounded rate. A chunk whose bytes no
// longer match its id is quarantined by the store on read; the scrubber then fetches a
// good copy from another holder and stores it again. (Chunks missing here are pushed
// back by the owner that repairs them; see chunk-repair.ts.)
import type { ChunkClient } from "../objects/chunk-client.ts";
import { ChunkCorruptError, type ChunkStore } from "../store/chunk-store.ts";
import type { Logger } from "../util/log.ts";

/** Counters shown in /cluster/status. */
export interface ScrubStats {
  lastStartedMs: number;
  lastFinishedMs: number;
  chunksChecked: number;
  corruptFound: number;
  restored: number;
}

/** Dependencies of the scrubber. */
export interface ScrubDeps {
  store: ChunkStore;
  chunks: ChunkClient;
  limiter: { take(n: number): Promise<void> };
  log: Logger;
  signal: AbortSignal;
}

/** Create the scrub pass. */
export function createScrub(deps: ScrubDeps): { pass(): Promise<void>; stats: ScrubStats } {
  const { store, chunks, log } = deps;
  const stats: ScrubStats = { lastStartedMs: 0, lastFinishedMs: 0, chunksChecked: 0, corruptFound: 0, restored: 0 };

  async function pass(): Promise<void> {
    stats.lastStartedMs = Date.now();
    for await (const id of store.list()) {
      if (deps.signal.aborted) return;
      await deps.limiter.take((await store.size(id)) ?? 0);
      try {
        await store.get(id);
      } catch (err) {
        if (!(err instanceof ChunkCorruptError)) continue;
        stats.corruptFound++;
        log.warn(`scrub: chunk ${id.slice(0, 12)} is corrupt here; restoring it from another holder`);
        try {
          await store.put(id, await chunks.get(id));
          stats.restored++;
        } catch (e) {
          log.warn(`scrub: could not restore ${id.slice(0, 12)} yet: ${(e as Error).message}`);
        }
      }
      stats.chunksChecked++;
    }
    stats.lastFinishedMs = Date.now();
  }

  return { pass, stats };
}
