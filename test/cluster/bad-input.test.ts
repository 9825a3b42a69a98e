// Bad and hostile input on a 3-peer mesh: every error of the contract with its status,
// code and JSON body; keys that look like paths, NULs and emoji stay opaque bytes and
// never touch the file system; uploads cut short store nothing and hurt no one.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import {
  TEST_CHUNK,
  compareUtf8,
  createBucket,
  deleteBucket,
  describeBytes,
  errorOf,
  getObject,
  headObject,
  listAllPages,
  listBuckets,
  listObjectsRaw,
  md5Hex,
  mustCreateBucket,
  mustGet,
  mustPut,
  objectPath,
  putObject,
  rawRequest,
  request,
  sameBytes,
  statusAndCode,
  utf8Length,
  type RawOutcome,
  type Reply,
} from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";

const BUCKET = "bad-input";

/** A converged 3-peer mesh with 1 MiB chunks and BUCKET created. */
function withMesh(body: (c: Cluster) => Promise<void>): Promise<void> {
  return withCluster(3, { topology: "star", config: { chunkSize: TEST_CHUNK } }, async (c) => {
    await c.waitFor("all alive", () => c.allSee(c.running(), c.running(), "alive"));
    await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
    await body(c);
  });
}

const url = (c: Cluster, i: number) => c.peer(i).httpUrl;

/** Assert status and error code, and that the body is exactly `{error: {code, message}}` with a message. */
function expectError(r: Reply, status: number, code: string, what: string): void {
  expect(`${what}: ${statusAndCode(r)}`).toBe(`${what}: ${status} ${code}`);
  expect(errorOf(r).message.length).toBeGreaterThan(0);
}

/** Every peer answers 200 on /health and 404 NoSuchKey for `key`. */
async function expectAbsentEverywhere(c: Cluster, key: string): Promise<void> {
  for (const i of c.running()) {
    expect((await request(url(c, i), "GET", "/health")).status).toBe(200);
    expectError(await getObject(url(c, i), BUCKET, key), 404, "NoSuchKey", `GET ${key} via peer ${i}`);
  }
}

/** Split a raw HTTP/1.1 response into its status and decoded body text. */
function rawBody(out: RawOutcome): string {
  const at = out.text.indexOf("\r\n\r\n");
  if (at < 0) return "";
  const head = out.text.slice(0, at).toLowerCase();
  let body = out.text.slice(at + 4);
  if (/transfer-encoding:\s*chunked/.test(head)) {
    let plain = "";
    for (;;) {
      const nl = body.indexOf("\r\n");
      const size = parseInt(body.slice(0, nl), 16);
      if (!(size > 0)) break;
      plain += body.slice(nl + 2, nl + 2 + size);
      body = body.slice(nl + 2 + size + 2);
    }
    body = plain;
  }
  return Buffer.from(body, "latin1").toString("utf8");
}

