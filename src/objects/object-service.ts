// Buckets and objects on the mesh: uploads are cut into chunks as they stream in, each
// chunk stored on its ring owners; the manifest goes to the object's index shard once a
// quorum holds every chunk. Downloads stream chunks back with a few fetched ahead.
import type { AbortOptions } from "@libp2p/interface";
import { Type } from "@sinclair/typebox";
import { BadRequestError, ConflictError, MeshError, NotFoundError } from "../errors.ts";
import { createBucketSettings, type BucketSetting, type BucketSettingValues } from "./bucket-settings.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import {
  allObjectShards,
  BUCKETS_SHARD,
  keyOfUploadRow,
  objectRow,
  objectRowPrefix,
  objectShard,
  partRowPrefix,
  BUCKET_SIDE_ROW,
  eventRow,
  notificationsRow,
  originRow,
  schemaRow,
  uploadRowPrefix,
  validateBucketName,
  validateKey,
  versionRow,
} from "../metadata/keys.ts";
import { AFTER_PREFIX, listAll, listMerged, listPages, type ListingDeps } from "../metadata/listing.ts";
import type { SharedCaches } from "../metadata/shared-cache.ts";
import type { ManifestCache } from "../cache/manifest-cache.ts";
import type { ScanRow } from "../store/index-store.ts";
import type { Consensus } from "../metadata/consensus.ts";
import { conditionFailure, isConditional, type WriteCondition } from "./conditions.ts";
import type { BucketInfo, ChunkRef, IndexEntry, ObjectIntegrity, ObjectManifest, OriginStamp, SseInfo, SseKind } from "../metadata/types.ts";
import type { Placement } from "../placement/placement.ts";
import { sha256Hex } from "../store/chunk-store.ts";
import { encodeTimestamp, type Hlc } from "../util/hlc.ts";
import type { ChunkClient } from "./chunk-client.ts";
import type { EventName, LoggedEvent, WriteContext } from "../changes/records.ts";
import type { BucketOwnership } from "../auth/guard.ts";
import { chunkPlaces, SEAL_OVERHEAD, WrongKeyError, type ObjectKey, type SseKeyring } from "./sse-seal.ts";
import { NULL_VERSION } from "./version-id.ts";
import { createVersions, deletedKey, deleteMarkerNotAllowed, type DeletedVersion, type VersionPage, type VersionQuery, type VersioningStatus } from "./versions.ts";
import { isDeleteMarker, type VersioningState } from "../metadata/types.ts";

/** What a PUT needs besides the body. */
/** Who writes, and what the write requires of the object it replaces (S3's conditional writes). */
export interface ObjectWrite extends WriteContext {
  /** Decided among the key's index replicas by a consensus round (src/metadata/consensus.ts). */
  condition?: WriteCondition;
}

export interface PutOptions extends ObjectWrite {
  /** Declared Content-Length, checked against the bytes received. */
  contentLength?: number;
  contentType?: string;
  meta?: Record<string, string>;
  /** Stored response headers (cache-control, content-disposition, ...). */
  headers?: Record<string, string>;
  /** Aborted when the client goes away: the upload's chunk and index calls stop. */
  signal?: AbortSignal;
  /**
   * Written in the same turn as the manifest, so its rows share the manifest's batches to
   * each replica (one round trip, one group commit): the upload's record of success. If
   * the manifest write then fails, the caller records that, later and so newer.
   */
  alongside?: (stored: { size: number; etag: string }) => Promise<void>;
  /** A copy pulled from the bucket's origin: its freshness, kept in the manifest. */
  origin?: OriginStamp;
  /**
   * Told of each chunk once every owner has answered for it (`slot`: its place in the body;
   * slots may settle out of order): a fill's joiners read the body from these as it is stored.
   */
  onChunkStored?: (slot: number, ref: ChunkRef, holders: string[]) => void;
  /** The upload's checksum to keep, asked once the whole body has been read (and verified). */
  integrity?: () => ObjectIntegrity | undefined;
  /** Encrypt at rest (SSE): every chunk and an inline body are sealed with this key here, before they leave. */
  seal?: ObjectKey;
  /** The object's tags (S3's x-amz-tagging), checked by the caller; kept in the manifest. */
  tags?: Record<string, string>;
}

/** How a body stored alone (a multipart part) is sealed: the upload's key, and the part it is. */
export interface PartSeal {
  key: ObjectKey;
  part: number;
}

/** What a read of an object may carry besides its range. */
export interface ReadOptions extends AbortOptions {
  /** `manifest` lists some chunks of a larger object (a fill's joiner reads them so), none of them a small object's. */
  part?: boolean;
  /** The data key of an encrypted object (SSE-C needs the caller's; SSE-S3 objects are opened with the mesh key without it). */
  key?: ObjectKey;
}

/** A body stored as chunks, not yet referenced by any manifest (a multipart part). */
export interface StoredBody {
  size: number;
  /** MD5 hex of the bytes. */
  etag: string;
  chunks: ChunkRef[];
  holders: string[][];
  /** Let GC see the chunks again; call once a manifest or part record references them. */
  release(): void;
}

/** What a PUT answers. */
export interface PutResult {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  contentType: string;
  /** The manifest's modification time (epoch ms). */
  lastModified?: number;
  /** Set when the object was encrypted at rest (asked for, or the bucket's default). */
  sse?: SseKind;
  /** The version written, in a versioned bucket ("null" while versioning is suspended). */
  versionId?: string;
}

/** A read of one version (absent: the current one). */
export interface VersionRead extends AbortOptions {
  versionId?: string;
}

/** What a DELETE did in a versioned bucket (nothing is said for a bucket never versioned). */
export interface DeleteResult {
  /** The version made (a delete marker) or removed. */
  versionId?: string;
  /** A delete marker was made, or the version removed was one. */
  deleteMarker?: boolean;
}

/** One object in a listing. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

/** An object as an origin sync sees it in the mesh. */
export interface MarkedObject {
  key: string;
  etag: string;
  /** The remote's ETag for a copy fetched from the origin. */
  originEtag?: string;
  /** Set when imported by a sync and not fetched yet: the remote's ETag then. */
  remote?: { etag?: string };
  /** Neither imported nor fetched from the origin: written in the mesh (a sync leaves it alone). */
  local: boolean;
}

