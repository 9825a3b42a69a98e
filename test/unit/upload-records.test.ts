// Upload progress records on one real local index store with an injected clock: token
// validation, inprogress -> success / fail, progress written at a bounded rate (never per
// piece), a silent upload read as stalled, a failure after a success written beside a
// failed write, multipart parts folded into their upload, and expiry by read and by sweep.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { UPLOADS_SHARD } from "../../src/metadata/keys.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createHlc } from "../../src/util/hlc.ts";
import { createLogger } from "../../src/util/log.ts";
import { newUploadToken, validateUploadToken, viewAt, type StoredUpload } from "../../src/uploads/records.ts";
import { storeRows } from "../../src/uploads/rows.ts";
import { createUploadRecords, type RecordRows } from "../../src/uploads/service.ts";

let dir: string;
let store: IndexStore;
let now = 1_700_000_000_000;
const clock = () => now;
const CFG = { progressIntervalMs: 1000, progressBytes: 1000, stallMs: 60_000, ttlMs: 24 * 3600_000, sweepIntervalMs: 60_000 };
let writes = 0;

function records(uploadOpen?: (bucket: string, key: string, uploadId: string) => Promise<boolean>) {
  const base = storeRows(store, createHlc("unit", { clock }));
  const rows: RecordRows = { ...base, write: (r) => ((writes += r.length), base.write(r)) };
  return createUploadRecords({ rows, log: createLogger("test", () => {}, "error"), config: CFG, clock, uploadOpen });
}

/** A body of `pieces` pieces of `size` bytes, the clock moving `stepMs` per piece. */
function body(pieces: number, size: number, stepMs: number, failAt?: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent === failAt) return c.error(new Error("connection reset"));
      if (sent++ === pieces) return c.close();
      now += stepMs;
      c.enqueue(new Uint8Array(size));
    },
  });
}
const drain = async (s: ReadableStream<Uint8Array> | null) => {
  let n = 0;
  for await (const piece of s!) n += piece.byteLength;
  return n;
};
const settle = () => new Promise((r) => setTimeout(r, 20));

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "meshstore-uploads-"));
  store = await openIndexStore(dir, { deletesAreFinal: () => false });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("tokens", () => {
  test("8 to 64 of [A-Za-z0-9_-] pass; anything else is 400 InvalidArgument naming the header", () => {
    for (const ok of ["abcdefgh", "A-b_C-9z".repeat(8), newUploadToken()]) expect(validateUploadToken(ok)).toBe(ok);
    for (const bad of ["", "abcdefg", "x".repeat(65), "abc defgh", "abcdefgh/", "abcdefgh\0", "ünïcödé-token"]) {
      let caught: { code?: string; status?: number; message?: string } = {};
      try {
        validateUploadToken(bad);
      } catch (err) {
        caught = err as typeof caught;
      }
      expect([caught.code, caught.status]).toEqual(["InvalidArgument", 400]);
      expect(caught.message).toContain("x-upload-token");
    }
    expect(newUploadToken()).not.toBe(newUploadToken());
  });
});

