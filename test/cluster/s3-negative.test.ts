// The S3 API's refusals, each checked for its status and S3 error code, against a
// 3-peer in-process mesh: missing, unknown, wrong, tampered, skewed, expired and revoked
// credentials; missing buckets and keys; malformed XML; multipart mistakes; bad digests
// and payload hashes; unsupported operations. Every refusal that could have stored
// something is followed by a check that nothing was stored.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import crypto from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  AbortMultipartUploadCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { md5Hex, mustCreateBucket, mustPut, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import {
  MiB,
  TEST_ADMIN,
  anonymous,
  bodyBytes,
  createKey,
  crc32Base64,
  crc32cBase64,
  md5Base64,
  presignByHand,
  revokeKey,
  s3Client,
  s3ErrorOf,
  s3Path,
  s3StatusAndCode,
  sdkFailure,
  sha256Base64,
  signedFetch,
  xmlEscape,
} from "../harness/s3.ts";

const T = 60_000;
let cluster: Cluster;
/** One SDK client per peer that sees errors exactly as sent (no retries). */
let s3: S3Client[] = [];
const extraClients: S3Client[] = [];
const BUCKET = "s3-neg";

const url = (i: number) => cluster.peer(i).s3Url;
const http = (i: number) => cluster.peer(i).httpUrl;

/** A one-attempt client for peer i with these credentials (destroyed in afterAll). */
function client(i: number, creds = TEST_ADMIN as { accessKeyId: string; secretAccessKey: string }, opts: Parameters<typeof s3Client>[2] = {}): S3Client {
  const c = s3Client(url(i), creds, { maxAttempts: 1, ...opts });
  extraClients.push(c);
  return c;
}

/** Expect an SDK call to fail with this status and error name. */
async function expectSdkError(what: string, p: Promise<unknown>, status: number, name?: string): Promise<{ message: string }> {
  const f = await sdkFailure(what, p);
  expect(`${what}: ${f.status}${name ? ` ${f.name}` : ""}`).toBe(`${what}: ${status}${name ? ` ${name}` : ""}`);
  return f;
}

/** Insist that `key` does not exist (checked through every peer). */
async function expectAbsent(key: string, bucket = BUCKET): Promise<void> {
  for (const i of [0, 1, 2]) {
    const f = await sdkFailure(`HEAD ${bucket}/${key} via ${i} (must not exist)`, s3[i].send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
    expect(`HEAD ${key} via ${i}: ${f.status}`).toBe(`HEAD ${key} via ${i}: 404`);
  }
}

async function getBytes(c: S3Client, key: string, bucket = BUCKET): Promise<Uint8Array> {
  return bodyBytes((await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body);
}

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  s3 = [0, 1, 2].map((i) => s3Client(url(i), TEST_ADMIN, { maxAttempts: 1 }));
  await mustCreateBucket(http(0), BUCKET);
  await mustPut(http(0), BUCKET, "existing", "hello");
}, T);

