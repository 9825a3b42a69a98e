// Bucket owners and S3's smaller behaviours, with AWS SDK clients of two keys that may
// create buckets (and one that may not) against one 3-peer in-process mesh: who owns what,
// BucketAlreadyExists against BucketAlreadyOwnedByYou, ListBuckets' owner and what each
// key sees; a repeated CompleteMultipartUpload, an empty continuation token, "gzip,
// aws-chunked" with a plain payload hash, Expect: 100-continue before and after
// authentication (raw sockets: the bytes on the wire are the point), non-ASCII metadata
// values, and the ACL, grant and object-lock requests refused rather than ignored.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import crypto from "node:crypto";
import net from "node:net";
import zlib from "node:zlib";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketCorsCommand,
  DeleteBucketEncryptionCommand,
  DeleteBucketLifecycleCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectCommand,
  GetBucketAclCommand,
  GetBucketCorsCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketTaggingCommand,
  GetBucketPolicyCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutBucketCorsCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketTaggingCommand,
  PutBucketPolicyCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { json, request, statusAndCode } from "../harness/http.ts";
import { TEST_ADMIN, bearer, bodyBytes, createKey, s3Client, s3Path, sdkFailure, signedFetch, signer, type CreatedKey, type Creds } from "../harness/s3.ts";

const T = 30_000;
let cluster: Cluster;
let alice: CreatedKey;
let bob: CreatedKey;
/** A key with a grant on one bucket and no leave to create any. */
let carol: CreatedKey;
const clients: S3Client[] = [];
const SHARED = "owners-shared";

const url = (i: number) => cluster.peer(i).s3Url;
const http = (i: number) => cluster.peer(i).httpUrl;

/** A one-attempt SDK client for peer i (destroyed in afterAll). */
function client(i: number, creds: Creds, opts: Parameters<typeof s3Client>[2] = {}): S3Client {
  const c = s3Client(url(i), creds, { maxAttempts: 1, ...opts });
  clients.push(c);
  return c;
}

/** "409 BucketAlreadyExists"-style summary of an SDK call that must fail. */
async function failure(what: string, p: Promise<unknown>): Promise<string> {
  const f = await sdkFailure(what, p);
  return `${what}: ${f.status} ${f.name}`;
}

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  alice = await createKey(http(0), { name: "alice", create: true });
  bob = await createKey(http(1), { name: "bob", create: true });
  carol = await createKey(http(2), { name: "carol", buckets: { [SHARED]: "read" } });
}, T);