describe("states", () => {
  test("a short body writes nothing until it ends: one success record, read back whole", async () => {
    const r = records();
    writes = 0;
    const s = r.begin("short-upload-1", "b1", "k", 300);
    expect(await drain(s.watch(body(3, 100, 10)))).toBe(300);
    expect(writes).toBe(0);
    expect(await r.get("short-upload-1")).toBeNull();
    await s.succeed(300);
    expect(writes).toBe(2); // the token row and the newest-first row
    expect(await r.get("short-upload-1")).toEqual({ token: "short-upload-1", bucket: "b1", key: "k", state: "success", bytesReceived: 300, size: 300, startedMs: now - 30, finishedMs: now });
  });

  test("a long body reports progress at most every interval or every progressBytes, never per piece", async () => {
    const r = records();
    writes = 0;
    const s = r.begin("long-upload-1", "b1", "k");
    const reader = s.watch(body(100, 10, 50))!.getReader();
    // 100 pieces of 10 bytes, 50 ms apart: 5 s and 1000 bytes, so about 5 reports, not 100.
    for (let i = 0; i < 50; i++) {
      await reader.read();
      await settle();
    }
    const mid = await r.get("long-upload-1");
    expect(mid?.state).toBe("inprogress");
    expect(mid!.bytesReceived).toBeGreaterThanOrEqual(200);
    while (!(await reader.read()).done) await settle();
    expect(writes / 2).toBeGreaterThanOrEqual(3);
    expect(writes / 2).toBeLessThanOrEqual(6);
    await s.succeed(1000);
    expect((await r.get("long-upload-1"))?.state).toBe("success");
  });

  test("a body that errors fails the record with the client's disconnection, bytes so far kept", async () => {
    const r = records();
    const s = r.begin("broken-upload", "b1", "k", 5000);
    await expect(drain(s.watch(body(50, 100, 10, 7)))).rejects.toThrow("connection reset");
    await s.fail(new Error("connection reset"), true);
    const v = await r.get("broken-upload");
    expect(v).toMatchObject({ state: "fail", bytesReceived: 700, size: 5000 });
    expect(v!.error).toContain("disconnected");
  });

  test("a success written beside a write that then failed is overruled by the failure; nothing after a failure counts", async () => {
    const r = records();
    const s = r.begin("beside-failed", "b1", "k");
    await s.succeed(10);
    await s.fail(Object.assign(new Error("too few replicas"), { code: "QuorumError" }), false);
    await s.succeed(10);
    expect(await r.get("beside-failed")).toMatchObject({ state: "fail", error: "QuorumError: too few replicas" });
  });

  test("an upload silent for stallMs reads as fail (stalled), and inprogress again once it moves", async () => {
    const r = records();
    const s = r.begin("stalling-upload", "b1", "k");
    const reader = s.watch(body(10, 10, 1000))!.getReader();
    await reader.read();
    await reader.read();
    await settle();
    expect((await r.get("stalling-upload"))?.state).toBe("inprogress");
    now += CFG.stallMs;
    const stalled = await r.get("stalling-upload");
    expect(stalled?.state).toBe("fail");
    expect(stalled?.error).toMatch(/^stalled: no progress for \d+ s$/);
    await reader.read();
    await settle();
    expect((await r.get("stalling-upload"))?.state).toBe("inprogress");
  });

  test("a multipart upload: parts count towards the whole, a failed part counts nothing, completion sets the size", async () => {
    const r = records();
    await r.beginMultipart("multipart-unit", "b1", "big", "u".repeat(32));
    const p1 = r.beginPart("multipart-unit", "u".repeat(32), 1);
    await drain(p1.watch(body(5, 100, 1)));
    await p1.succeed(500);
    const p2 = r.beginPart("multipart-unit", "u".repeat(32), 2);
    await p2.succeed(300);
    const p3 = r.beginPart("multipart-unit", "u".repeat(32), 3);
    await p3.fail(new Error("gone"), true);
    const mid = await r.get("multipart-unit");
    expect(mid).toMatchObject({ state: "inprogress", bytesReceived: 800, uploadId: "u".repeat(32) });
    expect(mid!.error).toContain("part 3");
    // Another upload's id (a client naming this token for its own upload) changes nothing.
    await r.endMultipart("multipart-unit", "x".repeat(32), { size: 1 });
    expect(await r.get("multipart-unit")).toMatchObject({ state: "inprogress", bytesReceived: 800 });
    // Resting between parts is no stall: a multipart upload ends by completion, abort or expiry.
    now += CFG.stallMs * 10;
    expect((await r.get("multipart-unit"))?.state).toBe("inprogress");
    await r.endMultipart("multipart-unit", "u".repeat(32), { size: 800 });
    expect(await r.get("multipart-unit")).toMatchObject({ state: "success", bytesReceived: 800, size: 800 });
    await r.beginMultipart("multipart-aborted", "b1", "big", "a".repeat(32));
    await r.endMultipart("multipart-aborted", "a".repeat(32), { error: "aborted by the client" });
    expect(await r.get("multipart-aborted")).toMatchObject({ state: "fail", error: "aborted by the client" });
  });
});

