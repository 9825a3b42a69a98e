// Names and keys: validation as S3 does it, the index shard of an object, key order, and
// the one place that knows how rows are named in their shards.
import { BadRequestError } from "../errors.ts";
import { ringPosition } from "../placement/ring.ts";

/** Longest object key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** The shard that holds every bucket entry. */
export const BUCKETS_SHARD = "b";

/** The shard that holds every access key (S3 credentials and native tokens). */
export const KEYS_SHARD = "k";
/** Is a delete final in this shard (a revoked key can never come back; see `newer`)? */
export const deletesAreFinal = (shard: string): boolean => shard === KEYS_SHARD;
/** The shard of upload progress records (src/uploads/): one shard, so the newest are one scan away. */
export const UPLOADS_SHARD = "u";
/** Shards every member holds, read and written by a majority of the mesh (src/placement/placement.ts). */
export const MESH_WIDE_SHARDS = [BUCKETS_SHARD, KEYS_SHARD];

/** Every index shard: buckets, keys, upload records and the object shards. */
export function allShards(objectShards: number): string[] {
  return [BUCKETS_SHARD, KEYS_SHARD, UPLOADS_SHARD, ...allObjectShards(objectShards)];
}

/** What an access key id looks like (the row of a key in KEYS_SHARD; also checked for MESH_ADMIN_KEY). */
export const ACCESS_KEY_ID_RE = /^[A-Z0-9]{16,64}$/;

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Throw InvalidBucketName unless `name` is a valid S3 bucket name. */
export function validateBucketName(name: string): void {
  if (!BUCKET_RE.test(name) || name.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
    throw new BadRequestError(`invalid bucket name "${name.slice(0, 80)}": use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`, "InvalidBucketName");
  }
}

/** Throw unless `key` is a usable object key (non-empty, at most 1024 UTF-8 bytes). */
export function validateKey(key: string): void {
  if (key.length === 0) throw new BadRequestError("object key must not be empty", "InvalidArgument");
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > MAX_KEY_BYTES) throw new BadRequestError(`object key is ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`, "KeyTooLongError");
  if (/[\uD800-\uDFFF]/.test(key.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))) {
    throw new BadRequestError("object key is not valid UTF-8", "InvalidURI");
  }
}

/** Decode a percent-encoded path piece strictly: invalid UTF-8 is a 400, not garbage. */
export function decodePathPiece(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new BadRequestError("the key is not valid percent-encoded UTF-8", "InvalidURI");
  }
}

/** The index shard of an object: its keys spread over every shard, whatever the bucket. */
export function objectShard(bucket: string, key: string, shards: number): string {
  return `o${ringPosition(objectRow(bucket, key)) % shards}`;
}

// ---- Rows of the object shards ----
// A manifest is "<bucket>\0<key>". Multipart rows sit beside it in the same shard, under
// prefixes no bucket name can start with: "\x01u<bucket>\0<key>\0<upload id>" for an
// upload and "\x01p<bucket>\0<key>\0<upload id>\0<part number, 5 digits>" for a part.
// Keys may hold NULs, so a key is found from the end of a row, never by splitting at "\0".

/** Row of an object's manifest in its shard. */
export const objectRow = (bucket: string, key: string) => `${objectRowPrefix(bucket)}${key}`;
/** Every manifest row of a bucket starts with this (listing reports keys without it). */
export const objectRowPrefix = (bucket: string) => `${bucket}\0`;
/** Every upload row of a bucket starts with this. */
export const uploadRowPrefix = (bucket: string) => `\x01u${bucket}\0`;
/** Every part row of a bucket starts with this. */
export const partRowPrefix = (bucket: string) => `\x01p${bucket}\0`;
/** Row of a multipart upload in progress. */
export const uploadRow = (bucket: string, key: string, uploadId: string) => `${uploadRowPrefix(bucket)}${uploadListKey(key, uploadId)}`;
/** Every part row of one upload starts with this. */
export const uploadPartsPrefix = (bucket: string, key: string, uploadId: string) => `${partRowPrefix(bucket)}${key}\0${uploadId}\0`;
/** A part's row after `uploadPartsPrefix`: its number, padded so that rows sort by it. */
export const partRowSuffix = (partNumber: number) => String(partNumber).padStart(5, "0");
/**
 * An upload as a listing under `uploadRowPrefix` names it: "<key>\0<upload id>". Without
 * an id, the point after every upload of the key (S3's key-marker alone resumes there).
 */
