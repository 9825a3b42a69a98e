// Pull-through origins on a real 3-peer mesh (issue 15), against an origin made of Bun.serve on
// 127.0.0.1 that counts its requests per path: 50 concurrent GETs through 3 peers cost one
// origin fetch and get identical bodies; an origin 404 asked twice within the negative TTL
// costs one request; past max-age the origin sees If-None-Match and its 304 gives
// REVALIDATED; with the origin down, STALE; a 64 MiB object streams to its first client before
// the fill ends, with bounded memory, and a client that aborts at 10% still leaves a complete
// copy; S3 GetObject pulls through too; bad remotes and origins are 4xx with a code, and a
// remote's credentials never come back. With a slow origin (node:http, 8 MiB over ~2 s):
// clients through every peer, the filler too, join the fill in flight and get their first
// byte before it ends, with identical bytes and one origin fetch; a fill cut mid-way cuts its
// joiners' bodies and keeps nothing.
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { createS3Backend } from "../../src/remotes/s3-backend.ts";
import { startS3rver } from "../harness/emulators.ts";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { errorOf, json, md5Hex, mustCreateBucket, mustPut, request, statusAndCode, type Reply } from "../harness/http.ts";
import { suiteLeaks } from "../harness/leak-check.ts";
import { ADMIN_BEARER, bodyBytes, s3Client } from "../harness/s3.ts";

/** What the fake origin serves: a body (or a file) and its headers. */
interface OriginObject {
  body?: Uint8Array;
  etag?: string;
  headers?: Record<string, string>;
  /** Serve this file (Bun sends its length; a streamed body would go chunked). */
  file?: string;
  /** Wait before answering (so concurrent requests overlap). */
  delayMs?: number;
}

/** What the slow origin sends: `body` with its Content-Length in `pieces` parts, `gapMs` apart; `failAfter`: cut the connection after that many. */
interface SlowObject {
  body: Uint8Array;
  pieces: number;
  gapMs: number;
  failAfter?: number;
  sentAll?: () => void;
}

const PIECE = 256 * 1024;
const counts = new Map<string, number>();
const conditionals: Array<{ path: string; ifNoneMatch: string }> = [];
const served = new Map<string, OriginObject>();
let down = false;

const origin = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const path = new URL(req.url).pathname;
    if (down) return new Response("origin down", { status: 503 });
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const o = served.get(path);
    if (!o) return new Response("not found", { status: 404 });
    if (o.delayMs) await Bun.sleep(o.delayMs);
    const inm = req.headers.get("if-none-match");
    if (inm) conditionals.push({ path, ifNoneMatch: inm });
    const headers: Record<string, string> = { "content-type": "application/octet-stream", ...(o.etag && { etag: o.etag }), ...o.headers };
    if (inm && o.etag && inm === o.etag) return new Response(null, { status: 304, headers });
    if (o.body) return new Response(o.body, { headers });
    if (o.file) return new Response(Bun.file(o.file), { headers });
    return new Response("no body configured", { status: 500 });
  },
});
const originUrl = `http://127.0.0.1:${origin.port}`;

// A second origin, on node:http, for bodies sent slowly: Bun.serve drops the Content-Length of a
// streamed body (it goes chunked), and joiners can only be told a length the origin announced.
const slowServed = new Map<string, SlowObject>();
const slowOrigin = http.createServer(async (req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  counts.set(path, (counts.get(path) ?? 0) + 1);
  const o = slowServed.get(path);
  if (!o) return void res.writeHead(404).end("not found");
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(o.body.byteLength), "cache-control": "max-age=600", etag: `"${path.length}"` });
  const step = Math.ceil(o.body.byteLength / o.pieces);
  for (let i = 0; i * step < o.body.byteLength; i++) {
    if (i === o.failAfter) return void res.destroy();
    if (i > 0) await Bun.sleep(o.gapMs);
    res.write(o.body.subarray(i * step, (i + 1) * step));
  }
  o.sentAll?.();
  res.end();
});
await new Promise<void>((resolve) => slowOrigin.listen(0, "127.0.0.1", resolve));
const slowUrl = `http://127.0.0.1:${(slowOrigin.address() as AddressInfo).port}`;
const countOf = (path: string) => counts.get(path) ?? 0;

