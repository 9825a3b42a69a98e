// Retention of the change event log without a mesh: the options (no "off"), and passes
// over a real LevelDB index store with an injected clock: events past the age go bucket
// by bucket, a shard over its count keeps exactly its newest events (ties in one
// millisecond included), other rows stay, every step reads a bounded page, a stop ends a
// pass, and what was dropped is refused when anti-entropy brings it back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { configFromArgs, DEFAULT_EVENTS, resolveConfig } from "../../src/config.ts";
import { ConfigError } from "../../src/errors.ts";
import { createRetention, STEP_ROWS } from "../../src/changes/retention.ts";
import { deletesAreFinal, deliveryRow, eventRow, eventRowPrefix, isEventRow, objectRow } from "../../src/metadata/keys.ts";
import { openIndexStore, type IndexStore, type ScanOptions } from "../../src/store/index-store.ts";

const H = 3600_000;
const NOW = 1_800_000_000_000;

/** An event id stamped at `ms` (counter `n`, peer `p`). */
const idAt = (ms: number, n = 0, p = "peerA") => `${String(ms).padStart(13, "0")}-${n.toString(16).padStart(6, "0")}-${p}`;

describe("--event-retention and --event-retention-count", () => {
  test("ages and counts reach the config; defaults are 7 days, a million per shard, a pass a minute", () => {
    expect(resolveConfig({}).events).toMatchObject({ retentionMs: 7 * 24 * H, maxPerShard: 1_000_000, retentionIntervalMs: 60_000 });
    expect(DEFAULT_EVENTS.retentionIntervalMs).toBe(60_000);
    const cfg = resolveConfig(configFromArgs(["--event-retention", "2h", "--event-retention-count", "5000"], {}));
    expect(cfg.events.retentionMs).toBe(2 * H);
    expect(cfg.events.maxPerShard).toBe(5000);
    expect(resolveConfig(configFromArgs([], { MESH_EVENT_RETENTION: "1d" })).events.retentionMs).toBe(24 * H);
    expect(() => resolveConfig({ events: { retentionIntervalMs: 10 } })).toThrow(/between event retention passes must be at least 100 ms/);
  });

  test("off is a clear ConfigError, not a silent default; other bad ages name the option without offering off", () => {
    for (const off of ["off", " OFF "]) {
      expect(() => configFromArgs(["--event-retention", off], {})).toThrow(ConfigError);
      expect(() => configFromArgs(["--event-retention", off], {})).toThrow(/^--event-retention cannot be off: every write records its change event.*; give an age such as 2h or 7d$/);
    }
    expect(() => configFromArgs([], { MESH_EVENT_RETENTION: "off" })).toThrow(/cannot be off/);
    expect(() => configFromArgs(["--event-retention", "1w"], {})).toThrow('--event-retention must be an age of at least 1 s such as 90s, 30m, 2h or 1d; got "1w"');
    expect(() => configFromArgs(["--event-retention-count", "0"], {})).toThrow(/--event-retention-count must be a whole number of at least 1/);
  });

  test("`node --event-retention off` stops with exit 2 and the line naming the option", () => {
    const proc = Bun.spawnSync([process.execPath, path.join(import.meta.dir, "../../src/cli.ts"), "node", "--event-retention", "off"], { env: { ...process.env, MESH_DATA: "/nonexistent/never-created" } });
    expect(proc.exitCode).toBe(2);
    expect(proc.stderr.toString().split("\n")[0]).toMatch(/^meshstore: --event-retention cannot be off: /);
  });
});

