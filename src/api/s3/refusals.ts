// Request headers that ask for something this mesh does not do, refused rather than
// ignored: a client that asked for a public-read ACL, a grant or an object-locked bucket
// must not be told it got one. Canned ACL `private` is what every bucket and object here
// already is, so it is accepted (tools such as rclone and s3cmd send it by default).
// The ?acl, ?policy and ?object-lock sub-resources are refused by the router (handler.ts).
import { BadRequestError, MeshError } from "../../errors.ts";

/** The S3 operations that take ACL headers (CreateBucket, PutObject, CopyObject, CreateMultipartUpload). */
const ACL_OPERATIONS = new Set(["CreateBucket", "PutObject", "CopyObject", "CreateMultipartUpload"]);
/** The operations that write an object, and so could carry per-object lock settings. */
const OBJECT_WRITES = new Set(["PutObject", "CopyObject", "CreateMultipartUpload"]);
/** Per-object lock settings: S3 refuses them on a bucket without object lock, and no bucket here has it. */
const OBJECT_LOCK_HEADERS = ["x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold"];

const notImplemented = (what: string) => new MeshError("NotImplemented", `A header you provided implies functionality that is not implemented (${what})`);

/**
 * Throw unless `operation` (its S3 name) can honour every header in `headers`: 501
 * NotImplemented for a canned ACL other than private, any x-amz-grant-* header, or
 * CreateBucket with object lock enabled; 400 InvalidRequest for per-object lock settings,
 * as S3 answers them on a bucket without object lock.
 */
export function refuseUnsupportedHeaders(operation: string, headers: Headers): void {
  if (ACL_OPERATIONS.has(operation)) {
    const acl = headers.get("x-amz-acl");
    if (acl !== null && acl.trim().toLowerCase() !== "private") throw notImplemented(`x-amz-acl: ${acl.trim().slice(0, 40)}; only private is supported`);
    for (const [name] of headers) {
      if (name.startsWith("x-amz-grant-")) throw notImplemented(`${name}; ACL grants are not supported`);
    }
  }
  if (operation === "CreateBucket" && headers.get("x-amz-bucket-object-lock-enabled")?.trim().toLowerCase() === "true") {
    throw notImplemented("x-amz-bucket-object-lock-enabled: object lock is not supported");
  }
  if (OBJECT_WRITES.has(operation)) {
    const lock = OBJECT_LOCK_HEADERS.find((name) => headers.has(name));
    if (lock) throw new BadRequestError(`Bucket is missing Object Lock Configuration (${lock}); object lock is not supported`, "InvalidRequest");
  }
}
