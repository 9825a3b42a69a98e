// SigV4 verification and aws-chunked decoding: AWS's published vectors, round
// trips against an independent signer (@smithy/signature-v4, what the AWS SDK
// for JavaScript signs with), and every failure mode mapped to its S3 error code.
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import crypto from "node:crypto";
import zlib from "node:zlib";
import { SignatureV4 } from "@smithy/signature-v4";
import { BadDigestError } from "../../src/errors.ts";
import { decodeAwsChunked } from "../../src/api/s3/aws-chunked.ts";
import { crc32cBase64, crc64nvmeBase64 } from "../harness/s3.ts";
import {
  S3AuthError,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  constantTimeEqualHex,
  signCanonicalRequest,
  signingKey,
  splitUrl,
  verifyRequest,
  type SecretLookup,
  type VerifiedRequest,
} from "../../src/api/s3/sigv4.ts";

// ---------------------------------------------------------------------------
// Fixtures

const AKID = "AKIAIOSFODNN7EXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const EXAMPLE_DATE = new Date("2013-05-24T00:00:00Z");
const lookup: SecretLookup = async (id) => (id === AKID ? SECRET : null);

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (s: string) => new TextEncoder().encode(s);

/** node:crypto as the hash @smithy/signature-v4 wants (what @smithy/hash-node does). */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const toBytes = (d: SourceData) =>
  typeof d === "string" ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
