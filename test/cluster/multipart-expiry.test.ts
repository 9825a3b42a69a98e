// Incomplete multipart uploads expire, as S3's AbortIncompleteMultipartUpload lifecycle
// rule does: on a 3-peer mesh with a 2 s age and short GC, an abandoned upload leaves
// ListMultipartUploads soon after its age and its parts' chunks leave every peer's disk,
// while a younger upload and a completed object stay whole. And abort against Complete of
// the same upload, sent at once through two peers: exactly one wins, and a completed
// object's bytes outlive GC.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import fs from "node:fs";
import path from "node:path";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, locate, mustCreateBucket, request, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import { bodyBytes, s3Client, sdkFailure } from "../harness/s3.ts";

const CHUNK = 64 * 1024;
const AGE_MS = 2000;
const GC_GRACE_MS = 500;
const GC_INTERVAL_MS = 250;
const BUCKET = "mpu-expiry";
let c: Cluster;
let s3: S3Client[] = [];

/** Every chunk id on peer i's disk. */
function chunksOn(i: number): Set<string> {
  const dir = path.join(c.peers[i].dataDir, "chunks");
  const out = new Set<string>();
  for (const sub of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of fs.readdirSync(path.join(dir, sub))) out.add(f);
  }
  return out;
}
const chunksEverywhere = () => new Set([0, 1, 2].flatMap((i) => [...chunksOn(i)]));
const onAnyDisk = (ids: string[]) => ids.filter((id) => [0, 1, 2].some((i) => chunksOn(i).has(id)));

/** Chunk ids that appeared on some disk while `work` ran. */
async function newChunks(work: () => Promise<unknown>): Promise<string[]> {
  const before = chunksEverywhere();
  await work();
  return [...chunksEverywhere()].filter((id) => !before.has(id));
}

async function startUpload(client: S3Client, key: string, parts: Uint8Array[]): Promise<{ uploadId: string; etags: string[] }> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const etags: string[] = [];
  for (const [n, body] of parts.entries()) etags.push((await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: n + 1, Body: body }))).ETag!);
  return { uploadId: UploadId!, etags };
}

