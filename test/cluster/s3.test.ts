// The S3 API through the AWS SDK for JavaScript v3 against a 3-peer in-process mesh over
// real TCP: buckets, objects with metadata, ranges and conditions, copy, every listing
// flavour, versions, multipart by hand with parts through different peers, lib-storage's
// Upload, UploadPartCopy, presigned URLs used with plain fetch, a 1,000-key batch
// delete, checksums, aws-chunked streaming uploads, and one store shared with the
// native API.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { compareUtf8, describeBytes, md5Hex, mustCreateBucket, mustPut, objectPath, request, sameBytes, statusAndCode } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import {
  MiB,
  bodyBytes,
  crc32Base64,
  crc32cBase64,
  mapLimit,
  md5Base64,
  multipartEtag,
  s3Client,
  s3Path,
  s3StatusAndCode,
  sdkFailure,
  sha256Base64,
  signedFetch,
  splitParts,
} from "../harness/s3.ts";

const T = 60_000;
let cluster: Cluster;
/** One SDK client per peer: s3[i] talks to peer i. */
let s3: S3Client[] = [];
const BUCKET = "s3-happy";

const http = (i: number) => cluster.peer(i).httpUrl;
const q = (etag: string) => `"${etag}"`;

/** Fail with sizes and hashes rather than megabytes of bytes. */
function expectSameBytes(label: string, got: Uint8Array, want: Uint8Array): void {
  if (!sameBytes(got, want)) throw new Error(`${label}: got ${describeBytes(got)}, want ${describeBytes(want)}`);
}

async function getBytes(client: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return bodyBytes(out.Body);
}

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  s3 = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url));
  // Set up through the native API so that each S3 operation fails on its own test.
  await mustCreateBucket(http(0), BUCKET);
}, T);

