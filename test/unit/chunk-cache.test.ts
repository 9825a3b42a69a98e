// The cache tier's parts without a mesh (src/cache/, src/util/lru.ts byteBoundedCache): the
// byte bound and LRU order, the memory tier's entry cap and copies, the disk tier's atomic
// files, a corrupt file found by its hash and dropped, and a restart that keeps (or, at 0,
// removes) what was cached; the two flags.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { MEMORY_ENTRY_MAX_BYTES, openChunkCache } from "../../src/cache/chunk-cache.ts";
import { MAX_PENDING_WRITES, openDiskTier } from "../../src/cache/disk-tier.ts";
import { configFromArgs, resolveConfig } from "../../src/config.ts";
import { ConfigError } from "../../src/errors.ts";
import { sha256Hex } from "../../src/store/chunk-store.ts";
import { createLogger } from "../../src/util/log.ts";
import { byteBoundedCache } from "../../src/util/lru.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-cache-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const log = createLogger("t", () => {}, "error");
let n = 0;
const freshDir = () => path.join(root, `c${n++}`);
/** A chunk of `size` random bytes and its id. */
const chunk = (size: number) => {
  const bytes = crypto.getRandomValues(new Uint8Array(size));
  return { id: sha256Hex(bytes), bytes };
};
const filesUnder = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []);

test("a byte-bounded cache keeps at most maxBytes and evicts the least recently used first", () => {
  const evicted: string[] = [];
  const c = byteBoundedCache<string, string>({ maxBytes: 100, onEvict: (k) => void evicted.push(k) });
  expect(c.set("a", "A", 40)).toBe(true);
  expect(c.set("b", "B", 40)).toBe(true);
  c.get("a"); // a is now the most recent: b goes first
  expect(c.set("c", "C", 40)).toBe(true);
  expect(evicted).toEqual(["b"]);
  expect(c.bytes).toBe(80);
  expect(c.keysOldestFirst()).toEqual(["a", "c"]);
  // One value over the whole bound is refused, and nothing is pushed out for it.
  expect(c.set("huge", "H", 101)).toBe(false);
  expect(c.keysOldestFirst()).toEqual(["a", "c"]);
  // Replacing a key's own value is not an eviction.
  c.set("a", "A2", 10);
  expect(evicted).toEqual(["b"]);
  expect(c.bytes).toBe(50);
  expect(() => byteBoundedCache({ maxBytes: 0 })).toThrow();
});

test("the memory tier holds small objects' chunks within its byte bound, hands out copies, and counts hits and misses", async () => {
  const cache = await openChunkCache({ memoryBytes: 3 * 1024, diskBytes: 0, dir: freshDir(), log });
  const [a, b, c, d] = [chunk(1024), chunk(1024), chunk(1024), chunk(1024)];
  expect(cache.recall(a.id)).toBeUndefined();
  for (const x of [a, b, c]) cache.keep(x.id, x.bytes, { remote: true, memory: true });
  const got = cache.recall(a.id)!;
  expect(sha256Hex(got)).toBe(a.id);
  // A copy: a reader scribbling on its buffer does not touch the cache, nor does the original's owner.
  got.fill(0);
  a.bytes.fill(1);
  expect(sha256Hex(cache.recall(a.id)!)).toBe(a.id);
  cache.keep(d.id, d.bytes, { remote: false, memory: true }); // over 3 KiB: b, the least recently used, goes
  expect(cache.recall(b.id)).toBeUndefined();
  expect(cache.recall(c.id)).toBeDefined();
  const s = cache.stats();
  expect(s.memory).toEqual({ bytes: 3 * 1024, maxBytes: 3 * 1024, entries: 3, hits: 3, misses: 2, hitRatio: 0.6 });
  expect(s.disk).toBeNull();
  await cache.close();

  // Chunks over MEMORY_ENTRY_MAX_BYTES (large objects' chunks) never enter it.
  const big = await openChunkCache({ memoryBytes: 8 * MEMORY_ENTRY_MAX_BYTES, diskBytes: 0, dir: freshDir(), log });
  const large = chunk(MEMORY_ENTRY_MAX_BYTES + 1);
  big.keep(large.id, large.bytes, { remote: true, memory: true });
  expect(big.recall(large.id)).toBeUndefined();
  // 0 turns the tier off.
  const off = await openChunkCache({ memoryBytes: 0, diskBytes: 0, dir: freshDir(), log });
  off.keep(a.id, got, { remote: true, memory: true });
  expect(off.recall(a.id)).toBeUndefined();
  expect(off.stats().memory.hits + off.stats().memory.misses).toBe(0);
});

