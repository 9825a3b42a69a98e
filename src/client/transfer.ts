// Moving bytes: a file up to a mesh (one streamed PUT, or a multipart upload in parallel
// parts above a threshold, resumable with a session file), an object down to a file or to
// standard output, and an object from one mesh path to another. Nothing holds a whole
// object in memory: parts are Bun.file slices, bodies stream.
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { mapLimit } from "../util/map-limit.ts";
import { ClientError } from "./errors.ts";
import { multipartRoute, objectRoute, type Peer } from "./http.ts";
import type { Progress } from "./progress.ts";
import { sessionId, type SessionPart, type SessionStore } from "./sessions.ts";

/** S3's (and the mesh's) multipart rules: parts of at least 5 MiB but the last, at most 10,000 parts. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;

/** How uploads are made. */
export interface UploadOptions {
  /** Files of at least this many bytes go up as multipart uploads. */
  multipartThreshold: number;
  partSize: number;
  /** Parts in flight at once. */
  parallel: number;
  /** Resume the upload a session file describes, if there is one. */
  resume: boolean;
  sessions: SessionStore;
  progress: Progress;
  /** User metadata to set on every object written (x-meta-NAME: value); a multipart upload's is set when it starts. */
  meta?: Record<string, string>;
  /** Test hook: exit the process (code 75) once this many parts are acknowledged and recorded. */
  exitAfterParts?: number;
}

/** What an upload did. */
export interface UploadResult {
  size: number;
  etag: string;
  uploadToken: string;
  multipart?: { uploadId: string; parts: number; sent: number; held: number };
}

/** A fresh upload token (the peer keeps a progress record under it). */
export function newUploadToken(): string {
  return "up-" + randomBytes(12).toString("hex");
}

/** The part size for `size` bytes: the one asked for, raised so no more than MAX_PARTS are needed. */
export function partSizeFor(size: number, wanted: number): number {
  return Math.max(MIN_PART_SIZE, wanted, Math.ceil(size / MAX_PARTS));
}

/** `meta` as x-meta-* request headers. */
export function metaHeaders(meta: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(meta ?? {}).map(([k, v]) => [`x-meta-${k}`, v]));
}

/** A body stream that reports its bytes to `progress`; `counted` says how many went so far. */
function countingStream(source: ReadableStream<Uint8Array>, progress: Progress): { body: ReadableStream<Uint8Array>; counted: () => number } {
  let n = 0;
  const body = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        n += chunk.byteLength;
        progress.add(chunk.byteLength);
        ctl.enqueue(chunk);
      },
    }),
  );
  return { body, counted: () => n };
}

/** PUT a body of `size` bytes, counting its progress; on failure, the bytes counted are taken back. */
async function putCounted(peer: Peer, route: string, source: Blob, headers: Record<string, string>, progress: Progress): Promise<Response> {
  const { body, counted } = countingStream(source.size === 0 ? new Blob([]).stream() : source.stream(), progress);
  try {
    return await peer.request(route, { method: "PUT", body, headers: { ...headers, "content-length": String(source.size) } });
  } catch (err) {
    progress.add(-counted());
    throw err;
  }
}

/** Upload local `file` to `bucket/key` on `peer`. */
export async function uploadFile(peer: Peer, file: string, bucket: string, key: string, opts: UploadOptions): Promise<UploadResult> {
  const info = await stat(file);
  const blob = Bun.file(file);
  const contentType = blob.type.split(";")[0] || "application/octet-stream";
  if (info.size < opts.multipartThreshold) {
    const uploadToken = newUploadToken();
    const res = await putCounted(peer, objectRoute(bucket, key), blob, { ...metaHeaders(opts.meta), "content-type": contentType, "x-upload-token": uploadToken }, opts.progress);
    const body = (await res.json()) as { etag: string; size: number };
    return { size: body.size, etag: body.etag, uploadToken };
  }
  return multipartUpload(peer, file, { size: info.size, mtimeMs: info.mtimeMs, contentType }, bucket, key, opts);
}