/** Where an object lives. */
export interface Location {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  inline: boolean;
  chunks: Array<{ id: string; size: number; expected: string[]; holders: string[] }>;
  shard: { id: string; replicas: string[]; holders: string[] };
}

/** The object store as one peer serves it. */
export interface ObjectService {
  /**
   * Create the bucket, owned by `owner` (an access key id; none: owned by no key), unless it
   * exists: then `created` is false and `owner` is the existing bucket's.
   */
  createBucket(name: string, ctx?: WriteContext, owner?: string): Promise<{ bucket: string; created: boolean; owner?: string }>;
  deleteBucket(name: string, ctx?: WriteContext): Promise<void>;
  listBuckets(): Promise<Array<{ name: string; createdMs: number; owner?: string }>>;
  /** The bucket's owner (`owner` undefined: a bucket from before owners), or null if it does not exist (cached like requireBucket). */
  bucketOwner(name: string, opts?: AbortOptions): Promise<BucketOwnership>;
  putObject(bucket: string, key: string, body: ReadableStream<Uint8Array> | null, opts: PutOptions): Promise<PutResult>;
  /**
   * The live manifest (or with `opts.versionId` that version's), or NoSuchBucket / NoSuchKey
   * (with x-amz-delete-marker when a delete marker is current) / NoSuchVersion, or
   * MethodNotAllowed for a version that is a delete marker.
   */
  headObject(bucket: string, key: string, opts?: VersionRead): Promise<ObjectManifest>;
  /**
   * Bytes [start, end) of an object as a stream. The first chunk is fetched before this resolves; `opts.signal` stops the fetches.
   * `opts.part`: `manifest` lists some chunks of a larger object (a fill's joiner reads them so), none of them a small object's.
   */
  readObject(manifest: ObjectManifest, start: number, end: number, opts?: ReadOptions): Promise<ReadableStream<Uint8Array>>;
  /** Delete the object (in a versioned bucket: make a delete marker current), or with `versionId` remove that version for good. */
  deleteObject(bucket: string, key: string, ctx?: ObjectWrite & { versionId?: string }): Promise<DeleteResult>;
  /** A new object sharing `source`'s chunks (chunks are immutable, so nothing is copied). */
  /** `tags`: the copy's tags (none: the source's are kept; an empty set: the copy has none). */
  copyObject(source: ObjectManifest, bucket: string, key: string, changes?: Pick<ObjectManifest, "contentType" | "meta" | "headers">, ctx?: ObjectWrite, tags?: Record<string, string>): Promise<ObjectManifest>;
  /** Store a body as chunks only, never inline (multipart parts). */
  storeBody(body: ReadableStream<Uint8Array> | null, contentLength?: number, opts?: AbortOptions & { seal?: PartSeal }): Promise<StoredBody>;
  /** Make `manifest` the current version of bucket/key (the bucket must exist): a multipart upload completed. Answers the version made, in a versioned bucket. */
  writeManifest(bucket: string, key: string, manifest: ObjectManifest, ctx?: ObjectWrite): Promise<string | undefined>;
  /**
   * Write `manifest` again with a new origin stamp (a revalidated copy is fresh again). No
   * change event: the object's bytes did not change.
   */
  restamp(bucket: string, key: string, manifest: ObjectManifest, origin: OriginStamp): Promise<void>;
  /**
   * Write the manifest of an object imported from the bucket's origin (bytes not kept yet,
   * `remote` set) with its ObjectCreated:Mirror event (src/remotes/origin-sync.ts).
   */
  importManifest(bucket: string, key: string, manifest: ObjectManifest): Promise<void>;
  /** A page of the bucket's objects with what an origin sync compares: ETag and origin marks (keys after `after`, in order). */
  listMarks(bucket: string, q: { prefix?: string; after?: string; limit?: number }): Promise<{ objects: MarkedObject[]; next: string | null }>;
  /** Throw NoSuchBucket unless the bucket exists. */
  requireBucket(name: string, opts?: AbortOptions): Promise<void>;
  /** Throw InvalidArgument, naming the field, if `meta` does not fit the bucket's search schema. */
  checkMeta(bucket: string, meta: Record<string, string>, opts?: AbortOptions): Promise<void>;
  listObjects(bucket: string, q: { prefix?: string; delimiter?: string; limit?: number; after?: string }): Promise<{ objects: ListedObject[]; prefixes: string[]; next: string | null }>;
  locate(bucket: string, key: string): Promise<Location>;
  /** Chunk ids of uploads in progress here (not yet in any manifest; GC must keep them). */
  uploading(): Iterable<string>;
  /** Keep `ids` from GC as if uploading here, until the returned function is called (a multipart Complete in flight). */
  pin(ids: string[]): () => void;
  /** A fresh data key for a new encrypted object (SSE-C: `customerKey` is the request's 32-byte key). */
  newKey(kind: SseKind, customerKey?: Uint8Array): ObjectKey;
  /** The data key of a stored object or upload; AccessDenied if `customerKey` (SSE-C) is not the one it was stored with. */
  openKey(info: SseInfo, customerKey?: Uint8Array): ObjectKey;
  /**
   * The bucket's settings S3 configures as one document each: default encryption, tags, CORS
   * rules and lifecycle rules (the lifecycle worker of every peer reads those from its replica
   * of the buckets shard). NoSuchBucket when the bucket does not exist.
   */
  readonly settings: { [K in keyof BucketSettingValues]: Pick<BucketSetting<BucketSettingValues[K]>, "get" | "set"> };
  /**
   * Replace an object's tags (an empty set or null: remove them) by writing its manifest again
   * with the same chunks, through the normal index write, with an ObjectTagging:Put or :Delete
   * event. NoSuchKey if there is no object. Returns the manifest written.
   */
  setObjectTags(bucket: string, key: string, tags: Record<string, string> | null, ctx?: WriteContext & AbortOptions): Promise<ObjectManifest>;
  /** The bucket's versioning status (null: never versioned). */
  bucketVersioning(bucket: string, opts?: AbortOptions): Promise<VersioningStatus>;
  /** Enable or suspend versioning. */
  setBucketVersioning(bucket: string, status: VersioningState["status"]): Promise<void>;
  /** A page of ListObjectVersions: every version and delete marker, or in a bucket never versioned each current object as version "null". */
  listVersions(bucket: string, q: VersionQuery): Promise<VersionPage>;
}

