// Multipart uploads (S3's Create / UploadPart / Complete / Abort / ListParts /
// ListMultipartUploads). An upload and its parts are rows of the object's own index
// shard, so they replicate and heal like manifests, and a part's chunks are referenced
// (safe from GC) from the moment its row is written. Complete writes one manifest that
// lists every part's chunks in order: no bytes are copied.
import crypto from "node:crypto";
import type { AbortOptions } from "@libp2p/interface";
import { BadRequestError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { allObjectShards, objectShard, partRowSuffix, uploadPartsPrefix, uploadRow, uploadRowPrefix, validateKey } from "../metadata/keys.ts";
import { listAll, listMerged, type ListingDeps } from "../metadata/listing.ts";
import type { ChunkRef, IndexEntry, ObjectManifest } from "../metadata/types.ts";
import type { Placement } from "../placement/placement.ts";
import { encodeTimestamp, type Hlc } from "../util/hlc.ts";
import type { ObjectService } from "./object-service.ts";

/** S3's limits. */
export const MAX_PART_NUMBER = 10_000;
export const MIN_PART_BYTES = 5 * 1024 * 1024;

/** An upload in progress: what its object will carry once complete. */
export interface UploadRecord {
  uploadId: string;
  key: string;
  initiated: number;
  contentType: string;
  meta: Record<string, string>;
  headers?: Record<string, string>;
  /** The upload's progress record (src/uploads/): parts and completion sent without a token report under it. */
  uploadToken?: string;
}

/** One uploaded part. */
export interface PartRecord {
  partNumber: number;
  size: number;
  /** MD5 hex of the part's bytes. */
  etag: string;
  lastModified: number;
  chunks: ChunkRef[];
  holders: string[][];
}

/** What a client lists in CompleteMultipartUpload. */
export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/** Multipart uploads as one peer serves them. */
export interface Multipart {
  create(bucket: string, key: string, init: Omit<UploadRecord, "uploadId" | "key" | "initiated">): Promise<string>;
  /** Store a part's body; `opts.signal` (the client went away) stops its chunk calls. */
  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: ReadableStream<Uint8Array> | null, contentLength?: number, opts?: AbortOptions): Promise<PartRecord>;
  listParts(bucket: string, key: string, uploadId: string, q: { after?: number; limit: number }): Promise<{ upload: UploadRecord; parts: PartRecord[]; truncated: boolean }>;
  complete(bucket: string, key: string, uploadId: string, parts: CompletedPart[]): Promise<ObjectManifest>;
  abort(bucket: string, key: string, uploadId: string): Promise<void>;
  /** The upload, or NoSuchUpload unless it is in progress. */
  requireUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord>;
  listUploads(bucket: string, q: { prefix?: string; after?: string; limit: number }): Promise<{ uploads: UploadRecord[]; next: string | null }>;
}

/** Dependencies of multipart uploads. */
export interface MultipartDeps {
  self: string;
  objects: ObjectService;
  index: IndexClient;
  placement: Placement;
  hlc: Hlc;
  indexShards: number;
}

// Rows live beside the object's manifest, in the same shard (layout in metadata/keys.ts).
const partRow = (bucket: string, key: string, uploadId: string, partNumber: number) => uploadPartsPrefix(bucket, key, uploadId) + partRowSuffix(partNumber);

/** The S3 ETag of a multipart object: MD5 of the parts' binary MD5s, then "-N". */
export function multipartEtag(partEtags: string[]): string {
  const md5 = crypto.createHash("md5");
  for (const e of partEtags) md5.update(Buffer.from(e, "hex"));
  return `${md5.digest("hex")}-${partEtags.length}`;
}

