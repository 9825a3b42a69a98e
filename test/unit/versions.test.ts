// Version ids and version rows: ids sort newest first in exactly the reverse of the order
// last-writer-wins gives their stamps (tie-breaking node included), they are URL-safe and
// checked before use as row names; version rows of a key are one prefix scan, give back
// their key (NULs included) and order; the "null" row of an object from before versioning
// is the same whoever writes it; and a write's extra rows merge in its batch, each by its
// own stamp; chunk GC counts a noncurrent version's chunks as referenced.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { compareKeys, deletesAreFinal, keyVersionsPrefix, splitVersionListKey, versionListKey, versionRow, versionRowPrefix } from "../../src/metadata/keys.ts";
import type { ObjectManifest } from "../../src/metadata/types.ts";
import { checkVersionId, isVersionId, NULL_VERSION, versionOrder, versionTimeMs } from "../../src/objects/version-id.ts";
import { preVersionStamp, promotionStamp } from "../../src/objects/versions.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createReferenceIndex } from "../../src/repair/gc-references.ts";
import { compareTimestamps, decodeTimestamp, encodeTimestamp, type Timestamp } from "../../src/util/hlc.ts";
import { mulberry32 } from "../harness/random.ts";

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

describe("version ids", () => {
  test("ids sort in exactly the reverse of stamp order: wall, logical counter, then node (prefix nodes included)", () => {
    const rand = mulberry32(17);
    const pick = (n: number) => Math.floor(rand() * n);
    const nodes = ["12D3KooWA", "12D3KooWAb", "12D3KooWB", "12D3KooW", ...Array.from({ length: 20 }, () => "12D3KooW" + Array.from({ length: 44 }, () => BASE58[pick(58)]).join(""))];
    // Few distinct walls and counters, so ties on them (broken by node) are common.
    const stamps: Timestamp[] = Array.from({ length: 3000 }, () => ({ wall: 1_760_000_000_000 + pick(4), logical: pick(3), node: nodes[pick(nodes.length)] }));
    const byStamp = [...stamps].sort(compareTimestamps).map(encodeTimestamp);
    const byId = [...stamps].map(encodeTimestamp).sort((a, b) => (versionOrder(a) < versionOrder(b) ? -1 : versionOrder(a) > versionOrder(b) ? 1 : 0));
    expect(byId).toEqual([...byStamp].reverse());
  });

  test("an id is URL-safe, well-formed, one per stamp, and tells when it was written", () => {
    const ts = encodeTimestamp({ wall: 1_765_000_000_123, logical: 5, node: "12D3KooWQx" });
    const id = versionOrder(ts);
    expect(id).toMatch(/^[0-9A-Za-z._~-]+$/);
    expect(encodeURIComponent(id)).toBe(id);
    expect(isVersionId(id)).toBe(true);
    expect(versionTimeMs(id)).toBe(1_765_000_000_123);
    expect(versionOrder(ts)).toBe(id);
    expect(versionOrder(encodeTimestamp({ ...decodeTimestamp(ts), logical: 6 }))).not.toBe(id);
  });

  test("a node outside the id alphabet still makes a well-formed, distinct id", () => {
    const a = versionOrder(encodeTimestamp({ wall: 1, logical: 0, node: "peer one" }));
    const b = versionOrder(encodeTimestamp({ wall: 1, logical: 0, node: "peer two" }));
    expect(isVersionId(a)).toBe(true);
    expect(a).not.toBe(b);
  });

  test("only ids this store could have made, and null, are accepted (a row name is never built from anything else)", () => {
    expect(isVersionId(NULL_VERSION)).toBe(true);
    for (const bad of ["", "1", "Null", "abc~", `${"0".repeat(19)}a\0~`, `${"0".repeat(19)}a/b~`, `${"0".repeat(19)}${"a".repeat(161)}~`, "0".repeat(19) + "~"]) {
      expect(isVersionId(bad)).toBe(false);
      expect(() => checkVersionId(bad)).toThrow("Invalid version id specified");
    }
  });
});

describe("version rows", () => {
  test("a key's versions are one prefix; key and order come back, NULs in the key included", () => {
    for (const key of ["a", "dir/file.txt", "with\0nul", "ünï"]) {
      const order = versionOrder(encodeTimestamp({ wall: 1_765_000_000_000, logical: 0, node: "n1" }));
      const row = versionRow("bkt", key, order);
      expect(row.startsWith(keyVersionsPrefix("bkt", key))).toBe(true);
      expect(row.startsWith(versionRowPrefix("bkt"))).toBe(true);
      expect(splitVersionListKey(row.slice(versionRowPrefix("bkt").length))).toEqual({ key, order });
    }
    expect(deletesAreFinal("o3")).toBe(false);
  });

  test("newer versions of a key sort first, and a key-marker alone resumes after all of them, before the next key", () => {
    const orders = [1, 2, 3].map((w) => versionOrder(encodeTimestamp({ wall: 1_765_000_000_000 + w, logical: 0, node: "n1" })));
    const listed = orders.map((o) => versionListKey("k", o)).sort(compareKeys);
    expect(listed).toEqual([versionListKey("k", orders[2]), versionListKey("k", orders[1]), versionListKey("k", orders[0])]);
    for (const l of listed) expect(compareKeys(versionListKey("k"), l)).toBeGreaterThan(0);
    expect(compareKeys(versionListKey("k"), versionListKey("k0", orders[0]))).toBeLessThan(0);
    expect(compareKeys(versionListKey("k"), versionListKey("l", orders[0]))).toBeLessThan(0);
  });

  test("the null row of an object from before versioning is the same entry whoever makes it", () => {
    const m = { size: 1, etag: "e", contentType: "x", meta: {}, lastModified: 1_700_000_000_123, chunkSize: 1, chunks: [] } satisfies ObjectManifest;
    expect(preVersionStamp(m)).toBe(preVersionStamp({ ...m }));
    expect(decodeTimestamp(preVersionStamp(m)).wall).toBe(m.lastModified);
    // Older than any version written after it.
    expect(versionOrder(preVersionStamp(m)) > versionOrder(encodeTimestamp({ wall: m.lastModified + 1, logical: 0, node: "n1" }))).toBe(true);
  });
});

