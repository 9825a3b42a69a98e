// The native HTTP API (curl-friendly JSON). Routes read the peer through narrow
// interfaces so that they can be tested with `app.handle(new Request(...))`.
import { Elysia } from "elysia";
import { seesBucket, validateSpec, type AccessKeys, type Principal } from "../auth/access-keys.ts";
import { requireAdmin, requirePermission, type BearerAuth } from "../auth/guard.ts";
import { BadRequestError, MeshError } from "../errors.ts";
import { decodePathPiece, validateBucketName } from "../metadata/keys.ts";
import type { ObjectService } from "../objects/object-service.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { errorResponse, toErrorResponse } from "./errors.ts";
import { objectHeaders, storedHeaders, userMeta } from "./object-headers.ts";
import { parseRange } from "./range.ts";

/** A member in `/cluster/peers`: `addrs` are its p2p addresses, shown only to key holders. */
export interface ListedMember {
  addrs: string[];
}

/** What the native API needs from the peer. */
export interface ClusterView {
  readonly peerId: string;
  peers(): { self: ListedMember; peers: ListedMember[] };
  status(): unknown;
  /** Start (or keep) handing all data off; answers whether it is safe to stop yet. */
  drain(): Promise<unknown>;
  /** Take a dead member out of the mesh for good. */
  removeMember(id: string): Promise<unknown>;
}

const META_PREFIX = "x-meta-";

/**
 * The object key is everything after `/objects/` in the raw request path, percent-decoded
 * once. Taken from the raw URL so `a//b` and `%2F` survive as bytes of the key.
 */
function rawKey(request: Request, route: RegExp): string {
  const url = request.url;
  const pathStart = url.indexOf("/", url.indexOf("://") + 3);
  const q = url.indexOf("?", pathStart);
  const raw = route.exec(url.slice(pathStart, q < 0 ? undefined : q))?.[1] ?? "";
  return decodePathPiece(raw);
}
/** True if the path of `url` percent-decodes to UTF-8. */
function validPath(url: string): boolean {
  const pathStart = url.indexOf("/", url.indexOf("://") + 3);
  const q = url.indexOf("?", pathStart);
  try {
    decodeURIComponent(url.slice(pathStart, q < 0 ? undefined : q));
    return true;
  } catch {
    return false;
  }
}

const OBJECT_PATH = /^\/buckets\/[^/]*\/objects\/(.*)$/s;
const LOCATE_PATH = /^\/cluster\/locate\/[^/]*\/(.*)$/s;

function parseLimit(v: string | null): number | undefined {
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new BadRequestError("limit must be a whole number of at least 1", "InvalidArgument");
  return Math.min(n, 1000);
}

async function objectRoute(objects: ObjectService, who: Principal, request: Request, bucket: string): Promise<Response> {
  validateBucketName(bucket);
  const key = rawKey(request, OBJECT_PATH);
  const reading = request.method === "GET" || request.method === "HEAD";
  requirePermission(who, bucket, reading ? "read" : "write");
  switch (request.method) {
    case "PUT": {
      const declared = request.headers.get("content-length");
      const contentLength = declared === null ? undefined : Number(declared);
      if (contentLength !== undefined && !(Number.isInteger(contentLength) && contentLength >= 0)) throw new BadRequestError("invalid Content-Length", "InvalidArgument");
      const result = await objects.putObject(bucket, key, request.body, {
        contentLength,
        contentType: request.headers.get("content-type") ?? undefined,
        meta: userMeta(request.headers, META_PREFIX),
        headers: storedHeaders(request.headers),
        signal: request.signal,
      });
      return Response.json(result, { headers: { etag: `"${result.etag}"` } });
    }
    case "GET":
    case "HEAD": {
      const m = await objects.headObject(bucket, key, { signal: request.signal });
      const headers = objectHeaders(m, META_PREFIX);
      const range = parseRange(request.headers.get("range"), m.size);
      if (range === "unsatisfiable") {
        return new Response(JSON.stringify({ error: { code: "InvalidRange", message: `the range is not satisfiable for an object of ${m.size} bytes` } }), {
          status: 416,
          headers: { "content-type": "application/json", "content-range": `bytes */${m.size}` },
        });
      }
      const [start, end] = range ?? [0, m.size];
      headers["content-length"] = String(end - start);
      if (range) headers["content-range"] = `bytes ${start}-${end - 1}/${m.size}`;
      const status = range ? 206 : 200;
      if (request.method === "HEAD") return new Response(null, { status, headers });
      return new Response(await objects.readObject(m, start, end, { signal: request.signal }), { status, headers });
    }
    case "DELETE":
      await objects.deleteObject(bucket, key);
      return new Response(null, { status: 204 });
    default:
      return errorResponse(405, "MethodNotAllowed", `${request.method} is not supported on objects`);
  }
}

