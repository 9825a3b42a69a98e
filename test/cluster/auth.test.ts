// Authentication and permissions on a 3-peer in-process mesh: native bearer tokens
// (missing, malformed, forged, unknown, revoked), the routes that stay open, the admin
// key routes, mesh-wide keys (created on one peer, used on the others, revoked
// everywhere at once), and read/write/owner/admin permissions checked through both the
// native API and S3. Then a peer started without auth.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, withCluster, type Cluster } from "../harness/cluster.ts";
import { errorOf, json, md5Hex, mustCreateBucket, mustPut, objectPath, request, type Reply } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import {
  ADMIN_BEARER,
  TEST_ADMIN,
  anonymous,
  bearer,
  bodyBytes,
  createKey,
  createKeyRaw,
  listKeys,
  revokeKey,
  s3Client,
  s3ErrorOf,
  sdkFailure,
  type CreatedKey,
} from "../harness/s3.ts";

const T = 60_000;
let cluster: Cluster;
const clients: S3Client[] = [];

const http = (i: number) => cluster.peer(i).httpUrl;
const text = (r: Reply) => new TextDecoder().decode(r.body);

/** A one-attempt S3 client for peer i with these credentials. */
function s3As(i: number, creds: { accessKeyId: string; secretAccessKey: string }): S3Client {
  const c = s3Client(cluster.peer(i).s3Url, creds, { maxAttempts: 1 });
  clients.push(c);
  return c;
}

/** A native request as the holder of `key`. */
function as(key: CreatedKey, i: number, method: string, path: string, body?: string | Uint8Array): Promise<Reply> {
  return request(http(i), method, path, { body, headers: { authorization: bearer(key.token) } });
}

/** "403 AccessDenied", "401 Unauthorized", "200"... for a native reply (HEAD: status only). */
function outcome(r: Reply, method = "GET"): string {
  if (r.status < 400 || method === "HEAD") return `${r.status}`;
  return `${r.status} ${errorOf(r).code}`;
}

/** Expect an SDK call to fail with `status name` (HEAD: status only). */
async function s3Refused(what: string, p: Promise<unknown>, status: number, name?: string): Promise<void> {
  const f = await sdkFailure(what, p);
  expect(`${what}: ${f.status}${name ? ` ${f.name}` : ""}`).toBe(`${what}: ${status}${name ? ` ${name}` : ""}`);
}

beforeAll(async () => {
  cluster = await startConverged(3, { config: { chunkSize: 1 << 20 } });
  for (const b of ["perm-a", "perm-b", "perm-c", "perm-w-empty"]) await mustCreateBucket(http(0), b);
  await mustPut(http(0), "perm-a", "doc", "alpha");
  await mustPut(http(1), "perm-b", "doc", "bravo");
  await mustPut(http(2), "perm-c", "doc", "charlie");
}, T);

afterAll(async () => {
  for (const c of clients) c.destroy();
  await teardownCluster(cluster);
}, T);

