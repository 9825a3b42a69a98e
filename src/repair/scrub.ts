// Scrub: re-read and verify every local chunk at a bounded rate. A chunk whose bytes no
// longer match its id is quarantined by the store on read; the scrubber then fetches a
// good copy from another holder and stores it again. (Chunks missing here are pushed
// back by the owner that repairs them; see chunk-repair.ts.) One chunk is one step.
import type { ChunkClient } from "../objects/chunk-client.ts";
import { ChunkCorruptError, type ChunkStore } from "../store/chunk-store.ts";
import type { Logger } from "../util/log.ts";
import { untilAborted } from "./abortable.ts";
import type { RateLimiter } from "./rate-limiter.ts";

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
  store: Pick<ChunkStore, "list" | "size" | "get" | "put">;
  /** Its `noteCorrupt` lists what scrub finds among /cluster/status badReplicas, as a read's finding is. */
  chunks: Pick<ChunkClient, "get" | "noteCorrupt">;
  limiter: RateLimiter;
  log: Logger;
}

/** The scrubber as a job of bounded steps. */
export interface Scrub {
  /** One pass over the local chunks; each step checks one chunk. */
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: ScrubStats;
}

/** Create the scrubber. */
export function createScrub(deps: ScrubDeps): Scrub {
  const { store, chunks, log } = deps;
  const stats: ScrubStats = { lastStartedMs: 0, lastFinishedMs: 0, chunksChecked: 0, corruptFound: 0, restored: 0 };

  async function restore(id: string, signal: AbortSignal): Promise<void> {
    stats.chunksChecked++;
    stats.corruptFound++;
    chunks.noteCorrupt(id);
    log.warn(`scrub: chunk ${id.slice(0, 12)} is corrupt here; restoring it from another holder`);
    try {
      await store.put(id, await untilAborted(chunks.get(id, undefined, { signal }), signal));
      stats.restored++;
    } catch (e) {
      if (signal.aborted) throw e;
      log.warn(`scrub: could not restore ${id.slice(0, 12)} yet: ${(e as Error).message}`);
    }
  }

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    stats.lastStartedMs = Date.now();
    for await (const id of store.list()) {
      await deps.limiter.take((await store.size(id)) ?? 0, signal);
      try {
        await store.get(id);
        stats.chunksChecked++;
      } catch (err) {
        // Anything but corruption (the chunk went meanwhile, a read error): the next pass looks again.
        if (err instanceof ChunkCorruptError) await restore(id, signal);
      }
      yield;
    }
    stats.lastFinishedMs = Date.now();
  }

  return { pass, stats };
}
