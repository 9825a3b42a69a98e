// Change events on a real 3-peer mesh (issue 16): 1,000 writes, overwrites and deletes
// through random peers, read from the earliest event with a cursor through random peers
// (and tailed by a consumer while the writes go on): exactly one event per acknowledged
// operation, each key's events in the order they were made.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { deleteObject, json, mapLimit, mustCreateBucket, putObject, request, statusAndCode, errorOf } from "../harness/http.ts";

let cluster: Cluster;
beforeAll(async () => {
  // Marks trail the clock by half a second here (3 s by default), so a tail keeps up quickly.
  cluster = await startConverged(3, { config: { events: { settleMs: 500 } } });
});
afterAll(() => teardownCluster(cluster));

const url = (i: number) => cluster.peer(i).httpUrl;
/** A random running peer. */
const anyPeer = () => {
  const up = cluster.running();
  return url(up[Math.floor(cluster.random() * up.length)]);
};

/** An event as the API answers it (the fields these tests look at). */
interface Record {
  eventName: string;
  eventId: string;
  userIdentity: { principalId: string };
  s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string; sequencer: string } };
}

/** One page of events. */
async function page(base: string, bucket: string, query: string): Promise<{ events: Record[]; cursor: string }> {
  const r = await request(base, "GET", `/buckets/${bucket}/events?${query}`);
  if (r.status !== 200) throw new Error(`events ${query}: ${statusAndCode(r)} ${errorOf(r).message}`);
  return json(r);
}

/** The time now, as an end for readAll: every write acknowledged before it. */
const sinceNow = () => {
  const t = Date.now();
  return () => t;
};

