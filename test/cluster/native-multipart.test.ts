// Multipart uploads through the native API on a 3-peer mesh over real TCP: a 12 MiB object
// sent as three parts at once through one peer, listed and completed, then read back
// byte for byte through another peer natively and through S3 with S3's multipart ETag;
// an aborted upload that takes no more parts; S3's part-size rule; and a key that may
// only read the bucket.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { describeBytes, errorOf, json, md5Hex, mustCreateBucket, request, sameBytes, statusAndCode, type Reply } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import { MiB, bearer, bodyBytes, createKey, multipartEtag, s3Client } from "../harness/s3.ts";

const T = 60_000;
const BUCKET = "native-multipart";
let cluster: Cluster;
const clients: S3Client[] = [];

const http = (i: number) => cluster.peer(i).httpUrl;

/** A multipart route of `key`: `/buckets/{b}/multipart{rest}?key=...`. */
const mp = (key: string, rest = "") => `/buckets/${BUCKET}/multipart${rest}?key=${encodeURIComponent(key)}`;

interface Part {
  partNumber: number;
  etag: string;
  size: number;
}

/** Start an upload through peer i; insists on 201. */
async function start(i: number, key: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await request(http(i), "POST", mp(key), { headers });
  expect(`start ${key}: ${statusAndCode(r)}`).toBe(`start ${key}: 201`);
  const body = json<{ bucket: string; key: string; uploadId: string }>(r);
  expect([body.bucket, body.key]).toEqual([BUCKET, key]);
  return body.uploadId;
}

/** Send one part through peer i (fetch sends its Content-Length). */
function sendPart(i: number, key: string, uploadId: string, partNumber: number, bytes: Uint8Array): Promise<Reply> {
  return request(http(i), "PUT", mp(key, `/${uploadId}/parts/${partNumber}`), { body: bytes });
}

/** Send one part and insist on 200 with its number, MD5 and size. */
async function mustSendPart(i: number, key: string, uploadId: string, partNumber: number, bytes: Uint8Array): Promise<Part> {
  const r = await sendPart(i, key, uploadId, partNumber, bytes);
  expect(`part ${partNumber}: ${statusAndCode(r)}`).toBe(`part ${partNumber}: 200`);
  const part = json<Part>(r);
  expect(part).toEqual({ partNumber, etag: md5Hex(bytes), size: bytes.byteLength });
  return part;
}

function completeWith(i: number, key: string, uploadId: string, parts: Array<Pick<Part, "partNumber" | "etag">>): Promise<Reply> {
  return request(http(i), "POST", mp(key, `/${uploadId}/complete`), { body: JSON.stringify({ parts: parts.map(({ partNumber, etag }) => ({ partNumber, etag })) }), headers: { "content-type": "application/json" } });
}

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  await mustCreateBucket(http(0), BUCKET);
}, T);

