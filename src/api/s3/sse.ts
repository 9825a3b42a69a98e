// S3's server-side encryption headers: what a request asks for (SSE-S3 `AES256`, or an SSE-C
// customer key with its MD5), what it must carry to read an encrypted object, and the
// headers S3 answers with. SSE-KMS is refused with NotImplemented, and every malformed or
// inapplicable SSE header is a 4xx: nothing SSE-related is ignored, so a client never
// believes it got encryption it did not get. The customer key lives only in this request's
// memory: it is never stored (src/objects/sse-seal.ts keeps only the data key wrapped by it)
// and never logged (errors name headers, not their values).
import { createHash } from "node:crypto";
import { BadRequestError, MeshError } from "../../errors.ts";
import type { ObjectManifest, SseKind } from "../../metadata/types.ts";
import type { ObjectService } from "../../objects/object-service.ts";
import type { ObjectKey } from "../../objects/sse-seal.ts";

const SSE = "x-amz-server-side-encryption";
const KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id";
const KMS_CONTEXT = "x-amz-server-side-encryption-context";
const BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled";
const CUSTOMER = "server-side-encryption-customer-";

/** A customer key as a request carries it (SSE-C). */
export interface CustomerKey {
  key: Buffer;
  /** The MD5 the client sent (base64), echoed back as S3 does. */
  md5: string;
}

/** What a write asks for: SSE-S3, SSE-C with its key, or nothing said. */
export type SseRequest = { kind: "S3" } | { kind: "C"; customer: CustomerKey } | null;

const kmsRefused = () => new MeshError("NotImplemented", "SSE-KMS (aws:kms, aws:kms:dsse, KMS key ids and contexts) is not implemented: use AES256 (SSE-S3) or a customer key (SSE-C)");

/** The algorithm named in an SSE header: AES256 only; KMS answers NotImplemented. */
function algorithm(value: string): "AES256" {
  if (value === "AES256") return value;
  if (value.startsWith("aws:kms")) throw kmsRefused();
  throw new BadRequestError(`The encryption method specified is not supported (${value.slice(0, 40)})`, "InvalidArgument");
}

/**
 * The customer key under `prefix` ("x-amz-" for the object, "x-amz-copy-source-" for a copy's
 * source), or null when none of its three headers is there. All three or none; the key must
 * be 32 bytes and its MD5 match, as S3 checks.
 */
export function customerKey(h: Headers, prefix = "x-amz-"): CustomerKey | null {
  const alg = h.get(`${prefix}${CUSTOMER}algorithm`);
  const key = h.get(`${prefix}${CUSTOMER}key`);
  const md5 = h.get(`${prefix}${CUSTOMER}key-md5`);
  if (alg === null && key === null && md5 === null) return null;
  if (alg === null) throw new BadRequestError("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.", "InvalidArgument");
  if (alg !== "AES256") throw new BadRequestError("The encryption algorithm specified is not valid: only AES256 is", "InvalidEncryptionAlgorithmError");
  if (key === null) throw new BadRequestError("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.", "InvalidArgument");
  if (md5 === null) throw new BadRequestError("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.", "InvalidArgument");
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(key) ? Buffer.from(key, "base64") : Buffer.alloc(0);
  if (bytes.byteLength !== 32) throw new BadRequestError("The secret key was invalid for the specified algorithm: it must be 32 bytes, base64.", "InvalidArgument");
  if (createHash("md5").update(bytes).digest("base64") !== md5) throw new BadRequestError("The calculated MD5 hash of the key did not match the hash that was provided.", "InvalidArgument");
  return { key: bytes, md5 };
}

/** What a write (PutObject, CopyObject's target, CreateMultipartUpload) asks for in its headers. */
export function requestedSse(h: Headers): SseRequest {
  if (h.has(KMS_KEY) || h.has(KMS_CONTEXT)) throw kmsRefused();
  // A bucket key only saves KMS calls: with no KMS, asking for one is asking for KMS.
  const bucketKey = h.get(BUCKET_KEY);
  if (bucketKey !== null && bucketKey.toLowerCase() !== "false") throw kmsRefused();
  const sse = h.get(SSE);
  const customer = customerKey(h);
  if (sse !== null && customer) throw new BadRequestError("Server Side Encryption with Customer provided key is incompatible with the encryption method specified", "InvalidArgument");
  if (sse !== null) return (algorithm(sse), { kind: "S3" });
  return customer ? { kind: "C", customer } : null;
}

/** The key for a new object or upload that asked for `wanted`, else the bucket's default (SSE-S3), else none. */
export async function keyForWrite(objects: ObjectService, bucket: string, wanted: SseRequest): Promise<ObjectKey | undefined> {
  if (wanted?.kind === "C") return objects.newKey("C", wanted.customer.key);
  if (wanted?.kind === "S3" || (await objects.settings.encryption.get(bucket))) return objects.newKey("S3");
  return undefined;
}

/**
 * The data key to read `m` with, given the request's customer key under `prefix`: undefined
 * for a clear object (a customer key sent for one is refused: S3 does, and it would be a
 * client believing it was encrypted), the key for SSE-C (a missing key is InvalidRequest, a
 * wrong one AccessDenied), and for SSE-S3 the mesh opens it (a customer key sent is refused).
 */
export function keyForRead(objects: ObjectService, m: Pick<ObjectManifest, "sse">, h: Headers, prefix = "x-amz-"): ObjectKey | undefined {
  // S3 refuses x-amz-server-side-encryption on reads (it is a write header).
  if (prefix === "x-amz-" && h.has(SSE)) throw new BadRequestError("x-amz-server-side-encryption is a header of writes, not of reads", "InvalidArgument");
  const customer = customerKey(h, prefix);
  if (!m.sse || m.sse.kind === "S3") {
    if (customer) throw new BadRequestError("The encryption parameters are not applicable to this object.", "InvalidRequest");
    return m.sse ? objects.openKey(m.sse) : undefined;
  }
  if (!customer) throw new BadRequestError("The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.", "InvalidRequest");
  return objects.openKey(m.sse, customer.key);
}

/** The SSE response headers of an object of `kind` (SSE-C: with the request's key MD5 when it sent one). */
export function sseHeaders(kind: SseKind | undefined, customer?: CustomerKey | null): Record<string, string> {
  if (kind === "S3") return { [SSE]: "AES256" };
  if (kind === "C") return { [`x-amz-${CUSTOMER}algorithm`]: "AES256", ...(customer ? { [`x-amz-${CUSTOMER}key-md5`]: customer.md5 } : {}) };
  return {};
}