export const uploadListKey = (key: string, uploadId?: string) => `${key}\0${uploadId ?? "\u{10FFFF}"}`;
/** Every decision row of a bucket starts with this (see `uploadDecisionRow`). */
export const decisionRowPrefix = (bucket: string) => `\x01d${bucket}\0`;
/**
 * The flag an abort or a complete of an upload raises before it acts (objects/multipart.ts):
 * "\x01d<bucket>\0<key>\0<upload id>\0a" or "...\0c". Each side writes its own row, so
 * the two never overwrite each other as two values of one row would.
 */
export const uploadDecisionRow = (bucket: string, key: string, uploadId: string, side: "abort" | "complete") =>
  `${decisionRowPrefix(bucket)}${key}\0${uploadId}\0${side === "abort" ? "a" : "c"}`;
/** Every completed-upload record starts with this (the expiry worker scans a shard for old ones). */
export const ALL_COMPLETED_PREFIX = "\x01c";
/**
 * The record a Complete leaves of its upload for a while (objects/multipart.ts), in the
 * object's shard: "\x01c<bucket>\0<key>\0<upload id>". A repeated Complete finds it there.
 */
export const completedUploadRow = (bucket: string, key: string, uploadId: string) => `${ALL_COMPLETED_PREFIX}${bucket}\0${key}\0${uploadId}`;
/** Bucket, key and upload id of a completed-upload record (as `completedUploadRow` names it), or undefined. */
export function parseCompletedRow(row: string): { bucket: string; key: string; uploadId: string } | undefined {
  if (!row.startsWith(ALL_COMPLETED_PREFIX)) return undefined;
  const bucketEnd = row.indexOf("\0");
  const idStart = row.lastIndexOf("\0");
  if (bucketEnd < 0 || idStart <= bucketEnd) return undefined;
  return { bucket: row.slice(ALL_COMPLETED_PREFIX.length, bucketEnd), key: row.slice(bucketEnd + 1, idStart), uploadId: row.slice(idStart + 1) };
}
/** Every upload row of every bucket starts with this (the expiry worker scans a shard for them). */
export const ALL_UPLOADS_PREFIX = "\x01u";
/** Bucket, key and upload id of a stored upload row (as `uploadRow` names it), or undefined. */
export function parseUploadRow(row: string): { bucket: string; key: string; uploadId: string } | undefined {
  if (!row.startsWith(ALL_UPLOADS_PREFIX)) return undefined;
  const bucketEnd = row.indexOf("\0");
  const idStart = row.lastIndexOf("\0");
  if (bucketEnd < 0 || idStart <= bucketEnd) return undefined;
  return { bucket: row.slice(ALL_UPLOADS_PREFIX.length, bucketEnd), key: row.slice(bucketEnd + 1, idStart), uploadId: row.slice(idStart + 1) };
}
/** The object key of a row listed under `uploadRowPrefix` (1 field after the key) or `partRowPrefix` (2 fields). */
export function keyOfUploadRow(listed: string, kind: "upload" | "part"): string {
  let at = listed.length;
  for (let i = kind === "upload" ? 1 : 2; i > 0; i--) at = listed.lastIndexOf("\0", at - 1);
  return listed.slice(0, at);
}

// ---- Rows of the uploads shard ----
// An upload's record is kept twice, so that a token is one read away and the newest
// records one scan away: "t<token>" and "s<13 digits: MAX_WALL - startedMs><token>" (newest
// first in row order). A multipart upload's parts report under "t<token>\0p<part, 5 digits>".
// Tokens are [A-Za-z0-9_-], so no token row is a prefix of another's part rows.

/** Row of an upload record, by token. */
export const uploadTokenRow = (token: string) => `t${token}`;
/** Every part row of a multipart upload's record starts with this. */
export const uploadTokenPartsPrefix = (token: string) => `t${token}\0p`;
/** Row of a part's progress under its upload's token. */
export const uploadTokenPartRow = (token: string, partNumber: number) => uploadTokenPartsPrefix(token) + partRowSuffix(partNumber);
/** Every record row in newest-first order starts with this. */
export const UPLOADS_BY_AGE_PREFIX = "s";
/** Row of an upload record in newest-first order: records started at `startedMs` or earlier sort at or after `uploadAgeRow(startedMs, "")`. */
export const uploadAgeRow = (startedMs: number, token: string) => `${UPLOADS_BY_AGE_PREFIX}${String(9_999_999_999_999 - startedMs).padStart(13, "0")}${token}`;