describe("native API tokens", () => {
  test(
    "GET /health, /cluster/peers and /cluster/status stay open without a token",
    async () => {
      for (const i of [0, 1, 2]) {
        for (const route of ["/health", "/cluster/peers", "/cluster/status"]) {
          const r = await anonymous(http(i), "GET", route);
          expect(`peer ${i} ${route}: ${r.status}`).toBe(`peer ${i} ${route}: 200`);
          expect(typeof JSON.parse(text(r))).toBe("object");
        }
      }
    },
    T,
  );

  test(
    "a missing, malformed, forged or unknown token is 401 Unauthorized on every protected route, and nothing happens",
    async () => {
      const adminToken = ADMIN_BEARER.slice("Bearer ".length);
      const forgedMac = adminToken.slice(0, -4) + (adminToken.endsWith("AAAA") ? "BBBB" : "AAAA");
      const authorizations: Array<string | undefined> = [
        undefined,
        "",
        "Bearer",
        "Bearer garbage",
        `Bearer ${forgedMac}`,
        `Bearer mst_MKNOSUCHKEY000000000_${adminToken.slice(adminToken.lastIndexOf("_") + 1)}`,
        `Bearer ${TEST_ADMIN.secretAccessKey}`,
        `Basic ${Buffer.from(`${TEST_ADMIN.accessKeyId}:${TEST_ADMIN.secretAccessKey}`).toString("base64")}`,
        adminToken,
      ];
      const routes: Array<[string, string, string?]> = [
        ["GET", "/buckets"],
        ["PUT", "/buckets/never-made"],
        ["DELETE", "/buckets/perm-a"],
        ["GET", "/buckets/perm-a/objects"],
        ["GET", objectPath("perm-a", "doc")],
        ["HEAD", objectPath("perm-a", "doc")],
        ["PUT", objectPath("perm-a", "unauthorized"), "nope"],
        ["DELETE", objectPath("perm-a", "doc")],
        ["POST", "/cluster/drain"],
        ["GET", "/admin/keys"],
        ["POST", "/admin/keys", JSON.stringify({ name: "sneaky", admin: true })],
        ["DELETE", `/admin/keys/${TEST_ADMIN.accessKeyId}`],
      ];
      for (const [n, authorization] of authorizations.entries()) {
        for (const [method, path, body] of routes) {
          const i = n % 3;
          const r =
            authorization === undefined
              ? await anonymous(http(i), method, path, { body })
              : await request(http(i), method, path, { body, headers: { authorization } });
          const label = `${method} ${path} with ${JSON.stringify(authorization)?.slice(0, 40)}`;
          expect(`${label}: ${outcome(r, method)}`).toBe(`${label}: ${method === "HEAD" ? "401" : "401 Unauthorized"}`);
        }
      }
      // Nothing was done by any of those.
      const names = json<{ buckets: Array<{ name: string }> }>(await request(http(0), "GET", "/buckets")).buckets.map((b) => b.name);
      expect(names).not.toContain("never-made");
      expect(names).toContain("perm-a");
      expect(text(await request(http(1), "GET", objectPath("perm-a", "doc")))).toBe("alpha");
      expect((await request(http(2), "GET", objectPath("perm-a", "unauthorized"))).status).toBe(404);
      expect((await listKeys(http(0))).some((k) => k.name === "sneaky")).toBe(false);
      expect(json<{ draining: boolean }>(await anonymous(http(0), "GET", "/cluster/status")).draining).toBe(false);
    },
    T,
  );
});