class NodeSha256 {
  private h: crypto.Hash | crypto.Hmac;
  constructor(secret?: SourceData) {
    this.h = secret ? crypto.createHmac("sha256", toBytes(secret)) : crypto.createHash("sha256");
  }
  update(data: SourceData) {
    this.h.update(toBytes(data));
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}

/** A signer configured as the S3 client configures it (paths are already encoded: uriEscapePath false). */
function s3Signer(secret = SECRET, accessKeyId = AKID, region = "us-east-1") {
  return new SignatureV4({ credentials: { accessKeyId, secretAccessKey: secret }, region, service: "s3", sha256: NodeSha256, uriEscapePath: false });
}

/** encodeURIComponent plus the five characters it leaves alone, as the S3 client encodes keys and query values. */
const s3Encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
const keyPath = (bucket: string, key: string) => `/${bucket}/${key.split("/").map(s3Encode).join("/")}`;

interface SmithyRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

function smithyRequest(method: string, path: string, query: Record<string, string | string[]> = {}, headers: Record<string, string> = {}, body?: unknown): SmithyRequest {
  return { method, protocol: "http:", hostname: "127.0.0.1", port: 9000, path, query, headers: { host: "127.0.0.1:9000", ...headers }, body };
}

/** Turn a signed smithy request into what our server sees: method, the URL as sent, and Headers. */
function wire(r: SmithyRequest): { method: string; url: string; headers: Headers } {
  const qs = Object.entries(r.query ?? {})
    .flatMap(([k, v]) => (v === null ? [s3Encode(k)] : (Array.isArray(v) ? v : [v]).map((x) => `${s3Encode(k)}=${s3Encode(x)}`)))
    .join("&");
  const url = `${r.protocol}//${r.hostname}${r.port ? ":" + r.port : ""}${r.path}${qs ? "?" + qs : ""}`;
  return { method: r.method, url, headers: new Headers(r.headers) };
}

async function signed(req: SmithyRequest, opts: { date?: Date; secret?: string; akid?: string } = {}) {
  const out = (await s3Signer(opts.secret, opts.akid).sign(req as never, { signingDate: opts.date ?? EXAMPLE_DATE })) as unknown as SmithyRequest;
  return wire(out);
}

/** Presign as @aws-sdk/s3-request-presigner does: UNSIGNED-PAYLOAD hoisted into the query, content-type left unsigned. */
async function presigned(req: SmithyRequest, opts: { date?: Date; expiresIn?: number } = {}) {
  const hasHash = Object.keys(req.headers).some((h) => h.toLowerCase() === "x-amz-content-sha256");
  const toSign = { ...req, headers: hasHash ? req.headers : { ...req.headers, "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD" } };
  const out = (await s3Signer().presign(toSign as never, {
    signingDate: opts.date ?? EXAMPLE_DATE,
    expiresIn: opts.expiresIn ?? 3600,
    unsignableHeaders: new Set(["content-type"]),
  })) as unknown as SmithyRequest;
  return wire(out);
}

/** The S3AuthError code a promise rejects with (fails the test if it resolves). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3AuthError || e instanceof BadDigestError) return e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}

const at = (d: Date, ms: number) => new Date(d.getTime() + ms);

// ---------------------------------------------------------------------------
// AWS's published vectors

describe("AWS published vectors", () => {
  test("signing key derivation (secret/20120215/us-east-1/iam)", () => {
    expect(hex(signingKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"))).toBe(
      "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
    );
  });

  // The generic SigV4 test suite (service "service", so checked through the exported pieces).
  const suiteKey = signingKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service");
  const suiteHeaders = new Headers({ host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z" });
  const unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  test.each([
    ["get-vanilla", "/", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"],
    ["get-vanilla-query-order-key-case", "/", "Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"],
    ["get-vanilla-query-unreserved", "/", `${unreserved}=${unreserved}`, "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"],
    ["get-utf8", "/%E1%88%B4", "", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"],
  ])("suite %s", (_name, path, query, want) => {
    const creq = canonicalRequest("GET", path, query, suiteHeaders, ["host", "x-amz-date"], EMPTY);
    expect(signCanonicalRequest(suiteKey, "20150830T123600Z", "20150830/us-east-1/service/aws4_request", creq)).toBe(want);
  });

  const exampleAuth = (signedHeaders: string, sig: string) =>
    `AWS4-HMAC-SHA256 Credential=${AKID}/20130524/us-east-1/s3/aws4_request,SignedHeaders=${signedHeaders},Signature=${sig}`;

  test("S3 GET object with Range (header auth)", async () => {
    const headers = new Headers({
      host: "examplebucket.s3.amazonaws.com",
      range: "bytes=0-9",
      "x-amz-content-sha256": EMPTY,
      "x-amz-date": "20130524T000000Z",
      authorization: exampleAuth("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    });
    const v = await verifyRequest({ method: "GET", url: "https://examplebucket.s3.amazonaws.com/test.txt", headers }, lookup, { now: EXAMPLE_DATE });
    expect(v).toEqual({ accessKeyId: AKID, region: "us-east-1", payload: { kind: "sha256", hex: EMPTY }, presigned: false });
  });

  test("S3 PUT object: Date header, storage class, '$' in the key", async () => {
    const bodyHash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    expect(crypto.createHash("sha256").update("Welcome to Amazon S3.").digest("hex")).toBe(bodyHash);
    const headers = new Headers({
      host: "examplebucket.s3.amazonaws.com",
      date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-date": "20130524T000000Z",
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": bodyHash,
      authorization: exampleAuth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
    });
    for (const path of ["/test$file.text", "/test%24file.text"]) {
      const v = await verifyRequest({ method: "PUT", url: `https://examplebucket.s3.amazonaws.com${path}`, headers }, lookup, { now: EXAMPLE_DATE });
      expect(v.payload).toEqual({ kind: "sha256", hex: bodyHash });
    }
  });

  test.each([
    ["GET bucket lifecycle", "/?lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"],
    ["GET bucket (list objects)", "/?max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"],
  ])("S3 %s", async (_name, pathAndQuery, sig) => {
    const headers = new Headers({
      host: "examplebucket.s3.amazonaws.com",
      "x-amz-content-sha256": EMPTY,
      "x-amz-date": "20130524T000000Z",
      authorization: exampleAuth("host;x-amz-content-sha256;x-amz-date", sig),
    });
    await verifyRequest({ method: "GET", url: `https://examplebucket.s3.amazonaws.com${pathAndQuery}`, headers }, lookup, { now: EXAMPLE_DATE });
  });

  const presignUrl =
    "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  const presignHeaders = () => new Headers({ host: "examplebucket.s3.amazonaws.com" });

  test("S3 presigned URL", async () => {
    const v = await verifyRequest({ method: "GET", url: presignUrl, headers: presignHeaders() }, lookup, { now: at(EXAMPLE_DATE, 3600_000) });
    expect(v).toEqual({ accessKeyId: AKID, region: "us-east-1", payload: { kind: "unsigned" }, presigned: true });
  });

  test("S3 presigned URL: expired after X-Amz-Expires, valid up to it", async () => {
    await verifyRequest({ method: "GET", url: presignUrl, headers: presignHeaders() }, lookup, { now: at(EXAMPLE_DATE, 86400_000) });
    const err = await verifyRequest({ method: "GET", url: presignUrl, headers: presignHeaders() }, lookup, { now: at(EXAMPLE_DATE, 86401_000) }).catch((e) => e);
    expect(err).toBeInstanceOf(S3AuthError);
    expect(err.code).toBe("AccessDenied");
    expect(err.message).toBe("Request has expired");
  });

  test("S3 presigned URL: wrong method or tampered parameter fails", async () => {
    expect(await codeOf(verifyRequest({ method: "PUT", url: presignUrl, headers: presignHeaders() }, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
    const longer = presignUrl.replace("X-Amz-Expires=86400", "X-Amz-Expires=604800");
    expect(await codeOf(verifyRequest({ method: "GET", url: longer, headers: presignHeaders() }, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
  });
});

// ---------------------------------------------------------------------------
// The AWS streaming example (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 66560 x 'a' in 64 KiB chunks)

const SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNK_SIGS = [
  "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

function streamingExample() {
  const headers = new Headers({
    host: "s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    authorization: `AWS4-HMAC-SHA256 Credential=${AKID}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${SEED}`,
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
    "content-length": "66824",
  });
  const parts = [
    bytes(`10000;chunk-signature=${CHUNK_SIGS[0]}\r\n`),
    new Uint8Array(65536).fill(0x61),
    bytes(`\r\n400;chunk-signature=${CHUNK_SIGS[1]}\r\n`),
    new Uint8Array(1024).fill(0x61),
    bytes(`\r\n0;chunk-signature=${CHUNK_SIGS[2]}\r\n\r\n`),
  ];
  const body = Buffer.concat(parts);
  return { req: { method: "PUT", url: "https://s3.amazonaws.com/examplebucket/chunkObject.txt", headers }, body: new Uint8Array(body) };
}

/** A stream that hands out `data` in the given slice sizes (cycled), or all at once. */
function streamOf(data: Uint8Array, sizes?: number[] | ((i: number) => number)): ReadableStream<Uint8Array> {
  let pos = 0;
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (pos >= data.length) return c.close();
      const n = !sizes ? data.length : typeof sizes === "function" ? sizes(i++) : sizes[i++ % sizes.length];
      c.enqueue(data.slice(pos, pos + Math.max(1, n)));
      pos += Math.max(1, n);
    },
  });
}

/** Deterministic PRNG (mulberry32) for the random slicing tests. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Drain a stream; returns the bytes and the error it ended with, if any. */
async function drain(s: ReadableStream<Uint8Array>): Promise<{ data: Uint8Array; error?: { code?: string; message: string } }> {
  const out: Uint8Array[] = [];
  try {
    for await (const c of s) out.push(c);
    return { data: new Uint8Array(Buffer.concat(out)) };
  } catch (e) {
    return { data: new Uint8Array(Buffer.concat(out)), error: e as { code?: string; message: string } };
  }
}

