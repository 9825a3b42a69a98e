// S3's bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration (`?lifecycle` on a bucket),
// stored as a side row of the buckets shard. The SDK sends Content-MD5 or an x-amz-checksum-*
// header with the document: requestBody checks either. Rules are checked in lifecycle-rules.ts
// and applied by every peer's lifecycle worker (src/lifecycle/expiry.ts).
import { MeshError } from "../../errors.ts";
import { bucketDocument } from "./bucket-documents.ts";
import { LIFECYCLE_MAX_BYTES, lifecycleBody, parseLifecycleXml } from "./lifecycle-rules.ts";

/**
 * PutBucketLifecycleConfiguration (the whole configuration is replaced),
 * GetBucketLifecycleConfiguration (or S3's NoSuchLifecycleConfiguration), DeleteBucketLifecycle.
 */
export const { put: putBucketLifecycle, get: getBucketLifecycle, delete: deleteBucketLifecycle } = bucketDocument({
  setting: "lifecycle",
  root: "LifecycleConfiguration",
  maxBytes: LIFECYCLE_MAX_BYTES,
  parse: parseLifecycleXml,
  body: lifecycleBody,
  missing: () => new MeshError("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"),
  putStatus: 200,
});