describe("admin key routes", () => {
  test(
    "POST /admin/keys on peer 0 makes a key that works at once through peers 1 and 2 on both APIs; GET /admin/keys lists it everywhere without secrets",
    async () => {
      const before = Date.now();
      const r = await createKeyRaw(http(0), JSON.stringify({ name: "reader of a", buckets: { "perm-a": "read" } }));
      expect(r.status).toBe(201);
      const key = json<CreatedKey>(r);
      expect(Object.keys(key).sort()).toEqual(["accessKeyId", "admin", "buckets", "createdMs", "name", "secretAccessKey", "token"]);
      expect(key.accessKeyId).toMatch(/^MK[A-Z0-9]{18}$/);
      expect(typeof key.secretAccessKey).toBe("string");
      expect(key.secretAccessKey.length).toBeGreaterThanOrEqual(16);
      expect(key.token.startsWith(`mst_${key.accessKeyId}_`)).toBe(true);
      expect(key.token.length).toBeGreaterThan(`mst_${key.accessKeyId}_`.length + 20);
      expect(key.name).toBe("reader of a");
      expect(key.admin).toBe(false);
      expect(key.buckets).toEqual({ "perm-a": "read" });
      expect(key.createdMs).toBeGreaterThanOrEqual(before - 5000);
      expect(key.createdMs).toBeLessThanOrEqual(Date.now() + 5000);

      for (const i of [1, 2]) {
        const nat = await as(key, i, "GET", objectPath("perm-a", "doc"));
        expect(`native via ${i}: ${outcome(nat)}`).toBe(`native via ${i}: 200`);
        expect(text(nat)).toBe("alpha");
        const out = await s3As(i, key).send(new GetObjectCommand({ Bucket: "perm-a", Key: "doc" }));
        expect(new TextDecoder().decode(await bodyBytes(out.Body))).toBe("alpha");
      }

      const other = await createKey(http(1), {});
      expect(other.accessKeyId).not.toBe(key.accessKeyId);
      expect(other.secretAccessKey).not.toBe(key.secretAccessKey);
      expect(other.name).toBe("");
      expect(other.admin).toBe(false);
      expect(other.buckets).toEqual({});

      for (const i of [0, 1, 2]) {
        const lr = await request(http(i), "GET", "/admin/keys");
        expect(lr.status).toBe(200);
        const body = text(lr);
        expect(body).not.toContain(key.secretAccessKey);
        expect(body).not.toContain(key.token);
        expect(body).not.toContain(TEST_ADMIN.secretAccessKey);
        const keys = json<{ keys: Array<Record<string, unknown>> }>(lr).keys;
        for (const k of keys) {
          expect(k.secretAccessKey).toBeUndefined();
          expect(k.token).toBeUndefined();
        }
        expect(keys.find((k) => k.accessKeyId === key.accessKeyId)).toEqual({
          accessKeyId: key.accessKeyId,
          name: "reader of a",
          admin: false,
          buckets: { "perm-a": "read" },
          createdMs: key.createdMs,
        });
        expect(keys.some((k) => k.accessKeyId === other.accessKeyId)).toBe(true);
        expect(keys.find((k) => k.accessKeyId === TEST_ADMIN.accessKeyId)?.admin).toBe(true);
      }
    },
    T,
  );

  test(
    "DELETE /admin/keys/{id} is 204, then 404; an unknown id is 404; the key vanishes from every listing",
    async () => {
      const key = await createKey(http(2), { name: "short-lived" });
      const d1 = await revokeKey(http(0), key.accessKeyId);
      expect(d1.status).toBe(204);
      const d2 = await revokeKey(http(1), key.accessKeyId);
      expect(d2.status).toBe(404);
      const d3 = await revokeKey(http(2), "MKNOSUCHKEYATALL00000");
      expect(d3.status).toBe(404);
      for (const i of [0, 1, 2]) expect((await listKeys(http(i))).some((k) => k.accessKeyId === key.accessKeyId)).toBe(false);
    },
    T,
  );

  test(
    "a bad key spec is 400 InvalidArgument and creates nothing",
    async () => {
      const count = (await listKeys(http(0))).length;
      const bodies = [
        "not json",
        "[]",
        '"a string"',
        "null",
        '{"admin":"yes"}',
        '{"name":5}',
        '{"buckets":[]}',
        '{"buckets":"perm-a"}',
        '{"buckets":{"perm-a":"superuser"}}',
        '{"buckets":{"perm-a":true}}',
      ];
      for (const [n, body] of bodies.entries()) {
        const r = await createKeyRaw(http(n % 3), body);
        expect(`${body}: ${outcome(r)}`).toBe(`${body}: 400 InvalidArgument`);
      }
      expect((await listKeys(http(1))).length).toBe(count);
    },
    T,
  );

  test(
    "/admin/* and /cluster/drain refuse a non-admin key with 403 AccessDenied; an admin key made through the API may use them",
    async () => {
      const strong = await createKey(http(0), { name: "owner of all", buckets: { "*": "owner" } });
      const victim = await createKey(http(0), { name: "victim" });
      const refused: Array<[string, string, string?]> = [
        ["GET", "/admin/keys"],
        ["POST", "/admin/keys", JSON.stringify({ name: "escalate", admin: true })],
        ["DELETE", `/admin/keys/${victim.accessKeyId}`],
        ["POST", "/cluster/drain"],
      ];
      for (const [n, [method, path, body]] of refused.entries()) {
        const r = await as(strong, n % 3, method, path, body);
        expect(`${method} ${path}: ${outcome(r)}`).toBe(`${method} ${path}: 403 AccessDenied`);
      }
      const keys = await listKeys(http(1));
      expect(keys.some((k) => k.accessKeyId === victim.accessKeyId)).toBe(true);
      expect(keys.some((k) => k.name === "escalate")).toBe(false);
      for (const i of [0, 1, 2]) expect(json<{ draining: boolean }>(await anonymous(http(i), "GET", "/cluster/status")).draining).toBe(false);

      const admin2 = await createKey(http(1), { name: "second admin", admin: true });
      expect(admin2.admin).toBe(true);
      const lr = await as(admin2, 2, "GET", "/admin/keys");
      expect(outcome(lr)).toBe("200");
      const made = await as(admin2, 0, "POST", "/admin/keys", JSON.stringify({ name: "made by admin2" }));
      expect(made.status).toBe(201);
      const del = await as(admin2, 1, "DELETE", `/admin/keys/${victim.accessKeyId}`);
      expect(del.status).toBe(204);
      const nb = await as(admin2, 2, "PUT", "/buckets/admin2-bucket");
      expect(outcome(nb)).toBe("200");
      const s3 = s3As(0, admin2);
      await s3.send(new PutObjectCommand({ Bucket: "admin2-bucket", Key: "k", Body: "by admin2" }));
      const names = ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
      for (const b of ["perm-a", "perm-b", "perm-c", "admin2-bucket"]) expect(names).toContain(b);
    },
    T,
  );

  test(
    "a revoked key is refused on every peer right after DELETE returns: native 401, S3 InvalidAccessKeyId",
    async () => {
      const key = await createKey(http(0), { name: "revoke me", buckets: { "perm-a": "write" } });
      const s3 = [0, 1, 2].map((i) => s3As(i, key));
      // Use it everywhere first, so every peer has it cached.
      for (const i of [0, 1, 2]) {
        expect(outcome(await as(key, i, "GET", "/buckets/perm-a/objects"))).toBe("200");
        await s3[i].send(new ListObjectsV2Command({ Bucket: "perm-a" }));
      }
      const del = await revokeKey(http(2), key.accessKeyId);
      expect(del.status).toBe(204);
      for (const i of [0, 1, 2]) {
        const r = await as(key, i, "GET", "/buckets/perm-a/objects");
        expect(`native via ${i}: ${outcome(r)}`).toBe(`native via ${i}: 401 Unauthorized`);
        const p = await as(key, i, "PUT", objectPath("perm-a", "after-revoke"), "x");
        expect(`native PUT via ${i}: ${outcome(p)}`).toBe(`native PUT via ${i}: 401 Unauthorized`);
        await s3Refused(`S3 ListObjectsV2 via ${i}`, s3[i].send(new ListObjectsV2Command({ Bucket: "perm-a" })), 403, "InvalidAccessKeyId");
      }
      expect((await request(http(1), "GET", objectPath("perm-a", "after-revoke"))).status).toBe(404);
    },
    T,
  );
});