describe("AWS streaming example", () => {
  test("seed signature verifies and yields the streaming-signed payload", async () => {
    const { req } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    expect(v.payload.kind).toBe("streaming-signed");
    if (v.payload.kind !== "streaming-signed") return;
    expect(v.payload.seedSignature).toBe(SEED);
    expect(v.payload.scope).toBe("20130524/us-east-1/s3/aws4_request");
    expect(v.payload.amzDate).toBe("20130524T000000Z");
    expect(v.payload.trailer).toBe(false);
    expect(hex(v.payload.signingKey)).toBe(hex(signingKey(SECRET, "20130524", "us-east-1", "s3")));
  });

  test("decodes to 66560 'a's, verifying every chunk signature", async () => {
    const { req, body } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    const { data, error } = await drain(decodeAwsChunked(streamOf(body), v.payload, { decodedLength: 66560 }));
    expect(error).toBeUndefined();
    expect(data.length).toBe(66560);
    expect(data.every((b) => b === 0x61)).toBe(true);
  });

  test("a tampered byte in chunk 2 fails, and nothing of chunk 2 is released", async () => {
    const { req, body } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    const bad = body.slice();
    bad[body.length - 200] = 0x62; // inside the 1024-byte chunk
    const { data, error } = await drain(decodeAwsChunked(streamOf(bad), v.payload));
    expect(error?.code).toBe("SignatureDoesNotMatch");
    expect(data.length).toBe(65536);
  });

  test("a tampered chunk signature, or the wrong seed, fails", async () => {
    const { req, body } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    const text = Buffer.from(body).toString("latin1");
    const badSig = bytes(text.replace(CHUNK_SIGS[2], CHUNK_SIGS[2].replace(/.$/, "0")));
    expect((await drain(decodeAwsChunked(streamOf(badSig), v.payload))).error?.code).toBe("SignatureDoesNotMatch");
    const otherSeed = { ...(v.payload as Extract<VerifiedRequest["payload"], { kind: "streaming-signed" }>), seedSignature: CHUNK_SIGS[0] };
    expect((await drain(decodeAwsChunked(streamOf(body), otherSeed))).error?.code).toBe("SignatureDoesNotMatch");
  });

  test("dropping the final chunk or a wrong decoded length is malformed", async () => {
    const { req, body } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    const truncated = body.slice(0, body.length - 86);
    expect((await drain(decodeAwsChunked(streamOf(truncated), v.payload))).error?.code).toBe("InvalidRequest");
    expect((await drain(decodeAwsChunked(streamOf(body), v.payload, { decodedLength: 66561 }))).error?.code).toBe("InvalidRequest");
    // Too long is caught before the excess is released, not only at the end.
    const short = await drain(decodeAwsChunked(streamOf(body), v.payload, { decodedLength: 1000 }));
    expect(short.error?.code).toBe("InvalidRequest");
    expect(short.data.length).toBe(0);
  });

  test("trailers are refused without the -TRAILER mode; trailing garbage is refused", async () => {
    const { req, body } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    const withTrailer = Buffer.concat([body.slice(0, body.length - 2), bytes("x-amz-checksum-crc32:AAAAAA==\r\n\r\n")]);
    expect((await drain(decodeAwsChunked(streamOf(new Uint8Array(withTrailer)), v.payload))).error?.code).toBe("InvalidRequest");
    const garbage = Buffer.concat([body, bytes("xyz")]);
    expect((await drain(decodeAwsChunked(streamOf(new Uint8Array(garbage)), v.payload))).error?.code).toBe("InvalidRequest");
  });

  test("identical output when fed 1 byte at a time and in random slices", async () => {
    const { req, body } = streamingExample();
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    const one = await drain(decodeAwsChunked(streamOf(body, [1]), v.payload));
    expect(one.error).toBeUndefined();
    expect(one.data.length).toBe(66560);
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed);
      const max = [3, 90, 1000, 70000][seed % 4];
      const got = await drain(decodeAwsChunked(streamOf(body, () => 1 + Math.floor(r() * max)), v.payload, { decodedLength: 66560 }));
      expect(got.error).toBeUndefined();
      expect(Buffer.from(got.data).equals(Buffer.from(one.data))).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------
// Canonicalization helpers

describe("canonical forms", () => {
  test.each([
    ["/", "/"],
    ["", "/"],
    ["/bucket/key", "/bucket/key"],
    ["/bucket/with space", "/bucket/with%20space"],
    ["/bucket/with%20space", "/bucket/with%20space"],
    ["/bucket/a%2fb", "/bucket/a%2Fb"], // an encoded slash stays encoded (it is part of one segment)
    ["/bucket/a%7e%7Eb~", "/bucket/a~~b~"], // unreserved escapes are decoded
    ["/bucket/a+b=c", "/bucket/a%2Bb%3Dc"], // '+' in a path is a plus
    ["/bucket/a%2Bb", "/bucket/a%2Bb"],
    ["/bucket//double//", "/bucket//double//"], // no slash merging (S3)
    ["/bucket/./x/../y", "/bucket/./x/../y"], // no dot-segment removal (S3)
    ["/bucket/ключ", "/bucket/%D0%BA%D0%BB%D1%8E%D1%87"],
    ["/bucket/%d0%ba", "/bucket/%D0%BA"],
    ["/bucket/100%", "/bucket/100%25"], // a stray '%' is a literal percent
    ["/bucket/%zz", "/bucket/%25zz"],
    ["/bucket/%FF%FE", "/bucket/%FF%FE"], // invalid UTF-8 survives byte for byte
    ["/bucket/!'()*$@:,;", "/bucket/%21%27%28%29%2A%24%40%3A%2C%3B"],
  ])("canonicalUri(%p) = %p", (raw, want) => {
    expect(canonicalUri(raw)).toBe(want);
  });

  test.each([
    ["", ""],
    ["acl", "acl="],
    ["acl=", "acl="],
    ["b=2&a=1&A=0", "A=0&a=1&b=2"],
    ["k=b&k=a&k=", "k=&k=a&k=b"], // repeated names sort by value
    ["prefix=a+b", "prefix=a%20b"], // '+' in a query is a space
    ["prefix=a%2Bb", "prefix=a%2Bb"],
    ["prefix=a%2fb%7e", "prefix=a%2Fb~"],
    ["x=%E1%88%B4&ሴ=bar", "%E1%88%B4=bar&x=%E1%88%B4"],
    ["a=1&&b=2&", "a=1&b=2"],
    ["a==b", "a=%3Db"],
  ])("canonicalQuery(%p) = %p", (raw, want) => {
    expect(canonicalQuery(raw)).toBe(want);
  });

  test("canonicalQuery drops excluded names (decoded, case-sensitive)", () => {
    expect(canonicalQuery("X-Amz-Signature=abc&X-Amz-Date=1&x-amz-signature=keep", ["X-Amz-Signature"])).toBe("X-Amz-Date=1&x-amz-signature=keep");
    expect(canonicalQuery("X%2DAmz-Signature=abc&a=1", ["X-Amz-Signature"])).toBe("a=1");
  });

  test("canonical header values are trimmed and inner runs of spaces collapsed", () => {
    const h = new Headers({ host: "h", "my-header1": "  value1  ", "my-header2": ' "a   b   c" ', "x-t": "a\t\tb" });
    const creq = canonicalRequest("GET", "/", "", h, ["host", "my-header1", "my-header2", "x-t"], EMPTY);
    expect(creq).toBe(`GET\n/\n\nhost:h\nmy-header1:value1\nmy-header2:"a b c"\nx-t:a b\n\nhost;my-header1;my-header2;x-t\n${EMPTY}`);
  });

  test("splitUrl keeps the raw path and query", () => {
    expect(splitUrl("http://h:9000/b/./k%2F?x=1#frag")).toEqual({ rawPath: "/b/./k%2F", rawQuery: "x=1" });
    expect(splitUrl("https://h")).toEqual({ rawPath: "/", rawQuery: "" });
    expect(splitUrl("/b/k?")).toEqual({ rawPath: "/b/k", rawQuery: "" });
  });

  test("constantTimeEqualHex", () => {
    const a = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    expect(constantTimeEqualHex(a, a)).toBe(true);
    expect(constantTimeEqualHex(a, a.toUpperCase())).toBe(true);
    expect(constantTimeEqualHex(a, a.replace(/1$/, "2"))).toBe(false);
    expect(constantTimeEqualHex(a, a.slice(0, 62))).toBe(false);
    expect(constantTimeEqualHex(a, a.replace(/^f/, "g"))).toBe(false);
    expect(constantTimeEqualHex("abc", "abc")).toBe(false); // odd length is not hex bytes
    expect(constantTimeEqualHex("", "")).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Round trips against @smithy/signature-v4

const KEYS = [
  "plain.txt",
  "with space.txt",
  "dir/sub dir/file name.bin",
  "unicode/ключ/日本語 ü.txt",
  "emoji 😀.png",
  "a+b=c&d.txt",
  "tilde~under_score-dash.dot",
  "special !'()*$@:,;?#[].txt",
  "percent%20literal%.txt",
  "trailing/slash/",
];
const QUERIES: Record<string, string>[] = [
  {},
  { prefix: "a b/c+d=e&f", delimiter: "/" },
  { uploadId: "2~a/b+c==", partNumber: "3" },
  { "list-type": "2", "continuation-token": "x/y+z=", "start-after": "ключ 😀" },
  { "response-content-disposition": "attachment; filename=\"x y.txt\"", "response-content-type": "text/plain; charset=utf-8" },
];

describe("round trips: header auth", () => {
  for (const method of ["GET", "PUT", "HEAD", "DELETE", "POST"]) {
    test(`${method} over every key and query shape`, async () => {
      for (const key of KEYS) {
        for (const query of QUERIES) {
          const req = await signed(smithyRequest(method, keyPath("bucket", key), query, { "x-amz-meta-note": "  spaced   out  ", "content-type": "application/octet-stream" }));
          const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE, region: "us-east-1" });
          expect(v).toEqual({ accessKeyId: AKID, region: "us-east-1", payload: { kind: "sha256", hex: EMPTY }, presigned: false });
        }
      }
    });
  }

  test("bucket-level requests (no key, empty-valued subresources)", async () => {
    for (const [path, query] of [["/", {}], ["/bucket", {}], ["/bucket/", { uploads: "" }], ["/bucket", { versioning: "" }], ["/bucket", { delete: "" }]] as const) {
      const req = await signed(smithyRequest("GET", path, query as Record<string, string>));
      await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    }
  });

  test("a body hash is returned for the caller to check", async () => {
    const body = "hello world";
    const req = await signed(smithyRequest("PUT", "/bucket/k", {}, {}, body));
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    expect(v.payload).toEqual({ kind: "sha256", hex: crypto.createHash("sha256").update(body).digest("hex") });
  });

  test.each([
    ["UNSIGNED-PAYLOAD", { kind: "unsigned" }],
    ["STREAMING-UNSIGNED-PAYLOAD-TRAILER", { kind: "streaming-unsigned-trailer" }],
  ])("x-amz-content-sha256: %s", async (mode, want) => {
    const req = await signed(smithyRequest("PUT", "/bucket/k", {}, { "x-amz-content-sha256": mode }));
    expect((await verifyRequest(req, lookup, { now: EXAMPLE_DATE })).payload).toEqual(want as VerifiedRequest["payload"]);
  });

  test("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER carries the seed signature", async () => {
    const req = await signed(smithyRequest("PUT", "/bucket/k", {}, { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" }));
    const v = await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    expect(v.payload.kind === "streaming-signed" && v.payload.trailer).toBe(true);
    expect(v.payload.kind === "streaming-signed" && v.payload.seedSignature).toBe(/Signature=([0-9a-f]{64})/.exec(req.headers.get("authorization")!)![1]);
  });

  test("other regions are accepted unless a region is required", async () => {
    const s = new SignatureV4({ credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, region: "eu-west-3", service: "s3", sha256: NodeSha256, uriEscapePath: false });
    const out = wire((await s.sign(smithyRequest("GET", "/bucket/k") as never, { signingDate: EXAMPLE_DATE })) as unknown as SmithyRequest);
    // The signing region is reported: CreateBucket answers by it (us-east-1's legacy 200 for your own bucket).
    expect((await verifyRequest(out, lookup, { now: EXAMPLE_DATE })).region).toBe("eu-west-3");
    const err = await verifyRequest(out, lookup, { now: EXAMPLE_DATE, region: "us-east-1" }).catch((e) => e);
    expect(err.code).toBe("AuthorizationHeaderMalformed");
    expect(err.message).toContain("expecting 'us-east-1'");
  });

  test("the host port is part of the signature", async () => {
    const req = await signed(smithyRequest("GET", "/bucket/k"));
    req.headers.set("host", "127.0.0.1:9001");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
  });
});

describe("round trips: presigned URLs", () => {
  test("GET and PUT over every key and query shape", async () => {
    for (const method of ["GET", "PUT"]) {
      for (const key of KEYS) {
        for (const query of QUERIES) {
          const req = await presigned(smithyRequest(method, keyPath("bucket", key), query));
          const v = await verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, 60_000) });
          expect(v).toEqual({ accessKeyId: AKID, region: "us-east-1", payload: { kind: "unsigned" }, presigned: true });
        }
      }
    }
  });

  test("x-amz-* headers hoisted into the query are signed; a signed content hash is returned", async () => {
    const hash = crypto.createHash("sha256").update("x").digest("hex");
    const req = await presigned(smithyRequest("PUT", "/bucket/k", {}, { "x-amz-meta-owner": "me", "x-amz-content-sha256": hash }));
    expect(req.url).toContain("x-amz-meta-owner=me");
    expect((await verifyRequest(req, lookup, { now: EXAMPLE_DATE })).payload).toEqual({ kind: "sha256", hex: hash });
  });

  test("signed non-x-amz headers must be sent unchanged; unsigned ones may vary", async () => {
    const req = await presigned(smithyRequest("PUT", "/bucket/k", {}, { "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "content-type": "image/png" }));
    expect(req.url).toContain("X-Amz-SignedHeaders=content-md5%3Bhost&");
    await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    req.headers.set("content-type", "text/html");
    await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
    req.headers.set("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
  });

  test("an unsigned x-amz-* header sent along is refused", async () => {
    const req = await presigned(smithyRequest("PUT", "/bucket/k"));
    req.headers.set("x-amz-acl", "public-read");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("AccessDenied");
  });

  test("expiry, future dating and bad X-Amz-Expires", async () => {
    const req = await presigned(smithyRequest("GET", "/bucket/k"), { expiresIn: 60 });
    await verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, 60_000) });
    expect(await codeOf(verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, 61_000) }))).toBe("AccessDenied");
    await verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, -14 * 60_000) }); // slightly fast client clock
    expect(await codeOf(verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, -16 * 60_000) }))).toBe("RequestTimeTooSkewed");
    for (const bad of ["0", "604801", "abc", "-5", ""]) {
      const url = req.url.replace("X-Amz-Expires=60", `X-Amz-Expires=${bad}`);
      expect(await codeOf(verifyRequest({ ...req, url }, lookup, { now: EXAMPLE_DATE }))).toBe("AuthorizationQueryParametersError");
    }
  });

  test("missing or malformed query parameters", async () => {
    const req = await presigned(smithyRequest("GET", "/bucket/k"));
    const drop = (name: string) => req.url.replace(new RegExp(`${name}=[^&]*&?`), "");
    for (const name of ["X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"]) {
      expect(await codeOf(verifyRequest({ ...req, url: drop(name) }, lookup, { now: EXAMPLE_DATE }))).toBe("AuthorizationQueryParametersError");
    }
    const tweak = (from: RegExp, to: string) => ({ ...req, url: req.url.replace(from, to) });
    const cases: [RegExp, string][] = [
      [/X-Amz-Algorithm=[^&]*/, "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256"],
      [/X-Amz-Date=[^&]*/, "X-Amz-Date=2013-05-24T00%3A00%3A00Z"],
      [/X-Amz-Date=[^&]*/, "X-Amz-Date=20130525T000000Z"], // not the credential's date
      [/X-Amz-SignedHeaders=[^&]*/, "X-Amz-SignedHeaders=content-type"], // host must be signed
      [/%2Fs3%2F/, "%2Fec2%2F"],
    ];
    for (const [from, to] of cases) {
      expect(await codeOf(verifyRequest(tweak(from, to), lookup, { now: EXAMPLE_DATE }))).toBe("AuthorizationQueryParametersError");
    }
  });

  test("a streaming content hash is not accepted on a presigned URL", async () => {
    const req = await presigned(smithyRequest("PUT", "/bucket/k", {}, { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER" }));
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("InvalidRequest");
  });
});

// ---------------------------------------------------------------------------
// Failures

describe("failures map to S3 error codes", () => {
  const base = () => signed(smithyRequest("PUT", keyPath("bucket", "dir/a b+c.txt"), { partNumber: "1", uploadId: "u/1+2" }, { "x-amz-meta-a": "1" }));

  test("tampered signature", async () => {
    const req = await base();
    const auth = req.headers.get("authorization")!;
    const flipped = auth.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
    req.headers.set("authorization", flipped);
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
    req.headers.set("authorization", auth.replace(/Signature=[0-9a-f]+/, "Signature=abc"));
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
  });

  test("wrong secret", async () => {
    const req = await signed(smithyRequest("GET", "/bucket/k"), { secret: SECRET.replace("K7", "K8") });
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("SignatureDoesNotMatch");
  });

  test("unknown or revoked access key", async () => {
    const req = await signed(smithyRequest("GET", "/bucket/k"), { akid: "AKIDUNKNOWN" });
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("InvalidAccessKeyId");
    const ok = await base();
    expect(await codeOf(verifyRequest(ok, async () => null, { now: EXAMPLE_DATE }))).toBe("InvalidAccessKeyId");
  });

  test("each tampered part of the request breaks the signature", async () => {
    const mutations: [string, (r: Awaited<ReturnType<typeof base>>) => void][] = [
      ["method", (r) => void (r.method = "POST")],
      ["path", (r) => void (r.url = r.url.replace("a%20b", "a%20c"))],
      ["path encoding of a slash", (r) => void (r.url = r.url.replace("dir/", "dir%2F"))],
      ["query value", (r) => void (r.url = r.url.replace("partNumber=1", "partNumber=2"))],
      ["added query", (r) => void (r.url += "&x=1")],
      ["signed header", (r) => r.headers.set("x-amz-meta-a", "2")],
      ["payload hash", (r) => r.headers.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
      ["date within skew", (r) => r.headers.set("x-amz-date", "20130524T000001Z")],
    ];
    for (const [name, mutate] of mutations) {
      const req = await base();
      mutate(req);
      expect([name, await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))]).toEqual([name, "SignatureDoesNotMatch"]);
    }
  });

  test("unsigned extra headers and equivalent encodings still verify", async () => {
    const req = await base();
    req.headers.set("user-agent", "anything");
    req.headers.set("x-forwarded-for", "10.0.0.1");
    req.url = req.url.replace("a%20b%2Bc", "a%20b%2bc").replace("uploadId=u%2F1%2B2", "uploadId=u/1%2B2");
    await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
  });

  test("clock skew beyond 15 minutes either way (configurable)", async () => {
    const req = await base();
    await verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, 14 * 60_000) });
    await verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, -14 * 60_000) });
    expect(await codeOf(verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, 16 * 60_000) }))).toBe("RequestTimeTooSkewed");
    expect(await codeOf(verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, -16 * 60_000) }))).toBe("RequestTimeTooSkewed");
    expect(await codeOf(verifyRequest(req, lookup, { now: at(EXAMPLE_DATE, 61_000), maxSkewMs: 60_000 }))).toBe("RequestTimeTooSkewed");
  });

  test("cheap checks run before the secret is looked up", async () => {
    const req = await base();
    let calls = 0;
    const counting: SecretLookup = async (id) => (calls++, lookup(id));
    await codeOf(verifyRequest(req, counting, { now: at(EXAMPLE_DATE, 3600_000) }));
    expect(calls).toBe(0);
  });

  test("missing x-amz-content-sha256, or a value S3 does not know", async () => {
    const req = await base();
    req.headers.delete("x-amz-content-sha256");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("InvalidRequest");
    for (const bad of ["abc", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", EMPTY.slice(1)]) {
      req.headers.set("x-amz-content-sha256", bad);
      expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("InvalidRequest");
    }
  });

  test("missing, invalid or unsigned date", async () => {
    const req = await base();
    const date = req.headers.get("x-amz-date")!;
    req.headers.delete("x-amz-date");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("AccessDenied");
    req.headers.set("x-amz-date", "20131324T000000Z");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("AccessDenied");
    req.headers.set("x-amz-date", date);
    req.headers.set("authorization", req.headers.get("authorization")!.replace(";x-amz-date", ""));
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("AccessDenied");
  });

  test("no auth, both auth styles, or another algorithm", async () => {
    const req = await base();
    const auth = req.headers.get("authorization")!;
    req.headers.delete("authorization");
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("AccessDenied");
    req.headers.set("authorization", auth);
    expect(await codeOf(verifyRequest({ ...req, url: req.url + "&X-Amz-Algorithm=AWS4-HMAC-SHA256" }, lookup, { now: EXAMPLE_DATE }))).toBe("InvalidRequest");
    req.headers.set("authorization", `AWS ${AKID}:frJIUN8DYpKDtOLCwo//yllqDzg=`);
    expect(await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))).toBe("InvalidRequest");
  });

  test("malformed Authorization headers", async () => {
    const req = await base();
    const auth = req.headers.get("authorization")!;
    const cases = [
      auth.replace(/, Signature=[0-9a-f]+/, ""),
      auth.replace(/Credential=[^,]+/, "Credential=AKID/20130524/us-east-1/s3"),
      auth.replace("/s3/", "/ec2/"),
      auth.replace("/20130524/", "/20130525/"), // not the x-amz-date date
      auth.replace("/20130524/", "/2013-05-24/"),
      auth.replace("aws4_request", "aws5_request"),
      auth.replace("SignedHeaders=", "SignedHeaders=Content-Type;").replace("host;", ""),
      auth.replace("host;", ""), // host must be signed
      auth.replace(/SignedHeaders=[^,]+/, "SignedHeaders=host;;x-amz-date"),
    ];
    for (const bad of cases) {
      req.headers.set("authorization", bad);
      expect([bad, await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }))]).toEqual([bad, "AuthorizationHeaderMalformed"]);
    }
  });

  test("signatures are compared with crypto.timingSafeEqual", async () => {
    const spy = spyOn(crypto, "timingSafeEqual");
    try {
      const req = await base();
      await verifyRequest(req, lookup, { now: EXAMPLE_DATE });
      expect(spy).toHaveBeenCalledTimes(1);
      req.headers.set("authorization", req.headers.get("authorization")!.replace(/.$/, (c) => (c === "0" ? "1" : "0")));
      await codeOf(verifyRequest(req, lookup, { now: EXAMPLE_DATE }));
      expect(spy).toHaveBeenCalledTimes(2);
      const [a, b] = spy.mock.calls[1];
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    } finally {
      spy.mockRestore();
    }
  });
});