let cluster: Cluster;
beforeAll(async () => {
  // Each key has one filler, the first replica the asking peer believes alive; a peer that
  // misses one 150 ms probe on a loaded machine is suspect, and the asker then fills itself
  // (a second origin fetch, by design). The counts here are about agreeing peers: probes get
  // more slack than the suite's default, so the machine's load does not make them disagree.
  cluster = await startConverged(3, { config: { chunkSize: 1024 * 1024 }, membership: { probeIntervalMs: 500, probeTimeoutMs: 400, suspectAfterMisses: 3 } });
});
afterAll(async () => {
  await teardownCluster(cluster);
  origin.stop(true);
  slowOrigin.close();
});

const url = (i: number) => cluster.peer(i).httpUrl;
const putJson = (base: string, path: string, body: unknown) => request(base, "PUT", path, { body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const cacheOf = (r: Reply | Response) => r.headers.get("x-cache");

/** A bucket fronting the fake origin under `/<bucket>/`, with the given TTLs. */
async function originBucket(bucket: string, ttls: Record<string, number> = {}, remote = "web"): Promise<void> {
  await mustCreateBucket(url(0), bucket);
  const r = await putJson(url(1), `/buckets/${bucket}/origin`, { remote, prefix: `${bucket}/`, mode: "pull-through", ...ttls });
  expect(statusAndCode(r)).toBe("200");
}

beforeAll(async () => {
  const r = await putJson(url(0), "/admin/remotes/web", { type: "http", endpoint: originUrl });
  expect(statusAndCode(r)).toBe("200");
  expect(statusAndCode(await putJson(url(0), "/admin/remotes/slow", { type: "http", endpoint: slowUrl }))).toBe("200");
});

test("50 concurrent GETs of one object through 3 peers cost 1 origin fetch and get identical bodies", async () => {
  await originBucket("mirror-a");
  const body = crypto.getRandomValues(new Uint8Array(3 * 1024 * 1024 + 12345));
  served.set("/mirror-a/pkg/one.bin", { body, etag: '"one-v1"', delayMs: 300, headers: { "cache-control": "max-age=600" } });
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => request(url(i % 3), "GET", "/buckets/mirror-a/objects/pkg/one.bin")));
  expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
  expect(new Set(replies.map((r) => md5Hex(r.body)))).toEqual(new Set([md5Hex(body)]));
  expect(countOf("/mirror-a/pkg/one.bin")).toBe(1);
  const states = replies.map(cacheOf);
  expect(states.filter((s) => s === "MISS").length).toBe(1);
  expect(states.every((s) => s === "MISS" || s === "COALESCED" || s === "HIT")).toBe(true);
  // Kept: later reads through any peer are hits with an Age, and cost the origin nothing.
  for (const i of [0, 1, 2]) {
    const r = await request(url(i), "GET", "/buckets/mirror-a/objects/pkg/one.bin");
    expect(`${r.status} ${cacheOf(r)} ${md5Hex(r.body) === md5Hex(body)}`).toBe("200 HIT true");
    expect(Number(r.headers.get("age"))).toBeGreaterThanOrEqual(0);
    expect(r.headers.get("cache-control")).toBe("max-age=600");
  }
  const head = await request(url(2), "HEAD", "/buckets/mirror-a/objects/pkg/one.bin");
  expect(`${head.status} ${head.headers.get("content-length")} ${cacheOf(head)}`).toBe(`200 ${body.byteLength} HIT`);
  const ranged = await request(url(1), "GET", "/buckets/mirror-a/objects/pkg/one.bin", { headers: { range: "bytes=10-19" } });
  expect(`${ranged.status} ${md5Hex(ranged.body)}`).toBe(`206 ${md5Hex(body.subarray(10, 20))}`);
  expect(countOf("/mirror-a/pkg/one.bin")).toBe(1);
});