afterAll(async () => {
  for (const c of s3) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("S3 buckets", () => {
  test(
    "CreateBucket, HeadBucket, ListBuckets through every peer, GetBucketLocation, GetBucketVersioning, DeleteBucket",
    async () => {
      const name = "s3-lifecycle";
      const created = await s3[1].send(new CreateBucketCommand({ Bucket: name }));
      expect(created.$metadata.httpStatusCode).toBe(200);

      const head = await s3[2].send(new HeadBucketCommand({ Bucket: name }));
      expect(head.$metadata.httpStatusCode).toBe(200);

      for (const i of [0, 1, 2]) {
        const list = await s3[i].send(new ListBucketsCommand({}));
        const names = (list.Buckets ?? []).map((b) => b.Name);
        expect(names).toContain(name);
        expect(names).toContain(BUCKET);
        const mine = list.Buckets!.find((b) => b.Name === name)!;
        expect(mine.CreationDate).toBeInstanceOf(Date);
        expect(Math.abs(mine.CreationDate!.getTime() - Date.now())).toBeLessThan(5 * 60_000);
      }

      const loc = await s3[0].send(new GetBucketLocationCommand({ Bucket: name }));
      expect(loc.$metadata.httpStatusCode).toBe(200);
      // us-east-1 buckets answer an empty LocationConstraint on S3; naming the region is fine too.
      expect([undefined, "", "us-east-1"]).toContain(loc.LocationConstraint as string | undefined);

      const ver = await s3[1].send(new GetBucketVersioningCommand({ Bucket: name }));
      expect(ver.$metadata.httpStatusCode).toBe(200);
      expect(ver.Status).toBeUndefined();
      expect(ver.MFADelete).toBeUndefined();

      // Any region is accepted in the signature scope.
      for (const region of ["eu-west-3", "mesh-local-1"]) {
        const other = s3Client(cluster.peer(2).s3Url, undefined, { region });
        try {
          await other.send(new PutObjectCommand({ Bucket: name, Key: `region-${region}`, Body: region }));
          expect(new TextDecoder().decode(await getBytes(other, name, `region-${region}`))).toBe(region);
          await other.send(new DeleteObjectCommand({ Bucket: name, Key: `region-${region}` }));
        } finally {
          other.destroy();
        }
      }

      const del = await s3[0].send(new DeleteBucketCommand({ Bucket: name }));
      expect(del.$metadata.httpStatusCode).toBe(204);
      const gone = await sdkFailure("HeadBucket after delete", s3[2].send(new HeadBucketCommand({ Bucket: name })));
      expect(gone.status).toBe(404);
      for (const i of [0, 1, 2]) {
        const names = ((await s3[i].send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
        expect(names).not.toContain(name);
      }
    },
    T,
  );
});

describe("S3 objects", () => {
  test(
    "PutObject, GetObject and HeadObject through different peers keep bytes, ETag, user metadata, Content-Type/-Disposition, Cache-Control",
    async () => {
      const sizes = [0, 100, 20_000, 3 * MiB + 17];
      for (const [n, size] of sizes.entries()) {
        const key = `meta/obj-${size}`;
        const data = seededBytes(size, cluster.seed + n);
        const put = await s3[n % 3].send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: key,
            Body: data,
            ContentType: "image/png",
            ContentDisposition: 'attachment; filename="cat.png"',
            CacheControl: "max-age=60",
            Metadata: { owner: "ann", "multi-word": "Hello World 1" },
          }),
        );
        expect(put.ETag).toBe(q(md5Hex(data)));

        const get = await s3[(n + 1) % 3].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        expectSameBytes(`GET ${key}`, await bodyBytes(get.Body), data);
        expect(get.ETag).toBe(q(md5Hex(data)));
        expect(get.ContentLength).toBe(size);
        expect(get.ContentType).toBe("image/png");
        expect(get.ContentDisposition).toBe('attachment; filename="cat.png"');
        expect(get.CacheControl).toBe("max-age=60");
        expect(get.Metadata).toEqual({ owner: "ann", "multi-word": "Hello World 1" });
        expect(get.LastModified).toBeInstanceOf(Date);
        expect(Math.abs(get.LastModified!.getTime() - Date.now())).toBeLessThan(5 * 60_000);

        const head = await s3[(n + 2) % 3].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
        expect(head.ETag).toBe(q(md5Hex(data)));
        expect(head.ContentLength).toBe(size);
        expect(head.ContentType).toBe("image/png");
        expect(head.ContentDisposition).toBe('attachment; filename="cat.png"');
        expect(head.CacheControl).toBe("max-age=60");
        expect(head.Metadata).toEqual({ owner: "ann", "multi-word": "Hello World 1" });
        expect(head.LastModified?.getTime()).toBe(get.LastModified!.getTime());
      }
    },
    T,
  );

  test(
    "Content-Encoding is kept and the stored bytes come back untouched",
    async () => {
      const plain = seededBytes(50_000, cluster.seed + 7);
      const gz = new Uint8Array(zlib.gzipSync(plain));
      const key = "meta/compressed.txt";
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: gz, ContentEncoding: "gzip", ContentType: "text/plain" }));
      const get = await s3[1].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(get.ContentEncoding).toBe("gzip");
      expect(get.ContentType).toBe("text/plain");
      expectSameBytes("GET gzip object", await bodyBytes(get.Body), gz);
      const head = await s3[2].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(head.ContentEncoding).toBe("gzip");
      expect(head.ContentLength).toBe(gz.byteLength);
    },
    T,
  );

  test(
    "Range GETs answer 206 with Content-Range, within and across chunks, suffix and open-ended",
    async () => {
      const size = 3 * MiB + 5;
      const data = seededBytes(size, cluster.seed + 11);
      const key = "range/obj";
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data }));
      const cases: Array<[string, number, number]> = [
        ["bytes=100-1099", 100, 1099],
        [`bytes=${MiB - 10}-${MiB + 9}`, MiB - 10, MiB + 9],
        ["bytes=-500", size - 500, size - 1],
        [`bytes=${size - 3}-`, size - 3, size - 1],
        [`bytes=0-${size + 1000}`, 0, size - 1],
      ];
      for (const [n, [range, first, last]] of cases.entries()) {
        const get = await s3[n % 3].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
        expect(`${range}: ${get.$metadata.httpStatusCode}`).toBe(`${range}: 206`);
        expect(get.ContentRange).toBe(`bytes ${first}-${last}/${size}`);
        expect(get.ContentLength).toBe(last - first + 1);
        expectSameBytes(`GET ${range}`, await bodyBytes(get.Body), data.subarray(first, last + 1));
      }
    },
    T,
  );

  test(
    "conditional GET and HEAD: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since",
    async () => {
      const data = seededBytes(2000, cluster.seed + 13);
      const key = "cond/obj";
      const put = await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data }));
      const etag = put.ETag!;
      const head = await s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      const lm = head.LastModified!.getTime();
      const before = new Date(lm - 3600_000);
      const after = new Date(lm + 3600_000);
      const other = q("0123456789abcdef0123456789abcdef");

      const ok = async (label: string, input: Record<string, unknown>, i: number) => {
        const out = await s3[i].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ...input }));
        expect(`${label}: ${out.$metadata.httpStatusCode}`).toBe(`${label}: 200`);
        expectSameBytes(label, await bodyBytes(out.Body), data);
      };
      const fails = async (label: string, input: Record<string, unknown>, i: number, status: number, name?: string) => {
        const f = await sdkFailure(label, s3[i].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ...input })));
        expect(`${label}: ${f.status}`).toBe(`${label}: ${status}`);
        if (name) expect(`${label}: ${f.name}`).toBe(`${label}: ${name}`);
      };

      await ok("If-Match current", { IfMatch: etag }, 0);
      await fails("If-Match other", { IfMatch: other }, 1, 412, "PreconditionFailed");
      await fails("If-None-Match current", { IfNoneMatch: etag }, 2, 304);
      await ok("If-None-Match other", { IfNoneMatch: other }, 0);
      await fails("If-Modified-Since later", { IfModifiedSince: after }, 1, 304);
      await ok("If-Modified-Since earlier", { IfModifiedSince: before }, 2);
      await fails("If-Unmodified-Since earlier", { IfUnmodifiedSince: before }, 0, 412, "PreconditionFailed");
      await ok("If-Unmodified-Since later", { IfUnmodifiedSince: after }, 1);
      await ok("If-Match current wins over If-Unmodified-Since earlier", { IfMatch: etag, IfUnmodifiedSince: before }, 2);
      await fails("If-None-Match current wins over If-Modified-Since earlier", { IfNoneMatch: etag, IfModifiedSince: before }, 0, 304);

      const h1 = await sdkFailure("HEAD If-None-Match current", s3[2].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, IfNoneMatch: etag })));
      expect(h1.status).toBe(304);
      const h2 = await sdkFailure("HEAD If-Match other", s3[0].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, IfMatch: other })));
      expect(h2.status).toBe(412);
      const h3 = await s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, IfMatch: etag }));
      expect(h3.$metadata.httpStatusCode).toBe(200);
    },
    T,
  );

  test(
    "DeleteObject answers 204 for a present and an absent key; the key is gone from every peer",
    async () => {
      const key = "del/obj";
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "bye" }));
      const d1 = await s3[1].send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(d1.$metadata.httpStatusCode).toBe(204);
      for (const i of [0, 1, 2]) {
        const f = await sdkFailure(`GET deleted via ${i}`, s3[i].send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
        expect(`${f.status} ${f.name}`).toBe("404 NoSuchKey");
      }
      const d2 = await s3[2].send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "del/never-existed" }));
      expect(d2.$metadata.httpStatusCode).toBe(204);
    },
    T,
  );

  test(
    "CopyObject: COPY keeps metadata and content type, REPLACE sets new ones; across buckets, peers and awkward keys",
    async () => {
      await mustCreateBucket(http(0), "s3-copy-dest");
      const srcKey = "copy/src ü+&=?#.bin";
      const data = seededBytes(2 * MiB + 3, cluster.seed + 17);
      const put = await s3[0].send(
        new PutObjectCommand({ Bucket: BUCKET, Key: srcKey, Body: data, ContentType: "application/x-src", Metadata: { origin: "source", n: "1" }, CacheControl: "no-cache" }),
      );
      const copySource = `${BUCKET}/${encodeURIComponent(srcKey)}`;

      const c1 = await s3[1].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/dest-copy", CopySource: copySource }));
      expect(c1.CopyObjectResult?.ETag).toBe(put.ETag);
      expect(c1.CopyObjectResult?.LastModified).toBeInstanceOf(Date);
      const g1 = await s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: "copy/dest-copy" }));
      expectSameBytes("COPY dest", await bodyBytes(g1.Body), data);
      expect(g1.ETag).toBe(put.ETag);
      expect(g1.ContentType).toBe("application/x-src");
      expect(g1.Metadata).toEqual({ origin: "source", n: "1" });

      const c2 = await s3[2].send(
        new CopyObjectCommand({
          Bucket: "s3-copy-dest",
          Key: "replaced ü",
          CopySource: copySource,
          MetadataDirective: "REPLACE",
          ContentType: "text/x-new",
          Metadata: { fresh: "yes" },
        }),
      );
      expect(c2.CopyObjectResult?.ETag).toBe(put.ETag);
      const g2 = await s3[0].send(new GetObjectCommand({ Bucket: "s3-copy-dest", Key: "replaced ü" }));
      expectSameBytes("REPLACE dest", await bodyBytes(g2.Body), data);
      expect(g2.ContentType).toBe("text/x-new");
      expect(g2.Metadata).toEqual({ fresh: "yes" });

      // Explicit COPY directive; the source is untouched by all of this.
      await s3[0].send(new CopyObjectCommand({ Bucket: "s3-copy-dest", Key: "explicit-copy", CopySource: copySource, MetadataDirective: "COPY" }));
      const h3 = await s3[1].send(new HeadObjectCommand({ Bucket: "s3-copy-dest", Key: "explicit-copy" }));
      expect(h3.Metadata).toEqual({ origin: "source", n: "1" });
      expect(h3.ContentLength).toBe(data.byteLength);
      const src = await s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: srcKey }));
      expect(src.Metadata).toEqual({ origin: "source", n: "1" });
      expect(src.ContentType).toBe("application/x-src");

      // A copy onto itself with REPLACE is how S3 clients change metadata in place.
      await s3[2].send(new CopyObjectCommand({ Bucket: BUCKET, Key: srcKey, CopySource: copySource, MetadataDirective: "REPLACE", Metadata: { origin: "edited" } }));
      const edited = await s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: srcKey }));
      expect(edited.Metadata).toEqual({ origin: "edited" });
      expectSameBytes("self-copy", await bodyBytes(edited.Body), data);
    },
    T,
  );
});