// ---------------------------------------------------------------------------
// aws-chunked with trailers

const PAYLOAD = new Uint8Array(200_000).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
const b64 = (b: Uint8Array | Buffer) => Buffer.from(b).toString("base64");
const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** Reference checksums (zlib and node:crypto where they exist; the harness's CRC-32C/CRC-64 are pinned to catalog check values below). */
const REFERENCE: Record<string, (d: Uint8Array) => string> = {
  crc32: (d) => b64(be32(zlib.crc32(d))),
  crc32c: crc32cBase64,
  crc64nvme: crc64nvmeBase64,
  sha1: (d) => crypto.createHash("sha1").update(d).digest("base64"),
  sha256: (d) => crypto.createHash("sha256").update(d).digest("base64"),
};

/** The body the AWS SDK sends for STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
function unsignedTrailerBody(data: Uint8Array, chunk: number, trailers: string[], finalCrlf = true): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += chunk) {
    const c = data.subarray(i, i + chunk);
    parts.push(bytes(`${c.length.toString(16)}\r\n`), c, bytes("\r\n"));
  }
  parts.push(bytes("0\r\n"));
  for (const t of trailers) parts.push(bytes(`${t}\r\n`));
  if (finalCrlf) parts.push(bytes("\r\n"));
  return new Uint8Array(Buffer.concat(parts));
}

const unsignedTrailer: VerifiedRequest["payload"] = { kind: "streaming-unsigned-trailer" };

describe("aws-chunked: STREAMING-UNSIGNED-PAYLOAD-TRAILER", () => {
  test("checksum implementations match the catalog check values", () => {
    const nine = bytes("123456789");
    const hexOf = (b64: string) => Buffer.from(b64, "base64").toString("hex");
    expect(hexOf(crc32cBase64(nine))).toBe("e3069283");
    expect(hexOf(crc64nvmeBase64(nine))).toBe("ae8b14860a799888");
    expect(zlib.crc32(nine).toString(16)).toBe("cbf43926");
  });

  for (const alg of Object.keys(REFERENCE)) {
    test(`x-amz-checksum-${alg}: right value decodes, wrong value is BadDigest`, async () => {
      const name = `x-amz-checksum-${alg}`;
      const good = unsignedTrailerBody(PAYLOAD, 65536, [`${name}:${REFERENCE[alg](PAYLOAD)}`]);
      const ok = await drain(decodeAwsChunked(streamOf(good), unsignedTrailer, { decodedLength: PAYLOAD.length }));
      expect(ok.error).toBeUndefined();
      expect(Buffer.from(ok.data).equals(Buffer.from(PAYLOAD))).toBe(true);
      // Announced via x-amz-trailer: only that checksum is computed, same answer.
      const announced = await drain(decodeAwsChunked(streamOf(good), unsignedTrailer, { trailer: name }));
      expect(announced.error).toBeUndefined();

      const other = PAYLOAD.slice();
      other[12345] ^= 1;
      const bad = unsignedTrailerBody(PAYLOAD, 65536, [`${name}:${REFERENCE[alg](other)}`]);
      const err = await drain(decodeAwsChunked(streamOf(bad), unsignedTrailer, { trailer: name }));
      expect(err.error).toBeInstanceOf(BadDigestError);
      expect(err.error?.code).toBe("BadDigest");
    });
  }

  test("the SDK's shape without a checksum (ends right after 0\\r\\n) and an empty object", async () => {
    const noTrailer = unsignedTrailerBody(PAYLOAD, 8192, [], false);
    expect((await drain(decodeAwsChunked(streamOf(noTrailer), unsignedTrailer))).data.length).toBe(PAYLOAD.length);
    const empty = unsignedTrailerBody(new Uint8Array(0), 8192, [`x-amz-checksum-crc32:${REFERENCE.crc32(new Uint8Array(0))}`]);
    const got = await drain(decodeAwsChunked(streamOf(empty), unsignedTrailer, { decodedLength: 0 }));
    expect(got.error).toBeUndefined();
    expect(got.data.length).toBe(0);
  });

  test("an announced trailer must arrive; unknown checksum names are refused", async () => {
    const none = unsignedTrailerBody(PAYLOAD, 65536, []);
    expect((await drain(decodeAwsChunked(streamOf(none), unsignedTrailer, { trailer: "x-amz-checksum-crc32" }))).error?.code).toBe("InvalidRequest");
    const md5 = unsignedTrailerBody(PAYLOAD, 65536, ["x-amz-checksum-md5:AAAA"]);
    expect((await drain(decodeAwsChunked(streamOf(md5), unsignedTrailer))).error?.code).toBe("InvalidRequest");
    expect(() => decodeAwsChunked(streamOf(none), unsignedTrailer, { trailer: "x-amz-checksum-md5" })).toThrow(S3AuthError);
    const other = unsignedTrailerBody(PAYLOAD, 65536, [`x-amz-checksum-sha256:${REFERENCE.sha256(PAYLOAD)}`]);
    expect((await drain(decodeAwsChunked(streamOf(other), unsignedTrailer, { trailer: "x-amz-checksum-crc32" }))).error?.code).toBe("InvalidRequest");
  });

  test("malformed framing is InvalidRequest", async () => {
    const good = Buffer.from(unsignedTrailerBody(bytes("hello world"), 4, [])).toString("latin1");
    const cases = [
      good.replace("4\r\n", "zz\r\n"), // bad size
      good.replace("hell\r\n", "hell\n"), // data not followed by CRLF
      good.replace("4\r\nhell", "5\r\nhell"), // size larger than data
      good.slice(0, 10), // truncated mid-stream
      good + "junk", // data after the end
      "1".repeat(5000) + "\r\n", // absurd header line
      good.replace("0\r\n", "0\r\nnot a trailer\r\n"),
      "",
    ];
    for (const body of cases) {
      const got = await drain(decodeAwsChunked(streamOf(bytes(body)), unsignedTrailer));
      expect([JSON.stringify(body.slice(0, 40)), got.error?.code]).toEqual([JSON.stringify(body.slice(0, 40)), "InvalidRequest"]);
    }
  });

  test("identical output when fed 1 byte at a time and in random slices", async () => {
    // Byte by byte on a smaller body (several chunks still), to keep the test quick.
    const small = PAYLOAD.subarray(0, 30_000);
    const smallBody = unsignedTrailerBody(small, 7000, [`x-amz-checksum-crc32c:${REFERENCE.crc32c(small)}`]);
    const one = await drain(decodeAwsChunked(streamOf(smallBody, [1]), unsignedTrailer, { decodedLength: small.length }));
    expect(one.error).toBeUndefined();
    expect(Buffer.from(one.data).equals(Buffer.from(small))).toBe(true);
    const body = unsignedTrailerBody(PAYLOAD, 70000, [`x-amz-checksum-crc32c:${REFERENCE.crc32c(PAYLOAD)}`]);
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed);
      const max = [2, 17, 4096, 100_000][seed % 4];
      const [input, want] = max < 100 ? [smallBody, small] : [body, PAYLOAD];
      const got = await drain(decodeAwsChunked(streamOf(input, () => 1 + Math.floor(r() * max)), unsignedTrailer, { decodedLength: want.length }));
      expect(got.error).toBeUndefined();
      expect(Buffer.from(got.data).equals(Buffer.from(want))).toBe(true);
    }
  });

  test("only STREAMING-* payloads are aws-chunked", () => {
    expect(() => decodeAwsChunked(streamOf(new Uint8Array(0)), { kind: "unsigned" })).toThrow(S3AuthError);
  });

  test("cancelling the decoded stream cancels the body", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(bytes("10\r\n0123456789abcdef\r\n"));
      },
      cancel() {
        cancelled = true;
      },
    });
    const reader = decodeAwsChunked(body, unsignedTrailer).getReader();
    await reader.read();
    await reader.cancel();
    expect(cancelled).toBe(true);
  });
});

describe("aws-chunked: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", () => {
  const date = EXAMPLE_DATE;
  const amzDate = "20130524T000000Z";
  const scope = "20130524/us-east-1/s3/aws4_request";
  const sha = (d: Uint8Array | string) => crypto.createHash("sha256").update(d).digest("hex");

  /** A signed request and its body, every signature produced by @smithy/signature-v4 (its signString). */
  async function signedTrailerUpload(data: Uint8Array, chunk: number, trailer: string, mangle: { chunk?: boolean; trailerSig?: boolean; dropTrailerSig?: boolean } = {}) {
    const req = await signed(
      smithyRequest("PUT", "/bucket/signed", {}, {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": String(data.length),
        "x-amz-trailer": trailer.split(":")[0],
      }),
    );
    const signer = s3Signer();
    const sign = (s: string) => signer.sign(s, { signingDate: date });
    let prev = /Signature=([0-9a-f]{64})/.exec(req.headers.get("authorization")!)![1];
    const parts: Uint8Array[] = [];
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk));
    chunks.push(new Uint8Array(0));
    for (const c of chunks) {
      prev = await sign(["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, prev, EMPTY, sha(c)].join("\n"));
      const body = mangle.chunk && c.length > 0 && parts.length === 0 ? c.map((b) => b ^ 1) : c;
      parts.push(bytes(`${c.length.toString(16)};chunk-signature=${prev}\r\n`), body);
      if (c.length > 0) parts.push(bytes("\r\n"));
    }
    let trailerSig = await sign(["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, prev, sha(`${trailer}\n`)].join("\n"));
    if (mangle.trailerSig) trailerSig = trailerSig.replace(/^./, (c) => (c === "0" ? "1" : "0"));
    parts.push(bytes(`${trailer}\r\n`));
    if (!mangle.dropTrailerSig) parts.push(bytes(`x-amz-trailer-signature:${trailerSig}\r\n`));
    parts.push(bytes("\r\n"));
    return { req, body: new Uint8Array(Buffer.concat(parts)) };
  }

  const crcTrailer = (d: Uint8Array) => `x-amz-checksum-crc32c:${REFERENCE.crc32c(d)}`;

  test("chunks and trailer signature verify; output is the payload", async () => {
    const { req, body } = await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD));
    const v = await verifyRequest(req, lookup, { now: date });
    const got = await drain(decodeAwsChunked(streamOf(body), v.payload, { decodedLength: PAYLOAD.length, trailer: req.headers.get("x-amz-trailer")! }));
    expect(got.error).toBeUndefined();
    expect(Buffer.from(got.data).equals(Buffer.from(PAYLOAD))).toBe(true);
  });

  test("same result byte by byte and in random slices", async () => {
    const { req, body } = await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD));
    const v = await verifyRequest(req, lookup, { now: date });
    for (let seed = 0; seed <= 8; seed++) {
      const r = rng(seed);
      const sizes = seed === 0 ? [1] : () => 1 + Math.floor(r() * [5, 300, 9000][seed % 3]);
      const got = await drain(decodeAwsChunked(streamOf(body, sizes), v.payload));
      expect(got.error).toBeUndefined();
      expect(Buffer.from(got.data).equals(Buffer.from(PAYLOAD))).toBe(true);
    }
  });

  test("tampered chunk, tampered or missing trailer signature, wrong checksum", async () => {
    const run = async (u: Awaited<ReturnType<typeof signedTrailerUpload>>) =>
      (await drain(decodeAwsChunked(streamOf(u.body), (await verifyRequest(u.req, lookup, { now: date })).payload))).error?.code;
    expect(await run(await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD), { chunk: true }))).toBe("SignatureDoesNotMatch");
    expect(await run(await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD), { trailerSig: true }))).toBe("SignatureDoesNotMatch");
    expect(await run(await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD), { dropTrailerSig: true }))).toBe("InvalidRequest");
    // A correctly signed trailer whose checksum is wrong: the client's data is not what it meant to send.
    expect(await run(await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD.subarray(1))))).toBe("BadDigest");
  });

  test("a trailer value swapped after signing fails the trailer signature", async () => {
    const { req, body } = await signedTrailerUpload(PAYLOAD, 65536, crcTrailer(PAYLOAD));
    const v = await verifyRequest(req, lookup, { now: date });
    const swapped = bytes(Buffer.from(body).toString("latin1").replace(crcTrailer(PAYLOAD), crcTrailer(PAYLOAD.subarray(1))));
    expect((await drain(decodeAwsChunked(streamOf(swapped), v.payload))).error?.code).toBe("SignatureDoesNotMatch");
  });
});

afterEach(() => {
  // Guard against a test leaving the crypto spy installed.
  expect(typeof crypto.timingSafeEqual).toBe("function");
});
