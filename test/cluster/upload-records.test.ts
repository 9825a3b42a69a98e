// Upload progress records on a 3-peer mesh over real TCP and HTTP, each read through a
// peer other than the one receiving the upload: a slow streamed body seen inprogress with
// its bytes so far, then success; success for a native PUT, an S3 PutObject, an S3
// multipart upload as a whole and a native one; fail for a client that vanishes mid-body;
// and a key that may not read the bucket told 404, as if there were no record.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { hostPort, json, md5Hex, mustCreateBucket, rawRequest, request, statusAndCode } from "../harness/http.ts";
import { ADMIN_BEARER, bearer, createKey, s3Path, signedFetch } from "../harness/s3.ts";
import { waitFor } from "../harness/wait.ts";

/** Poll peer `i` until the record of `token` is in `state`; answers it. */
async function recordIn(i: number, token: string, state: string, extra: (r: Record) => boolean = () => true): Promise<Record> {
  let found: Record | undefined;
  await waitFor(`${token} ${state} on peer ${i}`, async () => {
    const r = await record(i, token);
    found = typeof r !== "string" && r.state === state && extra(r) ? r : undefined;
    return found !== undefined;
  }, 5000, 50);
  return found!;
}

const T = 30_000;
const BUCKET = "upload-records";
let cluster: Cluster;
const http = (i: number) => cluster.peer(i).httpUrl;
const s3 = (i: number) => cluster.peer(i).s3Url;

interface Record {
  token: string;
  bucket: string;
  key: string;
  state: string;
  bytesReceived: number;
  size?: number;
  error?: string;
}

async function record(i: number, token: string, authorization = ADMIN_BEARER): Promise<Record | string> {
  const r = await request(http(i), "GET", `/uploads/${token}`, { headers: { authorization } });
  return r.status === 200 ? json<Record>(r) : statusAndCode(r);
}

beforeAll(async () => {
  // Progress reported every 200 ms, so a slow body shows up within the test's patience.
  cluster = await startConverged(3, { config: { uploads: { progressIntervalMs: 200 } } });
  await mustCreateBucket(http(0), BUCKET);
}, T);

afterAll(() => teardownCluster(cluster), T);

