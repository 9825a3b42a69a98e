// Small fetch wrappers for the native HTTP API (buckets, objects, listing, locate,
// status), shared by the cluster tests. Every wrapper takes a peer's base URL
// (`c.peer(i).httpUrl`) and returns plain data; the tests do the asserting.
import { createHash } from "node:crypto";
import net from "node:net";
import { ADMIN_BEARER } from "./credentials.ts";
import { suiteLeaks } from "./leak-check.ts";

/** Chunk size the object tests configure (small so that tests move little data). */
export const TEST_CHUNK = 1 << 20;

// ---------- hashing and bytes ----------

/** Lowercase hex MD5 (the object ETag). */
export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** Lowercase hex SHA-256 (a chunk's id). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Byte-for-byte equality, without printing megabytes when it fails. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Short description of a body for assertion messages: size and sha256 prefix. */
export function describeBytes(b: Uint8Array): string {
  return `${b.byteLength} B sha256:${sha256Hex(b).slice(0, 16)}`;
}

/** Compare two strings by their UTF-8 bytes (= code point order), as the listing sorts. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** UTF-8 length of a string in bytes. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

// ---------- URLs ----------

/** Path of an object with the whole key percent-encoded ("/" sent as %2F). */
export function objectPath(bucket: string, key: string): string {
  return `/buckets/${encodeURIComponent(bucket)}/objects/${encodeURIComponent(key)}`;
}

/** Path of an object with raw "/" separators between encoded segments. */
export function objectPathRawSlashes(bucket: string, key: string): string {
  return `/buckets/${encodeURIComponent(bucket)}/objects/${key.split("/").map(encodeURIComponent).join("/")}`;
}

// ---------- responses ----------

/** A buffered response: status, headers and the whole body. */
export interface Reply {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** Parse a reply's body as JSON (throws with the status and text if it is not JSON). */
export function json<T = any>(r: Reply): T {
  const text = new TextDecoder().decode(r.body);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`expected a JSON body (status ${r.status}), got: ${text.slice(0, 300)}`);
  }
}

