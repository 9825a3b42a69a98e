// The native HTTP API (curl-friendly JSON). Routes read the peer through narrow
// interfaces so that they can be tested with `app.handle(new Request(...))`.
import { Elysia } from "elysia";
import { BadRequestError } from "../errors.ts";
import { decodePathPiece, validateBucketName } from "../metadata/keys.ts";
import type { ObjectManifest } from "../metadata/types.ts";
import type { ObjectService } from "../objects/object-service.ts";
import { errorResponse, toErrorResponse } from "./errors.ts";
import { parseRange } from "./range.ts";

/** What the native API needs from the peer. */
export interface ClusterView {
  readonly peerId: string;
  peers(): unknown;
  status(): unknown;
  /** Start (or keep) handing all data off; answers whether it is safe to stop yet. */
  drain(): Promise<unknown>;
}

const META_PREFIX = "x-meta-";
/** S3's limit on user metadata (names and values together). */
const MAX_META_BYTES = 2048;

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
const OBJECT_PATH = /^\/buckets\/[^/]*\/objects\/(.*)$/s;
const LOCATE_PATH = /^\/cluster\/locate\/[^/]*\/(.*)$/s;

function userMeta(headers: Headers): Record<string, string> {
  const meta: Record<string, string> = {};
  let bytes = 0;
  headers.forEach((value, name) => {
    if (!name.startsWith(META_PREFIX)) return;
    const k = name.slice(META_PREFIX.length);
    meta[k] = value;
    bytes += k.length + value.length;
  });
  if (bytes > MAX_META_BYTES) throw new BadRequestError(`user metadata is ${bytes} bytes; the limit is ${MAX_META_BYTES}`, "MetadataTooLarge");
  return meta;
}

function objectHeaders(m: ObjectManifest): Record<string, string> {
  const h: Record<string, string> = {
    etag: `"${m.etag}"`,
    "content-type": m.contentType,
    "last-modified": new Date(m.lastModified).toUTCString(),
    "accept-ranges": "bytes",
  };
  for (const [k, v] of Object.entries(m.meta)) h[META_PREFIX + k] = v;
  return h;
}

function encodeCursor(next: string | null): string | null {
  return next === null ? null : Buffer.from(next, "utf8").toString("base64url");
}

function decodeCursor(cursor: string | null): string | undefined {
  if (!cursor) return undefined;
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  if (Buffer.from(key, "utf8").toString("base64url") !== cursor) throw new BadRequestError("invalid cursor", "InvalidArgument");
  return key;
}

function parseLimit(v: string | null): number | undefined {
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new BadRequestError("limit must be a whole number of at least 1", "InvalidArgument");
  return Math.min(n, 1000);
}

async function objectRoute(objects: ObjectService, request: Request, bucket: string): Promise<Response> {
  validateBucketName(bucket);
  const key = rawKey(request, OBJECT_PATH);
  switch (request.method) {
    case "PUT": {
      const declared = request.headers.get("content-length");
      const contentLength = declared === null ? undefined : Number(declared);
      if (contentLength !== undefined && !(Number.isInteger(contentLength) && contentLength >= 0)) throw new BadRequestError("invalid Content-Length", "InvalidArgument");
      const result = await objects.putObject(bucket, key, request.body, {
        contentLength,
        contentType: request.headers.get("content-type") ?? undefined,
        meta: userMeta(request.headers),
      });
      return Response.json(result, { headers: { etag: `"${result.etag}"` } });
    }
    case "GET":
    case "HEAD": {
      const m = await objects.headObject(bucket, key);
      const headers = objectHeaders(m);
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
      return new Response(await objects.readObject(m, start, end), { status, headers });
    }
    case "DELETE":
      await objects.deleteObject(bucket, key);
      return new Response(null, { status: 204 });
    default:
      return errorResponse(405, "MethodNotAllowed", `${request.method} is not supported on objects`);
  }
}

/** Build the native API app for one peer. */
export function createNativeApi(view: ClusterView, objects: ObjectService) {
  return new Elysia()
    .onError(({ code, error }) => toErrorResponse(code, error))
    .get("/health", () => ({ status: "ok", peerId: view.peerId }))
    .get("/cluster/peers", () => view.peers())
    .get("/cluster/status", () => view.status())
    .post("/cluster/drain", async () => new Response(JSON.stringify(await view.drain()), { status: 202, headers: { "content-type": "application/json" } }), { parse: "none" })
    .get("/cluster/locate/:bucket/*", ({ params, request }) => objects.locate(params.bucket, rawKey(request, LOCATE_PATH)))
    .get("/buckets", async () => ({ buckets: await objects.listBuckets() }))
    .put("/buckets/:bucket", async ({ params }) => ({ bucket: (await objects.createBucket(params.bucket)).bucket }), { parse: "none" })
    .delete("/buckets/:bucket", async ({ params }) => {
      await objects.deleteBucket(params.bucket);
      return new Response(null, { status: 204 });
    })
    .get("/buckets/:bucket/objects", async ({ params, request }) => {
      const q = new URL(request.url).searchParams;
      const page = await objects.listObjects(params.bucket, {
        prefix: q.get("prefix") ?? "",
        delimiter: q.get("delimiter") ?? "",
        limit: parseLimit(q.get("limit")),
        after: decodeCursor(q.get("cursor")),
      });
      return { objects: page.objects, prefixes: page.prefixes, nextCursor: encodeCursor(page.next) };
    })
    .all("/buckets/:bucket/objects/*", ({ params, request }) => objectRoute(objects, request, params.bucket), { parse: "none" });
}