test("the disk tier writes whole files atomically, bounds its bytes by LRU, and drops a corrupt file", async () => {
  const dir = freshDir();
  const disk = (await openDiskTier(dir, 3 * 4096, log))!;
  const xs = [chunk(4096), chunk(4096), chunk(4096), chunk(4096)];
  for (const x of xs.slice(0, 3)) await disk.put(x.id, x.bytes);
  expect(filesUnder(path.join(dir, "tmp"))).toEqual([]);
  expect(filesUnder(path.join(dir, "chunks")).sort()).toEqual(xs.slice(0, 3).map((x) => x.id).sort());
  expect(sha256Hex((await disk.get(xs[0].id))!)).toBe(xs[0].id); // xs[0] used: xs[1] is now the oldest
  await disk.put(xs[3].id, xs[3].bytes);
  await Bun.sleep(20); // the eviction's unlink is not awaited
  expect(filesUnder(path.join(dir, "chunks")).sort()).toEqual([xs[0].id, xs[2].id, xs[3].id].sort());
  expect(await disk.get(xs[1].id)).toBeNull();
  expect(disk.stats()).toMatchObject({ bytes: 3 * 4096, maxBytes: 3 * 4096, entries: 3, hits: 1, misses: 1 });

  // A file damaged on disk is found by its hash, dropped and counted; the next read is a miss.
  writeFileSync(path.join(dir, "chunks", xs[2].id.slice(0, 2), xs[2].id), "not the bytes");
  expect(await disk.get(xs[2].id)).toBeNull();
  await Bun.sleep(20);
  expect(filesUnder(path.join(dir, "chunks"))).not.toContain(xs[2].id);
  expect(disk.stats()).toMatchObject({ corrupt: 1, entries: 2 });
  expect(await disk.get(xs[2].id)).toBeNull();
  // Not a chunk id: a miss, never a path.
  expect(await disk.get("../../etc/passwd")).toBeNull();
  await disk.close();
});

test("the disk tier bounds its writes in flight: beyond MAX_PENDING_WRITES a chunk is not kept", async () => {
  const disk = (await openDiskTier(freshDir(), 64 * 1024 * 1024, log))!;
  const xs = Array.from({ length: MAX_PENDING_WRITES + 4 }, () => chunk(256 * 1024));
  await Promise.all(xs.map((x) => disk.put(x.id, x.bytes)));
  expect(disk.stats().skipped).toBe(4);
  expect(disk.stats().entries).toBe(MAX_PENDING_WRITES);
  await disk.close();
});

test("what the disk tier kept survives a restart, oldest first under a smaller bound; at 0 it is removed", async () => {
  const dir = freshDir();
  const first = (await openDiskTier(dir, 1024 * 1024, log))!;
  const xs = [chunk(4096), chunk(4096), chunk(4096)];
  for (const x of xs) {
    await first.put(x.id, x.bytes);
    await Bun.sleep(15); // distinct mtimes
  }
  await first.get(xs[0].id); // touched: now the newest
  await Bun.sleep(15);
  await first.close();
  // A write cut off by a crash leaves a temp file: gone at the next start.
  writeFileSync(path.join(dir, "tmp", "leftover"), "partial");

  const second = (await openDiskTier(dir, 2 * 4096, log))!;
  await Bun.sleep(20);
  expect(filesUnder(path.join(dir, "tmp"))).toEqual([]);
  // xs[1] was the least recently used: evicted to fit the smaller bound.
  expect(second.stats()).toMatchObject({ entries: 2, bytes: 2 * 4096 });
  expect(await second.get(xs[1].id)).toBeNull();
  expect(sha256Hex((await second.get(xs[0].id))!)).toBe(xs[0].id);
  expect(sha256Hex((await second.get(xs[2].id))!)).toBe(xs[2].id);
  await second.close();

  expect(await openDiskTier(dir, 0, log)).toBeNull();
  expect(existsSync(dir)).toBe(false);
});

test("the chunk cache keeps on disk only what came from other peers, and in memory only small objects", async () => {
  const dir = freshDir();
  const cache = await openChunkCache({ memoryBytes: 1024 * 1024, diskBytes: 1024 * 1024, dir, log });
  const local = chunk(2048);
  const remote = chunk(2048);
  cache.keep(local.id, local.bytes, { remote: false, memory: true });
  cache.keep(remote.id, remote.bytes, { remote: true, memory: false });
  await cache.close();
  expect(filesUnder(path.join(dir, "chunks"))).toEqual([remote.id]);

  const again = await openChunkCache({ memoryBytes: 1024 * 1024, diskBytes: 1024 * 1024, dir, log });
  expect(again.recall(remote.id)).toBeUndefined();
  // A large object's chunk comes from disk and stays out of memory; a small object's is kept there too.
  expect(sha256Hex((await again.load(remote.id, false))!)).toBe(remote.id);
  expect(again.recall(remote.id)).toBeUndefined();
  expect(sha256Hex((await again.load(remote.id, true))!)).toBe(remote.id);
  expect(sha256Hex(again.recall(remote.id)!)).toBe(remote.id);
  expect(again.stats().disk).toMatchObject({ hits: 2, misses: 0, hitRatio: 1 });
  await again.close();
});

test("--cache-memory and --cache-disk take whole MiB (0: off); anything else is a plain config error", () => {
  expect(resolveConfig({}).cacheMemoryBytes).toBe(64 * 1024 * 1024);
  expect(resolveConfig({}).cacheDiskBytes).toBe(0);
  const input = configFromArgs(["--cache-memory", "0", "--cache-disk", "512"], {});
  expect([input.cacheMemoryBytes, input.cacheDiskBytes]).toEqual([0, 512 * 1024 * 1024]);
  expect(configFromArgs([], { MESH_CACHE_DISK: "8" }).cacheDiskBytes).toBe(8 * 1024 * 1024);
  for (const bad of ["-1", "1.5", "lots", " "]) expect(() => configFromArgs(["--cache-disk", bad], {})).toThrow(ConfigError);
  expect(() => resolveConfig({ cacheMemoryBytes: -1 })).toThrow(ConfigError);
});