/** Dependencies of the object service. */
export interface ObjectServiceDeps {
  self: string;
  index: IndexClient;
  chunks: ChunkClient;
  placement: Placement;
  hlc: Hlc;
  chunkSize: number;
  inlineMaxBytes: number;
  indexShards: number;
  /** Peers to ask in locate (every member believed alive, and this peer). */
  livePeers(): string[];
  /** Where the "buckets" cache lives (a deleted bucket is forgotten mesh-wide through it). */
  caches: SharedCaches;
  /** Conditional writes: a consensus round among the key's index replicas (src/metadata/consensus.ts). */
  consensus: Pick<Consensus, "decide">;
  /** Manifests under read leases (src/cache/manifest-cache.ts): how object reads find their manifest. */
  manifests: Pick<ManifestCache, "read">;
  /**
   * Reserve memory for an upload's buffers before it reads its body; resolves to the
   * function that gives it back, or throws (SlowDown) when none frees up in time.
   */
  reserveUploadMemory?(bytes: number): Promise<() => void>;
  /** The bucket's search schema (src/search/): metadata that does not fit it is refused before anything is stored. */
  metadata?: MetadataRules;
  /** The mesh's SSE keys (src/objects/sse-seal.ts): without them an SSE-S3 object cannot be read. */
  sse?: SseKeyring;
}

/** What the object service asks of the search schemas. */
export interface MetadataRules {
  /** Throw InvalidArgument, naming the field, if `meta` has a value its bucket's schema cannot type. */
  checkMeta(bucket: string, meta: Record<string, string>, opts?: AbortOptions): Promise<void>;
  /** The bucket was deleted, and its schema with it. */
  forgetSchema(bucket: string): Promise<void>;
}

/**
 * Chunks of one upload in flight at once (each on its way to RF owners): bounds memory per
 * request. 2 moves as fast as 4 did on the bench (CPU, not latency, is the limit) with
 * 60-80 MB less peak RSS at four uploads in flight.
 */
const UPLOAD_WINDOW = 2;
/** Chunks a download fetches ahead of the one being sent (2: same speed as 3, less memory). */
const READ_AHEAD = 2;
/** How long a peer trusts that a bucket it has seen still exists. */
const BUCKET_CACHE_MS = 2000;
/**
 * Bodies declared at most this long are not counted against the upload memory budget:
 * their buffers are sized to them, and --max-inflight already bounds how many there are
 * (256 x 2 x 64 KiB = 32 MiB). Small requests never wait behind a line of large uploads.
 */
const SMALL_BODY_BYTES = 64 * 1024;
/** Buckets remembered as existing, at most (only ones that exist are remembered). */
const BUCKET_CACHE_MAX = 10_000;
/** How many times a tag change is tried again when the object changes under it. */
const TAG_ATTEMPTS = 3;

/** A read of an object whose bytes were imported by a sync and never fetched from the origin. */
const notKept = () => new MeshError("OriginError", "the object's bytes are still at the bucket's origin: read it once (GET) to fetch them");

