// External buckets in the index (issue 15) on a real 3-peer mesh: 2,000 blobs with metadata on
// an Azurite container are imported by POST /buckets/{b}/origin/sync (metadata only); the
// mesh's listing then matches the container's; a HEAD answers from the import, a GET fetches
// the blob once (counted by a proxy in front of Azurite) and keeps it, a Range GET reads only
// its span with If-Match on the imported ETag and keeps nothing; blobs deleted at the
// remote are removed by the next sync, objects written in the mesh stay; a sync with nothing
// changed writes nothing. The probe route against s3rver (ok) and a dead endpoint (ok: false).
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startAzurite, startS3rver, type Emulator } from "../harness/emulators.ts";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { json, mustCreateBucket, mustPut, request, statusAndCode } from "../harness/http.ts";
import { freePort } from "../harness/ports.ts";
import { s3Client } from "../harness/s3.ts";
import { CopyObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";

// Azurite's well-known development account (public, in Azure's docs).
const account = { accountName: "devstoreaccount1", accountKey: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==" };
const N = 2000;
const keyOf = (i: number) => `photos/${String(i).padStart(4, "0")}.txt`;
const bodyOf = (i: number) => `blob number ${i}\n`;

let cluster: Cluster;
let azurite: Emulator;
let container: ReturnType<BlobServiceClient["getContainerClient"]>;
/** Blob reads (GET of a blob, not a listing) that reached Azurite through the proxy, by path. */
const blobGets = new Map<string, number>();
let proxy: ReturnType<typeof Bun.serve>;
/** Ranged blob reads: path, the range asked, whether If-Match came with it. */
const rangedGets: Array<{ path: string; range: string; ifMatch: boolean }> = [];
/** Listing pages asked of Azurite; each made this many ms slower when set (so a sync can be cut mid-way). */
let lists = 0;
let slowLists = 0;

beforeAll(async () => {
  [cluster, azurite] = await Promise.all([startConverged(3), startAzurite()]);
  const target = new URL(azurite.endpoint);
  // A counting proxy in front of Azurite (shared-key signatures do not cover the host).
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      if (u.searchParams.get("comp") === "list") {
        lists++;
        if (slowLists) await Bun.sleep(slowLists);
      }
      if (req.method === "GET" && !u.searchParams.has("comp") && !u.searchParams.has("restype")) blobGets.set(u.pathname, (blobGets.get(u.pathname) ?? 0) + 1);
      const range = req.headers.get("x-ms-range") ?? req.headers.get("range");
      if (req.method === "GET" && range) rangedGets.push({ path: u.pathname, range, ifMatch: req.headers.has("if-match") });
      u.host = target.host;
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      return fetch(u, { method: req.method, headers: req.headers, body, redirect: "manual" });
    },
  });
  const service = new BlobServiceClient(`${azurite.endpoint}/${account.accountName}`, new StorageSharedKeyCredential(account.accountName, account.accountKey));
  container = service.getContainerClient("ext");
  await container.create();
  const indexes = Array.from({ length: N }, (_, i) => i);
  for (let at = 0; at < N; at += 100) {
    await Promise.all(
      indexes.slice(at, at + 100).map((i) =>
        container.getBlockBlobClient(keyOf(i)).upload(bodyOf(i), bodyOf(i).length, { metadata: { camera: i % 2 ? "nikon" : "canon", n: String(i) }, blobHTTPHeaders: { blobContentType: "text/plain" } }),
      ),
    );
  }
}, 60_000);

afterAll(async () => {
  proxy?.stop(true);
  await Promise.all([teardownCluster(cluster), azurite?.stop()]);
});

const url = (i: number) => cluster.peer(i).httpUrl;
const postJson = (base: string, path: string, body?: unknown) => request(base, "POST", path, { body: JSON.stringify(body ?? {}), headers: { "content-type": "application/json" } });
const putJson = (base: string, path: string, body: unknown) => request(base, "PUT", path, { body: JSON.stringify(body), headers: { "content-type": "application/json" } });

/** Start a sync through `via` and wait (reading through another peer) until it ends; its final state. */
async function syncAndWait(via: number, watch: number) {
  const r = await postJson(url(via), "/buckets/ext/origin/sync");
  expect(statusAndCode(r)).toBe("202");
  expect(json(r).state).toBe("running");
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await Bun.sleep(100)) {
    const s = json(await request(url(watch), "GET", "/buckets/ext/origin")).sync;
    if (s && s.state !== "running" && s.startedMs === json(r).startedMs) return s;
  }
  throw new Error("the sync did not end in time");
}

