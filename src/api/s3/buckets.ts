// S3 service and bucket operations: ListBuckets, Create/Head/DeleteBucket,
// GetBucketLocation, Get/PutBucketVersioning, ListObjects (v1 and v2), ListObjectVersions.
import { seesBucket } from "../../auth/access-keys.ts";
import { bucketTaken, createVerdict, ownerToRecord } from "../../auth/guard.ts";
import { BadRequestError, ConflictError, MeshError } from "../../errors.ts";
import { isDeleteMarker, type ObjectManifest } from "../../metadata/types.ts";
import { validateBucketName } from "../../metadata/keys.ts";
import { AFTER_PREFIX } from "../../metadata/listing.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { countParam, OWNER, isoDate, ownerOf, urlEncodeKey, requireAccess, type S3Request } from "./context.ts";
import { DEFAULT_REGION, requestBody, smallBody } from "./request.ts";
import { parseVersioningRequest, VERSIONING_MAX_BYTES, xmlResponse } from "./xml.ts";

/** ListBuckets: the buckets the caller may see (by grant or as their owner), under the caller as Owner, as S3 lists its own. */
export async function listBuckets(r: S3Request): Promise<Response> {
  const buckets = (await r.services.objects.listBuckets()).filter((b) => seesBucket(r.who, b.name, b.owner));
  return xmlResponse("ListAllMyBucketsResult", {
    Owner: ownerOf(r.who),
    Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: isoDate(b.createdMs) })) },
  });
}

/**
 * CreateBucket, by a key that may create buckets (or holds owner rights on the name): the
 * bucket is owned by that key. A name another key owns is BucketAlreadyExists; one's own
 * is 200 when the request was signed for us-east-1 (S3's legacy behaviour there) and
 * BucketAlreadyOwnedByYou for any other region, as S3 answers.
 */
export async function createBucket(r: S3Request): Promise<Response> {
  validateBucketName(r.bucket);
  await requireAccess(r, "create");
  const made = await r.services.objects.createBucket(r.bucket, { actor: r.who.accessKeyId }, ownerToRecord(r.who));
  if (!made.created) {
    if (createVerdict(r.who, r.bucket, made.owner) === "taken") throw bucketTaken(r.bucket);
    if (r.caller.region !== DEFAULT_REGION) throw new ConflictError("Your previous request to create the named bucket succeeded and you already own it.", "BucketAlreadyOwnedByYou");
  }
  return new Response(null, { status: 200, headers: { location: `/${r.bucket}` } });
}

export async function headBucket(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  await r.services.objects.requireBucket(r.bucket);
  return new Response(null, { status: 200, headers: { "x-amz-bucket-region": "us-east-1" } });
}

export async function deleteBucket(r: S3Request): Promise<Response> {
  await requireAccess(r, "owner");
  await r.services.objects.deleteBucket(r.bucket, { actor: r.who.accessKeyId });
  return new Response(null, { status: 204 });
}

export async function getBucketLocation(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  await r.services.objects.requireBucket(r.bucket);
  // An empty LocationConstraint means us-east-1, the region every client defaults to.
  return xmlResponse("LocationConstraint", {});
}

export async function getBucketVersioning(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  const status = await r.services.objects.bucketVersioning(r.bucket, { signal: r.request.signal });
  // Never versioned: S3 answers with no Status at all.
  return xmlResponse("VersioningConfiguration", status ? { Status: status } : {});
}

/** PutBucketVersioning: Enabled or Suspended; MFA delete is not implemented (501, never ignored). */
export async function putBucketVersioning(r: S3Request): Promise<Response> {
  await requireAccess(r, "owner");
  if (r.request.headers.has("x-amz-mfa")) throw new MeshError("NotImplemented", "MFA delete is not implemented (x-amz-mfa)");
  const cfg = parseVersioningRequest(await smallBody(requestBody(r.request, r.caller), VERSIONING_MAX_BYTES));
  if (cfg.mfaDelete === "Enabled") throw new MeshError("NotImplemented", "MFA delete is not implemented: send MfaDelete Disabled or leave it out");
  await r.services.objects.setBucketVersioning(r.bucket, cfg.status);
  return new Response(null, { status: 200 });
}

const maxKeys = (q: URLSearchParams) => countParam(q, "max-keys", 0);

function encodingType(q: URLSearchParams): (s: string) => string {
  const t = q.get("encoding-type");
  if (t === null || t === "") return (s) => s;
  if (t !== "url") throw new BadRequestError("Invalid Encoding Method specified in Request", "InvalidArgument");
  return urlEncodeKey;
}

/** One listing page for any of the three list operations. */
async function page(r: S3Request, prefix: string, delimiter: string, limit: number, after: string | undefined) {
  await requireAccess(r, "read");
  if (limit === 0) {
    await r.services.objects.requireBucket(r.bucket);
    return { objects: [], prefixes: [], next: null };
  }
  return r.services.objects.listObjects(r.bucket, { prefix, delimiter, limit, after });
}

/**
 * A client's marker, as a listing resume point. With a delimiter, a marker that ends in it
 * names a common prefix already returned, so the listing resumes after everything under it.
 */
