// The cache tier of one peer (issue 15, item 4): chunk bytes by chunk id, in memory and,
// optionally, on local disk, so that a peer serving the same object again does not fetch
// its chunks from other peers again.
//
// Chunks are immutable and named by the SHA-256 of their bytes, so a cached chunk can
// never be stale: an overwrite writes new chunks under new ids and a new manifest. Which
// chunks an object has is its manifest's business, cached apart under read leases
// (src/cache/manifest-cache.ts), so an acknowledged overwrite or delete through any peer is
// seen at once through every peer. A small object (one chunk, up to MEMORY_ENTRY_MAX_BYTES)
// is held whole in memory; objects up to the inline limit live in their manifest, so the
// manifest cache holds them whole.
//
// Tiers, in the order the chunk client (src/objects/chunk-client.ts) asks them:
//   memory  bounded in bytes (7/8 of --cache-memory MiB; the manifest cache has the rest), LRU; small objects only: a one-chunk
//           object's chunk up to MEMORY_ENTRY_MAX_BYTES, read from anywhere (this peer's store
//           too: a hot small object skips the disk and the hash). Large objects' chunks never
//           enter it, so one big read neither flushes it nor raises the peer's memory by the
//           bound. Entries were verified when read, and are copied in and out so that no
//           reader's buffer is ever shared with the cache.
//   disk    off unless --cache-disk MiB; chunks this peer fetched from another peer (src/cache/disk-tier.ts).
// A chunk deleted by GC may linger in a tier until evicted; it is reachable only through a
// manifest that names it, i.e. never once no object refers to it.
import type { Logger } from "../util/log.ts";
import { byteBoundedCache, type ByteBoundedCache } from "../util/lru.ts";
import { openDiskTier, ratio, type DiskTier, type DiskTierStats, type TierStats } from "./disk-tier.ts";

/** The largest small object (its one chunk) the memory tier holds. */
export const MEMORY_ENTRY_MAX_BYTES = 1024 * 1024;

/** `/cluster/status` `cache`. */
export interface CacheStats {
  memory: TierStats;
  /** Null when the disk tier is off. */
  disk: DiskTierStats | null;
  /** Manifests under lease (src/cache/manifest-cache.ts), added by the peer beside the chunk tiers. */
  manifests?: TierStats;
}

/** The chunk cache of one peer. */
export interface ChunkCache {
  /** Bytes held in memory for `id` (a copy), or undefined; counts a memory hit or miss. */
  recall(id: string): Uint8Array | undefined;
  /** Bytes kept on disk for `id`, verified, or null; with `memory`, a hit is also kept in memory. */
  load(id: string, memory: boolean): Promise<Uint8Array | null>;
  /**
   * Keep verified bytes just read: in memory if `memory` (a small object) and small enough,
   * and on disk when they came from another peer (`remote`). Never waits for the disk.
   */
  keep(id: string, bytes: Uint8Array, where: { remote: boolean; memory: boolean }): void;
  /** Whether the disk tier is on (the chunk client asks it before other peers only then). */
  readonly hasDisk: boolean;
  stats(): CacheStats;
  /** Wait for disk writes under way. */
  close(): Promise<void>;
}

/** How big each tier may grow. */
export interface ChunkCacheOptions {
  /** Memory tier bound (0: off). */
  memoryBytes: number;
  /** Disk tier bound (0: off, and what an earlier run kept is removed). */
  diskBytes: number;
  /** The disk tier's folder, e.g. <data>/cache. */
  dir: string;
  log: Logger;
}

/** Open the chunk cache of one peer. */
export async function openChunkCache(opts: ChunkCacheOptions): Promise<ChunkCache> {
  const disk: DiskTier | null = await openDiskTier(opts.dir, opts.diskBytes, opts.log);
  const memory: ByteBoundedCache<string, Uint8Array> | null = opts.memoryBytes > 0 ? byteBoundedCache<string, Uint8Array>({ maxBytes: opts.memoryBytes }) : null;
  const counts = { hits: 0, misses: 0 };
  const remember = (id: string, bytes: Uint8Array) => {
    if (memory && bytes.byteLength <= MEMORY_ENTRY_MAX_BYTES && !memory.has(id)) memory.set(id, bytes.slice(), bytes.byteLength);
  };

  return {
    hasDisk: disk !== null,
    recall(id) {
      if (!memory) return undefined;
      const bytes = memory.get(id);
      if (bytes) counts.hits++;
      else counts.misses++;
      return bytes?.slice();
    },
    async load(id, inMemory) {
      const bytes = disk ? await disk.get(id) : null;
      if (bytes && inMemory) remember(id, bytes);
      return bytes;
    },
    keep(id, bytes, where) {
      if (where.memory) remember(id, bytes);
      if (where.remote && disk) void disk.put(id, bytes);
    },
    stats: () => ({
      memory: { bytes: memory?.bytes ?? 0, maxBytes: opts.memoryBytes, entries: memory?.size ?? 0, hits: counts.hits, misses: counts.misses, hitRatio: ratio(counts.hits, counts.misses) },
      disk: disk?.stats() ?? null,
    }),
    close: async () => await disk?.close(),
  };
}
