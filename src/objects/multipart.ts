// Multipart uploads (S3's Create / UploadPart / Complete / Abort / ListParts /
// ListMultipartUploads). An upload and its parts are rows of the object's own index
// shard, so they replicate and heal like manifests, and a part's chunks are referenced
// (safe from GC) from the moment its row is written. Complete writes one manifest that
// lists every part's chunks in order: no bytes are copied.
//
// Abort and Complete of one upload may race (a client's Complete against the expiry
// worker, or against the client's own Abort), and exactly one of them may win. There is no
// coordinator and an index row is a last-writer-wins register, so each side first raises
// its own flag row (uploadDecisionRow) by a quorum write, then reads the other side's flag
// and the upload row by quorum reads. With write and read quorums overlapping, of two
// sides that raced at least one sees the other's flag (Dekker's handshake). A Complete that
// sees an abort's flag, or no upload any more, backs off (NoSuchUpload) and lowers its
// flag. An abort that sees a Complete's flag keeps its own raised and waits (bounded) for
// that flag to go: the Complete either saw the abort's flag and backed off (the upload is
// still there: the abort wins) or goes through (the upload is gone: the abort finds
// nothing). So exactly one of the two wins. A winner removes the upload row before its part rows (an UploadPart
// that lands meanwhile sees the upload gone and removes its own row), then its flag.
// A Complete keeps its parts' chunks pinned here (safe from GC) until the manifest that
// references them is written, so an abort's removal of the part rows never exposes them.
//
// A Complete leaves a small record of what it completed (completedUploadRow: ETag and size)
// before it removes the upload row, kept for `completedKeepMs` (the multipart expiry age;
// the expiry worker removes older ones). A Complete repeated in that time (a client that
// retried after losing the answer) finds the record and answers the same result, as S3 does.
import crypto from "node:crypto";
import type { AbortOptions } from "@libp2p/interface";
import { BadRequestError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { allObjectShards, completedUploadRow, objectShard, partRowSuffix, uploadDecisionRow, uploadPartsPrefix, uploadRow, uploadRowPrefix, validateKey } from "../metadata/keys.ts";
import { listAll, listMerged, type ListingDeps } from "../metadata/listing.ts";
import type { ChunkRef, IndexEntry, ObjectIntegrity, ObjectManifest, SseInfo, SseKind } from "../metadata/types.ts";
import type { ObjectKey } from "./sse-seal.ts";
import type { Placement } from "../placement/placement.ts";
import { encodeTimestamp, type Hlc } from "../util/hlc.ts";
import { sleep } from "../util/sleep.ts";
import type { ObjectService, ObjectWrite } from "./object-service.ts";
import type { ChecksumAlgorithm } from "./checksums.ts";
import { completeIntegrity, partChecksum, type CompleteChecksums, type SentChecksum, type UploadChecksum } from "./multipart-checksums.ts";

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
  /** The checksum algorithm and type the upload was created with (S3's x-amz-checksum-algorithm / -type). */
  checksum?: UploadChecksum;
  /** An encrypted upload (SSE): its data key, wrapped; every part is sealed with it, and the object gets it. */
  sse?: SseInfo;
  /** The object's tags (x-amz-tagging on CreateMultipartUpload), kept to the Complete. */
  tags?: Record<string, string>;
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
  /** The part's checksum (base64) in its upload's algorithm, when the upload has one. */
  checksum?: string;
}

/** What a Complete answers with (and what its record keeps for a repeated Complete). */
export interface CompletedUpload {
  etag: string;
  size: number;
  /** When it was completed (epoch ms). */
  completedMs: number;
  /** Set when this answers a repeated Complete from the record of the first. */
  repeated?: boolean;
  /** The object's checksum and part layout (src/objects/checksums.ts). */
  integrity?: ObjectIntegrity;
  /** The object's encryption at rest, if any. */
  sse?: SseKind;
  /** The version made, in a versioned bucket. */
  versionId?: string;
}

/** What an UploadPart may carry besides its body. */
export interface PartOptions extends AbortOptions {
  /** The checksum the request carried (header or trailer). */
  sent?: SentChecksum;
  /**
   * The key to seal the part with, given the upload (its `sse`): the caller opens the upload's
   * data key (SSE-C: with the key the request carries) or throws if the request cannot.
   */
  seal?: (upload: UploadRecord) => ObjectKey | undefined;
}