describe("a retention pass over a real index store", () => {
  let root: string;
  let store: IndexStore;
  let n = 0;
  /** The store, with every scan's limit recorded. */
  let scans: ScanOptions[] = [];
  let counted: Pick<IndexStore, "shards" | "scan" | "drop" | "tallied">;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-retention-"));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  async function open(name: string) {
    store = await openIndexStore(path.join(root, name), { deletesAreFinal, tallied: isEventRow });
    scans = [];
    counted = { shards: () => store.shards(), tallied: (s) => store.tallied(s), drop: (s, r) => store.drop(s, r), scan: (s, o) => (scans.push(o), store.scan(s, o)) };
  }

  /** Write an event row (and, like a write, its object row) stamped `id` in `shard`. */
  async function put(shard: string, bucket: string, id: string) {
    const key = `k${n++}`;
    await store.apply(shard, objectRow(bucket, key), { ts: id, value: { size: 1 } }, [eventRow(bucket, id), { ts: id, value: { name: "ObjectCreated:Put", key } }]);
  }

  async function eventIds(shard: string, bucket: string): Promise<string[]> {
    const prefix = eventRowPrefix(bucket);
    return (await store.scan(shard, { prefix, limit: 1_000_000 })).map(([row]) => row.slice(prefix.length));
  }

  async function run(retention: ReturnType<typeof createRetention>, signal = new AbortController().signal) {
    let steps = 0;
    for await (const _ of retention.pass(signal)) steps++;
    return steps;
  }

  test("events older than the age go, bucket by bucket, in bounded pages; younger events and other rows stay", async () => {
    await open("age");
    const age = 2 * H;
    // Bucket "aaa" in o0: 2,500 old events (more than a page) then 30 young; "bbb": only young;
    // "ccc": 5 old, 5 young; bucket events in "b"; a delivery row beside them.
    const old = (i: number) => NOW - age - 1000 - i;
    const aaaOld = Array.from({ length: 2500 }, (_, i) => idAt(old(2500 - i), i));
    const young = (i: number) => idAt(NOW - H + i, i);
    await Promise.all(aaaOld.map((id) => put("o0", "aaa", id)));
    for (let i = 0; i < 30; i++) await put("o0", "aaa", young(i));
    for (let i = 0; i < 40; i++) await put("o0", "bbb", young(100 + i));
    for (let i = 0; i < 5; i++) await put("o1", "ccc", idAt(old(i), 7));
    for (let i = 0; i < 5; i++) await put("o1", "ccc", young(200 + i));
    await store.apply("b", "aaa", { ts: idAt(old(0), 9), value: { createdMs: 1 } }, [eventRow("aaa", idAt(old(0), 9)), { ts: idAt(old(0), 9), value: { name: "BucketCreated" } }]);
    await store.apply("o0", deliveryRow("aaa", "hook"), { ts: idAt(old(0), 10), value: { at: "x" } });
    expect(store.tallied("o0")).toBe(2570);
    expect(store.tallied("o1")).toBe(10);

    const retention = createRetention({ store: counted, retentionMs: age, maxPerShard: 1_000_000, clock: () => NOW });
    const steps = await run(retention);

    expect(await eventIds("o0", "aaa")).toEqual(Array.from({ length: 30 }, (_, i) => young(i)));
    expect((await eventIds("o0", "bbb")).length).toBe(40);
    expect(await eventIds("o1", "ccc")).toEqual(Array.from({ length: 5 }, (_, i) => young(200 + i)));
    expect(await eventIds("b", "aaa")).toEqual([]);
    expect(store.tallied("o0")).toBe(70);
    expect(store.tallied("o1")).toBe(5);
    expect(store.tallied("b")).toBe(0);
    // Object rows, the delivery row and the bucket's row are not events: all still there.
    expect((await store.scan("o0", { prefix: "aaa\0", limit: 10_000 })).length).toBe(2530);
    expect(await store.get("o0", deliveryRow("aaa", "hook"))).not.toBeNull();
    expect(await store.get("b", "aaa")).not.toBeNull();
    expect(retention.stats).toMatchObject({ droppedForAge: 2506, droppedForCount: 0, lastPassAtMs: NOW });
    // Bounded steps: no scan reads more than a page, and a young bucket costs a short probe, not a page.
    expect(Math.max(...scans.map((s) => s.limit))).toBeLessThanOrEqual(STEP_ROWS);
    expect(steps).toBeGreaterThan(2500 / STEP_ROWS);
    expect(steps).toBeLessThan(20);
    const read = scans.reduce((t, s) => t + s.limit, 0);
    expect(read).toBeLessThan(2506 + 3 * STEP_ROWS);

    // A second pass finds nothing more to drop.
    await run(retention);
    expect(retention.stats.droppedForAge).toBe(2506);
    await store.close();
  });

  test("a shard over its count keeps exactly its newest events across buckets, ties within one millisecond broken by id", async () => {
    await open("count");
    const max = 1000;
    const all: string[] = [];
    // 2,600 events in three buckets of o3, interleaved in time; 40 of them share one
    // millisecond (from three peers), right where the cut falls; all within the age.
    const base = NOW - 3 * H;
    const buckets = ["alpha", "beta", "gamma"];
    for (let i = 0; i < 2600; i++) {
      const tiedAt = i >= 1580 && i < 1620;
      const id = tiedAt ? idAt(base + 1580 * 7, i, ["p1", "p2", "p3"][i % 3]) : idAt(base + i * 7, i % 5);
      all.push(id);
      await put("o3", buckets[i % 3], id);
    }
    // A second shard under its count is left alone.
    for (let i = 0; i < 50; i++) await put("o4", "alpha", idAt(base + i));
    expect(store.tallied("o3")).toBe(2600);

    const retention = createRetention({ store: counted, retentionMs: 7 * 24 * H, maxPerShard: max, clock: () => NOW });
    await run(retention);

    const kept = (await Promise.all(buckets.map((b) => eventIds("o3", b)))).flat().sort();
    expect(kept).toEqual([...all].sort().slice(-max));
    expect(store.tallied("o3")).toBe(max);
    expect(store.tallied("o4")).toBe(50);
    expect(retention.stats).toMatchObject({ droppedForAge: 0, droppedForCount: 1600 });
    expect(Math.max(...scans.map((s) => s.limit))).toBeLessThanOrEqual(STEP_ROWS);

    // What was dropped is refused when anti-entropy carries it back; what is kept, and newer events, are taken.
    const sorted = [...all].sort();
    const entry = (id: string) => ({ ts: id, value: { name: "ObjectCreated:Put" } });
    expect(retention.expired("o3", eventRow("alpha", sorted[1599]), entry(sorted[1599]))).toBe(true);
    expect(retention.expired("o3", eventRow("alpha", sorted[0]), entry(sorted[0]))).toBe(true);
    expect(retention.expired("o3", eventRow("beta", sorted[1600]), entry(sorted[1600]))).toBe(false);
    expect(retention.expired("o4", eventRow("alpha", sorted[0]), entry(sorted[0]))).toBe(false);
    expect(retention.expired("o3", objectRow("alpha", "k"), entry(sorted[0]))).toBe(false);

    // Under the limit again: another pass drops nothing.
    await run(retention);
    expect(retention.stats.droppedForCount).toBe(1600);
    await store.close();
  });

  test("age and count together: the old go for their age, then the oldest of the rest for the count", async () => {
    await open("both");
    const age = H;
    for (let i = 0; i < 300; i++) await put("o0", "b1", idAt(NOW - 2 * H + i));
    const young = Array.from({ length: 300 }, (_, i) => idAt(NOW - 30 * 60_000 + i * 1000));
    for (const [i, id] of young.entries()) await put("o0", `b${(i % 3) + 1}`, id);
    const retention = createRetention({ store: counted, retentionMs: age, maxPerShard: 100, clock: () => NOW });
    await run(retention);
    const kept = (await Promise.all(["b1", "b2", "b3"].map((b) => eventIds("o0", b)))).flat().sort();
    expect(kept).toEqual(young.slice(-100));
    expect(retention.stats).toMatchObject({ droppedForAge: 300, droppedForCount: 200 });
    // The age rule holds for anything anti-entropy brings, whatever the shard.
    expect(retention.expired("o9", eventRow("b1", idAt(NOW - 2 * H)), { ts: idAt(NOW - 2 * H), value: {} })).toBe(true);
    expect(retention.expired("o9", eventRow("b1", idAt(NOW - 10)), { ts: idAt(NOW - 10), value: {} })).toBe(false);
    await store.close();
  });

  test("a stop between steps ends the pass at once", async () => {
    await open("stop");
    for (let i = 0; i < 2 * STEP_ROWS; i++) await put("o0", "b1", idAt(NOW - 3 * H + i));
    const stop = new AbortController();
    const retention = createRetention({ store: counted, retentionMs: H, maxPerShard: 1_000_000, clock: () => NOW });
    const pass = retention.pass(stop.signal);
    await pass.next();
    stop.abort();
    await expect(pass.next()).rejects.toThrow();
    expect(retention.stats.lastPassAtMs).toBe(0);
    expect(store.tallied("o0")).toBeGreaterThan(0);
    await store.close();
  });
});
