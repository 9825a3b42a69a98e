// S3's conditional-write headers, read into a WriteCondition (src/objects/conditions.ts):
// If-Match and If-None-Match on PutObject, CopyObject and CompleteMultipartUpload;
// If-Match, x-amz-if-match-size and x-amz-if-match-last-modified-time on DeleteObject (and
// their <ETag>, <Size>, <LastModifiedTime> fields inside DeleteObjects).
import { BadRequestError, MeshError } from "../errors.ts";
import type { WriteCondition } from "../objects/conditions.ts";

const unquote = (etag: string) => etag.trim().replace(/^"|"$/g, "").toLowerCase();

/** The condition of a write that replaces an object (PutObject, CopyObject, CompleteMultipartUpload). */
export function writeCondition(h: Headers): WriteCondition | undefined {
  const ifMatch = h.get("if-match");
  const ifNoneMatch = h.get("if-none-match");
  if (ifMatch === null && ifNoneMatch === null) return undefined;
  if (ifNoneMatch !== null && ifNoneMatch.trim() !== "*") throw new MeshError("NotImplemented", "A header you provided implies functionality that is not implemented (If-None-Match on a write takes only *)");
  if (ifMatch !== null && ifNoneMatch !== null) throw new MeshError("NotImplemented", "A header you provided implies functionality that is not implemented (If-Match with If-None-Match on a write)");
  if (ifMatch !== null && !ifMatch.trim()) throw new BadRequestError("If-Match must name an ETag", "InvalidArgument");
  return ifMatch !== null ? { ifMatch: ifMatch.trim() === "*" ? "*" : unquote(ifMatch) } : { ifNoneMatch: "*" };
}

/** The condition of a delete, from headers (DeleteObject) or one <Object>'s fields (DeleteObjects). */
export function deleteCondition(fields: { etag?: string | null; size?: string | null; lastModified?: string | null }): WriteCondition | undefined {
  const c: WriteCondition = {};
  if (fields.etag != null) {
    if (!fields.etag.trim()) throw new BadRequestError("If-Match must name an ETag", "InvalidArgument");
    c.ifMatch = fields.etag.trim() === "*" ? "*" : unquote(fields.etag);
  }
  if (fields.size != null) {
    const size = Number(fields.size.trim());
    if (!/^[0-9]{1,16}$/.test(fields.size.trim()) || !Number.isSafeInteger(size)) throw new BadRequestError("x-amz-if-match-size must be a whole number of bytes", "InvalidArgument");
    c.ifMatchSize = size;
  }
  if (fields.lastModified != null) {
    const ms = Date.parse(fields.lastModified.trim());
    if (!Number.isFinite(ms)) throw new BadRequestError("x-amz-if-match-last-modified-time must be a date", "InvalidArgument");
    c.ifMatchLastModified = ms;
  }
  return Object.keys(c).length ? c : undefined;
}

/** DeleteObject's headers. */
export const deleteHeaders = (h: Headers) => deleteCondition({ etag: h.get("if-match"), size: h.get("x-amz-if-match-size"), lastModified: h.get("x-amz-if-match-last-modified-time") });