/** What a client lists in CompleteMultipartUpload. */
export interface CompletedPart {
  partNumber: number;
  etag: string;
  /** The part's checksums as listed (Checksum<ALG> fields), checked against the stored one. */
  checksums?: Partial<Record<ChecksumAlgorithm, string>>;
}

/** Multipart uploads as one peer serves them. */
export interface Multipart {
  create(bucket: string, key: string, init: Omit<UploadRecord, "uploadId" | "key" | "initiated">): Promise<string>;
  /** Store a part's body; `opts.signal` (the client went away) stops its chunk calls; `opts.sent`: the checksum the request carried. */
  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: ReadableStream<Uint8Array> | null, contentLength?: number, opts?: PartOptions): Promise<PartRecord>;
  listParts(bucket: string, key: string, uploadId: string, q: { after?: number; limit: number }): Promise<{ upload: UploadRecord; parts: PartRecord[]; truncated: boolean }>;
  /** Complete the upload; a repeat of a Complete done within `completedKeepMs` with the same parts answers its result again. `objectChecksum`: a whole-object checksum or type the request sent in headers, checked before anything is written. */
  complete(bucket: string, key: string, uploadId: string, parts: CompletedPart[], ctx?: ObjectWrite, objectChecksum?: Omit<CompleteChecksums, "parts">): Promise<CompletedUpload>;
  /** Remove a completed-upload record (the expiry worker, once it is older than `completedKeepMs`). */
  forgetCompleted(bucket: string, key: string, uploadId: string, opts?: AbortOptions): Promise<void>;
  abort(bucket: string, key: string, uploadId: string): Promise<void>;
  /**
   * Abort an upload found too old (the expiry worker): "aborted" if this call aborted it,
   * "gone" if it was no longer there, "completing" if a Complete holds it (a later pass looks again).
   */
  expire(bucket: string, key: string, uploadId: string, opts?: AbortOptions): Promise<"aborted" | "gone" | "completing">;
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
  /** How long a Complete's record answers repeats (the multipart expiry age); 0 or absent: no record, a repeat is NoSuchUpload. */
  completedKeepMs?: number;
  /** Wall clock (tests inject one). */
  clock?: () => number;
}

// Rows live beside the object's manifest, in the same shard (layout in metadata/keys.ts).
const partRow = (bucket: string, key: string, uploadId: string, partNumber: number) => uploadPartsPrefix(bucket, key, uploadId) + partRowSuffix(partNumber);

/** A flag older than this was left by a peer that stopped mid-way: a Complete takes far less. */
export const STALE_DECISION_MS = 15 * 60_000;

/** How long an abort waits for a Complete in flight to finish or back off. */
const DECISION_WAIT_MS = 10_000;
/** How often it looks meanwhile. */
const DECISION_POLL_MS = 50;

