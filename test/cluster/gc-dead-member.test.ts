// A member that is gone for good does not stop garbage collection: once it has left the
// live ring (the repair delay) and its shards are repaired, GC asks the remaining members
// only, and an overwritten object's old chunks are collected on every live peer.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import path from "node:path";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, locate, mustCreateBucket, mustGet, mustPut, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const CHUNK = 64 * 1024;
const REPAIR_DELAY_MS = 1000;
const GC_GRACE_MS = 1000;
const BUCKET = "gc-dead";

const onDisk = (c: Cluster, i: number, chunk: string) => existsSync(path.join(c.peers[i].dataDir, "chunks", chunk.slice(0, 2), chunk));

test("a member killed for good: after the repair delay and shard repair, an overwritten object's old chunks are collected", async () => {
  await withCluster(4, { topology: "star", config: { chunkSize: CHUNK, repairDelayMs: REPAIR_DELAY_MS, repair: { gcGraceMs: GC_GRACE_MS } } }, async (c) => {
    const all = [0, 1, 2, 3];
    await c.waitFor("all alive", () => c.allSee(all, all, "alive"));
    await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
    const v1 = seededBytes(3 * CHUNK + 17, c.seed);
    await mustPut(c.peer(0).httpUrl, BUCKET, "obj", v1);
    const oldChunks = (await locate(c.peer(0).httpUrl, BUCKET, "obj")).chunks.map((ch) => ch.id);

    await c.kill(3);
    const killedAt = Date.now();
    const live = [0, 1, 2];
    const v2 = seededBytes(2 * CHUNK + 5, c.seed + 1);
    await mustPut(c.peer(1).httpUrl, BUCKET, "obj", v2);
    await c.waitFor("the killed member dead everywhere", () => c.allSee(live, [3], "dead"), 10_000);

    // GC waits for the dead member while it is still in the ring, then goes on without it.
    const reasons = new Set<string>();
    const collectedMs = await c.waitFor(
      "the old chunks collected on every live peer",
      async () => {
        for (const i of live) {
          const skipped = (await clusterStatus(c.peer(i).httpUrl)).gc.skipped;
          if (skipped) reasons.add(skipped.replace(/:.*/, ""));
        }
        return live.every((i) => oldChunks.every((ch) => !onDisk(c, i, ch)));
      },
      20_000,
      200,
    );
    console.log(`old chunks collected ${Date.now() - killedAt} ms after the kill (${collectedMs} ms after it was seen dead); GC said meanwhile: ${[...reasons].join(" | ") || "nothing"}`);
    for (const i of live) {
      const s = await clusterStatus(c.peer(i).httpUrl);
      expect(s.gc.skipped).toBeUndefined();
      expect(sameBytes(await mustGet(c.peer(i).httpUrl, BUCKET, "obj"), v2)).toBe(true);
    }
    // The new version's chunks are all still there, on their live owners.
    const located = await locate(c.peer(0).httpUrl, BUCKET, "obj");
    for (const ch of located.chunks) expect(ch.holders.filter((h) => h !== c.peers[3].id).length).toBeGreaterThanOrEqual(2);
  });
}, 45_000);
