// Kept checksums through the AWS SDK against a 3-peer mesh: every algorithm on single PUTs
// (header and aws-chunked trailer) and multipart uploads (COMPOSITE and FULL_OBJECT),
// written through one peer and read back through another with ChecksumMode ENABLED (the
// SDK then validates the body itself), ListParts, the refusals S3 makes,
// GetObjectAttributes and GET/HEAD ?partNumber.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Readable } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type ChecksumAlgorithm,
  type ChecksumType,
  type CompletedPart,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { seededBytes } from "../harness/random.ts";
import { MiB, bodyBytes, crc32Base64, crc32cBase64, crc64nvmeBase64, s3Client, sdkFailure, sha256Base64 } from "../harness/s3.ts";
import { checksumOf, compositeChecksum } from "../../src/objects/checksums.ts";
import crypto from "node:crypto";

const T = 60_000;
const BUCKET = "s3-checksums";
let cluster: Cluster;
let s3: S3Client[] = [];

const ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const;
type Alg = (typeof ALGORITHMS)[number];
/** Independent references (zlib, node:crypto, the harness's own CRCs): not the code the server runs. */
const REFERENCE: Record<Alg, (d: Uint8Array) => string> = {
  CRC32: crc32Base64,
  CRC32C: crc32cBase64,
  CRC64NVME: crc64nvmeBase64,
  SHA1: (d) => crypto.createHash("sha1").update(d).digest("base64"),
  SHA256: sha256Base64,
};
/** The SDK's output field for an algorithm's checksum. */
type ChecksumField = "ChecksumCRC32" | "ChecksumCRC32C" | "ChecksumCRC64NVME" | "ChecksumSHA1" | "ChecksumSHA256";
const field = (alg: Alg): ChecksumField => `Checksum${alg}` as ChecksumField;

const PART1 = seededBytes(5 * MiB, 1);
const PART2 = seededBytes(70_000, 2);
const WHOLE = new Uint8Array(Buffer.concat([PART1, PART2]));

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  s3 = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, undefined, { maxAttempts: 1 }));
  await s3[0].send(new CreateBucketCommand({ Bucket: BUCKET }));
}, T);

afterAll(async () => {
  for (const c of s3) c.destroy();
  await teardownCluster(cluster);
}, T);

/** A two-part multipart upload (5 MiB + 70,000 bytes) through peers 0 and 1, completed through peer 2 with the part checksums UploadPart returned. */
async function multipart(key: string, alg: Alg, type?: ChecksumType) {
  const created = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: alg as ChecksumAlgorithm, ChecksumType: type }));
  const parts: CompletedPart[] = [];
  for (const [i, body] of [PART1, PART2].entries()) {
    const up = await s3[i].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: alg as ChecksumAlgorithm }));
    expect(up[field(alg)]).toBe(REFERENCE[alg](body));
    parts.push({ PartNumber: i + 1, ETag: up.ETag, [field(alg)]: up[field(alg)] });
  }
  const done = await s3[2].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
  return { created, done, parts };
}

