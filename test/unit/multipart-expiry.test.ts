// Multipart expiry without a mesh: the age option, which replica acts for a shard, and a
// pass over a real LevelDB index store with an injected clock (which uploads it expires,
// in bounded pages, and what it counts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { configFromArgs, DEFAULT_REPAIR, parseAge, resolveConfig } from "../../src/config.ts";
import { ConfigError } from "../../src/errors.ts";
import { completedUploadRow, deletesAreFinal, objectShard, parseCompletedRow, parseUploadRow, uploadRow } from "../../src/metadata/keys.ts";
import type { CompletedUpload, UploadRecord } from "../../src/objects/multipart.ts";
import { actingReplica, BATCH_ROWS, createMultipartExpiry, describeAge, expiryIntervalMs } from "../../src/repair/multipart-expiry.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createLogger } from "../../src/util/log.ts";

const H = 3600_000;

describe("--multipart-expiry AGE", () => {
  test("units s, m, h, d; a bare number is seconds; off is 0", () => {
    expect(parseAge("90s", "x")).toBe(90_000);
    expect(parseAge("30m", "x")).toBe(30 * 60_000);
    expect(parseAge("2h", "x")).toBe(2 * H);
    expect(parseAge("1d", "x")).toBe(24 * H);
    expect(parseAge("1.5h", "x")).toBe(1.5 * H);
    expect(parseAge("45", "x")).toBe(45_000);
    expect(parseAge(" OFF ", "x")).toBe(0);
  });

  test("anything else is one clear ConfigError naming the option", () => {
    for (const bad of ["", "1w", "-1s", "0.5s", "0", "2 hours", "h", "1e3", "off2"]) {
      expect(() => parseAge(bad, "--multipart-expiry")).toThrow(ConfigError);
      expect(() => parseAge(bad, "--multipart-expiry")).toThrow(/^--multipart-expiry must be an age of at least 1 s such as 90s, 30m, 2h or 1d, or off; got/);
    }
  });

  test("default 24 h; flag and MESH_MULTIPART_EXPIRY reach the config, the flag winning", () => {
    expect(DEFAULT_REPAIR.multipartExpiryMs).toBe(24 * H);
    expect(resolveConfig({}).repair.multipartExpiryMs).toBe(24 * H);
    expect(resolveConfig(configFromArgs([], { MESH_MULTIPART_EXPIRY: "2h" })).repair.multipartExpiryMs).toBe(2 * H);
    expect(resolveConfig(configFromArgs(["--multipart-expiry", "off"], { MESH_MULTIPART_EXPIRY: "2h" })).repair.multipartExpiryMs).toBe(0);
    expect(() => resolveConfig({ repair: { multipartExpiryMs: 500 } })).toThrow(/multipart-expiry must be at least 1 s/);
  });

  test("a bad value stops `node` with exit 2 and a line naming the option", () => {
    const proc = Bun.spawnSync([process.execPath, path.join(import.meta.dir, "../../src/cli.ts"), "node", "--multipart-expiry", "1w"], { env: { ...process.env, MESH_DATA: "/nonexistent/never-created" } });
    expect(proc.exitCode).toBe(2);
    const first = proc.stderr.toString().split("\n")[0];
    expect(first).toBe('meshstore: --multipart-expiry must be an age of at least 1 s such as 90s, 30m, 2h or 1d, or off; got "1w"');
  });

  test("passes run every quarter age, from 0.5 s to 10 min; ages read as people say them", () => {
    expect(expiryIntervalMs(2000)).toBe(500);
    expect(expiryIntervalMs(60_000)).toBe(15_000);
    expect(expiryIntervalMs(24 * H)).toBe(600_000);
    expect(describeAge(26 * H)).toBe("26.0 h");
    expect(describeAge(210_000)).toBe("3.5 min");
    expect(describeAge(2100)).toBe("2.1 s");
  });
});

describe("who acts for a shard", () => {
  test("the first reachable replica on the live ring, or nobody", () => {
    const up = new Set(["b", "c"]);
    expect(actingReplica(["a", "b", "c"], (p) => up.has(p))).toBe("b");
    expect(actingReplica(["c", "b"], (p) => up.has(p))).toBe("c");
    expect(actingReplica(["a"], (p) => up.has(p))).toBeUndefined();
    expect(actingReplica([], () => true)).toBeUndefined();
  });

  test("upload rows parse back into bucket, key (NULs and all) and upload id", () => {
    const id = "0123456789abcdef0123456789abcdef";
    expect(parseUploadRow(uploadRow("bkt", "a/\u0000b\u0000c", id))).toEqual({ bucket: "bkt", key: "a/\u0000b\u0000c", uploadId: id });
    expect(parseUploadRow("bkt\u0000key")).toBeUndefined();
  });

  test("completed-upload records parse back too, and are not upload rows", () => {
    const id = "0123456789abcdef0123456789abcdef";
    expect(parseCompletedRow(completedUploadRow("bkt", "a/\u0000b", id))).toEqual({ bucket: "bkt", key: "a/\u0000b", uploadId: id });
    expect(parseUploadRow(completedUploadRow("bkt", "k", id))).toBeUndefined();
    expect(parseCompletedRow(uploadRow("bkt", "k", id))).toBeUndefined();
  });
});