/** The `{error: {code, message}}` of an error reply, or a description of why it is not one. */
export function errorOf(r: Reply): { code: string; message: string } {
  const body = json<{ error?: { code?: unknown; message?: unknown } }>(r);
  const e = body?.error;
  if (!e || typeof e.code !== "string" || typeof e.message !== "string" || Object.keys(body).length !== 1) {
    throw new Error(`status ${r.status}: body is not {error: {code, message}}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return { code: e.code, message: e.message };
}

/** Status plus error code, e.g. "404 NoSuchKey", for one-line assertions. */
export function statusAndCode(r: Reply): string {
  if (r.status < 400) return `${r.status}`;
  return `${r.status} ${errorOf(r).code}`;
}

/** Issue a request as the test admin (unless `headers` bring their own authorization) and buffer the whole reply. */
export async function request(base: string, method: string, path: string, init: { body?: Bun.BodyInit; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers = { authorization: ADMIN_BEARER, ...init.headers };
  const res = await fetch(base + path, { method, body: init.body, headers, redirect: "manual" });
  const body = new Uint8Array(await res.arrayBuffer());
  // A key made through the native API (createKey, or a test's own POST) is a secret from now on.
  if (method === "POST" && path.startsWith("/admin/keys") && res.ok) suiteLeaks.registerFromJson(new TextDecoder().decode(body));
  return { status: res.status, headers: res.headers, body };
}

// ---------- buckets ----------

export interface BucketInfo {
  name: string;
  createdMs: number;
}

export function createBucket(base: string, bucket: string): Promise<Reply> {
  return request(base, "PUT", `/buckets/${encodeURIComponent(bucket)}`);
}

export function deleteBucket(base: string, bucket: string): Promise<Reply> {
  return request(base, "DELETE", `/buckets/${encodeURIComponent(bucket)}`);
}

export async function listBuckets(base: string): Promise<BucketInfo[]> {
  const r = await request(base, "GET", "/buckets");
  if (r.status !== 200) throw new Error(`GET /buckets: ${statusAndCode(r)}`);
  return json<{ buckets: BucketInfo[] }>(r).buckets;
}

/** Create a bucket and insist on 200. */
export async function mustCreateBucket(base: string, bucket: string): Promise<void> {
  const r = await createBucket(base, bucket);
  if (r.status !== 200) throw new Error(`PUT /buckets/${bucket}: ${statusAndCode(r)}`);
}

// ---------- objects ----------

/** What a successful PUT answers (the server's own type). */
export type { PutResult } from "../../src/objects/object-service.ts";
import type { PutResult } from "../../src/objects/object-service.ts";

export function putObject(base: string, bucket: string, key: string, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<Reply> {
  return request(base, "PUT", objectPath(bucket, key), { body, headers });
}

/** PUT and insist on 200; returns the JSON answer. */
export async function mustPut(base: string, bucket: string, key: string, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<PutResult> {
  const r = await putObject(base, bucket, key, body, headers);
  if (r.status !== 200) throw new Error(`PUT ${bucket}/${JSON.stringify(key).slice(0, 80)} via ${base}: ${statusAndCode(r)} ${new TextDecoder().decode(r.body).slice(0, 300)}`);
  return json<PutResult>(r);
}

export function getObject(base: string, bucket: string, key: string, headers: Record<string, string> = {}): Promise<Reply> {
  return request(base, "GET", objectPath(bucket, key), { headers });
}

export function headObject(base: string, bucket: string, key: string): Promise<Reply> {
  return request(base, "HEAD", objectPath(bucket, key));
}

export function deleteObject(base: string, bucket: string, key: string): Promise<Reply> {
  return request(base, "DELETE", objectPath(bucket, key));
}

/** GET and insist on 200; returns the body. */
export async function mustGet(base: string, bucket: string, key: string): Promise<Uint8Array> {
  const r = await getObject(base, bucket, key);
  if (r.status !== 200) throw new Error(`GET ${bucket}/${JSON.stringify(key).slice(0, 80)} via ${base}: ${statusAndCode(r)}`);
  return r.body;
}

// ---------- listing ----------

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: unknown;
}

export interface ListPage {
  objects: ListedObject[];
  prefixes: string[];
  nextCursor: string | null;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  limit?: number;
  cursor?: string;
}

/** One page of `GET /buckets/{b}/objects`. */
export async function listObjects(base: string, bucket: string, opts: ListOptions = {}): Promise<ListPage> {
  const r = await listObjectsRaw(base, bucket, opts);
  if (r.status !== 200) throw new Error(`list ${bucket} ${JSON.stringify(opts)}: ${statusAndCode(r)}`);
  return json<ListPage>(r);
}

export function listObjectsRaw(base: string, bucket: string, opts: ListOptions = {}): Promise<Reply> {
  const q = new URLSearchParams();
  if (opts.prefix !== undefined) q.set("prefix", opts.prefix);
  if (opts.delimiter !== undefined) q.set("delimiter", opts.delimiter);
  if (opts.limit !== undefined) q.set("limit", String(opts.limit));
  if (opts.cursor !== undefined) q.set("cursor", opts.cursor);
  const qs = q.toString();
  return request(base, "GET", `/buckets/${encodeURIComponent(bucket)}/objects${qs ? `?${qs}` : ""}`);
}

/** Follow nextCursor until null (at most `maxPages`); returns every page in order. */
export async function listAllPages(base: string, bucket: string, opts: Omit<ListOptions, "cursor"> = {}, maxPages = 10_000): Promise<ListPage[]> {
  const pages: ListPage[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await listObjects(base, bucket, { ...opts, cursor });
    pages.push(page);
    if (page.nextCursor === null) return pages;
    if (typeof page.nextCursor !== "string") throw new Error(`nextCursor must be a string or null, got ${JSON.stringify(page.nextCursor)}`);
    if (pages.length >= maxPages) throw new Error(`listing ${JSON.stringify(opts)} did not end within ${maxPages} pages`);
    cursor = page.nextCursor;
  }
}

// ---------- cluster routes ----------

export interface LocateChunk {
  id: string;
  size: number;
  expected: string[];
  holders: string[];
}

export interface Located {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  inline: boolean;
  chunks: LocateChunk[];
  shard: { id: string; replicas: string[]; holders: string[] };
}

export async function locate(base: string, bucket: string, key: string): Promise<Located> {
  const r = await request(base, "GET", `/cluster/locate/${encodeURIComponent(bucket)}/${encodeURIComponent(key)}`);
  if (r.status !== 200) throw new Error(`locate ${bucket}/${key}: ${statusAndCode(r)}`);
  return json<Located>(r);
}

export type { BadReplica } from "../../src/objects/chunk-client.ts";
export type { ClusterStatus, PeerInfo, PeerView } from "../../src/api/status.ts";
import type { ClusterStatus } from "../../src/api/status.ts";

export async function clusterStatus(base: string): Promise<ClusterStatus> {
  const r = await request(base, "GET", "/cluster/status");
  if (r.status !== 200) throw new Error(`GET /cluster/status: ${statusAndCode(r)}`);
  return json<ClusterStatus>(r);
}

// ---------- raw sockets ----------

/** Host and port of a base URL like http://127.0.0.1:1234. */
export function hostPort(base: string): { host: string; port: number } {
  const u = new URL(base);
  return { host: u.hostname, port: Number(u.port) };
}

/** What came back on a raw socket: the bytes read before the server closed (or the wait ended). */
export interface RawOutcome {
  /** Everything the server sent, as latin1 text. */
  text: string;
  /** The status code of the first response line, if any arrived. */
  status?: number;
  /** True if the server closed the connection (or reset it) before the wait ended. */
  closed: boolean;
}

/**
 * Send `head` (request line and headers, ending in a blank line) and `body` on a fresh
 * TCP connection, then:
 * - "abort": reset the socket at once (a client that vanishes mid-upload);
 * - "half-close": send FIN (the client says it is done, e.g. after fewer bytes than its
 *   Content-Length) and wait up to `waitMs` for a reply or the server closing;
 * - "wait": keep the socket open and wait for the reply (send `Connection: close` in
 *   `head` so that the server ends the connection after answering).
 */
export function rawRequest(base: string, head: string, body: Uint8Array, how: "abort" | "half-close" | "wait", waitMs = 10_000): Promise<RawOutcome> {
  const { host, port } = hostPort(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : undefined, closed });
    };
    const timer = setTimeout(() => {
      sock.destroy();
      finish(false);
    }, waitMs);
    const sock = net.connect({ host, port }, () => {
      sock.write(head);
      sock.write(body, (err) => {
        if (err) return; // the server may already have given up on us
        if (how === "abort") {
          // Let the bytes leave the kernel buffer, then vanish without a FIN.
          setTimeout(() => {
            sock.resetAndDestroy();
            finish(true);
          }, 100);
        } else if (how === "half-close") {
          sock.end();
        }
      });
    });
    sock.on("data", (d: Buffer) => chunks.push(d));
    sock.on("end", () => finish(true));
    sock.on("close", () => finish(true));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") finish(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

// ---------- misc ----------

/** Run `fn` over `items` with at most `limit` in flight (the server's own helper). */
export { mapLimit } from "../../src/util/map-limit.ts";

/** Equality of two id lists as sets. */
export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
}
