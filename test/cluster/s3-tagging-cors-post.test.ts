// S3 tagging, CORS and browser POST uploads against one 3-peer in-process mesh, as clients
// use them: tags through the AWS SDK (object and bucket, x-amz-tagging on PUT, copy and
// multipart, S3's limits refused), read back through other peers; CORS preflights with plain
// fetch and no credentials, allowed and refused, and the CORS headers on actual answers,
// errors included; browser-style POST uploads built by the SDK's presigned-post helper,
// stored and read back, and every policy violation refused with nothing stored.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCorsCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectTaggingCommand,
  GetBucketCorsCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutBucketCorsCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { json, mustCreateBucket, request } from "../harness/http.ts";
import { waitFor } from "../harness/wait.ts";
import { seededBytes } from "../harness/random.ts";
import { MiB, TEST_ADMIN, bodyBytes, createKey, s3Client, s3ErrorOf, s3Path, sdkFailure, signedFetch, type Creds } from "../harness/s3.ts";

const T = 60_000;
const BUCKET = "tagcors";
const BARE = "tagcors-bare";
/** The web page's origin that BUCKET's first CORS rule allows. */
const ORIGIN = "https://app.example.com";
let cluster: Cluster;
let s3: S3Client[] = [];
const extra: S3Client[] = [];

const url = (i: number) => cluster.peer(i).s3Url;

/** "400 InvalidTag"-style summary of an SDK call that must fail. */
async function failure(what: string, p: Promise<unknown>): Promise<string> {
  const f = await sdkFailure(what, p);
  return `${f.status} ${f.name}`;
}

/** The tags of an object as GetObjectTagging answers them through peer `i`. */
async function tagsOf(i: number, key: string): Promise<Record<string, string>> {
  const out = await s3[i].send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: key }));
  return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
}

/**
 * The SDK's presigned-post helper. It pins its own exact @aws-sdk/client-s3, whose S3Client
 * type differs from ours only in private members: the client is the same at run time.
 */
const presignPost = (client: S3Client, params: Parameters<typeof createPresignedPost>[1]) => createPresignedPost(client as unknown as Parameters<typeof createPresignedPost>[0], params);

const tagSet = (tags: Record<string, string>) => ({ TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) });

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  s3 = [0, 1, 2].map((i) => s3Client(url(i), TEST_ADMIN, { maxAttempts: 1 }));
  await mustCreateBucket(cluster.peer(0).httpUrl, BUCKET);
  await mustCreateBucket(cluster.peer(0).httpUrl, BARE);
}, T);