/** Read on from `start` through random peers until the cursor passes the time `until()` gives (once it gives one). */
async function readAll(bucket: string, until: () => number | undefined = sinceNow(), seen: Record[] = [], start = ""): Promise<{ events: Record[]; cursor: string }> {
  let cursor = start;
  for (let reads = 0; reads < 5000; reads++) {
    const limit = 1 + Math.floor(cluster.random() * 200);
    const p = await page(anyPeer(), bucket, `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(p.events.length).toBeLessThanOrEqual(limit);
    seen.push(...p.events);
    expect(p.cursor >= cursor).toBe(true);
    cursor = p.cursor;
    const end = until();
    // The cursor is a position in time: past the end, every acknowledged event has been read.
    if (end !== undefined && Number(cursor.slice(0, 13)) > end) return { events: seen, cursor };
    if (!p.events.length) await Bun.sleep(100);
  }
  throw new Error("the log was not read to its end within 5000 reads");
}

const keyOf = (n: number) => `k/${String(n).padStart(3, "0")}${n % 13 === 0 ? " é+%" : ""}`;

describe("the event log", () => {
  test("1,000 writes, overwrites and deletes through random peers: one event per acknowledged operation, in order per key, also for a consumer tailing meanwhile", async () => {
    const BUCKET = "changes";
    await mustCreateBucket(url(0), BUCKET);
    const random = cluster.random;
    /** Per key, the operations acknowledged, in the order they were made (one at a time per key). */
    const done = new Map<string, string[]>();
    let writesEnded: number | undefined;
    const tail = readAll(BUCKET, () => writesEnded);
    // 200 keys, 5 operations each, in rounds: a round touches every key once, at most 24 at a time.
    for (let round = 0; round < 5; round++) {
      await mapLimit(Array.from({ length: 200 }, (_, i) => i), 24, async (n) => {
        const key = keyOf(n);
        const remove = round > 0 && random() < 0.3;
        const r = remove ? await deleteObject(anyPeer(), BUCKET, key) : await putObject(anyPeer(), BUCKET, key, `v${round}-${n}`);
        if (r.status !== (remove ? 204 : 200)) throw new Error(`${remove ? "DELETE" : "PUT"} ${key}: ${statusAndCode(r)}`);
        done.set(key, [...(done.get(key) ?? []), remove ? "ObjectRemoved:Delete" : `ObjectCreated:Put ${`v${round}-${n}`.length}`]);
      });
    }
    writesEnded = Date.now();
    const expected = [...done.values()].reduce((n, ops) => n + ops.length, 0);
    expect(expected).toBe(1000);

    const check = (events: Record[]) => {
      const objects = events.filter((e) => e.eventName !== "BucketCreated");
      expect(events.filter((e) => e.eventName === "BucketCreated").length).toBe(1);
      expect(new Set(objects.map((e) => e.eventId)).size).toBe(objects.length);
      const got = new Map<string, string[]>();
      for (const e of objects) {
        const key = decodeURIComponent(e.s3.object.key.replace(/\+/g, " "));
        got.set(key, [...(got.get(key) ?? []), e.eventName === "ObjectCreated:Put" ? `${e.eventName} ${e.s3.object.size}` : e.eventName]);
        expect(e.s3.bucket.name).toBe(BUCKET);
        expect(e.userIdentity.principalId).toBeString();
      }
      expect(got).toEqual(done);
      // Ids (and so sequencers) only grow along the log.
      for (let i = 1; i < events.length; i++) expect(events[i].eventId > events[i - 1].eventId).toBe(true);
    };
    const fromEarliest = await readAll(BUCKET);
    check(fromEarliest.events);
    const tailed = await tail;
    check(tailed.events);

    // From the end, nothing more; one more write shows up after that cursor, alone.
    expect((await page(url(2), BUCKET, `cursor=${encodeURIComponent(fromEarliest.cursor)}`)).events).toEqual([]);
    expect(statusAndCode(await putObject(url(1), BUCKET, "late", "x"))).toBe("200");
    const after = await readAll(BUCKET, sinceNow(), [], fromEarliest.cursor);
    expect(after.events.map((e) => `${e.eventName} ${e.s3.object.key}`)).toEqual(["ObjectCreated:Put late"]);
  }, 120_000);

  test("filters by type, prefix and suffix; bucket events in the same log; a deleted bucket's log stays readable with a cursor", async () => {
    const BUCKET = "filtered";
    await mustCreateBucket(url(1), BUCKET);
    for (const key of ["a/1.jpg", "a/2.txt", "b/3.jpg"]) expect(statusAndCode(await putObject(anyPeer(), BUCKET, key, "x"))).toBe("200");
    expect(statusAndCode(await deleteObject(anyPeer(), BUCKET, "a/1.jpg"))).toBe("204");
    expect(statusAndCode(await deleteObject(anyPeer(), BUCKET, "a/2.txt"))).toBe("204");
    expect(statusAndCode(await deleteObject(anyPeer(), BUCKET, "b/3.jpg"))).toBe("204");
    const wrote = Date.now();
    const names = async (query: string) => {
      const all: Record[] = [];
      let cursor = "";
      for (;;) {
        const p = await page(anyPeer(), BUCKET, `${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        all.push(...p.events);
        cursor = p.cursor;
        if (Number(cursor.slice(0, 13)) > wrote) return all.map((e) => `${e.eventName} ${e.s3.object.key}`);
        if (!p.events.length) await Bun.sleep(100);
      }
    };
    expect(await names("types=s3:ObjectCreated:*&prefix=a/")).toEqual(["ObjectCreated:Put a%2F1.jpg", "ObjectCreated:Put a%2F2.txt"]);
    expect(await names("types=ObjectRemoved:Delete&suffix=.jpg")).toEqual(["ObjectRemoved:Delete a%2F1.jpg", "ObjectRemoved:Delete b%2F3.jpg"]);
    expect(await names("types=BucketCreated,BucketRemoved")).toEqual(["BucketCreated "]);
    const before = await page(url(0), BUCKET, "limit=1");
    expect(statusAndCode(await request(url(2), "DELETE", `/buckets/${BUCKET}`))).toBe("204");
    const rest = await readAll(BUCKET, sinceNow(), [], before.cursor);
    expect(rest.events.map((e) => e.eventName)).toEqual(["ObjectCreated:Put", "ObjectCreated:Put", "ObjectCreated:Put", "ObjectRemoved:Delete", "ObjectRemoved:Delete", "ObjectRemoved:Delete", "BucketRemoved"]);
  }, 60_000);

  test("a consumer reads on with its cursor while a peer is down and after it returns, through the returned peer too: nothing missed, nothing twice", async () => {
    const BUCKET = "through-a-death";
    await mustCreateBucket(url(0), BUCKET);
    const expected: string[] = [];
    const write = async (peers: number[], from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        const r = await putObject(url(peers[i % peers.length]), BUCKET, `k${i}`, "x");
        if (r.status !== 200) throw new Error(`PUT k${i}: ${statusAndCode(r)}`);
        expected.push(`k${i}`);
      }
    };
    await write([0, 1, 2], 0, 60);
    const first = await readAll(BUCKET);
    await cluster.kill(2);
    await write([0, 1], 60, 60);
    const seen: Record[] = [...first.events];
    const during = await readAll(BUCKET, sinceNow(), seen, first.cursor);
    await cluster.restart(2);
    await write([0, 1, 2], 120, 60);
    const peers = () => [0, 1, 2].map(url);
    // Read on through the returned peer only: it serves the whole log (its quorum partner fills what it missed).
    let cursor = during.cursor;
    const end = Date.now();
    for (let reads = 0; reads < 500 && Number(cursor.slice(0, 13)) <= end; reads++) {
      const p = await page(peers()[2], BUCKET, `limit=50&cursor=${encodeURIComponent(cursor)}`);
      seen.push(...p.events);
      cursor = p.cursor;
      if (!p.events.length) await Bun.sleep(100);
    }
    expect(seen.filter((e) => e.eventName === "ObjectCreated:Put").map((e) => e.s3.object.key)).toEqual(expected);
    expect(new Set(seen.map((e) => e.eventId)).size).toBe(seen.length);
  }, 60_000);
});
