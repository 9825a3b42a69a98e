// Who may use a native route, as one Elysia plugin: a route names what it needs in its
// options (`signedIn`, `admin`, or `bucket: "read" | "write" | "owner" | "create"` on its :bucket) and
// gets the caller's `principal` in its context. A missing or wrong token is 401 Unauthorized,
// a key without the permission 403 AccessDenied (src/auth/guard.ts decides both).
import { Elysia } from "elysia";
import type { AccessKeys, Principal } from "../auth/access-keys.ts";
import { requireAdmin, requireBucketAccess, type BearerAuth, type BucketNeed, type BucketOwnerLookup } from "../auth/guard.ts";
import { validateBucketName } from "../metadata/keys.ts";

/** What the native API needs for access control. */
export interface NativeAuth {
  /** The principal behind a request (401 if its token is missing or wrong). */
  authenticate: BearerAuth;
  /** False with `--insecure-no-auth`: every caller is then an admin, token or not. */
  required: boolean;
  keys: Pick<AccessKeys, "list" | "create" | "revoke">;
  /** The owner of a bucket (its creator holds owner rights on it); without it only grants count. */
  owners?: BucketOwnerLookup;
}

/** Without a lookup every bucket counts as one from before owners: only grants decide. */
const noOwners: BucketOwnerLookup = async () => ({});

/** The OpenAPI security requirement of a route that needs a token. */
const BEARER = [{ bearer: [] }];

/** The auth plugin: the `signedIn`, `admin` and `bucket` route options. */
export function nativeAuth(auth: NativeAuth) {
  return new Elysia({ name: "native-auth" }).macro({
    /** Any valid token. */
    signedIn: {
      detail: { security: BEARER },
      async resolve({ request }): Promise<{ principal: Principal }> {
        return { principal: await auth.authenticate(request) };
      },
    },
    /** An admin token. */
    admin: {
      detail: { security: BEARER },
      async resolve({ request }): Promise<{ principal: Principal }> {
        const principal = await auth.authenticate(request);
        requireAdmin(principal);
        return { principal };
      },
    },
    /** A token with `need` on the route's valid :bucket, by grant or as its owner (the name is checked first: its syntax is no secret). */
    bucket: (need: BucketNeed) => ({
      detail: { security: BEARER },
      async resolve({ request, params }: { request: Request; params: Record<string, string | undefined> }): Promise<{ principal: Principal; bucket: string }> {
        const bucket = params.bucket ?? "";
        validateBucketName(bucket);
        const principal = await auth.authenticate(request);
        const owned = requireBucketAccess(principal, bucket, need, auth.owners ?? noOwners);
        if (owned) await owned;
        return { principal, bucket };
      },
    }),
  });
}