describe("S3 listing", () => {
  const LB = "s3-list";
  const many = Array.from({ length: 25 }, (_, i) => `many/${String(i).padStart(2, "0")}`);
  const odd = ["odd/ü-umlaut", "odd/ctl\u0001char", "odd/plus+amp&eq=", "odd/日本"];
  const keys = ["a/1", "a/2", "a/b/3", "b/1", "c", ...many, ...odd].sort(compareUtf8);
  let ready: Promise<void> | undefined;
  /** Fill LB once (through the native API), shared by the listing tests. */
  const fill = () =>
    (ready ??= (async () => {
      await mustCreateBucket(http(0), LB);
      await mapLimit(keys, 16, (k, i) => mustPut(http(i % 3), LB, k, `body of ${k}`));
    })());

  test(
    "ListObjectsV2: everything, prefix + delimiter with CommonPrefixes, max-keys pages with continuation tokens through different peers, start-after",
    async () => {
      await fill();
      const all = await s3[0].send(new ListObjectsV2Command({ Bucket: LB }));
      expect((all.Contents ?? []).map((o) => o.Key)).toEqual(keys);
      expect(all.KeyCount).toBe(keys.length);
      expect(all.IsTruncated).toBe(false);
      const c = all.Contents!.find((o) => o.Key === "c")!;
      expect(c.Size).toBe("body of c".length);
      expect(c.ETag).toBe(q(md5Hex(new TextEncoder().encode("body of c"))));
      expect(c.LastModified).toBeInstanceOf(Date);

      const root = await s3[1].send(new ListObjectsV2Command({ Bucket: LB, Delimiter: "/" }));
      expect((root.Contents ?? []).map((o) => o.Key)).toEqual(["c"]);
      expect((root.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["a/", "b/", "many/", "odd/"]);
      expect(root.KeyCount).toBe(5);

      const a = await s3[2].send(new ListObjectsV2Command({ Bucket: LB, Prefix: "a/", Delimiter: "/" }));
      expect((a.Contents ?? []).map((o) => o.Key)).toEqual(["a/1", "a/2"]);
      expect((a.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["a/b/"]);
      expect(a.Prefix).toBe("a/");
      expect(a.Delimiter).toBe("/");

      const got: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await s3[pages % 3].send(new ListObjectsV2Command({ Bucket: LB, Prefix: "many/", MaxKeys: 10, ContinuationToken: token }));
        pages++;
        expect(page.MaxKeys).toBe(10);
        expect(page.KeyCount).toBe((page.Contents ?? []).length);
        got.push(...(page.Contents ?? []).map((o) => o.Key!));
        if (page.IsTruncated) {
          expect(typeof page.NextContinuationToken).toBe("string");
          expect(page.Contents!.length).toBe(10);
        } else expect(page.NextContinuationToken).toBeUndefined();
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
        if (token) expect(token.length).toBeGreaterThan(0);
      } while (token && pages < 10);
      expect(pages).toBe(3);
      expect(got).toEqual(many);

      const sa = await s3[0].send(new ListObjectsV2Command({ Bucket: LB, Prefix: "many/", StartAfter: "many/07", MaxKeys: 5 }));
      expect((sa.Contents ?? []).map((o) => o.Key)).toEqual(["many/08", "many/09", "many/10", "many/11", "many/12"]);
      expect(sa.IsTruncated).toBe(true);
      expect(sa.StartAfter).toBe("many/07");

      const none = await s3[1].send(new ListObjectsV2Command({ Bucket: LB, Prefix: "nothing-here/" }));
      expect(none.Contents ?? []).toEqual([]);
      expect(none.KeyCount).toBe(0);
    },
    T,
  );

  test(
    "ListObjectsV2 with encoding-type=url percent-encodes keys (control characters, UTF-8) and prefixes",
    async () => {
      await fill();
      const out = await s3[1].send(new ListObjectsV2Command({ Bucket: LB, Prefix: "odd/", EncodingType: "url" }));
      expect(out.EncodingType).toBe("url");
      const raw = (out.Contents ?? []).map((o) => o.Key!);
      expect(raw.length).toBe(odd.length);
      for (const k of raw) expect(/^[\x21-\x7e]*$/.test(k)).toBe(true);
      expect(raw.map((k) => decodeURIComponent(k.replace(/\+/g, "%20")))).toEqual(odd.slice().sort(compareUtf8));
      expect(raw).toContain("odd/ctl%01char");

      const root = await s3[2].send(new ListObjectsV2Command({ Bucket: LB, Delimiter: "/", EncodingType: "url" }));
      expect((root.CommonPrefixes ?? []).map((p) => decodeURIComponent(p.Prefix!))).toEqual(["a/", "b/", "many/", "odd/"]);
    },
    T,
  );

  test(
    "ListObjects (v1): marker, max-keys, IsTruncated, NextMarker with a delimiter, CommonPrefixes",
    async () => {
      await fill();
      const got: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await s3[pages % 3].send(new ListObjectsCommand({ Bucket: LB, Prefix: "many/", MaxKeys: 7, Marker: marker }));
        pages++;
        expect(page.MaxKeys).toBe(7);
        if (marker) expect(page.Marker).toBe(marker);
        const ks = (page.Contents ?? []).map((o) => o.Key!);
        got.push(...ks);
        if (!page.IsTruncated || pages > 10) break;
        expect(ks.length).toBe(7);
        // Without a delimiter S3 may leave NextMarker out; the last key is the marker then.
        marker = page.NextMarker ?? ks[ks.length - 1];
      }
      expect(pages).toBe(4);
      expect(got).toEqual(many);

      const d1 = await s3[0].send(new ListObjectsCommand({ Bucket: LB, Delimiter: "/", MaxKeys: 2 }));
      expect(d1.IsTruncated).toBe(true);
      expect((d1.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["a/", "b/"]);
      expect(d1.Contents ?? []).toEqual([]);
      expect(d1.NextMarker).toBe("b/");
      const d2 = await s3[1].send(new ListObjectsCommand({ Bucket: LB, Delimiter: "/", Marker: d1.NextMarker }));
      expect(d2.IsTruncated).toBe(false);
      expect((d2.Contents ?? []).map((o) => o.Key)).toEqual(["c"]);
      expect((d2.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["many/", "odd/"]);

      const a = await s3[2].send(new ListObjectsCommand({ Bucket: LB, Prefix: "a/" }));
      expect((a.Contents ?? []).map((o) => o.Key)).toEqual(["a/1", "a/2", "a/b/3"]);
      expect(a.IsTruncated).toBe(false);
    },
    T,
  );

  test(
    "ListObjectVersions lists current objects with VersionId null and IsLatest",
    async () => {
      await fill();
      const out = await s3[2].send(new ListObjectVersionsCommand({ Bucket: LB, Prefix: "a/" }));
      const versions = out.Versions ?? [];
      expect(versions.map((v) => v.Key)).toEqual(["a/1", "a/2", "a/b/3"]);
      for (const v of versions) {
        expect(v.VersionId).toBe("null");
        expect(v.IsLatest).toBe(true);
        expect(v.ETag).toBe(q(md5Hex(new TextEncoder().encode(`body of ${v.Key}`))));
        expect(v.Size).toBe(`body of ${v.Key}`.length);
        expect(v.LastModified).toBeInstanceOf(Date);
      }
      expect(out.DeleteMarkers ?? []).toEqual([]);
      expect(out.IsTruncated).toBe(false);

      const grouped = await s3[0].send(new ListObjectVersionsCommand({ Bucket: LB, Delimiter: "/" }));
      expect((grouped.Versions ?? []).map((v) => v.Key)).toEqual(["c"]);
      expect((grouped.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["a/", "b/", "many/", "odd/"]);
    },
    T,
  );
});

describe("S3 multipart", () => {
  test(
    "deleting a bucket drops its uploads in progress: a new bucket of the same name lists none, and the old upload id is gone",
    async () => {
      const name = "s3-mpu-drop";
      await s3[0].send(new CreateBucketCommand({ Bucket: name }));
      const up = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: name, Key: "a/\u0000nul-key" }));
      await s3[1].send(new UploadPartCommand({ Bucket: name, Key: "a/\u0000nul-key", UploadId: up.UploadId, PartNumber: 1, Body: new Uint8Array(1000) }));
      await s3[2].send(new DeleteBucketCommand({ Bucket: name }));
      await s3[1].send(new CreateBucketCommand({ Bucket: name }));
      for (const c of s3) expect((await c.send(new ListMultipartUploadsCommand({ Bucket: name }))).Uploads ?? []).toEqual([]);
      const err = await s3[0].send(new AbortMultipartUploadCommand({ Bucket: name, Key: "a/\u0000nul-key", UploadId: up.UploadId })).then(
        () => null,
        (e: { name?: string }) => e.name,
      );
      expect(err).toBe("NoSuchUpload");
      await s3[0].send(new DeleteBucketCommand({ Bucket: name }));
    },
    T,
  );

  test(
    "50 MiB by hand: created on peer 0, part i uploaded through peer i%3, listed, completed on peer 1, read from peer 2",
    async () => {
      const key = "mpu/by-hand-50MiB";
      const data = seededBytes(50 * MiB, cluster.seed + 23);
      const parts = splitParts(data, 5 * MiB);
      expect(parts.length).toBe(10);

      const created = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ContentType: "application/x-big", Metadata: { kind: "mpu" } }));
      const uploadId = created.UploadId!;
      expect(typeof uploadId).toBe("string");
      expect(created.Bucket).toBe(BUCKET);
      expect(created.Key).toBe(key);

      const listed = await s3[1].send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      expect((listed.Uploads ?? []).some((u) => u.UploadId === uploadId && u.Key === key)).toBe(true);

      const etags: string[] = [];
      for (const [n, body] of parts.entries()) {
        const up = await s3[n % 3].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: n + 1, Body: body }));
        expect(up.ETag).toBe(q(md5Hex(body)));
        etags.push(up.ETag!);
      }

      const lp = await s3[2].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
      expect((lp.Parts ?? []).map((p) => [p.PartNumber, p.ETag, p.Size])).toEqual(parts.map((p, n) => [n + 1, etags[n], p.byteLength]));
      const lpPage = await s3[0].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MaxParts: 4, PartNumberMarker: "3" }));
      expect((lpPage.Parts ?? []).map((p) => p.PartNumber)).toEqual([4, 5, 6, 7]);
      expect(lpPage.IsTruncated).toBe(true);
      expect(String(lpPage.NextPartNumberMarker)).toBe("7");

      const done = await s3[1].send(
        new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, n) => ({ ETag, PartNumber: n + 1 })) } }),
      );
      const want = multipartEtag(parts);
      expect(done.ETag).toBe(want);
      expect(done.Key).toBe(key);
      expect(done.Bucket).toBe(BUCKET);

      const get = await s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(get.ETag).toBe(want);
      expect(get.ContentLength).toBe(data.byteLength);
      expect(get.ContentType).toBe("application/x-big");
      expect(get.Metadata).toEqual({ kind: "mpu" });
      expectSameBytes("GET completed 50 MiB", await bodyBytes(get.Body), data);

      const ranged = await s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: `bytes=${5 * MiB - 100}-${5 * MiB + 99}` }));
      expectSameBytes("range across a part boundary", await bodyBytes(ranged.Body), data.subarray(5 * MiB - 100, 5 * MiB + 100));

      const after = await s3[0].send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      expect((after.Uploads ?? []).some((u) => u.UploadId === uploadId)).toBe(false);
      const f = await sdkFailure("ListParts after complete", s3[1].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })));
      expect(`${f.status} ${f.name}`).toBe("404 NoSuchUpload");
    },
    120_000,
  );

  test(
    "lib-storage Upload (partSize 5 MiB, queueSize 4) of 23 MiB through peer 1, read back through peer 0",
    async () => {
      const key = "mpu/lib-storage";
      const data = seededBytes(23 * MiB + 123, cluster.seed + 29);
      const upload = new Upload({
        client: s3[1],
        params: { Bucket: BUCKET, Key: key, Body: data, ContentType: "application/x-lib", Metadata: { via: "lib-storage" } },
        partSize: 5 * MiB,
        queueSize: 4,
        leavePartsOnError: false,
      });
      const out = await upload.done();
      const want = multipartEtag(splitParts(data, 5 * MiB));
      expect(want.endsWith('-5"')).toBe(true);
      expect(out.ETag).toBe(want);

      const get = await s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(get.ETag).toBe(want);
      expect(get.ContentType).toBe("application/x-lib");
      expect(get.Metadata).toEqual({ via: "lib-storage" });
      expectSameBytes("GET lib-storage upload", await bodyBytes(get.Body), data);
    },
    120_000,
  );

  test(
    "lib-storage Upload of a stream of unknown length",
    async () => {
      const key = "mpu/lib-storage-stream";
      const data = seededBytes(11 * MiB + 7, cluster.seed + 31);
      const body = Readable.from((function* () {
        for (let off = 0; off < data.byteLength; off += 256 * 1024) yield Buffer.from(data.subarray(off, Math.min(off + 256 * 1024, data.byteLength)));
      })());
      const out = await new Upload({ client: s3[2], params: { Bucket: BUCKET, Key: key, Body: body }, partSize: 5 * MiB, queueSize: 4 }).done();
      const want = multipartEtag(splitParts(data, 5 * MiB));
      expect(out.ETag).toBe(want);
      expectSameBytes("GET streamed lib-storage upload", await getBytes(s3[1], BUCKET, key), data);
    },
    120_000,
  );

  test(
    "UploadPartCopy takes a byte range of an existing object as a part",
    async () => {
      const srcKey = "mpu/copy-source";
      const src = seededBytes(6 * MiB + 11, cluster.seed + 37);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: srcKey, Body: src }));
      const key = "mpu/with-copied-part";
      const { UploadId } = await s3[1].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const first = src.subarray(MiB, 6 * MiB);
      const copied = await s3[2].send(
        new UploadPartCopyCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, CopySource: `${BUCKET}/${srcKey}`, CopySourceRange: `bytes=${MiB}-${6 * MiB - 1}` }),
      );
      expect(copied.CopyPartResult?.ETag).toBe(q(md5Hex(first)));
      const tail = seededBytes(1000, cluster.seed + 38);
      const up = await s3[0].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 2, Body: tail }));
      const done = await s3[1].send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: copied.CopyPartResult!.ETag }, { PartNumber: 2, ETag: up.ETag }] },
        }),
      );
      expect(done.ETag).toBe(multipartEtag([first, tail]));
      const whole = new Uint8Array(first.byteLength + tail.byteLength);
      whole.set(first);
      whole.set(tail, first.byteLength);
      expectSameBytes("GET object with a copied part", await getBytes(s3[2], BUCKET, key), whole);
    },
    T,
  );

  test(
    "AbortMultipartUpload drops the upload: ListParts and Complete then answer NoSuchUpload, ListMultipartUploads no longer shows it",
    async () => {
      const key = "mpu/aborted";
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const up = await s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: seededBytes(1000, cluster.seed + 41) }));
      const ab = await s3[2].send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
      expect(ab.$metadata.httpStatusCode).toBe(204);
      const lp = await sdkFailure("ListParts after abort", s3[0].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId })));
      expect(`${lp.status} ${lp.name}`).toBe("404 NoSuchUpload");
      const cp = await sdkFailure(
        "Complete after abort",
        s3[1].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: up.ETag }] } })),
      );
      expect(`${cp.status} ${cp.name}`).toBe("404 NoSuchUpload");
      const list = await s3[2].send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      expect((list.Uploads ?? []).some((u) => u.UploadId === UploadId)).toBe(false);
      const head = await sdkFailure("HEAD aborted key", s3[0].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })));
      expect(head.status).toBe(404);
    },
    T,
  );
});

