// Read leases on manifests (src/cache/manifest-leases.ts, src/cache/manifest-cache.ts):
// a replica's write waits until every holder has forgotten the row or its lease has run
// out; the holder keeps only what it read under a quorum's leases, never what a revoke
// raced with, and nothing past its lease; a restarted replica waits out the leases an
// earlier run may have granted.
import { expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLeaseTable, HORIZON_FILE, RevokeMethod, type LeaseTableDeps } from "../../src/cache/manifest-leases.ts";
import { createManifestCache, type LeasedRead } from "../../src/cache/manifest-cache.ts";
import type { Rpc } from "../../src/net/rpc.ts";
import type { IndexEntry } from "../../src/metadata/types.ts";
import { createLogger } from "../../src/util/log.ts";

const log = createLogger("test", () => {}, "error");
const SHARD = "o17";
/** A write's stamp: later than every entry the holder tests cache. */
const TS = "0000000000009-000000-w";

async function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "leases-"));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An RPC stand-in for the holder side: `answer` decides each revoke call's fate. */
function fakeRpc(answer: (peer: string) => Promise<void>, kept = false): { rpc: Pick<Rpc, "call">; calls: string[] } {
  const calls: string[] = [];
  const rpc = {
    // Like the real one, a call ends when its signal aborts.
    call: async (peer: string, _m: unknown, _p: unknown, opts: { signal?: AbortSignal }) => {
      calls.push(peer);
      const aborted = new Promise<never>((_, reject) => opts.signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
      await Promise.race([answer(peer), aborted]);
      return { result: kept };
    },
  } as unknown as Pick<Rpc, "call">;
  return { rpc, calls };
}

function table(dir: string, over: Partial<LeaseTableDeps> & Pick<LeaseTableDeps, "rpc">) {
  const dropped: string[] = [];
  const t = createLeaseTable({ self: "me", dir, log, dropLocal: (shard, row) => (dropped.push(`${shard}/${row}`), false), leaseMs: 300, ...over });
  return { t, dropped };
}

test("a revoke tells every holder; one it reaches lets the write through at once, its own cache is dropped in place", () =>
  withDir(async (dir) => {
    const { rpc, calls } = fakeRpc(async () => {});
    const { t, dropped } = table(dir, { rpc });
    await t.start();
    expect(await t.grant("me", SHARD, "a")).toBe(true);
    expect(await t.grant("p2", SHARD, "a")).toBe(true);
    const t0 = performance.now();
    await t.revoke(SHARD, "a", TS);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(calls).toEqual(["p2"]);
    expect(dropped).toEqual([`${SHARD}/a`]);
    // Revoked leases are gone: the next write of the row tells no one.
    await t.revoke(SHARD, "a", TS);
    expect(calls).toEqual(["p2"]);
    expect(t.size).toBe(0);
  }));

test("a holder that cannot be told holds the write until its lease has run out", () =>
  withDir(async (dir) => {
    const { rpc } = fakeRpc(async () => {
      throw new Error("unreachable");
    });
    const { t } = table(dir, { rpc });
    await t.start();
    const granted = performance.now();
    await t.grant("p2", SHARD, "a");
    await t.revoke(SHARD, "a", TS);
    expect(performance.now() - granted).toBeGreaterThanOrEqual(295);
  }));

test("a second write of a row waits for the revoke the first one started", () =>
  withDir(async (dir) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { rpc } = fakeRpc(() => gate);
    const { t } = table(dir, { rpc, leaseMs: 5000 });
    await t.start();
    await t.grant("p2", SHARD, "a");
    let first = false;
    let second = false;
    const w1 = Promise.resolve(t.revoke(SHARD, "a", TS)).then(() => (first = true));
    const w2 = Promise.resolve(t.revoke(SHARD, "a", TS)).then(() => (second = true));
    await Bun.sleep(20);
    expect([first, second]).toEqual([false, false]);
    release();
    await Promise.all([w1, w2]);
    expect([first, second]).toEqual([true, true]);
  }));

test("a holder that kept a copy as new as the write keeps its lease: the next write tells it again", () =>
  withDir(async (dir) => {
    const { rpc, calls } = fakeRpc(async () => {}, true);
    const { t } = table(dir, { rpc, leaseMs: 5000 });
    await t.start();
    await t.grant("p2", SHARD, "a");
    await t.revoke(SHARD, "a", TS);
    await t.revoke(SHARD, "a", TS);
    expect(calls).toEqual(["p2", "p2"]);
    expect(t.size).toBe(1);
  }));

