// S3 versioning through the AWS SDK against one 3-peer mesh: versioned overwrites and
// delete-marker sequences written through one peer and read back through the others,
// GET/HEAD/DELETE/CopyObject/DeleteObjects by version id, ListObjectVersions paged with
// key and version-id markers (and rolled up by a delimiter), suspended versioning and its
// "null" version, objects from before versioning, multipart versions, version deletes
// racing with writes, the change events, the native API's
// ?versionId=, and chunk GC keeping a noncurrent version's chunks while it collects an
// unversioned overwrite's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import path from "node:path";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  UploadPartCommand,
  type ListObjectVersionsCommandOutput,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { json, locate, request, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import { bodyBytes, s3Client, s3Path, sdkFailure, signedFetch } from "../harness/s3.ts";

const T = 60_000;
const CHUNK = 64 * 1024;
let cluster: Cluster;
let s3: S3Client[] = [];

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: CHUNK, inlineMaxBytes: 1024, repair: { gcGraceMs: 500, gcIntervalMs: 300 } } });
  s3 = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, undefined, { maxAttempts: 1 }));
}, T);

afterAll(async () => {
  for (const c of s3) c.destroy();
  await teardownCluster(cluster);
}, T);

const enc = new TextEncoder();
const put = (i: number, Bucket: string, Key: string, body: string | Uint8Array) => s3[i].send(new PutObjectCommand({ Bucket, Key, Body: typeof body === "string" ? enc.encode(body) : body }));
const get = async (i: number, Bucket: string, Key: string, VersionId?: string) => {
  const out = await s3[i].send(new GetObjectCommand({ Bucket, Key, VersionId }));
  return { versionId: out.VersionId, text: new TextDecoder().decode(await bodyBytes(out.Body)) };
};
async function versioned(bucket: string, status: "Enabled" | "Suspended" = "Enabled") {
  await s3[0].send(new CreateBucketCommand({ Bucket: bucket })).catch(() => {});
  await s3[1].send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: status } }));
}
/** Every version and marker of a bucket in one listing: [key, versionId, isLatest, marker?]. */
async function allVersions(i: number, Bucket: string, extra: { Prefix?: string } = {}) {
  const out = await s3[i].send(new ListObjectVersionsCommand({ Bucket, ...extra }));
  return flatten(out);
}
const flatten = (out: ListObjectVersionsCommandOutput) =>
  [
    ...(out.Versions ?? []).map((v) => ({ key: v.Key!, id: v.VersionId!, latest: v.IsLatest!, marker: false, etag: v.ETag, at: v.LastModified!.getTime() })),
    ...(out.DeleteMarkers ?? []).map((m) => ({ key: m.Key!, id: m.VersionId!, latest: m.IsLatest!, marker: true, etag: undefined, at: m.LastModified!.getTime() })),
  ].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