afterAll(async () => {
  for (const c of clients) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("bucket owners", () => {
  test(
    "a key with create owns what it creates, through every peer; others get AccessDenied or BucketAlreadyExists",
    async () => {
      const a = [0, 1, 2].map((i) => client(i, alice));
      const b = [0, 1, 2].map((i) => client(i, bob));
      await a[0].send(new CreateBucketCommand({ Bucket: "alice-b" }));
      // Owner rights without any grant: write, read, list, head through other peers.
      await a[1].send(new PutObjectCommand({ Bucket: "alice-b", Key: "k", Body: "mine" }));
      expect(new TextDecoder().decode(await bodyBytes((await a[2].send(new GetObjectCommand({ Bucket: "alice-b", Key: "k" }))).Body))).toBe("mine");
      expect((await a[2].send(new ListObjectsV2Command({ Bucket: "alice-b" }))).KeyCount).toBe(1);
      await a[1].send(new HeadBucketCommand({ Bucket: "alice-b" }));
      // Another key that may create buckets has no rights on it.
      expect(await failure("bob GET", b[2].send(new GetObjectCommand({ Bucket: "alice-b", Key: "k" })))).toBe("bob GET: 403 AccessDenied");
      expect(await failure("bob PUT", b[0].send(new PutObjectCommand({ Bucket: "alice-b", Key: "x", Body: "x" })))).toBe("bob PUT: 403 AccessDenied");
      expect(await failure("bob DeleteBucket", b[1].send(new DeleteBucketCommand({ Bucket: "alice-b" })))).toBe("bob DeleteBucket: 403 AccessDenied");
      expect(await failure("bob CreateBucket", b[1].send(new CreateBucketCommand({ Bucket: "alice-b" })))).toBe("bob CreateBucket: 409 BucketAlreadyExists");
      // Nor does an admin re-creating it own it (S3: another account's bucket).
      expect(await failure("admin CreateBucket", client(2, TEST_ADMIN).send(new CreateBucketCommand({ Bucket: "alice-b" })))).toBe("admin CreateBucket: 409 BucketAlreadyExists");
      // The native API agrees.
      const native = await request(http(1), "PUT", "/buckets/alice-b", { headers: { authorization: bearer(bob.token) } });
      expect(statusAndCode(native)).toBe("409 BucketAlreadyExists");
      const nativeList = await request(http(2), "GET", "/buckets", { headers: { authorization: bearer(alice.token) } });
      expect(json<{ buckets: Array<{ name: string; owner?: string }> }>(nativeList).buckets.find((x) => x.name === "alice-b")?.owner).toBe(alice.accessKeyId);
      // The owner deletes it (once empty).
      await a[0].send(new DeleteObjectCommand({ Bucket: "alice-b", Key: "k" }));
      await a[2].send(new DeleteBucketCommand({ Bucket: "alice-b" }));
      expect(await failure("HEAD deleted", a[1].send(new HeadBucketCommand({ Bucket: "alice-b" })))).toBe("HEAD deleted: 404 NotFound");
      // The name is free again: bob creates it and now owns it; alice has no rights left on it.
      await b[0].send(new CreateBucketCommand({ Bucket: "alice-b" }));
      expect(await failure("alice PUT after bob took the name", a[2].send(new PutObjectCommand({ Bucket: "alice-b", Key: "x", Body: "x" })))).toBe("alice PUT after bob took the name: 403 AccessDenied");
      await b[1].send(new DeleteBucketCommand({ Bucket: "alice-b" }));
    },
    T,
  );

  test(
    "the owner sets, reads and removes each whole-document setting of its bucket (encryption, tags, CORS, lifecycle); another key may not",
    async () => {
      const [a, b] = [client(0, alice), client(1, bob)];
      await a.send(new CreateBucketCommand({ Bucket: "alice-settings" }));
      const Bucket = "alice-settings";
      const settings = [
        {
          name: "encryption",
          put: () => new PutBucketEncryptionCommand({ Bucket, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] } }),
          get: () => new GetBucketEncryptionCommand({ Bucket }),
          del: () => new DeleteBucketEncryptionCommand({ Bucket }),
          missing: "404 ServerSideEncryptionConfigurationNotFoundError",
        },
        { name: "tags", put: () => new PutBucketTaggingCommand({ Bucket, Tagging: { TagSet: [{ Key: "team", Value: "a" }] } }), get: () => new GetBucketTaggingCommand({ Bucket }), del: () => new DeleteBucketTaggingCommand({ Bucket }), missing: "404 NoSuchTagSet" },
        {
          name: "cors",
          put: () => new PutBucketCorsCommand({ Bucket, CORSConfiguration: { CORSRules: [{ AllowedMethods: ["GET"], AllowedOrigins: ["https://a.example"] }] } }),
          get: () => new GetBucketCorsCommand({ Bucket }),
          del: () => new DeleteBucketCorsCommand({ Bucket }),
          missing: "404 NoSuchCORSConfiguration",
        },
        {
          name: "lifecycle",
          put: () => new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [{ ID: "old", Status: "Enabled", Filter: { Prefix: "tmp/" }, Expiration: { Days: 1 } }] } }),
          get: () => new GetBucketLifecycleConfigurationCommand({ Bucket }),
          del: () => new DeleteBucketLifecycleCommand({ Bucket }),
          missing: "404 NoSuchLifecycleConfiguration",
        },
      ];
      for (const s of settings) {
        // Owner rights come from creating the bucket: alice has no grant on it.
        await a.send(s.put() as never);
        const got = (await client(2, alice).send(s.get() as never)) as { $metadata: { httpStatusCode?: number } };
        expect(`${s.name}: ${got.$metadata.httpStatusCode}`).toBe(`${s.name}: 200`);
        expect(await failure(`bob ${s.name} PUT`, b.send(s.put() as never))).toBe(`bob ${s.name} PUT: 403 AccessDenied`);
        expect(await failure(`bob ${s.name} GET`, b.send(s.get() as never))).toBe(`bob ${s.name} GET: 403 AccessDenied`);
        expect(await failure(`bob ${s.name} DELETE`, b.send(s.del() as never))).toBe(`bob ${s.name} DELETE: 403 AccessDenied`);
        await client(1, alice).send(s.del() as never);
        expect(await failure(`${s.name} after DELETE`, client(2, alice).send(s.get() as never))).toBe(`${s.name} after DELETE: ${s.missing}`);
      }
      expect(await failure("a setting of no bucket", a.send(new GetBucketTaggingCommand({ Bucket: "alice-no-such" })))).toBe("a setting of no bucket: 404 NoSuchBucket");
      await a.send(new DeleteBucketCommand({ Bucket }));
    },
    T,
  );

  test(
    "re-creating your own bucket: 200 in us-east-1, BucketAlreadyOwnedByYou signed for another region",
    async () => {
      await client(0, alice).send(new CreateBucketCommand({ Bucket: "alice-again" }));
      const again = await client(1, alice).send(new CreateBucketCommand({ Bucket: "alice-again" }));
      expect(again.$metadata.httpStatusCode).toBe(200);
      const eu = client(2, alice, { region: "eu-west-1" });
      expect(await failure("CreateBucket in eu-west-1", eu.send(new CreateBucketCommand({ Bucket: "alice-again" })))).toBe("CreateBucket in eu-west-1: 409 BucketAlreadyOwnedByYou");
      // A key without create: AccessDenied, even for a free name.
      expect(await failure("carol CreateBucket", client(0, carol).send(new CreateBucketCommand({ Bucket: "carol-b" })))).toBe("carol CreateBucket: 403 AccessDenied");
      await client(1, TEST_ADMIN).send(new HeadBucketCommand({ Bucket: "alice-again" }));
      expect(await failure("HEAD carol-b", client(1, TEST_ADMIN).send(new HeadBucketCommand({ Bucket: "carol-b" })))).toBe("HEAD carol-b: 404 NotFound");
    },
    T,
  );

  test(
    "ListBuckets shows the caller as Owner and only the buckets it owns or holds grants on",
    async () => {
      await client(0, bob).send(new CreateBucketCommand({ Bucket: "bob-b" }));
      await client(1, TEST_ADMIN).send(new CreateBucketCommand({ Bucket: SHARED }));
      const names = (r: { Buckets?: Array<{ Name?: string }> }) => (r.Buckets ?? []).map((x) => x.Name).filter((n) => n === "alice-again" || n === "bob-b" || n === SHARED).sort();
      const la = await client(2, alice).send(new ListBucketsCommand({}));
      expect(la.Owner).toEqual({ ID: alice.accessKeyId, DisplayName: "alice" });
      expect(names(la)).toEqual(["alice-again"]);
      const lb = await client(0, bob).send(new ListBucketsCommand({}));
      expect(lb.Owner).toEqual({ ID: bob.accessKeyId, DisplayName: "bob" });
      expect(names(lb)).toEqual(["bob-b"]);
      const lc = await client(1, carol).send(new ListBucketsCommand({}));
      expect(names(lc)).toEqual([SHARED]);
      expect(names(await client(2, TEST_ADMIN).send(new ListBucketsCommand({})))).toEqual(["alice-again", "bob-b", SHARED]);
    },
    T,
  );
});