/** Every object shard name. */
export function allObjectShards(shards: number): string[] {
  return Array.from({ length: shards }, (_, i) => `o${i}`);
}

/** Order keys by Unicode code point, which is UTF-8 byte order (S3's listing order). */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts surrogates (astral code points) below U+E000..U+FFFF; code point order puts them above.
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

// ---- Search rows ----
// A bucket's search schema is a row of the buckets shard, "\x01s<bucket>", beside the
// bucket's own row (no bucket name starts with \x01, so bucket listings skip it).
// The secondary rows of a field live in each object shard's derived space
// (src/store/index-store.ts) as "<bucket>\0<field>\0<encoded value><key>".

/** Every schema row starts with this. */
export const SCHEMA_ROW_PREFIX = "\x01s";
/** Row of a bucket's search schema in BUCKETS_SHARD. */
export const schemaRow = (bucket: string) => `${SCHEMA_ROW_PREFIX}${bucket}`;
/** The bucket of an object row ("<bucket>\0<key>"), or undefined for a row of another kind. */
export function bucketOfObjectRow(row: string): string | undefined {
  const at = row.indexOf("\0");
  return at > 0 ? row.slice(0, at) : undefined;
}
/** Every derived row of a bucket starts with this. */
export const bucketFieldsPrefix = (bucket: string) => `${bucket}\0`;
/** Every derived row of one field of a bucket starts with this; the encoded value and the key follow. */
export const fieldRowPrefix = (bucket: string, field: string) => `${bucket}\0${field}\0`;

// ---- Change event rows (src/changes/) ----
// A bucket's events live in the shard of what they are about: an object's in its object
// shard, a bucket's own (created, removed) in BUCKETS_SHARD, as "\x01e<bucket>\0<event id>".
// The event id is the HLC stamp of the write, so a shard's rows of a bucket are in event
// order and a key's events (one shard) in the order last-writer-wins applies them.
// A webhook target's progress through a shard sits beside them: "\x01w<bucket>\0<target id>".
// A bucket's notification targets are a row of BUCKETS_SHARD: "\x01n<bucket>".

/** Every event row of a bucket in a shard starts with this. */
export const eventRowPrefix = (bucket: string) => `\x01e${bucket}\0`;
/** Row of one event. */
export const eventRow = (bucket: string, id: string) => `${eventRowPrefix(bucket)}${id}`;
/** Every event row of every bucket starts with this (retention walks a shard's). */
export const ALL_EVENTS_PREFIX = "\x01e";
/** The event id of an event row. */
export const eventIdOf = (row: string) => row.slice(row.indexOf("\0") + 1);
/** The part of an event row its bucket's events share, before the NUL ("\x01e<bucket>"). */
export const eventBucketOf = (row: string) => row.slice(0, row.indexOf("\0"));
/** Is `row` an event row? */
export const isEventRow = (row: string) => row.startsWith(ALL_EVENTS_PREFIX);
/** Row of a webhook target's progress through one shard. */
export const deliveryRow = (bucket: string, targetId: string) => `\x01w${bucket}\0${targetId}`;
/** Every notification configuration row starts with this. */
export const NOTIFICATIONS_ROW_PREFIX = "\x01n";
/** Row of a bucket's notification targets in BUCKETS_SHARD. */
export const notificationsRow = (bucket: string) => `${NOTIFICATIONS_ROW_PREFIX}${bucket}`;
/** Rows of BUCKETS_SHARD that are not buckets (schemas, events, notification targets) start with this. */
export const BUCKET_SIDE_ROW = "\x01";

// ---- Remote origins (src/remotes/) ----
// A remote store is a row of BUCKETS_SHARD, "\x01r<name>", and a bucket's origin (the remote
// it pulls through from) is "\x01o<bucket>": side rows, skipped by bucket listings.

