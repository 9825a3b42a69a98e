// Server-side encryption through the S3 API with the AWS SDK, against one 3-peer mesh:
// SSE-S3 and SSE-C round trips read back through other peers (whole, ranged, multipart,
// inline), copies between every kind, bucket default encryption (S3 and native writes),
// the refusals (missing and wrong customer keys, a bad key MD5, KMS), the native API's
// view, and at the end a scan of every peer's data folder: no file (chunk, cache, index)
// holds any plaintext of an encrypted object, while a clear control object's bytes are
// found there (so the scan can see plaintext when it is there).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteBucketEncryptionCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { getObject as nativeGet, md5Hex, mustCreateBucket, mustPut } from "../harness/http.ts";
import { MiB, TEST_ADMIN, bodyBytes, s3Client, s3Path, s3StatusAndCode, sdkFailure, signedFetch } from "../harness/s3.ts";

const T = 60_000;
let cluster: Cluster;
let s3: S3Client[] = [];
const BUCKET = "sse";
const DEFAULTED = "sse-default";

/** Every encrypted object's bytes repeat this: no file of any peer may contain it. */
const SECRET = Buffer.from("SSE-SECRET-PATTERN-7f3a9c-d41b!");
/** Objects stored in clear repeat this one (the scan must find it: it can see plaintext). */
const CLEAR = Buffer.from("CLEAR-CONTROL-PATTERN-0b5e22-9a!");

/** `n` bytes of `pattern` repeated, each repetition numbered so ranges are checkable. */
function patterned(pattern: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let at = 0, i = 0; at < n; at += pattern.length + 4, i++) {
    const piece = Buffer.concat([pattern, Buffer.from(String(i % 10_000).padStart(4, "0"))]);
    piece.copy(out, at, 0, Math.min(piece.length, n - at));
  }
  return out;
}

const customer = crypto.randomBytes(32);
const otherCustomer = crypto.randomBytes(32);
const ssec = (key: Uint8Array = customer) => ({ SSECustomerAlgorithm: "AES256", SSECustomerKey: key as unknown as string });
const keyMd5 = (key: Uint8Array) => crypto.createHash("md5").update(key).digest("base64");

async function get(i: number, key: string, extra: Record<string, unknown> = {}, bucket = BUCKET) {
  const out = await s3[i].send(new GetObjectCommand({ Bucket: bucket, Key: key, ...extra }));
  return { out, bytes: Buffer.from(await bodyBytes(out.Body)) };
}

/** Expect "status Name" (or only "status": a HEAD's error has no body, so no code to name). */
async function expectFailure(what: string, p: Promise<unknown>, expected: string): Promise<void> {
  const f = await sdkFailure(what, p);
  expect(`${what}: ${expected.includes(" ") ? `${f.status} ${f.name}` : f.status}`).toBe(`${what}: ${expected}`);
}

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  s3 = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, TEST_ADMIN, { maxAttempts: 1 }));
  await mustCreateBucket(cluster.peer(0).httpUrl, BUCKET);
  await mustCreateBucket(cluster.peer(0).httpUrl, DEFAULTED);
}, T);

