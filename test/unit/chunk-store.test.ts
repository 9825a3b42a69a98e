import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import fs from "node:fs";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BadDigestError } from "../../src/errors.ts";
import {
  ChunkCorruptError,
  type ChunkStore,
  InvalidChunkIdError,
  isChunkId,
  openChunkStore,
  sha256Hex,
} from "../../src/store/chunk-store.ts";

let root: string;
let dir: string;
let store: ChunkStore;

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-test-"));
  dir = path.join(root, "data", "chunks");
  store = await openChunkStore({ dir });
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const chunkFile = (id: string) => path.join(dir, id.slice(0, 2), id);
const ls = (p: string) => fs.readdirSync(p);

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("sha256Hex / isChunkId", () => {
  test("known vectors", () => {
    expect(sha256Hex(new Uint8Array())).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex(enc("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  test("isChunkId accepts only 64 lowercase hex chars", () => {
    const id = sha256Hex(enc("x"));
    expect(isChunkId(id)).toBe(true);
    expect(isChunkId(id.toUpperCase())).toBe(false);
    expect(isChunkId(id.slice(1))).toBe(false);
    expect(isChunkId(id + "0")).toBe(false);
    expect(isChunkId(id + "\n")).toBe(false);
    expect(isChunkId("../../etc/passwd")).toBe(false);
  });
});

describe("openChunkStore", () => {
  test("creates the layout", () => {
    expect(fs.statSync(path.join(dir, "tmp")).isDirectory()).toBe(true);
    expect(fs.statSync(path.join(dir, "quarantine")).isDirectory()).toBe(true);
    expect(fs.statSync(path.join(dir, "00")).isDirectory()).toBe(true);
    expect(fs.statSync(path.join(dir, "ff")).isDirectory()).toBe(true);
  });

  test("removes leftovers in tmp and never serves them", async () => {
    const bytes = enc("half written");
    const id = sha256Hex(bytes);
    // A peer killed mid-write leaves a partial temp file (and maybe a nested folder).
    fs.writeFileSync(path.join(dir, "tmp", `${id}.deadbeef`), bytes.subarray(0, 4));
    fs.writeFileSync(path.join(dir, "tmp", "junk"), "x");
    fs.mkdirSync(path.join(dir, "tmp", "nested"));
    fs.writeFileSync(path.join(dir, "tmp", "nested", "y"), "y");

    const reopened = await openChunkStore({ dir });
    expect(ls(path.join(dir, "tmp"))).toEqual([]);
    expect(await reopened.has(id)).toBe(false);
    expect(await reopened.get(id)).toBeNull();
    expect(await collect(reopened.list())).toEqual([]);
  });

  test("reopening keeps stored chunks", async () => {
    const bytes = enc("persisted");
    const id = sha256Hex(bytes);
    await store.put(id, bytes);
    const reopened = await openChunkStore({ dir });
    expect(await reopened.get(id)).toEqual(bytes);
  });
});

describe("put / get", () => {
  test("round trip", async () => {
    const bytes = enc("hello meshstore");
    const id = sha256Hex(bytes);
    expect(await store.has(id)).toBe(false);
    expect(await store.get(id)).toBeNull();
    expect(await store.put(id, bytes)).toBe(true);
    expect(await store.has(id)).toBe(true);
    expect(await store.size(id)).toBe(bytes.length);
    const got = await store.get(id);
    expect(got).toBeInstanceOf(Uint8Array);
    expect(got).toEqual(bytes);
    // Stored under the fan-out folder, and no temp file is left behind.
    expect(fs.readFileSync(chunkFile(id))).toEqual(Buffer.from(bytes));
    expect(ls(path.join(dir, "tmp"))).toEqual([]);
  });

  test("empty chunk round-trips", async () => {
    const bytes = new Uint8Array();
    const id = sha256Hex(bytes);
    expect(await store.put(id, bytes)).toBe(true);
    expect(await store.get(id)).toEqual(bytes);
    expect(await store.size(id)).toBe(0);
  });

  test("wrong digest is rejected and nothing is stored", async () => {
    const id = sha256Hex(enc("the real bytes"));
    let err: unknown;
    try {
      await store.put(id, enc("other bytes"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadDigestError);
    expect((err as { code?: string }).code).toBe("BadDigest");
    expect((err as BadDigestError).actual).toBe(sha256Hex(enc("other bytes")));
    expect(await store.has(id)).toBe(false);
    expect(fs.existsSync(chunkFile(id))).toBe(false);
    expect(ls(path.join(dir, "tmp"))).toEqual([]);
    expect(await store.stats()).toEqual({ chunks: 0, bytes: 0 });
  });

  test("put twice is deduplicated", async () => {
    const bytes = enc("dup");
    const id = sha256Hex(bytes);
    expect(await store.put(id, bytes)).toBe(true);
    const mtime = fs.statSync(chunkFile(id)).mtimeMs;
    expect(await store.put(id, bytes)).toBe(false);
    expect(ls(path.join(dir, id.slice(0, 2)))).toEqual([id]);
    expect(fs.statSync(chunkFile(id)).mtimeMs).toBe(mtime); // not rewritten
    expect(ls(path.join(dir, "tmp"))).toEqual([]);
  });

  test("50 concurrent puts of the same id all resolve, one writes, one file remains", async () => {
    const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const id = sha256Hex(bytes);
    const results = await Promise.all(Array.from({ length: 50 }, () => store.put(id, bytes.slice())));
    expect(results.filter((r) => r).length).toBe(1);
    expect(ls(path.join(dir, id.slice(0, 2)))).toEqual([id]);
    expect(ls(path.join(dir, "tmp"))).toEqual([]);
    expect(await store.get(id)).toEqual(bytes);
  });

  test("concurrent puts from two store instances on one folder (like two processes) are safe", async () => {
    const other = await openChunkStore({ dir });
    const bytes = crypto.getRandomValues(new Uint8Array(256 * 1024));
    const id = sha256Hex(bytes);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).put(id, bytes)),
    );
    expect(results.filter((r) => r).length).toBeGreaterThanOrEqual(1);
    expect(ls(path.join(dir, id.slice(0, 2)))).toEqual([id]);
    expect(ls(path.join(dir, "tmp"))).toEqual([]);
    expect(await store.get(id)).toEqual(bytes);
  });

  test("a 4 MiB chunk round-trips", async () => {
    const bytes = new Uint8Array(4 * 1024 * 1024);
    // getRandomValues is limited to 64 KiB per call.
    for (let off = 0; off < bytes.length; off += 65536) crypto.getRandomValues(bytes.subarray(off, off + 65536));
    const id = sha256Hex(bytes);
    expect(await store.put(id, bytes)).toBe(true);
    expect(await store.size(id)).toBe(4 * 1024 * 1024);
    const got = await store.get(id);
    expect(got!.length).toBe(bytes.length);
    expect(sha256Hex(got!)).toBe(id);
    expect(Buffer.compare(Buffer.from(got!), Buffer.from(bytes))).toBe(0);
  });
});

describe("corruption", () => {
  test("a flipped byte on disk: get throws ChunkCorruptError, file quarantined, has() false", async () => {
    const bytes = enc("precious data that will rot");
    const id = sha256Hex(bytes);
    await store.put(id, bytes);

    const fd = fs.openSync(chunkFile(id), "r+");
    fs.writeSync(fd, Buffer.from([bytes[5]! ^ 0xff]), 0, 1, 5);
    fs.closeSync(fd);

    let err: unknown;
    try {
      await store.get(id);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ChunkCorruptError);
    expect((err as ChunkCorruptError).chunkId).toBe(id);

    expect(fs.existsSync(chunkFile(id))).toBe(false);
    const q = ls(path.join(dir, "quarantine"));
    expect(q.length).toBe(1);
    expect(q[0]!.startsWith(id)).toBe(true);
    expect((err as ChunkCorruptError).quarantinedAt).toBe(path.join(dir, "quarantine", q[0]!));
    // The quarantined file keeps the corrupt bytes for inspection.
    expect(fs.readFileSync(path.join(dir, "quarantine", q[0]!))[5]).toBe(bytes[5]! ^ 0xff);

    expect(await store.has(id)).toBe(false);
    expect(await store.get(id)).toBeNull();
    expect(await collect(store.list())).toEqual([]);
    // A good copy (e.g. fetched from a peer) can be stored again.
    expect(await store.put(id, bytes)).toBe(true);
    expect(await store.get(id)).toEqual(bytes);
  });

  test("truncated file is detected too, and concurrent readers all fail cleanly", async () => {
    const bytes = enc("truncate me please");
    const id = sha256Hex(bytes);
    await store.put(id, bytes);
    fs.truncateSync(chunkFile(id), 3);
    const results = await Promise.allSettled([store.get(id), store.get(id), store.get(id)]);
    for (const r of results) {
      // Each reader either saw the corrupt file (error) or saw it already gone (null).
      if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ChunkCorruptError);
      else expect(r.value).toBeNull();
    }
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    expect(ls(path.join(dir, "quarantine")).length).toBe(1);
    expect(await store.has(id)).toBe(false);
  });
});

