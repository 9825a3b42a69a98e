// The project's one bounded cache: a least-recently-used map with a maximum number of
// entries and an optional time to live, on lru-cache. Every cache keyed by something a
// client or peer chooses (access key ids, client addresses, bucket names) goes through
// this, so that a flood of distinct keys evicts old entries instead of growing memory.
import { LRUCache } from "lru-cache";

/** A bounded cache. */
export interface BoundedCache<K, V> {
  /** The value, or undefined if absent or expired (a hit counts as a use). */
  get(key: K): V | undefined;
  /** Store a value; `ttlMs` overrides the cache's time to live for this entry. */
  set(key: K, value: V, ttlMs?: number): void;
  delete(key: K): void;
  clear(): void;
  /** Entries held now (expired ones may count until they are looked at or evicted). */
  readonly size: number;
}

/** Options of a bounded cache. */
export interface BoundedCacheOptions {
  /** At most this many entries; the least recently used goes first. */
  max: number;
  /** Entries older than this are treated as absent (omit: no expiry). */
  ttlMs?: number;
}

/** A new bounded cache. `now` is the clock lru-cache measures ages with (tests inject one). */
export function boundedCache<K extends {}, V extends {}>(opts: BoundedCacheOptions, now: () => number = Date.now): BoundedCache<K, V> {
  if (!Number.isInteger(opts.max) || opts.max < 1) throw new Error(`a bounded cache needs max >= 1, got ${opts.max}`);
  const lru = new LRUCache<K, V>({
    max: opts.max,
    // Expired entries are dropped lazily (on lookup or eviction): no timers.
    ...(opts.ttlMs ? { ttl: opts.ttlMs } : {}),
    ttlAutopurge: false,
    ttlResolution: 0,
    perf: { now },
  });
  return {
    get: (key) => lru.get(key),
    set: (key, value, ttlMs) => void lru.set(key, value, ttlMs === undefined ? undefined : { ttl: ttlMs }),
    delete: (key) => void lru.delete(key),
    clear: () => lru.clear(),
    get size() {
      return lru.size;
    },
  };
}

/** A cache bounded by the bytes of its values rather than by their count. */
export interface ByteBoundedCache<K, V> {
  /** The value, or undefined (a hit counts as a use). */
  get(key: K): V | undefined;
  /** Whether the key is held (not a use). */
  has(key: K): boolean;
  /** Store a value of `bytes` bytes; false (and nothing stored) if it alone is over the bound. */
  set(key: K, value: V, bytes: number): boolean;
  delete(key: K): void;
  /** Bytes held now (at most `maxBytes`). */
  readonly bytes: number;
  /** Entries held now. */
  readonly size: number;
  /** Keys from the least to the most recently used. */
  keysOldestFirst(): K[];
}

/** Options of a byte-bounded cache. */
export interface ByteBoundedCacheOptions<K, V> {
  /** At most this many bytes of values; the least recently used go first. At least 1. */
  maxBytes: number;
  /** Called for each entry pushed out to make room or deleted (not for one replaced by a set of its own key). */
  onEvict?: (key: K, value: V) => void;
}

/** A new byte-bounded cache, on lru-cache's maxSize. */
export function byteBoundedCache<K extends {}, V extends {}>(opts: ByteBoundedCacheOptions<K, V>): ByteBoundedCache<K, V> {
  if (!Number.isInteger(opts.maxBytes) || opts.maxBytes < 1) throw new Error(`a byte-bounded cache needs maxBytes >= 1, got ${opts.maxBytes}`);
  const lru = new LRUCache<K, V>({
    maxSize: opts.maxBytes,
    // Sizes are given with each set; a zero-byte value still counts one, so the count stays bounded too.
    sizeCalculation: () => 1,
    ...(opts.onEvict && { dispose: (value: V, key: K, reason: LRUCache.DisposeReason) => reason !== "set" && opts.onEvict!(key, value) }),
  });
  return {
    get: (key) => lru.get(key),
    has: (key) => lru.has(key),
    set(key, value, bytes) {
      const size = Math.max(1, bytes);
      if (size > opts.maxBytes) return false;
      lru.set(key, value, { size });
      return true;
    },
    delete: (key) => void lru.delete(key),
    get bytes() {
      return lru.calculatedSize;
    },
    get size() {
      return lru.size;
    },
    keysOldestFirst: () => [...lru.rkeys()],
  };
}