describe("S3 XML request bodies", () => {
  // Go's encoding/xml (aws-sdk-go, minio-go) writes `"` as &#34; and `'` as &#39;; the AWS
  // SDK for Java writes &quot;. All are plain XML and must parse to the same text.
  const styles: Array<[string, (s: string) => string]> = [
    ["raw", (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;")],
    ["named entities", (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;")],
    ["decimal references", (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&#34;").replace(/'/g, "&#39;")],
    ["hex references", (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&#x22;").replace(/'/g, "&#x27;")],
  ];

  test(
    "CompleteMultipartUpload accepts part ETags written with entities or character references",
    async () => {
      for (const [n, [style, esc]] of styles.entries()) {
        const key = `xml/complete-${n}`;
        const { UploadId } = await s3[n % 3].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
        const part = seededBytes(3000, cluster.seed + 100 + n);
        const up = await s3[(n + 1) % 3].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: part }));
        const body = `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>${esc(up.ETag!)}</ETag></Part></CompleteMultipartUpload>`;
        const r = await signedFetch(cluster.peer((n + 2) % 3).s3Url, { method: "POST", path: s3Path(BUCKET, key), query: { uploadId: UploadId! }, body, headers: { "content-type": "application/xml" } });
        expect(`${style}: ${s3StatusAndCode(r)}`).toBe(`${style}: 200`);
        expect(r.text).toContain(multipartEtag([part]).slice(1, -1));
        expectSameBytes(`GET ${key}`, await getBytes(s3[n % 3], BUCKET, key), part);
      }
    },
    T,
  );

  test(
    "DeleteObjects accepts keys written with entities or character references",
    async () => {
      const key = `xml/it's "quoted" & <odd>`;
      for (const [n, [style, esc]] of styles.entries()) {
        await s3[n % 3].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: style }));
        const body = `<Delete><Object><Key>${esc(key)}</Key></Object></Delete>`;
        const r = await signedFetch(cluster.peer((n + 1) % 3).s3Url, {
          method: "POST",
          path: s3Path(BUCKET),
          query: { delete: "" },
          body,
          headers: { "content-type": "application/xml", "content-md5": md5Base64(body) },
        });
        expect(`${style}: ${s3StatusAndCode(r)}`).toBe(`${style}: 200`);
        expect(`${style}: ${r.text.includes("<Error>")}`).toBe(`${style}: false`);
        const head = await sdkFailure(`${style}: HEAD after DeleteObjects`, s3[(n + 2) % 3].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })));
        expect(`${style}: ${head.status}`).toBe(`${style}: 404`);
      }
    },
    T,
  );
});

