// A Google Cloud Storage bucket through @google-cloud/storage (it works under Bun: its
// requests go through gaxios and node-fetch's Bun shim without trouble), at a custom
// apiEndpoint for emulators or private endpoints. Auth: a service account's JSON credentials;
// with none, requests go unauthenticated (the library's rule for custom endpoints).
//
// GCS's conditional reads are by generation, not ETag, so the ETag this adapter reports is the
// object's generation in quotes. A get reads the metadata first (absence, If-None-Match,
// If-Match), then reads the bytes of that generation pinned: a read never mixes versions, and
// a version replaced in between is "changed" (with If-Match) or read as absent.
import { Readable } from "node:stream";
import { Storage, type File, type FileMetadata } from "@google-cloud/storage";
import type { RemoteBackend, RemoteObjectInfo } from "./backend.ts";
import { OriginError } from "./backend.ts";
import { answered, contentRange, type Deadline, DEFAULT_REMOTE_TIMEOUT_MS, hostOf, lowerNames, sdkCall, type SdkCalls } from "./remote-call.ts";

/** Where a GCS bucket is and how to sign for it. */
export interface GcsRemoteSpec {
  /** The JSON API's root: `https://storage.googleapis.com`, or an emulator's `http://127.0.0.1:port`. */
  endpoint: string;
  bucket: string;
  projectId?: string;
  /** A service account key (its `client_email` and `private_key`). */
  credentials?: { client_email: string; private_key: string };
  timeoutMs?: number;
}

/** The ETag this adapter speaks: the generation, quoted. */
const etagOf = (generation: unknown) => (generation === undefined || generation === null ? undefined : `"${String(generation)}"`);
const unquote = (etag: string) => etag.replace(/^(W\/)?"|"$/g, "");

/** Info from an object resource. */
function infoOf(key: string, m: FileMetadata): RemoteObjectInfo {
  const updated = Date.parse(String(m.updated ?? ""));
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.metadata ?? {})) if (v !== null && v !== undefined) meta[k] = String(v);
  return {
    key,
    size: Number(m.size ?? 0),
    etag: etagOf(m.generation),
    lastModified: Number.isFinite(updated) ? updated : undefined,
    contentType: m.contentType,
    meta: lowerNames(meta),
    cacheControl: m.cacheControl,
  };
}