/** Create the object service. */
export function createObjectService(deps: ObjectServiceDeps): ObjectService {
  const { index, chunks, hlc } = deps;
  const objectShards = allObjectShards(deps.indexShards);
  const listing: ListingDeps = { index, placement: deps.placement, self: deps.self };
  // Only buckets that exist are remembered: a bucket created through another peer is seen at once.
  const knownBuckets = deps.caches.define<BucketInfo>("buckets", { max: BUCKET_CACHE_MAX, ttlMs: BUCKET_CACHE_MS, key: Type.String({ minLength: 1, maxLength: 63 }) });
  const now = () => encodeTimestamp(hlc.now());
  const settings = createBucketSettings({ index, caches: deps.caches, now });
  const versions = createVersions({ index, listing, indexShards: deps.indexShards, caches: deps.caches, now, readCurrent: (shard, row, opts) => deps.manifests.read(shard, row, opts) });
  const inProgress = new Map<string, number>();
  const hold = (id: string) => inProgress.set(id, (inProgress.get(id) ?? 0) + 1);
  const release = (ids: Iterable<string>) => {
    for (const id of ids) {
      const n = (inProgress.get(id) ?? 1) - 1;
      if (n <= 0) inProgress.delete(id);
      else inProgress.set(id, n);
    }
  };

  /** The bucket's row, or null if it does not exist (remembered for a moment when it does). */
  function bucketInfo(name: string, opts: AbortOptions = {}): Promise<BucketInfo | null> {
    return knownBuckets.get(name, async () => ((await index.read(BUCKETS_SHARD, name, opts))?.value as BucketInfo | null | undefined) ?? null);
  }

  async function requireBucket(name: string, opts: AbortOptions = {}): Promise<void> {
    validateBucketName(name);
    if (!(await bucketInfo(name, opts))) throw new NotFoundError(`bucket ${name} does not exist`, "NoSuchBucket");
  }

  /** A bucket setting whose reads and writes answer NoSuchBucket for a bucket that does not exist. */
  function checked<T>(setting: BucketSetting<T>): Pick<BucketSetting<T>, "get" | "set"> {
    return {
      async get(bucket, opts = {}) {
        await requireBucket(bucket, opts);
        return setting.get(bucket, opts);
      },
      async set(bucket, value) {
        await requireBucket(bucket);
        await setting.set(bucket, value);
      },
    };
  }

  async function liveManifest(bucket: string, key: string, opts: AbortOptions = {}): Promise<ObjectManifest> {
    validateKey(key);
    await requireBucket(bucket, opts);
    const shard = objectShard(bucket, key, deps.indexShards);
    const entry = (await deps.manifests.read(shard, objectRow(bucket, key), opts)) as IndexEntry<ObjectManifest> | null;
    if (!entry?.value) throw new NotFoundError(`no object ${key.slice(0, 200)} in bucket ${bucket}`, "NoSuchKey");
    return entry.value;
  }

  /** A version of an object, or the current one (S3's answers for delete markers and missing versions). */
  async function readVersion(bucket: string, key: string, opts: VersionRead = {}): Promise<ObjectManifest> {
    if (opts.versionId === undefined) {
      try {
        return await liveManifest(bucket, key, opts);
      } catch (err) {
        if (!(err instanceof MeshError) || err.code !== "NoSuchKey" || (await versions.status(bucket, opts)) === null) throw err;
        // A versioned key whose current version is a delete marker says so.
        const top = await versions.newest(bucket, key, opts);
        if (top && isDeleteMarker(top)) throw deletedKey(key, bucket, top.versionId);
        throw err;
      }
    }
    validateKey(key);
    await requireBucket(bucket, opts);
    const st = await versions.status(bucket, opts);
    // A bucket never versioned has only "null" versions: another id cannot be one of its (as S3 answers).
    if (st === null && opts.versionId !== NULL_VERSION) throw new BadRequestError("Invalid version id specified", "InvalidArgument");
    const v = await versions.get(bucket, key, opts.versionId, st, opts);
    if (!v) throw new NotFoundError("The specified version does not exist.", "NoSuchVersion");
    if (isDeleteMarker(v)) throw deleteMarkerNotAllowed(v.versionId, v.lastModified);
    return v;
  }

  /** The data key of encrypted object `m`: the caller's (SSE-C, opened with the customer key), else opened with the mesh key (SSE-S3). */
  function dataKeyOf(m: ObjectManifest, given: ObjectKey | undefined): ObjectKey {
    if (given) return given;
    if (m.sse?.kind !== "S3") throw new BadRequestError("The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.", "InvalidRequest");
    return openKey(m.sse);
  }

  function keyring(): SseKeyring {
    if (!deps.sse) throw new MeshError("NotImplemented", "this peer has no SSE keyring");
    return deps.sse;
  }

  function openKey(info: SseInfo, customerKey?: Uint8Array): ObjectKey {
    try {
      return keyring().open(info, customerKey);
    } catch (err) {
      if (!(err instanceof WrongKeyError)) throw err;
      if (info.kind === "C") throw new MeshError("AccessDenied", "The provided customer key does not match the key the object was stored with");
      throw new MeshError("InternalError", "the object's data key does not open with this mesh's key");
    }
  }

  /**
   * Read and store a body, with its buffers counted against the upload memory budget: at
   * most UPLOAD_WINDOW chunk-sized buffers (one filling, the rest on their way to owners).
   */
  async function upload(body: ReadableStream<Uint8Array> | null, contentLength: number | undefined, refs: ChunkRef[], allowInline = true, signal?: AbortSignal, onStored?: PutOptions["onChunkStored"], seal?: PartSeal) {
    const inFlight = new Set<Promise<void>>();
    const small = contentLength !== undefined && contentLength <= SMALL_BODY_BYTES;
    if (!body || small || !deps.reserveUploadMemory) return uploadWithin(body, contentLength, refs, allowInline, inFlight, signal, onStored, seal);
    const release = await deps.reserveUploadMemory(UPLOAD_WINDOW * Math.max(1, Math.min(deps.chunkSize, contentLength ?? deps.chunkSize)));
    try {
      return await uploadWithin(body, contentLength, refs, allowInline, inFlight, signal, onStored, seal);
    } finally {
      // A failed upload's chunks still on their way hold their buffers: the memory is free once they land.
      await Promise.all(inFlight);
      release();
    }
  }

  async function uploadWithin(body: ReadableStream<Uint8Array> | null, contentLength: number | undefined, refs: ChunkRef[], allowInline: boolean, inFlight: Set<Promise<void>>, signal: AbortSignal | undefined, onStored?: PutOptions["onChunkStored"], seal?: PartSeal) {
    const md5 = new Bun.CryptoHasher("md5");
    const holders: string[][] = [];
    let failure: Error | undefined;
    let size = 0;
    let consumed = 0;
    // Buffers are sized to what is still to come when the length is known: a 1 KiB PUT
    // must not allocate (and zero) a whole chunk. Without a length the first buffer starts
    // small and grows; once a whole chunk has come, later ones are chunk-sized at once.
    const capacity = () =>
      contentLength !== undefined ? Math.max(1, Math.min(deps.chunkSize, contentLength - consumed)) : consumed === 0 ? Math.min(deps.chunkSize, 64 * 1024) : deps.chunkSize;
    let buf = new Uint8Array(capacity());
    let fill = 0;
    let inline: Uint8Array | undefined;

    const flush = async (plain: Uint8Array) => {
      signal?.throwIfAborted();
      const slot = refs.length;
      // Sealed here, on the ingesting peer: no owner and no chunk file ever sees the plaintext.
      const bytes = seal ? seal.key.sealChunk(plain, seal.part, slot) : plain;
      const id = sha256Hex(bytes);
      hold(id);
      refs.push({ id, size: bytes.byteLength });
      const task = chunks.put(id, bytes, { signal }).then(
        async ({ settled }) => {
          // The window slot is held until every owner has finished, so slow replicas apply backpressure.
          holders[slot] = await settled;
          onStored?.(slot, refs[slot], holders[slot]);
        },
        (err: Error) => {
          failure ??= err;
        },
      );
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      while (inFlight.size >= UPLOAD_WINDOW) await Promise.race(inFlight);
      if (failure) throw failure;
    };

    if (body) {
      for await (const piece of body) {
        md5.update(piece);
        size += piece.byteLength;
        if (contentLength !== undefined && size > contentLength) throw new BadRequestError("body is longer than Content-Length", "IncompleteBody");
        let off = 0;
        while (off < piece.byteLength) {
          if (fill === buf.byteLength) {
            // Only without a length: grow towards a chunk.
            const bigger = new Uint8Array(Math.min(deps.chunkSize, buf.byteLength * 2));
            bigger.set(buf);
            buf = bigger;
          }
          const n = Math.min(piece.byteLength - off, buf.byteLength - fill);
          buf.set(piece.subarray(off, off + n), fill);
          fill += n;
          off += n;
          consumed += n;
          if (fill === deps.chunkSize) {
            await flush(buf);
            buf = new Uint8Array(capacity());
            fill = 0;
          }
        }
      }
    }
    if (contentLength !== undefined && size !== contentLength) {
      throw new BadRequestError(`received ${size} bytes but Content-Length said ${contentLength}`, "IncompleteBody");
    }
    if (allowInline && refs.length === 0 && fill <= deps.inlineMaxBytes) inline = seal ? seal.key.sealChunk(buf.subarray(0, fill), seal.part, 0) : buf.slice(0, fill);
    else if (fill > 0) await flush(buf.subarray(0, fill));
    await Promise.all(inFlight);
    if (failure) throw failure;
    const etag = md5.digest("hex");
    return { size, etag: seal ? seal.key.etag(etag) : etag, refs, holders, inline };
  }

  /** The body of a PUT; `held` collects the upload's chunks so GC leaves them alone meanwhile. */
  async function putHeld(bucket: string, key: string, body: ReadableStream<Uint8Array> | null, opts: PutOptions, held: ChunkRef[]): Promise<PutResult> {
    // A request that names no encryption gets the bucket's default, whichever API it came through. Not a
    // copy fetched from the bucket's origin: its fill's joiners read its chunks as they land, unsealed
    // (src/remotes/fill-join.ts), and its bytes are the origin's, kept in clear there anyway.
    const cachedSse = settings.encryption.peek(bucket);
    const defaultSse = opts.seal || opts.origin ? null : cachedSse ? cachedSse.value : await settings.encryption.get(bucket, opts);
    const seal = opts.seal ?? (defaultSse ? keyring().create("S3") : undefined);
    const up = await upload(body, opts.contentLength, held, true, opts.signal, opts.onChunkStored, seal && { key: seal, part: 0 });
    const contentType = opts.contentType || "application/octet-stream";
    const manifest: ObjectManifest = {
      size: up.size,
      etag: up.etag,
      contentType,
      meta: opts.meta ?? {},
      ...(opts.headers && Object.keys(opts.headers).length ? { headers: opts.headers } : {}),
      lastModified: Date.now(),
      chunkSize: deps.chunkSize,
      chunks: up.refs,
      ...(up.inline ? { inline: Buffer.from(up.inline).toString("base64") } : {}),
      ...(up.refs.length ? { holders: up.holders } : {}),
      ...(opts.origin ? { origin: opts.origin } : {}),
      ...(seal ? { sse: seal.info } : {}),
      ...(opts.tags && Object.keys(opts.tags).length ? { tags: opts.tags } : {}),
    };
    const integrity = opts.integrity?.();
    if (integrity) manifest.integrity = integrity;
    // A copy kept from the origin is a mirror's doing, not a client's PUT.
    const [versionId] = await Promise.all([writeManifest(bucket, key, manifest, opts.origin ? "ObjectCreated:Mirror" : "ObjectCreated:Put", opts), opts.alongside?.({ size: up.size, etag: up.etag })]);
    return { bucket, key, size: up.size, etag: up.etag, contentType, lastModified: manifest.lastModified, ...(seal && { sse: seal.info.kind }), ...(versionId !== undefined && { versionId }) };
  }

  const checkMeta = (bucket: string, meta: Record<string, string>, opts?: AbortOptions) => deps.metadata?.checkMeta(bucket, meta, opts) ?? Promise.resolve();

  /**
   * Write an object's row (a manifest, or null for a delete) with its change event in the
   * same batch on every replica; in a versioned bucket the version's rows ride along
   * (src/objects/versions.ts) and the version made is answered. A plain quorum write, or,
   * with a condition, a consensus round that checks it against the current object and
   * writes in one step (src/metadata/consensus.ts).
   */
  async function writeObjectRow(bucket: string, key: string, value: ObjectManifest | null, name: EventName, opts: AbortOptions & ObjectWrite = {}): Promise<string | undefined> {
    const shard = objectShard(bucket, key, deps.indexShards);
    const row = objectRow(bucket, key);
    // Held in memory on the hot path: no await for it.
    const st = versions.peekStatus(bucket) ?? (await versions.status(bucket, opts));
    /** The row and event of a write stamped `ts` in a bucket never versioned (a manifest copied from a versioned one does not bring its version along). */
    const plainRows = (ts: string) => {
      const { versionId: _v, ...plain } = value ?? ({} as Partial<ObjectManifest>);
      const event: LoggedEvent = { name: !value && opts.lifecycle ? "LifecycleExpiration:Delete" : name, key, ...(value && { size: value.size, etag: value.etag }), ...(opts.actor && { actor: opts.actor }) };
      return { write: value && (plain as ObjectManifest), companion: [eventRow(bucket, ts), { ts, value: event }] as ScanRow };
    };
    /** The rows of this write stamped `ts`. */
    const build = async (ts: string) => {
      if (st === null) return { ...plainRows(ts), extra: [] as ScanRow[], later: [] as ScanRow[], versionId: undefined };
      const plan = await versions.planWrite(bucket, key, ts, value, st, opts);
      const event: LoggedEvent = {
        name: value ? name : opts.lifecycle ? "LifecycleExpiration:DeleteMarkerCreated" : "ObjectRemoved:DeleteMarkerCreated",
        key,
        ...(value && { size: value.size, etag: value.etag }),
        versionId: plan.versionId,
        ...(opts.actor && { actor: opts.actor }),
      };
      return { write: plan.value, companion: [eventRow(bucket, ts), { ts, value: event }] as ScanRow, extra: plan.extra, later: plan.later, versionId: plan.versionId as string | undefined };
    };
    const condition = opts.condition;
    if (st === null && !isConditional(condition)) {
      // The common write (a bucket never versioned, no condition): one row and its event, nothing to wait for first.
      const ts = now();
      const plain = plainRows(ts);
      await index.write(shard, row, { ts, value: plain.write }, { signal: opts.signal, companion: plain.companion });
      return undefined;
    }
    let built: Awaited<ReturnType<typeof build>>;
    if (isConditional(condition)) {
      built = await deps.consensus.decide(
        shard,
        row,
        {
          check: (current) => conditionFailure(condition, (current?.value ?? null) as ObjectManifest | null, key),
          build: async (_current, ts) => {
            const b = await build(ts);
            return { write: b.write, companion: b.companion, extra: b.extra, result: b };
          },
        },
        { signal: opts.signal },
      );
    } else {
      const ts = now();
      built = await build(ts);
      await index.write(shard, row, { ts, value: built.write }, { signal: opts.signal, companion: built.companion, extra: built.extra });
    }
    for (const [later, entry] of built.later) await index.write(shard, later, entry, { signal: opts.signal });
    return built.versionId;
  }

  const writeManifest = (bucket: string, key: string, manifest: ObjectManifest, name: EventName, opts?: AbortOptions & ObjectWrite) => writeObjectRow(bucket, key, manifest, name, opts);

  /** Write a bucket's row (null: deleted) with its change event. */
  async function writeBucketRow(name: string, value: BucketInfo | null, ctx: WriteContext = {}): Promise<void> {
    const ts = now();
    const event: LoggedEvent = { name: value ? "BucketCreated" : "BucketRemoved", ...(ctx.actor && { actor: ctx.actor }) };
    await index.write(BUCKETS_SHARD, name, { ts, value }, { companion: [eventRow(name, ts), { ts, value: event }] });
  }

  return {
    async createBucket(name, ctx, owner) {
      validateBucketName(name);
      const existing = (await index.read(BUCKETS_SHARD, name))?.value as BucketInfo | null | undefined;
      if (existing) return { bucket: name, created: false, ...(existing.owner !== undefined && { owner: existing.owner }) };
      const info: BucketInfo = { createdMs: Date.now(), ...(owner !== undefined && { owner }) };
      // Two keys creating one name at once: a consensus round on the bucket's row makes exactly one the owner.
      let found: BucketInfo | undefined;
      const taken = new MeshError("BucketAlreadyExists", `bucket ${name} exists`);
      try {
        await deps.consensus.decide(BUCKETS_SHARD, name, {
          check: (cur) => ((found = (cur?.value ?? undefined) as BucketInfo | undefined) ? taken : undefined),
          // Outbid after our accept may have landed, by a row chosen since that is not ours: a creation is
          // only ever decided on an absent row, so a bucket there now is the other creator's.
          outbid: (chosen) => ((found = (chosen?.value ?? undefined) as BucketInfo | undefined) ? taken : undefined),
          build: (_cur, ts) => ({
            write: info,
            companion: [eventRow(name, ts), { ts, value: { name: "BucketCreated", ...(ctx?.actor && { actor: ctx.actor }) } satisfies LoggedEvent }],
            result: undefined,
          }),
        });
      } catch (err) {
        if (err !== taken || !found) throw err;
        return { bucket: name, created: false, ...(found.owner !== undefined && { owner: found.owner }) };
      }
      knownBuckets.remember(name, info);
      return { bucket: name, created: true, ...(owner !== undefined && { owner }) };
    },

    async bucketOwner(name, opts) {
      const info = await bucketInfo(name, opts);
      return info && (info.owner !== undefined ? { owner: info.owner } : {});
    },

    async deleteBucket(name, ctx) {
      await requireBucket(name);
      const page = await listMerged(listing, { shards: objectShards, rowPrefix: objectRowPrefix(name), prefix: "", limit: 1 });
      // Noncurrent versions and delete markers count, as in S3: they are deleted by version id first.
      if (page.rows.length || (await versions.anyVersion(name))) throw new ConflictError(`bucket ${name} is not empty`, "BucketNotEmpty");
      await writeBucketRow(name, null, ctx);
      // Its search schema goes too: a new bucket of the same name starts without one.
      await index.write(BUCKETS_SHARD, schemaRow(name), { ts: now(), value: null });
      await deps.metadata?.forgetSchema(name);
      // So do its webhook targets (as S3's notification configuration does): a new bucket of
      // the same name sends nothing to the old one's receivers. Events not yet delivered stay in the log.
      await index.write(BUCKETS_SHARD, notificationsRow(name), { ts: now(), value: null });
      // And its origin: a new bucket of the same name pulls from nowhere until told.
      await index.write(BUCKETS_SHARD, originRow(name), { ts: now(), value: null });
      // And its default encryption, tags, CORS and lifecycle rules: a new bucket of the same name starts without them.
      await settings.clear(name);
      // And its versioning state: a new bucket of the same name starts never versioned.
      await versions.forgetBucket(name);
      // Peers that saw the bucket recently trust it for a moment; tell every reachable one it is gone.
      await knownBuckets.forget(name);
      // Multipart uploads still in progress go with the bucket (S3 does the same); their
      // chunks then age out through GC, and a new bucket of the same name starts clean.
      for (const [rowPrefix, kind] of [[uploadRowPrefix(name), "upload"], [partRowPrefix(name), "part"]] as const) {
        for await (const rows of listPages(listing, { shards: objectShards, rowPrefix, fields: [] })) {
          await Promise.all(rows.map((r) => index.write(objectShard(name, keyOfUploadRow(r.key, kind), deps.indexShards), rowPrefix + r.key, { ts: now(), value: null })));
        }
      }
    },

    async listBuckets() {
      const rows = await listAll<BucketInfo>(listing, { shards: [BUCKETS_SHARD], rowPrefix: "" });
      // The shard also holds the buckets' search schemas (rows no bucket name can start like).
      return rows.filter((r) => !r.key.startsWith(BUCKET_SIDE_ROW)).map((r) => ({ name: r.key, createdMs: r.value.createdMs, ...(r.value.owner !== undefined && { owner: r.value.owner }) }));
    },

    async putObject(bucket, key, body, opts) {
      validateKey(key);
      await requireBucket(bucket, opts);
      await checkMeta(bucket, opts.meta ?? {}, opts);
      const held: ChunkRef[] = [];
      try {
        return await putHeld(bucket, key, body, opts, held);
      } finally {
        release(held.map((r) => r.id));
      }
    },

    uploading: () => inProgress.keys(),

    newKey: (kind, customerKey) => keyring().create(kind, customerKey),
    openKey,

    async setObjectTags(bucket, key, tags, ctx = {}) {
      const kept = tags && Object.keys(tags).length ? tags : undefined;
      const shard = objectShard(bucket, key, deps.indexShards);
      for (let attempt = 1; ; attempt++) {
        const current = await liveManifest(bucket, key, ctx);
        // An imported object's row is the sync's to replace: tagging it would keep a manifest with no bytes as if written here.
        if (current.remote) throw notKept();
        const { tags: _old, ...rest } = current;
        // Same chunks, same Last-Modified, same version (S3 does not change them for tags): only the tags and the row's stamp move.
        const manifest: ObjectManifest = kept ? { ...rest, tags: kept } : rest;
        const event: LoggedEvent = { name: kept ? "ObjectTagging:Put" : "ObjectTagging:Delete", key, size: manifest.size, etag: manifest.etag, ...(manifest.versionId && { versionId: manifest.versionId }), ...(ctx.actor && { actor: ctx.actor }) };
        const sameObject = (m: ObjectManifest | null) => m !== null && m.etag === current.etag && m.lastModified === current.lastModified && m.versionId === current.versionId;
        try {
          // A read-modify-write of the manifest: decided by a consensus round, so a PUT landing meanwhile is never undone.
          await deps.consensus.decide(shard, objectRow(bucket, key), {
            check: (cur) => (sameObject((cur?.value ?? null) as ObjectManifest | null) ? undefined : new MeshError("PreconditionFailed", "the object changed while its tags were set")),
            build: (_cur, ts) => ({
              write: manifest,
              companion: [eventRow(bucket, ts), { ts, value: event }],
              // A versioned object's version row keeps its tags too (a "null" version's row is left as it was).
              extra: manifest.versionId && manifest.versionId !== NULL_VERSION ? [[versionRow(bucket, key, manifest.versionId), { ts, value: manifest }]] : [],
              result: undefined,
            }),
          }, { signal: ctx.signal });
          return manifest;
        } catch (err) {
          if (!(err instanceof MeshError && err.code === "PreconditionFailed") || attempt >= TAG_ATTEMPTS) throw err;
        }
      }
    },

    settings: {
      encryption: checked(settings.encryption),
      tags: checked(settings.tags),
      cors: checked(settings.cors),
      lifecycle: checked(settings.lifecycle),
    },

    pin(ids) {
      for (const id of ids) hold(id);
      let released = false;
      return () => {
        if (!released) release(ids);
        released = true;
      };
    },
    headObject: readVersion,
    bucketVersioning: async (bucket, opts) => {
      await requireBucket(bucket, opts);
      return versions.status(bucket, opts);
    },
    async setBucketVersioning(bucket, st) {
      await requireBucket(bucket);
      await versions.setStatus(bucket, st);
    },
    async listVersions(bucket, q) {
      await requireBucket(bucket);
      if ((await versions.status(bucket)) !== null) return versions.list(bucket, q);
      // Never versioned: the current objects are the versions, each "null" and latest.
      if (q.versionIdMarker && !q.keyMarker) throw new BadRequestError("A version-id marker cannot be specified without a key marker.", "InvalidArgument");
      if (q.limit === 0) return { versions: [], prefixes: [] };
      const after = q.keyMarker ? (q.delimiter && q.keyMarker.endsWith(q.delimiter) && q.keyMarker.startsWith(q.prefix ?? "") && q.keyMarker.length > (q.prefix ?? "").length ? q.keyMarker + AFTER_PREFIX : q.keyMarker) : undefined;
      const page = await listMerged<ObjectManifest>(listing, {
        shards: objectShards,
        rowPrefix: objectRowPrefix(bucket),
        prefix: q.prefix ?? "",
        delimiter: q.delimiter || undefined,
        limit: q.limit,
        after,
        fields: ["size", "etag", "lastModified"],
      });
      const next = page.next === null ? undefined : page.next.endsWith(AFTER_PREFIX) ? { keyMarker: page.next.slice(0, -AFTER_PREFIX.length) } : { keyMarker: page.next, versionIdMarker: NULL_VERSION };
      return {
        versions: page.rows.map((r) => ({ key: r.key, versionId: NULL_VERSION, isLatest: true, value: { ...r.value, versionId: NULL_VERSION } })),
        prefixes: page.prefixes,
        ...(next && { next }),
      };
    },
    requireBucket,

    async restamp(bucket, key, manifest, origin) {
      await index.write(objectShard(bucket, key, deps.indexShards), objectRow(bucket, key), { ts: now(), value: { ...manifest, origin } });
    },
    checkMeta,

    async writeManifest(bucket, key, manifest, ctx) {
      validateKey(key);
      await requireBucket(bucket);
      return writeManifest(bucket, key, manifest, "ObjectCreated:CompleteMultipartUpload", ctx);
    },

    async copyObject(source, bucket, key, changes, ctx, tags) {
      // Chunks are shared, so a source whose bytes are still at its origin has nothing to share (callers fetch it first).
      if (source.remote) throw notKept();
      validateKey(key);
      await requireBucket(bucket);
      // A copy is written in the mesh: not an origin's copy (no freshness to keep, nothing a sync may remove).
      // Nor is it the source's version: the write makes its own.
      const { origin: _origin, remote: _remote, versionId: _version, ...kept } = source;
      const manifest: ObjectManifest = { ...kept, ...changes, lastModified: Date.now() };
      if (tags) {
        if (Object.keys(tags).length) manifest.tags = tags;
        else delete manifest.tags;
      }
      await checkMeta(bucket, manifest.meta);
      if (manifest.headers && !Object.keys(manifest.headers).length) delete manifest.headers;
      const versionId = await writeManifest(bucket, key, manifest, "ObjectCreated:Copy", ctx);
      return versionId === undefined ? manifest : { ...manifest, versionId };
    },

    async storeBody(body, contentLength, opts = {}) {
      const held: ChunkRef[] = [];
      try {
        const up = await upload(body, contentLength, held, false, opts.signal, undefined, opts.seal);
        let released = false;
        return {
          size: up.size,
          etag: up.etag,
          chunks: up.refs,
          holders: up.holders,
          release: () => {
            if (!released) release(held.map((r) => r.id));
            released = true;
          },
        };
      } catch (err) {
        release(held.map((r) => r.id));
        throw err;
      }
    },

    async readObject(m, start, end, opts = {}) {
      // An imported object is read through the pull-through, which fetches it first; here it has no bytes to give.
      if (m.remote && end > start) throw notKept();
      const key = m.sse ? dataKeyOf(m, opts.key) : undefined;
      const places = key && m.sse ? chunkPlaces(m.sse, m.chunks.length) : undefined;
      // A sealed chunk that does not open was altered (or moved) at rest: never served.
      const opened = (bytes: Uint8Array, i: number): Uint8Array => {
        if (!key || !places) return bytes;
        const plain = places[i] ? key.openChunk(bytes, places[i][0], places[i][1]) : null;
        if (!plain) throw new MeshError("ChunkCorrupt", "a sealed chunk of this encrypted object failed authentication");
        return plain;
      };
      if (m.inline !== undefined) {
        // An inline body is sealed as chunk 0 of part 0.
        const stored = Buffer.from(m.inline, "base64");
        const plain = key ? key.openChunk(stored, 0, 0) : stored;
        if (!plain) throw new MeshError("ChunkCorrupt", "the sealed body of this encrypted object failed authentication");
        const bytes = plain.subarray(start, end);
        return new ReadableStream({ start: (c) => (bytes.byteLength && c.enqueue(bytes), c.close()) });
      }
      // Chunk i covers [ends[i-1], ends[i]) of the plaintext; sizes vary in multipart objects, so search.
      const ends: number[] = [];
      let total = 0;
      for (const c of m.chunks) ends.push((total += key ? c.size - SEAL_OVERHEAD : c.size));
      const chunkAt = (offset: number) => {
        let lo = 0;
        let hi = ends.length - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (ends[mid] > offset) hi = mid;
          else lo = mid + 1;
        }
        return lo;
      };
      const first = chunkAt(start);
      const last = end > start ? chunkAt(end - 1) : first - 1;
      // A one-chunk object is a small one: the chunk cache may hold it whole in memory (src/cache/chunk-cache.ts).
      const wholeObject = m.chunks.length === 1 && !opts.part;
      const fetchChunk = (i: number) => chunks.get(m.chunks[i].id, m.holders?.[i], { signal: opts.signal, wholeObject }).then((bytes) => opened(bytes, i));
      const ahead: Array<Promise<Uint8Array>> = [];
      let next = first;
      const fill = () => {
        while (next <= last && ahead.length < READ_AHEAD) {
          const p = fetchChunk(next++);
          p.catch(() => {}); // consumed in order below; avoid an unhandled rejection meanwhile
          ahead.push(p);
        }
      };
      let sent = first;
      const slice = (i: number, bytes: Uint8Array) => {
        const base = i === 0 ? 0 : ends[i - 1];
        return bytes.subarray(Math.max(0, start - base), Math.min(bytes.byteLength, end - base));
      };
      fill();
      // Fetch the first chunk before answering, so a missing chunk is an error status, not a cut body.
      const head = ahead.length ? await ahead[0] : undefined;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent > last) return controller.close();
          const bytes = sent === first && head ? head : await ahead[0];
          ahead.shift();
          controller.enqueue(slice(sent, bytes));
          sent++;
          fill();
          if (sent > last) controller.close();
        },
      });
    },

    async deleteObject(bucket, key, ctx = {}) {
      validateKey(key);
      await requireBucket(bucket);
      const { versionId, ...wctx } = ctx;
      if (versionId !== undefined && isConditional(wctx.condition)) {
        throw new MeshError("NotImplemented", "A header you provided implies functionality that is not implemented (a conditional delete of one version)");
      }
      if (versionId === undefined) {
        const made = await writeObjectRow(bucket, key, null, "ObjectRemoved:Delete", wctx);
        return made === undefined ? {} : { versionId: made, deleteMarker: true };
      }
      const st = await versions.status(bucket);
      // Never versioned: "null" is the object itself; another id names nothing there (S3: 400).
      if (st === null) {
        if (versionId !== NULL_VERSION) throw new BadRequestError("Invalid version id specified", "InvalidArgument");
        await writeObjectRow(bucket, key, null, "ObjectRemoved:Delete", wctx);
        return { versionId };
      }
      const gone: DeletedVersion | null = await versions.deleteVersion(bucket, key, versionId, st, wctx);
      return { versionId, ...(gone?.deleteMarker && { deleteMarker: true }) };
    },

    async importManifest(bucket, key, manifest) {
      validateKey(key);
      await requireBucket(bucket);
      await writeManifest(bucket, key, manifest, "ObjectCreated:Mirror");
    },

    async listMarks(bucket, q) {
      await requireBucket(bucket);
      const page = await listMerged<Pick<ObjectManifest, "etag" | "origin" | "remote">>(listing, {
        shards: objectShards,
        rowPrefix: objectRowPrefix(bucket),
        prefix: q.prefix ?? "",
        limit: Math.max(1, Math.min(1000, q.limit ?? 1000)),
        after: q.after,
        fields: ["etag", "origin", "remote"],
      });
      return {
        objects: page.rows.map((r) => ({
          key: r.key,
          etag: r.value.etag,
          ...(r.value.origin?.etag !== undefined && { originEtag: r.value.origin.etag }),
          ...(r.value.remote && { remote: { etag: r.value.remote.etag } }),
          local: !r.value.origin && !r.value.remote,
        })),
        next: page.next,
      };
    },

    async listObjects(bucket, q) {
      await requireBucket(bucket);
      const limit = Math.max(1, Math.min(1000, q.limit ?? 1000));
      const page = await listMerged<Pick<ObjectManifest, "size" | "etag" | "lastModified">>(listing, {
        shards: objectShards,
        rowPrefix: objectRowPrefix(bucket),
        prefix: q.prefix ?? "",
        delimiter: q.delimiter || undefined,
        limit,
        after: q.after,
        fields: ["size", "etag", "lastModified"],
      });
      return {
        objects: page.rows.map((r) => ({ key: r.key, size: r.value.size, etag: r.value.etag, lastModified: new Date(r.value.lastModified).toISOString() })),
        prefixes: page.prefixes,
        next: page.next,
      };
    },

    async locate(bucket, key) {
      const m = await liveManifest(bucket, key);
      const shard = objectShard(bucket, key, deps.indexShards);
      const replicas = deps.placement.shardReplicas(shard);
      const ids = [...new Set(m.chunks.map((c) => c.id))];
      const peers = deps.livePeers();
      const [held, shardHolders] = await Promise.all([
        Promise.all(peers.map(async (p) => [p, new Set(await chunks.has(p, ids).catch(() => []))] as const)),
        Promise.all(replicas.map(async (p) => ((await index.readFrom(p, shard, objectRow(bucket, key)).catch(() => null))?.value ? p : null))),
      ]);
      return {
        bucket,
        key,
        size: m.size,
        etag: m.etag,
        inline: m.inline !== undefined,
        chunks: m.chunks.map((c) => ({
          id: c.id,
          size: c.size,
          expected: deps.placement.chunkOwners(c.id),
          holders: held.filter(([, set]) => set.has(c.id)).map(([p]) => p),
        })),
        shard: { id: shard, replicas, holders: shardHolders.filter((p): p is string => p !== null) },
      };
    },
  };
}