describe("size / delete", () => {
  test("size and delete", async () => {
    const bytes = enc("delete me");
    const id = sha256Hex(bytes);
    expect(await store.size(id)).toBeNull();
    expect(await store.delete(id)).toBe(false);
    await store.put(id, bytes);
    expect(await store.size(id)).toBe(9);
    expect(await store.delete(id)).toBe(true);
    expect(await store.has(id)).toBe(false);
    expect(await store.size(id)).toBeNull();
    expect(await store.delete(id)).toBe(false);
  });
});

describe("list / stats", () => {
  test("lists exactly the stored chunks, ignoring temp, quarantined and stray files", async () => {
    const chunks = ["a", "bb", "ccc", "x".repeat(1000)].map(enc);
    const ids = chunks.map(sha256Hex);
    for (let i = 0; i < chunks.length; i++) await store.put(ids[i]!, chunks[i]!);

    // Noise that must not be reported as chunks.
    fs.writeFileSync(path.join(dir, "tmp", `${ids[0]}.partial`), "p");
    fs.writeFileSync(path.join(dir, "quarantine", `${sha256Hex(enc("q"))}.1.abc`), "q");
    fs.writeFileSync(path.join(dir, ids[0]!.slice(0, 2), "README"), "stray");
    const misplaced = sha256Hex(enc("misplaced"));
    const wrongPrefix = misplaced.startsWith("00") ? "01" : "00";
    fs.writeFileSync(path.join(dir, wrongPrefix, misplaced), "misplaced");
    fs.writeFileSync(path.join(dir, "stray-top-level-file"), "s");

    const listed = await collect(store.list());
    expect(listed.sort()).toEqual([...ids].sort());
    expect(await store.stats()).toEqual({ chunks: 4, bytes: 1 + 2 + 3 + 1000 });

    await store.delete(ids[3]!);
    expect(await store.stats()).toEqual({ chunks: 3, bytes: 6 });
  });

  test("empty store", async () => {
    expect(await collect(store.list())).toEqual([]);
    expect(await store.stats()).toEqual({ chunks: 0, bytes: 0 });
  });

  test("live counts follow every put, delete and quarantine, and a reopened store starts from a scan", async () => {
    expect(store.counts()).toEqual({ chunks: 0, bytes: 0 });
    const a = enc("a".repeat(100));
    const b = enc("b".repeat(50));
    const c = enc("corrupt me");
    await Promise.all([store.put(sha256Hex(a), a), store.put(sha256Hex(a), a), store.put(sha256Hex(b), b), store.put(sha256Hex(c), c)]);
    expect(store.counts()).toEqual({ chunks: 3, bytes: 160 });
    expect(await store.delete(sha256Hex(b))).toBe(true);
    expect(await store.delete(sha256Hex(b))).toBe(false);
    expect(store.counts()).toEqual({ chunks: 2, bytes: 110 });
    const cPath = path.join(dir, sha256Hex(c).slice(0, 2), sha256Hex(c));
    fs.writeFileSync(cPath, "corrupt mE");
    await store.get(sha256Hex(c)).catch(() => {});
    expect(store.counts()).toEqual({ chunks: 1, bytes: 100 });
    expect(store.counts()).toEqual(await store.stats());
    expect((await openChunkStore({ dir })).counts()).toEqual({ chunks: 1, bytes: 100 });
    // A file removed behind the store's back is seen by the next scan.
    fs.rmSync(path.join(dir, sha256Hex(a).slice(0, 2), sha256Hex(a)));
    expect(store.counts()).toEqual({ chunks: 1, bytes: 100 });
    await store.stats();
    expect(store.counts()).toEqual({ chunks: 0, bytes: 0 });
  });
});

