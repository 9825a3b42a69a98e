// Who is asking, and may they? The native API authenticates with a bearer token; the S3
// API with SigV4 (src/api/s3/request.ts, sigv4.ts). Both end in a Principal checked here.
import type { AuthLimiter } from "../api/client-limits.ts";
import { ConflictError, ForbiddenError, NotFoundError, UnauthorizedError } from "../errors.ts";
import { allows, mayCreate, type AccessKeys, type Permission, type Principal } from "./access-keys.ts";

/** Everyone, when the peer runs with `--insecure-no-auth`. */
export const ANONYMOUS_ADMIN: Principal = { accessKeyId: "anonymous", admin: true, buckets: {} };

/** Resolves the principal of a native-API request from its `Authorization: Bearer` header. */
export type BearerAuth = (request: Request) => Promise<Principal>;

/** Bearer-token authentication against the mesh's keys; with `enabled` false everyone is admin. Failures and each key's use go to `limiter`. */
export function bearerAuth(keys: Pick<AccessKeys, "byToken">, enabled: boolean, limiter?: AuthLimiter): BearerAuth {
  if (!enabled) return async () => ANONYMOUS_ADMIN;
  const refuse = (request: Request, message: string) => {
    limiter?.authFailed(request);
    return new UnauthorizedError(message);
  };
  return async (request) => {
    const header = request.headers.get("authorization");
    if (!header) throw refuse(request, "this API needs an access token: send Authorization: Bearer <token>");
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw refuse(request, "the Authorization header must be: Bearer <token>");
    const key = await keys.byToken(m[1]);
    if (!key) throw refuse(request, "the access token is not valid (unknown, revoked or mistyped)");
    limiter?.keyUsed(request, key.accessKeyId);
    return key;
  };
}

/** Throw AccessDenied unless `who` holds `need` on `bucket`. */
export function requirePermission(who: Principal, bucket: string, need: Permission): void {
  if (!allows(who, bucket, need)) throw new ForbiddenError(`access key ${who.accessKeyId} does not have ${need} permission on bucket ${bucket.slice(0, 80)}`);
}

/** A bucket's owner as its row has it: `owner` undefined for a bucket made before buckets had owners; null: no such bucket. */
export type BucketOwnership = { owner?: string } | null;

/** Reads a bucket's ownership (a cached read of its row). */
export type BucketOwnerLookup = (bucket: string) => Promise<BucketOwnership>;

/** What a route needs on its bucket: a permission, or leave to create it. */
export type BucketNeed = Permission | "create";

/**
 * Throw AccessDenied unless `who` holds `need` on `bucket`, through its grants or as the
 * bucket's owner. Grants are checked first, so keys that hold them cost no lookup; only
 * a key without a grant asks `ownerOf` (a cached read of the bucket's row).
 */
export function requireBucketAccess(who: Principal, bucket: string, need: BucketNeed, ownerOf: BucketOwnerLookup): Promise<void> | undefined {
  if (need === "create") {
    if (!mayCreate(who, bucket)) throw new ForbiddenError(`access key ${who.accessKeyId} may not create bucket ${bucket.slice(0, 80)}`);
    return undefined;
  }
  // Answered at once (no promise) for a key whose grants decide: the common case, on every request.
  if (allows(who, bucket, need)) return undefined;
  return ownerAccess(who, bucket, need, ownerOf);
}

async function ownerAccess(who: Principal, bucket: string, need: Permission, ownerOf: BucketOwnerLookup): Promise<void> {
  // Only keys that may create buckets can own any: the rest are refused without a lookup.
  if (who.create === true) {
    const found = await ownerOf(bucket);
    if (found?.owner === who.accessKeyId) return;
    // A key that could create the bucket learns nothing from hearing it does not exist.
    if (found === null) throw new NotFoundError(`bucket ${bucket.slice(0, 80)} does not exist`, "NoSuchBucket");
  }
  requirePermission(who, bucket, need);
}

/** The owner to record on a bucket `who` creates: its access key, or none with auth off (the anonymous admin owns nothing). */
export function ownerToRecord(who: Principal): string | undefined {
  return who === ANONYMOUS_ADMIN ? undefined : who.accessKeyId;
}

/**
 * Whose is an existing bucket, as a CreateBucket by `who` answers: "yours" if `who` owns it,
 * or it has no recorded owner (made before owners, or with auth off) and `who` holds owner
 * rights on it through grants; "taken" otherwise (S3's BucketAlreadyExists).
 */
export function createVerdict(who: Principal, bucket: string, owner: string | undefined): "yours" | "taken" {
  if (owner !== undefined) return owner === who.accessKeyId ? "yours" : "taken";
  return allows(who, bucket, "owner") ? "yours" : "taken";
}

/** S3's answer to creating a bucket another key owns. */
export function bucketTaken(bucket: string): ConflictError {
  return new ConflictError(`The requested bucket name ${bucket.slice(0, 80)} is not available. The bucket namespace is shared by all users of the mesh. Please select a different name and try again.`, "BucketAlreadyExists");
}

/** Throw AccessDenied unless `who` is an admin key. */
export function requireAdmin(who: Principal): void {
  if (!who.admin) throw new ForbiddenError(`access key ${who.accessKeyId} is not an admin key`);
}