/** Send the parts of `file` that the upload lacks, then complete it. */
async function multipartUpload(peer: Peer, file: string, src: { size: number; mtimeMs: number; contentType: string }, bucket: string, key: string, opts: UploadOptions): Promise<UploadResult> {
  const id = sessionId({ source: file, size: src.size, mtimeMs: src.mtimeMs }, { url: peer.url, bucket, key });
  const held = new Map<number, SessionPart>();
  let session = await opts.sessions.load(id);
  if (session && opts.resume) {
    try {
      const listed = await peer.json<{ parts: SessionPart[] }>(multipartRoute(bucket, key, `/${encodeURIComponent(session.uploadId)}`));
      for (const p of listed.parts) held.set(p.partNumber, p);
    } catch (err) {
      // The upload is gone (completed, aborted, or collected as too old): start again.
      if (!(err instanceof ClientError && err.code === "NoSuchUpload")) throw err;
      session = undefined;
    }
  } else if (session) {
    // Not resuming: the old upload's parts would only wait to be collected; let them go now.
    await peer.request(multipartRoute(bucket, key, `/${encodeURIComponent(session.uploadId)}`), { method: "DELETE", accept: [404] }).catch(() => {});
    session = undefined;
  }
  if (!session) {
    const uploadToken = newUploadToken();
    const created = await peer.json<{ uploadId: string }>(multipartRoute(bucket, key), { method: "POST", headers: { ...metaHeaders(opts.meta), "content-type": src.contentType, "x-upload-token": uploadToken } });
    session = { version: 1, source: path.resolve(file), size: src.size, mtimeMs: src.mtimeMs, url: peer.url, bucket, key, uploadId: created.uploadId, uploadToken, partSize: partSizeFor(src.size, opts.partSize), createdMs: Date.now(), parts: [] };
    await opts.sessions.save(id, session, true);
  }
  const s = session;
  const count = Math.max(1, Math.ceil(s.size / s.partSize));
  const expectedSize = (n: number) => Math.min(s.partSize, s.size - (n - 1) * s.partSize);
  // A part the server holds at the size this file's part has is kept; any other is sent again.
  for (const [n, p] of held) if (n > count || p.size !== expectedSize(n)) held.delete(n);
  s.parts = [...held.values()];
  const heldCount = held.size;
  opts.progress.add([...held.values()].reduce((sum, p) => sum + p.size, 0));
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !held.has(n));
  // Session writes are chained so two parts finishing together never interleave their files.
  let saving = Promise.resolve();
  let acked = 0;
  const blob = Bun.file(file);
  await mapLimit(missing, opts.parallel, async (n) => {
    const start = (n - 1) * s.partSize;
    const slice = blob.slice(start, start + expectedSize(n));
    const res = await putCounted(peer, multipartRoute(bucket, key, `/${encodeURIComponent(s.uploadId)}/parts/${n}`), slice, { "x-upload-token": s.uploadToken }, opts.progress);
    const part = (await res.json()) as SessionPart;
    if (part.size !== slice.size) throw new ClientError(`part ${n} of ${file}: the peer stored ${part.size} bytes of ${slice.size}`, "IncompleteBody");
    held.set(n, { partNumber: n, etag: part.etag, size: part.size });
    s.parts = [...held.values()].sort((a, b) => a.partNumber - b.partNumber);
    saving = saving.then(() => opts.sessions.save(id, s));
    await saving;
    acked++;
    if (opts.exitAfterParts !== undefined && acked >= opts.exitAfterParts) process.exit(75);
  });
  const parts = [...held.values()].sort((a, b) => a.partNumber - b.partNumber).map(({ partNumber, etag }) => ({ partNumber, etag }));
  const done = await peer.json<{ etag: string; size: number }>(multipartRoute(bucket, key, `/${encodeURIComponent(s.uploadId)}/complete`), {
    method: "POST",
    headers: { "content-type": "application/json", "x-upload-token": s.uploadToken },
    body: JSON.stringify({ parts }),
  });
  await opts.sessions.remove(id);
  return { size: done.size, etag: done.etag, uploadToken: s.uploadToken, multipart: { uploadId: s.uploadId, parts: count, sent: missing.length, held: heldCount } };
}

/** Download `bucket/key` into local `file` (through a temporary file, renamed when whole). */
export async function downloadFile(peer: Peer, bucket: string, key: string, file: string, progress: Progress): Promise<{ size: number; etag: string }> {
  const res = await peer.request(objectRoute(bucket, key));
  const size = Number(res.headers.get("content-length") ?? -1);
  const etag = (res.headers.get("etag") ?? "").replace(/"/g, "");
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.meshstore-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fh = await open(tmp, "w", 0o644);
  let got = 0;
  try {
    if (res.body) {
      for await (const chunk of res.body) {
        await fh.write(chunk);
        got += chunk.byteLength;
        progress.add(chunk.byteLength);
      }
    }
    await fh.close();
    if (size >= 0 && got !== size) throw new ClientError(`${bucket}/${key}: got ${got} of ${size} bytes`, "IncompleteBody");
    await rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    progress.add(-got);
    throw err;
  }
  return { size: got, etag };
}

/** Headers of an object that a copy keeps (its type, stored headers and metadata). */
function keptHeaders(h: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of h) {
    if (name === "content-type" || name === "cache-control" || name === "content-disposition" || name === "content-encoding" || name === "content-language" || name === "expires" || name.startsWith("x-meta-")) kept[name] = value;
  }
  return kept;
}

/** Copy an object from one mesh path to another, streamed through this process; `meta` adds to (or replaces) its metadata. */
export async function copyObject(from: Peer, src: { bucket: string; key: string }, to: Peer, dst: { bucket: string; key: string }, progress: Progress, meta?: Record<string, string>): Promise<UploadResult> {
  const res = await from.request(objectRoute(src.bucket, src.key));
  const size = Number(res.headers.get("content-length") ?? 0);
  const uploadToken = newUploadToken();
  let n = 0;
  const body = (res.body ?? new Blob([]).stream()).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        n += chunk.byteLength;
        progress.add(chunk.byteLength);
        ctl.enqueue(chunk);
      },
    }),
  );
  try {
    const put = await to.json<{ etag: string; size: number }>(objectRoute(dst.bucket, dst.key), {
      method: "PUT",
      body,
      headers: { ...keptHeaders(res.headers), ...metaHeaders(meta), "content-length": String(size), "x-upload-token": uploadToken },
    });
    return { size: put.size, etag: put.etag, uploadToken };
  } catch (err) {
    progress.add(-n);
    throw err;
  }
}

/** Write an object's bytes to standard output, as they arrive. */
export async function catObject(peer: Peer, bucket: string, key: string): Promise<number> {
  const res = await peer.request(objectRoute(bucket, key));
  let n = 0;
  if (!res.body) return 0;
  for await (const chunk of res.body) {
    n += chunk.byteLength;
    if (!process.stdout.write(chunk)) await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
  }
  return n;
}