describe("S3 checksums kept", () => {
  test(
    "single PUT of every algorithm (header, and aws-chunked trailer for a stream): kept, returned FULL_OBJECT by HEAD and GET through another peer with ChecksumMode ENABLED, not without it, not for a Range",
    async () => {
      const data = seededBytes(200_000, 3);
      for (const [n, alg] of ALGORITHMS.entries()) {
        for (const streamed of [false, true]) {
          const key = `single/${alg}/${streamed ? "stream" : "bytes"}`;
          const body = streamed ? Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]) : data;
          const put = await s3[n % 3].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: data.byteLength, ChecksumAlgorithm: alg as ChecksumAlgorithm }));
          expect(put[field(alg)]).toBe(REFERENCE[alg](data));
          const reader = s3[(n + 1) % 3];
          const head = await reader.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }));
          expect([head[field(alg)], head.ChecksumType]).toEqual([REFERENCE[alg](data), "FULL_OBJECT"]);
          const got = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }));
          expect([got[field(alg)], got.ChecksumType]).toEqual([REFERENCE[alg](data), "FULL_OBJECT"]);
          expect(Buffer.from(await bodyBytes(got.Body)).equals(Buffer.from(data))).toBe(true);
          const plain = await reader.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
          expect(plain[field(alg)]).toBeUndefined();
          const ranged = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: "bytes=0-9", ChecksumMode: "ENABLED" }));
          expect(ranged[field(alg)]).toBeUndefined();
          await bodyBytes(ranged.Body);
        }
      }
    },
    T,
  );

  test(
    "multipart COMPOSITE (CRC32, CRC32C, SHA1, SHA256) and FULL_OBJECT (CRC32, CRC32C, CRC64NVME): Create echoes the algorithm and type, Complete returns the checksum, HEAD/GET through another peer return it",
    async () => {
      const cases: Array<[Alg, ChecksumType]> = [
        ["CRC32", "COMPOSITE"],
        ["CRC32C", "COMPOSITE"],
        ["SHA1", "COMPOSITE"],
        ["SHA256", "COMPOSITE"],
        ["CRC32", "FULL_OBJECT"],
        ["CRC32C", "FULL_OBJECT"],
        ["CRC64NVME", "FULL_OBJECT"],
      ];
      for (const [alg, type] of cases) {
        const key = `multi/${alg}/${type}`;
        // CRC64NVME is FULL_OBJECT without being told; the others are told.
        const { created, done } = await multipart(key, alg, alg === "CRC64NVME" ? undefined : type);
        expect([created.ChecksumAlgorithm, created.ChecksumType]).toEqual([alg as ChecksumAlgorithm, type]);
        const want =
          type === "COMPOSITE"
            ? await compositeChecksum(alg, [REFERENCE[alg](PART1), REFERENCE[alg](PART2)])
            : REFERENCE[alg](WHOLE);
        if (type === "COMPOSITE") expect(want.endsWith("-2")).toBe(true);
        expect([done[field(alg)], done.ChecksumType]).toEqual([want, type]);
        const head = await s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }));
        expect([head[field(alg)], head.ChecksumType]).toEqual([want, type]);
        // A FULL_OBJECT checksum is validated by the SDK over the body it reads.
        const got = await s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }));
        expect(got[field(alg)]).toBe(want);
        expect(Buffer.from(await bodyBytes(got.Body)).equals(Buffer.from(WHOLE))).toBe(true);
      }
    },
    T,
  );

  test(
    "ListParts shows part checksums; a part of another algorithm, a wrong part checksum at Complete, a missing one for COMPOSITE, and types S3 forbids are refused",
    async () => {
      const key = "multi/refusals";
      const created = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: "SHA256" }));
      const UploadId = created.UploadId;
      const up = await s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: PART2, ChecksumAlgorithm: "SHA256" }));
      const listed = await s3[2].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId }));
      expect([listed.ChecksumAlgorithm, listed.ChecksumType]).toEqual(["SHA256", "COMPOSITE"]);
      expect(listed.Parts?.map((p) => [p.PartNumber, p.ChecksumSHA256])).toEqual([[1, sha256Base64(PART2)]]);

      const other = await sdkFailure("a CRC32 part of a SHA256 upload", s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 2, Body: PART2, ChecksumAlgorithm: "CRC32" })));
      expect([other.status, other.name]).toEqual([400, "InvalidRequest"]);
      const wrong = await sdkFailure(
        "a wrong part checksum",
        s3[2].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: up.ETag, ChecksumSHA256: sha256Base64(PART1) }] } })),
      );
      expect([wrong.status, wrong.name]).toEqual([400, "InvalidPart"]);
      const missing = await sdkFailure("no part checksum", s3[2].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: up.ETag }] } })));
      expect([missing.status, missing.name]).toEqual([400, "InvalidRequest"]);
      // The upload is still open after the refusals, and completes with the right list.
      const done = await s3[0].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: up.ETag, ChecksumSHA256: up.ChecksumSHA256 }] } }));
      expect(done.ChecksumSHA256).toBe(`${sha256Base64(new Uint8Array(Buffer.from(sha256Base64(PART2), "base64")))}-1`);

      for (const [alg, type] of [["SHA256", "FULL_OBJECT"], ["CRC64NVME", "COMPOSITE"]] as const) {
        const f = await sdkFailure(`${alg} ${type}`, s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: alg, ChecksumType: type })));
        expect([f.status, f.name]).toEqual([400, "InvalidRequest"]);
      }
    },
    T,
  );

  test(
    "GetObjectAttributes: ETag, Checksum, ObjectSize, StorageClass of a single PUT (no ObjectParts); ObjectParts of a COMPOSITE upload paged by MaxParts and PartNumberMarker; a bad attribute is 400",
    async () => {
      const data = seededBytes(1234, 9);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "attrs/single", Body: data, ChecksumAlgorithm: "SHA256" }));
      const all = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"] as const;
      const single = await s3[1].send(new GetObjectAttributesCommand({ Bucket: BUCKET, Key: "attrs/single", ObjectAttributes: [...all] }));
      expect(single.ETag).toBe(crypto.createHash("md5").update(data).digest("hex"));
      expect(single.Checksum).toEqual({ ChecksumSHA256: sha256Base64(data), ChecksumType: "FULL_OBJECT" });
      expect([single.ObjectSize, single.StorageClass, single.ObjectParts]).toEqual([1234, "STANDARD", undefined]);
      expect(single.LastModified).toBeInstanceOf(Date);
      const some = await s3[2].send(new GetObjectAttributesCommand({ Bucket: BUCKET, Key: "attrs/single", ObjectAttributes: ["ObjectSize"] }));
      expect([some.ObjectSize, some.ETag, some.Checksum]).toEqual([1234, undefined, undefined]);

      const { done } = await multipart("attrs/multi", "CRC32C", "COMPOSITE");
      const page1 = await s3[2].send(new GetObjectAttributesCommand({ Bucket: BUCKET, Key: "attrs/multi", ObjectAttributes: [...all], MaxParts: 1 }));
      expect(page1.ETag).toBe(done.ETag!.replace(/"/g, ""));
      expect(page1.Checksum).toEqual({ ChecksumCRC32C: done.ChecksumCRC32C!.replace(/-2$/, ""), ChecksumType: "COMPOSITE" });
      expect(page1.ObjectSize).toBe(WHOLE.byteLength);
      expect([page1.ObjectParts?.TotalPartsCount, page1.ObjectParts?.IsTruncated, page1.ObjectParts?.NextPartNumberMarker]).toEqual([2, true, "1"]);
      expect(page1.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32C])).toEqual([[1, PART1.byteLength, crc32cBase64(PART1)]]);
      const page2 = await s3[0].send(new GetObjectAttributesCommand({ Bucket: BUCKET, Key: "attrs/multi", ObjectAttributes: ["ObjectParts"], MaxParts: 1, PartNumberMarker: "1" }));
      expect(page2.ObjectParts?.IsTruncated).toBe(false);
      expect(page2.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32C])).toEqual([[2, PART2.byteLength, crc32cBase64(PART2)]]);

      const bad = await sdkFailure("an unknown attribute", s3[0].send(new GetObjectAttributesCommand({ Bucket: BUCKET, Key: "attrs/single", ObjectAttributes: ["Colour" as "ETag"] })));
      expect([bad.status, bad.name]).toEqual([400, "InvalidArgument"]);
      const none = await sdkFailure("a missing key", s3[0].send(new GetObjectAttributesCommand({ Bucket: BUCKET, Key: "attrs/absent", ObjectAttributes: ["ETag"] })));
      expect([none.status, none.name]).toEqual([404, "NoSuchKey"]);
    },
    T,
  );

  test(
    "GET and HEAD ?partNumber: a multipart object's part N (206, Content-Range, PartsCount, the part's checksum), a single object's part 1 is all of it, past the last part is 416 InvalidPartNumber, with Range is 400",
    async () => {
      const key = "parts/multi";
      await multipart(key, "CRC32", "COMPOSITE");
      for (const [n, bytes, start] of [[1, PART1, 0], [2, PART2, PART1.byteLength]] as const) {
        const got = await s3[n].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, PartNumber: n, ChecksumMode: "ENABLED" }));
        expect(got.$metadata.httpStatusCode).toBe(206);
        expect([got.ContentRange, got.ContentLength, got.PartsCount]).toEqual([`bytes ${start}-${start + bytes.byteLength - 1}/${WHOLE.byteLength}`, bytes.byteLength, 2]);
        expect(got.ChecksumCRC32).toBe(crc32Base64(bytes));
        expect(Buffer.from(await bodyBytes(got.Body)).equals(Buffer.from(bytes))).toBe(true);
        const head = await s3[(n + 1) % 3].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, PartNumber: n }));
        expect([head.$metadata.httpStatusCode, head.ContentLength, head.PartsCount]).toEqual([206, bytes.byteLength, 2]);
      }
      const past = await sdkFailure("part 3 of 2", s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, PartNumber: 3 })));
      expect([past.status, past.name]).toEqual([416, "InvalidPartNumber"]);
      const both = await sdkFailure("Range and partNumber", s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: key, PartNumber: 1, Range: "bytes=0-1" })));
      expect([both.status, both.name]).toEqual([400, "InvalidRequest"]);

      const data = seededBytes(3000, 4);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "parts/single", Body: data }));
      const one = await s3[1].send(new GetObjectCommand({ Bucket: BUCKET, Key: "parts/single", PartNumber: 1 }));
      expect([one.$metadata.httpStatusCode, one.ContentRange, one.ContentLength]).toEqual([206, `bytes 0-2999/3000`, 3000]);
      expect(Buffer.from(await bodyBytes(one.Body)).equals(Buffer.from(data))).toBe(true);
      const two = await sdkFailure("part 2 of a single PUT", s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: "parts/single", PartNumber: 2 })));
      expect([two.status, two.name]).toEqual([416, "InvalidPartNumber"]);
      const zero = await sdkFailure("part 0", s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: "parts/single", PartNumber: 0 })));
      expect([zero.status, zero.name]).toEqual([400, "InvalidArgument"]);
      expect(await checksumOf("CRC32", data)).toBe(crc32Base64(data));
    },
    T,
  );
});