/** Create the multipart service. */
export function createMultipart(deps: MultipartDeps): Multipart {
  const { index, objects } = deps;
  const listing: ListingDeps = { index, placement: deps.placement, self: deps.self };
  const now = () => encodeTimestamp(deps.hlc.now());
  const shardOf = (bucket: string, key: string) => objectShard(bucket, key, deps.indexShards);

  async function requireUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    validateKey(key);
    await objects.requireBucket(bucket);
    const entry = /^[0-9a-f]{32}$/.test(uploadId) ? ((await index.read(shardOf(bucket, key), uploadRow(bucket, key, uploadId))) as IndexEntry<UploadRecord> | null) : null;
    if (!entry?.value) throw new NotFoundError("The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", "NoSuchUpload");
    return entry.value;
  }

  async function allParts(bucket: string, key: string, uploadId: string): Promise<PartRecord[]> {
    return (await listAll<PartRecord>(listing, { shards: [shardOf(bucket, key)], rowPrefix: uploadPartsPrefix(bucket, key, uploadId) })).map((r) => r.value);
  }

  /** Tombstone the upload record and every part row (their chunks then age out through GC). */
  async function forget(bucket: string, key: string, uploadId: string, parts: PartRecord[]): Promise<void> {
    const shard = shardOf(bucket, key);
    await Promise.all(parts.map((p) => index.write(shard, partRow(bucket, key, uploadId, p.partNumber), { ts: now(), value: null })));
    await index.write(shard, uploadRow(bucket, key, uploadId), { ts: now(), value: null });
  }

  return {
    async create(bucket, key, init) {
      validateKey(key);
      await objects.requireBucket(bucket);
      const uploadId = crypto.randomBytes(16).toString("hex");
      const record: UploadRecord = { uploadId, key, initiated: Date.now(), ...init };
      await index.write(shardOf(bucket, key), uploadRow(bucket, key, uploadId), { ts: now(), value: record });
      return uploadId;
    },

    async uploadPart(bucket, key, uploadId, partNumber, body, contentLength, opts) {
      if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
        throw new BadRequestError(`Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, "InvalidArgument");
      }
      await requireUpload(bucket, key, uploadId);
      const stored = await objects.storeBody(body, contentLength, opts);
      const row = partRow(bucket, key, uploadId, partNumber);
      try {
        const part: PartRecord = { partNumber, size: stored.size, etag: stored.etag, lastModified: Date.now(), chunks: stored.chunks, holders: stored.holders };
        await index.write(shardOf(bucket, key), row, { ts: now(), value: part });
        // An abort or complete may have ended the upload while the body streamed in; then
        // this part would be seen by no one, and its chunks never collected.
        try {
          await requireUpload(bucket, key, uploadId);
        } catch (err) {
          await index.write(shardOf(bucket, key), row, { ts: now(), value: null });
          throw err;
        }
        return part;
      } finally {
        stored.release();
      }
    },

    async listParts(bucket, key, uploadId, q) {
      const upload = await requireUpload(bucket, key, uploadId);
      const page = await listMerged<PartRecord>(listing, {
        shards: [shardOf(bucket, key)],
        rowPrefix: uploadPartsPrefix(bucket, key, uploadId),
        prefix: "",
        limit: q.limit,
        after: q.after ? partRowSuffix(q.after) : undefined,
      });
      return { upload, parts: page.rows.map((r) => r.value), truncated: page.next !== null };
    },

    async complete(bucket, key, uploadId, wanted) {
      const upload = await requireUpload(bucket, key, uploadId);
      if (wanted.length === 0) throw new BadRequestError("You must specify at least one part", "MalformedXML");
      for (let i = 1; i < wanted.length; i++) {
        if (wanted[i].partNumber <= wanted[i - 1].partNumber) throw new BadRequestError("The list of parts was not in ascending order. The parts list must be specified in order by part number.", "InvalidPartOrder");
      }
      const stored = await allParts(bucket, key, uploadId);
      const byNumber = new Map(stored.map((p) => [p.partNumber, p]));
      const chosen = wanted.map((w, i) => {
        const p = byNumber.get(w.partNumber);
        const etag = w.etag.replace(/^"|"$/g, "").toLowerCase();
        if (!p || p.etag !== etag) {
          throw new BadRequestError(`One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. (part ${w.partNumber})`, "InvalidPart");
        }
        if (i < wanted.length - 1 && p.size < MIN_PART_BYTES) throw new BadRequestError(`Your proposed upload is smaller than the minimum allowed size (part ${w.partNumber} is ${p.size} bytes)`, "EntityTooSmall");
        return p;
      });
      const manifest: ObjectManifest = {
        size: chosen.reduce((n, p) => n + p.size, 0),
        etag: multipartEtag(chosen.map((p) => p.etag)),
        contentType: upload.contentType,
        meta: upload.meta,
        ...(upload.headers ? { headers: upload.headers } : {}),
        lastModified: Date.now(),
        chunkSize: chosen[0].chunks[0]?.size ?? 0,
        chunks: chosen.flatMap((p) => p.chunks),
        holders: chosen.flatMap((p) => p.holders),
      };
      // Manifest first: the chunks stay referenced throughout.
      await objects.writeManifest(bucket, key, manifest);
      await forget(bucket, key, uploadId, stored);
      return manifest;
    },

    requireUpload,

    async abort(bucket, key, uploadId) {
      await requireUpload(bucket, key, uploadId);
      await forget(bucket, key, uploadId, await allParts(bucket, key, uploadId));
    },

    async listUploads(bucket, q) {
      await objects.requireBucket(bucket);
      const page = await listMerged<UploadRecord>(listing, {
        shards: allObjectShards(deps.indexShards),
        rowPrefix: uploadRowPrefix(bucket),
        prefix: q.prefix ?? "",
        limit: q.limit,
        after: q.after,
      });
      return { uploads: page.rows.map((r) => r.value), next: page.next };
    },
  };
}
