// What the index stores.
import type { ChecksumAlgorithm, ChecksumType } from "../objects/checksums.ts";

/** A chunk of an object: its SHA-256 id and length. */
export interface ChunkRef {
  id: string;
  size: number;
}

/** An object's index entry: everything needed to serve it. */
export interface ObjectManifest {
  size: number;
  /** MD5 hex of the body (S3's ETag for single-part uploads). */
  etag: string;
  contentType: string;
  /** User metadata (`x-meta-*` natively, `x-amz-meta-*` in S3), names lowercased without the prefix. */
  meta: Record<string, string>;
  /** Stored response headers: cache-control, content-disposition, content-encoding, content-language, expires. */
  headers?: Record<string, string>;
  lastModified: number;
  /** Nominal chunk size; chunks of a multipart object follow its parts, so offsets come from `chunks`. */
  chunkSize: number;
  chunks: ChunkRef[];
  /** Small objects: the body itself, base64. */
  inline?: string;
  /** Peers that acknowledged each chunk at write time (read hints until repair settles). */
  holders?: string[][];
  /** Set on a copy fetched from its bucket's origin (src/remotes/pull-through.ts): when it stops being fresh. */
  origin?: OriginStamp;
  /**
   * Set on an object imported by an origin sync (src/remotes/origin-sync.ts) whose bytes are
   * not kept yet: `chunks` is empty and `size` is the remote's. Every read goes through the
   * pull-through, which fetches the bytes once and writes a kept manifest without this mark.
   */
  remote?: RemoteMark;
  /** The checksum the upload carried or asked for, and a multipart object's part layout (S3 checksums, GetObjectAttributes, ?partNumber). */
  integrity?: ObjectIntegrity;
  /** Set on an object encrypted at rest (SSE-S3 or SSE-C, src/objects/sse-seal.ts): its chunks and inline body are sealed. */
  sse?: SseInfo;
  /** S3 object tags (at most 10), kept here so that a scan of manifests (lifecycle rules by tag) sees them. Absent: none. */
  tags?: Record<string, string>;
  /** Set in a bucket that is or was versioned: the version this manifest is (an id, or "null"). */
  versionId?: string;
}

/** One rule of a bucket's CORS configuration (S3's CORSRule), as stored in the buckets shard. */
export interface CorsRule {
  id?: string;
  /** AllowedOrigin patterns, each with at most one "*". */
  origins: string[];
  /** AllowedMethod: GET, PUT, POST, DELETE, HEAD. */
  methods: string[];
  /** AllowedHeader patterns, each with at most one "*". */
  headers: string[];
  /** ExposeHeader names. */
  expose: string[];
  maxAgeSeconds?: number;
}

/** A delete marker of a versioned bucket, as its version row holds it (the object row is then deleted). */
export interface DeleteMarker {
  deleteMarker: true;
  versionId: string;
  lastModified: number;
}

/** What a version row holds: a version of the object, or a delete marker. */
export type VersionValue = (ObjectManifest & { versionId: string }) | DeleteMarker;

/** Is a version row's value a delete marker? */
export const isDeleteMarker = (v: VersionValue): v is DeleteMarker => "deleteMarker" in v && v.deleteMarker === true;

/** A bucket's versioning state (S3 PutBucketVersioning); a bucket never versioned has none. */
export interface VersioningState {
  status: "Enabled" | "Suspended";
}

/** An object's kept checksum and, for a multipart object, its parts in order. */
export interface ObjectIntegrity {
  /** COMPOSITE values end in "-<parts>", as S3 sends them. */
  checksum?: { algorithm: ChecksumAlgorithm; type: ChecksumType; value: string };
  /** A multipart object's parts: sizes, and each part's checksum (base64) when the upload had an algorithm. */
  parts?: Array<{ size: number; checksum?: string }>;
}
/** The two kinds of server-side encryption served: S3-managed keys, customer-provided keys. */
export type SseKind = "S3" | "C";

/** What an encrypted object's manifest (or upload record) keeps about its encryption. */
export interface SseInfo {
  kind: SseKind;
  /** Random per-object id (hex), bound into every seal of the object. */
  id: string;
  /** The object's data key, sealed by its key-encryption key (base64url). */
  wrapped: string;
  /**
   * A multipart object: [part number, chunks in that part] in object order (the seals name
   * the part). Absent: one body, every chunk sealed as part 0.
   */
  parts?: Array<[number, number]>;
}

/** An imported object whose bytes are still only at its origin. */
export interface RemoteMark {
  /** The remote's ETag when it was listed (a later sync compares it to skip unchanged objects). */
  etag?: string;
  /** When the sync imported it (epoch ms). */
  syncedMs: number;
}

/** The freshness of a copy fetched from an origin, kept with its manifest. */
export interface OriginStamp {
  /** The origin's ETag, as it sent it (revalidation sends it back in If-None-Match). */
  etag?: string;
  /** When it was fetched or last revalidated (epoch ms): Age counts from here. */
  fetchedMs: number;
  /** Fresh until then; past it, a read revalidates. */
  expiresMs: number;
}

/** A bucket's index entry. */
export interface BucketInfo {
  createdMs: number;
  /**
   * The access key id that created it, which holds owner rights on it. Absent on buckets
   * created before buckets had owners, and on buckets made with auth off: those are owned
   * by no key (admins and keys with grants on them use them as before).
   */
  owner?: string;
}

// The row format and its merge order belong to the store that applies them.
export { newer, type IndexEntry } from "../store/index-entry.ts";
