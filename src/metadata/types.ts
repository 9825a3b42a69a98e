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

/** A versioned index value; `value: null` is a tombstone. `ts` is an encoded HLC timestamp. */
export interface IndexEntry<V = unknown> {
  ts: string;
  value: V | null;
}

/**
 * Does `a` replace `b`? The last writer wins, except where deletes are final (the keys
 * shard: a revoked key stays revoked). There a delete marker replaces any value and no
 * value replaces one, whatever their stamps, so no row, not even one stamped in the
 * future, can bring a revoked key back. Either way the order is total, so replicas converge.
 */
export function newer(a: IndexEntry, b: IndexEntry | null | undefined, deletesFinal = false): boolean {
  if (!b) return true;
  if (deletesFinal && (a.value === null) !== (b.value === null)) return a.value === null;
  return a.ts > b.ts;
}