describe("S3 presigned URLs", () => {
  test(
    "a presigned PUT and a presigned GET work with plain fetch, through different peers",
    async () => {
      const key = "presigned/obj ü.bin";
      const data = seededBytes(300_000, cluster.seed + 43);
      const putUrl = await getSignedUrl(s3[0], new PutObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300 });
      expect(putUrl.startsWith(cluster.peer(0).s3Url)).toBe(true);
      expect(putUrl).toContain("X-Amz-Signature=");
      const put = await fetch(putUrl, { method: "PUT", body: data });
      const putText = await put.text();
      expect(`${put.status} ${putText.slice(0, 300)}`).toBe(`200 ${putText.slice(0, 300)}`);
      expect(put.headers.get("etag")).toBe(q(md5Hex(data)));

      const getUrl = await getSignedUrl(s3[2], new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300 });
      const get = await fetch(getUrl);
      expect(get.status).toBe(200);
      expect(get.headers.get("etag")).toBe(q(md5Hex(data)));
      expectSameBytes("presigned GET", new Uint8Array(await get.arrayBuffer()), data);

      // Response header overrides are part of the signed query.
      const dlUrl = await getSignedUrl(
        s3[1],
        new GetObjectCommand({ Bucket: BUCKET, Key: key, ResponseContentDisposition: 'attachment; filename="x.bin"', ResponseContentType: "application/x-download" }),
        { expiresIn: 300 },
      );
      const dl = await fetch(dlUrl);
      expect(dl.status).toBe(200);
      expect(dl.headers.get("content-disposition")).toBe('attachment; filename="x.bin"');
      expect(dl.headers.get("content-type")).toBe("application/x-download");
      expectSameBytes("presigned GET with overrides", new Uint8Array(await dl.arrayBuffer()), data);
    },
    T,
  );
});

