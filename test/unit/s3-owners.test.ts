// The pure parts of bucket owners and S3's smaller behaviours: who may create and use a
// bucket (and when the owner is looked up at all), what a CreateBucket of an existing
// bucket answers, which ACL, grant and object-lock headers are refused, how signed header
// values are read back as the bytes a client signed, and which bodies are aws-chunked.
import { describe, expect, test } from "bun:test";
import crypto from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { allows, mayCreate, seesBucket, validateSpec, type Principal } from "../../src/auth/access-keys.ts";
import { ANONYMOUS_ADMIN, createVerdict, ownerToRecord, requireBucketAccess, type BucketOwnership } from "../../src/auth/guard.ts";
import { refuseUnsupportedHeaders } from "../../src/api/s3/refusals.ts";
import { requestBody, type S3Caller } from "../../src/api/s3/request.ts";
import { signedHeaderText, verifyRequest } from "../../src/api/s3/sigv4.ts";
import { MeshError } from "../../src/errors.ts";
import { NodeSha256 } from "../harness/s3.ts";
import { keySubcommand, keysUsage } from "../../src/cli/keys.ts";

const creator: Principal = { accessKeyId: "MKCREATOR0000000000A", admin: false, buckets: {}, create: true };
const other: Principal = { accessKeyId: "MKOTHER00000000000AA", admin: false, buckets: {}, create: true };
const granted: Principal = { accessKeyId: "MKGRANTED000000000AA", admin: false, buckets: { shared: "write", legacy: "owner" } };
const admin: Principal = { accessKeyId: "MKADMIN00000000000AA", admin: true, buckets: {} };

/** The error code a call fails with ("ok" if it does not). */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof MeshError ? err.code : String(err);
  }
}

/** requireBucketAccess as a promise (it answers at once, without one, when grants decide). */
const access = (...args: Parameters<typeof requireBucketAccess>) => Promise.resolve().then(() => requireBucketAccess(...args));