describe("upload records across the mesh", () => {
  test(
    "a slow body through peer 0 is inprogress with its bytes so far on peer 1, then success",
    async () => {
      const token = "slow-body-0001";
      const { host, port } = hostPort(http(0));
      const sock = net.connect({ host, port });
      const reply: Buffer[] = [];
      sock.on("data", (d: Buffer) => reply.push(d));
      await new Promise<void>((r) => sock.once("connect", () => r()));
      const piece = new Uint8Array(1000).fill(1);
      sock.write(`PUT /buckets/${BUCKET}/objects/slow HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${ADMIN_BEARER}\r\nx-upload-token: ${token}\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n`);
      let sent = 0;
      const sender = setInterval(() => {
        if (sent < 10) (sock.write(piece), sent++);
      }, 50);
      try {
        const seen = await recordIn(1, token, "inprogress", (r) => r.bytesReceived > 0);
        expect(seen).toMatchObject({ bucket: BUCKET, key: "slow", size: 20000 });
        expect(seen.bytesReceived).toBeLessThan(20000);
      } finally {
        clearInterval(sender);
      }
      sock.write(new Uint8Array(20000 - sent * 1000).fill(1));
      await new Promise<void>((r) => sock.once("close", () => r()));
      expect(Buffer.concat(reply).toString("latin1")).toStartWith("HTTP/1.1 200");
      expect(await record(2, token)).toMatchObject({ state: "success", bytesReceived: 20000, size: 20000 });
    },
    T,
  );

  test(
    "success right after the answer, on another peer: native PUT, S3 PutObject, S3 and native multipart",
    async () => {
      const put = await request(http(0), "PUT", `/buckets/${BUCKET}/objects/native`, { body: "native body" });
      const nativeToken = put.headers.get("x-upload-token")!;
      expect(nativeToken).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(await record(1, nativeToken)).toMatchObject({ state: "success", bucket: BUCKET, key: "native", bytesReceived: 11 });

      const s3Put = await signedFetch(s3(1), { method: "PUT", path: s3Path(BUCKET, "via-s3"), body: "s3 body", headers: { "x-upload-token": "s3-put-token" } });
      expect(s3Put.status).toBe(200);
      expect(s3Put.headers.get("x-upload-token")).toBe("s3-put-token");
      expect(await record(2, "s3-put-token")).toMatchObject({ state: "success", key: "via-s3", bytesReceived: 7 });
      const badToken = await signedFetch(s3(1), { method: "PUT", path: s3Path(BUCKET, "bad"), body: "x", headers: { "x-upload-token": "no" } });
      expect(badToken.status).toBe(400);
      expect(badToken.text).toContain("InvalidArgument");

      // S3 multipart: the token given at start; the part and completion carry none.
      const created = await signedFetch(s3(0), { method: "POST", path: s3Path(BUCKET, "s3-mp"), query: { uploads: "" }, headers: { "x-upload-token": "s3-multipart-token" } });
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1];
      expect(await record(1, "s3-multipart-token")).toMatchObject({ state: "inprogress", bytesReceived: 0 });
      const part = await signedFetch(s3(1), { method: "PUT", path: s3Path(BUCKET, "s3-mp"), query: { uploadId, partNumber: "1" }, body: "part one" });
      expect(part.headers.get("x-upload-token")).toBe("s3-multipart-token");
      expect(await record(2, "s3-multipart-token")).toMatchObject({ state: "inprogress", bytesReceived: 8 });
      const xml = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"${md5Hex(new TextEncoder().encode("part one"))}"</ETag></Part></CompleteMultipartUpload>`;
      const done = await signedFetch(s3(2), { method: "POST", path: s3Path(BUCKET, "s3-mp"), query: { uploadId }, body: xml });
      expect(done.status).toBe(200);
      expect(await record(0, "s3-multipart-token")).toMatchObject({ state: "success", bytesReceived: 8, size: 8 });

      // Native multipart, the token made by the peer.
      const start = await request(http(2), "POST", `/buckets/${BUCKET}/multipart?key=native-mp`);
      const mpToken = start.headers.get("x-upload-token")!;
      const { uploadId: nativeId } = json<{ uploadId: string }>(start);
      const sent = await request(http(2), "PUT", `/buckets/${BUCKET}/multipart/${nativeId}/parts/1?key=native-mp`, { body: "12345" });
      const etag = json<{ etag: string }>(sent).etag;
      const complete = await request(http(0), "POST", `/buckets/${BUCKET}/multipart/${nativeId}/complete?key=native-mp`, { body: JSON.stringify({ parts: [{ partNumber: 1, etag }] }), headers: { "content-type": "application/json" } });
      expect(complete.headers.get("x-upload-token")).toBe(mpToken);
      expect(await record(1, mpToken)).toMatchObject({ state: "success", key: "native-mp", size: 5 });

      const listed = json<{ uploads: Record[] }>(await request(http(1), "GET", "/uploads?limit=10"));
      expect(listed.uploads.map((u) => u.token)).toContain(mpToken);
    },
    T,
  );

  test(
    "a client that vanishes mid-body leaves a fail record, read on another peer",
    async () => {
      const token = "vanishing-client";
      const head = `PUT /buckets/${BUCKET}/objects/vanished HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN_BEARER}\r\nx-upload-token: ${token}\r\nContent-Length: 3000000\r\n\r\n`;
      await rawRequest(http(0), head, new Uint8Array(300_000), "abort");
      const failed = await recordIn(2, token, "fail");
      expect(failed.size).toBe(3_000_000);
      expect(failed.error).toBeString();
    },
    T,
  );

  test(
    "a key without read on the bucket gets 404 NoSuchUpload, and sees none of its records listed",
    async () => {
      await mustCreateBucket(http(0), "elsewhere");
      const outsider = await createKey(http(0), { name: "outsider", buckets: { elsewhere: "read" } });
      const put = await request(http(0), "PUT", `/buckets/${BUCKET}/objects/private`, { body: "secret" });
      const token = put.headers.get("x-upload-token")!;
      expect(await record(1, token, bearer(outsider.token))).toBe("404 NoSuchUpload");
      const listed = json<{ uploads: Record[] }>(await request(http(1), "GET", "/uploads", { headers: { authorization: bearer(outsider.token) } }));
      expect(listed.uploads.filter((u) => u.bucket === BUCKET)).toEqual([]);
      const reader = await createKey(http(0), { name: "reader", buckets: { [BUCKET]: "read" } });
      expect(await record(2, token, bearer(reader.token))).toMatchObject({ state: "success" });
    },
    T,
  );
});