describe("an expiry pass over a real index store", () => {
  const SHARDS = 4;
  const BUCKET = "bkt";
  let root: string;
  let store: IndexStore;
  let ts = 0;
  const stamp = () => `${String(++ts).padStart(13, "0")}-0000-n`;
  const upload = (key: string, initiated: number): UploadRecord => ({ uploadId: key.padEnd(32, "0").slice(0, 32), key, initiated, contentType: "application/octet-stream", meta: {} });

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-expiry-"));
    store = await openIndexStore(path.join(root, "index"), { deletesAreFinal });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("expires only uploads older than the age, only in shards this peer acts for, a page of rows per step", async () => {
    const now = 1_000_000_000_000;
    const keys: Array<{ key: string; initiated: number }> = [];
    // Well over a page of old uploads, some young ones, and a tombstoned old one.
    for (let i = 0; i < 3 * BATCH_ROWS + 7; i++) keys.push({ key: `old-${i}`, initiated: now - 3 * H - i });
    for (let i = 0; i < 20; i++) keys.push({ key: `young-${i}`, initiated: now - H + i });
    for (const k of keys) await store.apply(objectShard(BUCKET, k.key, SHARDS), uploadRow(BUCKET, k.key, upload(k.key, 0).uploadId), { ts: stamp(), value: upload(k.key, k.initiated) });
    const gone = upload("gone", 0);
    await store.apply(objectShard(BUCKET, "gone", SHARDS), uploadRow(BUCKET, "gone", gone.uploadId), { ts: stamp(), value: null });

    // This peer ("me") is the first reachable replica of o0 and o2 only: "x" is unreachable.
    const replicas: Record<string, string[]> = { o0: ["me", "p"], o1: ["p", "me"], o2: ["x", "me"], o3: ["p", "x", "me"] };
    const expired: string[] = [];
    const lines: string[] = [];
    const expiry = createMultipartExpiry({
      self: "me",
      indexStore: store,
      placement: { shardReplicas: (s) => replicas[s], reachable: (p) => p !== "x" },
      expire: async (bucket, key, uploadId) => {
        expect(bucket).toBe(BUCKET);
        expect(uploadId).toBe(upload(key, 0).uploadId);
        expired.push(key);
        // Every third one was meanwhile completed or aborted by someone else: not counted.
        return expired.length % 3 === 0 ? "gone" : "aborted";
      },
      ageMs: 2 * H,
      log: createLogger("t", (_lvl, line) => lines.push(line), "info"),
      clock: () => now,
    });
    let steps = 0;
    for await (const _ of expiry.pass(new AbortController().signal)) steps++;

    const mine = new Set(["o0", "o2"]);
    const want = keys.filter((k) => k.key.startsWith("old-") && mine.has(objectShard(BUCKET, k.key, SHARDS))).map((k) => k.key);
    expect(want.length).toBeGreaterThan(BATCH_ROWS); // the pages really were needed
    expect(expired.sort()).toEqual(want.sort());
    const rowsIn = (s: string) => keys.filter((k) => objectShard(BUCKET, k.key, SHARDS) === s).length;
    expect(steps).toBe([...mine].reduce((n, s) => n + Math.floor(rowsIn(s) / BATCH_ROWS) + 1, 0));
    const aborted = expired.length - Math.floor(expired.length / 3);
    expect(expiry.stats.uploadsAborted).toBe(aborted);
    expect(expiry.stats.lastPassAtMs).toBe(now);
    expect(lines.length).toBe(aborted);
    expect(lines[0]).toMatch(/aborted incomplete multipart upload old-\d+0+ of bkt\/old-\d+: started 3\.0 h ago \(expiry 2\.0 h\)/);
  });

  test("records of completed uploads are removed once as old as the age, the younger ones kept", async () => {
    const now = 3_000_000_000_000;
    const shard = objectShard("done", "k", 1);
    const ids = Array.from({ length: BATCH_ROWS + 5 }, (_, i) => i.toString(16).padStart(32, "0"));
    // Old records for every id but the last five, which were completed just now.
    for (const [i, id] of ids.entries()) {
      const done: CompletedUpload = { etag: "e-1", size: 1, completedMs: i < BATCH_ROWS ? now - 2 * H : now - 1000 };
      await store.apply(shard, completedUploadRow("done", `k${i}`, id), { ts: stamp(), value: done });
    }
    const forgotten: string[] = [];
    const expiry = createMultipartExpiry({
      self: "me",
      indexStore: { shards: () => [shard], scan: (s, q) => store.scan(s, q) },
      placement: { shardReplicas: () => ["me"], reachable: () => true },
      expire: async () => "gone",
      forgetCompleted: async (bucket, key, uploadId) => {
        expect(bucket).toBe("done");
        forgotten.push(`${key}/${uploadId}`);
      },
      ageMs: H,
      log: createLogger("t", () => {}, "error"),
      clock: () => now,
    });
    for await (const _ of expiry.pass(new AbortController().signal));
    expect(forgotten.sort()).toEqual(ids.slice(0, BATCH_ROWS).map((id, i) => `k${i}/${id}`).sort());
  });

  test("a stop between steps ends the pass at once", async () => {
    const stop = new AbortController();
    let calls = 0;
    const expiry = createMultipartExpiry({
      self: "me",
      indexStore: store,
      placement: { shardReplicas: () => ["me"], reachable: () => true },
      expire: async () => {
        calls++;
        return "aborted";
      },
      ageMs: 1000,
      log: createLogger("t", () => {}, "error"),
      clock: () => 2_000_000_000_000,
    });
    const pass = expiry.pass(stop.signal);
    await pass.next();
    stop.abort();
    await expect(pass.next()).rejects.toThrow();
    expect(calls).toBeLessThanOrEqual(BATCH_ROWS);
    expect(expiry.stats.lastPassAtMs).toBe(0);
  });
});