describe("S3 batch delete", () => {
  test(
    "DeleteObjects removes 1,000 keys in one request; the listing is then empty",
    async () => {
      const B = "s3-batch";
      await mustCreateBucket(http(0), B);
      const keys = Array.from({ length: 1000 }, (_, i) => `batch/${String(i).padStart(4, "0")}`);
      await mapLimit(keys, 32, (k, i) => s3[i % 3].send(new PutObjectCommand({ Bucket: B, Key: k, Body: `v${i}` })));

      let count = 0;
      let token: string | undefined;
      do {
        const page = await s3[1].send(new ListObjectsV2Command({ Bucket: B, ContinuationToken: token }));
        count += page.KeyCount ?? 0;
        token = page.NextContinuationToken;
      } while (token);
      expect(count).toBe(1000);

      const out = await s3[2].send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
      expect(out.Errors ?? []).toEqual([]);
      expect((out.Deleted ?? []).map((d) => d.Key).sort()).toEqual(keys);

      for (const i of [0, 1, 2]) {
        const after = await s3[i].send(new ListObjectsV2Command({ Bucket: B }));
        expect(after.KeyCount).toBe(0);
        expect(after.Contents ?? []).toEqual([]);
      }
    },
    120_000,
  );

  test(
    "DeleteObjects in Quiet mode reports nothing on success; absent keys count as deleted",
    async () => {
      const keys = ["quiet/1", "quiet/2", "quiet/3"];
      for (const [i, k] of keys.entries()) await s3[i].send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: k }));
      const quiet = await s3[0].send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Quiet: true, Objects: keys.map((Key) => ({ Key })) } }));
      expect(quiet.$metadata.httpStatusCode).toBe(200);
      expect(quiet.Deleted ?? []).toEqual([]);
      expect(quiet.Errors ?? []).toEqual([]);
      const left = await s3[1].send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "quiet/" }));
      expect(left.KeyCount).toBe(0);

      const loud = await s3[2].send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: "quiet/never-was" }] } }));
      expect((loud.Deleted ?? []).map((d) => d.Key)).toEqual(["quiet/never-was"]);
      expect(loud.Errors ?? []).toEqual([]);
    },
    T,
  );
});

