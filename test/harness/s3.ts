// Helpers for the S3 and auth tests: an AWS SDK client pointed at one peer, the admin
// key routes of the native API, a hand SigV4 signer (@smithy/signature-v4, what the SDK
// signs with) for raw requests the SDK would not send, S3 error documents and SDK
// errors reduced to one-line facts, and the checksums S3 uses.
import crypto from "node:crypto";
import zlib from "node:zlib";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { ADMIN_BEARER, TEST_ADMIN } from "./credentials.ts";
import { suiteLeaks } from "./leak-check.ts";
import { json, mapLimit, request, statusAndCode, type Reply } from "./http.ts";

export { ADMIN_BEARER, TEST_ADMIN };

/** An S3 access key pair. */
export interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
}

export const MiB = 1 << 20;

// ---------- SDK client ----------

/**
 * An S3 client for one peer's S3 endpoint (path-style, us-east-1). `opts` overrides any
 * client setting, e.g. `{ maxAttempts: 1 }` so that an error is seen exactly as the
 * server sent it, or `systemClockOffset`.
 */
export function s3Client(endpoint: string, creds: Creds = TEST_ADMIN, opts: Partial<S3ClientConfig> = {}): S3Client {
  // Whatever a test signs with is a secret, wherever it came from (a key made in the dashboard, too).
  suiteLeaks.registerKey(creds);
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    ...opts,
  });
}

/** What an SDK call failed with, reduced to the facts the tests assert on. */
export interface SdkFailure {
  /** The error name (the S3 error code for requests with an error body; "NotFound"/"Forbidden"... for HEAD). */
  name: string;
  status: number | undefined;
  message: string;
  /** The `Code` the SDK parsed from the body, if any. */
  code?: string;
}

/**
 * Await an SDK call that must fail and describe the failure. If it succeeds, throws with
 * `what` so the test fails with a readable message.
 */
export async function sdkFailure(what: string, p: Promise<unknown>): Promise<SdkFailure> {
  let out: unknown;
  try {
    out = await p;
  } catch (err) {
    const e = err as { name?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } };
    return { name: String(e.name), status: e.$metadata?.httpStatusCode ?? e.$response?.statusCode, message: String(e.message ?? ""), code: e.Code };
  }
  const meta = (out as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  throw new Error(`${what}: expected an error, but it succeeded with status ${meta?.httpStatusCode}`);
}

/** "403 AccessDenied"-style summary of an SDK failure. */
export async function sdkStatusAndName(what: string, p: Promise<unknown>): Promise<string> {
  const f = await sdkFailure(what, p);
  return `${f.status} ${f.name}`;
}

/** Read an SDK GetObject body (or any stream/bytes) into one Uint8Array. */
export async function bodyBytes(body: unknown): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> };
  if (typeof b.transformToByteArray === "function") return await b.transformToByteArray();
  if (body instanceof Uint8Array) return body;
  const parts: Uint8Array[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) parts.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return new Uint8Array(Buffer.concat(parts));
}

// ---------- admin key routes (native API) ----------

/** What a new key may do (the body of `POST /admin/keys`). */
export interface KeySpec {
  name?: string;
  admin?: boolean;
  buckets?: Record<string, "read" | "write" | "owner">;
  /** May create buckets, and owns those it creates. */
  create?: boolean;
}

/** A key as listed by `GET /admin/keys`. */
export interface KeyInfo {
  accessKeyId: string;
  name: string;
  admin: boolean;
  buckets: Record<string, string>;
  create?: boolean;
  createdMs: number;
}

/** A key as `POST /admin/keys` returns it, secrets included. */
export interface CreatedKey extends KeyInfo {
  secretAccessKey: string;
  token: string;
}

/** `Authorization` header value for a native token. */
export function bearer(token: string): string {
  suiteLeaks.register("native token", token);
  return `Bearer ${token}`;
}

/** `POST /admin/keys` with any body, as `authorization` (default: the test admin). */
export function createKeyRaw(httpUrl: string, body: string, authorization: string = ADMIN_BEARER): Promise<Reply> {
  return request(httpUrl, "POST", "/admin/keys", { body, headers: { authorization, "content-type": "application/json" } });
}

/** Create a key through peer `httpUrl` and insist on 201. */
export async function createKey(httpUrl: string, spec: KeySpec = {}, authorization: string = ADMIN_BEARER): Promise<CreatedKey> {
  const r = await createKeyRaw(httpUrl, JSON.stringify(spec), authorization);
  if (r.status !== 201) throw new Error(`POST /admin/keys ${JSON.stringify(spec)} via ${httpUrl}: ${r.status} ${new TextDecoder().decode(r.body).slice(0, 300)}`);
  return json<CreatedKey>(r);
}