afterAll(async () => {
  for (const c of [...s3, ...extra]) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("object tagging", () => {
  test(
    "x-amz-tagging on PUT, then Put/Get/DeleteObjectTagging round trip through other peers; bytes, ETag and Last-Modified stay",
    async () => {
      const key = "tagged/a.txt";
      const put = await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "hello tags", Tagging: "team=blue&note=two%20words" }));
      expect(await tagsOf(1, key)).toEqual({ team: "blue", note: "two words" });
      const got = await s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(got.TagCount).toBe(2);
      await bodyBytes(got.Body);
      const before = await s3[0].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));

      await s3[1].send(new PutObjectTaggingCommand({ Bucket: BUCKET, Key: key, Tagging: tagSet({ stage: "prod", "ü-key": "välue +-=._:/@" }) }));
      expect(await tagsOf(2, key)).toEqual({ stage: "prod", "ü-key": "välue +-=._:/@" });
      expect(await tagsOf(0, key)).toEqual({ stage: "prod", "ü-key": "välue +-=._:/@" });
      const after = await s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(new TextDecoder().decode(await bodyBytes(after.Body))).toBe("hello tags");
      expect([after.ETag, after.LastModified?.getTime(), after.TagCount]).toEqual([put.ETag, before.LastModified?.getTime(), 2]);

      await s3[2].send(new DeleteObjectTaggingCommand({ Bucket: BUCKET, Key: key }));
      expect(await tagsOf(0, key)).toEqual({});
      expect((await s3[1].send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).TagCount).toBeUndefined();
      expect(await failure("tagging a missing key", s3[0].send(new PutObjectTaggingCommand({ Bucket: BUCKET, Key: "nope", Tagging: tagSet({ a: "b" }) })))).toBe("404 NoSuchKey");

      // Each tag change is a change event of its own, in the order made.
      let names: string[] = [];
      await waitFor("the tagging events", async () => {
        const r = await request(cluster.peer(1).httpUrl, "GET", `/buckets/${BUCKET}/events?prefix=${encodeURIComponent(key)}&limit=100`);
        names = json<{ events: Array<{ eventName: string }> }>(r).events.map((e) => e.eventName);
        return names.length >= 3;
      });
      expect(names).toEqual(["ObjectCreated:Put", "ObjectTagging:Put", "ObjectTagging:Delete"]);
    },
    T,
  );

  test(
    "S3's limits: 10 tags, keys of 128 and values of 256 characters, no duplicates, no aws: keys; a refused PUT stores nothing",
    async () => {
      const key = "limits/k";
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "x" }));
      const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, "v"]));
      const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, "v"]));
      const put = (TagSet: Array<{ Key: string; Value: string }>) => s3[1].send(new PutObjectTaggingCommand({ Bucket: BUCKET, Key: key, Tagging: { TagSet } }));
      expect(await failure("11 tags", put(tagSet(eleven).TagSet))).toBe("400 BadRequest");
      expect(await failure("long key", put([{ Key: "k".repeat(129), Value: "v" }]))).toBe("400 InvalidTag");
      expect(await failure("long value", put([{ Key: "k", Value: "v".repeat(257) }]))).toBe("400 InvalidTag");
      expect(await failure("duplicate keys", put([{ Key: "k", Value: "1" }, { Key: "k", Value: "2" }]))).toBe("400 InvalidTag");
      expect(await failure("aws: key", put([{ Key: "aws:cloudformation:stack", Value: "v" }]))).toBe("400 InvalidTag");
      expect(await tagsOf(2, key)).toEqual({});
      // At the limits exactly: 10 tags, 128-character keys (astral characters count once), 256-character values.
      await put(tagSet(ten).TagSet);
      expect(Object.keys(await tagsOf(0, key)).length).toBe(10);
      await put([{ Key: "𝒜".repeat(128), Value: "v".repeat(256) }]);
      expect(await tagsOf(1, key)).toEqual({ ["𝒜".repeat(128)]: "v".repeat(256) });

      const header = Object.keys(eleven).map((k) => `${k}=v`).join("&");
      expect(await failure("PUT with 11 tags", s3[2].send(new PutObjectCommand({ Bucket: BUCKET, Key: "limits/none", Body: "x", Tagging: header })))).toBe("400 BadRequest");
      expect(await failure("PUT with a duplicate", s3[2].send(new PutObjectCommand({ Bucket: BUCKET, Key: "limits/none", Body: "x", Tagging: "a=1&a=2" })))).toBe("400 InvalidTag");
      expect(await failure("HEAD of the refused PUT", s3[0].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "limits/none" })))).toBe("404 NotFound");
    },
    T,
  );

  test(
    "CopyObject keeps the source's tags (COPY) or takes x-amz-tagging (REPLACE); a multipart upload's tags reach its object",
    async () => {
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "copy/src", Body: "source", Tagging: "origin=src" }));
      await s3[1].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/kept", CopySource: `${BUCKET}/copy/src` }));
      expect(await tagsOf(2, "copy/kept")).toEqual({ origin: "src" });
      await s3[2].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/replaced", CopySource: `${BUCKET}/copy/src`, TaggingDirective: "REPLACE", Tagging: "fresh=yes" }));
      expect(await tagsOf(0, "copy/replaced")).toEqual({ fresh: "yes" });
      await s3[0].send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/cleared", CopySource: `${BUCKET}/copy/src`, TaggingDirective: "REPLACE" }));
      expect(await tagsOf(1, "copy/cleared")).toEqual({});

      const key = "multi/obj";
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, Tagging: "kind=multipart&n=2" }));
      const parts = [seededBytes(5 * MiB, 1), seededBytes(1000, 2)];
      const etags: string[] = [];
      for (const [i, body] of parts.entries()) etags.push((await s3[i + 1].send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: body }))).ETag!);
      await s3[2].send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
      expect(await tagsOf(1, key)).toEqual({ kind: "multipart", n: "2" });
    },
    T,
  );

  test(
    "bucket tagging: Put/Get/Delete through different peers, NoSuchTagSet when none, at most 50 tags",
    async () => {
      expect(await failure("no tags yet", s3[0].send(new GetBucketTaggingCommand({ Bucket: BUCKET })))).toBe("404 NoSuchTagSet");
      await s3[0].send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: tagSet({ owner: "team-a", cost: "42" }) }));
      const got = await s3[2].send(new GetBucketTaggingCommand({ Bucket: BUCKET }));
      expect(Object.fromEntries((got.TagSet ?? []).map((t) => [t.Key, t.Value]))).toEqual({ owner: "team-a", cost: "42" });
      const fiftyOne = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"]));
      expect(await failure("51 bucket tags", s3[1].send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: tagSet(fiftyOne) })))).toBe("400 InvalidTag");
      await s3[1].send(new DeleteBucketTaggingCommand({ Bucket: BUCKET }));
      expect(await failure("tags deleted", s3[2].send(new GetBucketTaggingCommand({ Bucket: BUCKET })))).toBe("404 NoSuchTagSet");
    },
    T,
  );
});