afterAll(async () => {
  for (const c of s3) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("SSE-S3", () => {
  const body = patterned(SECRET, 2.5 * MiB);
  test(
    "a chunked object round trips through every peer, with its header and a plain MD5 ETag; ranges read across chunks",
    async () => {
      const put = await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "s3/big", Body: body, ServerSideEncryption: "AES256" }));
      expect(put.ServerSideEncryption).toBe("AES256");
      expect(put.ETag).toBe(`"${md5Hex(body)}"`);
      for (const i of [1, 2]) {
        const { out, bytes } = await get(i, "s3/big");
        expect(out.ServerSideEncryption).toBe("AES256");
        expect(bytes.equals(body)).toBe(true);
      }
      const head = await s3[2].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "s3/big" }));
      expect(`${head.ServerSideEncryption} ${head.ContentLength}`).toBe(`AES256 ${body.length}`);
      for (const [a, b] of [[MiB - 100, MiB + 99], [0, 0], [2 * MiB + 5, body.length - 1]]) {
        const { out, bytes } = await get(1, "s3/big", { Range: `bytes=${a}-${b}` });
        expect(out.ContentRange).toBe(`bytes ${a}-${b}/${body.length}`);
        expect(bytes.equals(body.subarray(a, b + 1))).toBe(true);
      }
    },
    T,
  );

  test(
    "a small (inline) object is sealed too and reads back through another peer, also by range",
    async () => {
      const small = patterned(SECRET, 700);
      await s3[1].send(new PutObjectCommand({ Bucket: BUCKET, Key: "s3/small", Body: small, ServerSideEncryption: "AES256" }));
      const { out, bytes } = await get(2, "s3/small");
      expect(out.ServerSideEncryption).toBe("AES256");
      expect(bytes.equals(small)).toBe(true);
      expect((await get(0, "s3/small", { Range: "bytes=10-40" })).bytes.equals(small.subarray(10, 41))).toBe(true);
    },
    T,
  );

  test(
    "the native API decrypts SSE-S3 objects transparently",
    async () => {
      const r = await nativeGet(cluster.peer(2).httpUrl, BUCKET, "s3/big");
      expect(r.status).toBe(200);
      expect(Buffer.from(r.body).equals(body)).toBe(true);
    },
    T,
  );
});

