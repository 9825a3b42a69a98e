// An S3-compatible remote (AWS, MinIO, Ceph RGW, another meshstore) through the AWS SDK v3:
// path-style addressing at a custom endpoint, one region, static keys. Every call has a
// deadline for its answer's head; bodies then stream. A body of unknown length is sent as a
// multipart upload of bounded parts (lib-storage), so memory stays bounded whatever its size.
// Keys with a "." or ".." segment are refused: the SDK puts the key in the URL path, which
// Bun folds (s3rver then stores "a/c" for "a/b/../c"; a meshstore refuses the signature).
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
  type HeadObjectCommandOutput,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { type RemoteBackend, type RemoteObjectInfo } from "./backend.ts";
import { answered, contentRange, deadline, DEFAULT_REMOTE_TIMEOUT_MS, hostOf, lowerNames, pathSafeKey, rangeHeader, sdkCall, type SdkCalls, unreachable } from "./remote-call.ts";

/** Where an S3 remote is and how to sign for it. */
export interface S3RemoteSpec {
  /** `http(s)://host[:port]`: the service endpoint, buckets addressed path-style under it. */
  endpoint: string;
  bucket: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  timeoutMs?: number;
}

/** Part size of streamed uploads, and how many are in flight: their product bounds the memory an upload holds. */
const PART_BYTES = 8 << 20;
const PARTS_IN_FLIGHT = 2;

/** The HTTP status an SDK error carries, if the remote answered at all. */
function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** Info from a head or get answer's fields. */
function infoOf(key: string, out: HeadObjectCommandOutput | GetObjectCommandOutput): RemoteObjectInfo {
  const total = contentRange(out.ContentRange)?.total;
  return {
    key,
    size: total ?? out.ContentLength ?? 0,
    etag: out.ETag,
    lastModified: out.LastModified?.getTime(),
    contentType: out.ContentType,
    meta: lowerNames(out.Metadata),
    cacheControl: out.CacheControl,
    expires: out.ExpiresString ?? (out.Expires ? out.Expires.toUTCString() : undefined),
  };
}

/** A read-write, listable backend for an S3 bucket. */
export function createS3Backend(spec: S3RemoteSpec): RemoteBackend {
  const where = hostOf(spec.endpoint);
  const timeoutMs = spec.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
  const client = new S3Client({
    endpoint: spec.endpoint,
    region: spec.region ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: spec.accessKeyId, secretAccessKey: spec.secretAccessKey, sessionToken: spec.sessionToken },
    // One retry: the fill and the write-through queue retry at their own pace, with their own limits.
    maxAttempts: 2,
    requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs },
  });
  const Bucket = spec.bucket;

  const calls: SdkCalls = { where, timeoutMs, statusOf };
  /** One SDK call under the remote's deadline (remote-call.ts). */
  const call = <T>(signal: AbortSignal | undefined, run: (abortSignal: AbortSignal) => Promise<T>, ok?: number[]) => sdkCall(calls, signal, (d) => run(d.signal), ok);

  return {
    type: "s3",
    capabilities: { write: true, list: true },

    async head(key, opts = {}) {
      pathSafeKey(key);
      const out = await call(opts.signal, (abortSignal) => client.send(new HeadObjectCommand({ Bucket, Key: key }), { abortSignal }), [404]);
      return typeof out === "number" ? null : infoOf(key, out);
    },

    async get(key, opts = {}) {
      pathSafeKey(key);
      const out = await call(
        opts.signal,
        (abortSignal) =>
          client.send(
            new GetObjectCommand({ Bucket, Key: key, Range: opts.range && rangeHeader(opts.range), IfMatch: opts.ifMatch, IfNoneMatch: opts.ifNoneMatch }),
            { abortSignal },
          ),
        [304, 404, 412],
      );
      if (out === 304) return "not-modified";
      if (out === 412) return "changed";
      if (typeof out === "number") return null;
      const span = contentRange(out.ContentRange);
      const body = out.Body?.transformToWebStream() ?? new Response(new Uint8Array(0)).body!;
      return { info: infoOf(key, out), range: span && { start: span.start, end: span.end }, body };
    },

    async put(key, body, info, opts = {}) {
      pathSafeKey(key);
      const fields = { Bucket, Key: key, ContentType: info.contentType, Metadata: info.meta, CacheControl: info.cacheControl };
      if (body instanceof Uint8Array) {
        const out = await call(opts.signal, (abortSignal) => client.send(new PutObjectCommand({ ...fields, Body: body, ContentLength: body.byteLength }), { abortSignal }));
        return { etag: typeof out === "number" ? undefined : out.ETag };
      }
      // Unknown length: parts of PART_BYTES, PARTS_IN_FLIGHT at a time. Each part's request has
      // the SDK's own request timeout; the caller's signal aborts the whole upload.
      const upload = new Upload({ client, params: { ...fields, Body: body as unknown as ReadableStream }, partSize: PART_BYTES, queueSize: PARTS_IN_FLIGHT, leavePartsOnError: false });
      const abort = () => void upload.abort();
      opts.signal?.addEventListener("abort", abort, { once: true });
      try {
        const out = await upload.done();
        return { etag: out.ETag };
      } catch (err) {
        const status = statusOf(err);
        if (status !== undefined && !opts.signal?.aborted) throw answered(where, status);
        throw unreachable(where, err, timeoutMs, deadline(0), opts.signal);
      } finally {
        opts.signal?.removeEventListener("abort", abort);
      }
    },

    async delete(key, opts = {}) {
      pathSafeKey(key);
      // S3 answers 204 for a missing key; 404 from a stricter clone means the same.
      await call(opts.signal, (abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key: key }), { abortSignal }), [404]);
    },

    async list(prefix, cursor, opts = {}) {
      const out = await call(opts.signal, (abortSignal) =>
        client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix || undefined, ContinuationToken: cursor ?? undefined, MaxKeys: opts.limit ?? 1000 }), { abortSignal }),
      );
      if (typeof out === "number") throw answered(where, out);
      const objects = (out.Contents ?? []).map((o) => ({ key: o.Key ?? "", size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified?.getTime(), meta: {} }));
      return { objects, next: out.IsTruncated && out.NextContinuationToken ? out.NextContinuationToken : null };
    },
  };
}