describe("S3 integrity", () => {
  test(
    "PutObject with CRC32, CRC32C, SHA256 checksums (computed by the SDK and given explicitly) and Content-MD5 is accepted",
    async () => {
      const data = seededBytes(70_000, cluster.seed + 47);
      const algorithms = ["CRC32", "CRC32C", "SHA256"] as const;
      for (const [n, alg] of algorithms.entries()) {
        const key = `sum/sdk-${alg}`;
        const put = await s3[n % 3].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ChecksumAlgorithm: alg }));
        expect(put.ETag).toBe(q(md5Hex(data)));
        expectSameBytes(`GET ${key}`, await getBytes(s3[(n + 1) % 3], BUCKET, key), data);
      }
      const explicit = [
        { ChecksumCRC32: crc32Base64(data) },
        { ChecksumCRC32C: crc32cBase64(data) },
        { ChecksumSHA256: sha256Base64(data) },
        { ContentMD5: md5Base64(data) },
      ];
      for (const [n, input] of explicit.entries()) {
        const key = `sum/explicit-${Object.keys(input)[0]}`;
        const put = await s3[n % 3].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ...input }));
        expect(put.ETag).toBe(q(md5Hex(data)));
        expectSameBytes(`GET ${key}`, await getBytes(s3[(n + 2) % 3], BUCKET, key), data);
      }
    },
    T,
  );

  test(
    "PutObject with a stream body of known length goes as aws-chunked and stores the exact bytes",
    async () => {
      const data = seededBytes(2 * MiB + 333, cluster.seed + 53);
      const seen: Array<Record<string, string>> = [];
      const client = s3Client(cluster.peer(1).s3Url);
      client.middlewareStack.addRelativeTo(
        ((next: (a: unknown) => Promise<unknown>) => async (args: { request: { headers: Record<string, string> } }) => {
          seen.push({ ...args.request.headers });
          return next(args);
        }) as never,
        { relation: "after", toMiddleware: "httpSigningMiddleware", name: "recordSignedHeaders" } as never,
      );
      try {
        // (A web ReadableStream body is not usable here: on Node the SDK hashes it with its
        // Node-stream hasher and throws "Unable to calculate hash for flowing readable stream".)
        const pieces = splitParts(data, 100_000).map((p) => Buffer.from(p));
        const nodeStream = Readable.from(pieces);
        const put1 = await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "stream/node", Body: nodeStream, ContentLength: data.byteLength }));
        expect(put1.ETag).toBe(q(md5Hex(data)));

        // A second stream through another peer, built from a generator.
        const put2 = await s3[2].send(
          new PutObjectCommand({ Bucket: BUCKET, Key: "stream/gen", Body: Readable.from(pieces.map((p) => Buffer.from(p))), ContentLength: data.byteLength }),
        );
        expect(put2.ETag).toBe(q(md5Hex(data)));
      } finally {
        client.destroy();
      }
      // The SDK really sent these as aws-chunked with a trailing checksum.
      expect(seen.length).toBe(1);
      for (const h of seen) {
        const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
        expect(lower["x-amz-content-sha256"]).toMatch(/^STREAMING-/);
        expect(lower["content-encoding"] ?? "").toContain("aws-chunked");
        expect(lower["x-amz-decoded-content-length"]).toBe(String(data.byteLength));
      }
      for (const [i, key] of ["stream/node", "stream/gen"].entries()) {
        const get = await s3[i * 2].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        expect(get.ContentLength).toBe(data.byteLength);
        // aws-chunked is a transfer detail: it is not the object's Content-Encoding.
        expect(get.ContentEncoding ?? "").not.toContain("aws-chunked");
        expectSameBytes(`GET ${key}`, await bodyBytes(get.Body), data);
      }
    },
    T,
  );
});