test("an origin 404 asked twice within the negative TTL costs 1 origin request", async () => {
  await originBucket("mirror-b", { negativeTtlSeconds: 30 });
  for (const i of [0, 1, 2, 0]) {
    const r = await request(url(i), "GET", "/buckets/mirror-b/objects/nothing/here");
    expect(statusAndCode(r)).toBe("404 NoSuchKey");
  }
  expect(countOf("/mirror-b/nothing/here")).toBe(1);
});

test("past max-age the origin sees If-None-Match and a 304 gives REVALIDATED; with the origin down, STALE", async () => {
  await originBucket("mirror-c");
  const body = new TextEncoder().encode("fresh for a second\n".repeat(2000));
  served.set("/mirror-c/a.txt", { body, etag: '"a-v1"', headers: { "cache-control": "max-age=1", "content-type": "text/plain" } });
  const first = await request(url(0), "GET", "/buckets/mirror-c/objects/a.txt");
  expect(`${first.status} ${cacheOf(first)} ${first.headers.get("content-type")}`).toBe("200 MISS text/plain");
  // The first client's body ends only once the fill has written the manifest: a GET after it is a HIT.
  expect(cacheOf(await request(url(1), "GET", "/buckets/mirror-c/objects/a.txt"))).toBe("HIT");
  await Bun.sleep(1100);
  const again = await request(url(2), "GET", "/buckets/mirror-c/objects/a.txt");
  expect(`${again.status} ${cacheOf(again)} ${md5Hex(again.body) === md5Hex(body)}`).toBe("200 REVALIDATED true");
  expect(conditionals).toContainEqual({ path: "/mirror-c/a.txt", ifNoneMatch: '"a-v1"' });
  expect(countOf("/mirror-c/a.txt")).toBe(2);
  expect(cacheOf(await request(url(0), "GET", "/buckets/mirror-c/objects/a.txt"))).toBe("HIT");

  await Bun.sleep(1100);
  down = true;
  try {
    const stale = await request(url(1), "GET", "/buckets/mirror-c/objects/a.txt");
    expect(`${stale.status} ${cacheOf(stale)} ${md5Hex(stale.body) === md5Hex(body)}`).toBe("200 STALE true");
    // A miss with the origin down is the origin's failure, said as one.
    expect(statusAndCode(await request(url(1), "GET", "/buckets/mirror-c/objects/never-fetched"))).toBe("502 OriginError");
  } finally {
    down = false;
  }
});

test("no-store answers are served but not kept", async () => {
  await originBucket("mirror-d");
  served.set("/mirror-d/live.json", { body: new TextEncoder().encode('{"n":1}'), headers: { "cache-control": "no-store" } });
  for (const i of [0, 1]) {
    const r = await request(url(i), "GET", "/buckets/mirror-d/objects/live.json");
    expect(`${r.status} ${cacheOf(r)} ${new TextDecoder().decode(r.body)}`).toBe('200 MISS {"n":1}');
  }
  // The filler learns the answer cannot be kept; a caller through another peer then fetches for itself.
  expect(countOf("/mirror-d/live.json")).toBeGreaterThanOrEqual(2);
  expect(countOf("/mirror-d/live.json")).toBeLessThanOrEqual(3);
  const listed = json<{ objects: unknown[] }>(await request(url(0), "GET", "/buckets/mirror-d/objects"));
  expect(listed.objects).toEqual([]);
});