/** What the native API needs for access control. */
export interface NativeAuth {
  /** The principal behind a request (401 if its token is missing or wrong). */
  authenticate: BearerAuth;
  /** False with `--insecure-no-auth`: every caller is then an admin, token or not. */
  required: boolean;
  keys: AccessKeys;
}

async function jsonBody(request: Request): Promise<unknown> {
  const text = await request.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new BadRequestError("the body is not valid JSON", "InvalidArgument");
  }
}

/** `/cluster/peers` for a caller without a token: the members without their p2p addresses. */
function withoutAddrs(view: { self: ListedMember; peers: ListedMember[] }) {
  const hide = ({ addrs: _, ...member }: ListedMember) => member;
  return { self: hide(view.self), peers: view.peers.map(hide) };
}

/**
 * Build the native API app for one peer. `/health`, `/cluster/peers` and `/cluster/status` are
 * open (the peers' p2p addresses only with a token); everything else needs a token.
 */
export function createNativeApi(view: ClusterView, objects: ObjectService, auth: NativeAuth) {
  const who = (request: Request) => auth.authenticate(request);
  return new Elysia()
    .onError(({ code, error }) => toErrorResponse(code, error))
    // The router hands a path parameter it cannot percent-decode to the route as null.
    .onRequest(({ request }) => (validPath(request.url) ? undefined : errorResponse(400, "InvalidURI", "the path is not valid percent-encoded UTF-8")))
    .get("/health", () => ({ status: "ok", peerId: view.peerId }))
    .get("/cluster/peers", async ({ request }) => {
      // Where to dial the mesh is for key holders (with auth off, everyone is one). No token
      // just leaves the addresses out; a wrong token is a 401, so a typo is not mistaken for that.
      // A token that cannot be checked right now (this side of a partition cannot read the
      // keys) leaves them out too: the view of the mesh matters most exactly then.
      // No token is not a failed authentication (nothing to count against the address).
      if (auth.required && !request.headers.has("authorization")) return withoutAddrs(view.peers());
      const holder = await who(request).catch((err: unknown) => {
        if (err instanceof MeshError && (err.status === 401 || err.status === 403 || err.status === 429)) throw err;
        return null;
      });
      return holder ? view.peers() : withoutAddrs(view.peers());
    })
    .get("/cluster/status", () => view.status())
    .post(
      "/cluster/drain",
      async ({ request }) => {
        requireAdmin(await who(request));
        return new Response(JSON.stringify(await view.drain()), { status: 202, headers: { "content-type": "application/json" } });
      },
      { parse: "none" },
    )
    .get("/cluster/locate/:bucket/*", async ({ params, request }) => {
      requirePermission(await who(request), params.bucket, "read");
      return objects.locate(params.bucket, rawKey(request, LOCATE_PATH));
    })
    .delete("/admin/members/:id", async ({ params, request }) => {
      requireAdmin(await who(request));
      return view.removeMember(params.id);
    })
    .get("/admin/keys", async ({ request }) => {
      requireAdmin(await who(request));
      return { keys: await auth.keys.list() };
    })
    .post(
      "/admin/keys",
      async ({ request }) => {
        requireAdmin(await who(request));
        const created = await auth.keys.create(validateSpec(await jsonBody(request)));
        return Response.json(created, { status: 201 });
      },
      { parse: "none" },
    )
    .delete("/admin/keys/:id", async ({ params, request }) => {
      requireAdmin(await who(request));
      await auth.keys.revoke(params.id);
      return new Response(null, { status: 204 });
    })
    .get("/buckets", async ({ request }) => {
      const principal = await who(request);
      return { buckets: (await objects.listBuckets()).filter((b) => seesBucket(principal, b.name)) };
    })
    .put(
      "/buckets/:bucket",
      async ({ params, request }) => {
        validateBucketName(params.bucket);
        requirePermission(await who(request), params.bucket, "owner");
        return { bucket: (await objects.createBucket(params.bucket)).bucket };
      },
      { parse: "none" },
    )
    .delete("/buckets/:bucket", async ({ params, request }) => {
      validateBucketName(params.bucket);
      requirePermission(await who(request), params.bucket, "owner");
      await objects.deleteBucket(params.bucket);
      return new Response(null, { status: 204 });
    })
    .get("/buckets/:bucket/objects", async ({ params, request }) => {
      validateBucketName(params.bucket);
      requirePermission(await who(request), params.bucket, "read");
      const q = new URL(request.url).searchParams;
      const page = await objects.listObjects(params.bucket, {
        prefix: q.get("prefix") ?? "",
        delimiter: q.get("delimiter") ?? "",
        limit: parseLimit(q.get("limit")),
        after: q.get("cursor") ? decodeCursor(q.get("cursor")!, "invalid cursor") : undefined,
      });
      return { objects: page.objects, prefixes: page.prefixes, nextCursor: page.next === null ? null : encodeCursor(page.next) };
    })
    .all("/buckets/:bucket/objects/*", async ({ params, request }) => objectRoute(objects, await who(request), request, params.bucket), { parse: "none" });
}