describe("id validation", () => {
  const good = sha256Hex(enc("good"));
  const badIds = [
    "../../etc/passwd",
    "",
    "..",
    good.toUpperCase(),
    good.slice(0, 63),
    good + "0",
    `${good.slice(0, 2)}/../../${good.slice(8)}`,
    `${good.slice(0, 62)}/x`,
    `${good.slice(0, 63)}\0`,
    "tmp",
    "quarantine",
  ];

  test("invalid ids are rejected before any filesystem access", async () => {
    // A sentinel the traversal ids would hit if a path were ever built from them.
    const sentinel = path.join(root, "etc-passwd");
    fs.writeFileSync(sentinel, "root:x:0:0");

    const fns = ["open", "readFile", "stat", "unlink", "rename", "rm", "mkdir", "readdir"] as const;
    const spies = fns.map((f) => spyOn(fsp, f));
    try {
      for (const id of badIds) {
        await expect(store.put(id, enc("x"))).rejects.toBeInstanceOf(InvalidChunkIdError);
        await expect(store.get(id)).rejects.toBeInstanceOf(InvalidChunkIdError);
        await expect(store.has(id)).rejects.toBeInstanceOf(InvalidChunkIdError);
        await expect(store.size(id)).rejects.toBeInstanceOf(InvalidChunkIdError);
        await expect(store.delete(id)).rejects.toBeInstanceOf(InvalidChunkIdError);
      }
      for (const s of spies) expect(s).not.toHaveBeenCalled();
      // Sanity check that the spies do see the store's fs calls.
      await store.has(good);
      expect(spies[fns.indexOf("stat")]).toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
    }
    expect(fs.readFileSync(sentinel, "utf8")).toBe("root:x:0:0");
  });

  test("the rejection carries a code", async () => {
    let err: unknown;
    try {
      await store.get("../../etc/passwd");
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe("InvalidChunkId");
  });
});