test("a 64 MiB object streams to its first client before the fill ends, memory stays bounded, and an abort at 10% still leaves a complete copy", async () => {
  await originBucket("mirror-e");
  const size = Number(process.env.ORIGIN_BIG_MIB ?? 64) * 1024 * 1024;
  const block = crypto.getRandomValues(new Uint8Array(PIECE));
  const piece = (i: number) => {
    const p = block.slice();
    new DataView(p.buffer).setUint32(0, i);
    return p;
  };
  const md5 = new Bun.CryptoHasher("md5");
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), "origin-")), "big.bin");
  const writer = Bun.file(file).writer();
  for (let i = 0; i * PIECE < size; i++) {
    md5.update(piece(i));
    writer.write(piece(i));
  }
  await writer.end();
  const expected = md5.digest("hex");
  served.set("/mirror-e/big.bin", { file, etag: '"big-v1"' });

  // The first client must reach the filler (the key's first index replica) to be streamed to:
  // find it from where a plain object of the same key would live.
  await mustPut(url(0), "mirror-e", "big.bin", "probe");
  const located = json<{ shard: { replicas: string[] } }>(await request(url(0), "GET", "/cluster/locate/mirror-e/big.bin"));
  expect(statusAndCode(await request(url(0), "DELETE", "/buckets/mirror-e/objects/big.bin"))).toBe("204");
  const filler = [0, 1, 2].find((i) => cluster.peer(i).peerId === located.shard.replicas[0])!;
  const other = (filler + 1) % 3;

  Bun.gc(true);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const abort = new AbortController();
    const res = await fetch(`${url(filler)}/buckets/mirror-e/objects/big.bin`, { headers: { authorization: ADMIN_BEARER }, signal: abort.signal });
    expect(`${res.status} ${cacheOf(res)} ${res.headers.get("content-length")}`).toBe(`200 MISS ${size}`);
    const reader = res.body!.getReader();
    let got = 0;
    let firstByteWhileFilling = false;
    while (got < size / 10) {
      const { done, value } = await reader.read();
      if (done) break;
      if (got === 0) {
        // The fill is still running: no manifest yet (locate reads it without pulling through).
        firstByteWhileFilling = statusAndCode(await request(url(other), "GET", "/cluster/locate/mirror-e/big.bin")) === "404 NoSuchKey";
      }
      got += value.byteLength;
    }
    expect(firstByteWhileFilling).toBe(true);
    expect(got).toBeLessThan(size);
    abort.abort();
    await reader.cancel().catch(() => {});

    // The fill goes on without its client: a reader through another peer joins it or finds it kept.
    const later = await fetch(`${url(other)}/buckets/mirror-e/objects/big.bin`, { headers: { authorization: ADMIN_BEARER } });
    expect(later.status).toBe(200);
    expect(["COALESCED", "HIT"]).toContain(cacheOf(later)!);
    const check = new Bun.CryptoHasher("md5");
    let total = 0;
    for await (const p of later.body!) {
      check.update(p);
      total += p.byteLength;
    }
    expect(`${total} ${check.digest("hex")}`).toBe(`${size} ${expected}`);
  } finally {
    clearInterval(sampler);
  }
  rmSync(path.dirname(file), { recursive: true, force: true });
  expect(countOf("/mirror-e/big.bin")).toBe(1);
  const grewMb = (peak - baseline) / 1024 / 1024;
  console.log(`64 MiB pull-through: process RSS grew by ${grewMb.toFixed(1)} MB (3 peers, the origin and the client in one process)`);
  // Three peers, the origin and the client share this process (and the suite's other tests
  // its heap): measured about 60 MB at 16 MiB, 70-95 at 64, 90 at 128, not growing with the
  // size; 150 MB for all five is under the 100 MB per peer. (The figure is
  // per peer process for a 1 GiB object: not measured yet.)
  expect(grewMb).toBeLessThan(150);
}, 30_000);

test("S3 GetObject pulls through too", async () => {
  await originBucket("mirror-f");
  const body = crypto.getRandomValues(new Uint8Array(200_000));
  served.set("/mirror-f/s3/obj", { body, etag: '"s3-v1"' });
  const s3 = s3Client(cluster.peer(2).s3Url);
  const first = await s3.send(new GetObjectCommand({ Bucket: "mirror-f", Key: "s3/obj" }));
  expect(md5Hex(await bodyBytes(first.Body))).toBe(md5Hex(body));
  const second = await s3.send(new GetObjectCommand({ Bucket: "mirror-f", Key: "s3/obj" }));
  expect(md5Hex(await bodyBytes(second.Body))).toBe(md5Hex(body));
  expect(second.ETag).toBe(`"${md5Hex(body)}"`);
  expect(countOf("/mirror-f/s3/obj")).toBe(1);
});