const listedIds = async (i: number) => ((await s3[i].send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).map((u) => u.UploadId);

async function getBytes(i: number, key: string): Promise<Uint8Array> {
  return bodyBytes((await s3[i].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body);
}

beforeAll(async () => {
  c = await startConverged(3, { config: { chunkSize: CHUNK, metricsPublic: true, repair: { multipartExpiryMs: AGE_MS, gcGraceMs: GC_GRACE_MS, gcIntervalMs: GC_INTERVAL_MS } } });
  s3 = [0, 1, 2].map((i) => s3Client(c.peer(i).s3Url));
  await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
}, 30_000);

afterAll(async () => {
  for (const client of s3) client.destroy();
  await teardownCluster(c);
}, 30_000);

describe("multipart expiry", () => {
  test("abort and Complete of one upload sent at once through two peers: exactly one wins; a completed object's bytes outlive GC", async () => {
    const N = 6;
    const bodies = Array.from({ length: N }, (_, n) => seededBytes(2 * CHUNK + 100 + n, c.seed + 100 + n));
    const uploads: Array<{ key: string; uploadId: string; etag: string; chunks: string[] }> = [];
    for (let n = 0; n < N; n++) {
      const key = `race-${n}`;
      let started!: { uploadId: string; etags: string[] };
      const chunks = await newChunks(async () => (started = await startUpload(s3[n % 3], key, [bodies[n]])));
      uploads.push({ key, uploadId: started.uploadId, etag: started.etags[0], chunks });
    }
    const outcomes = await Promise.all(
      uploads.map(async (u, n) => {
        // Staggered aborts: the first ones race the Complete head on, later ones meet it further along.
        const complete = s3[n % 3].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: u.key, UploadId: u.uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: u.etag }] } }));
        const abort = Bun.sleep(n * 40).then(() => s3[(n + 1) % 3].send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.key, UploadId: u.uploadId })));
        const [completed, aborted] = await Promise.allSettled([complete, abort]);
        // The loser is told the upload does not exist (any other failure fails the test).
        for (const r of [completed, aborted]) if (r.status === "rejected") expect((r.reason as Error).name).toBe("NoSuchUpload");
        return { completed: completed.status === "fulfilled", aborted: aborted.status === "fulfilled" };
      }),
    );
    console.log(`race outcomes: ${outcomes.filter((o) => o.completed).length} completed, ${outcomes.filter((o) => o.aborted).length} aborted of ${N}`);
    for (const o of outcomes) expect(Number(o.completed) + Number(o.aborted)).toBe(1);
    for (const i of [0, 1, 2]) {
      const listed = await listedIds(i);
      for (const u of uploads) expect(listed).not.toContain(u.uploadId);
    }

    // Past GC's grace and a few of its passes: aborted uploads' chunks gone, completed objects whole.
    const startedMs = Date.now();
    const abortedChunks = uploads.filter((_, n) => outcomes[n].aborted).flatMap((u) => u.chunks);
    await c.waitFor("the aborted uploads' chunks collected", () => onAnyDisk(abortedChunks).length === 0, 10_000);
    await Bun.sleep(Math.max(0, GC_GRACE_MS + 4 * GC_INTERVAL_MS - (Date.now() - startedMs)));
    for (const [n, u] of uploads.entries()) {
      if (outcomes[n].completed) {
        expect(onAnyDisk(u.chunks).sort()).toEqual([...u.chunks].sort());
        for (const i of [0, 1, 2]) expect(sameBytes(await getBytes(i, u.key), bodies[n])).toBe(true);
      } else {
        expect((await sdkFailure(`GET ${u.key}`, getBytes(0, u.key))).name).toBe("NoSuchKey");
      }
    }
  }, 20_000);

  test("an upload left incomplete past the age leaves every listing and its chunks every disk; a younger upload and a completed object stay", async () => {
    // The completed object: one part, completed at once.
    const whole = seededBytes(3 * CHUNK + 7, c.seed + 1);
    const done = await startUpload(s3[0], "completed", [whole]);
    await s3[0].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "completed", UploadId: done.uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: done.etags[0] }] } }));
    const completedChunks = (await locate(c.peer(0).httpUrl, BUCKET, "completed")).chunks.map((ch) => ch.id);

    // The abandoned one: two parts through peer 1, never completed.
    let abandoned!: { uploadId: string };
    const abandonedAt = Date.now();
    const abandonedChunks = await newChunks(async () => (abandoned = await startUpload(s3[1], "abandoned", [seededBytes(2 * CHUNK, c.seed + 2), seededBytes(2 * CHUNK + 1, c.seed + 3)])));
    expect(abandonedChunks.length).toBeGreaterThanOrEqual(4);
    for (const i of [0, 1, 2]) expect(await listedIds(i)).toContain(abandoned.uploadId);

    // A younger one, started half an age later.
    await Bun.sleep(AGE_MS / 2);
    let young!: { uploadId: string };
    const youngChunks = await newChunks(async () => (young = await startUpload(s3[2], "young", [seededBytes(CHUNK + 3, c.seed + 4)])));
    const youngAt = Date.now();

    await c.waitFor("the abandoned upload out of every listing", async () => {
      for (const i of [0, 1, 2]) if ((await listedIds(i)).includes(abandoned.uploadId)) return false;
      return true;
    }, 10_000, 50);
    const leftMs = Date.now() - abandonedAt;
    // The younger upload, not yet of age, is untouched: listed, its part there, its chunks on disk.
    expect(Date.now() - youngAt).toBeLessThan(AGE_MS);
    for (const i of [0, 1, 2]) expect(await listedIds(i)).toContain(young.uploadId);
    const parts = await s3[0].send(new ListPartsCommand({ Bucket: BUCKET, Key: "young", UploadId: young.uploadId }));
    expect((parts.Parts ?? []).map((p) => p.PartNumber)).toEqual([1]);
    expect(onAnyDisk(youngChunks).length).toBe(youngChunks.length);
    const err = await sdkFailure("ListParts of the expired upload", s3[2].send(new ListPartsCommand({ Bucket: BUCKET, Key: "abandoned", UploadId: abandoned.uploadId })));
    expect(err.name).toBe("NoSuchUpload");

    await c.waitFor("the abandoned upload's chunks gone from every disk", () => onAnyDisk(abandonedChunks).length === 0, 10_000, 50);
    const goneMs = Date.now() - abandonedAt;
    console.log(`abandoned upload (age ${AGE_MS} ms): out of the listings ${leftMs} ms after it was created (${leftMs - AGE_MS} ms past the age), its chunks gone from every disk after ${goneMs} ms (GC grace ${GC_GRACE_MS} ms)`);

    // The completed object is whole, through every peer.
    expect(onAnyDisk(completedChunks).sort()).toEqual([...completedChunks].sort());
    for (const i of [0, 1, 2]) expect(sameBytes(await getBytes(i, "completed"), whole)).toBe(true);

    // Its progress record says it expired, through a peer other than the one it went to.
    const records = JSON.parse(new TextDecoder().decode((await request(c.peer(2).httpUrl, "GET", "/uploads?limit=200")).body)) as { uploads: Array<{ key: string; state: string; error?: string }> };
    expect(records.uploads.find((u) => u.key === "abandoned")).toMatchObject({ state: "fail", error: expect.stringMatching(/^expired: incomplete for /) });
    expect(records.uploads.find((u) => u.key === "young")?.state).toBe("inprogress");

    // Aborted once across the mesh: one log line naming it, counted in status and metrics.
    const lines = c.peers.flatMap((p) => p.logs).filter((l) => l.includes(`aborted incomplete multipart upload ${abandoned.uploadId}`));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`of ${BUCKET}/abandoned: started `);
    const statuses = await Promise.all([0, 1, 2].map((i) => clusterStatus(c.peer(i).httpUrl)));
    for (const s of statuses) {
      expect(s.workers.multipartExpiry?.ageMs).toBe(AGE_MS);
      expect(s.workers.multipartExpiry?.lastPassAtMs).toBeGreaterThan(abandonedAt);
    }
    const counted = statuses.reduce((n, s) => n + (s.workers.multipartExpiry?.uploadsAborted ?? 0), 0);
    expect(counted).toBeGreaterThanOrEqual(1);
    const scraped = await Promise.all([0, 1, 2].map(async (i) => new TextDecoder().decode((await request(c.peer(i).httpUrl, "GET", "/metrics")).body)));
    const metric = scraped.reduce((n, text) => n + Number(/^meshstore_multipart_uploads_expired_total (\d+)$/m.exec(text)?.[1] ?? NaN), 0);
    expect(metric).toBeGreaterThanOrEqual(counted);
  }, 20_000);
});