describe("CORS", () => {
  /** A preflight as a browser sends it: plain fetch, no credentials. */
  const preflight = (i: number, path: string, headers: Record<string, string>) => fetch(url(i) + path, { method: "OPTIONS", headers });

  test(
    "Put/Get/DeleteBucketCors round trip; bad configurations are refused",
    async () => {
      expect(await failure("no CORS yet", s3[0].send(new GetBucketCorsCommand({ Bucket: BUCKET })))).toBe("404 NoSuchCORSConfiguration");
      await s3[0].send(
        new PutBucketCorsCommand({
          Bucket: BUCKET,
          CORSConfiguration: {
            CORSRules: [
              { ID: "app", AllowedOrigins: [ORIGIN, "https://*.example.org"], AllowedMethods: ["GET", "PUT", "POST", "HEAD"], AllowedHeaders: ["content-type", "x-amz-*"], ExposeHeaders: ["ETag", "x-amz-request-id"], MaxAgeSeconds: 600 },
              { AllowedOrigins: ["*"], AllowedMethods: ["GET"] },
            ],
          },
        }),
      );
      const got = await s3[1].send(new GetBucketCorsCommand({ Bucket: BUCKET }));
      expect(got.CORSRules?.length).toBe(2);
      expect(got.CORSRules?.[0]).toMatchObject({ ID: "app", AllowedOrigins: [ORIGIN, "https://*.example.org"], AllowedMethods: ["GET", "PUT", "POST", "HEAD"], MaxAgeSeconds: 600, ExposeHeaders: ["ETag", "x-amz-request-id"] });
      const bad = (rule: { AllowedOrigins: string[]; AllowedMethods: string[]; AllowedHeaders?: string[] }) => s3[2].send(new PutBucketCorsCommand({ Bucket: BARE, CORSConfiguration: { CORSRules: [rule] } }));
      expect(await failure("PATCH", bad({ AllowedOrigins: ["*"], AllowedMethods: ["PATCH"] }))).toBe("400 InvalidRequest");
      expect(await failure("two wildcards in an origin", bad({ AllowedOrigins: ["https://*.*.com"], AllowedMethods: ["GET"] }))).toBe("400 InvalidRequest");
      expect(await failure("two wildcards in a header", bad({ AllowedOrigins: ["*"], AllowedMethods: ["GET"], AllowedHeaders: ["x-*-*"] }))).toBe("400 InvalidRequest");
      const many = Array.from({ length: 101 }, () => ({ AllowedOrigins: ["*"], AllowedMethods: ["GET"] }));
      expect(await failure("101 rules", s3[2].send(new PutBucketCorsCommand({ Bucket: BARE, CORSConfiguration: { CORSRules: many } })))).toBe("400 MalformedXML");
      expect(await failure("nothing stored for BARE", s3[0].send(new GetBucketCorsCommand({ Bucket: BARE })))).toBe("404 NoSuchCORSConfiguration");
      // Delete, then set again for the tests below.
      await s3[2].send(new DeleteBucketCorsCommand({ Bucket: BARE }));
    },
    T,
  );

  test(
    "preflights without credentials: the first matching rule's headers, or 403 when no rule (or no configuration) allows it",
    async () => {
      const ok = await preflight(1, s3Path(BUCKET, "any/key.txt"), { origin: ORIGIN, "access-control-request-method": "PUT", "access-control-request-headers": "Content-Type, X-Amz-Meta-Who" });
      expect(ok.status).toBe(200);
      expect({
        origin: ok.headers.get("access-control-allow-origin"),
        methods: ok.headers.get("access-control-allow-methods"),
        headers: ok.headers.get("access-control-allow-headers"),
        expose: ok.headers.get("access-control-expose-headers"),
        age: ok.headers.get("access-control-max-age"),
        credentials: ok.headers.get("access-control-allow-credentials"),
      }).toEqual({ origin: ORIGIN, methods: "GET, PUT, POST, HEAD", headers: "content-type, x-amz-meta-who", expose: "ETag, x-amz-request-id", age: "600", credentials: "true" });
      expect(ok.headers.get("vary")).toContain("Origin");
      // A wildcard origin pattern, on the bucket itself (a browser POST's preflight).
      expect((await preflight(2, s3Path(BUCKET), { origin: "https://files.example.org", "access-control-request-method": "POST" })).status).toBe(200);
      // The catch-all rule answers "*" for GET from anywhere.
      const any = await preflight(0, s3Path(BUCKET, "k"), { origin: "https://elsewhere.test", "access-control-request-method": "GET" });
      expect([any.status, any.headers.get("access-control-allow-origin"), any.headers.get("access-control-allow-credentials")]).toEqual([200, "*", null]);

      const refused = async (i: number, path: string, headers: Record<string, string>) => {
        const r = await preflight(i, path, headers);
        const text = await r.text();
        return `${r.status} ${s3ErrorOf(text).code} ${r.headers.has("access-control-allow-origin")}`;
      };
      expect(await refused(0, s3Path(BUCKET, "k"), { origin: "https://elsewhere.test", "access-control-request-method": "DELETE" })).toBe("403 AccessForbidden false");
      expect(await refused(1, s3Path(BUCKET, "k"), { origin: ORIGIN, "access-control-request-method": "PUT", "access-control-request-headers": "x-custom" })).toBe("403 AccessForbidden false");
      expect(await refused(2, s3Path(BARE, "k"), { origin: ORIGIN, "access-control-request-method": "GET" })).toBe("403 AccessForbidden false");
      expect(await refused(0, s3Path(BUCKET, "k"), { "access-control-request-method": "GET" })).toBe("400 BadRequest false");
    },
    T,
  );

  test(
    "actual answers to an allowed Origin carry Access-Control-Allow-Origin, Vary and the exposed headers, errors too",
    async () => {
      await s3[0].send(new PutObjectCommand({ Bucket: BUCKET, Key: "cors/obj", Body: "cors body" }));
      const get = await signedFetch(url(2), { method: "GET", path: s3Path(BUCKET, "cors/obj"), headers: { origin: ORIGIN } });
      expect([get.status, get.text, get.headers.get("access-control-allow-origin"), get.headers.get("access-control-expose-headers")]).toEqual([200, "cors body", ORIGIN, "ETag, x-amz-request-id"]);
      expect(get.headers.get("vary")).toContain("Origin");
      const missing = await signedFetch(url(1), { method: "GET", path: s3Path(BUCKET, "cors/none"), headers: { origin: ORIGIN } });
      expect([missing.status, s3ErrorOf(missing.text).code, missing.headers.get("access-control-allow-origin")]).toEqual([404, "NoSuchKey", ORIGIN]);
      // An origin no rule allows for DELETE gets no CORS headers (the request itself is served).
      const del = await signedFetch(url(0), { method: "DELETE", path: s3Path(BUCKET, "cors/obj"), headers: { origin: "https://elsewhere.test" } });
      expect([del.status, del.headers.has("access-control-allow-origin")]).toEqual([204, false]);
      const plain = await signedFetch(url(0), { method: "GET", path: s3Path(BUCKET, "cors/none") });
      expect(plain.headers.has("access-control-allow-origin")).toBe(false);
    },
    T,
  );
});