afterAll(async () => {
  for (const c of clients) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("native multipart uploads", () => {
  test(
    "12 MiB in parts of 5, 5 and 2 MiB sent at once through peer 0, listed through peer 2, completed; the same bytes through peer 1 natively and peer 2 via S3, ETag ending -3",
    async () => {
      const key = "videos/big file.bin";
      const data = seededBytes(12 * MiB, cluster.seed);
      const pieces = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB, 10 * MiB), data.subarray(10 * MiB)];
      const uploadId = await start(0, key, { "content-type": "video/x-test", "x-meta-origin": "native" });

      // All at once, the last one started first: part order is the part number, not arrival.
      const sending = [2, 1, 0].map((i) => mustSendPart(0, key, uploadId, i + 1, pieces[i]));
      const sent = (await Promise.all(sending)).reverse();

      const listed = await request(http(2), "GET", mp(key, `/${uploadId}`));
      expect(statusAndCode(listed)).toBe("200");
      expect(json(listed)).toEqual({ bucket: BUCKET, key, uploadId, parts: sent });

      // The listing is a valid completion body as it is (its extra fields are ignored).
      const done = await request(http(0), "POST", mp(key, `/${uploadId}/complete`), { body: listed.body });
      expect(statusAndCode(done)).toBe("200");
      const etag = multipartEtag(pieces).replace(/"/g, "");
      expect(etag).toEndWith("-3");
      expect(json(done)).toEqual({ bucket: BUCKET, key, etag, size: data.byteLength });

      const got = await request(http(1), "GET", `/buckets/${BUCKET}/objects/${encodeURIComponent(key)}`);
      expect(statusAndCode(got)).toBe("200");
      if (!sameBytes(got.body, data)) throw new Error(`native GET via peer 1: got ${describeBytes(got.body)}, want ${describeBytes(data)}`);
      expect([got.headers.get("etag"), got.headers.get("content-type"), got.headers.get("x-meta-origin")]).toEqual([`"${etag}"`, "video/x-test", "native"]);

      const s3 = s3Client(cluster.peer(2).s3Url);
      clients.push(s3);
      const obj = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      const s3Bytes = await bodyBytes(obj.Body);
      if (!sameBytes(s3Bytes, data)) throw new Error(`S3 GetObject via peer 2: got ${describeBytes(s3Bytes)}, want ${describeBytes(data)}`);
      expect([obj.ETag, obj.ContentLength, obj.ContentType, obj.Metadata?.origin]).toEqual([`"${etag}"`, data.byteLength, "video/x-test", "native"]);

      // The upload is over: no longer listed anywhere.
      expect(errorOf(await request(http(1), "GET", mp(key, `/${uploadId}`))).code).toBe("NoSuchUpload");
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      expect((uploads.Uploads ?? []).map((u) => u.UploadId)).not.toContain(uploadId);
    },
    T,
  );

  test(
    "an aborted upload is gone through every peer: listing it and sending a part are 404 NoSuchUpload",
    async () => {
      const key = "aborted.bin";
      const uploadId = await start(1, key);
      await mustSendPart(1, key, uploadId, 1, seededBytes(64 * 1024, cluster.seed + 1));
      expect(statusAndCode(await request(http(0), "DELETE", mp(key, `/${uploadId}`)))).toBe("204");
      for (const i of [0, 1, 2]) expect(`peer ${i}: ${statusAndCode(await request(http(i), "GET", mp(key, `/${uploadId}`)))}`).toBe(`peer ${i}: 404 NoSuchUpload`);
      expect(statusAndCode(await sendPart(2, key, uploadId, 2, seededBytes(1024, 3)))).toBe("404 NoSuchUpload");
      expect(statusAndCode(await completeWith(1, key, uploadId, [{ partNumber: 1, etag: "0".repeat(32) }]))).toBe("404 NoSuchUpload");
      expect(statusAndCode(await request(http(0), "DELETE", mp(key, `/${uploadId}`)))).toBe("404 NoSuchUpload");
      expect(statusAndCode(await request(http(0), "GET", `/buckets/${BUCKET}/objects/${key}`))).toBe("404 NoSuchKey");
    },
    T,
  );

  test(
    "parts but the last must be at least 5 MiB (400 EntityTooSmall naming the part); a wrong ETag is InvalidPart, a wrong order InvalidPartOrder; the upload stays open",
    async () => {
      const key = "small-middle.bin";
      const uploadId = await start(2, key);
      const parts = await Promise.all(
        [5 * MiB, 100 * 1024, 100 * 1024].map((size, i) => mustSendPart(2, key, uploadId, i + 1, seededBytes(size, cluster.seed + 10 + i))),
      );
      const small = await completeWith(2, key, uploadId, parts);
      expect(statusAndCode(small)).toBe("400 EntityTooSmall");
      expect(errorOf(small).message).toContain("part 2");
      expect(statusAndCode(await completeWith(2, key, uploadId, [parts[0], { ...parts[1], etag: md5Hex(new Uint8Array(1)) }]))).toBe("400 InvalidPart");
      expect(statusAndCode(await completeWith(2, key, uploadId, [parts[1], parts[0]]))).toBe("400 InvalidPartOrder");
      // Still open: the first and last parts alone make a valid object.
      const done = await completeWith(0, key, uploadId, [parts[0], parts[2]]);
      expect(statusAndCode(done)).toBe("200");
      expect(json<{ size: number }>(done).size).toBe(5 * MiB + 100 * 1024);
    },
    T,
  );

  test(
    "a key with only read on the bucket may list parts but not start, send, complete or abort (403 AccessDenied)",
    async () => {
      const reader = await createKey(http(0), { name: "mp-reader", buckets: { [BUCKET]: "read" } });
      const as = { authorization: bearer(reader.token) };
      const key = "guarded.bin";
      const uploadId = await start(0, key);
      const part = await mustSendPart(0, key, uploadId, 1, seededBytes(1024, cluster.seed + 20));
      const refused: Array<[string, string, string?]> = [
        ["POST", mp(key)],
        ["PUT", mp(key, `/${uploadId}/parts/2`), "x"],
        ["POST", mp(key, `/${uploadId}/complete`), JSON.stringify({ parts: [{ partNumber: 1, etag: part.etag }] })],
        ["DELETE", mp(key, `/${uploadId}`)],
      ];
      for (const [method, path, body] of refused) {
        expect(`${method} ${path}: ${statusAndCode(await request(http(1), method, path, { body, headers: as }))}`).toBe(`${method} ${path}: 403 AccessDenied`);
      }
      const listed = await request(http(1), "GET", mp(key, `/${uploadId}`), { headers: as });
      expect(statusAndCode(listed)).toBe("200");
      expect(json<{ parts: Part[] }>(listed).parts).toEqual([part]);
      // Nothing the reader tried took effect.
      expect(statusAndCode(await request(http(0), "GET", `/buckets/${BUCKET}/objects/${key}`))).toBe("404 NoSuchKey");
      expect(statusAndCode(await request(http(0), "DELETE", mp(key, `/${uploadId}`)))).toBe("204");
    },
    T,
  );
});