afterAll(async () => {
  for (const c of [...s3, ...extraClients]) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("S3 credentials", () => {
  test(
    "a request without credentials gets 403 AccessDenied",
    async () => {
      for (const [method, path] of [
        ["GET", "/"],
        ["GET", `/${BUCKET}`],
        ["GET", `/${BUCKET}/existing`],
        ["PUT", `/${BUCKET}/anon-put`],
        ["DELETE", `/${BUCKET}/existing`],
      ] as const) {
        const r = await anonymous(url(1), method, path, method === "PUT" ? { body: "x" } : {});
        const text = new TextDecoder().decode(r.body);
        expect(`${method} ${path}: ${r.status}`).toBe(`${method} ${path}: 403`);
        expect(`${method} ${path}: ${s3ErrorOf(text).code}`).toBe(`${method} ${path}: AccessDenied`);
      }
      await expectAbsent("anon-put");
      expect(new TextDecoder().decode(await getBytes(s3[2], "existing"))).toBe("hello");
    },
    T,
  );

  test(
    "an unknown access key id gets 403 InvalidAccessKeyId",
    async () => {
      const c = client(0, { accessKeyId: "MKNOSUCHKEY0000000000", secretAccessKey: "whatever-secret-1234567890" });
      await expectSdkError("ListBuckets", c.send(new ListBucketsCommand({})), 403, "InvalidAccessKeyId");
      await expectSdkError("PutObject", c.send(new PutObjectCommand({ Bucket: BUCKET, Key: "unknown-key-put", Body: "x" })), 403, "InvalidAccessKeyId");
      await expectAbsent("unknown-key-put");
    },
    T,
  );

  test(
    "a wrong secret gets 403 SignatureDoesNotMatch",
    async () => {
      const c = client(1, { accessKeyId: TEST_ADMIN.accessKeyId, secretAccessKey: TEST_ADMIN.secretAccessKey + "x" });
      await expectSdkError("ListBuckets", c.send(new ListBucketsCommand({})), 403, "SignatureDoesNotMatch");
      await expectSdkError("GetObject", c.send(new GetObjectCommand({ Bucket: BUCKET, Key: "existing" })), 403, "SignatureDoesNotMatch");
      await expectSdkError("PutObject", c.send(new PutObjectCommand({ Bucket: BUCKET, Key: "wrong-secret-put", Body: "x" })), 403, "SignatureDoesNotMatch");
      await expectAbsent("wrong-secret-put");
    },
    T,
  );

  test(
    "a tampered signature or a header changed after signing gets 403 SignatureDoesNotMatch",
    async () => {
      // Control: the hand signer's requests are accepted as they are.
      const ok = await signedFetch(url(0), { method: "GET", path: s3Path(BUCKET, "existing") });
      expect(s3StatusAndCode(ok)).toBe("200");
      expect(ok.text).toBe("hello");

      const flipped = await signedFetch(url(0), {
        method: "GET",
        path: s3Path(BUCKET, "existing"),
        tamper: ({ headers }) => {
          headers.authorization = headers.authorization.replace(/Signature=([0-9a-f])/, (_m, c: string) => `Signature=${c === "0" ? "1" : "0"}`);
        },
      });
      expect(s3StatusAndCode(flipped)).toBe("403 SignatureDoesNotMatch");

      const body = "tampered body";
      const alteredHeader = await signedFetch(url(1), {
        method: "PUT",
        path: s3Path(BUCKET, "tampered-put"),
        body,
        headers: { "x-amz-meta-note": "original", "content-type": "text/plain" },
        tamper: ({ headers }) => {
          headers["x-amz-meta-note"] = "altered";
        },
      });
      expect(s3StatusAndCode(alteredHeader)).toBe("403 SignatureDoesNotMatch");

      const alteredQuery = await signedFetch(url(2), {
        method: "GET",
        path: s3Path(BUCKET),
        query: { "list-type": "2", prefix: "a" },
        tamper: ({ query }) => {
          query.prefix = "b";
        },
      });
      expect(s3StatusAndCode(alteredQuery)).toBe("403 SignatureDoesNotMatch");
      await expectAbsent("tampered-put");

      // Through the SDK: a middleware that rewrites a signed header after signing.
      const tamperingClient = (tamper: boolean) => {
        const c = client(2);
        c.middlewareStack.addRelativeTo(
          ((next: (a: unknown) => Promise<unknown>) => async (args: { request: { headers: Record<string, string> } }) => {
            if (tamper) args.request.headers["x-amz-meta-note"] = "altered";
            return next(args);
          }) as never,
          { relation: "after", toMiddleware: "httpSigningMiddleware", name: "tamperAfterSigning" } as never,
        );
        return c;
      };
      const control = await tamperingClient(false).send(new PutObjectCommand({ Bucket: BUCKET, Key: "sdk-untampered", Body: "x", Metadata: { note: "original" } }));
      expect(control.$metadata.httpStatusCode).toBe(200);
      await expectSdkError(
        "PutObject with a header altered after signing",
        tamperingClient(true).send(new PutObjectCommand({ Bucket: BUCKET, Key: "sdk-tampered", Body: "x", Metadata: { note: "original" } })),
        403,
        "SignatureDoesNotMatch",
      );
      await expectAbsent("sdk-tampered");
    },
    T,
  );

  test(
    "a request signed 20 minutes off gets 403 RequestTimeTooSkewed; 10 minutes off is still accepted",
    async () => {
      const past = client(0, TEST_ADMIN, { systemClockOffset: -20 * 60_000 });
      await expectSdkError("ListBuckets 20 min slow", past.send(new ListBucketsCommand({})), 403, "RequestTimeTooSkewed");
      const future = client(1, TEST_ADMIN, { systemClockOffset: 20 * 60_000 });
      await expectSdkError("PutObject 20 min fast", future.send(new PutObjectCommand({ Bucket: BUCKET, Key: "skewed-put", Body: "x" })), 403, "RequestTimeTooSkewed");
      await expectAbsent("skewed-put");

      const old = await signedFetch(url(2), { method: "GET", path: s3Path(BUCKET, "existing"), date: new Date(Date.now() - 20 * 60_000) });
      expect(s3StatusAndCode(old)).toBe("403 RequestTimeTooSkewed");
      const recent = await signedFetch(url(2), { method: "GET", path: s3Path(BUCKET, "existing"), date: new Date(Date.now() - 10 * 60_000) });
      expect(s3StatusAndCode(recent)).toBe("200");
    },
    T,
  );

  test(
    "an expired presigned URL gets 403 AccessDenied (Request has expired)",
    async () => {
      const fresh = await getSignedUrl(s3[0], new GetObjectCommand({ Bucket: BUCKET, Key: "existing" }), { expiresIn: 60 });
      const okRes = await fetch(fresh);
      expect(okRes.status).toBe(200);
      expect(await okRes.text()).toBe("hello");

      const short = await getSignedUrl(s3[1], new GetObjectCommand({ Bucket: BUCKET, Key: "existing" }), { expiresIn: 1 });
      await Bun.sleep(2500);
      const res = await fetch(short);
      const text = await res.text();
      expect(res.status).toBe(403);
      const err = s3ErrorOf(text);
      expect(err.code).toBe("AccessDenied");
      expect(err.message).toMatch(/expired/i);

      // Signed an hour ago, valid for a minute.
      const stale = await presignByHand(url(2), { method: "GET", path: s3Path(BUCKET, "existing"), date: new Date(Date.now() - 3600_000), expiresIn: 60 });
      const res2 = await fetch(stale);
      const err2 = s3ErrorOf(await res2.text());
      expect(`${res2.status} ${err2.code}`).toBe("403 AccessDenied");
      expect(err2.message).toMatch(/expired/i);

      // A presigned URL whose signature was altered.
      const good = await presignByHand(url(0), { method: "GET", path: s3Path(BUCKET, "existing") });
      const ok2 = await fetch(good);
      expect(ok2.status).toBe(200);
      await ok2.arrayBuffer();
      const bad = good.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`);
      const res3 = await fetch(bad);
      expect(`${res3.status} ${s3ErrorOf(await res3.text()).code}`).toBe("403 SignatureDoesNotMatch");

      // A presigned GET used to PUT is refused and stores nothing.
      const getUrl = await getSignedUrl(s3[2], new GetObjectCommand({ Bucket: BUCKET, Key: "presign-misuse" }), { expiresIn: 60 });
      const res4 = await fetch(getUrl, { method: "PUT", body: "sneaky" });
      expect(`${res4.status} ${s3ErrorOf(await res4.text()).code}`).toBe("403 SignatureDoesNotMatch");
      await expectAbsent("presign-misuse");
    },
    T,
  );

  test(
    "a revoked key gets 403 InvalidAccessKeyId on every peer right after the revocation",
    async () => {
      const key = await createKey(http(0), { name: "to-revoke", buckets: { [BUCKET]: "write" } });
      const clients = [0, 1, 2].map((i) => client(i, key));
      for (const [i, c] of clients.entries()) {
        const out = await c.send(new ListObjectsV2Command({ Bucket: BUCKET }));
        expect(`peer ${i}: ${out.$metadata.httpStatusCode}`).toBe(`peer ${i}: 200`);
      }
      const presigned = await getSignedUrl(clients[2], new GetObjectCommand({ Bucket: BUCKET, Key: "existing" }), { expiresIn: 300 });
      const before = await fetch(presigned);
      expect(before.status).toBe(200);
      await before.arrayBuffer();
      const del = await revokeKey(http(1), key.accessKeyId);
      expect(del.status).toBe(204);
      const after = await fetch(presigned);
      expect(`presigned URL after revoke: ${after.status} ${s3ErrorOf(await after.text()).code}`).toBe("presigned URL after revoke: 403 InvalidAccessKeyId");
      for (const [i, c] of clients.entries()) {
        await expectSdkError(`ListObjectsV2 via peer ${i} after revoke`, c.send(new ListObjectsV2Command({ Bucket: BUCKET })), 403, "InvalidAccessKeyId");
        await expectSdkError(`PutObject via peer ${i} after revoke`, c.send(new PutObjectCommand({ Bucket: BUCKET, Key: "revoked-put", Body: "x" })), 403, "InvalidAccessKeyId");
      }
      await expectAbsent("revoked-put");
    },
    T,
  );
});

describe("S3 missing things", () => {
  test(
    "NoSuchBucket and NoSuchKey are 404 for every kind of request",
    async () => {
      await expectSdkError("GetObject missing key", s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: "no-such-key" })), 404, "NoSuchKey");
      await expectSdkError("GetObject missing bucket", s3[1].send(new GetObjectCommand({ Bucket: "no-such-bucket", Key: "k" })), 404, "NoSuchBucket");
      await expectSdkError("PutObject missing bucket", s3[2].send(new PutObjectCommand({ Bucket: "no-such-bucket", Key: "k", Body: "x" })), 404, "NoSuchBucket");
      await expectSdkError("ListObjectsV2 missing bucket", s3[0].send(new ListObjectsV2Command({ Bucket: "no-such-bucket" })), 404, "NoSuchBucket");
      await expectSdkError("DeleteBucket missing bucket", s3[1].send(new DeleteBucketCommand({ Bucket: "no-such-bucket" })), 404, "NoSuchBucket");
      await expectSdkError("HeadObject missing key", s3[2].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "no-such-key" })), 404);
      await expectSdkError("HeadBucket missing bucket", s3[0].send(new HeadBucketCommand({ Bucket: "no-such-bucket" })), 404);
      await expectSdkError(
        "CopyObject from a missing key",
        s3[1].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy-of-nothing", CopySource: `${BUCKET}/no-such-key` })),
        404,
        "NoSuchKey",
      );
      await expectSdkError(
        "CreateMultipartUpload in a missing bucket",
        s3[2].send(new CreateMultipartUploadCommand({ Bucket: "no-such-bucket", Key: "k" })),
        404,
        "NoSuchBucket",
      );
      await expectAbsent("copy-of-nothing");
    },
    T,
  );

  test(
    "DeleteBucket of a bucket with objects is 409 BucketNotEmpty and the bucket stays",
    async () => {
      await expectSdkError("DeleteBucket non-empty", s3[1].send(new DeleteBucketCommand({ Bucket: BUCKET })), 409, "BucketNotEmpty");
      const head = await s3[2].send(new HeadBucketCommand({ Bucket: BUCKET }));
      expect(head.$metadata.httpStatusCode).toBe(200);
      expect(new TextDecoder().decode(await getBytes(s3[0], "existing"))).toBe("hello");
    },
    T,
  );

  test(
    "CreateBucket with an invalid name is 400 InvalidBucketName",
    async () => {
      await expectSdkError("CreateBucket Bad_Name", s3[0].send(new CreateBucketCommand({ Bucket: "Bad_Name" })), 400, "InvalidBucketName");
      await expectSdkError("CreateBucket ab", s3[1].send(new CreateBucketCommand({ Bucket: "ab" })), 400, "InvalidBucketName");
    },
    T,
  );
});

describe("S3 malformed XML", () => {
  test(
    "DeleteObjects with a malformed body is 400 MalformedXML and deletes nothing; more than 1,000 keys is refused too",
    async () => {
      await mustPut(http(0), BUCKET, "keep-me", "still here");
      for (const body of [
        `<Delete><Object><Key>keep-me</Key></Object>`,
        `this is not xml`,
        `<Delete><Object><Key>keep-me</Key></Object></Delete`,
      ]) {
        const r = await signedFetch(url(1), {
          method: "POST",
          path: s3Path(BUCKET),
          query: { delete: "" },
          body,
          headers: { "content-type": "application/xml", "content-md5": md5Base64(body) },
        });
        expect(`${JSON.stringify(body)}: ${s3StatusAndCode(r)}`).toBe(`${JSON.stringify(body)}: 400 MalformedXML`);
      }
      expect(new TextDecoder().decode(await getBytes(s3[2], "keep-me"))).toBe("still here");

      const tooMany = Array.from({ length: 1001 }, (_, i) => ({ Key: `too-many/${i}` }));
      await expectSdkError("DeleteObjects with 1001 keys", s3[0].send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: tooMany } })), 400, "MalformedXML");

      // The control: a well-formed body through the same signer works.
      const good = `<Delete><Object><Key>keep-me</Key></Object></Delete>`;
      const ok = await signedFetch(url(1), {
        method: "POST",
        path: s3Path(BUCKET),
        query: { delete: "" },
        body: good,
        headers: { "content-type": "application/xml", "content-md5": md5Base64(good) },
      });
      expect(s3StatusAndCode(ok)).toBe("200");
      expect(ok.text).toContain("<Deleted>");
      await expectAbsent("keep-me");
    },
    T,
  );

  test(
    "CompleteMultipartUpload with a malformed body is 400 MalformedXML and the upload survives",
    async () => {
      const key = "mpu-malformed";
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const part = seededBytes(1000, cluster.seed + 3);
      const up = await s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: part }));
      for (const body of [
        `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${xmlEscape(up.ETag!)}</ETag></Part>`,
        `not xml`,
      ]) {
        const r = await signedFetch(url(2), { method: "POST", path: s3Path(BUCKET, key), query: { uploadId: UploadId! }, body, headers: { "content-type": "application/xml" } });
        expect(`${JSON.stringify(body)}: ${s3StatusAndCode(r)}`).toBe(`${JSON.stringify(body)}: 400 MalformedXML`);
      }
      await expectAbsent(key);
      const lp = await s3[0].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId }));
      expect((lp.Parts ?? []).map((p) => p.PartNumber)).toEqual([1]);

      const good = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${xmlEscape(up.ETag!)}</ETag></Part></CompleteMultipartUpload>`;
      const ok = await signedFetch(url(2), { method: "POST", path: s3Path(BUCKET, key), query: { uploadId: UploadId! }, body: good, headers: { "content-type": "application/xml" } });
      expect(s3StatusAndCode(ok)).toBe("200");
      expect(ok.text).toContain("<CompleteMultipartUploadResult");
      expect(sameBytes(await getBytes(s3[1], key), part)).toBe(true);
    },
    T,
  );
});

describe("S3 multipart mistakes", () => {
  const FIVE = 5 * MiB;

  test(
    "parts completed out of order are 400 InvalidPartOrder; a wrong or unknown part ETag is 400 InvalidPart; the upload still completes after",
    async () => {
      const key = "mpu-order";
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const p1 = seededBytes(FIVE, cluster.seed + 5);
      const p2 = seededBytes(1234, cluster.seed + 6);
      const e1 = (await s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: p1 }))).ETag!;
      const e2 = (await s3[2].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 2, Body: p2 }))).ETag!;
      const complete = (i: number, Parts: Array<{ PartNumber: number; ETag: string }>) =>
        s3[i].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts } }));

      await expectSdkError("Complete [2, 1]", complete(0, [{ PartNumber: 2, ETag: e2 }, { PartNumber: 1, ETag: e1 }]), 400, "InvalidPartOrder");
      await expectAbsent(key);
      await expectSdkError("Complete with part 2's ETag wrong", complete(1, [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: `"${md5Hex(p1)}"` }]), 400, "InvalidPart");
      await expectSdkError("Complete with a part never uploaded", complete(2, [{ PartNumber: 1, ETag: e1 }, { PartNumber: 3, ETag: e2 }]), 400, "InvalidPart");
      await expectAbsent(key);

      const done = await complete(0, [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }]);
      expect(done.$metadata.httpStatusCode).toBe(200);
      const whole = new Uint8Array(p1.byteLength + p2.byteLength);
      whole.set(p1);
      whole.set(p2, p1.byteLength);
      expect(sameBytes(await getBytes(s3[2], key), whole)).toBe(true);
    },
    T,
  );

  test(
    "a part other than the last below 5 MiB makes Complete fail with 400 EntityTooSmall",
    async () => {
      const key = "mpu-small";
      const { UploadId } = await s3[1].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const p1 = seededBytes(FIVE - 1, cluster.seed + 8);
      const p2 = seededBytes(FIVE, cluster.seed + 9);
      const e1 = (await s3[2].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: p1 }))).ETag!;
      const e2 = (await s3[0].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 2, Body: p2 }))).ETag!;
      await expectSdkError(
        "Complete with a 5 MiB - 1 first part",
        s3[1].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } })),
        400,
        "EntityTooSmall",
      );
      await expectAbsent(key);
      await s3[2].send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
    },
    T,
  );

  test(
    "an unknown upload id is 404 NoSuchUpload for UploadPart, ListParts, Complete and Abort",
    async () => {
      const UploadId = "no-such-upload-id";
      const key = "mpu-unknown";
      await expectSdkError("UploadPart", s3[0].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: "x" })), 404, "NoSuchUpload");
      await expectSdkError("ListParts", s3[1].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId })), 404, "NoSuchUpload");
      await expectSdkError(
        "Complete",
        s3[2].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${md5Hex(new Uint8Array(0))}"` }] } })),
        404,
        "NoSuchUpload",
      );
      await expectSdkError("Abort", s3[0].send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId })), 404, "NoSuchUpload");
      await expectAbsent(key);
    },
    T,
  );

  test(
    "part numbers outside 1..10000 are 400 InvalidArgument",
    async () => {
      const key = "mpu-partnumbers";
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      for (const PartNumber of [0, 10001]) {
        await expectSdkError(`UploadPart ${PartNumber}`, s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber, Body: "x" })), 400, "InvalidArgument");
      }
      const edge = await s3[2].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 10000, Body: "x" }));
      expect(edge.ETag).toBe(`"${md5Hex(new TextEncoder().encode("x"))}"`);
      const lp = await s3[0].send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId }));
      expect((lp.Parts ?? []).map((p) => p.PartNumber)).toEqual([10000]);
      await s3[1].send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
    },
    T,
  );
});

