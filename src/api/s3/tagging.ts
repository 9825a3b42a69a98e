// S3 tagging: Put/Get/DeleteObjectTagging (`?tagging` on a key) and Put/Get/DeleteBucketTagging
// (`?tagging` on a bucket). Object tags live in the object's manifest (a new manifest row, same
// chunks, written through the normal index write with an ObjectTagging event); a bucket's tags
// are a side row of the buckets shard. Tags are checked against S3's limits in tags.ts.
import { NotFoundError } from "../../errors.ts";
import { bucketDocument } from "./bucket-documents.ts";
import { requireAccess, type S3Request } from "./context.ts";
import { checkVersionId } from "./objects.ts";
import { requestBody, smallBody } from "./request.ts";
import { parseTaggingXml, taggingBody, TAGGING_MAX_BYTES } from "./tags.ts";
import { xmlResponse } from "./xml.ts";

/** Only the "null" version exists until buckets are versioned. */
const VERSION = { "x-amz-version-id": "null" };

/** PutObjectTagging: the object's whole tag set is replaced. */
export async function putObjectTagging(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  checkVersionId(r.query);
  const tags = parseTaggingXml(await smallBody(requestBody(r.request, r.caller), TAGGING_MAX_BYTES), "object");
  await r.services.objects.setObjectTags(r.bucket, r.key, tags, { actor: r.who.accessKeyId, signal: r.request.signal });
  return new Response(null, { status: 200, headers: VERSION });
}

/** GetObjectTagging: the object's tags (an empty TagSet when it has none, as S3 answers). */
export async function getObjectTagging(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  checkVersionId(r.query);
  const m = await r.services.objects.headObject(r.bucket, r.key, { signal: r.request.signal });
  return xmlResponse("Tagging", taggingBody(m.tags), 200, VERSION);
}

/** DeleteObjectTagging: the object keeps its bytes and loses its tags. */
export async function deleteObjectTagging(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  checkVersionId(r.query);
  await r.services.objects.setObjectTags(r.bucket, r.key, null, { actor: r.who.accessKeyId, signal: r.request.signal });
  return new Response(null, { status: 204, headers: VERSION });
}

/** PutBucketTagging (the whole tag set is replaced, at most 50 tags), GetBucketTagging (or S3's NoSuchTagSet), DeleteBucketTagging. */
export const { put: putBucketTagging, get: getBucketTagging, delete: deleteBucketTagging } = bucketDocument({
  setting: "tags",
  root: "Tagging",
  maxBytes: TAGGING_MAX_BYTES,
  parse: (xml) => {
    const tags = parseTaggingXml(xml, "bucket");
    return Object.keys(tags).length ? tags : null;
  },
  body: taggingBody,
  missing: () => new NotFoundError("The TagSet does not exist", "NoSuchTagSet"),
  putStatus: 204,
});