test("bad remotes and origins are 4xx with a code, a remote without the credentials its type needs too, and credentials never come back", async () => {
  const bad: Array<[string, string, unknown, string]> = [
    ["PUT", "/admin/remotes/Bad_Name", { type: "http", endpoint: originUrl }, "400 InvalidArgument"],
    ["PUT", `/admin/remotes/${"a".repeat(64)}`, { type: "http", endpoint: originUrl }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "ftp", endpoint: originUrl }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "http" }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "http", endpoint: "ftp://host/" }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "http", endpoint: "http://user:pw@127.0.0.1/" }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "http", endpoint: originUrl, extra: 1 }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", "[1,2]", "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "s3", endpoint: originUrl, bucket: "b" }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "s3", endpoint: originUrl, bucket: "b", credentials: { accessKeyId: "K", secretAccessKey: "S", pin: "1" } }, "400 InvalidArgument"],
    ["PUT", "/admin/remotes/x", { type: "azure", endpoint: originUrl, bucket: "b", credentials: { sasToken: "t" } }, "400 InvalidArgument"],
    ["GET", "/admin/remotes/nope", undefined, "404 NoSuchRemote"],
    ["DELETE", "/admin/remotes/nope", undefined, "404 NoSuchRemote"],
    ["PUT", "/buckets/mirror-a/origin", { remote: "nope" }, "400 InvalidArgument"],
    ["PUT", "/buckets/mirror-a/origin", { remote: "web", defaultTtlSeconds: -1 }, "400 InvalidArgument"],
    ["PUT", "/buckets/mirror-a/origin", { remote: "web", negativeTtlSeconds: 1.5 }, "400 InvalidArgument"],
    ["PUT", "/buckets/mirror-a/origin", { remote: "web", staleIfErrorSeconds: "1" }, "400 InvalidArgument"],
    ["PUT", "/buckets/mirror-a/origin", { remote: "web", mode: "sideways" }, "400 InvalidArgument"],
    // A plain web origin takes no writes (write-through itself: write-through.test.ts).
    ["PUT", "/buckets/mirror-a/origin", { remote: "web", mode: "write-through" }, "400 InvalidArgument"],
    ["PUT", "/buckets/no-such-bucket/origin", { remote: "web" }, "404 NoSuchBucket"],
    ["PUT", "/buckets/Bad_Bucket/origin", { remote: "web" }, "400 InvalidBucketName"],
  ];
  for (const [method, path, body, want] of bad) {
    const r = await request(url(1), method, path, body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) });
    expect(`${method} ${path} ${statusAndCode(r)}`).toBe(`${method} ${path} ${want}`);
    if (r.status >= 400) expect(errorOf(r).message.length).toBeGreaterThan(0);
  }

  await mustCreateBucket(url(0), "plain-bucket");
  expect(statusAndCode(await request(url(2), "GET", "/buckets/plain-bucket/origin"))).toBe("404 NoSuchOrigin");
  expect(statusAndCode(await request(url(2), "GET", "/buckets/plain-bucket/objects/missing"))).toBe("404 NoSuchKey");

  const secret = `origin-token-${crypto.randomUUID()}`;
  suiteLeaks.register("remote credential", secret);
  const put = await putJson(url(0), "/admin/remotes/with-secret", { type: "s3", endpoint: originUrl, bucket: "b", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: secret } });
  expect(statusAndCode(put)).toBe("200");
  expect(json(put)).toMatchObject({ name: "with-secret", type: "s3", bucket: "b", hasCredentials: true });
  for (const path of ["/admin/remotes", "/admin/remotes/with-secret"]) {
    const r = await request(url(2), "GET", path);
    expect(r.status).toBe(200);
    expect(new TextDecoder().decode(r.body)).not.toContain(secret);
  }
  // Not for a non-admin key.
  const anon = await request(url(0), "GET", "/admin/remotes", { headers: { authorization: "" } });
  expect(anon.status).toBe(401);
  // An origin's settings come back as set, and go.
  expect(json(await request(url(0), "GET", "/buckets/mirror-b/origin"))).toMatchObject({ remote: "web", prefix: "mirror-b/", mode: "pull-through", defaultTtlSeconds: 3600, negativeTtlSeconds: 30, staleIfErrorSeconds: 86400 });
  expect(statusAndCode(await request(url(0), "DELETE", "/buckets/mirror-b/origin"))).toBe("204");
  expect(statusAndCode(await request(url(1), "GET", "/buckets/mirror-b/origin"))).toBe("404 NoSuchOrigin");
  expect(statusAndCode(await request(url(0), "DELETE", "/admin/remotes/with-secret"))).toBe("204");
  expect(statusAndCode(await request(url(1), "GET", "/admin/remotes/with-secret"))).toBe("404 NoSuchRemote");
});

