// S3's bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration (`?lifecycle` on a bucket),
// stored as a side row of the buckets shard. The SDK sends Content-MD5 or an x-amz-checksum-*
// header with the document: requestBody checks either. Rules are checked in lifecycle-rules.ts
// and applied by every peer's lifecycle worker (src/lifecycle/expiry.ts).
import { MeshError } from "../../errors.ts";
import { requireAccess, type S3Request } from "./context.ts";
import { LIFECYCLE_MAX_BYTES, lifecycleBody, parseLifecycleXml } from "./lifecycle-rules.ts";
import { requestBody, smallBody } from "./request.ts";
import { xmlResponse } from "./xml.ts";

/** PutBucketLifecycleConfiguration: the bucket's whole configuration is replaced. */
export async function putBucketLifecycle(r: S3Request): Promise<Response> {
  await requireAccess(r, "owner");
  const rules = parseLifecycleXml(await smallBody(requestBody(r.request, r.caller), LIFECYCLE_MAX_BYTES));
  await r.services.objects.setBucketLifecycle(r.bucket, rules);
  return new Response(null, { status: 200 });
}

/** GetBucketLifecycleConfiguration: the rules, or S3's NoSuchLifecycleConfiguration. */
export async function getBucketLifecycle(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  const rules = await r.services.objects.bucketLifecycle(r.bucket, { signal: r.request.signal });
  if (!rules) throw new MeshError("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist");
  return xmlResponse("LifecycleConfiguration", lifecycleBody(rules));
}

/** DeleteBucketLifecycle. */
export async function deleteBucketLifecycle(r: S3Request): Promise<Response> {
  await requireAccess(r, "owner");
  await r.services.objects.setBucketLifecycle(r.bucket, null);
  return new Response(null, { status: 204 });
}