/** `GET /admin/keys` as the admin; insists on 200. */
export async function listKeys(httpUrl: string, authorization: string = ADMIN_BEARER): Promise<KeyInfo[]> {
  const r = await request(httpUrl, "GET", "/admin/keys", { headers: { authorization } });
  if (r.status !== 200) throw new Error(`GET /admin/keys via ${httpUrl}: ${statusAndCode(r)}`);
  return json<{ keys: KeyInfo[] }>(r).keys;
}

/** `DELETE /admin/keys/{id}`. */
export function revokeKey(httpUrl: string, accessKeyId: string, authorization: string = ADMIN_BEARER): Promise<Reply> {
  return request(httpUrl, "DELETE", `/admin/keys/${encodeURIComponent(accessKeyId)}`, { headers: { authorization } });
}

/** A request with no `Authorization` header at all (fetch directly, not `request`). */
export async function anonymous(base: string, method: string, path: string, init: { body?: Bun.BodyInit; headers?: Record<string, string> } = {}): Promise<Reply> {
  const res = await fetch(base + path, { method, body: init.body, headers: init.headers, redirect: "manual" });
  return { status: res.status, headers: res.headers, body: new Uint8Array(await res.arrayBuffer()) };
}

// ---------- hand signing (SigV4) ----------

type SourceData = string | ArrayBuffer | ArrayBufferView;
const toBuf = (d: SourceData) =>
  typeof d === "string" ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** node:crypto SHA-256 / HMAC in the shape @smithy/signature-v4 wants (as @smithy/hash-node). */
export class NodeSha256 {
  private h: crypto.Hash | crypto.Hmac;
  constructor(secret?: SourceData) {
    this.h = secret ? crypto.createHmac("sha256", toBuf(secret)) : crypto.createHash("sha256");
  }
  update(data: SourceData): void {
    this.h.update(toBuf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

/** A SigV4 signer as the S3 client configures it (paths arrive already encoded). */
export function signer(creds: Creds = TEST_ADMIN, region = "us-east-1"): SignatureV4 {
  suiteLeaks.registerKey(creds);
  return new SignatureV4({ credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey }, region, service: "s3", sha256: NodeSha256, uriEscapePath: false });
}

/** encodeURIComponent plus the five characters it leaves alone (how S3 clients encode). */
export function s3Encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (ch) => "%" + ch.charCodeAt(0).toString(16).toUpperCase());
}

/** `/bucket/key` with each key segment encoded. */
export function s3Path(bucket: string, key?: string): string {
  return key === undefined ? `/${bucket}` : `/${bucket}/${key.split("/").map(s3Encode).join("/")}`;
}

export interface SignedRequestInit {
  method: string;
  /** Already-encoded path, e.g. s3Path("b", "k"). */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  creds?: Creds;
  /** Signing time (default now). */
  date?: Date;
  /** The x-amz-content-sha256 to sign (default: the real SHA-256 of the body). */
  contentSha256?: string;
  /** Change the signed request before it is sent (tampering tests). */
  tamper?: (req: { headers: Record<string, string>; query: Record<string, string> }) => void;
}

/** A buffered raw reply with the body as text. */
export interface TextReply {
  status: number;
  headers: Headers;
  text: string;
}

/** Build the query string exactly as signed (RFC 3986, sorted like the signer). */
function queryString(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((k) => (query[k] === "" ? s3Encode(k) : `${s3Encode(k)}=${s3Encode(query[k])}`))
    .join("&");
}