describe("bad input", () => {
  test("missing bucket or key, bad bucket names, too-long and non-UTF-8 keys, unsatisfiable ranges: the right status and error code", async () => {
    await withMesh(async (c) => {
      const [a, b, d] = [url(c, 0), url(c, 1), url(c, 2)];

      // No such bucket.
      const ghost = "no-such-bucket";
      expectError(await putObject(a, ghost, "k", "x"), 404, "NoSuchBucket", "PUT object in a missing bucket");
      expectError(await getObject(b, ghost, "k"), 404, "NoSuchBucket", "GET object in a missing bucket");
      expect((await headObject(d, ghost, "k")).status).toBe(404);
      expectError(await listObjectsRaw(a, ghost), 404, "NoSuchBucket", "list a missing bucket");
      expectError(await deleteBucket(b, ghost), 404, "NoSuchBucket", "DELETE a missing bucket");

      // No such key.
      expectError(await getObject(d, BUCKET, "missing/key"), 404, "NoSuchKey", "GET a missing key");
      const head = await headObject(a, BUCKET, "missing/key");
      expect(head.status).toBe(404);
      expect(head.body.byteLength).toBe(0);

      // Bucket names: S3's rules.
      const badNames = ["ab", "Upper", "-lead", "trail-", ".dot-first", "a_b", "has space", "caf\u00e9", "x".repeat(64)];
      for (const name of badNames) expectError(await createBucket(b, name), 400, "InvalidBucketName", `create bucket ${JSON.stringify(name)}`);
      for (const name of ["abc", "a.b-c.1", "9".repeat(63)]) {
        expect(`create bucket ${name}: ${statusAndCode(await createBucket(d, name))}`).toBe(`create bucket ${name}: 200`);
      }
      const listed = await listBuckets(a);
      for (const name of badNames) expect(listed.some((x) => x.name === name)).toBe(false);

      // Key length counts UTF-8 bytes: 1024 is fine, 1025 is not.
      const k1024 = "\u00e9".repeat(512); // 512 chars, 1024 bytes
      const k1025 = `${k1024}x`;
      expect(utf8Length(k1024)).toBe(1024);
      await mustPut(a, BUCKET, k1024, "at the limit");
      expect(new TextDecoder().decode(await mustGet(b, BUCKET, k1024))).toBe("at the limit");
      expectError(await putObject(a, BUCKET, k1025, "too long"), 400, "KeyTooLongError", "PUT a 1025-byte key");
      expectError(await putObject(b, BUCKET, "k".repeat(2000), "too long"), 400, "KeyTooLongError", "PUT a 2000-byte key");

      // Keys that are not UTF-8 once percent-decoded.
      for (const bad of ["bad%C3%28key", "%FF", "x%E2%82"]) {
        const p = `/buckets/${BUCKET}/objects/${bad}`;
        expectError(await request(a, "PUT", p, { body: "x" }), 400, "InvalidURI", `PUT ${bad}`);
        expectError(await request(b, "GET", p), 400, "InvalidURI", `GET ${bad}`);
      }

      // Unsatisfiable ranges on a 10-byte object.
      await mustPut(a, BUCKET, "ten", "0123456789");
      for (const range of ["bytes=1000-2000", "bytes=10-"]) {
        expectError(await getObject(d, BUCKET, "ten", { Range: range }), 416, "InvalidRange", `Range ${range} on 10 bytes`);
      }
      expect(new TextDecoder().decode((await getObject(b, BUCKET, "ten", { Range: "bytes=8-9" })).body)).toBe("89");
    });
  }, 60_000);

  test("keys that look like paths, NULs, emoji and 1000-byte keys round-trip exactly and never become files", async () => {
    const outside = [path.join(os.tmpdir(), "etc", "passwd"), path.join(os.tmpdir(), "meshstore-escape"), "/meshstore-escape"];
    const existedBefore = outside.map((p) => existsSync(p));
    await withMesh(async (c) => {
      const long = `long/${"\u00fc".repeat(100)}${"x".repeat(795)}`; // 1000 bytes
      expect(utf8Length(long)).toBe(1000);
      const keys = [
        "../../etc/passwd",
        "../../../../../../tmp/meshstore-escape",
        "a//b",
        "a/b",
        "a/./b/../c",
        "/leading",
        "trailing/",
        "back\\slash\\..\\..\\x",
        "%00", // three literal characters, sent as %2500
        "\u0000", // a real NUL
        "nul\u0000inside",
        "🦄🌈/✨",
        "\u00e9", // precomposed é ...
        "e\u0301", // ... and e + combining accent: different bytes, different keys
        long,
      ];
      const bodies = keys.map((key, n) => {
        const tail = seededBytes(n === 0 ? 40 * 1024 : 37 + n, c.seed + n); // the first one is chunked
        return Buffer.concat([Buffer.from(`${JSON.stringify(key)}\n`), tail]);
      });
      for (const [n, key] of keys.entries()) {
        const put = await mustPut(url(c, n % 3), BUCKET, key, bodies[n]);
        expect(put.key).toBe(key);
        expect(put.etag).toBe(md5Hex(bodies[n]));
      }
      for (const [n, key] of keys.entries()) {
        for (const i of c.running()) {
          const got = await mustGet(url(c, i), BUCKET, key);
          if (!sameBytes(got, bodies[n])) throw new Error(`key ${JSON.stringify(key)} via peer ${i}: got ${describeBytes(got)}, want ${describeBytes(bodies[n])}`);
        }
      }
      // The literal "%00" and the real NUL are different keys (checked above by their bodies),
      // and the listing holds exactly these keys, unnormalized, in byte order.
      const listed = (await listAllPages(url(c, 1), BUCKET, { limit: 4 })).flatMap((p) => p.objects.map((o) => o.key));
      expect(listed).toEqual([...keys].sort(compareUtf8));

      // Nothing outside the peers' folders; no file named after a key's last segment inside them.
      const root = path.dirname(c.peers[0].dataDir);
      expect(readdirSync(root).sort()).toEqual(c.peers.map((p) => path.basename(p.dataDir)).sort());
      const names = c.peers.flatMap((p) => (readdirSync(p.dataDir, { recursive: true }) as string[]).map((f) => path.basename(f)));
      for (const bad of ["passwd", "meshstore-escape", "✨", "trailing", "leading"]) {
        expect(`file named ${bad}: ${names.includes(bad)}`).toBe(`file named ${bad}: false`);
      }
    });
    outside.forEach((p, n) => expect(`${p} exists: ${existsSync(p)}`).toBe(`${p} exists: ${existedBefore[n]}`));
  }, 60_000);

  test("an upload cut off mid-body stores nothing and leaves every peer healthy", async () => {
    await withMesh(async (c) => {
      const via = 1;
      const headFor = (key: string, length: number) =>
        `PUT ${objectPath(BUCKET, key)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${ADMIN_BEARER}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`;

      // Control: the same hand-written request with the whole body is stored, so the
      // failures below are about the short body and nothing else.
      const whole = seededBytes(TEST_CHUNK + 5000, c.seed + 9);
      const control = await rawRequest(url(c, via), headFor("cut/control", whole.byteLength), whole, "wait");
      expect(`control upload: ${control.status}`).toBe("control upload: 200");
      expect(sameBytes(await mustGet(url(c, 2), BUCKET, "cut/control"), whole)).toBe(true);

      // A client that vanishes: 1,000,000 of 3,000,000 bytes, then a reset.
      await rawRequest(url(c, via), headFor("cut/small", 3_000_000), seededBytes(1_000_000, c.seed), "abort");
      // The same after two whole chunks have been cut and sent to their owners.
      await rawRequest(url(c, via), headFor("cut/after-two-chunks", 5_000_000), seededBytes(2 * TEST_CHUNK + 300_000, c.seed + 1), "abort");

      // A client that half-closes early: it says it is done after fewer bytes than promised.
      const halfSmall = await rawRequest(url(c, 2), headFor("cut/half-close-small", 5000), seededBytes(1000, c.seed + 2), "half-close");
      const halfBig = await rawRequest(url(c, 0), headFor("cut/half-close-big", 3_000_000), seededBytes(TEST_CHUNK + 200_000, c.seed + 3), "half-close");
      for (const [what, out] of [["small", halfSmall], ["big", halfBig]] as const) {
        // Either a 400 IncompleteBody, or the server just hangs up; never a success, never a hang.
        if (out.status !== undefined) {
          expect(`half-close ${what}: ${out.status}`).toBe(`half-close ${what}: 400`);
          const body = JSON.parse(rawBody(out));
          expect(body.error?.code).toBe("IncompleteBody");
          expect(typeof body.error?.message).toBe("string");
        } else {
          expect(`half-close ${what}: closed=${out.closed}`).toBe(`half-close ${what}: closed=true`);
        }
      }

      // Give the peers a moment to notice, then nothing may be there, now or a bit later.
      await Bun.sleep(1000);
      const cut = ["cut/small", "cut/after-two-chunks", "cut/half-close-small", "cut/half-close-big"];
      for (const key of cut) await expectAbsentEverywhere(c, key);
      const listing = await listAllPages(url(c, 0), BUCKET, { prefix: "cut/" });
      expect(listing.flatMap((p) => p.objects.map((o) => o.key))).toEqual(["cut/control"]);

      // The peer that lost its client still serves whole uploads.
      const data = seededBytes(2 * TEST_CHUNK + 11, c.seed + 4);
      await mustPut(url(c, via), BUCKET, "cut/small", data);
      for (const i of c.running()) expect(sameBytes(await mustGet(url(c, i), BUCKET, "cut/small"), data)).toBe(true);

      await Bun.sleep(1500);
      for (const key of cut.slice(1)) await expectAbsentEverywhere(c, key);
    });
  }, 60_000);
});