describe("S3 digests and payload hashes", () => {
  test(
    "a wrong x-amz-checksum-crc32/crc32c/sha256 or Content-MD5 is 400 BadDigest and stores nothing; an existing object keeps its bytes",
    async () => {
      const data = seededBytes(30_000, cluster.seed + 10);
      const other = seededBytes(30_000, cluster.seed + 11);
      const wrong = [
        { ChecksumCRC32: crc32Base64(other) },
        { ChecksumCRC32C: crc32cBase64(other) },
        { ChecksumSHA256: sha256Base64(other) },
        { ContentMD5: md5Base64(other) },
      ];
      for (const [n, input] of wrong.entries()) {
        const key = `baddigest/${Object.keys(input)[0]}`;
        await expectSdkError(`PutObject ${key}`, s3[n % 3].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ...input })), 400, "BadDigest");
        await expectAbsent(key);
      }

      // An overwrite with a bad digest leaves the old object alone.
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "baddigest/keep", Body: data }));
      await expectSdkError(
        "overwrite with a bad CRC32",
        s3[1].send(new PutObjectCommand({ Bucket: BUCKET, Key: "baddigest/keep", Body: other, ChecksumCRC32: crc32Base64(data) })),
        400,
        "BadDigest",
      );
      expect(sameBytes(await getBytes(s3[2], "baddigest/keep"), data)).toBe(true);

      // A part with a bad checksum is refused and not listed.
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "baddigest/mpu" }));
      await expectSdkError(
        "UploadPart with a bad SHA256",
        s3[2].send(new UploadPartCommand({ Bucket: BUCKET, Key: "baddigest/mpu", UploadId, PartNumber: 1, Body: data, ChecksumSHA256: sha256Base64(other) })),
        400,
        "BadDigest",
      );
      const lp = await s3[1].send(new ListPartsCommand({ Bucket: BUCKET, Key: "baddigest/mpu", UploadId }));
      expect(lp.Parts ?? []).toEqual([]);
      await s3[0].send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: "baddigest/mpu", UploadId }));
    },
    T,
  );

  test(
    "a body that does not match the signed x-amz-content-sha256 is 400 XAmzContentSHA256Mismatch and stores nothing",
    async () => {
      const body = seededBytes(100_000, cluster.seed + 12);
      const signedFor = crypto.createHash("sha256").update(seededBytes(100_000, cluster.seed + 13)).digest("hex");
      const r = await signedFetch(url(0), { method: "PUT", path: s3Path(BUCKET, "sha-mismatch"), body, contentSha256: signedFor });
      expect(s3StatusAndCode(r)).toBe("400 XAmzContentSHA256Mismatch");
      await expectAbsent("sha-mismatch");

      // Same signer, honest hash: accepted.
      const ok = await signedFetch(url(0), { method: "PUT", path: s3Path(BUCKET, "sha-match"), body });
      expect(s3StatusAndCode(ok)).toBe("200");
      expect(ok.headers.get("etag")).toBe(`"${md5Hex(body)}"`);
    },
    T,
  );
});