describe("SSE-C", () => {
  const body = patterned(SECRET, 1.5 * MiB);
  test(
    "round trip with the key through other peers; the ETag is not the plaintext MD5; ranges work",
    async () => {
      const put = await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "c/obj", Body: body, ...ssec() }));
      expect(`${put.SSECustomerAlgorithm} ${put.SSECustomerKeyMD5}`).toBe(`AES256 ${keyMd5(customer)}`);
      expect(put.ServerSideEncryption).toBeUndefined();
      expect(put.ETag).not.toBe(`"${md5Hex(body)}"`);
      const { out, bytes } = await get(1, "c/obj", ssec());
      expect(bytes.equals(body)).toBe(true);
      expect(`${out.SSECustomerAlgorithm} ${out.SSECustomerKeyMD5} ${out.ETag}`).toBe(`AES256 ${keyMd5(customer)} ${put.ETag}`);
      const ranged = await get(2, "c/obj", { ...ssec(), Range: `bytes=${MiB - 3}-${MiB + 2}` });
      expect(ranged.bytes.equals(body.subarray(MiB - 3, MiB + 3))).toBe(true);
      const head = await s3[2].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "c/obj", ...ssec() }));
      expect(head.ContentLength).toBe(body.length);
    },
    T,
  );

  test(
    "a missing key is 400 InvalidRequest, a wrong key 403, on GET and HEAD through every peer; the native API refuses it",
    async () => {
      for (const i of [0, 1, 2]) {
        await expectFailure(`GET no key via ${i}`, s3[i].send(new GetObjectCommand({ Bucket: BUCKET, Key: "c/obj" })), "400 InvalidRequest");
        await expectFailure(`GET wrong key via ${i}`, s3[i].send(new GetObjectCommand({ Bucket: BUCKET, Key: "c/obj", ...ssec(otherCustomer) })), "403 AccessDenied");
        await expectFailure(`HEAD no key via ${i}`, s3[i].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "c/obj" })), "400");
        await expectFailure(`HEAD wrong key via ${i}`, s3[i].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "c/obj", ...ssec(otherCustomer) })), "403");
      }
      // A key sent for an object that has none is refused too (never ignored).
      await expectFailure("GET SSE-S3 object with a customer key", s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: "s3/big", ...ssec() })), "400 InvalidRequest");
      const native = await nativeGet(cluster.peer(1).httpUrl, BUCKET, "c/obj");
      expect(native.status).toBe(400);
      expect(Buffer.from(native.body).includes(SECRET)).toBe(false);
    },
    T,
  );

  test(
    "a key whose MD5 does not match is 400 InvalidArgument and stores nothing",
    async () => {
      const r = await signedFetch(cluster.peer(0).s3Url, {
        method: "PUT",
        path: s3Path(BUCKET, "c/bad-md5"),
        body: "whatever",
        headers: {
          "x-amz-server-side-encryption-customer-algorithm": "AES256",
          "x-amz-server-side-encryption-customer-key": customer.toString("base64"),
          "x-amz-server-side-encryption-customer-key-md5": keyMd5(otherCustomer),
        },
      });
      expect(s3StatusAndCode(r)).toBe("400 InvalidArgument");
      expect(r.text.includes(customer.toString("base64"))).toBe(false);
      await expectFailure("HEAD c/bad-md5", s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "c/bad-md5" })), "404 NotFound");
    },
    T,
  );

  test(
    "multipart: parts carry the key (a part without it is refused), the object reads back across the part boundary",
    async () => {
      const part1 = patterned(SECRET, 5 * MiB);
      const part2 = patterned(SECRET, 100_000);
      const whole = Buffer.concat([part1, part2]);
      const { UploadId, SSECustomerAlgorithm } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "c/multi", ...ssec() }));
      expect(SSECustomerAlgorithm).toBe("AES256");
      await expectFailure("UploadPart without the key", s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: "c/multi", UploadId, PartNumber: 1, Body: part2 })), "400 InvalidRequest");
      await expectFailure("UploadPart with another key", s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: "c/multi", UploadId, PartNumber: 1, Body: part2, ...ssec(otherCustomer) })), "403 AccessDenied");
      const p1 = await s3[1].send(new UploadPartCommand({ Bucket: BUCKET, Key: "c/multi", UploadId, PartNumber: 1, Body: part1, ...ssec() }));
      const p2 = await s3[2].send(new UploadPartCommand({ Bucket: BUCKET, Key: "c/multi", UploadId, PartNumber: 2, Body: part2, ...ssec() }));
      expect(p1.SSECustomerAlgorithm).toBe("AES256");
      const done = await s3[0].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "c/multi", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }));
      expect(done.ETag).toMatch(/-2"$/);
      expect((await get(1, "c/multi", ssec())).bytes.equals(whole)).toBe(true);
      const a = 5 * MiB - 10;
      expect((await get(2, "c/multi", { ...ssec(), Range: `bytes=${a}-${a + 20}` })).bytes.equals(whole.subarray(a, a + 21))).toBe(true);
      await expectFailure("GET multipart without key", s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: "c/multi" })), "400 InvalidRequest");
    },
    T,
  );
});