/** Bytes arriving on a raw connection, and a way to wait for them to say something. */
interface Wire {
  socket: net.Socket;
  text(): string;
  waitFor(pattern: RegExp, ms: number): Promise<boolean>;
  close(): void;
}

async function connect(endpoint: string): Promise<Wire> {
  const u = new URL(endpoint);
  const socket = net.connect(Number(u.port), u.hostname);
  let got = "";
  const waiters = new Set<() => void>();
  socket.on("data", (d: Buffer) => {
    got += d.toString("latin1");
    for (const w of waiters) w();
  });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  return {
    socket,
    text: () => got,
    waitFor: (pattern, ms) =>
      new Promise<boolean>((resolve) => {
        if (pattern.test(got)) return resolve(true);
        const done = (ok: boolean) => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(ok);
        };
        const check = () => pattern.test(got) && done(true);
        const timer = setTimeout(() => done(false), ms);
        waiters.add(check);
      }),
    close: () => socket.destroy(),
  };
}

/**
 * The head of a SigV4-signed request as raw bytes: header values signed as the strings
 * given, sent as the UTF-8 bytes of those strings (as the SDK under Bun and curl send them).
 */
async function signedHead(endpoint: string, method: string, path: string, body: Uint8Array, headers: Record<string, string>, creds: Creds = TEST_ADMIN, tamper = false): Promise<Buffer> {
  const u = new URL(endpoint);
  const all = { host: u.host, "x-amz-content-sha256": crypto.createHash("sha256").update(body).digest("hex"), "content-length": String(body.byteLength), ...headers };
  const signed = await signer(creds).sign({ method, protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path, query: {}, headers: all, body });
  const out = { ...(signed.headers as Record<string, string>) };
  if (tamper) out.authorization = out.authorization.replace(/Signature=([0-9a-f])/, (_m, c: string) => `Signature=${c === "0" ? "1" : "0"}`);
  const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(out).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.from(lines.join("\r\n") + "\r\n", "utf8");
}

