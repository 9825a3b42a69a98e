// What every S3 operation receives: the parsed request, the caller, and the peer's services.
import type { Principal } from "../../auth/access-keys.ts";
import { requireBucketAccess, type BucketNeed } from "../../auth/guard.ts";
import { BadRequestError } from "../../errors.ts";
import type { Multipart } from "../../objects/multipart.ts";
import type { ObjectService } from "../../objects/object-service.ts";
import type { UploadRecords } from "../../uploads/service.ts";
import type { S3Streams } from "./listen.ts";
import type { PullThrough } from "../../remotes/pull-through.ts";
import type { S3Caller } from "./request.ts";

/** The peer's services the S3 API uses. */
export interface S3Services {
  objects: ObjectService;
  multipart: Multipart;
  /** Upload progress records (src/uploads/); without them uploads get none. */
  uploads?: Pick<UploadRecords, "begin" | "beginMultipart" | "beginPart" | "endMultipart">;
  /** Live change events (ListenBucketNotification); without them it answers NotImplemented. */
  listen?: S3Streams;
  /** Pull-through reads of buckets with an origin (src/remotes/); without it a miss is a miss. */
  pull?: Pick<PullThrough, "serve">;
}

/** One S3 request, parsed. */
export interface S3Request {
  request: Request;
  method: string;
  /** Path-style bucket ("" for the service). */
  bucket: string;
  /** Object key ("" for bucket and service requests). */
  key: string;
  query: URLSearchParams;
  caller: S3Caller;
  who: Principal;
  services: S3Services;
}

/** Throw AccessDenied unless the caller holds `need` on `bucket` (the request's by default), by grant or as the bucket's owner. */
export function requireAccess(r: S3Request, need: BucketNeed, bucket: string = r.bucket): Promise<void> | undefined {
  return requireBucketAccess(r.who, bucket, need, (b) => r.services.objects.bucketOwner(b, { signal: r.request.signal }));
}

/** Lowercase ISO-8601 with milliseconds, as S3 lists dates. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** Headers that carry user metadata in S3. */
export const S3_META_PREFIX = "x-amz-meta-";

/** S3's owner block for what no key owns (objects, and buckets made before buckets had owners): this mesh. */
export const OWNER = { ID: "meshstore", DisplayName: "meshstore" };

/** S3's owner block for an access key: its id, and its name as DisplayName (the id if it has none). */
export function ownerOf(who: Principal): { ID: string; DisplayName: string } {
  return { ID: who.accessKeyId, DisplayName: who.name || who.accessKeyId };
}

/** A count parameter such as max-keys: 1000 when absent, at most 1000, at least `min`. */
export function countParam(q: URLSearchParams, name: string, min: number): number {
  const v = q.get(name);
  if (v === null || v === "") return 1000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BadRequestError(`Provided ${name} not an integer or within integer range`, "InvalidArgument");
  return Math.max(min, Math.min(n, 1000));
}

/** Encode a key for `encoding-type=url` (botocore decodes with unquote_plus, so "+" must be escaped). */
export function urlEncodeKey(s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, "/");
}
