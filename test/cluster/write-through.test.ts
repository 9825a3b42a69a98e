// Write-through origins on a real 3-peer mesh (issue 15), against the in-repo fake of Swift's
// REST API with a failure switch: a remote that fails its first 5 PUTs still ends up with
// every object (bytes, content type and user metadata checked at the remote) written through
// the native API and S3 (PutObject, CopyObject, a multipart upload), and with the deletes
// (native DELETE and S3 DeleteObjects) applied; a miss is not pulled back from the remote; the queue shows in /cluster/status and GET /buckets/{b}/origin;
// changes queued while the remote refuses them survive a crash and restart of a peer and of
// every peer in turn, and arrive once the remote takes writes again. Retries are shortened
// through config (events.writeThroughRetryBaseMs, writeThroughMaxRetryMs).
import { CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, DeleteObjectsCommand, PutObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { startFakeSwift, type FakeSwift } from "../harness/fake-swift.ts";
import { json, md5Hex, mustCreateBucket, mustPut, request, statusAndCode } from "../harness/http.ts";
import { s3Client } from "../harness/s3.ts";

const ACCOUNT = { user: "test:tester", key: "write-through-key" };
const CONTAINER = "backup";
const PREFIX = "m/";
let swift: FakeSwift;
let cluster: Cluster;

beforeAll(async () => {
  swift = startFakeSwift(ACCOUNT.user, ACCOUNT.key, [CONTAINER]);
  cluster = await startConverged(3, {
    config: { events: { settleMs: 300, webhookPollMs: 100, webhookRefreshMs: 200, writeThroughRetryBaseMs: 100, writeThroughMaxRetryMs: 400 } },
  });
  const r = await putJson(url(0), "/admin/remotes/bk", { type: "swift", endpoint: swift.authUrl, container: CONTAINER, timeoutMs: 5000, credentials: ACCOUNT });
  expect(statusAndCode(r)).toBe("200");
});
afterAll(async () => {
  await teardownCluster(cluster);
  swift.stop();
});

const url = (i: number) => cluster.peer(i).httpUrl;
const putJson = (base: string, path: string, body: unknown) => request(base, "PUT", path, { body: JSON.stringify(body), headers: { "content-type": "application/json" } });

/** What the remote should hold: remote name -> bytes, content type, metadata. */
type Expected = Map<string, { body: Uint8Array; contentType: string; meta: Record<string, string> }>;

/** Does the remote hold exactly `want` (names, bytes, content type, metadata)? Says what differs. */
function remoteDiff(want: Expected): string | null {
  const names = swift.names(CONTAINER);
  const wanted = [...want.keys()].sort();
  if (JSON.stringify(names) !== JSON.stringify(wanted)) return `names ${JSON.stringify(names)} != ${JSON.stringify(wanted)}`;
  for (const [name, w] of want) {
    const got = swift.stored(CONTAINER, name)!;
    if (md5Hex(got.body) !== md5Hex(w.body)) return `${name}: other bytes`;
    if (got.contentType !== w.contentType) return `${name}: content type ${got.contentType}`;
    if (JSON.stringify(got.meta) !== JSON.stringify(w.meta)) return `${name}: meta ${JSON.stringify(got.meta)}`;
  }
  return null;
}

async function waitForRemote(want: Expected, timeoutMs: number): Promise<void> {
  let last: string | null = "not checked";
  await cluster.waitFor("the remote to hold every object", () => (last = remoteDiff(want)) === null, timeoutMs, 100).catch((err: Error) => {
    throw new Error(`${err.message}: ${last}`);
  });
}

const statuses = () => Promise.all(cluster.running().map((i) => cluster.getJson<{ writeThrough?: { buckets: number; pending: number; applied: number; failed: number } }>(i, "/cluster/status")));

test("a remote that fails its first 5 PUTs still ends up with every object and every delete; the queue shows in status", async () => {
  await mustCreateBucket(url(0), "wt-one");
  const attach = await putJson(url(1), "/buckets/wt-one/origin", { remote: "bk", prefix: PREFIX, mode: "write-through" });
  expect(statusAndCode(attach)).toBe("200");
  expect(json(attach).mode).toBe("write-through");
  swift.failPuts(5);
  const want: Expected = new Map();
  for (let i = 0; i < 12; i++) {
    const body = crypto.getRandomValues(new Uint8Array(1000 + i * 7919));
    const meta = { n: String(i), owner: "ada" };
    await mustPut(url(i % 3), "wt-one", `dir/obj-${i}.bin`, body, { "content-type": `application/x-test-${i}`, "x-meta-n": meta.n, "x-meta-owner": meta.owner });
    want.set(`${PREFIX}dir/obj-${i}.bin`, { body, contentType: `application/x-test-${i}`, meta });
  }
  // Overwritten: the remote ends with the second version only.
  const v2 = new TextEncoder().encode("second version");
  await mustPut(url(2), "wt-one", "dir/obj-0.bin", v2, { "content-type": "text/plain" });
  want.set(`${PREFIX}dir/obj-0.bin`, { body: v2, contentType: "text/plain", meta: {} });
  // S3: a PutObject and a CopyObject.
  const s3 = s3Client(cluster.peer(1).s3Url);
  const s3Body = new TextEncoder().encode("through the S3 API");
  await s3.send(new PutObjectCommand({ Bucket: "wt-one", Key: "s3/put.txt", Body: s3Body, ContentType: "text/x-s3", Metadata: { via: "s3" } }));
  want.set(`${PREFIX}s3/put.txt`, { body: s3Body, contentType: "text/x-s3", meta: { via: "s3" } });
  await s3.send(new CopyObjectCommand({ Bucket: "wt-one", Key: "s3/copy.txt", CopySource: "wt-one/s3/put.txt" }));
  want.set(`${PREFIX}s3/copy.txt`, { body: s3Body, contentType: "text/x-s3", meta: { via: "s3" } });
  // S3 multipart: the completed object goes through as one.
  const part1 = crypto.getRandomValues(new Uint8Array(5 * 1024 * 1024));
  const part2 = new TextEncoder().encode("tail");
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: "wt-one", Key: "s3/multi.bin", ContentType: "application/x-multi", Metadata: { parts: "2" } }));
  const etags = [];
  for (const [n, body] of [part1, part2].entries()) etags.push((await s3.send(new UploadPartCommand({ Bucket: "wt-one", Key: "s3/multi.bin", UploadId: up.UploadId, PartNumber: n + 1, Body: body }))).ETag);
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: "wt-one", Key: "s3/multi.bin", UploadId: up.UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
  want.set(`${PREFIX}s3/multi.bin`, { body: Buffer.concat([part1, part2]), contentType: "application/x-multi", meta: { parts: "2" } });
  await waitForRemote(want, 12_000);
  expect((await statuses()).reduce((n, s) => n + (s.writeThrough?.failed ?? 0), 0)).toBeGreaterThanOrEqual(5);

  // Deletes: native DELETE and S3 DeleteObjects reach the remote too.
  expect((await request(url(0), "DELETE", "/buckets/wt-one/objects/dir/obj-3.bin")).status).toBe(204);
  await s3.send(new DeleteObjectsCommand({ Bucket: "wt-one", Delete: { Objects: [{ Key: "dir/obj-4.bin" }, { Key: "s3/copy.txt" }] } }));
  for (const k of ["dir/obj-3.bin", "dir/obj-4.bin", "s3/copy.txt"]) want.delete(`${PREFIX}${k}`);
  await waitForRemote(want, 8000);

  // A miss in a write-through bucket is a miss: nothing is pulled back from the remote.
  const gets = swift.requests.get("GET") ?? 0;
  expect((await request(url(1), "GET", "/buckets/wt-one/objects/dir/obj-3.bin")).status).toBe(404);
  expect(swift.requests.get("GET") ?? 0).toBe(gets);

  const all = await statuses();
  expect(all.every((s) => s.writeThrough?.buckets === 1)).toBe(true);
  expect(all.reduce((n, s) => n + s.writeThrough!.applied, 0)).toBeGreaterThanOrEqual(want.size + 3);
  const origin = json(await request(url(2), "GET", "/buckets/wt-one/origin"));
  expect(origin.writeThrough.pending).toBe(0);
  expect(origin.writeThrough.failing).toBe(false);
  expect(origin.writeThrough.lastError.message).toContain("500");
}, 30_000);

