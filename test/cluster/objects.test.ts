// Objects end to end on a 5-peer mesh over real TCP: bytes in = bytes out through every
// peer, chunk placement on the ring, metadata and ranges, a dead owner, a corrupt
// replica on disk, racing writers, bucket lifecycle, overwrite and delete.
import { describe, expect, test } from "bun:test";
import { existsSync, openSync, readFileSync, closeSync, readSync, writeSync } from "node:fs";
import path from "node:path";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import {
  TEST_CHUNK,
  clusterStatus,
  createBucket,
  deleteBucket,
  deleteObject,
  describeBytes,
  errorOf,
  getObject,
  headObject,
  json,
  listBuckets,
  listAllPages,
  locate,
  md5Hex,
  mustCreateBucket,
  mustGet,
  mustPut,
  objectPathRawSlashes,
  request,
  sameBytes,
  sameSet,
  sha256Hex,
  statusAndCode,
  type Located,
} from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const C = TEST_CHUNK;
const MiB = 1 << 20;
const INLINE_MAX = 16 * 1024;
const BUCKET = "objects-test";

/** A 5-peer star mesh with 1 MiB chunks, converged, with BUCKET created. */
function withMesh(body: (c: Cluster) => Promise<void>): Promise<void> {
  return withCluster(5, { topology: "star", config: { chunkSize: C } }, async (c) => {
    await c.waitFor("all alive", () => c.allSee(c.running(), c.running(), "alive"));
    await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
    await body(c);
  });
}

const url = (c: Cluster, i: number) => c.peer(i).httpUrl;
const indexOfPeer = (c: Cluster, id: string) => c.peers.findIndex((p) => p.id === id);
const chunkFile = (dataDir: string, id: string) => path.join(dataDir, "chunks", id.slice(0, 2), id);

/** GET through peer i and check status, bytes, ETag and Content-Length. */
async function expectObjectVia(c: Cluster, i: number, key: string, want: Uint8Array): Promise<void> {
  const r = await getObject(url(c, i), BUCKET, key);
  const label = `GET ${key} via peer ${i}`;
  expect(`${label}: ${statusAndCode(r)}`).toBe(`${label}: 200`);
  if (!sameBytes(r.body, want)) throw new Error(`${label}: got ${describeBytes(r.body)}, want ${describeBytes(want)}`);
  expect(`${label} ETag: ${r.headers.get("etag")}`).toBe(`${label} ETag: "${md5Hex(want)}"`);
  expect(`${label} Content-Length: ${r.headers.get("content-length")}`).toBe(`${label} Content-Length: ${want.byteLength}`);
}