describe("copies between kinds", () => {
  test(
    "SSE-C -> SSE-S3 -> SSE-C (another key) -> SSE-S3, each read back through another peer; the source key is required",
    async () => {
      const body = patterned(SECRET, 300_000);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "copy/c", Body: body, ...ssec() }));
      await expectFailure(
        "copy an SSE-C source without its key",
        s3[1].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/x", CopySource: `${BUCKET}/copy/c`, ServerSideEncryption: "AES256" })),
        "400 InvalidRequest",
      );
      const toS3 = await s3[1].send(
        new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/s3", CopySource: `${BUCKET}/copy/c`, ServerSideEncryption: "AES256", CopySourceSSECustomerAlgorithm: "AES256", CopySourceSSECustomerKey: customer as unknown as string }),
      );
      expect(toS3.ServerSideEncryption).toBe("AES256");
      expect((await get(2, "copy/s3")).bytes.equals(body)).toBe(true);
      const toC = await s3[2].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/c2", CopySource: `${BUCKET}/copy/s3`, ...ssec(otherCustomer) }));
      expect(toC.SSECustomerKeyMD5).toBe(keyMd5(otherCustomer));
      expect((await get(0, "copy/c2", ssec(otherCustomer))).bytes.equals(body)).toBe(true);
      await expectFailure("GET copy/c2 with the source's key", s3[0].send(new GetObjectCommand({ Bucket: BUCKET, Key: "copy/c2", ...ssec() })), "403 AccessDenied");
      // SSE-S3 to SSE-S3 shares the sealed chunks; the copy reads back on its own.
      await s3[0].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/s3b", CopySource: `${BUCKET}/copy/s3`, ServerSideEncryption: "AES256" }));
      const { out, bytes } = await get(1, "copy/s3b");
      expect(`${out.ServerSideEncryption} ${bytes.equals(body)}`).toBe("AES256 true");
      // Re-encrypting an object in place (same key, new encryption) is allowed, as in S3.
      await s3[1].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/s3b", CopySource: `${BUCKET}/copy/s3b`, ...ssec() }));
      expect((await get(2, "copy/s3b", ssec())).bytes.equals(body)).toBe(true);
    },
    T,
  );

  test(
    "an SSE-S3 object copied without SSE headers to a bucket without a default is stored in clear",
    async () => {
      const body = patterned(CLEAR, 200_000);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "copy/src-clear-target", Body: body, ServerSideEncryption: "AES256" }));
      const out = await s3[1].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/clear", CopySource: `${BUCKET}/copy/src-clear-target` }));
      expect(out.ServerSideEncryption).toBeUndefined();
      const got = await get(2, "copy/clear");
      expect(`${got.out.ServerSideEncryption} ${got.bytes.equals(body)}`).toBe("undefined true");
    },
    T,
  );
});

describe("refusals", () => {
  test(
    "SSE-KMS in any form answers 501 NotImplemented and stores nothing",
    async () => {
      await expectFailure("PUT aws:kms", s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "kms/a", Body: "x", ServerSideEncryption: "aws:kms" })), "501 NotImplemented");
      await expectFailure("PUT aws:kms:dsse", s3[1].send(new PutObjectCommand({ Bucket: BUCKET, Key: "kms/a", Body: "x", ServerSideEncryption: "aws:kms:dsse" })), "501 NotImplemented");
      await expectFailure("PUT kms key id", s3[2].send(new PutObjectCommand({ Bucket: BUCKET, Key: "kms/a", Body: "x", SSEKMSKeyId: "arn:aws:kms:us-east-1:1:key/k" })), "501 NotImplemented");
      await expectFailure("CreateMultipartUpload aws:kms", s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "kms/a", ServerSideEncryption: "aws:kms" })), "501 NotImplemented");
      await expectFailure(
        "PutBucketEncryption aws:kms",
        s3[0].send(new PutBucketEncryptionCommand({ Bucket: BUCKET, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms" } }] } })),
        "501 NotImplemented",
      );
      await expectFailure("HEAD kms/a", s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "kms/a" })), "404 NotFound");
      await expectFailure("GetBucketEncryption after the refusal", s3[1].send(new GetBucketEncryptionCommand({ Bucket: BUCKET })), "404 ServerSideEncryptionConfigurationNotFoundError");
    },
    T,
  );
});