test("only object rows are leased, and at most maxRows of them (the rest are refused, not evicted)", () =>
  withDir(async (dir) => {
    const { t } = table(dir, { rpc: fakeRpc(async () => {}).rpc, maxRows: 3 });
    await t.start();
    expect(await t.grant("p2", "b", "bucket")).toBe(false);
    expect(await t.grant("p2", "k", "key")).toBe(false);
    for (const row of ["a", "b", "c"]) expect(await t.grant("p2", SHARD, row)).toBe(true);
    expect(await t.grant("p2", SHARD, "d")).toBe(false);
    // Another holder of a row already leased is not a new row.
    expect(await t.grant("p3", SHARD, "a")).toBe(true);
    expect(t.size).toBe(3);
  }));

test("grants are covered by a horizon on disk; a restarted replica holds back writes until the earlier leases have run out", () =>
  withDir(async (dir) => {
    let wall = 1_000_000;
    const { t } = table(dir, { rpc: fakeRpc(async () => {}).rpc, wall: () => wall });
    await t.start();
    await t.grant("p2", SHARD, "a");
    const horizon = Number(await readFile(path.join(dir, HORIZON_FILE), "utf8"));
    expect(horizon).toBeGreaterThanOrEqual(wall + 300);
    // A later grant inside the horizon does not rewrite the file.
    await writeFile(path.join(dir, HORIZON_FILE), String(horizon));
    wall += 1000;
    await t.grant("p2", SHARD, "b");
    expect(Number(await readFile(path.join(dir, HORIZON_FILE), "utf8"))).toBe(horizon);

    // "Crash" and restart at once: the grace is one lease (the horizon is further).
    let realWall = Date.now();
    await writeFile(path.join(dir, HORIZON_FILE), String(realWall + 60_000));
    const again = table(dir, { rpc: fakeRpc(async () => {}).rpc });
    await again.t.start();
    const t0 = performance.now();
    await again.t.revoke(SHARD, "x", TS);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    // Restarted after the horizon passed: no wait.
    realWall = Date.now();
    await writeFile(path.join(dir, HORIZON_FILE), String(realWall - 1));
    const late = table(dir, { rpc: fakeRpc(async () => {}).rpc });
    await late.t.start();
    const t1 = performance.now();
    await late.t.revoke(SHARD, "x", TS);
    expect(performance.now() - t1).toBeLessThan(50);
    // And a fresh replica (no file) never waits.
    await rm(path.join(dir, HORIZON_FILE));
    const fresh = table(dir, { rpc: fakeRpc(async () => {}).rpc });
    await fresh.t.start();
    const t2 = performance.now();
    await fresh.t.revoke(SHARD, "x", TS);
    expect(performance.now() - t2).toBeLessThan(50);
  }));

test("a stopping replica does not acknowledge a write it is still waiting on", () =>
  withDir(async (dir) => {
    const { rpc } = fakeRpc(() => new Promise(() => {}));
    const { t } = table(dir, { rpc, leaseMs: 10_000 });
    await t.start();
    await t.grant("p2", SHARD, "a");
    const w = t.revoke(SHARD, "a", TS);
    t.stop();
    await expect(w).rejects.toThrow(/not acknowledged/);
  }));

// ---- the holder ----

const entry = (v: string): IndexEntry => ({ ts: "0000000000001-000000-x", value: { etag: v } });

function holder(reads: Array<(row: string) => Promise<LeasedRead>>, opts: { voters?: () => string[]; maxBytes?: number; now?: () => number } = {}) {
  let served = 0;
  const handlers = new Map<string, (req: { params: { shard: string; row: string; ts: string } }) => Promise<unknown>>();
  const rpc = {
    register: (m: { name: string }, h: never) => void handlers.set(m.name, h),
    unregister: (m: { name: string }) => void handlers.delete(m.name),
  } as unknown as Pick<Rpc, "register" | "unregister">;
  const cache = createManifestCache({
    readLeased: (_s, row) => reads[Math.min(served++, reads.length - 1)](row),
    voters: opts.voters ?? (() => ["a", "b", "c"]),
    rpc,
    maxBytes: opts.maxBytes ?? 1 << 20,
    leaseMs: 1000,
    monotonic: opts.now,
  });
  cache.start();
  const revoke = (row: string, ts = TS) => handlers.get(RevokeMethod.name)!({ params: { shard: SHARD, row, ts } }) as Promise<{ result: boolean }>;
  return { cache, revoke, reads: () => served };
}

