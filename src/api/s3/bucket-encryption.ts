// S3's bucket default encryption: PutBucketEncryption, GetBucketEncryption and
// DeleteBucketEncryption (`?encryption`). Only SSEAlgorithm AES256 (SSE-S3) is served; a
// rule naming KMS answers NotImplemented, never stored as if it applied. The object service
// applies the default to every write that names no encryption (src/objects/object-service.ts).
import { requirePermission } from "../../auth/guard.ts";
import { BadRequestError, MeshError, NotFoundError } from "../../errors.ts";
import type { S3Request } from "./context.ts";
import { requestBody, smallBody } from "./request.ts";
import { ENCRYPTION_MAX_BYTES, parseEncryptionRequest, xmlResponse } from "./xml.ts";

/** PutBucketEncryption: AES256 only. */
export async function putBucketEncryption(r: S3Request): Promise<Response> {
  requirePermission(r.who, r.bucket, "owner");
  const rule = parseEncryptionRequest(await smallBody(requestBody(r.request, r.caller), ENCRYPTION_MAX_BYTES));
  if (rule.algorithm.startsWith("aws:kms") || rule.kmsKeyId) throw new MeshError("NotImplemented", "SSE-KMS default encryption is not implemented: use SSEAlgorithm AES256");
  if (rule.algorithm !== "AES256") throw new BadRequestError(`The SSEAlgorithm ${rule.algorithm.slice(0, 40)} is not valid: use AES256`, "MalformedXML");
  await r.services.objects.setBucketEncryption(r.bucket, { algorithm: "AES256", ...(rule.bucketKey !== undefined && { bucketKey: rule.bucketKey }) });
  return new Response(null, { status: 200 });
}

/** GetBucketEncryption: the rule, or S3's ServerSideEncryptionConfigurationNotFoundError. */
export async function getBucketEncryption(r: S3Request): Promise<Response> {
  requirePermission(r.who, r.bucket, "read");
  const cfg = await r.services.objects.bucketEncryption(r.bucket, { signal: r.request.signal });
  if (!cfg) throw new NotFoundError("The server side encryption configuration was not found", "ServerSideEncryptionConfigurationNotFoundError");
  return xmlResponse("ServerSideEncryptionConfiguration", {
    Rule: { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: cfg.algorithm }, BucketKeyEnabled: cfg.bucketKey ?? false },
  });
}

/** DeleteBucketEncryption: new objects are stored in clear again (existing ones stay encrypted). */
export async function deleteBucketEncryption(r: S3Request): Promise<Response> {
  requirePermission(r.who, r.bucket, "owner");
  await r.services.objects.setBucketEncryption(r.bucket, null);
  return new Response(null, { status: 204 });
}