/** Sign a request with SigV4 (header auth) and send it to `endpoint` with fetch. */
export async function signedFetch(endpoint: string, init: SignedRequestInit): Promise<TextReply> {
  const u = new URL(endpoint);
  const body = typeof init.body === "string" ? Buffer.from(init.body) : init.body;
  const query = { ...(init.query ?? {}) };
  const headers: Record<string, string> = {
    host: u.host,
    "x-amz-content-sha256": init.contentSha256 ?? crypto.createHash("sha256").update(body ?? new Uint8Array(0)).digest("hex"),
    ...init.headers,
  };
  const signed = await signer(init.creds).sign(
    { method: init.method, protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: init.path, query, headers, body },
    { signingDate: init.date ?? new Date() },
  );
  const outHeaders = { ...(signed.headers as Record<string, string>) };
  const outQuery = { ...(signed.query as Record<string, string>) };
  init.tamper?.({ headers: outHeaders, query: outQuery });
  delete outHeaders.host;
  const qs = queryString(outQuery);
  const res = await fetch(`${u.origin}${init.path}${qs ? `?${qs}` : ""}`, { method: init.method, headers: outHeaders, body, redirect: "manual" });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Presign a request by hand (query auth, UNSIGNED-PAYLOAD as S3's presigner does), returning the URL. */
export async function presignByHand(endpoint: string, init: { method: string; path: string; creds?: Creds; date?: Date; expiresIn?: number; query?: Record<string, string> }): Promise<string> {
  const u = new URL(endpoint);
  const req = await signer(init.creds).presign(
    { method: init.method, protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: init.path, query: { ...(init.query ?? {}) }, headers: { host: u.host, "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD" } },
    { signingDate: init.date ?? new Date(), expiresIn: init.expiresIn ?? 900 },
  );
  return `${u.origin}${init.path}?${queryString(req.query as Record<string, string>)}`;
}

// ---------- S3 XML ----------

/** The Code and Message of an S3 error document, or a description of why it is not one. */
export function s3ErrorOf(text: string): { code: string; message: string } {
  const code = /<Error>[\s\S]*<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  if (code === undefined) throw new Error(`not an S3 error document: ${text.slice(0, 300)}`);
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
  return { code, message };
}

/** "400 MalformedXML"-style summary of a raw S3 reply. */
export function s3StatusAndCode(r: TextReply): string {
  if (r.status < 400) return `${r.status}`;
  return `${r.status} ${s3ErrorOf(r.text).code}`;
}

/** Escape text for an XML element with the predefined entities (as the AWS SDK for Java does). */
export function xmlEscape(s: string): string {
  const named: Record<string, string> = { "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" };
  return s.replace(/[<>&'"]/g, (ch) => named[ch]);
}

// ---------- checksums ----------

/** Base64 Content-MD5 of bytes. */
export function md5Base64(b: Uint8Array | string): string {
  return crypto.createHash("md5").update(b).digest("base64");
}

/** Base64 SHA-256 (x-amz-checksum-sha256). */
export function sha256Base64(b: Uint8Array): string {
  return crypto.createHash("sha256").update(b).digest("base64");
}

function u32Base64(n: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n >>> 0);
  return out.toString("base64");
}

/** Base64 CRC32 (x-amz-checksum-crc32). */
export function crc32Base64(b: Uint8Array): string {
  return u32Base64((zlib as unknown as { crc32(d: Uint8Array): number }).crc32(b));
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** Base64 CRC32C (x-amz-checksum-crc32c). */
export function crc32cBase64(b: Uint8Array): string {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC32C_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return u32Base64((c ^ 0xffffffff) >>> 0);
}

// CRC-64/NVME (reflected poly 0x9a6c9329ac4bc9b5), byte at a time in two 32-bit halves: a
// reference independent of the SDK's slice-by-8 code that the server runs.
const CRC64_LO = new Uint32Array(256);
const CRC64_HI = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = BigInt(i);
  for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ 0x9a6c9329ac4bc9b5n : c >> 1n;
  CRC64_LO[i] = Number(c & 0xffffffffn);
  CRC64_HI[i] = Number(c >> 32n);
}

/** Base64 CRC64NVME (x-amz-checksum-crc64nvme). */
export function crc64nvmeBase64(b: Uint8Array): string {
  let lo = 0xffffffff;
  let hi = 0xffffffff;
  for (let i = 0; i < b.length; i++) {
    const idx = (lo ^ b[i]) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ CRC64_LO[idx]) >>> 0;
    hi = ((hi >>> 8) ^ CRC64_HI[idx]) >>> 0;
  }
  const out = Buffer.alloc(8);
  out.writeUInt32BE(~hi >>> 0, 0);
  out.writeUInt32BE(~lo >>> 0, 4);
  return out.toString("base64");
}

/** The quoted multipart ETag S3 gives: md5 of the concatenated binary part MD5s, "-N". */
export function multipartEtag(parts: Uint8Array[]): string {
  const h = crypto.createHash("md5");
  for (const p of parts) h.update(crypto.createHash("md5").update(p).digest());
  return `"${h.digest("hex")}-${parts.length}"`;
}

/** Split `data` into parts of `size` bytes (the last may be shorter). */
export function splitParts(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.byteLength; off += size) out.push(data.subarray(off, Math.min(off + size, data.byteLength)));
  return out;
}

export { mapLimit };