describe("bucket default encryption", () => {
  test(
    "Put/Get/DeleteBucketEncryption; S3 and native writes that name nothing are sealed while it is set, through every peer",
    async () => {
      await expectFailure("GetBucketEncryption unset", s3[0].send(new GetBucketEncryptionCommand({ Bucket: DEFAULTED })), "404 ServerSideEncryptionConfigurationNotFoundError");
      await s3[0].send(new PutBucketEncryptionCommand({ Bucket: DEFAULTED, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] } }));
      const cfg = await s3[1].send(new GetBucketEncryptionCommand({ Bucket: DEFAULTED }));
      expect(cfg.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm).toBe("AES256");
      const body = patterned(SECRET, 1.2 * MiB);
      const put = await s3[2].send(new PutObjectCommand({ Bucket: DEFAULTED, Key: "d/s3", Body: body }));
      expect(put.ServerSideEncryption).toBe("AES256");
      await mustPut(cluster.peer(1).httpUrl, DEFAULTED, "d/native", patterned(SECRET, 5000));
      const head = await s3[0].send(new HeadObjectCommand({ Bucket: DEFAULTED, Key: "d/native" }));
      expect(head.ServerSideEncryption).toBe("AES256");
      const { UploadId, ServerSideEncryption } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: DEFAULTED, Key: "d/multi" }));
      expect(ServerSideEncryption).toBe("AES256");
      const p = await s3[1].send(new UploadPartCommand({ Bucket: DEFAULTED, Key: "d/multi", UploadId, PartNumber: 1, Body: body }));
      const done = await s3[2].send(new CompleteMultipartUploadCommand({ Bucket: DEFAULTED, Key: "d/multi", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] } }));
      expect(done.ServerSideEncryption).toBe("AES256");
      expect((await get(0, "d/multi", {}, DEFAULTED)).bytes.equals(body)).toBe(true);
      // SSE-C asked for explicitly wins over the default.
      const c = await s3[0].send(new PutObjectCommand({ Bucket: DEFAULTED, Key: "d/c", Body: "customer", ...ssec() }));
      expect(`${c.ServerSideEncryption} ${c.SSECustomerAlgorithm}`).toBe("undefined AES256");

      await s3[1].send(new DeleteBucketEncryptionCommand({ Bucket: DEFAULTED }));
      await expectFailure("GetBucketEncryption deleted", s3[2].send(new GetBucketEncryptionCommand({ Bucket: DEFAULTED })), "404 ServerSideEncryptionConfigurationNotFoundError");
      const plain = await s3[2].send(new PutObjectCommand({ Bucket: DEFAULTED, Key: "d/after", Body: patterned(CLEAR, 3000) }));
      expect(plain.ServerSideEncryption).toBeUndefined();
      // Objects written under the default stay encrypted and readable.
      const back = await get(1, "d/s3", {}, DEFAULTED);
      expect(`${back.out.ServerSideEncryption} ${back.bytes.equals(body)}`).toBe("AES256 true");
    },
    T,
  );
});

/** Every file under `dir`. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).isFile());
}

/** The files of every peer that contain `needle`, and how many files were scanned. */
function scan(needles: Buffer[]): { hits: string[]; files: number } {
  const files = cluster.peers.flatMap((p) => filesUnder(p.dataDir));
  const hits = files.filter((f) => {
    const bytes = fs.readFileSync(f);
    return needles.some((n) => bytes.includes(n));
  });
  return { hits, files: files.length };
}

describe("at rest", () => {
  test(
    "no file of any peer (chunks, cache, index) holds plaintext of an encrypted object; clear objects' bytes are found",
    async () => {
      const clearBig = patterned(CLEAR, 1.1 * MiB);
      const clearSmall = patterned(CLEAR, 600);
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "clear/big", Body: clearBig }));
      await s3[1].send(new PutObjectCommand({ Bucket: BUCKET, Key: "clear/small", Body: clearSmall }));
      // Inline bodies sit in the index as base64: look for that form too (aligned: the body starts with the pattern).
      const b64 = (b: Buffer) => Buffer.from(b.subarray(0, 30).toString("base64"));
      const secret = scan([SECRET, b64(patterned(SECRET, 30))]);
      expect(secret.files).toBeGreaterThan(10);
      expect(secret.hits).toEqual([]);
      const control = scan([CLEAR]);
      expect(control.hits.some((f) => f.includes(`${path.sep}chunks${path.sep}`))).toBe(true);
      expect(scan([b64(clearSmall)]).hits.some((f) => f.includes(`${path.sep}index${path.sep}`))).toBe(true);
    },
    T,
  );
});