/** Poll locate until every chunk has exactly its 3 ring owners as holders; returns the last answer. */
async function waitForFullReplication(c: Cluster, via: number, key: string, timeoutMs = 10_000): Promise<Located> {
  let last: Located | undefined;
  try {
    await c.waitFor(
      `every chunk of ${key} held by exactly its 3 expected peers`,
      async () => {
        last = await locate(url(c, via), BUCKET, key);
        return last.chunks.every((ch) => new Set(ch.holders).size === 3 && ch.holders.length === 3 && new Set(ch.expected).size === 3 && sameSet(ch.holders, ch.expected));
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast locate: ${JSON.stringify(last, null, 1)}`);
  }
  return last!;
}

describe("objects", () => {
  test("0 B .. 20 MiB objects written through different peers read back byte for byte through every peer; chunks sit on their 3 ring owners", async () => {
    await withMesh(async (c) => {
      const sizes = [0, 1, C - 1, C, C + 1, 20 * MiB];
      const ids = new Set(c.peers.map((p) => p.id));
      const objects = sizes.map((size, n) => ({ key: `sizes/${size}-bytes`, data: seededBytes(size, c.seed + n), via: n % 5 }));

      for (const o of objects) {
        const put = await mustPut(url(c, o.via), BUCKET, o.key, o.data);
        expect(put.bucket).toBe(BUCKET);
        expect(put.key).toBe(o.key);
        expect(put.size).toBe(o.data.byteLength);
        expect(put.etag).toBe(md5Hex(o.data));
        expect(typeof put.contentType).toBe("string");
      }

      for (const o of objects) {
        for (const i of c.running()) await expectObjectVia(c, i, o.key, o.data);
      }

      for (const [n, o] of objects.entries()) {
        const size = o.data.byteLength;
        const via = (o.via + 2) % 5;
        if (size <= INLINE_MAX) {
          const loc = await locate(url(c, via), BUCKET, o.key);
          expect({ size: loc.size, etag: loc.etag, inline: loc.inline, chunks: loc.chunks }).toEqual({ size, etag: md5Hex(o.data), inline: true, chunks: [] });
          continue;
        }
        const loc = await waitForFullReplication(c, via, o.key);
        expect(loc.bucket).toBe(BUCKET);
        expect(loc.key).toBe(o.key);
        expect(loc.size).toBe(size);
        expect(loc.etag).toBe(md5Hex(o.data));
        expect(loc.inline).toBe(false);
        expect(loc.chunks.length).toBe(Math.ceil(size / C));
        expect(loc.shard.replicas.length).toBe(3);
        expect(new Set(loc.shard.replicas).size).toBe(3);
        expect(loc.shard.replicas.every((id) => ids.has(id))).toBe(true);
        expect(loc.shard.holders.length).toBeGreaterThanOrEqual(2);
        expect(loc.shard.holders.every((id) => loc.shard.replicas.includes(id))).toBe(true);
        for (const [k, ch] of loc.chunks.entries()) {
          const piece = o.data.subarray(k * C, Math.min(size, (k + 1) * C));
          expect(ch.id).toBe(sha256Hex(piece));
          expect(ch.size).toBe(piece.byteLength);
          expect(ch.expected.every((id) => ids.has(id))).toBe(true);
          // The holders' own folders have the chunk file, with the right bytes.
          for (const holder of ch.holders) {
            const file = chunkFile(c.peers[indexOfPeer(c, holder)].dataDir, ch.id);
            expect(`object ${n} chunk ${k} on ${holder.slice(-6)}: ${existsSync(file)}`).toBe(`object ${n} chunk ${k} on ${holder.slice(-6)}: true`);
            expect(sha256Hex(readFileSync(file))).toBe(ch.id);
          }
        }
      }
    });
  }, 60_000);

  test("Content-Type and x-meta-* round-trip through GET and HEAD; Last-Modified; Range requests give 206 and the right bytes", async () => {
    await withMesh(async (c) => {
      const key = "media/2024/clip.bin";
      const size = 2 * C + C / 2 + 123;
      const data = seededBytes(size, c.seed);
      const headers = { "Content-Type": "image/x-meshstore-test", "x-meta-color": "teal", "x-meta-owner-name": "Ada Lovelace" };
      const before = Date.now();
      const put = await mustPut(url(c, 1), BUCKET, key, data, headers);
      const after = Date.now();
      expect(put.contentType).toBe("image/x-meshstore-test");
      expect(put.etag).toBe(md5Hex(data));

      for (const i of [0, 2, 4]) {
        const get = await getObject(url(c, i), BUCKET, key);
        const head = await headObject(url(c, (i + 1) % 5), BUCKET, key);
        expect(get.status).toBe(200);
        expect(head.status).toBe(200);
        expect(sameBytes(get.body, data)).toBe(true);
        expect(head.body.byteLength).toBe(0);
        for (const r of [get, head]) {
          expect(r.headers.get("etag")).toBe(`"${md5Hex(data)}"`);
          expect(r.headers.get("content-type")).toBe("image/x-meshstore-test");
          expect(`${r === get ? "GET" : "HEAD"} Content-Length: ${r.headers.get("content-length")}`).toBe(`${r === get ? "GET" : "HEAD"} Content-Length: ${size}`);
          expect(r.headers.get("x-meta-color")).toBe("teal");
          expect(r.headers.get("x-meta-owner-name")).toBe("Ada Lovelace");
          const lm = Date.parse(r.headers.get("last-modified") ?? "");
          expect(Number.isFinite(lm)).toBe(true);
          // HTTP dates have whole seconds.
          expect(lm).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 2000);
          expect(lm).toBeLessThanOrEqual(after + 2000);
        }
      }

      // The same key sent with raw "/" separators is the same object.
      const raw = await request(url(c, 3), "GET", objectPathRawSlashes(BUCKET, key));
      expect(raw.status).toBe(200);
      expect(sameBytes(raw.body, data)).toBe(true);

      const ranges: Array<{ header: string; from: number; to: number }> = [
        { header: "bytes=0-0", from: 0, to: 0 },
        { header: `bytes=${C - 1000}-${C + 999}`, from: C - 1000, to: C + 999 }, // crosses one chunk boundary
        { header: `bytes=${C - 5}-${2 * C + 5}`, from: C - 5, to: 2 * C + 5 }, // spans a whole chunk
        { header: "bytes=-100", from: size - 100, to: size - 1 },
        { header: `bytes=${2 * C + 7}-`, from: 2 * C + 7, to: size - 1 },
        { header: `bytes=${size - 10}-${size + 5000}`, from: size - 10, to: size - 1 }, // last-byte-pos past the end is clamped (RFC 9110)
      ];
      for (const [n, r] of ranges.entries()) {
        const res = await getObject(url(c, n % 5), BUCKET, key, { Range: r.header });
        expect(`${r.header}: ${res.status}`).toBe(`${r.header}: 206`);
        expect(res.headers.get("content-range")).toBe(`bytes ${r.from}-${r.to}/${size}`);
        expect(`${r.header} Content-Length: ${res.headers.get("content-length")}`).toBe(`${r.header} Content-Length: ${r.to - r.from + 1}`);
        const want = data.subarray(r.from, r.to + 1);
        if (!sameBytes(res.body, want)) throw new Error(`${r.header}: got ${describeBytes(res.body)}, want ${describeBytes(want)}`);
      }
    });
  }, 60_000);

  test("killing a holder of the first chunk: every surviving peer still returns the right bytes", async () => {
    await withMesh(async (c) => {
      const key = "survives/owner-death.bin";
      const data = seededBytes(3 * C + C / 2, c.seed);
      await mustPut(url(c, 0), BUCKET, key, data);
      const loc = await waitForFullReplication(c, 0, key);

      const candidates = loc.chunks[0].holders.map((id) => indexOfPeer(c, id)).filter((i) => i > 0);
      expect(candidates.length).toBeGreaterThan(0);
      const victim = candidates[Math.floor(c.random() * candidates.length)];
      console.log(`killing peer ${victim}, a holder of chunk 0`);
      await c.kill(victim);

      // Right away, before the others have even noticed it is gone.
      for (const i of c.running()) await expectObjectVia(c, i, key, data);
      const res = await getObject(url(c, c.running()[1]), BUCKET, key, { Range: `bytes=${C - 10}-${C + 9}` });
      expect(res.status).toBe(206);
      expect(sameBytes(res.body, data.subarray(C - 10, C + 10))).toBe(true);
    });
  }, 60_000);

  test("a corrupt replica on disk is never served, and /cluster/status reports it in badReplicas", async () => {
    await withMesh(async (c) => {
      const key = "scrub/corrupt-me.bin";
      const data = seededBytes(3 * C + 17, c.seed);
      await mustPut(url(c, 1), BUCKET, key, data);
      const loc = await waitForFullReplication(c, 1, key);
      const chunk = loc.chunks[0];
      const badPeerId = chunk.holders[Math.floor(c.random() * chunk.holders.length)];
      const bad = indexOfPeer(c, badPeerId);
      const file = chunkFile(c.peers[bad].dataDir, chunk.id);
      expect(existsSync(file)).toBe(true);

      // Flip 64 bytes in the middle of the file, keeping its length.
      const fd = openSync(file, "r+");
      try {
        const buf = Buffer.alloc(64);
        readSync(fd, buf, 0, 64, 4096);
        for (let i = 0; i < buf.length; i++) buf[i] ^= 0xff;
        writeSync(fd, buf, 0, 64, 4096);
      } finally {
        closeSync(fd);
      }
      expect(sha256Hex(readFileSync(file))).not.toBe(chunk.id);
      console.log(`corrupted chunk ${chunk.id.slice(0, 12)} on peer ${bad}`);

      // The peer holding the bad copy first (it is the likeliest to read it), then all. Its scrub
      // may find the copy first (a pass a second here): then it is the scrub that reports it.
      const order = [bad, ...c.running().filter((i) => i !== bad)];
      for (const i of order) await expectObjectVia(c, i, key, data);

      const reported = async () => {
        for (const i of c.running()) {
          const s = await clusterStatus(url(c, i));
          if (s.badReplicas?.some((b) => b.chunk === chunk.id && b.peer === badPeerId && typeof b.atMs === "number")) return true;
        }
        // Keep giving readers a chance to hit the bad copy.
        await expectObjectVia(c, bad, key, data);
        return false;
      };
      await c.waitFor(`badReplicas lists chunk ${chunk.id.slice(0, 12)} on peer ${bad}`, reported, 5_000, 250);
      for (const i of c.running()) await expectObjectVia(c, i, key, data);
    });
  }, 60_000);

  test("two concurrent PUTs to one key: every peer then returns the same whole body, one of the two", async () => {
    await withMesh(async (c) => {
      for (let round = 0; round < 3; round++) {
        const key = `race/key-${round}`;
        const a = seededBytes(2 * C + C / 2, c.seed + 100 + round);
        const b = seededBytes(2 * C + 5, c.seed + 200 + round);
        if (round === 2) await mustPut(url(c, 0), BUCKET, key, seededBytes(C + 3, c.seed)); // racing over an existing object
        const [pa, pb] = [(round + 1) % 5, (round + 3) % 5];
        const [ra, rb] = await Promise.all([mustPut(url(c, pa), BUCKET, key, a), mustPut(url(c, pb), BUCKET, key, b)]);
        expect(ra.etag).toBe(md5Hex(a));
        expect(rb.etag).toBe(md5Hex(b));

        const seen: string[] = [];
        for (const i of c.running()) {
          const body = await mustGet(url(c, i), BUCKET, key);
          const which = sameBytes(body, a) ? "a" : sameBytes(body, b) ? "b" : `neither (${describeBytes(body)})`;
          seen.push(which);
        }
        expect(`round ${round}: ${seen.join(",")}`).toBe(`round ${round}: ${Array(seen.length).fill(seen[0]).join(",")}`);
        expect(["a", "b"]).toContain(seen[0]);
        const winner = seen[0] === "a" ? a : b;
        for (const i of c.running()) await expectObjectVia(c, i, key, winner);
        const loc = await locate(url(c, round), BUCKET, key);
        expect(loc.etag).toBe(md5Hex(winner));
        expect(loc.size).toBe(winner.byteLength);
        console.log(`round ${round}: PUT via ${pa} (a) vs ${pb} (b): ${seen[0]} won`);
      }
    });
  }, 60_000);

  test("buckets: create is visible at once everywhere and idempotent; non-empty delete is 409; empty delete is 204; then NoSuchBucket", async () => {
    await withMesh(async (c) => {
      const name = "album-2024.v1";
      const t0 = Date.now();
      const created = await createBucket(url(c, 0), name);
      expect(created.status).toBe(200);
      const b = json(created).bucket;
      expect(typeof b === "string" ? b : b?.name).toBe(name);

      const data = seededBytes(5000, c.seed);
      await mustPut(url(c, 3), name, "first.txt", data);
      const listed = (await listBuckets(url(c, 4))).filter((x) => x.name === name);
      expect(listed.length).toBe(1);
      expect(typeof listed[0].createdMs).toBe("number");
      expect(listed[0].createdMs).toBeGreaterThanOrEqual(t0 - 5000);
      expect(listed[0].createdMs).toBeLessThanOrEqual(Date.now() + 5000);

      const again = await createBucket(url(c, 2), name);
      expect(again.status).toBe(200);
      const relisted = (await listBuckets(url(c, 1))).filter((x) => x.name === name);
      expect(relisted).toEqual(listed); // still one entry, same creation time
      expect(sameBytes(await mustGet(url(c, 0), name, "first.txt"), data)).toBe(true);

      const notEmpty = await deleteBucket(url(c, 1), name);
      expect(statusAndCode(notEmpty)).toBe("409 BucketNotEmpty");

      expect((await deleteObject(url(c, 2), name, "first.txt")).status).toBe(204);
      expect((await deleteBucket(url(c, 4), name)).status).toBe(204);

      for (const i of c.running()) {
        expect(`peer ${i}: ${statusAndCode(await getObject(url(c, i), name, "first.txt"))}`).toBe(`peer ${i}: 404 NoSuchBucket`);
        expect((await listBuckets(url(c, i))).some((x) => x.name === name)).toBe(false);
      }
      expect(statusAndCode(await deleteBucket(url(c, 0), name))).toBe("404 NoSuchBucket");
      // The test bucket is untouched.
      expect((await listBuckets(url(c, 2))).some((x) => x.name === BUCKET)).toBe(true);
    });
  }, 60_000);

  test("overwrite: every peer returns the new version; delete: every peer then answers 404 NoSuchKey to GET and HEAD", async () => {
    await withMesh(async (c) => {
      const key = "notes/today.txt";
      const v1 = seededBytes(C + C / 2, c.seed); // chunked
      const v2 = new TextEncoder().encode(`second version, seed ${c.seed}\n`); // inline
      await mustPut(url(c, 0), BUCKET, key, v1);
      for (const i of c.running()) await expectObjectVia(c, i, key, v1);
      await mustPut(url(c, 1), BUCKET, key, v2, { "Content-Type": "text/plain" });
      for (const i of c.running()) {
        await expectObjectVia(c, i, key, v2);
        expect((await headObject(url(c, i), BUCKET, key)).headers.get("content-length")).toBe(String(v2.byteLength));
      }
      const loc = await locate(url(c, 4), BUCKET, key);
      expect({ size: loc.size, etag: loc.etag, inline: loc.inline }).toEqual({ size: v2.byteLength, etag: md5Hex(v2), inline: true });

      expect((await deleteObject(url(c, 3), BUCKET, key)).status).toBe(204);
      for (const i of c.running()) {
        const get = await getObject(url(c, i), BUCKET, key);
        expect(`GET via ${i}: ${statusAndCode(get)}`).toBe(`GET via ${i}: 404 NoSuchKey`);
        expect(errorOf(get).message.length).toBeGreaterThan(0);
        const head = await headObject(url(c, i), BUCKET, key);
        expect(`HEAD via ${i}: ${head.status}`).toBe(`HEAD via ${i}: 404`);
        expect(head.body.byteLength).toBe(0);
      }
      const listed = (await listAllPages(url(c, 2), BUCKET, { prefix: "notes/" })).flatMap((p) => p.objects.map((o) => o.key));
      expect(listed).toEqual([]);
      // Deleting again, or deleting a key that never existed, is still 204 (as S3).
      expect((await deleteObject(url(c, 4), BUCKET, key)).status).toBe(204);
      expect((await deleteObject(url(c, 0), BUCKET, "never/was")).status).toBe(204);
    });
  }, 60_000);
});