function resumeAfter(marker: string, prefix: string, delimiter: string): string | undefined {
  if (!marker) return undefined;
  if (delimiter && marker.startsWith(prefix) && marker.endsWith(delimiter) && marker.length > prefix.length) return marker + AFTER_PREFIX;
  return marker;
}

/** A listing's resume point as a marker for the client (a common prefix, not its internal bound). */
function markerOf(next: string): string {
  return next.endsWith(AFTER_PREFIX) ? next.slice(0, -AFTER_PREFIX.length) : next;
}


export async function listObjectsV2(r: S3Request): Promise<Response> {
  const q = r.query;
  const enc = encodingType(q);
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const limit = maxKeys(q);
  // S3 treats an empty token as none (clients send ContinuationToken="" on a first page).
  const token = q.get("continuation-token") || null;
  const startAfter = q.get("start-after") ?? "";
  const after = token !== null ? decodeCursor(token, "The continuation token provided is incorrect") : startAfter || undefined;
  const p = await page(r, prefix, delimiter, limit, after);
  return xmlResponse("ListBucketResult", {
    Name: r.bucket,
    Prefix: enc(prefix),
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    MaxKeys: limit,
    KeyCount: p.objects.length + p.prefixes.length,
    IsTruncated: p.next !== null,
    ...(token !== null ? { ContinuationToken: token } : {}),
    ...(p.next !== null ? { NextContinuationToken: encodeCursor(p.next) } : {}),
    ...(startAfter ? { StartAfter: enc(startAfter) } : {}),
    ...(q.get("encoding-type") ? { EncodingType: "url" } : {}),
    Contents: p.objects.map((o) => ({ Key: enc(o.key), LastModified: o.lastModified, ETag: `"${o.etag}"`, Size: o.size, StorageClass: "STANDARD", ...(q.get("fetch-owner") === "true" ? { Owner: OWNER } : {}) })),
    CommonPrefixes: p.prefixes.map((x) => ({ Prefix: enc(x) })),
  });
}

export async function listObjectsV1(r: S3Request): Promise<Response> {
  const q = r.query;
  const enc = encodingType(q);
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const marker = q.get("marker") ?? "";
  const limit = maxKeys(q);
  const p = await page(r, prefix, delimiter, limit, resumeAfter(marker, prefix, delimiter));
  return xmlResponse("ListBucketResult", {
    Name: r.bucket,
    Prefix: enc(prefix),
    Marker: enc(marker),
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    MaxKeys: limit,
    IsTruncated: p.next !== null,
    // S3 sends NextMarker only with a delimiter; clients fall back to the last key otherwise. Sending it always is harmless.
    ...(p.next !== null ? { NextMarker: enc(markerOf(p.next)) } : {}),
    ...(q.get("encoding-type") ? { EncodingType: "url" } : {}),
    Contents: p.objects.map((o) => ({ Key: enc(o.key), LastModified: o.lastModified, ETag: `"${o.etag}"`, Size: o.size, StorageClass: "STANDARD", Owner: OWNER })),
    CommonPrefixes: p.prefixes.map((x) => ({ Prefix: enc(x) })),
  });
}

/**
 * ListObjectVersions: every version and delete marker in key order, newest first within a
 * key (a bucket never versioned lists each current object as version "null").
 */
export async function listObjectVersions(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  const q = r.query;
  const enc = encodingType(q);
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const keyMarker = q.get("key-marker") ?? "";
  const versionIdMarker = q.get("version-id-marker") ?? "";
  const limit = maxKeys(q);
  const p = await r.services.objects.listVersions(r.bucket, { prefix, delimiter, keyMarker: keyMarker || undefined, versionIdMarker: versionIdMarker || undefined, limit });
  const markers = p.versions.filter((v) => isDeleteMarker(v.value));
  const versions = p.versions.filter((v) => !isDeleteMarker(v.value));
  return xmlResponse("ListVersionsResult", {
    Name: r.bucket,
    Prefix: enc(prefix),
    KeyMarker: enc(keyMarker),
    VersionIdMarker: versionIdMarker,
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    MaxKeys: limit,
    IsTruncated: p.next !== undefined,
    ...(p.next ? { NextKeyMarker: enc(p.next.keyMarker), ...(p.next.versionIdMarker !== undefined && { NextVersionIdMarker: p.next.versionIdMarker }) } : {}),
    ...(q.get("encoding-type") ? { EncodingType: "url" } : {}),
    Version: versions.map((v) => {
      const m = v.value as ObjectManifest;
      return { Key: enc(v.key), VersionId: v.versionId, IsLatest: v.isLatest, LastModified: isoDate(m.lastModified), ETag: `"${m.etag}"`, Size: m.size, StorageClass: "STANDARD", Owner: OWNER };
    }),
    DeleteMarker: markers.map((v) => ({ Key: enc(v.key), VersionId: v.versionId, IsLatest: v.isLatest, LastModified: isoDate(v.value.lastModified), Owner: OWNER })),
    CommonPrefixes: p.prefixes.map((x) => ({ Prefix: enc(x) })),
  });
}