/** The HTTP status a library error carries, if the remote answered. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** A read-write, listable backend for a GCS bucket. */
export function createGcsBackend(spec: GcsRemoteSpec): RemoteBackend {
  const where = hostOf(spec.endpoint);
  const timeoutMs = spec.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
  const options = {
    apiEndpoint: spec.endpoint.replace(/\/+$/, ""),
    projectId: spec.projectId ?? "meshstore",
    credentials: spec.credentials,
    useAuthWithCustomEndpoint: spec.credentials !== undefined,
    // One try: the fill and the write-through queue retry at their own pace.
    retryOptions: { autoRetry: false, maxRetries: 0 },
  };
  // Small calls (metadata, listing, delete) get the library's own per-request timeout, which
  // ends the request. Reads and uploads must not: that timeout covers the whole body, and would
  // cut a long read or upload off. They get this module's deadline (for the answer's head, or
  // for a stall) and are ended by destroying their stream.
  const bucket = new Storage({ ...options, timeout: timeoutMs }).bucket(spec.bucket);
  const streaming = new Storage(options).bucket(spec.bucket);

  const calls: SdkCalls = { where, timeoutMs, statusOf };
  /**
   * One library call under the remote's deadline (remote-call.ts). The library's calls take no
   * signal: the race returns at the deadline and its own per-request timeout ends the request.
   */
  const call = <T>(signal: AbortSignal | undefined, run: (d: Deadline) => Promise<T>, ok?: number[]) =>
    sdkCall(calls, signal, (d) => {
      const stopped = new Promise<never>((_, reject) => d.signal.addEventListener("abort", () => reject(d.signal.reason), { once: true }));
      return Promise.race([run(d), stopped]);
    }, ok);

  /** The object's resource, or null. */
  async function metadata(key: string, signal?: AbortSignal): Promise<FileMetadata | null> {
    const out = await call(signal, async () => (await bucket.file(key).getMetadata())[0], [404]);
    return typeof out === "number" ? null : out;
  }

  /** Open a read of `file`, resolving once the remote answered (so a 404 or 500 is an error here, not mid-stream); `signal` ends it. */
  function openRead(file: File, range: { start: number; end: number } | undefined, signal?: AbortSignal): Promise<{ stream: Readable; headers: Record<string, string> }> {
    return new Promise((resolve, reject) => {
      // Validation off for ranges (a part has no whole-object hash); the fill checks lengths itself.
      const stream = file.createReadStream({ start: range?.start, end: range?.end, validation: range ? false : "md5", decompress: false });
      const onAbort = () => stream.destroy(signal!.reason as Error);
      signal?.addEventListener("abort", onAbort, { once: true });
      stream.once("response", (res: { headers: Record<string, string> }) => resolve({ stream, headers: res.headers }));
      stream.once("error", reject);
      stream.once("close", () => signal?.removeEventListener("abort", onAbort));
      // The library sends its request on the stream's first read: ask for zero bytes to start it
      // (the data then waits in the stream, under its high-water mark, for the caller).
      stream.read(0);
    });
  }

  return {
    type: "gcs",
    capabilities: { write: true, list: true },

    async head(key, opts = {}) {
      const m = await metadata(key, opts.signal);
      return m ? infoOf(key, m) : null;
    },

    async get(key, opts = {}) {
      const m = await metadata(key, opts.signal);
      if (!m) return opts.ifMatch ? "changed" : null;
      const info = infoOf(key, m);
      if (opts.ifNoneMatch && unquote(opts.ifNoneMatch) === String(m.generation)) return "not-modified";
      if (opts.ifMatch && unquote(opts.ifMatch) !== String(m.generation)) return "changed";
      const pinned = streaming.file(key, { generation: Number(m.generation) });
      const size = info.size;
      // An end past the end is cut to it (a start past it gets the remote's 416, an OriginError).
      const range = opts.range && size > 0 ? { start: opts.range.start, end: Math.min(opts.range.end, size - 1) } : undefined;
      const out = await call(opts.signal, (d) => openRead(pinned, range, d.signal), [404]);
      if (typeof out === "number") return opts.ifMatch ? "changed" : null;
      const answeredSpan = contentRange(out.headers["content-range"]);
      const span = range ? (answeredSpan ? { start: answeredSpan.start, end: answeredSpan.end } : undefined) : undefined;
      return { info, range: span, body: Readable.toWeb(out.stream) as ReadableStream<Uint8Array> };
    },

    async put(key, body, info, opts = {}) {
      const file = streaming.file(key);
      const source: Readable = body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) : Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>);
      // Multipart (not resumable) uploads: one request, streamed from `source`, md5 checked by the library.
      const write = file.createWriteStream({ resumable: false, validation: "md5", metadata: { contentType: info.contentType, cacheControl: info.cacheControl, metadata: info.meta } });
      const done = new Promise<void>((resolve, reject) => {
        write.once("finish", resolve);
        write.once("error", reject);
        source.once("error", reject);
      });
      // The answer comes after the last byte: each chunk read restarts the clock, so the
      // deadline is for a stall; at it (or the caller's abort) the upload's stream is destroyed.
      await call(opts.signal, (d) => {
        d.signal.addEventListener("abort", () => write.destroy(d.signal.reason as Error), { once: true });
        source.on("data", d.touch);
        source.pipe(write);
        return done;
      });
      return { etag: etagOf(file.metadata.generation) };
    },

    async delete(key, opts = {}) {
      await call(opts.signal, () => bucket.file(key).delete({ ignoreNotFound: true }));
    },

    async list(prefix, cursor, opts = {}) {
      const out = await call(opts.signal, () => bucket.getFiles({ prefix: prefix || undefined, maxResults: opts.limit ?? 1000, pageToken: cursor ?? undefined, autoPaginate: false }));
      if (typeof out === "number") throw answered(where, out);
      const [files, next] = out as unknown as [File[], { pageToken?: string } | null];
      const objects = files.map((f) => infoOf(f.name, f.metadata));
      if (objects.some((o) => !o.key)) throw new OriginError(`origin ${where} sent a listing row without a name`);
      return { objects, next: next?.pageToken ?? null };
    },
  };
}