/** What a decision flag row holds. */
interface DecisionFlag {
  atMs: number;
}

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
  const keepMs = deps.completedKeepMs ?? 0;
  const clock = deps.clock ?? Date.now;

  async function requireUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    validateKey(key);
    await objects.requireBucket(bucket);
    const entry = /^[0-9a-f]{32}$/.test(uploadId) ? ((await index.read(shardOf(bucket, key), uploadRow(bucket, key, uploadId))) as IndexEntry<UploadRecord> | null) : null;
    if (!entry?.value) throw new NotFoundError("The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", "NoSuchUpload");
    return entry.value;
  }

  /**
   * The result of a Complete of this upload done within `keepMs`, if `wanted` names the same
   * parts (their ETags give the same multipart ETag); undefined otherwise.
   */
  async function completedBefore(bucket: string, key: string, uploadId: string, wanted: CompletedPart[]): Promise<CompletedUpload | undefined> {
    if (keepMs <= 0 || wanted.length === 0 || !/^[0-9a-f]{32}$/.test(uploadId)) return undefined;
    const entry = (await index.read(shardOf(bucket, key), completedUploadRow(bucket, key, uploadId))) as IndexEntry<CompletedUpload> | null;
    const done = entry?.value;
    if (!done || clock() - done.completedMs > keepMs) return undefined;
    const etags = wanted.map((w) => w.etag.replace(/^"|"$/g, "").toLowerCase());
    if (!etags.every((e) => /^[0-9a-f]{32}$/.test(e)) || multipartEtag(etags) !== done.etag) return undefined;
    return { ...done, repeated: true };
  }

  async function allParts(bucket: string, key: string, uploadId: string): Promise<PartRecord[]> {
    return (await listAll<PartRecord>(listing, { shards: [shardOf(bucket, key)], rowPrefix: uploadPartsPrefix(bucket, key, uploadId) })).map((r) => r.value);
  }

  /**
   * Tombstone the upload record, then every part row then listed (their chunks then age
   * out through GC), then the winner's flag. The upload row goes first: an UploadPart
   * writes its part row and then checks the upload, so either its part is listed here or it
   * sees the upload gone and removes the row itself.
   */
  async function forget(bucket: string, key: string, uploadId: string, side: "abort" | "complete", opts?: AbortOptions): Promise<number> {
    const shard = shardOf(bucket, key);
    await index.write(shard, uploadRow(bucket, key, uploadId), { ts: now(), value: null }, opts);
    const parts = await allParts(bucket, key, uploadId);
    await Promise.all(parts.map((p) => index.write(shard, partRow(bucket, key, uploadId, p.partNumber), { ts: now(), value: null }, opts)));
    await index.write(shard, uploadDecisionRow(bucket, key, uploadId, side), { ts: now(), value: null }, opts);
    return parts.length;
  }

  /**
   * Raise `side`'s flag, then look for the other side's flag and for the upload: true if
   * `side` may go on (it must then `forget`). On false the flag is lowered again. An
   * abort's flag always holds a Complete back (the next expiry pass finishes that abort);
   * an abort waits for a Complete's flag to go, up to DECISION_WAIT_MS, and ignores one
   * older than STALE_DECISION_MS (its peer stopped mid-way; a manifest it wrote keeps its
   * chunks anyway).
   */
  async function claim(bucket: string, key: string, uploadId: string, side: "abort" | "complete", opts?: AbortOptions): Promise<boolean> {
    const shard = shardOf(bucket, key);
    const mine = uploadDecisionRow(bucket, key, uploadId, side);
    const theirs = uploadDecisionRow(bucket, key, uploadId, side === "abort" ? "complete" : "abort");
    await index.write(shard, mine, { ts: now(), value: { atMs: Date.now() } satisfies DecisionFlag }, opts);
    const giveUpAt = Date.now() + DECISION_WAIT_MS;
    let held = true;
    for (;;) {
      const other = (await index.read(shard, theirs, opts)) as IndexEntry<DecisionFlag> | null;
      held = !!other?.value && (side === "complete" || Date.now() - other.value.atMs < STALE_DECISION_MS);
      if (!held || side === "complete" || Date.now() >= giveUpAt || opts?.signal?.aborted) break;
      await sleep(DECISION_POLL_MS, opts?.signal);
    }
    // Read after the other flag: a winner lowers its flag only after removing the upload row.
    const won = !held && !!(await index.read(shard, uploadRow(bucket, key, uploadId), opts))?.value;
    if (!won) await index.write(shard, mine, { ts: now(), value: null }, opts);
    return won;
  }

  return {
    async create(bucket, key, init) {
      validateKey(key);
      await objects.requireBucket(bucket);
      await objects.checkMeta(bucket, init.meta);
      const uploadId = crypto.randomBytes(16).toString("hex");
      // An upload that names no encryption gets the bucket's default, as a PUT does.
      const sse = init.sse ?? ((await objects.settings.encryption.get(bucket)) ? objects.newKey("S3").info : undefined);
      const record: UploadRecord = { uploadId, key, initiated: Date.now(), ...init, ...(sse && { sse }) };
      await index.write(shardOf(bucket, key), uploadRow(bucket, key, uploadId), { ts: now(), value: record });
      return uploadId;
    },

    async uploadPart(bucket, key, uploadId, partNumber, body, contentLength, opts) {
      if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
        throw new BadRequestError(`Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, "InvalidArgument");
      }
      const upload = await requireUpload(bucket, key, uploadId);
      const summed = partChecksum(upload.checksum, body, opts?.sent);
      // SSE-S3 parts need nothing from the request; SSE-C parts need the request's key (the caller opens it).
      const sealKey = opts?.seal ? opts.seal(upload) : upload.sse?.kind === "S3" ? objects.openKey(upload.sse) : undefined;
      if (upload.sse && !sealKey) throw new BadRequestError("this upload is encrypted: its parts need its key", "InvalidRequest");
      const stored = await objects.storeBody(summed.body, contentLength, { signal: opts?.signal, ...(sealKey && { seal: { key: sealKey, part: partNumber } }) });
      const row = partRow(bucket, key, uploadId, partNumber);
      try {
        const checksum = summed.value();
        const part: PartRecord = { partNumber, size: stored.size, etag: stored.etag, lastModified: Date.now(), chunks: stored.chunks, holders: stored.holders, ...(checksum ? { checksum } : {}) };
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

    async complete(bucket, key, uploadId, wanted, ctx, objectChecksum) {
      let upload: UploadRecord;
      try {
        upload = await requireUpload(bucket, key, uploadId);
      } catch (err) {
        const done = err instanceof NotFoundError && err.code === "NoSuchUpload" ? await completedBefore(bucket, key, uploadId, wanted) : undefined;
        if (done) return done;
        throw err;
      }
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
        integrity: await completeIntegrity(upload.checksum, chosen, { parts: wanted.map((w) => w.checksums ?? {}), ...objectChecksum }),
        // Each part's chunks were sealed naming their part: the object keeps where each part starts.
        ...(upload.sse ? { sse: { ...upload.sse, parts: chosen.map((p): [number, number] => [p.partNumber, p.chunks.length]) } } : {}),
        ...(upload.tags && Object.keys(upload.tags).length ? { tags: upload.tags } : {}),
      };
      let made: string | undefined;
      // Pinned until the manifest references them: an abort may remove the part rows meanwhile.
      const unpin = objects.pin(manifest.chunks.map((c) => c.id));
      try {
        if (!(await claim(bucket, key, uploadId, "complete"))) {
          throw new NotFoundError("The specified upload does not exist. The upload may have been aborted or completed.", "NoSuchUpload");
        }
        let versionId: string | undefined;
        try {
          versionId = await objects.writeManifest(bucket, key, manifest, ctx);
        } catch (err) {
          // The upload stays open for a retry; a manifest that reached some replica references its chunks anyway.
          await index.write(shardOf(bucket, key), uploadDecisionRow(bucket, key, uploadId, "complete"), { ts: now(), value: null }).catch(() => {});
          throw err;
        }
        made = versionId;
      } finally {
        unpin();
      }
      const result: CompletedUpload = {
        etag: manifest.etag,
        size: manifest.size,
        completedMs: clock(),
        ...(manifest.integrity && { integrity: manifest.integrity }),
        ...(manifest.sse && { sse: manifest.sse.kind }),
        ...(made !== undefined && { versionId: made }),
      };
      // Before the upload row goes: a repeat that no longer finds the upload finds this.
      if (keepMs > 0) await index.write(shardOf(bucket, key), completedUploadRow(bucket, key, uploadId), { ts: now(), value: result });
      await forget(bucket, key, uploadId, "complete");
      return result;
    },

    async forgetCompleted(bucket, key, uploadId, opts) {
      await index.write(shardOf(bucket, key), completedUploadRow(bucket, key, uploadId), { ts: now(), value: null }, opts);
    },

    requireUpload,

    async abort(bucket, key, uploadId) {
      await requireUpload(bucket, key, uploadId);
      if (!(await claim(bucket, key, uploadId, "abort"))) {
        throw new NotFoundError("The specified upload does not exist. The upload is being completed.", "NoSuchUpload");
      }
      await forget(bucket, key, uploadId, "abort");
    },

    async expire(bucket, key, uploadId, opts) {
      const shard = shardOf(bucket, key);
      if (!(await index.read(shard, uploadRow(bucket, key, uploadId), opts))?.value) return "gone";
      if (!(await claim(bucket, key, uploadId, "abort", opts))) {
        return (await index.read(shard, uploadRow(bucket, key, uploadId), opts))?.value ? "completing" : "gone";
      }
      await forget(bucket, key, uploadId, "abort", opts);
      return "aborted";
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