describe("one store: S3 and the native API", () => {
  test(
    "an object PUT via S3 reads back via native GET through another peer, and vice versa; listings and deletes agree",
    async () => {
      const data = seededBytes(1_500_000, cluster.seed + 59);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "cross/from-s3 ü", Body: data, ContentType: "image/jpeg", Metadata: { color: "blue" } }));
      const r = await request(http(1), "GET", objectPath(BUCKET, "cross/from-s3 ü"));
      expect(statusAndCode(r)).toBe("200");
      expectSameBytes("native GET of an S3 object", r.body, data);
      expect(r.headers.get("etag")).toBe(q(md5Hex(data)));
      expect(r.headers.get("content-type")).toBe("image/jpeg");
      expect(r.headers.get("x-meta-color")).toBe("blue");

      const nat = seededBytes(40_000, cluster.seed + 61);
      await mustPut(http(2), BUCKET, "cross/from-native", nat, { "content-type": "text/x-native", "x-meta-size": "L" });
      const get = await s3[1].send(new GetObjectCommand({ Bucket: BUCKET, Key: "cross/from-native" }));
      expectSameBytes("S3 GET of a native object", await bodyBytes(get.Body), nat);
      expect(get.ETag).toBe(q(md5Hex(nat)));
      expect(get.ContentType).toBe("text/x-native");
      expect(get.Metadata).toEqual({ size: "L" });

      const list = await s3[2].send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "cross/" }));
      expect((list.Contents ?? []).map((o) => o.Key)).toEqual(["cross/from-native", "cross/from-s3 ü"]);
      const nlist = await request(http(0), "GET", `/buckets/${BUCKET}/objects?prefix=cross/`);
      expect(JSON.parse(new TextDecoder().decode(nlist.body)).objects.map((o: { key: string }) => o.key)).toEqual(["cross/from-native", "cross/from-s3 ü"]);

      const del = await request(http(0), "DELETE", objectPath(BUCKET, "cross/from-s3 ü"));
      expect(del.status).toBe(204);
      const head = await sdkFailure("HEAD after native delete", s3[2].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "cross/from-s3 ü" })));
      expect(head.status).toBe(404);
      await s3[1].send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "cross/from-native" }));
      const ngone = await request(http(2), "GET", objectPath(BUCKET, "cross/from-native"));
      expect(statusAndCode(ngone)).toBe("404 NoSuchKey");

      // Buckets are shared too.
      await s3[0].send(new CreateBucketCommand({ Bucket: "s3-made-bucket" }));
      const nb = await request(http(2), "GET", "/buckets");
      expect(JSON.parse(new TextDecoder().decode(nb.body)).buckets.map((b: { name: string }) => b.name)).toContain("s3-made-bucket");
    },
    T,
  );
});
