// Who is asking, and may they? The native API authenticates with a bearer token; the S3
// API with SigV4 (src/api/s3/request.ts, sigv4.ts). Both end in a Principal checked here.
import type { AuthLimiter } from "../api/client-limits.ts";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";
import { allows, type AccessKeys, type Permission, type Principal } from "./access-keys.ts";

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

/** Throw AccessDenied unless `who` is an admin key. */
export function requireAdmin(who: Principal): void {
  if (!who.admin) throw new ForbiddenError(`access key ${who.accessKeyId} is not an admin key`);
}