describe("permissions across both APIs", () => {
  test(
    "GET /buckets and S3 ListBuckets show only the buckets a key has a permission on; \"*\" and admin see all",
    async () => {
      const some = await createKey(http(0), { buckets: { "perm-a": "read", "perm-c": "owner", "perm-gone": "read" } });
      const star = await createKey(http(1), { buckets: { "*": "read" } });
      const none = await createKey(http(2), {});
      const all = ["perm-a", "perm-b", "perm-c", "perm-w-empty"];
      const nativeNames = async (k: CreatedKey | null, i: number) => {
        const r = k ? await as(k, i, "GET", "/buckets") : await request(http(i), "GET", "/buckets");
        expect(outcome(r)).toBe("200");
        return json<{ buckets: Array<{ name: string }> }>(r).buckets.map((b) => b.name).filter((n) => n.startsWith("perm-")).sort();
      };
      const s3Names = async (k: CreatedKey | typeof TEST_ADMIN, i: number) =>
        ((await s3As(i, k).send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name!).filter((n) => n.startsWith("perm-")).sort();
      for (const i of [0, 1, 2]) {
        expect(await nativeNames(some, i)).toEqual(["perm-a", "perm-c"]);
        expect(await s3Names(some, i)).toEqual(["perm-a", "perm-c"]);
        expect(await nativeNames(star, i)).toEqual(all);
        expect(await s3Names(star, i)).toEqual(all);
        expect(await nativeNames(none, i)).toEqual([]);
        expect(await s3Names(none, i)).toEqual([]);
        expect(await nativeNames(null, i)).toEqual(all);
        expect(await s3Names(TEST_ADMIN, i)).toEqual(all);
      }
    },
    T,
  );

  test(
    "read on A: list/get/head A; every write to A and everything on B is 403 AccessDenied, on both APIs",
    async () => {
      const key = await createKey(http(0), { name: "read A", buckets: { "perm-a": "read" } });
      // Native: allowed.
      for (const i of [0, 1, 2]) {
        const list = await as(key, i, "GET", "/buckets/perm-a/objects");
        expect(outcome(list)).toBe("200");
        expect(json<{ objects: Array<{ key: string }> }>(list).objects.map((o) => o.key)).toContain("doc");
        const get = await as(key, i, "GET", objectPath("perm-a", "doc"));
        expect(outcome(get)).toBe("200");
        expect(text(get)).toBe("alpha");
        expect(outcome(await as(key, i, "HEAD", objectPath("perm-a", "doc")), "HEAD")).toBe("200");
      }
      // Native: refused.
      const nativeRefused: Array<[string, string, string?]> = [
        ["PUT", objectPath("perm-a", "doc"), "overwritten"],
        ["PUT", objectPath("perm-a", "new"), "new"],
        ["DELETE", objectPath("perm-a", "doc")],
        ["PUT", "/buckets/perm-a"],
        ["DELETE", "/buckets/perm-a"],
        ["PUT", "/buckets/perm-read-new"],
        ["GET", "/buckets/perm-b/objects"],
        ["GET", objectPath("perm-b", "doc")],
        ["HEAD", objectPath("perm-b", "doc")],
        ["PUT", objectPath("perm-b", "doc"), "overwritten"],
        ["DELETE", objectPath("perm-b", "doc")],
      ];
      for (const [n, [method, path, body]] of nativeRefused.entries()) {
        const r = await as(key, n % 3, method, path, body);
        expect(`native ${method} ${path}: ${outcome(r, method)}`).toBe(`native ${method} ${path}: ${method === "HEAD" ? "403" : "403 AccessDenied"}`);
      }

      // S3: allowed.
      const s3 = [0, 1, 2].map((i) => s3As(i, key));
      const l = await s3[0].send(new ListObjectsV2Command({ Bucket: "perm-a" }));
      expect((l.Contents ?? []).map((o) => o.Key)).toContain("doc");
      const g = await s3[1].send(new GetObjectCommand({ Bucket: "perm-a", Key: "doc" }));
      expect(new TextDecoder().decode(await bodyBytes(g.Body))).toBe("alpha");
      const h = await s3[2].send(new HeadObjectCommand({ Bucket: "perm-a", Key: "doc" }));
      expect(h.ContentLength).toBe(5);
      // S3: refused.
      const D = 403;
      await s3Refused("PutObject A", s3[0].send(new PutObjectCommand({ Bucket: "perm-a", Key: "doc", Body: "overwritten" })), D, "AccessDenied");
      await s3Refused("DeleteObject A", s3[1].send(new DeleteObjectCommand({ Bucket: "perm-a", Key: "doc" })), D, "AccessDenied");
      await s3Refused("CopyObject A->A", s3[2].send(new CopyObjectCommand({ Bucket: "perm-a", Key: "copy", CopySource: "perm-a/doc" })), D, "AccessDenied");
      await s3Refused("CreateMultipartUpload A", s3[0].send(new CreateMultipartUploadCommand({ Bucket: "perm-a", Key: "mpu" })), D, "AccessDenied");
      await s3Refused("CreateBucket new", s3[1].send(new CreateBucketCommand({ Bucket: "perm-read-new" })), D, "AccessDenied");
      await s3Refused("DeleteBucket A", s3[2].send(new DeleteBucketCommand({ Bucket: "perm-a" })), D, "AccessDenied");
      await s3Refused("ListObjectsV2 B", s3[0].send(new ListObjectsV2Command({ Bucket: "perm-b" })), D, "AccessDenied");
      await s3Refused("GetObject B", s3[1].send(new GetObjectCommand({ Bucket: "perm-b", Key: "doc" })), D, "AccessDenied");
      await s3Refused("HeadObject B", s3[2].send(new HeadObjectCommand({ Bucket: "perm-b", Key: "doc" })), D);
      await s3Refused("PutObject B", s3[0].send(new PutObjectCommand({ Bucket: "perm-b", Key: "doc", Body: "overwritten" })), D, "AccessDenied");
      await s3Refused("DeleteObject B", s3[1].send(new DeleteObjectCommand({ Bucket: "perm-b", Key: "doc" })), D, "AccessDenied");

      // Nothing changed.
      expect(text(await request(http(2), "GET", objectPath("perm-a", "doc")))).toBe("alpha");
      expect(text(await request(http(0), "GET", objectPath("perm-b", "doc")))).toBe("bravo");
      for (const k of ["new", "copy", "mpu"]) expect((await request(http(1), "HEAD", objectPath("perm-a", k))).status).toBe(404);
      const names = json<{ buckets: Array<{ name: string }> }>(await request(http(0), "GET", "/buckets")).buckets.map((b) => b.name);
      expect(names).not.toContain("perm-read-new");
      expect(names).toContain("perm-a");
    },
    T,
  );

  test(
    "write on A: put, copy in, delete and multipart in A; copy out of reach, creating and deleting buckets are 403 AccessDenied",
    async () => {
      const key = await createKey(http(1), { name: "write A, read B", buckets: { "perm-a": "write", "perm-b": "read", "perm-w-empty": "write" } });
      const s3 = [0, 1, 2].map((i) => s3As(i, key));

      const put = await s3[0].send(new PutObjectCommand({ Bucket: "perm-a", Key: "w/put", Body: "written" }));
      expect(put.ETag).toBe(`"${md5Hex(new TextEncoder().encode("written"))}"`);
      const cp = await s3[1].send(new CopyObjectCommand({ Bucket: "perm-a", Key: "w/copied-from-b", CopySource: "perm-b/doc" }));
      expect(cp.CopyObjectResult?.ETag).toBe(`"${md5Hex(new TextEncoder().encode("bravo"))}"`);
      const { UploadId } = await s3[2].send(new CreateMultipartUploadCommand({ Bucket: "perm-a", Key: "w/mpu" }));
      const part = seededBytes(2000, cluster.seed + 1);
      const up = await s3[0].send(new UploadPartCommand({ Bucket: "perm-a", Key: "w/mpu", UploadId, PartNumber: 1, Body: part }));
      await s3[1].send(new CompleteMultipartUploadCommand({ Bucket: "perm-a", Key: "w/mpu", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: up.ETag }] } }));
      expect(text(await request(http(2), "GET", objectPath("perm-a", "w/copied-from-b")))).toBe("bravo");
      expect((await request(http(2), "GET", objectPath("perm-a", "w/mpu"))).body).toEqual(part);

      const nput = await as(key, 2, "PUT", objectPath("perm-a", "w/native"), "native write");
      expect(outcome(nput)).toBe("200");
      const ndel = await as(key, 0, "DELETE", objectPath("perm-a", "w/native"));
      expect(ndel.status).toBe(204);
      const del = await s3[2].send(new DeleteObjectCommand({ Bucket: "perm-a", Key: "w/put" }));
      expect(del.$metadata.httpStatusCode).toBe(204);
      const batch = await s3[0].send(new DeleteObjectsCommand({ Bucket: "perm-a", Delete: { Objects: [{ Key: "w/copied-from-b" }, { Key: "w/mpu" }] } }));
      expect(batch.Errors ?? []).toEqual([]);
      expect((await request(http(1), "HEAD", objectPath("perm-a", "w/mpu"))).status).toBe(404);

      const D = 403;
      await s3Refused("CopyObject A->B (read only on B)", s3[1].send(new CopyObjectCommand({ Bucket: "perm-b", Key: "from-a", CopySource: "perm-a/doc" })), D, "AccessDenied");
      await s3Refused("CopyObject C->A (nothing on C)", s3[2].send(new CopyObjectCommand({ Bucket: "perm-a", Key: "from-c", CopySource: "perm-c/doc" })), D, "AccessDenied");
      await s3Refused("PutObject B", s3[0].send(new PutObjectCommand({ Bucket: "perm-b", Key: "w", Body: "x" })), D, "AccessDenied");
      await s3Refused("CreateBucket", s3[1].send(new CreateBucketCommand({ Bucket: "perm-write-new" })), D, "AccessDenied");
      await s3Refused("DeleteBucket (empty, write only)", s3[2].send(new DeleteBucketCommand({ Bucket: "perm-w-empty" })), D, "AccessDenied");
      expect(outcome(await as(key, 0, "DELETE", "/buckets/perm-w-empty"))).toBe("403 AccessDenied");
      expect(outcome(await as(key, 1, "PUT", "/buckets/perm-write-new"))).toBe("403 AccessDenied");
      expect(outcome(await as(key, 2, "PUT", objectPath("perm-c", "w"), "x"))).toBe("403 AccessDenied");

      expect((await request(http(0), "HEAD", objectPath("perm-b", "from-a"))).status).toBe(404);
      expect((await request(http(0), "HEAD", objectPath("perm-a", "from-c"))).status).toBe(404);
      const names = json<{ buckets: Array<{ name: string }> }>(await request(http(1), "GET", "/buckets")).buckets.map((b) => b.name);
      expect(names).toContain("perm-w-empty");
      expect(names).not.toContain("perm-write-new");
    },
    T,
  );

  test(
    "owner of a bucket name may create and delete that bucket on both APIs, and no other; owner of \"*\" may create any",
    async () => {
      const key = await createKey(http(2), { name: "owner", buckets: { "perm-own-s3": "owner", "perm-own-nat": "owner" } });
      const s3 = [0, 1, 2].map((i) => s3As(i, key));
      const made = await s3[0].send(new CreateBucketCommand({ Bucket: "perm-own-s3" }));
      expect(made.$metadata.httpStatusCode).toBe(200);
      await s3[1].send(new PutObjectCommand({ Bucket: "perm-own-s3", Key: "k", Body: "mine" }));
      expect(((await s3[2].send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name)).toEqual(["perm-own-s3"]);
      await s3[2].send(new DeleteObjectCommand({ Bucket: "perm-own-s3", Key: "k" }));
      const gone = await s3[0].send(new DeleteBucketCommand({ Bucket: "perm-own-s3" }));
      expect(gone.$metadata.httpStatusCode).toBe(204);

      expect(outcome(await as(key, 1, "PUT", "/buckets/perm-own-nat"))).toBe("200");
      expect(outcome(await as(key, 2, "PUT", objectPath("perm-own-nat", "k"), "mine"))).toBe("200");
      expect(outcome(await as(key, 0, "DELETE", objectPath("perm-own-nat", "k")))).toBe("204");
      expect((await as(key, 0, "DELETE", "/buckets/perm-own-nat")).status).toBe(204);

      await s3Refused("CreateBucket not owned", s3[1].send(new CreateBucketCommand({ Bucket: "perm-not-mine" })), 403, "AccessDenied");
      expect(outcome(await as(key, 2, "PUT", "/buckets/perm-not-mine"))).toBe("403 AccessDenied");
      await s3Refused("DeleteBucket not owned", s3[2].send(new DeleteBucketCommand({ Bucket: "perm-w-empty" })), 403, "AccessDenied");

      const star = await createKey(http(0), { name: "owner of everything", buckets: { "*": "owner" } });
      const made2 = await s3As(1, star).send(new CreateBucketCommand({ Bucket: "perm-star-made" }));
      expect(made2.$metadata.httpStatusCode).toBe(200);
      expect(outcome(await as(star, 2, "PUT", "/buckets/perm-star-native"))).toBe("200");

      const names = json<{ buckets: Array<{ name: string }> }>(await request(http(0), "GET", "/buckets")).buckets.map((b) => b.name);
      for (const n of ["perm-own-s3", "perm-own-nat", "perm-not-mine"]) expect(names).not.toContain(n);
      for (const n of ["perm-star-made", "perm-star-native", "perm-w-empty"]) expect(names).toContain(n);
    },
    T,
  );
});