describe("owner rights", () => {
  /** A lookup over a fixed table, counting its calls. */
  function owners(table: Record<string, BucketOwnership>) {
    const seen: string[] = [];
    return { seen, lookup: async (b: string) => (seen.push(b), Object.hasOwn(table, b) ? table[b] : null) };
  }

  test("the creator holds every permission on its bucket; others, with create or not, none", async () => {
    const o = owners({ mine: { owner: creator.accessKeyId }, legacy: {} });
    for (const need of ["read", "write", "owner"] as const) {
      expect(await outcome(access(creator, "mine", need, o.lookup))).toBe("ok");
      expect(await outcome(access(other, "mine", need, o.lookup))).toBe("AccessDenied");
      expect(await outcome(access(granted, "mine", need, o.lookup))).toBe("AccessDenied");
    }
    // A bucket from before owners belongs to no key: grants decide.
    expect(await outcome(access(creator, "legacy", "read", o.lookup))).toBe("AccessDenied");
    expect(await outcome(access(granted, "legacy", "owner", o.lookup))).toBe("ok");
    // A key that could create a bucket hears that it does not exist; one that could not is refused.
    expect(await outcome(access(creator, "nowhere", "read", o.lookup))).toBe("NoSuchBucket");
    expect(await outcome(access(granted, "nowhere", "read", o.lookup))).toBe("AccessDenied");
  });

  test("grants and admin decide without a lookup; keys without create never cause one", async () => {
    const o = owners({ shared: { owner: creator.accessKeyId } });
    expect(await outcome(access(granted, "shared", "write", o.lookup))).toBe("ok");
    expect(await outcome(access(admin, "shared", "owner", o.lookup))).toBe("ok");
    expect(await outcome(access(granted, "shared", "owner", o.lookup))).toBe("AccessDenied");
    expect(o.seen).toEqual([]);
    expect(await outcome(access(creator, "shared", "write", o.lookup))).toBe("ok");
    expect(o.seen).toEqual(["shared"]);
  });

  test("who may create: the create permission, or owner rights on the name", async () => {
    const none = async () => null;
    expect(mayCreate(creator, "anything")).toBe(true);
    expect(mayCreate(granted, "legacy")).toBe(true);
    expect(mayCreate(granted, "shared")).toBe(false);
    expect(mayCreate(admin, "x")).toBe(true);
    expect(await outcome(access(granted, "new-one", "create", none))).toBe("AccessDenied");
    expect(await outcome(access(creator, "new-one", "create", none))).toBe("ok");
  });

  test("listings show what a key may read or owns", () => {
    expect(seesBucket(creator, "mine", creator.accessKeyId)).toBe(true);
    expect(seesBucket(other, "mine", creator.accessKeyId)).toBe(false);
    expect(seesBucket(granted, "shared", creator.accessKeyId)).toBe(true);
    expect(seesBucket(creator, "legacy", undefined)).toBe(false);
    expect(allows(creator, "mine", "owner", creator.accessKeyId)).toBe(true);
  });

  test("CreateBucket of an existing bucket: yours if you own it, or it has no owner and you hold owner rights on it", () => {
    expect(createVerdict(creator, "b", creator.accessKeyId)).toBe("yours");
    expect(createVerdict(other, "b", creator.accessKeyId)).toBe("taken");
    // An admin's rights do not make another key's bucket its own (S3: another account's).
    expect(createVerdict(admin, "b", creator.accessKeyId)).toBe("taken");
    expect(createVerdict(admin, "b", undefined)).toBe("yours");
    expect(createVerdict(granted, "legacy", undefined)).toBe("yours");
    expect(createVerdict(creator, "legacy", undefined)).toBe("taken");
  });

  test("what a bucket records as its owner: the creating key; nothing with auth off", () => {
    expect(ownerToRecord(creator)).toBe(creator.accessKeyId);
    expect(ownerToRecord(ANONYMOUS_ADMIN)).toBeUndefined();
  });

  test("`keys create --create` asks for a key that may create buckets; without it, none is asked for", async () => {
    const sent: unknown[] = [];
    const call = async () => async (_method: string, _route: string, body?: unknown) => (sent.push(body), "{}");
    await keySubcommand("create", [], { name: "ci", create: true, bucket: ["logs=read"] }, call);
    await keySubcommand("create", [], { name: "plain" }, call);
    expect(sent).toEqual([
      { name: "ci", admin: false, buckets: { logs: "read" }, create: true },
      { name: "plain", admin: false, buckets: {} },
    ]);
    expect(keysUsage()).toContain("--create");
  });

  test("a key spec takes create: true or false, and nothing else", () => {
    expect(validateSpec({ create: true }).create).toBe(true);
    expect(validateSpec({ create: false }).create).toBeUndefined();
    expect(validateSpec({}).create).toBeUndefined();
    expect(() => validateSpec({ create: "yes" })).toThrow(/create must be true or false/);
  });
});

