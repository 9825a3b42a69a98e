// S3's bucket default encryption: PutBucketEncryption, GetBucketEncryption and
// DeleteBucketEncryption (`?encryption`). Only SSEAlgorithm AES256 (SSE-S3) is served; a
// rule naming KMS answers NotImplemented, never stored as if it applied. The object service
// applies the default to every write that names no encryption (src/objects/object-service.ts).
import { BadRequestError, MeshError, NotFoundError } from "../../errors.ts";
import { bucketDocument } from "./bucket-documents.ts";
import { ENCRYPTION_MAX_BYTES, parseEncryptionRequest } from "./xml.ts";

/**
 * PutBucketEncryption (AES256 only), GetBucketEncryption (or S3's
 * ServerSideEncryptionConfigurationNotFoundError), DeleteBucketEncryption (new objects are
 * stored in clear again; existing ones stay encrypted).
 */
export const { put: putBucketEncryption, get: getBucketEncryption, delete: deleteBucketEncryption } = bucketDocument({
  setting: "encryption",
  root: "ServerSideEncryptionConfiguration",
  maxBytes: ENCRYPTION_MAX_BYTES,
  parse: (xml) => {
    const rule = parseEncryptionRequest(xml);
    if (rule.algorithm.startsWith("aws:kms") || rule.kmsKeyId) throw new MeshError("NotImplemented", "SSE-KMS default encryption is not implemented: use SSEAlgorithm AES256");
    if (rule.algorithm !== "AES256") throw new BadRequestError(`The SSEAlgorithm ${rule.algorithm.slice(0, 40)} is not valid: use AES256`, "MalformedXML");
    return { algorithm: "AES256", ...(rule.bucketKey !== undefined && { bucketKey: rule.bucketKey }) };
  },
  body: (cfg) => ({ Rule: { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: cfg.algorithm }, BucketKeyEnabled: cfg.bucketKey ?? false } }),
  missing: () => new NotFoundError("The server side encryption configuration was not found", "ServerSideEncryptionConfigurationNotFoundError"),
  putStatus: 200,
});