test("a bucket pulls through from an S3 remote (s3rver) defined through the registry: user metadata and content type come along", async () => {
  const s3rver = await startS3rver("upstream");
  try {
    const creds = { accessKeyId: "S3RVER", secretAccessKey: "s3rver-does-not-check-this-secret" };
    const upstream = createS3Backend({ endpoint: s3rver.endpoint, bucket: "upstream", region: "us-east-1", ...creds, timeoutMs: 5_000 });
    const body = crypto.getRandomValues(new Uint8Array(2 * 1024 * 1024 + 7));
    await upstream.put!("docs/report.bin", body, { contentType: "application/x-report", meta: { owner: "ann" } });
    expect(statusAndCode(await putJson(url(0), "/admin/remotes/up", { type: "s3", endpoint: s3rver.endpoint, bucket: "upstream", region: "us-east-1", credentials: creds }))).toBe("200");
    await mustCreateBucket(url(0), "from-s3");
    expect(statusAndCode(await putJson(url(1), "/buckets/from-s3/origin", { remote: "up" }))).toBe("200");
    const first = await request(url(2), "GET", "/buckets/from-s3/objects/docs/report.bin");
    expect(`${first.status} ${cacheOf(first)} ${md5Hex(first.body) === md5Hex(body)}`).toBe("200 MISS true");
    expect(first.headers.get("content-type")).toBe("application/x-report");
    expect(first.headers.get("x-meta-owner")).toBe("ann");
    // The first client's body ends only once the fill has written the manifest: a GET after it is a HIT.
    const again = await request(url(0), "GET", "/buckets/from-s3/objects/docs/report.bin");
    expect(`${again.status} ${cacheOf(again)} ${md5Hex(again.body) === md5Hex(body)}`).toBe("200 HIT true");
    const kept = await request(url(1), "GET", "/buckets/from-s3/objects/docs/report.bin");
    expect(`${kept.status} ${cacheOf(kept)} ${md5Hex(kept.body) === md5Hex(body)}`).toBe("200 HIT true");
    expect(statusAndCode(await request(url(1), "GET", "/buckets/from-s3/objects/docs/none.bin"))).toBe("404 NoSuchKey");
  } finally {
    await s3rver.stop();
  }
}, 30_000);

/** The filler of bucket/key (the key's first index replica), found from where a plain object of the same key lives. */
async function fillerOfKey(bucket: string, key: string): Promise<number> {
  await mustPut(url(0), bucket, key, "probe");
  const located = json<{ shard: { replicas: string[] } }>(await request(url(0), "GET", `/cluster/locate/${bucket}/${key}`));
  expect(statusAndCode(await request(url(0), "DELETE", `/buckets/${bucket}/objects/${key}`))).toBe("204");
  return [0, 1, 2].find((i) => cluster.peer(i).peerId === located.shard.replicas[0])!;
}