describe("the stamp of a promotion (DELETE of the current version)", () => {
  const now = 1_765_000_000_000;
  test("just above the row it replaces, so a PUT racing with it (stamped later) still wins the row", () => {
    const cur = encodeTimestamp({ wall: now - 20, logical: 3, node: "n2" });
    const p = promotionStamp(cur, false, now)!;
    expect(p > cur).toBe(true);
    expect(p < encodeTimestamp({ wall: now - 20, logical: 5, node: "a" })).toBe(true);
    expect(p < encodeTimestamp({ wall: now - 19, logical: 0, node: "a" })).toBe(true);
    const full = encodeTimestamp({ wall: now - 20, logical: 0xffffff, node: "n2" });
    expect(decodeTimestamp(promotionStamp(full, false, now)!)).toEqual({ wall: now - 19, logical: 0, node: "n2" });
    expect(promotionStamp(undefined, false, now)).toBeUndefined();
  });

  test("a promotion that deletes the row is never stamped so far back that its tombstone could count as expired", () => {
    const old = encodeTimestamp({ wall: now - 30 * 24 * 3600_000, logical: 0, node: "n2" });
    const p = promotionStamp(old, true, now)!;
    expect(p > old).toBe(true);
    expect(now - decodeTimestamp(p).wall).toBeLessThanOrEqual(5000);
    // A value promoted over an old row keeps the low stamp: values never expire.
    expect(decodeTimestamp(promotionStamp(old, false, now)!).wall).toBe(now - 30 * 24 * 3600_000);
  });
});

describe("a write's extra rows", () => {
  let root: string;
  let store: IndexStore;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "versions-"));
    store = await openIndexStore(path.join(root, "index"), { deletesAreFinal });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const ts = (wall: number) => encodeTimestamp({ wall, logical: 0, node: "n1" });

  test("are stored with the written row, each merged by its own stamp, and counted in the digests", async () => {
    const before = store.digests("o1").join();
    await store.apply("o1", "b\0k", { ts: ts(10), value: { v: 10 } }, undefined, [["\x01vb\0k\0x", { ts: ts(5), value: { v: 5 } }]]);
    expect(await store.get("o1", "\x01vb\0k\0x")).toEqual({ ts: ts(5), value: { v: 5 } });
    expect(store.digests("o1").join()).not.toBe(before);
    // An older written row is refused, but a newer extra row in the same call still lands (and a stale one does not).
    const applied = await store.apply("o1", "b\0k", { ts: ts(9), value: { v: 9 } }, undefined, [
      ["\x01vb\0k\0x", { ts: ts(6), value: null }],
      ["\x01vb\0k\0y", { ts: ts(1), value: { v: 1 } }],
    ]);
    expect(applied).toBe(false);
    expect(await store.get("o1", "b\0k")).toEqual({ ts: ts(10), value: { v: 10 } });
    expect(await store.get("o1", "\x01vb\0k\0x")).toEqual({ ts: ts(6), value: null });
    expect(await store.get("o1", "\x01vb\0k\0y")).toEqual({ ts: ts(1), value: { v: 1 } });
    await store.apply("o1", "b\0k", { ts: ts(11), value: { v: 11 } }, undefined, [["\x01vb\0k\0y", { ts: ts(0), value: null }]]);
    expect(await store.get("o1", "\x01vb\0k\0y")).toEqual({ ts: ts(1), value: { v: 1 } });
  });

  test("two writes whose extra rows overlap in opposite orders both finish (no lock cycle)", async () => {
    const rows = Array.from({ length: 6 }, (_, i) => `\x01vb\0k\0r${i}`);
    const writes = Array.from({ length: 40 }, (_, i) =>
      store.apply("o2", `b\0k${i % 2}`, { ts: ts(100 + i), value: { i } }, undefined, (i % 2 ? [...rows].reverse() : rows).map((r) => [r, { ts: ts(100 + i), value: { i } }] as [string, { ts: string; value: unknown }])),
    );
    await Promise.all(writes);
    for (const r of rows) expect((await store.get("o2", r))?.ts).toBe(ts(139));
  });

  test("chunk GC sees a version row's chunks as referenced until the version is deleted", async () => {
    const refs = createReferenceIndex(store);
    const manifest = (id: string) => ({ size: 1, etag: "e", contentType: "x", meta: {}, lastModified: 1, chunkSize: 1, chunks: [{ id, size: 1 }], versionId: "v" });
    const row = versionRow("bkt", "k", versionOrder(ts(50)));
    await store.apply("o3", row, { ts: ts(50), value: manifest("noncurrent-chunk") });
    await store.apply("o3", "bkt\0k", { ts: ts(51), value: manifest("current-chunk") });
    let has = await refs.lookup();
    expect([has("noncurrent-chunk"), has("current-chunk"), has("other")]).toEqual([true, true, false]);
    await store.apply("o3", row, { ts: ts(52), value: null });
    has = await refs.lookup();
    expect([has("noncurrent-chunk"), has("current-chunk")]).toEqual([false, true]);
  });
});