test("changes queued while the remote refuses them survive peer crashes and restarts, then arrive", async () => {
  await mustCreateBucket(url(0), "wt-two");
  expect(statusAndCode(await putJson(url(0), "/buckets/wt-two/origin", { remote: "bk", prefix: "two/", mode: "write-through" }))).toBe("200");
  // Setting it again in the same mode keeps the queue's place.
  const first = json(await request(url(0), "GET", "/buckets/wt-two/origin"));
  expect(statusAndCode(await putJson(url(1), "/buckets/wt-two/origin", { remote: "bk", prefix: "two/", mode: "write-through", defaultTtlSeconds: 60 }))).toBe("200");
  expect(json(await request(url(2), "GET", "/buckets/wt-two/origin")).writeThroughSinceMs).toBe(first.writeThroughSinceMs);

  swift.failPuts(Infinity);
  const want: Expected = new Map();
  for (const [name, w] of [...(await currentRemote())]) want.set(name, w);
  for (let i = 0; i < 9; i++) {
    const body = crypto.getRandomValues(new Uint8Array(500 + i * 311));
    await mustPut(url(i % 3), "wt-two", `k${i}`, body, { "content-type": "application/octet-stream", "x-meta-i": String(i) });
    want.set(`two/k${i}`, { body, contentType: "application/octet-stream", meta: { i: String(i) } });
  }
  // Pending shows through any peer, with the remote's error.
  await cluster.waitFor("pending and failing in GET origin", async () => {
    const o = json(await request(url(1), "GET", "/buckets/wt-two/origin"));
    return o.writeThrough.pending === 9 && o.writeThrough.failing === true;
  }, 8000);
  await cluster.waitFor("pending in /cluster/status", async () => (await statuses()).reduce((n, s) => n + (s.writeThrough?.pending ?? 0), 0) >= 9, 8000);

  // A crash and restart of one peer, then a graceful restart of another: no worker keeps
  // anything in memory across, so what arrives below came from the replicated rows.
  await cluster.kill(2);
  await cluster.restart(2, 0);
  await cluster.waitFor("every peer sees the others alive", () => cluster.allSee([0, 1, 2], [0, 1, 2], "alive"), 15_000);
  await cluster.restart(0, 1);
  await cluster.waitFor("every peer sees the others alive", () => cluster.allSee([0, 1, 2], [0, 1, 2], "alive"), 15_000);
  expect(swift.names(CONTAINER).filter((n) => n.startsWith("two/"))).toEqual([]);
  swift.failPuts(0);
  await waitForRemote(want, 12_000);
  const o = json(await request(url(0), "GET", "/buckets/wt-two/origin"));
  expect(`${o.writeThrough.pending} ${o.writeThrough.failing}`).toBe("0 false");
}, 40_000);

test("write-through needs a remote that takes writes; bad modes are 400", async () => {
  expect(statusAndCode(await putJson(url(0), "/admin/remotes/ro", { type: "http", endpoint: "http://127.0.0.1:9/" }))).toBe("200");
  await mustCreateBucket(url(0), "wt-three");
  expect(statusAndCode(await putJson(url(0), "/buckets/wt-three/origin", { remote: "ro", mode: "write-through" }))).toBe("400 InvalidArgument");
  expect(statusAndCode(await putJson(url(0), "/buckets/wt-three/origin", { remote: "bk", mode: "write-back" }))).toBe("400 InvalidArgument");
});

/** Everything the remote holds now (objects of the first test stay there). */
async function currentRemote(): Promise<Expected> {
  const out: Expected = new Map();
  for (const name of swift.names(CONTAINER)) out.set(name, swift.stored(CONTAINER, name)!);
  return out;
}