/** Every key (and size) the mesh lists for the bucket. */
async function meshListing(base: string, bucket = "ext"): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const page = json(await request(base, "GET", `/buckets/${bucket}/objects?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
    for (const o of page.objects) out.set(o.key, o.size);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}

async function containerListing(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const b of container.listBlobsFlat()) out.set(b.name, b.properties.contentLength ?? 0);
  return out;
}

test("an Azurite container of 2,000 blobs is imported, read once on first GET, and follows the remote's deletions; a sync with no change writes nothing", async () => {
  expect(statusAndCode(await putJson(url(0), "/admin/remotes/az", { type: "azure", endpoint: `http://127.0.0.1:${proxy.port}/${account.accountName}`, container: "ext", credentials: account }))).toBe("200");
  await mustCreateBucket(url(0), "ext");
  expect(statusAndCode(await putJson(url(1), "/buckets/ext/origin", { remote: "az" }))).toBe("200");
  // A search schema set first: imported objects are indexed by their remote metadata as they are written.
  expect(statusAndCode(await putJson(url(0), "/buckets/ext/schema", { fields: { camera: "string", n: "number" } }))).toBe("200");
  // Written in the mesh itself: a sync never removes it.
  await mustPut(url(2), "ext", "photos/local-only.txt", "mine");

  const first = await syncAndWait(0, 1);
  expect(first).toMatchObject({ state: "done", listed: N, imported: N, updated: 0, removed: 0, errors: 0, cursor: null });
  expect(blobGets.size).toBe(0); // metadata only: no blob was read

  const remote = await containerListing();
  const listed = await meshListing(url(2));
  expect(listed.get("photos/local-only.txt")).toBe(4);
  listed.delete("photos/local-only.txt");
  expect(listed.size).toBe(N);
  expect([...listed]).toEqual([...remote]);

  // Search covers the remote's objects, by their user metadata.
  const found = json(await postJson(url(1), "/buckets/ext/query", { where: [{ field: "camera", op: "=", value: "nikon" }, { field: "n", op: "<", value: 20 }], limit: 100 }));
  expect(found.objects.map((o: { key: string }) => o.key).sort()).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19].map(keyOf));
  expect(blobGets.size).toBe(0);

  // An S3 HEAD answers from the import (no fetch): size, content type, user metadata, the remote's ETag.
  const k = keyOf(7);
  const s3 = s3Client(cluster.peer(1).s3Url);
  const head = await s3.send(new HeadObjectCommand({ Bucket: "ext", Key: k }));
  expect(head.ContentLength).toBe(bodyOf(7).length);
  expect(head.ContentType).toBe("text/plain");
  expect(head.Metadata).toEqual({ camera: "nikon", n: "7" });
  expect(blobGets.size).toBe(0);

  // The first GET fetches the blob once; later ones, through any peer, are served from the mesh.
  const path = `/${account.accountName}/ext/${k}`;
  const got = await request(url(2), "GET", `/buckets/ext/objects/${k}`);
  expect(got.status).toBe(200);
  expect(new TextDecoder().decode(got.body)).toBe(bodyOf(7));
  const again = await Promise.all([0, 1, 2].map((i) => request(url(i), "GET", `/buckets/ext/objects/${k}`)));
  for (const r of again) {
    expect(new TextDecoder().decode(r.body)).toBe(bodyOf(7));
    expect(["HIT", "COALESCED"]).toContain(r.headers.get("x-cache") ?? "");
  }
  expect(blobGets.get(path)).toBe(1);
  // An S3 copy of an imported object fetches it first (once), then shares its chunks.
  await s3.send(new CopyObjectCommand({ Bucket: "ext", Key: "copies/8.txt", CopySource: `ext/${keyOf(8)}` }));
  expect(new TextDecoder().decode((await request(url(0), "GET", "/buckets/ext/objects/copies/8.txt")).body)).toBe(bodyOf(8));
  expect(blobGets.get(`/${account.accountName}/ext/${keyOf(8)}`)).toBe(1);

  // A Range GET of an imported object reads only the span from the remote (with If-Match on the
  // imported ETag, so no HEAD first), and keeps nothing: it is still an imported object.
  const k9 = keyOf(9);
  const part = await request(url(1), "GET", `/buckets/ext/objects/${k9}`, { headers: { range: "bytes=5-10" } });
  expect(`${part.status} ${part.headers.get("x-cache")} ${part.headers.get("content-range")} ${new TextDecoder().decode(part.body)}`).toBe(`206 MISS bytes 5-10/${bodyOf(9).length} ${bodyOf(9).slice(5, 11)}`);
  expect(blobGets.get(`/${account.accountName}/ext/${k9}`)).toBe(1);
  expect(rangedGets).toContainEqual({ path: `/${account.accountName}/ext/${k9}`, range: `bytes=0-${bodyOf(9).length - 1}`, ifMatch: true });

  // Nothing changed: a second sync writes no object.
  const second = await syncAndWait(2, 0);
  expect(second).toMatchObject({ state: "done", listed: N, imported: 0, updated: 0, removed: 0, errors: 0 });

  // Ten blobs deleted at the remote (the fetched one among them) and one changed.
  const gone = [7, 100, 101, 555, 999, 1000, 1500, 1998, 1999, 3].map(keyOf);
  await Promise.all(gone.map((g) => container.deleteBlob(g)));
  await container.getBlockBlobClient(keyOf(42)).upload("changed!", 8, { metadata: { camera: "leica" } });
  const third = await syncAndWait(1, 2);
  expect(third).toMatchObject({ state: "done", listed: N - 10, imported: 0, updated: 1, removed: 10, errors: 0 });
  const after = await meshListing(url(0));
  for (const g of gone) expect(after.has(g)).toBe(false);
  expect(after.get("photos/local-only.txt")).toBe(4);
  expect(after.get("copies/8.txt")).toBe(bodyOf(8).length);
  expect(after.size).toBe(N - 10 + 2);
  expect(statusAndCode(await request(url(0), "GET", `/buckets/ext/objects/${keyOf(7)}`))).toBe("404 NoSuchKey");
  const changed = await request(url(0), "GET", `/buckets/ext/objects/${keyOf(42)}`);
  expect(new TextDecoder().decode(changed.body)).toBe("changed!");
  expect(changed.headers.get("x-meta-camera")).toBe("leica");
}, 30_000);