describe("headers refused rather than ignored", () => {
  const code = (op: string, headers: Record<string, string>) => {
    try {
      refuseUnsupportedHeaders(op, new Headers(headers));
      return "ok";
    } catch (err) {
      return (err as MeshError).code;
    }
  };

  test.each([
    ["CreateBucket", { "x-amz-acl": "public-read" }, "NotImplemented"],
    ["CreateBucket", { "x-amz-acl": " Private " }, "ok"],
    ["CreateBucket", { "x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' }, "NotImplemented"],
    ["CreateBucket", { "x-amz-bucket-object-lock-enabled": "true" }, "NotImplemented"],
    ["CreateBucket", { "x-amz-bucket-object-lock-enabled": "TRUE" }, "NotImplemented"],
    ["CreateBucket", { "x-amz-bucket-object-lock-enabled": "false" }, "ok"],
    ["PutObject", { "x-amz-acl": "bucket-owner-full-control" }, "NotImplemented"],
    ["PutObject", { "x-amz-grant-full-control": 'id="x"' }, "NotImplemented"],
    ["PutObject", { "x-amz-object-lock-mode": "GOVERNANCE" }, "InvalidRequest"],
    ["PutObject", { "x-amz-object-lock-legal-hold": "ON" }, "InvalidRequest"],
    ["CopyObject", { "x-amz-acl": "public-read" }, "NotImplemented"],
    ["CreateMultipartUpload", { "x-amz-grant-write-acp": 'id="x"' }, "NotImplemented"],
    ["CreateMultipartUpload", { "x-amz-acl": "private" }, "ok"],
    // Operations that take no ACL are left alone (the header means nothing to them).
    ["GetObject", { "x-amz-acl": "public-read" }, "ok"],
    ["UploadPart", { "x-amz-grant-read": "x" }, "ok"],
  ] as const)("%s with %j: %s", (op, headers, want) => {
    expect(code(op, headers)).toBe(want);
  });
});

describe("signed header values are the bytes the client sent", () => {
  /** A header value as a server reads it off the wire: one character per byte. */
  const offTheWire = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

  test("UTF-8 bytes are read back as the text they encode; others, ASCII and wider text are left as they are", () => {
    expect(signedHeaderText(offTheWire(Buffer.from("Zürich café 日本 ✓")))).toBe("Zürich café 日本 ✓");
    expect(signedHeaderText("plain ascii")).toBe("plain ascii");
    // A latin1 byte that is no UTF-8 (a Node client writing "é"): kept, as that client signed its UTF-8.
    expect(signedHeaderText(offTheWire(Uint8Array.of(0x63, 0xe9)))).toBe("c\u00e9");
    // Characters past U+00FF never came off the wire one byte each.
    expect(signedHeaderText("日本")).toBe("日本");
  });

  const AKID = "AKIAIOSFODNN7EXAMPLE";
  const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const DATE = new Date("2013-05-24T00:00:00Z");
  /** Sign `value` as x-amz-meta-v (as its UTF-8, like the SDK), and hand the server `sent` as the header's characters. */
  async function verifyWith(value: string, sent: string): Promise<string> {
    const signer = new SignatureV4({ credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, region: "us-east-1", service: "s3", sha256: NodeSha256, uriEscapePath: false });
    const req = { method: "PUT", protocol: "http:", hostname: "h", path: "/b/k", query: {}, headers: { host: "h", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-meta-v": value } };
    const out = (await signer.sign(req as never, { signingDate: DATE })) as unknown as { headers: Record<string, string> };
    const headers = new Headers({ ...out.headers, "x-amz-meta-v": sent });
    return outcome(verifyRequest({ method: "PUT", url: "http://h/b/k", headers }, async () => SECRET, { now: DATE }));
  }

  test("a value sent as its UTF-8 bytes verifies (the SDK under Bun, curl)", async () => {
    for (const v of ["café", "Zürich", "日本語 ✓"]) expect(`${v}: ${await verifyWith(v, offTheWire(Buffer.from(v)))}`).toBe(`${v}: ok`);
  });

  test("a value sent as latin1 bytes still verifies as its sender signed it (Node and Python clients)", async () => {
    expect(await verifyWith("café", offTheWire(Buffer.from("café", "latin1")))).toBe("ok");
  });

  test("a changed byte does not", async () => {
    expect(await verifyWith("café", offTheWire(Buffer.from("cafè")))).toBe("SignatureDoesNotMatch");
  });
});

describe("which bodies are aws-chunked", () => {
  const text = async (s: ReadableStream<Uint8Array> | null) => (s ? await new Response(s).text() : "");
  const put = (headers: Record<string, string>, body: string) => new Request("http://h/b/k", { method: "PUT", headers, body });

  test("a plain SHA-256 payload is not framed, whatever Content-Encoding names", async () => {
    const body = "not aws-chunked at all";
    const hex = crypto.createHash("sha256").update(body).digest("hex");
    const caller: S3Caller = { principal: ANONYMOUS_ADMIN, payload: { kind: "sha256", hex }, region: "us-east-1" };
    const r = put({ "content-encoding": "gzip, aws-chunked", "x-amz-content-sha256": hex }, body);
    expect(await text(requestBody(r, caller).stream)).toBe(body);
  });

  test("with no declared hash (auth off) the header alone still means framing", async () => {
    const caller: S3Caller = { principal: ANONYMOUS_ADMIN, payload: null, region: "us-east-1" };
    const r = put({ "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5" }, "5\r\nhello\r\n0\r\n\r\n");
    expect(await text(requestBody(r, caller).stream)).toBe("hello");
  });
});
