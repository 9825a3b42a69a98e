// The shard progress webhook delivery and write-through share (src/changes/shard-progress.ts),
// against a fake log and index: the shards a peer takes, a batch cut in id order across
// shards, positions that move only past handled events (never past a failed one), rows read
// on take-up and written back, and positions moved past nothing written only now and then.
import { expect, test } from "bun:test";
import type { ShardsRead } from "../../src/changes/log.ts";
import { checkFilter, type LoggedEvent } from "../../src/changes/records.ts";
import { createShardProgress } from "../../src/changes/shard-progress.ts";
import { startPosition } from "../../src/changes/targets.ts";
import type { IndexEntry } from "../../src/metadata/types.ts";
import { createLogger } from "../../src/util/log.ts";

const SHARDS = ["o0", "o1", "o2"];
const ROW = "progress-row";
const SINCE = 1_700_000_000_000;
const ALL = checkFilter({});
const idAt = (t: number) => `${String(SINCE + t).padStart(13, "0")}-000000-p`;

function setup(opts: { dead?: string[]; events?: number } = {}) {
  // Shard o<i % 3> holds event i; the log is settled to idAt(10_000).
  const events = Array.from({ length: opts.events ?? 12 }, (_, i) => ({ id: idAt(i + 1), bucket: "b", shard: SHARDS[i % 3], event: { name: "ObjectCreated:Put", key: `k${i}` } as LoggedEvent }));
  const rows = new Map<string, IndexEntry>();
  const writes: string[] = [];
  let now = 0;
  const progress = createShardProgress({
    self: "A",
    index: {
      read: async (shard: string, row: string) => rows.get(`${shard}|${row}`) ?? null,
      write: async (shard: string, row: string, entry: IndexEntry) => {
        writes.push(shard);
        rows.set(`${shard}|${row}`, entry);
      },
    },
    changes: {
      shards: () => SHARDS,
      async readShards(_bucket, after, o): Promise<ShardsRead> {
        const out: ShardsRead["events"] = [];
        const reached = new Map<string, string>();
        for (const [shard, from] of after) {
          const mine = events.filter((e) => e.shard === shard && e.id > from).slice(0, o.limit);
          out.push(...mine);
          reached.set(shard, mine.length === o.limit ? mine[mine.length - 1].id : idAt(10_000));
        }
        return { events: out.sort((a, b) => (a.id < b.id ? -1 : 1)), reached };
      },
    },
    // A is first of o0 and o1; o2's first replica is B.
    placement: { shardReplicas: (s) => (s === "o2" ? ["B", "A", "C"] : ["A", "B", "C"]) },
    isAlive: (p) => !(opts.dead ?? []).includes(p),
    stamp: () => `${String(1_800_000_000_000 + writes.length).padStart(13, "0")}-000000-A`,
    log: createLogger("test", () => {}, "error"),
    signal: new AbortController().signal,
    clock: () => now,
  });
  return { progress, rows, writes, events, advanceClock: (ms: number) => (now += ms) };
}

test("a peer takes the shards it is first live replica of, from their rows or from the start", async () => {
  const s = setup();
  s.rows.set(`o1|${ROW}`, { ts: "x", value: { position: idAt(5), since: SINCE, lastSuccessMs: 7 } });
  const c = s.progress.fresh("b", "test", ROW, SINCE);
  await s.progress.takeUp(c);
  expect([...c.shards.keys()].sort()).toEqual(["o0", "o1"]);
  expect(c.shards.get("o0")!.position).toBe(startPosition(SINCE));
  expect(c.shards.get("o1")!.position).toBe(idAt(5));
  expect(c.lastSuccessMs).toBe(7);

  // B dies: A takes o2 up too; B comes back: A lets it go.
  const t = setup({ dead: ["B"] });
  const d = t.progress.fresh("b", "test", ROW, SINCE);
  await t.progress.takeUp(d);
  expect([...d.shards.keys()].sort()).toEqual(SHARDS);
  // A row of another `since` (a target re-created under the same id) is not this consumer's.
  t.rows.set(`o0|${ROW}`, { ts: "x", value: { position: idAt(9), since: SINCE + 1, lastSuccessMs: 0 } });
  const e = t.progress.fresh("b", "test", ROW, SINCE);
  await t.progress.takeUp(e);
  expect(e.shards.get("o0")!.position).toBe(startPosition(SINCE));
});

test("a batch follows id order, and a shard moves past its batch events, or to just before its first failed one", async () => {
  const s = setup({ dead: ["B"] });
  const c = s.progress.fresh("b", "test", ROW, SINCE);
  await s.progress.takeUp(c);
  const next = await s.progress.nextBatch(c, 4, ALL);
  expect(next.batch.map((e) => e.id)).toEqual([1, 2, 3, 4].map(idAt));
  // Event 2 (shard o1) failed: o1 stays before it; o0 moves past 4 (its last in the batch, more left
  // out); o2 past 3.
  const moved = s.progress.advance(c, next, [{ shard: "o1", id: idAt(2) }]);
  expect([...moved].sort()).toEqual(["o0", "o2"]);
  expect(c.shards.get("o0")!.position).toBe(idAt(4));
  expect(c.shards.get("o1")!.position).toBe(startPosition(SINCE));
  expect(c.shards.get("o2")!.position).toBe(idAt(3));

  // Everything handled until the log is empty: every event once a batch, in order, none skipped.
  const seen: string[] = [];
  for (let round = 0; round < 20; round++) {
    const n = await s.progress.nextBatch(c, 4, ALL);
    if (!n.batch.length) break;
    seen.push(...n.batch.map((e) => e.id));
    s.progress.advance(c, n);
  }
  expect(seen.sort()).toEqual([idAt(2), ...[5, 6, 7, 8, 9, 10, 11, 12].map(idAt)].sort());
});

test("persist writes each shard's row; positions moved past nothing are written at most every 30 s", async () => {
  const s = setup({ events: 0 });
  const c = s.progress.fresh("b", "test", ROW, SINCE);
  await s.progress.takeUp(c);
  c.lastError = { message: "boom", atMs: 3 };
  await s.progress.persist(c, ["o0"]);
  expect(s.rows.get(`o0|${ROW}`)!.value).toEqual({ position: startPosition(SINCE), since: SINCE, lastSuccessMs: 0, lastError: { message: "boom", atMs: 3 } });

  const empty = await s.progress.nextBatch(c, 4, ALL);
  expect(empty.batch).toEqual([]);
  const before = s.writes.length;
  await s.progress.movePastNothing(c, empty.read);
  expect(c.shards.get("o0")!.position).toBe(idAt(10_000));
  expect(s.writes.length).toBe(before);
  s.advanceClock(30_000);
  await s.progress.movePastNothing(c, empty.read);
  expect(s.writes.slice(before).sort()).toEqual(["o0", "o1"]);
  expect((s.rows.get(`o1|${ROW}`)!.value as { position: string }).position).toBe(idAt(10_000));
});