describe("multipart records that rest", () => {
  test("a resting upload stays inprogress while open; once gone unrecorded (its bucket deleted) it reads fail; an open one outlives the record's time", async () => {
    const open = new Set(["r".repeat(32), "s".repeat(32)]);
    const r = records(async (_b, _k, id) => open.has(id));
    await r.beginMultipart("resting-open", "b1", "k1", "r".repeat(32));
    await r.beginMultipart("resting-gone", "b1", "k2", "s".repeat(32));
    // A token used again for a new upload: the old upload's part does not count for the new one.
    await r.beginPart("resting-gone", "old-upload-id-".padEnd(32, "x"), 1).succeed(999);
    await r.beginPart("resting-gone", "s".repeat(32), 2).succeed(5);
    now += CFG.stallMs;
    expect(await r.get("resting-open")).toMatchObject({ state: "inprogress" });
    expect(await r.get("resting-gone")).toMatchObject({ state: "inprogress", bytesReceived: 5 });
    open.delete("s".repeat(32));
    expect(await r.get("resting-gone")).toMatchObject({ state: "fail", error: expect.stringMatching(/^the upload ended unrecorded/) });
    expect((await r.list(200, () => true)).find((u) => u.token === "resting-gone")?.state).toBe("fail");
    // Past the record's time, the sweep keeps the open upload's record and drops the other.
    now += CFG.ttlMs;
    await r.start();
    await new Promise((done) => setTimeout(done, 50));
    await r.stop();
    expect(await r.get("resting-open")).toMatchObject({ state: "inprogress" });
    expect(await r.get("resting-gone")).toBeNull();
  });
});

describe("listing and expiry", () => {
  test("the listing is newest first, filtered by bucket, bounded by its limit", async () => {
    const r = records();
    for (let i = 0; i < 5; i++) {
      now += 1000;
      await r.begin(`listed-${i}-token`, i % 2 ? "odd" : "even", `k${i}`).succeed(i);
    }
    const even = await r.list(2, (b) => b === "even");
    expect(even.map((u) => u.token)).toEqual(["listed-4-token", "listed-2-token"]);
    const all = await r.list(200, () => true);
    expect(all.map((u) => u.startedMs)).toEqual([...all.map((u) => u.startedMs)].sort((a, b) => b - a));
  });

  test("a record reads as gone 24 h after it ended, and the sweep deletes its rows (parts included)", async () => {
    const r = records();
    await r.begin("expiring-one", "b1", "k").succeed(1);
    await r.beginMultipart("expiring-mp", "b1", "k", "e".repeat(32));
    await r.beginPart("expiring-mp", "e".repeat(32), 1).succeed(7);
    await r.endMultipart("expiring-mp", "e".repeat(32), { error: "aborted by the client" });
    now += CFG.ttlMs - 1;
    expect(await r.get("expiring-one")).not.toBeNull();
    now += 1;
    expect(await r.get("expiring-one")).toBeNull();
    expect((await r.list(200, () => true)).some((u) => u.token === "expiring-one")).toBe(false);
    // A record newer than the cutoff survives the sweep.
    await r.begin("fresh-record", "b1", "k").succeed(1);
    r.start();
    const live = async () => (await store.scan(UPLOADS_SHARD, { prefix: "", limit: 10_000 })).filter(([, e]) => e.value !== null).map(([row]) => row);
    for (let i = 0; i < 100 && (await live()).some((row) => row.includes("expiring")); i++) await settle();
    await r.stop();
    const left = await live();
    expect(left.filter((row) => row.includes("expiring"))).toEqual([]);
    expect(left.filter((row) => row.includes("fresh-record")).length).toBe(2);
  });

  test("viewAt: stall and expiry are measured from the last update and the end", () => {
    const rec: StoredUpload = { token: "t".repeat(8), bucket: "b", key: "k", state: "inprogress", bytesReceived: 1, startedMs: 0, updatedMs: 100 };
    const cfg = { stallMs: 50, ttlMs: 1000 };
    expect(viewAt(rec, 149, cfg)?.state).toBe("inprogress");
    expect(viewAt(rec, 150, cfg)?.state).toBe("fail");
    expect(viewAt({ ...rec, state: "success", finishedMs: 200 }, 1199, cfg)?.state).toBe("success");
    expect(viewAt({ ...rec, state: "success", finishedMs: 200 }, 1200, cfg)).toBeNull();
  });
});