/** A GET read to its end: status, headers, when its first byte came, its length and MD5 (or the error that cut it). */
async function timedGet(base: string, path: string, fillEnded: () => boolean) {
  const res = await fetch(`${base}${path}`, { headers: { authorization: ADMIN_BEARER } });
  const md5 = new Bun.CryptoHasher("md5");
  let total = 0;
  let firstWhileFilling: boolean | undefined;
  let firstAt = 0;
  let error: string | undefined;
  try {
    for await (const p of res.body!) {
      if (firstWhileFilling === undefined && p.byteLength) {
        firstWhileFilling = !fillEnded();
        firstAt = Date.now();
      }
      md5.update(p);
      total += p.byteLength;
    }
  } catch (err) {
    error = (err as Error).message;
  }
  return { status: res.status, cache: cacheOf(res), length: res.headers.get("content-length"), firstWhileFilling, firstAt, total, md5: md5.digest("hex"), error };
}

test("clients through every peer join a fill in flight and stream from it before it ends: one origin fetch, identical bytes", async () => {
  await originBucket("mirror-j", {}, "slow");
  const filler = await fillerOfKey("mirror-j", "slow.bin");
  const others = [0, 1, 2].filter((i) => i !== filler);
  const body = crypto.getRandomValues(new Uint8Array(8 * 1024 * 1024));
  let sentAll = false;
  let sentAt = 0;
  slowServed.set("/mirror-j/slow.bin", { body, pieces: 32, gapMs: 60, sentAll: () => ((sentAll = true), (sentAt = Date.now())) });
  const ended = () => sentAll;
  const pathOf = "/buckets/mirror-j/objects/slow.bin";

  // The first client comes through a peer that is not the filler: it starts the fill by RPC and streams from its progress.
  const first = timedGet(url(others[0]), pathOf, ended);
  await Bun.sleep(400);
  // Then one through the third peer and one on the filler itself join it while it runs.
  const joiners = [timedGet(url(others[1]), pathOf, ended), timedGet(url(filler), pathOf, ended)];
  const all = await Promise.all([first, ...joiners]);
  for (const r of all) {
    expect(`${r.status} ${r.length} ${r.total} ${r.md5 === md5Hex(body)} ${r.error ?? "whole"}`).toBe(`200 ${body.byteLength} ${body.byteLength} true whole`);
    expect(r.firstWhileFilling).toBe(true);
  }
  expect(all.map((r) => r.cache)).toEqual(["MISS", "COALESCED", "COALESCED"]);
  // (A joiner's memory is measured on real peer processes, with 1 GiB, in origin-large.test.ts.)
  console.log(`8 MiB slow fill: first bytes ${all.map((r) => sentAt - r.firstAt).join(", ")} ms before the origin sent its last (first client, joiner on a third peer, joiner on the filler)`);
  expect(countOf("/mirror-j/slow.bin")).toBe(1);
  // Kept once: the next read is a hit.
  const kept = await request(url(others[1]), "GET", pathOf);
  expect(`${kept.status} ${cacheOf(kept)} ${md5Hex(kept.body) === md5Hex(body)}`).toBe("200 HIT true");
  expect(countOf("/mirror-j/slow.bin")).toBe(1);
}, 20_000);

test("a fill that fails mid-way cuts its joiners' bodies and keeps nothing", async () => {
  await originBucket("mirror-k", {}, "slow");
  const filler = await fillerOfKey("mirror-k", "cut.bin");
  const other = (filler + 1) % 3;
  const body = crypto.getRandomValues(new Uint8Array(4 * 1024 * 1024));
  slowServed.set("/mirror-k/cut.bin", { body, pieces: 16, gapMs: 40, failAfter: 10 });
  const pathOf = "/buckets/mirror-k/objects/cut.bin";
  const first = timedGet(url(filler), pathOf, () => false);
  await Bun.sleep(150);
  const joined = await timedGet(url(other), pathOf, () => false);
  expect(`${joined.status} ${joined.cache} ${joined.length}`).toBe(`200 COALESCED ${body.byteLength}`);
  expect(joined.total).toBeLessThan(body.byteLength);
  expect((await first).total).toBeLessThan(body.byteLength);
  expect(countOf("/mirror-k/cut.bin")).toBe(1);
  expect(statusAndCode(await request(url(other), "GET", "/cluster/locate/mirror-k/cut.bin"))).toBe("404 NoSuchKey");
}, 15_000);