test("a sync cut short by its peer stopping resumes from its last page when the peer starts again", async () => {
  await mustCreateBucket(url(0), "ext2");
  expect(statusAndCode(await putJson(url(0), "/buckets/ext2/origin", { remote: "az" }))).toBe("200");
  slowLists = 500;
  try {
    const r = await postJson(url(2), "/buckets/ext2/origin/sync");
    expect(statusAndCode(r)).toBe("202");
    // Stop the peer once the first page is checkpointed (the second page's listing is on its way).
    let seen: any;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(25)) {
      seen = json(await request(url(0), "GET", "/buckets/ext2/origin")).sync;
      if (seen.listed > 0) break;
    }
    expect(seen).toMatchObject({ state: "running", listed: 1000 });
    expect(seen.cursor).not.toBeNull();
    await cluster.stop(2);
    const listsBefore = lists;
    await cluster.restart(2);
    let done: any;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await Bun.sleep(100)) {
      done = json(await request(url(1), "GET", "/buckets/ext2/origin")).sync;
      if (done.state !== "running") break;
    }
    expect(done).toMatchObject({ state: "done", listed: N - 10, errors: 0, startedMs: seen.startedMs });
    // Resumed from the second page, not from the start.
    expect(lists - listsBefore).toBe(1);
    expect((await meshListing(url(0), "ext2")).size).toBe(N - 10);
  } finally {
    slowLists = 0;
  }
}, 30_000);

test("sync answers 4xx for a bucket without an origin and for a remote that cannot list", async () => {
  await mustCreateBucket(url(0), "plain");
  expect(statusAndCode(await postJson(url(0), "/buckets/plain/origin/sync"))).toBe("404 NoSuchOrigin");
  expect(statusAndCode(await putJson(url(0), "/admin/remotes/web", { type: "http", endpoint: "http://127.0.0.1:9" }))).toBe("200");
  expect(statusAndCode(await putJson(url(0), "/buckets/plain/origin", { remote: "web" }))).toBe("200");
  expect(statusAndCode(await postJson(url(0), "/buckets/plain/origin/sync"))).toBe("400 InvalidArgument");
  expect(statusAndCode(await postJson(url(0), "/buckets/nope-none/origin/sync"))).toBe("404 NoSuchBucket");
});

test("the probe route writes, reads, lists and deletes against s3rver; a dead endpoint is 200 with ok: false", async () => {
  const s3rver = await startS3rver("probe");
  try {
    const creds = { accessKeyId: "S3RVER", secretAccessKey: "s3rver-does-not-check-this-secret" };
    expect(statusAndCode(await putJson(url(0), "/admin/remotes/s3r", { type: "s3", endpoint: s3rver.endpoint, bucket: "probe", credentials: creds }))).toBe("200");
    const ok = await postJson(url(1), "/admin/remotes/s3r/test");
    expect(ok.status).toBe(200);
    expect(json(ok).ok).toBe(true);
    expect(json(ok).steps.map((s: { step: string }) => s.step)).toEqual(["put", "get", "list", "delete"]);
    expect(JSON.stringify(json(ok))).not.toContain(creds.secretAccessKey);

    const dead = `http://127.0.0.1:${await freePort()}`;
    expect(statusAndCode(await putJson(url(0), "/admin/remotes/dead", { type: "s3", endpoint: dead, bucket: "probe", credentials: creds, timeoutMs: 1000 }))).toBe("200");
    const bad = await postJson(url(2), "/admin/remotes/dead/test");
    expect(bad.status).toBe(200);
    expect(json(bad).ok).toBe(false);
    expect(json(bad).steps[0]).toMatchObject({ step: "put", ok: false });
    expect(JSON.stringify(json(bad))).not.toContain(creds.secretAccessKey);

    expect(statusAndCode(await putJson(url(0), "/admin/remotes/dead-web", { type: "http", endpoint: dead, timeoutMs: 1000 }))).toBe("200");
    const web = json(await postJson(url(0), "/admin/remotes/dead-web/test"));
    expect(web).toMatchObject({ ok: false, steps: [{ step: "head", ok: false }] });
    expect(statusAndCode(await postJson(url(0), "/admin/remotes/none-such/test"))).toBe("404 NoSuchRemote");
  } finally {
    await s3rver.stop();
  }
});