/** Every remote's row starts with this. */
export const REMOTE_ROW_PREFIX = "\x01r";
/** Row of a remote store in BUCKETS_SHARD. */
export const remoteRow = (name: string) => `${REMOTE_ROW_PREFIX}${name}`;
/** Every bucket origin's row starts with this. */
export const ORIGIN_ROW_PREFIX = "\x01o";
/** Row of a bucket's origin in BUCKETS_SHARD. */
export const originRow = (bucket: string) => `${ORIGIN_ROW_PREFIX}${bucket}`;
/** A bucket's default encryption (S3's PutBucketEncryption), in the buckets shard. */
export const encryptionRow = (bucket: string) => `\x01x${bucket}`;
/** A bucket's tags (S3's PutBucketTagging), in the buckets shard. */
export const bucketTagsRow = (bucket: string) => `\x01g${bucket}`;
/** A bucket's CORS configuration (S3's PutBucketCors), in the buckets shard. */
export const corsRow = (bucket: string) => `\x01a${bucket}`;
/** Every lifecycle configuration row starts with this (the lifecycle worker scans its replica of the buckets shard for them). */
export const LIFECYCLE_ROW_PREFIX = "\x01l";
/** A bucket's lifecycle rules (S3's PutBucketLifecycleConfiguration), in the buckets shard. */
export const lifecycleRow = (bucket: string) => `${LIFECYCLE_ROW_PREFIX}${bucket}`;
/** Row of a write-through bucket's progress through one shard's change events (src/remotes/write-through.ts), in each shard. */
export const writeThroughRow = (bucket: string) => `\x01q${bucket}`;
/** Every origin sync state row starts with this. */
export const SYNC_ROW_PREFIX = "\x01y";
/** Row of a bucket's origin sync state (progress, counts, resume point) in BUCKETS_SHARD. */
export const syncRow = (bucket: string) => `${SYNC_ROW_PREFIX}${bucket}`;

// ---- Versions (S3 versioning, src/objects/versions.ts) ----
// A versioned bucket keeps its current version in the object row as before (its manifest
// names its `versionId`) and every version, the current one too, and every delete marker
// in the object's shard as "\x01v<bucket>\0<key>\0<order>": the order is the version's
// write stamp inverted (src/objects/version-id.ts), so a key's versions sort newest first
// and listing them is a prefix scan. A bucket's versioning state is a side row of the
// buckets shard, "\x01V<bucket>".

/** Every version row of every bucket starts with this. */
export const ALL_VERSIONS_PREFIX = "\x01v";
/** Every version row of a bucket starts with this; a listing under it names versions as `versionListKey` does. */
export const versionRowPrefix = (bucket: string) => `${ALL_VERSIONS_PREFIX}${bucket}\0`;
/**
 * A version as listed under `versionRowPrefix`: "<key>\0<order>". Without an order, the
 * point after every version of the key (S3's key-marker alone resumes there).
 */
export const versionListKey = (key: string, order?: string) => `${key}\0${order ?? "\u{10FFFF}"}`;
/** Row of one version of an object. */
export const versionRow = (bucket: string, key: string, order: string) => `${versionRowPrefix(bucket)}${versionListKey(key, order)}`;
/**
 * Every version row of one key starts with this. A key that continues with a NUL shares
 * it: `splitVersionListKey` of what follows the bucket prefix tells them apart.
 */
export const keyVersionsPrefix = (bucket: string, key: string) => `${versionRowPrefix(bucket)}${key}\0`;
/** Key and order of a version as `versionListKey` names it (orders hold no NUL, so the key is everything before the last one). */
export function splitVersionListKey(listed: string): { key: string; order: string } | undefined {
  const at = listed.lastIndexOf("\0");
  return at < 0 ? undefined : { key: listed.slice(0, at), order: listed.slice(at + 1) };
}
/**
 * The order of a row listed under `keyVersionsPrefix(bucket, key)`, or undefined for a row
 * of a longer key that shares the prefix (what follows holds a NUL then).
 */
export const orderUnderKey = (listed: string): string | undefined => (listed.includes("\0") ? undefined : listed);
/** Row of a bucket's versioning state (Enabled or Suspended) in BUCKETS_SHARD. */
export const versioningRow = (bucket: string) => `\x01V${bucket}`;
