// An Azure Blob Storage container (or Azurite) through @azure/storage-blob: shared-key or SAS
// auth, block blobs, metadata as x-ms-meta-*. Every call has a deadline for its answer's head
// (the SDK's own per-try timeout, and one retry: the fill and the write-through queue retry at
// their own pace); a body of unknown length is uploaded in bounded blocks.
import { Readable } from "node:stream";
import { AnonymousCredential, BlobServiceClient, RestError, StorageSharedKeyCredential, type BlobDownloadResponseParsed, type BlobItem, type BlobGetPropertiesResponse } from "@azure/storage-blob";
import type { RemoteBackend, RemoteObjectInfo } from "./backend.ts";
import { answered, contentRange, deadline, DEFAULT_REMOTE_TIMEOUT_MS, hostOf, lowerNames, pathSafeKey, sdkCall, type SdkCalls, unreachable } from "./remote-call.ts";

/** Where an Azure container is and how to sign for it: an account key, or a SAS token. */
export interface AzureRemoteSpec {
  /** The account's blob endpoint: `https://<account>.blob.core.windows.net`, or Azurite's `http://127.0.0.1:10000/devstoreaccount1`. */
  endpoint: string;
  container: string;
  accountName?: string;
  accountKey?: string;
  /** A SAS token (without or with its leading "?"), instead of the account key. */
  sasToken?: string;
  timeoutMs?: number;
}

/** Block size of streamed uploads and how many are in flight: their product bounds an upload's memory. */
const BLOCK_BYTES = 8 << 20;
const BLOCKS_IN_FLIGHT = 2;

/** Info from a properties or download answer. */
function infoOf(key: string, out: BlobGetPropertiesResponse | BlobDownloadResponseParsed): RemoteObjectInfo {
  const total = contentRange("contentRange" in out ? out.contentRange : undefined)?.total;
  return {
    key,
    size: total ?? out.contentLength ?? 0,
    etag: out.etag,
    lastModified: out.lastModified?.getTime(),
    contentType: out.contentType,
    meta: lowerNames(out.metadata),
    cacheControl: out.cacheControl,
  };
}

/** A read-write, listable backend for an Azure container. */
export function createAzureBackend(spec: AzureRemoteSpec): RemoteBackend {
  const where = hostOf(spec.endpoint);
  const timeoutMs = spec.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
  const credential = spec.accountName && spec.accountKey ? new StorageSharedKeyCredential(spec.accountName, spec.accountKey) : new AnonymousCredential();
  const url = spec.sasToken ? `${spec.endpoint.replace(/\/+$/, "")}?${spec.sasToken.replace(/^\?/, "")}` : spec.endpoint;
  const service = new BlobServiceClient(url, credential, { retryOptions: { maxTries: 2, tryTimeoutInMs: timeoutMs } });
  const container = service.getContainerClient(spec.container);
  // Azure's blob URLs carry the key as a path: see pathSafeKey.
  const blob = (key: string) => container.getBlockBlobClient(pathSafeKey(key));

  const calls: SdkCalls = { where, timeoutMs, statusOf: (err) => (err instanceof RestError ? err.statusCode : undefined) };
  /** One SDK call under the remote's deadline (remote-call.ts). */
  const call = <T>(signal: AbortSignal | undefined, run: (abortSignal: AbortSignal) => Promise<T>, ok?: number[]) => sdkCall(calls, signal, (d) => run(d.signal), ok);

  return {
    type: "azure",
    capabilities: { write: true, list: true },

    async head(key, opts = {}) {
      const b = blob(key);
      const out = await call(opts.signal, (abortSignal) => b.getProperties({ abortSignal }), [404]);
      return typeof out === "number" ? null : infoOf(key, out);
    },

    async get(key, opts = {}) {
      const b = blob(key);
      const span = opts.range;
      const out = await call(
        opts.signal,
        (abortSignal) =>
          b.download(span?.start ?? 0, span ? span.end - span.start + 1 : undefined, {
            abortSignal,
            conditions: { ifMatch: opts.ifMatch, ifNoneMatch: opts.ifNoneMatch },
            // The fill reads each range once and retries it itself.
            maxRetryRequests: 0,
          }),
        [304, 404, 412],
      );
      if (out === 304) return "not-modified";
      if (out === 412) return "changed";
      if (typeof out === "number") return null;
      const answeredSpan = contentRange(out.contentRange);
      const stream = out.readableStreamBody ? (Readable.toWeb(out.readableStreamBody as Readable) as ReadableStream<Uint8Array>) : new Response(new Uint8Array(0)).body!;
      return { info: infoOf(key, out), range: answeredSpan && { start: answeredSpan.start, end: answeredSpan.end }, body: stream };
    },

    async put(key, body, info, opts = {}) {
      const b = blob(key);
      const options = { metadata: info.meta, blobHTTPHeaders: { blobContentType: info.contentType, blobCacheControl: info.cacheControl } };
      if (body instanceof Uint8Array) {
        const out = await call(opts.signal, (abortSignal) => b.upload(body, body.byteLength, { ...options, abortSignal }));
        return { etag: typeof out === "number" ? undefined : out.etag };
      }
      // Unknown length: blocks of BLOCK_BYTES, BLOCKS_IN_FLIGHT at a time; each block's try has
      // the SDK's timeout, so no overall deadline here (a large upload takes as long as it takes).
      try {
        const out = await b.uploadStream(Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>), BLOCK_BYTES, BLOCKS_IN_FLIGHT, { ...options, abortSignal: opts.signal });
        return { etag: out.etag };
      } catch (err) {
        if (err instanceof RestError && err.statusCode !== undefined && !opts.signal?.aborted) throw answered(where, err.statusCode);
        throw unreachable(where, err, timeoutMs, deadline(0), opts.signal);
      }
    },

    async delete(key, opts = {}) {
      const b = blob(key);
      await call(opts.signal, (abortSignal) => b.deleteIfExists({ abortSignal }));
    },

    async list(prefix, cursor, opts = {}) {
      const out = await call(opts.signal, async (abortSignal) => {
        const pages = container.listBlobsFlat({ prefix: prefix || undefined, includeMetadata: true, abortSignal }).byPage({ continuationToken: cursor ?? undefined, maxPageSize: opts.limit ?? 1000 });
        return (await pages.next()).value;
      });
      if (typeof out === "number") throw answered(where, out);
      const objects = (out?.segment.blobItems ?? []).map((o: BlobItem) => ({
        key: o.name,
        size: o.properties.contentLength ?? 0,
        etag: o.properties.etag,
        lastModified: o.properties.lastModified?.getTime(),
        contentType: o.properties.contentType,
        meta: lowerNames(o.metadata),
        cacheControl: o.properties.cacheControl,
      }));
      return { objects, next: out?.continuationToken ? out.continuationToken : null };
    },
  };
}