describe("a peer started without auth", () => {
  test(
    "with auth: false both APIs answer requests that carry no credentials",
    async () => {
      await withCluster(1, { config: { auth: false } }, async (c) => {
        const h = c.peer(0).httpUrl;
        const s = c.peer(0).s3Url;
        expect((await anonymous(h, "PUT", "/buckets/open-bucket")).status).toBe(200);
        const put = await anonymous(h, "PUT", objectPath("open-bucket", "native"), { body: "open native" });
        expect(put.status).toBe(200);
        const list = await anonymous(h, "GET", "/buckets");
        expect(list.status).toBe(200);
        expect(json<{ buckets: Array<{ name: string }> }>(list).buckets.map((b) => b.name)).toContain("open-bucket");
        expect(text(await anonymous(h, "GET", objectPath("open-bucket", "native")))).toBe("open native");

        const s3list = await anonymous(s, "GET", "/");
        const xml = text(s3list);
        expect(`${s3list.status} ${xml.slice(0, 200)}`).toStartWith("200 ");
        expect(xml).toContain("<ListAllMyBucketsResult");
        expect(xml).toContain("<Name>open-bucket</Name>");
        const s3put = await anonymous(s, "PUT", "/open-bucket/from-s3", { body: "open s3" });
        expect(`${s3put.status} ${text(s3put).slice(0, 200)}`).toBe("200 ");
        expect(s3put.headers.get("etag")).toBe(`"${md5Hex(new TextEncoder().encode("open s3"))}"`);
        expect(text(await anonymous(s, "GET", "/open-bucket/native"))).toBe("open native");
        expect(text(await anonymous(h, "GET", objectPath("open-bucket", "from-s3")))).toBe("open s3");
        const miss = await anonymous(s, "GET", "/open-bucket/missing");
        expect(`${miss.status} ${s3ErrorOf(text(miss)).code}`).toBe("404 NoSuchKey");
      });
    },
    T,
  );
});
