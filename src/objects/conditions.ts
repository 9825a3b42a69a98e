// The preconditions of a conditional write (S3's If-Match / If-None-Match on PutObject,
// CopyObject and CompleteMultipartUpload; If-Match, x-amz-if-match-size and
// x-amz-if-match-last-modified-time on DeleteObject and in DeleteObjects), checked against
// the object's current manifest inside a consensus round (src/metadata/consensus.ts), so
// the check and the write are one step for every other conditional writer of the key.
import { MeshError, NotFoundError } from "../errors.ts";
import type { ObjectManifest } from "../metadata/types.ts";

/** What a write requires of the object it replaces. */
export interface WriteCondition {
  /** The current object's ETag (unquoted), or "*": any object. */
  ifMatch?: string;
  /** Only "*": there must be no object. */
  ifNoneMatch?: "*";
  /** The current object's size (deletes). */
  ifMatchSize?: number;
  /** The current object's Last-Modified, to the second (deletes; epoch ms). */
  ifMatchLastModified?: number;
  /**
   * The current object's Last-Modified to the millisecond (no S3 header sends it): a lifecycle
   * expiration deletes only the very object it judged, not one written again with the same
   * bytes in the same second (src/lifecycle/expiry.ts).
   */
  ifLastModifiedMs?: number;
  /** The current object's tags, exactly (no S3 header sends it): an expiration by a tag rule deletes only an object still so tagged. */
  ifTags?: Record<string, string>;
}

/** Does the condition ask anything? (An empty one takes the plain write path.) */
export const isConditional = (c: WriteCondition | undefined): c is WriteCondition =>
  c !== undefined && (c.ifMatch !== undefined || c.ifNoneMatch !== undefined || c.ifMatchSize !== undefined || c.ifMatchLastModified !== undefined || c.ifLastModifiedMs !== undefined || c.ifTags !== undefined);

/** Tag sets as one comparable string. */
const tagsKey = (tags: Record<string, string> | undefined) => JSON.stringify(Object.entries(tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const failed = (what: string) => new MeshError("PreconditionFailed", `At least one of the pre-conditions you specified did not hold (${what})`);

/** Why `current` (null: no object) fails the condition, as S3 answers it; undefined if it holds. */
export function conditionFailure(c: WriteCondition, current: ObjectManifest | null, key: string): Error | undefined {
  if (c.ifNoneMatch === "*" && current) return failed("If-None-Match: an object exists under this key");
  const asksMatch = c.ifMatch !== undefined || c.ifMatchSize !== undefined || c.ifMatchLastModified !== undefined || c.ifLastModifiedMs !== undefined || c.ifTags !== undefined;
  if (!asksMatch) return undefined;
  if (!current) return new NotFoundError(`no object ${key.slice(0, 200)}: If-Match needs one`, "NoSuchKey");
  if (c.ifMatch !== undefined && c.ifMatch !== "*" && c.ifMatch !== current.etag) return failed("If-Match");
  if (c.ifMatchSize !== undefined && c.ifMatchSize !== current.size) return failed("x-amz-if-match-size");
  if (c.ifMatchLastModified !== undefined && Math.floor(c.ifMatchLastModified / 1000) !== Math.floor(current.lastModified / 1000)) return failed("x-amz-if-match-last-modified-time");
  if (c.ifLastModifiedMs !== undefined && c.ifLastModifiedMs !== current.lastModified) return failed("the object was written again");
  if (c.ifTags !== undefined && tagsKey(c.ifTags) !== tagsKey(current.tags)) return failed("the object's tags changed");
  return undefined;
}