describe("browser POST uploads", () => {
  /** Post a form built by the presigned-post helper, with `file` last, as a browser does. */
  async function postForm(post: { url: string; fields: Record<string, string> }, file: Uint8Array, opts: { filename?: string; override?: Record<string, string>; drop?: string[]; headers?: Record<string, string> } = {}) {
    const form = new FormData();
    const fields = { ...post.fields, ...opts.override };
    for (const [k, v] of Object.entries(fields)) if (!opts.drop?.includes(k)) form.append(k, v);
    form.append("file", new Blob([file], { type: "application/octet-stream" }), opts.filename ?? "photo.jpg");
    const r = await fetch(post.url, { method: "POST", body: form, headers: opts.headers, redirect: "manual" });
    return { status: r.status, headers: r.headers, text: await r.text() };
  }
  /** An error document's message, its entities decoded. */
  const messageOf = (text: string) => s3ErrorOf(text).message.replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  const code = (r: { status: number; text: string }) => `${r.status} ${r.status >= 400 ? s3ErrorOf(r.text).code : ""}`.trim();

  test(
    "a presigned POST with ${filename}, metadata, Content-Type and tagging is stored, streamed in chunks, and read back through other peers",
    async () => {
      const post = await presignPost(s3[0], {
        Bucket: BUCKET,
        Key: "uploads/${filename}",
        Conditions: [["content-length-range", 1, 8 * MiB], ["starts-with", "$Content-Type", "image/"]],
        Fields: { "Content-Type": "image/jpeg", "x-amz-meta-who": "browser", success_action_status: "201", tagging: "<Tagging><TagSet><Tag><Key>via</Key><Value>post</Value></Tag></TagSet></Tagging>" },
        Expires: 300,
      });
      expect(post.url).toBe(`${url(0)}/${BUCKET}`);
      const file = seededBytes(3 * MiB + 12345, 7);
      const r = await postForm(post, file, { filename: "cat.jpg", headers: { origin: ORIGIN } });
      expect(r.status).toBe(201);
      expect(r.text).toContain("<Key>uploads/cat.jpg</Key>");
      expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
      const got = await s3[2].send(new GetObjectCommand({ Bucket: BUCKET, Key: "uploads/cat.jpg" }));
      expect(Buffer.from(await bodyBytes(got.Body)).equals(Buffer.from(file))).toBe(true);
      expect([got.ContentType, got.Metadata?.who, got.TagCount, got.ETag]).toEqual(["image/jpeg", "browser", 1, r.headers.get("etag")!]);
      expect(await tagsOf(1, "uploads/cat.jpg")).toEqual({ via: "post" });

      // Without success_action_status: 204, as S3 answers by default; a redirect is a 303 naming the object.
      const plain = await presignPost(s3[1], { Bucket: BUCKET, Key: "uploads/plain.bin" });
      expect((await postForm(plain, new Uint8Array([1, 2, 3]))).status).toBe(204);
      expect((await s3[0].send(new HeadObjectCommand({ Bucket: BUCKET, Key: "uploads/plain.bin" }))).ContentLength).toBe(3);
      const redirected = await presignPost(s3[2], { Bucket: BUCKET, Key: "uploads/r.bin", Fields: { success_action_redirect: "https://app.example.com/done?x=1" } });
      const rr = await postForm(redirected, new Uint8Array([9]));
      expect(rr.status).toBe(303);
      const loc = new URL(rr.headers.get("location")!);
      expect([loc.origin + loc.pathname, loc.searchParams.get("x"), loc.searchParams.get("bucket"), loc.searchParams.get("key")]).toEqual(["https://app.example.com/done", "1", BUCKET, "uploads/r.bin"]);
    },
    T,
  );

  test(
    "policy violations are refused and store nothing: expired, wrong key prefix, too large, extra field, bad signature, missing key, no write grant",
    async () => {
      const absent = async (key: string) => expect(await failure(`HEAD ${key}`, s3[1].send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })))).toBe("404 NotFound");
      // Signed two hours ago with five minutes to live.
      const past = s3Client(url(0), TEST_ADMIN, { maxAttempts: 1, systemClockOffset: -2 * 3600 * 1000 });
      extra.push(past);
      const expired = await presignPost(past, { Bucket: BUCKET, Key: "bad/expired", Expires: 300 });
      const e = await postForm(expired, new Uint8Array([1]));
      expect([code(e), messageOf(e.text)]).toEqual(["403 AccessDenied", "Invalid according to Policy: Policy expired."]);
      await absent("bad/expired");

      const prefixed = await presignPost(s3[0], { Bucket: BUCKET, Key: "allowed/${filename}" });
      const p = await postForm(prefixed, new Uint8Array([1]), { override: { key: "elsewhere/x" } });
      expect([code(p), messageOf(p.text)]).toEqual(["403 AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "allowed/"]']);
      await absent("elsewhere/x");

      const small = await presignPost(s3[1], { Bucket: BUCKET, Key: "bad/large", Conditions: [["content-length-range", 0, 1000]] });
      expect(code(await postForm(small, seededBytes(2 * MiB, 3)))).toBe("400 EntityTooLarge");
      await absent("bad/large");
      const least = await presignPost(s3[1], { Bucket: BUCKET, Key: "bad/small", Conditions: [["content-length-range", 10, 1000]] });
      expect(code(await postForm(least, new Uint8Array(5)))).toBe("400 EntityTooSmall");
      await absent("bad/small");

      const plain = await presignPost(s3[2], { Bucket: BUCKET, Key: "bad/extra" });
      const x = await postForm(plain, new Uint8Array([1]), { override: { "x-amz-meta-sneaky": "1" } });
      expect([code(x), messageOf(x.text)]).toEqual(["403 AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"]);
      expect(code(await postForm(plain, new Uint8Array([1]), { override: { "X-Amz-Signature": "0".repeat(64) } }))).toBe("403 SignatureDoesNotMatch");
      expect(code(await postForm(plain, new Uint8Array([1]), { drop: ["key"] }))).toBe("400 InvalidArgument");
      await absent("bad/extra");

      // Forms a browser would not send: no file, fields past 20 KB before it, cut off inside the file, not a form at all.
      const raw = async (body: string, type = "multipart/form-data; boundary=XB") => {
        const r = await fetch(`${url(2)}/${BUCKET}`, { method: "POST", body, headers: { "content-type": type } });
        return code({ status: r.status, text: await r.text() });
      };
      const part = (name: string, value: string, filename?: string) => `--XB\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ""}\r\n\r\n${value}\r\n`;
      const signedFields = Object.entries(plain.fields).map(([k, v]) => part(k, v)).join("");
      expect(await raw(signedFields + "--XB--\r\n")).toBe("400 InvalidArgument");
      expect(await raw(part("x-ignore-pad", "p".repeat(21 * 1024)) + signedFields + part("file", "x", "f") + "--XB--\r\n")).toBe("400 MaxPostPreDataLengthExceeded");
      expect(await raw(signedFields + `--XB\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\ncut off`)).toBe("400 MalformedPOSTRequest");
      expect(await raw("key=bad/extra", "application/x-www-form-urlencoded")).toBe("412 PreconditionFailed");
      await absent("bad/extra");

      const reader: Creds = await createKey(cluster.peer(0).httpUrl, { name: "reader", buckets: { [BUCKET]: "read" } });
      const readOnly = s3Client(url(1), reader, { maxAttempts: 1 });
      extra.push(readOnly);
      const denied = await presignPost(readOnly, { Bucket: BUCKET, Key: "bad/reader" });
      expect(code(await postForm(denied, new Uint8Array([1])))).toBe("403 AccessDenied");
      await absent("bad/reader");
    },
    T,
  );
});