describe("S3 versioning", () => {
  test(
    "Get/PutBucketVersioning through different peers; MFA delete and bad documents refused",
    async () => {
      const B = "ver-config";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      expect((await s3[1].send(new GetBucketVersioningCommand({ Bucket: B }))).Status).toBeUndefined();
      await s3[2].send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Enabled" } }));
      expect((await s3[0].send(new GetBucketVersioningCommand({ Bucket: B }))).Status).toBe("Enabled");
      const mfa = await sdkFailure("MFA delete", s3[0].send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Enabled", MFADelete: "Enabled" } })));
      expect([mfa.status, mfa.name]).toEqual([501, "NotImplemented"]);
      const bad = await signedFetch(cluster.peer(1).s3Url, { method: "PUT", path: s3Path(B), query: { versioning: "" }, body: "<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>" });
      expect(bad.status).toBe(400);
      expect(bad.text).toContain("MalformedXML");
      await s3[1].send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Suspended" } }));
      expect((await s3[2].send(new GetBucketVersioningCommand({ Bucket: B }))).Status).toBe("Suspended");
      const none = await sdkFailure("no bucket", s3[0].send(new GetBucketVersioningCommand({ Bucket: "ver-none" })));
      expect(none.name).toBe("NoSuchBucket");
    },
    T,
  );

  test(
    "overwrites and a delete marker through one peer each, read back by version id through the others; deleting versions promotes the newest left",
    async () => {
      const B = "ver-seq";
      await versioned(B);
      const ids: string[] = [];
      for (const [i, body] of ["one", "two", "three"].entries()) ids.push((await put(i, B, "k", body)).VersionId!);
      expect(new Set(ids).size).toBe(3);
      // Newest first in id order, and none is "null".
      expect([...ids].sort()).toEqual([...ids].reverse());
      for (const i of [0, 1, 2]) {
        expect(await get(i, B, "k")).toEqual({ versionId: ids[2], text: "three" });
        for (const [n, body] of ["one", "two", "three"].entries()) expect(await get((i + n) % 3, B, "k", ids[n])).toEqual({ versionId: ids[n], text: body });
      }
      const head = await s3[2].send(new HeadObjectCommand({ Bucket: B, Key: "k", VersionId: ids[0] }));
      expect([head.VersionId, head.ContentLength]).toEqual([ids[0], 3]);

      // A DELETE without a version id: a delete marker is current.
      const del = await s3[0].send(new DeleteObjectCommand({ Bucket: B, Key: "k" }));
      expect(del.DeleteMarker).toBe(true);
      const marker = del.VersionId!;
      expect(marker < ids[2]).toBe(true);
      for (const i of [1, 2]) {
        const miss = await signedFetch(cluster.peer(i).s3Url, { method: "GET", path: s3Path(B, "k") });
        expect(miss.status).toBe(404);
        expect(miss.text).toContain("NoSuchKey");
        expect([miss.headers.get("x-amz-delete-marker"), miss.headers.get("x-amz-version-id")]).toEqual(["true", marker]);
        const headMiss = await signedFetch(cluster.peer(i).s3Url, { method: "HEAD", path: s3Path(B, "k") });
        expect([headMiss.status, headMiss.headers.get("x-amz-delete-marker")]).toEqual([404, "true"]);
      }
      // The marker's own id: 405, as S3 answers.
      const onMarker = await signedFetch(cluster.peer(2).s3Url, { method: "GET", path: s3Path(B, "k"), query: { versionId: marker } });
      expect([onMarker.status, onMarker.headers.get("x-amz-delete-marker")]).toEqual([405, "true"]);
      expect(onMarker.text).toContain("MethodNotAllowed");
      expect((await s3[1].send(new ListObjectsV2Command({ Bucket: B }))).KeyCount).toBe(0);
      const listed = await allVersions(2, B);
      expect(listed.map((v) => [v.id, v.latest, v.marker])).toEqual([
        [marker, true, true],
        [ids[2], false, false],
        [ids[1], false, false],
        [ids[0], false, false],
      ]);

      // Removing the marker brings "three" back; removing "three" (current) brings "two".
      const unmark = await s3[1].send(new DeleteObjectCommand({ Bucket: B, Key: "k", VersionId: marker }));
      expect([unmark.VersionId, unmark.DeleteMarker]).toEqual([marker, true]);
      expect(await get(2, B, "k")).toEqual({ versionId: ids[2], text: "three" });
      await s3[2].send(new DeleteObjectCommand({ Bucket: B, Key: "k", VersionId: ids[2] }));
      expect(await get(0, B, "k")).toEqual({ versionId: ids[1], text: "two" });
      // A noncurrent version goes for good; the current one stays.
      await s3[0].send(new DeleteObjectCommand({ Bucket: B, Key: "k", VersionId: ids[0] }));
      const gone = await sdkFailure("deleted version", s3[1].send(new GetObjectCommand({ Bucket: B, Key: "k", VersionId: ids[0] })));
      expect([gone.status, gone.name]).toEqual([404, "NoSuchVersion"]);
      expect(await get(1, B, "k")).toEqual({ versionId: ids[1], text: "two" });
      expect((await allVersions(1, B)).map((v) => v.id)).toEqual([ids[1]]);
      const badId = await sdkFailure("malformed id", s3[0].send(new GetObjectCommand({ Bucket: B, Key: "k", VersionId: "not-an-id" })));
      expect([badId.status, badId.name]).toEqual([400, "InvalidArgument"]);
      // The last version removed: the key is gone, and the bucket can be deleted.
      await s3[2].send(new DeleteObjectCommand({ Bucket: B, Key: "k", VersionId: ids[1] }));
      expect(await allVersions(0, B)).toEqual([]);
      expect((await sdkFailure("no versions left", s3[0].send(new GetObjectCommand({ Bucket: B, Key: "k" })))).name).toBe("NoSuchKey");
    },
    T,
  );

  test(
    "ListObjectVersions: pages of every size with key and version-id markers give the whole listing once, one latest per key; a delimiter rolls up",
    async () => {
      const B = "ver-list";
      await versioned(B);
      const plan: Array<[string, number]> = [["a/1", 3], ["a/2", 2], ["b", 4], ["c/d/e", 1], ["z", 2]];
      for (const [key, n] of plan) for (let v = 0; v < n; v++) await put(v % 3, B, key, `${key}#${v}`);
      await s3[1].send(new DeleteObjectCommand({ Bucket: B, Key: "a/2" }));
      const whole = await allVersions(2, B);
      expect(whole.length).toBe(3 + 2 + 1 + 4 + 1 + 2);
      // One latest per key: the newest (first in id order), a delete marker for a/2.
      for (const [key] of plan) {
        const mine = whole.filter((v) => v.key === key);
        expect(mine.filter((v) => v.latest).map((v) => v.id)).toEqual([mine[0].id]);
      }
      expect(whole.find((v) => v.key === "a/2" && v.latest)?.marker).toBe(true);

      for (const size of [1, 2, 3, 5]) {
        const seen: ReturnType<typeof flatten> = [];
        let keyMarker: string | undefined;
        let idMarker: string | undefined;
        for (let page = 0; page < 40; page++) {
          const out = await s3[page % 3].send(new ListObjectVersionsCommand({ Bucket: B, MaxKeys: size, KeyMarker: keyMarker, VersionIdMarker: idMarker }));
          const got = flatten(out);
          expect(got.length).toBeLessThanOrEqual(size);
          seen.push(...got);
          if (!out.IsTruncated) break;
          keyMarker = out.NextKeyMarker;
          idMarker = out.NextVersionIdMarker;
        }
        expect(seen).toEqual(whole);
      }
      // A key-marker alone resumes after every version of that key.
      const after = flatten(await s3[0].send(new ListObjectVersionsCommand({ Bucket: B, KeyMarker: "b" })));
      expect(after).toEqual(whole.filter((v) => v.key > "b"));
      const rolled = await s3[1].send(new ListObjectVersionsCommand({ Bucket: B, Delimiter: "/" }));
      expect((rolled.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["a/", "c/"]);
      expect(flatten(rolled).map((v) => v.key)).toEqual(["b", "b", "b", "b", "z", "z"]);
      const under = await s3[2].send(new ListObjectVersionsCommand({ Bucket: B, Prefix: "a/", Delimiter: "/", MaxKeys: 2 }));
      expect(under.IsTruncated).toBe(true);
      const noKey = await sdkFailure("version-id-marker alone", s3[0].send(new ListObjectVersionsCommand({ Bucket: B, VersionIdMarker: whole[0].id })));
      expect([noKey.status, noKey.name]).toEqual([400, "InvalidArgument"]);
      // Noncurrent versions and markers keep a bucket from being deleted.
      await s3[0].send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: plan.map(([Key]) => ({ Key })) } }));
      const notEmpty = await signedFetch(cluster.peer(0).s3Url, { method: "DELETE", path: s3Path(B) });
      expect([notEmpty.status, notEmpty.text.includes("BucketNotEmpty")]).toEqual([409, true]);
    },
    T,
  );

  test(
    "CopyObject from a version (and over its own key to restore it); DeleteObjects by version id and without",
    async () => {
      const B = "ver-copy";
      await versioned(B);
      const v1 = (await put(0, B, "doc", "first")).VersionId!;
      const v2 = (await put(1, B, "doc", "second")).VersionId!;
      const copied = await s3[2].send(new CopyObjectCommand({ Bucket: B, Key: "copy", CopySource: `${B}/doc?versionId=${v1}` }));
      expect(copied.CopySourceVersionId).toBe(v1);
      expect(await get(0, B, "copy")).toEqual({ versionId: copied.VersionId, text: "first" });
      // Restoring an old version in place makes it the newest version (S3's way to roll back).
      const restored = await s3[0].send(new CopyObjectCommand({ Bucket: B, Key: "doc", CopySource: `${B}/doc?versionId=${v1}` }));
      expect(restored.VersionId! < v2).toBe(true);
      expect(await get(1, B, "doc")).toEqual({ versionId: restored.VersionId, text: "first" });
      const noVersion = await sdkFailure("copy of a missing version", s3[0].send(new CopyObjectCommand({ Bucket: B, Key: "x", CopySource: `${B}/doc?versionId=${v2.slice(0, -2)}0~` })));
      expect(noVersion.name).toBe("NoSuchVersion");

      const out = await s3[1].send(
        new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: [{ Key: "doc", VersionId: v1 }, { Key: "doc", VersionId: v2 }, { Key: "copy" }] } }),
      );
      expect(out.Errors ?? []).toEqual([]);
      const deleted = (out.Deleted ?? []).map((d) => [d.Key, d.VersionId, d.DeleteMarker, d.DeleteMarkerVersionId !== undefined]);
      expect(deleted).toContainEqual(["doc", v1, undefined, false]);
      expect(deleted).toContainEqual(["doc", v2, undefined, false]);
      expect(deleted).toContainEqual(["copy", undefined, true, true]);
      expect(await get(2, B, "doc")).toEqual({ versionId: restored.VersionId, text: "first" });
      expect((await allVersions(0, B, { Prefix: "doc" })).map((v) => v.id)).toEqual([restored.VersionId!]);
    },
    T,
  );

  test(
    "suspended: writes replace the one null version (older versions stay), a delete makes a null marker; objects from before versioning are null versions",
    async () => {
      const B = "ver-null";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      await put(0, B, "old", "from before");
      await s3[1].send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Enabled" } }));
      // Listed at once as the null version, and kept when overwritten.
      expect((await allVersions(2, B)).map((v) => [v.key, v.id, v.latest])).toEqual([["old", "null", true]]);
      const enabled = (await put(1, B, "old", "after")).VersionId!;
      expect(await get(2, B, "old", "null")).toEqual({ versionId: "null", text: "from before" });
      expect(await get(0, B, "old")).toEqual({ versionId: enabled, text: "after" });

      await s3[2].send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Suspended" } }));
      expect((await put(0, B, "old", "suspended 1")).VersionId).toBe("null");
      expect((await put(1, B, "old", "suspended 2")).VersionId).toBe("null");
      expect(await get(2, B, "old")).toEqual({ versionId: "null", text: "suspended 2" });
      expect(await get(0, B, "old", "null")).toEqual({ versionId: "null", text: "suspended 2" });
      expect((await allVersions(1, B)).map((v) => [v.id, v.latest])).toEqual([
        [enabled, false],
        ["null", true],
      ]);
      const del = await s3[1].send(new DeleteObjectCommand({ Bucket: B, Key: "old" }));
      expect([del.DeleteMarker, del.VersionId]).toEqual([true, "null"]);
      expect((await allVersions(2, B)).map((v) => [v.id, v.latest, v.marker])).toEqual([
        [enabled, false, false],
        ["null", true, true],
      ]);
      expect(await get(0, B, "old", enabled)).toEqual({ versionId: enabled, text: "after" });
    },
    T,
  );

  test(
    "change events: a versioned write is ObjectCreated:Put with its version, a delete marker ObjectRemoved:DeleteMarkerCreated; the native API reads ?versionId=",
    async () => {
      const B = "ver-events";
      await versioned(B);
      const v1 = (await put(0, B, "e", "native one")).VersionId!;
      const v2 = (await put(1, B, "e", "native two")).VersionId!;
      const marker = (await s3[2].send(new DeleteObjectCommand({ Bucket: B, Key: "e" }))).VersionId!;
      // Events are readable once no earlier one can still arrive (src/changes/gate.ts).
      type Rec = { eventName: string; s3: { object: { key: string; versionId?: string } } };
      let events: Rec[] = [];
      await cluster.waitFor("three events", async () => {
        events = json<{ events: Rec[] }>(await request(cluster.peer(0).httpUrl, "GET", `/buckets/${B}/events?limit=100&types=ObjectCreated:*,ObjectRemoved:*`)).events;
        return events.length >= 3;
      });
      expect(events.map((e) => [e.eventName, e.s3.object.versionId])).toEqual([
        ["ObjectCreated:Put", v1],
        ["ObjectCreated:Put", v2],
        ["ObjectRemoved:DeleteMarkerCreated", marker],
      ]);
      const native = await request(cluster.peer(1).httpUrl, "GET", `/buckets/${B}/objects/e?versionId=${v1}`);
      expect([native.status, native.headers.get("x-version-id"), new TextDecoder().decode(native.body)]).toEqual([200, v1, "native one"]);
      expect((await request(cluster.peer(2).httpUrl, "GET", `/buckets/${B}/objects/e`)).status).toBe(404);
      expect((await request(cluster.peer(2).httpUrl, "GET", `/buckets/${B}/objects/e?versionId=${marker}`)).status).toBe(405);
    },
    T,
  );

  test(
    "CompleteMultipartUpload makes a version; writers and version deletes racing through different peers leave the object row agreeing with the newest version",
    async () => {
      const B = "ver-race";
      await versioned(B);
      const created = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: B, Key: "mp" }));
      const part = await s3[1].send(new UploadPartCommand({ Bucket: B, Key: "mp", UploadId: created.UploadId, PartNumber: 1, Body: enc.encode("multipart body") }));
      const done = await s3[2].send(new CompleteMultipartUploadCommand({ Bucket: B, Key: "mp", UploadId: created.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
      expect(done.VersionId).toMatch(/~$/);
      expect(await get(0, B, "mp", done.VersionId)).toEqual({ versionId: done.VersionId, text: "multipart body" });

      for (let round = 0; round < 12; round++) {
        const base = (await put(round % 3, B, "hot", `base ${round}`)).VersionId!;
        // A DELETE of the current version and two PUTs, at once through the three peers.
        await Promise.all([
          s3[(round + 1) % 3].send(new DeleteObjectCommand({ Bucket: B, Key: "hot", VersionId: base })),
          put((round + 2) % 3, B, "hot", `racer ${round}`),
          put(round % 3, B, "hot", `racer b ${round}`),
        ]);
        const top = (await allVersions((round + 1) % 3, B, { Prefix: "hot" })).filter((v) => v.latest);
        expect(top.length).toBe(1);
        for (const i of [0, 1, 2]) expect((await get(i, B, "hot")).versionId).toBe(top[0].id);
      }
    },
    T,
  );

  test(
    "chunk GC keeps a noncurrent version's chunks (while it collects an unversioned overwrite's), and GET by version id reads them back",
    async () => {
      const V = "ver-gc";
      const U = "ver-gc-plain";
      await versioned(V);
      await s3[0].send(new CreateBucketCommand({ Bucket: U }));
      const old = seededBytes(3 * CHUNK + 100, 7);
      const v1 = (await put(0, V, "big", old)).VersionId!;
      await put(1, U, "big", old.slice(1));
      const keptChunks = (await locate(cluster.peer(0).httpUrl, V, "big")).chunks.map((c) => c.id);
      const doomed = (await locate(cluster.peer(0).httpUrl, U, "big")).chunks.map((c) => c.id);
      expect(keptChunks.length).toBe(4);
      await put(2, V, "big", seededBytes(2 * CHUNK, 8));
      await put(2, U, "big", seededBytes(2 * CHUNK, 9));
      const onDisk = (i: number, id: string) => existsSync(path.join(cluster.peers[i].dataDir, "chunks", id.slice(0, 2), id));
      // GC ran past its grace on every peer: the unversioned object's old chunks are gone.
      await cluster.waitFor("the overwritten unversioned chunks collected", () => [0, 1, 2].every((i) => doomed.every((id) => !onDisk(i, id))), 20_000, 100);
      for (const id of keptChunks) expect([0, 1, 2].filter((i) => onDisk(i, id)).length).toBe(3);
      for (const i of [0, 1, 2]) {
        const back = await s3[i].send(new GetObjectCommand({ Bucket: V, Key: "big", VersionId: v1 }));
        expect(sameBytes(await bodyBytes(back.Body), old)).toBe(true);
      }
    },
    T,
  );
});