const leased = (v: string | null): (() => Promise<LeasedRead>) => async () => ({ entry: v === null ? null : entry(v), leased: true, voters: ["a", "b", "c"] });

test("a leased read is served from memory (a copy each time) until the lease ends, less a margin", async () => {
  let now = 0;
  const h = holder([leased("v1"), leased("v2")], { now: () => now });
  const first = await h.cache.read(SHARD, "k");
  (first!.value as { etag: string }).etag = "scribbled";
  now = 700;
  expect(await h.cache.read(SHARD, "k")).toEqual(entry("v1"));
  expect(h.reads()).toBe(1);
  now = 760; // past 1000 - 250
  expect(await h.cache.read(SHARD, "k")).toEqual(entry("v2"));
  expect(h.reads()).toBe(2);
  expect(h.cache.stats()).toMatchObject({ hits: 1, misses: 2, entries: 1 });
});

test("absences are leased too; a read without a quorum's leases is not kept", async () => {
  const h = holder([leased(null), async () => ({ entry: entry("v1"), leased: false, voters: ["a", "b", "c"] }), leased("v2")]);
  expect(await h.cache.read(SHARD, "gone")).toBeNull();
  expect(await h.cache.read(SHARD, "gone")).toBeNull();
  expect(h.reads()).toBe(1);
  expect((await h.cache.read(SHARD, "k"))?.value).toEqual({ etag: "v1" });
  expect((await h.cache.read(SHARD, "k"))?.value).toEqual({ etag: "v2" });
  expect(h.reads()).toBe(3);
});

test("a revoke drops an older entry, keeps one as new, and one that arrives during a read stops an older answer from being kept", async () => {
  let h!: ReturnType<typeof holder>;
  const racing = async (row: string): Promise<LeasedRead> => {
    await h.revoke(row); // the write's revoke overtakes the replica's (older) answer
    return { entry: entry("old"), leased: true, voters: ["a", "b", "c"] };
  };
  h = holder([leased("v1"), racing, leased("new")]);
  await h.cache.read(SHARD, "k");
  // A revoke for a write no newer than what is held keeps it; a newer one drops it.
  expect((await h.revoke("k", "0000000000001-000000-x")).result).toBe(true);
  expect((await h.cache.read(SHARD, "k"))?.value).toEqual({ etag: "v1" });
  expect((await h.revoke("k")).result).toBe(false);
  expect((await h.cache.read(SHARD, "k"))?.value).toEqual({ etag: "old" });
  expect((await h.cache.read(SHARD, "k"))?.value).toEqual({ etag: "new" });
  expect(h.reads()).toBe(3);
});

test("a revoke that finds a read under way keeps the lease standing (that read may keep an answer as new as the write)", async () => {
  let h!: ReturnType<typeof holder>;
  let answer!: { result: boolean };
  h = holder([
    async () => {
      answer = await h.revoke("k", "0000000000001-000000-x");
      return { entry: entry("same"), leased: true, voters: ["a", "b", "c"] };
    },
  ]);
  await h.cache.read(SHARD, "k");
  expect(answer.result).toBe(true);
  expect(h.cache.stats().entries).toBe(1);
  // Nothing held and nothing under way: the lease may go.
  expect((await h.revoke("other")).result).toBe(false);
});

test("an entry is dropped once the row's voters change; off (0 bytes), every read goes to the replicas", async () => {
  let voters = ["a", "b", "c"];
  const h = holder([leased("v1"), leased("v2")], { voters: () => voters });
  await h.cache.read(SHARD, "k");
  voters = ["a", "b", "d"];
  expect((await h.cache.read(SHARD, "k"))?.value).toEqual({ etag: "v2" });
  const off = holder([leased("v1"), leased("v2")], { maxBytes: 0 });
  await off.cache.read(SHARD, "k");
  await off.cache.read(SHARD, "k");
  expect(off.reads()).toBe(2);
});