describe("S3's smaller behaviours", () => {
  test(
    "a repeated CompleteMultipartUpload of a just-completed upload answers 200 with the same result, through any peer",
    async () => {
      const s3 = [0, 1, 2].map((i) => client(i, alice));
      const bucket = "alice-again";
      const { UploadId } = await s3[0].send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "mp" }));
      const part = await s3[1].send(new UploadPartCommand({ Bucket: bucket, Key: "mp", UploadId, PartNumber: 1, Body: "one part" }));
      const parts = { Parts: [{ PartNumber: 1, ETag: part.ETag }] };
      const first = await s3[2].send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mp", UploadId, MultipartUpload: parts }));
      for (const i of [0, 1, 2]) {
        const again = await s3[i].send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mp", UploadId, MultipartUpload: parts }));
        expect(`via ${i}: ${again.$metadata.httpStatusCode} ${again.ETag} ${again.Key}`).toBe(`via ${i}: 200 ${first.ETag} mp`);
      }
      // Not for other parts, and not for an upload that never was.
      const other = { Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }] };
      expect(await failure("other parts", s3[1].send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mp", UploadId, MultipartUpload: other })))).toBe("other parts: 404 NoSuchUpload");
      expect(await failure("no such upload", s3[1].send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mp", UploadId: "f".repeat(32), MultipartUpload: parts })))).toBe("no such upload: 404 NoSuchUpload");
      expect(new TextDecoder().decode(await bodyBytes((await s3[0].send(new GetObjectCommand({ Bucket: bucket, Key: "mp" }))).Body))).toBe("one part");
    },
    T,
  );

  test(
    "ContinuationToken=\"\" is treated as absent",
    async () => {
      const page = await client(1, alice).send(new ListObjectsV2Command({ Bucket: "alice-again", ContinuationToken: "" }));
      expect(page.$metadata.httpStatusCode).toBe(200);
      expect((page.Contents ?? []).map((o) => o.Key)).toContain("mp");
      // And on the wire, where the SDK might have dropped it.
      const raw = await signedFetch(url(2), { method: "GET", path: s3Path("alice-again"), query: { "list-type": "2", "continuation-token": "" }, creds: alice });
      expect(raw.status).toBe(200);
      expect(raw.text).toContain("<Key>mp</Key>");
    },
    T,
  );

  test(
    "Content-Encoding: gzip, aws-chunked with a plain SHA-256 payload is stored, keeping gzip",
    async () => {
      const plain = "hello, ".repeat(100);
      const gz = zlib.gzipSync(plain);
      const put = await signedFetch(url(0), { method: "PUT", path: s3Path("alice-again", "gz"), headers: { "content-encoding": "gzip, aws-chunked", "content-type": "text/plain" }, body: gz, creds: alice });
      expect(put.status).toBe(200);
      const head = await client(1, alice).send(new HeadObjectCommand({ Bucket: "alice-again", Key: "gz" }));
      expect(head.ContentEncoding).toBe("gzip");
      expect(head.ContentLength).toBe(gz.byteLength);
      const got = await bodyBytes((await client(2, alice).send(new GetObjectCommand({ Bucket: "alice-again", Key: "gz" }))).Body);
      expect(zlib.gunzipSync(got).toString()).toBe(plain);
    },
    T,
  );

  test(
    "Expect: 100-continue: a refused request gets its answer and never a 100; an authenticated one gets the 100, then stores the body",
    async () => {
      const body = new TextEncoder().encode("continued");
      const refused = await connect(url(1));
      try {
        refused.socket.write(Buffer.concat([await signedHead(url(1), "PUT", s3Path("alice-again", "expect"), body, {}, alice, true), Buffer.from("expect: 100-continue\r\n\r\n")]));
        expect(await refused.waitFor(/<\/Error>/, 5000)).toBe(true);
        expect(refused.text().split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
        expect(refused.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
        expect(refused.text()).not.toContain("100 Continue");
      } finally {
        refused.close();
      }
      const accepted = await connect(url(2));
      try {
        accepted.socket.write(Buffer.concat([await signedHead(url(2), "PUT", s3Path("alice-again", "expect"), body, {}, alice), Buffer.from("expect: 100-continue\r\n\r\n")]));
        expect(await accepted.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/, 5000)).toBe(true);
        accepted.socket.write(body);
        expect(await accepted.waitFor(/HTTP\/1\.1 200 OK/, 5000)).toBe(true);
      } finally {
        accepted.close();
      }
      expect(new TextDecoder().decode(await bodyBytes((await client(0, alice).send(new GetObjectCommand({ Bucket: "alice-again", Key: "expect" }))).Body))).toBe("continued");
    },
    T,
  );

  test(
    "metadata values with non-ASCII characters pass signature checking and come back byte for byte",
    async () => {
      // The SDK signs the UTF-8 of the value and, under Bun, sends those bytes.
      await client(0, alice).send(new PutObjectCommand({ Bucket: "alice-again", Key: "meta", Body: "m", Metadata: { city: "Zürich café" } }));
      const head = await client(1, alice).send(new HeadObjectCommand({ Bucket: "alice-again", Key: "meta" }));
      // The answer carries the same bytes; the SDK reads header bytes as latin1.
      expect(Buffer.from(head.Metadata?.city ?? "", "latin1").toString("utf8")).toBe("Zürich café");
      // Beyond latin1 (which the SDK cannot send here): signed as UTF-8, sent as UTF-8 bytes on a raw connection.
      const body = new TextEncoder().encode("x");
      const wire = await connect(url(2));
      try {
        wire.socket.write(Buffer.concat([await signedHead(url(2), "PUT", s3Path("alice-again", "meta-cjk"), body, { "x-amz-meta-word": "日本語 ✓" }, alice), Buffer.from("\r\n"), body]));
        expect(await wire.waitFor(/^HTTP\/1\.1 \d{3}/, 5000)).toBe(true);
        expect(wire.text().split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
      } finally {
        wire.close();
      }
      const cjk = await client(0, alice).send(new HeadObjectCommand({ Bucket: "alice-again", Key: "meta-cjk" }));
      expect(Buffer.from(cjk.Metadata?.word ?? "", "latin1").toString("utf8")).toBe("日本語 ✓");
    },
    T,
  );
});

describe("refused, never ignored", () => {
  test(
    "object lock on CreateBucket, canned ACLs but private, and grants answer 501 NotImplemented; nothing is created",
    async () => {
      const a = client(0, alice);
      expect(await failure("object lock", a.send(new CreateBucketCommand({ Bucket: "locked-b", ObjectLockEnabledForBucket: true })))).toBe("object lock: 501 NotImplemented");
      expect(await failure("public-read bucket", a.send(new CreateBucketCommand({ Bucket: "public-b", ACL: "public-read" })))).toBe("public-read bucket: 501 NotImplemented");
      expect(await failure("grant on bucket", a.send(new CreateBucketCommand({ Bucket: "grant-b", GrantRead: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' })))).toBe("grant on bucket: 501 NotImplemented");
      for (const name of ["locked-b", "public-b", "grant-b"]) {
        expect(await failure(`HEAD ${name}`, client(1, TEST_ADMIN).send(new HeadBucketCommand({ Bucket: name })))).toBe(`HEAD ${name}: 404 NotFound`);
      }
      // Private is what everything here is: accepted.
      await a.send(new CreateBucketCommand({ Bucket: "private-b", ACL: "private", ObjectLockEnabledForBucket: false }));
      const b = "private-b";
      expect(await failure("PutObject public-read", a.send(new PutObjectCommand({ Bucket: b, Key: "p", Body: "x", ACL: "public-read" })))).toBe("PutObject public-read: 501 NotImplemented");
      expect(await failure("PutObject grant", a.send(new PutObjectCommand({ Bucket: b, Key: "p", Body: "x", GrantFullControl: `id="${bob.accessKeyId}"` })))).toBe("PutObject grant: 501 NotImplemented");
      expect(await failure("PutObject lock mode", a.send(new PutObjectCommand({ Bucket: b, Key: "p", Body: "x", ObjectLockMode: "GOVERNANCE", ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) })))).toBe("PutObject lock mode: 400 InvalidRequest");
      expect(await failure("CreateMultipartUpload public-read-write", a.send(new CreateMultipartUploadCommand({ Bucket: b, Key: "p", ACL: "public-read-write" })))).toBe("CreateMultipartUpload public-read-write: 501 NotImplemented");
      expect(await failure("HEAD p", client(2, alice).send(new HeadObjectCommand({ Bucket: b, Key: "p" })))).toBe("HEAD p: 404 NotFound");
      await a.send(new PutObjectCommand({ Bucket: b, Key: "p", Body: "x", ACL: "private" }));
      expect(await failure("CopyObject authenticated-read", a.send(new CopyObjectCommand({ Bucket: b, Key: "q", CopySource: `${b}/p`, ACL: "authenticated-read" })))).toBe("CopyObject authenticated-read: 501 NotImplemented");
      expect(await failure("HEAD q", client(1, alice).send(new HeadObjectCommand({ Bucket: b, Key: "q" })))).toBe("HEAD q: 404 NotFound");
    },
    T,
  );

  test(
    "?acl, ?policy and ?object-lock answer 501 NotImplemented",
    async () => {
      const a = client(1, alice);
      const b = "private-b";
      const calls: Array<[string, Promise<unknown>]> = [
        ["GetBucketAcl", a.send(new GetBucketAclCommand({ Bucket: b }))],
        ["PutBucketAcl", a.send(new PutBucketAclCommand({ Bucket: b, ACL: "private" }))],
        ["GetObjectAcl", a.send(new GetObjectAclCommand({ Bucket: b, Key: "p" }))],
        ["PutObjectAcl", a.send(new PutObjectAclCommand({ Bucket: b, Key: "p", ACL: "public-read" }))],
        ["GetBucketPolicy", a.send(new GetBucketPolicyCommand({ Bucket: b }))],
        ["PutBucketPolicy", a.send(new PutBucketPolicyCommand({ Bucket: b, Policy: JSON.stringify({ Version: "2012-10-17", Statement: [] }) }))],
        ["GetObjectLockConfiguration", a.send(new GetObjectLockConfigurationCommand({ Bucket: b }))],
        ["PutObjectLockConfiguration", a.send(new PutObjectLockConfigurationCommand({ Bucket: b, ObjectLockConfiguration: { ObjectLockEnabled: "Enabled" } }))],
      ];
      for (const [name, p] of calls) expect(await failure(name, p)).toBe(`${name}: 501 NotImplemented`);
    },
    T,
  );
});