describe("S3 aws-chunked trailers", () => {
  /** An unsigned aws-chunked body (what the SDK sends for streams) with a trailing checksum header. */
  function chunked(pieces: Uint8Array[], trailer: string): Uint8Array {
    const parts: Buffer[] = [];
    for (const p of pieces) parts.push(Buffer.from(`${p.byteLength.toString(16)}\r\n`), Buffer.from(p), Buffer.from("\r\n"));
    parts.push(Buffer.from(`0\r\n${trailer}\r\n\r\n`));
    return new Uint8Array(Buffer.concat(parts));
  }

  test(
    "an aws-chunked upload whose trailing x-amz-checksum-crc32 is wrong is 400 BadDigest and stores nothing; the right one is stored",
    async () => {
      const data = seededBytes(100_000, cluster.seed + 14);
      const pieces = [data.subarray(0, 65_536), data.subarray(65_536)];
      const send = (key: string, checksum: string) =>
        signedFetch(url(1), {
          method: "PUT",
          path: s3Path(BUCKET, key),
          body: chunked(pieces, `x-amz-checksum-crc32:${checksum}`),
          contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
          headers: {
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": String(data.byteLength),
            "x-amz-trailer": "x-amz-checksum-crc32",
          },
        });
      const bad = await send("chunked-bad", crc32Base64(seededBytes(100_000, cluster.seed + 15)));
      expect(s3StatusAndCode(bad)).toBe("400 BadDigest");
      await expectAbsent("chunked-bad");

      const good = await send("chunked-good", crc32Base64(data));
      expect(s3StatusAndCode(good)).toBe("200");
      expect(good.headers.get("etag")).toBe(`"${md5Hex(data)}"`);
      expect(sameBytes(await getBytes(s3[2], "chunked-good"), data)).toBe(true);
    },
    T,
  );
});

describe("S3 unsupported operations", () => {
  test(
    "PutBucketPolicy and a lifecycle Transition (no storage classes) are 501 NotImplemented, and the peer keeps serving",
    async () => {
      await expectSdkError(
        "PutBucketPolicy",
        s3[0].send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify({ Version: "2012-10-17", Statement: [] }) })),
        501,
        "NotImplemented",
      );
      await expectSdkError(
        "PutBucketLifecycleConfiguration",
        s3[0].send(
          new PutBucketLifecycleConfigurationCommand({
            Bucket: BUCKET,
            LifecycleConfiguration: { Rules: [{ ID: "archive", Status: "Enabled", Filter: { Prefix: "" }, Transitions: [{ Days: 30, StorageClass: "GLACIER" }] }] },
          }),
        ),
        501,
        "NotImplemented",
      );
      const list = await s3[0].send(new ListBucketsCommand({}));
      expect((list.Buckets ?? []).map((b) => b.Name)).toContain(BUCKET);
      expect(new TextDecoder().decode(await getBytes(s3[0], "existing"))).toBe("hello");
    },
    T,
  );
});
