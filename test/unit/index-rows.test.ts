// Which index rows may replace which: last writer wins, except that a revocation in the
// keys shard is final whatever the stamps; and which stamps are too far in the future to
// be stored or believed at all.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { admissibleAt } from "../../src/metadata/index-client.ts";
import { deletesAreFinal, KEYS_SHARD } from "../../src/metadata/keys.ts";
import { newer, type IndexEntry } from "../../src/metadata/types.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createHlc, encodeTimestamp, MAX_CLOCK_DRIFT_MS, MAX_WALL, msAhead } from "../../src/util/hlc.ts";

const ts = (wall: number, node = "n1") => encodeTimestamp({ wall, logical: 0, node });
const live = (wall: number): IndexEntry => ({ ts: ts(wall), value: { v: wall } });
const gone = (wall: number): IndexEntry => ({ ts: ts(wall), value: null });

describe("newer", () => {
  test("last writer wins by stamp, deletes included, where deletes are not final", () => {
    expect(newer(live(2), live(1))).toBe(true);
    expect(newer(live(1), gone(2))).toBe(false);
    expect(newer(live(3), gone(2))).toBe(true);
    expect(newer(gone(1), null)).toBe(true);
  });

  test("where deletes are final, a delete beats any value and no value beats a delete, whatever the stamps", () => {
    expect(deletesAreFinal(KEYS_SHARD)).toBe(true);
    expect(deletesAreFinal("b")).toBe(false);
    expect(newer(live(MAX_WALL), gone(1), true)).toBe(false);
    expect(newer(gone(1), live(MAX_WALL), true)).toBe(true);
    expect(newer(live(2), live(1), true)).toBe(true);
    expect(newer(gone(2), gone(1), true)).toBe(true);
  });

  test("the order is total either way, so replicas merging in any order end alike", () => {
    const entries = [live(1), live(5), gone(3), gone(7), live(9), gone(2)];
    const permutations = (xs: IndexEntry[]): IndexEntry[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
    for (const final of [false, true]) {
      const merge = (order: IndexEntry[]) => order.reduce<IndexEntry | null>((cur, e) => (newer(e, cur, final) ? e : cur), null);
      const outcomes = new Set(permutations(entries).map((order) => JSON.stringify(merge(order))));
      expect([...outcomes]).toEqual([JSON.stringify(final ? gone(7) : live(9))]);
    }
  });
});

describe("stamps from the future", () => {
  const now = 1_760_000_000_000;
  test("msAhead reads the wall part of a stamp; malformed ones are infinitely far", () => {
    expect(msAhead(ts(now + 5), now)).toBe(5);
    expect(msAhead(ts(now - 5), now)).toBe(-5);
    expect(msAhead("yesterday", now)).toBe(Infinity);
  });

  test("an entry is admissible up to the allowed drift ahead, and the clock refuses beyond it too", () => {
    expect(MAX_CLOCK_DRIFT_MS).toBe(60_000);
    expect(admissibleAt(live(now + MAX_CLOCK_DRIFT_MS), now)).toBe(true);
    expect(admissibleAt(live(now + MAX_CLOCK_DRIFT_MS + 1), now)).toBe(false);
    expect(admissibleAt(live(now + 365 * 24 * 3600_000), now)).toBe(false);
    expect(admissibleAt({ ts: 5, value: null } as unknown as IndexEntry, now)).toBe(false);
    expect(admissibleAt(null, now)).toBe(false);
    // The same bound as the HLC's: a row the clock would refuse to follow is not stored.
    const hlc = createHlc("n2", { clock: () => now });
    expect(() => hlc.observe({ wall: now + MAX_CLOCK_DRIFT_MS + 1, logical: 0, node: "n1" })).toThrow();
    hlc.observe({ wall: now + MAX_CLOCK_DRIFT_MS, logical: 0, node: "n1" });
  });
});

describe("index store", () => {
  let root: string;
  let store: IndexStore;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-index-"));
    store = await openIndexStore(path.join(root, "index"), { deletesAreFinal });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("a revoked key stays revoked against a later-stamped row; other shards stay last-writer-wins", async () => {
    expect(await store.apply(KEYS_SHARD, "K1", live(10))).toBe(true);
    expect(await store.apply(KEYS_SHARD, "K1", gone(5))).toBe(true);
    expect(await store.apply(KEYS_SHARD, "K1", live(MAX_WALL))).toBe(false);
    expect(await store.get(KEYS_SHARD, "K1")).toEqual(gone(5));

    expect(await store.apply("b", "bucket", live(10))).toBe(true);
    expect(await store.apply("b", "bucket", gone(5))).toBe(false);
    expect(await store.apply("b", "bucket", gone(20))).toBe(true);
    expect(await store.apply("b", "bucket", live(30))).toBe(true);
    expect(await store.get("b", "bucket")).toEqual(live(30));
  });

  test("a write's companion row (its change event) lands in the same batch, also when the write itself lost; digests count each row once", async () => {
    const event = (wall: number): [string, IndexEntry] => [`\x01ebkt\0${ts(wall)}`, { ts: ts(wall), value: { name: "ObjectCreated:Put", key: "k" } }];
    expect(await store.apply("o1", "bkt\0k", live(20), event(20))).toBe(true);
    // An older write of the same key arrives late: its manifest loses, its event is still recorded.
    expect(await store.apply("o1", "bkt\0k", live(15), event(15))).toBe(false);
    expect(await store.get("o1", "bkt\0k")).toEqual(live(20));
    expect(await store.get("o1", event(15)[0])).toEqual(event(15)[1]);
    // The same write again (a retry, or anti-entropy with the same rows) changes nothing, digests included.
    const before = store.digests("o1");
    expect(await store.apply("o1", "bkt\0k", live(20), event(20))).toBe(false);
    await store.apply("o1", event(15)[0], event(15)[1]);
    expect(store.digests("o1")).toEqual(before);
    // Rows and digests agree with a store that got the same rows one by one.
    const other = await openIndexStore(path.join(root, "other"), { deletesAreFinal });
    for (const [row, e] of [["bkt\0k", live(20)], event(20), event(15)] as Array<[string, IndexEntry]>) await other.apply("o1", row, e);
    expect(other.digests("o1")).toEqual(store.digests("o1"));
    expect(await other.rowsIn("o1")).toEqual(await store.rowsIn("o1"));
    await other.close();
  });
});
