// The disk tier of the chunk cache: copies of chunks this peer fetched from other peers,
// kept as files under <data>/cache/chunks so a later read of the same object through this
// peer costs no fetch. It is a cache, not storage: repair, scrub and GC never look at it,
// and a lost or damaged file only costs a fetch.
//
// - Bounded in bytes; the least recently used file goes first (an in-memory LRU of ids and
//   sizes, src/util/lru.ts, whose eviction unlinks the file).
// - Written atomically (a temp file renamed into place) but not fsynced: a crash may leave
//   a short or empty file, and every read hashes the bytes against the id anyway, so such
//   a file is found on its first read, dropped and counted as corrupt.
// - It survives restarts: opening scans the folder and rebuilds the LRU oldest-modified
//   first (a hit touches the file's mtime, so recency survives too), evicting what is over
//   the bound. A tier opened with 0 bytes removes the folder instead.
// - Writes are best effort and bounded: at most MAX_PENDING_WRITES at once; beyond that a
//   chunk is simply not kept.
import { mkdir, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isChunkId, sha256Hex } from "../store/chunk-store.ts";
import { byteBoundedCache, type ByteBoundedCache } from "../util/lru.ts";
import type { Logger } from "../util/log.ts";

/** Figures of one cache tier, as `/cluster/status` shows them. */
export interface TierStats {
  bytes: number;
  maxBytes: number;
  entries: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses), 0 before any lookup. */
  hitRatio: number;
}

/** Disk tier counters beyond the common ones. */
export interface DiskTierStats extends TierStats {
  /** Cached files whose bytes did not hash to their id (dropped). */
  corrupt: number;
  /** Chunks not kept because MAX_PENDING_WRITES were under way or the write failed. */
  skipped: number;
}

/** The disk tier. */
export interface DiskTier {
  /** Verified bytes of a cached chunk, or null (absent, unreadable or corrupt: then dropped). */
  get(id: string): Promise<Uint8Array | null>;
  /** Keep (a copy of) a chunk whose bytes were verified by the caller; resolves when written or skipped (callers need not wait). */
  put(id: string, bytes: Uint8Array): Promise<void>;
  stats(): DiskTierStats;
  /** Wait for the writes under way. */
  close(): Promise<void>;
}

/** Writes under way at once; more chunks are not kept (the read path never waits for the disk tier). */
export const MAX_PENDING_WRITES = 8;

/** hits / (hits + misses), rounded, 0 before any lookup. */
export function ratio(hits: number, misses: number): number {
  return hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 10_000) / 10_000;
}

/** Open the disk tier in `dir` (e.g. <data>/cache), bounded by `maxBytes` (0: off, and the folder is removed). */
export async function openDiskTier(dir: string, maxBytes: number, log: Logger): Promise<DiskTier | null> {
  const chunkDir = join(dir, "chunks");
  const tmpDir = join(dir, "tmp");
  if (maxBytes <= 0) {
    // Off: files an earlier run kept would only take space.
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  await mkdir(chunkDir, { recursive: true, mode: 0o700 });
  // A temp file was never renamed into place: an interrupted write.
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });

  // Only validated ids reach here: a path is never built from anything else.
  const pathOf = (id: string) => join(chunkDir, id.slice(0, 2), id);
  const counts = { hits: 0, misses: 0, corrupt: 0, skipped: 0 };
  const lru: ByteBoundedCache<string, true> = byteBoundedCache<string, true>({
    maxBytes,
    onEvict: (id) => void unlink(pathOf(id)).catch(() => {}),
  });

  // Rebuild from what an earlier run kept, oldest first, so the bound evicts the oldest.
  const found: Array<{ id: string; size: number; mtimeMs: number }> = [];
  for (const prefix of await readdir(chunkDir)) {
    const sub = join(chunkDir, prefix);
    const names = await readdir(sub).catch(() => [] as string[]);
    for (const name of names) {
      const file = join(sub, name);
      if (!isChunkId(name) || name.slice(0, 2) !== prefix) {
        await rm(file, { recursive: true, force: true });
        continue;
      }
      const s = await stat(file).catch(() => null);
      if (s?.isFile()) found.push({ id: name, size: s.size, mtimeMs: s.mtimeMs });
    }
  }
  found.sort((a, b) => a.mtimeMs - b.mtimeMs);
  for (const f of found) if (!lru.set(f.id, true, f.size)) await unlink(pathOf(f.id)).catch(() => {});
  if (found.length) log.info(`chunk cache: ${lru.size} cached chunk(s), ${lru.bytes} bytes, kept from the last run`);

  // Writes under way by id: one write per chunk however many readers keep it at once.
  const pending = new Map<string, Promise<void>>();
  let warned = false;

  const write = async (id: string, bytes: Uint8Array) => {
    const tmp = join(tmpDir, `${id}.${crypto.randomUUID()}`);
    try {
      await mkdir(join(chunkDir, id.slice(0, 2)), { recursive: true, mode: 0o700 });
      await writeFile(tmp, bytes, { mode: 0o600 });
      await rename(tmp, pathOf(id));
      lru.set(id, true, bytes.byteLength);
    } catch (err) {
      counts.skipped++;
      await unlink(tmp).catch(() => {});
      if (!warned) log.warn(`chunk cache: could not keep a chunk on disk (${(err as Error).message}); reads still work`);
      warned = true;
    }
  };

  return {
    async get(id) {
      if (!isChunkId(id) || !lru.get(id)) {
        counts.misses++;
        return null;
      }
      let bytes: Uint8Array;
      try {
        bytes = await readFile(pathOf(id));
      } catch {
        // Gone behind our back (or unlinked by an eviction racing a rewrite): forget it.
        lru.delete(id);
        counts.misses++;
        return null;
      }
      if (sha256Hex(bytes) !== id) {
        counts.corrupt++;
        counts.misses++;
        log.warn(`chunk cache: cached chunk ${id.slice(0, 12)} is corrupt; dropped`);
        lru.delete(id);
        return null;
      }
      counts.hits++;
      // Recency for the next start's rebuild; best effort.
      const now = new Date();
      void utimes(pathOf(id), now, now).catch(() => {});
      return bytes;
    },

    put(id, bytes) {
      if (!isChunkId(id) || lru.has(id) || bytes.byteLength > maxBytes) return Promise.resolve();
      const under = pending.get(id);
      if (under) return under;
      if (pending.size >= MAX_PENDING_WRITES) {
        counts.skipped++;
        return Promise.resolve();
      }
      // A copy: the caller's buffer goes on to a client while this write waits for the disk.
      const p = write(id, bytes.slice()).finally(() => pending.delete(id));
      pending.set(id, p);
      return p;
    },

    stats: () => ({ bytes: lru.bytes, maxBytes, entries: lru.size, hits: counts.hits, misses: counts.misses, hitRatio: ratio(counts.hits, counts.misses), corrupt: counts.corrupt, skipped: counts.skipped }),

    async close() {
      await Promise.all([...pending.values()]);
    },
  };
}
