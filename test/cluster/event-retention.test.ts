// Event retention on a real 3-peer mesh (issue 16), with one object shard so the count
// limit is easy to reason about: past --event-retention-count the oldest events leave
// every replica's log and anti-entropy does not bring them back; past --event-retention
// every event goes, bucket events too. Each replica counts what it dropped in
// /cluster/status (workers.eventRetention) and /metrics.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, errorOf, json, mustCreateBucket, putObject, request, statusAndCode } from "../harness/http.ts";
import { waitFor } from "../harness/wait.ts";

const MAX = 20;
const RETENTION_MS = 6000;
let cluster: Cluster;
beforeAll(async () => {
  cluster = await startConverged(3, {
    config: { indexShards: 1, metricsPublic: true, events: { settleMs: 200, maxPerShard: MAX, retentionMs: RETENTION_MS, retentionIntervalMs: 200 } },
  });
});
afterAll(() => teardownCluster(cluster));

const url = (i: number) => cluster.peer(i).httpUrl;

interface EventRecord {
  eventName: string;
  eventId: string;
  s3: { object: { key: string } };
}

/** The whole log of `bucket` through peer `i`, read up to now. */
async function readLog(i: number, bucket: string): Promise<EventRecord[]> {
  const until = Date.now();
  const events: EventRecord[] = [];
  let cursor = "";
  for (let reads = 0; reads < 500; reads++) {
    const r = await request(url(i), "GET", `/buckets/${bucket}/events?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (r.status !== 200) throw new Error(`events: ${statusAndCode(r)} ${errorOf(r).message}`);
    const page = json<{ events: EventRecord[]; cursor: string }>(r);
    events.push(...page.events);
    cursor = page.cursor;
    if (Number(cursor.slice(0, 13)) > until) return events;
    if (!page.events.length) await Bun.sleep(50);
  }
  throw new Error("the log was not read to now");
}

const retention = async (i: number) => (await clusterStatus(url(i))).workers.eventRetention!;

test("beyond the count per shard, every replica keeps the newest events only, and anti-entropy does not bring the others back; past the age, all go", async () => {
  await mustCreateBucket(url(0), "kept");
  // One at a time, so the log's order is the order written.
  for (let n = 0; n < 50; n++) expect(statusAndCode(await putObject(url(n % 3), "kept", `k${String(n).padStart(2, "0")}`, `v${n}`))).toBe("200");
  const newest = Array.from({ length: MAX }, (_, i) => `k${30 + i}`);

  await waitFor("every replica trimmed the object shard to its count", async () => (await Promise.all([0, 1, 2].map(retention))).every((s) => s.droppedForCount >= 50 - MAX), 10_000);
  for (const i of [0, 1, 2]) {
    const objects = (await readLog(i, "kept")).filter((e) => e.eventName === "ObjectCreated:Put");
    expect(objects.map((e) => e.s3.object.key)).toEqual(newest);
  }
  // Several anti-entropy passes later (every 300 ms here), still only those.
  await Bun.sleep(1500);
  for (const i of [0, 1, 2]) {
    const log = await readLog(i, "kept");
    expect(log.filter((e) => e.eventName === "ObjectCreated:Put").map((e) => e.s3.object.key)).toEqual(newest);
    // The bucket's own event lives in another shard, under its count.
    expect(log.filter((e) => e.eventName === "BucketCreated").length).toBe(1);
  }
  for (const i of [0, 1, 2]) expect((await retention(i)).droppedForCount).toBe(50 - MAX);

  // Past the age, the rest goes from every replica, the bucket's own event too.
  await waitFor("the log is empty past the retention age", async () => (await Promise.all([0, 1, 2].map((i) => readLog(i, "kept")))).every((l) => l.length === 0), RETENTION_MS + 10_000, 250);
  for (const i of [0, 1, 2]) {
    const s = await retention(i);
    expect(s).toMatchObject({ retentionMs: RETENTION_MS, maxPerShard: MAX, droppedForAge: MAX + 1, droppedForCount: 50 - MAX, state: expect.any(String) });
    expect(s.lastPassAtMs).toBeGreaterThan(0);
    const metrics = new TextDecoder().decode((await request(url(i), "GET", "/metrics")).body);
    expect(metrics).toMatch(new RegExp(`^meshstore_events_dropped_total ${50 + 1}$`, "m"));
  }
}, 60_000);
