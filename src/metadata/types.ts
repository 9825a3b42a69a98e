// What the index stores.

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
}

/** A bucket's index entry. */
export interface BucketInfo {
  createdMs: number;
}

// The row format and its merge order belong to the store that applies them.
export { newer, type IndexEntry } from "../store/index-entry.ts";
