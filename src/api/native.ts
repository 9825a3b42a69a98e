// The native HTTP API (curl-friendly JSON), as Elysia routes. Each route declares its method,
// path, schemas (params, query, body, response: native-schemas.ts) and who may call it
// (native-auth.ts) beside its handler; /openapi.json and /docs are generated from them
// (docs.ts). Everything thrown reaches the client through the app's one error handler and
// the API's one error function (errors.ts). Routes read the peer through narrow interfaces,
// so the app can be tested with `app.handle(new Request(...))` and no port.
import { Elysia, ValidationError, type Static } from "elysia";
import pkg from "../../package.json" with { type: "json" };
import { allows, seesBucket, validateSpec } from "../auth/access-keys.ts";
import { bucketTaken, createVerdict, ownerToRecord, requireAdmin } from "../auth/guard.ts";
import { BadRequestError, MeshError, NotFoundError } from "../errors.ts";
import type { EventFeed } from "../events/feed.ts";
import { decodePathPiece } from "../metadata/keys.ts";
import type { ObjectService } from "../objects/object-service.ts";
import type { SearchService } from "../search/search-service.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { dashboardFile } from "./dashboard.ts";
import { apiDocs } from "./docs.ts";
import type { ApiErrors } from "./errors.ts";
import { nativeAuth, type NativeAuth } from "./native-auth.ts";
import { keyParam, listAllParts, partLength, type NativeMultipart } from "./native-multipart.ts";
import { eventsPage, type NativeChanges } from "./native-events.ts";
import { openEventStream, type NativeStreams } from "./event-stream.ts";
import type { Notifications } from "../changes/webhooks.ts";
import * as S from "./native-schemas.ts";
import { objectHeaders, storedHeaders, userMeta } from "./object-headers.ts";
import { parseRange } from "./range.ts";
import { inheritRequestId, requestIdOf } from "./request-id.ts";
import { pathOf } from "./request-target.ts";
import { deleteHeaders, writeCondition } from "./write-conditions.ts";
import { UPLOAD_TOKEN_HEADER, validateUploadToken } from "../uploads/records.ts";
import type { UploadRecords } from "../uploads/service.ts";
import type { Remotes } from "../remotes/registry.ts";
import type { Origins } from "../remotes/origin-config.ts";
import { cacheHeaders, type PullThrough } from "../remotes/pull-through.ts";
import type { OriginSync } from "../remotes/origin-sync.ts";
import type { ProbeResult } from "../remotes/remote-probe.ts";
import { multipartToken, tokenFor, tracked, type Alongside } from "../uploads/tracking.ts";

export type { NativeAuth } from "./native-auth.ts";
export type { NativeMultipart } from "./native-multipart.ts";
export type { NativeStreams } from "./event-stream.ts";

/** A member in `/cluster/peers`: `addrs` are its p2p addresses, shown only to key holders. */
export type ListedMember = Static<typeof S.Member> & { addrs: string[] };

/** What the native API needs from the peer. */
export interface ClusterView {
  readonly peerId: string;
  peers(): { self: ListedMember; peers: ListedMember[] };
  status(): Static<typeof S.ClusterStatus>;
  /** Start (or keep) handing all data off; answers whether it is safe to stop yet, or why it cannot be. */
  drain(): Promise<Static<typeof S.DrainState>>;
  /** Stop draining this peer (harmless when it is not). */
  cancelDrain(): Promise<Static<typeof S.DrainState>>;
  /** Drain member `id`, or cancel its drain: this peer, or another one asked over RPC (404 NoSuchMember, 503 if it cannot be asked). */
  drainMember(id: string, cancel: boolean, signal?: AbortSignal): Promise<Static<typeof S.DrainState>>;
  /** Take a dead member out of the mesh for good. */
  removeMember(id: string): Promise<Static<typeof S.RemovedMember>>;
  /** This peer's feed of recent cluster events (`/cluster/events`). */
  readonly events?: Pick<EventFeed, "read">;
  /** GET /metrics (src/metrics/registry.ts); `public`: no token needed. */
  metrics?: { public: boolean; contentType: string; render(): Promise<string> };
}

/** What the native API needs from the object store. */
export type NativeObjects = Pick<ObjectService, "createBucket" | "deleteBucket" | "listBuckets" | "putObject" | "headObject" | "readObject" | "deleteObject" | "listObjects" | "locate" | "requireBucket">;

const META_PREFIX = "x-meta-";

/** Most bytes of a JSON request body (a key spec): far above any real one. */
const MAX_JSON_BYTES = 64 * 1024;
/** Most bytes of a multipart completion: 10,000 parts of about 60 bytes each, with room to spare. */
const MAX_COMPLETE_BYTES = 1024 * 1024;

/**
 * The object key is everything after `/objects/` (or the bucket of a locate) in the raw
 * request path, percent-decoded once: taken from the raw URL so `a//b` and `%2F` survive
 * as bytes of the key.
 */
function rawKey(request: Request, route: RegExp): string {
  return decodePathPiece(route.exec(pathOf(request.url))?.[1] ?? "");
}
const OBJECT_PATH = /^\/buckets\/[^/]*\/objects\/(.*)$/s;

/** The ?versionId= of an object request (versioned buckets), if it names one. */
const versionIdOf = (request: Request): string | undefined => new URL(request.url).searchParams.get("versionId") || undefined;
/** The header naming the version an object response is about. */
const versionHeader = (versionId: string | undefined): Record<string, string> => (versionId === undefined ? {} : { "x-version-id": versionId });
const LOCATE_PATH = /^\/cluster\/locate\/[^/]*\/(.*)$/s;

/** True if the path of `url` percent-decodes to UTF-8 (the router hands one it cannot decode to the route as null). */
function validPath(url: string): boolean {
  try {
    decodeURIComponent(pathOf(url));
    return true;
  } catch {
    return false;
  }
}

/** A small JSON body, read whatever its Content-Type, refused past `limit` bytes. */
async function jsonBody(request: Request, limit = MAX_JSON_BYTES): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  const tooBig = () => new BadRequestError(`the body is larger than ${limit} bytes`, "InvalidArgument");
  if (declared > limit) throw tooBig();
  const pieces: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    for await (const piece of request.body) {
      size += piece.byteLength;
      if (size > limit) throw tooBig();
      pieces.push(piece);
    }
  }
  const text = Buffer.concat(pieces).toString("utf8");
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

/** The schema error of a request as the client is told it: 400 InvalidArgument naming the field. */
function schemaError(error: ValidationError): MeshError {
  const first = error.valueError;
  const where = first?.path ? `${error.type} ${first.path}` : error.type;
  return new BadRequestError(`${where}: ${first?.message ?? "invalid"}`.slice(0, 300), "InvalidArgument");
}

/** A route as the app lists it. */
type Route = { method: string; path: string };

/** The methods served on `path` (for a 405 and its Allow header), from the app's routes. */
function methodsOn(routes: ReadonlyArray<Route>, path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    const pattern = route.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+").replace(/\*/g, ".*");
    if (new RegExp(`^${pattern}$`, "s").test(path)) methods.add(route.method);
  }
  return [...methods].sort();
}

/** Anything thrown in the app, or one of Elysia's own errors, as the MeshError the client is told. */
function toMeshError(code: string | number, error: unknown, request: Request, routes: ReadonlyArray<Route>): unknown {
  if (error instanceof MeshError) return error;
  // Elysia wraps what a route's own parser throws.
  if (error instanceof Error && error.cause instanceof MeshError) return error.cause;
  if (error instanceof ValidationError) {
    // A response that breaks its own schema is our bug, not the client's.
    return error.type === "response" ? error : schemaError(error);
  }
  switch (code) {
    case "NOT_FOUND": {
      const path = pathOf(request.url);
      const allowed = methodsOn(routes, path);
      if (allowed.length === 0) return new MeshError("NotFound", "no such route");
      return new MeshError("MethodNotAllowed", `${request.method} is not supported on ${path.slice(0, 200)}; use ${allowed.join(", ")}`, { headers: { allow: allowed.join(", ") } });
    }
    case "PARSE":
      return new BadRequestError("the body could not be parsed", "InvalidArgument");
    case "INVALID_COOKIE_SIGNATURE":
      return new BadRequestError("invalid cookie");
  }
  return error;
}

/** What the native API needs from search (src/search/). */
export type NativeSearch = Pick<SearchService, "getSchema" | "putSchema" | "deleteSchema" | "deleteField" | "query" | "queryText">;

/** What the native API needs from webhook notifications (src/changes/webhooks.ts). */
export type NativeNotifications = Pick<Notifications, "get" | "put" | "remove" | "status">;

/** What the native API needs from the upload records (src/uploads/). */
export type NativeUploads = Pick<UploadRecords, "begin" | "beginMultipart" | "beginPart" | "endMultipart" | "get" | "list">;

/** What the native API needs for remote origins (src/remotes/): the registry, bucket origins and pull-through reads. */
export interface NativeOrigins {
  remotes: Pick<Remotes, "put" | "get" | "list" | "remove">;
  origins: Pick<Origins, "put" | "get" | "remove">;
  pull: Pick<PullThrough, "serve">;
  /** Origin syncs (src/remotes/origin-sync.ts): external buckets in the index. */
  sync?: Pick<OriginSync, "begin" | "state">;
  /** Probe a remote: put, get, list, delete (read what it can if read-only). */
  probe?: (name: string, signal?: AbortSignal) => Promise<ProbeResult>;
}

/** Records per `GET /uploads` page when the caller names no limit. */
const DEFAULT_UPLOADS_LIMIT = 50;

/** The answer for a token the caller may not see or that has no record: the same either way. */
const noSuchUpload = () => new NotFoundError("no upload record with this token (it may have expired, or this key may not read its bucket)", "NoSuchUpload");

/**
 * Build the native API app of one peer; `errors` is the API's error function (errors.ts).
 * Without `uploads`, uploads get no records and `/uploads` answers 404; without `streams`,
 * `/buckets/{b}/events/stream` answers 404.
 */
export function createNativeApi(view: ClusterView, objects: NativeObjects, auth: NativeAuth, errors: ApiErrors, multipart: NativeMultipart, search: NativeSearch, changes: NativeChanges, notifications: NativeNotifications, uploads?: NativeUploads, streams?: NativeStreams, remote?: NativeOrigins) {
  const remoteParts = () => remote ?? (() => {
    throw new MeshError("NotFound", "no such route");
  })();
  let routes: ReadonlyArray<Route> = [];
  // Responses are cleaned to their schemas by TypeBox (Elysia's faster "exact mirror" cannot
  // compile the wildcard's "*" parameter).
  const app = new Elysia({ normalize: "typebox" })
    .error({ MeshError })
    .onError(({ code, error, request }) => errors.respond(toMeshError(code, error, request, routes), request))
    .onRequest(({ request, set }) => {
      set.headers[errors.requestIdHeader] = requestIdOf(request);
      if (!validPath(request.url)) throw new BadRequestError("the path is not valid percent-encoded UTF-8", "InvalidURI");
    })
    .use(apiDocs(pkg.version))
    .use(nativeAuth(auth))

    // ---- the peer and the mesh ----
    .get("/health", () => ({ status: "ok" as const, peerId: view.peerId }), {
      response: { 200: S.Health },
      detail: { summary: "Is this peer up?", tags: ["cluster"] },
    })
    .get(
      "/cluster/peers",
      async ({ request }) => {
        // Where to dial the mesh is for key holders (with auth off, everyone is one). No token
        // just leaves the addresses out (and is not a failed authentication: nothing to count
        // against the address); a wrong token is a 401, so a typo is not mistaken for that.
        // A token that cannot be checked right now (this side of a partition cannot read the
        // keys) leaves them out too: the view of the mesh matters most exactly then.
        if (auth.required && !request.headers.has("authorization")) return withoutAddrs(view.peers());
        const holder = await auth.authenticate(request).catch((err: unknown) => {
          if (err instanceof MeshError && (err.status === 401 || err.status === 403 || err.status === 429)) throw err;
          return null;
        });
        return holder ? view.peers() : withoutAddrs(view.peers());
      },
      {
        response: { 200: S.PeersView, ...S.errorResponses("Unauthorized", "SlowDown") },
        detail: { summary: "This peer's view of the members (their p2p addresses only with a valid token)", tags: ["cluster"] },
      },
    )
    // The dashboard's files are open; every call it makes for data carries the token.
    .get("/ui", () => dashboardFile(""), { detail: { hide: true } })
    .get("/ui/*", ({ params }) => dashboardFile(params["*"]), { detail: { hide: true } })
    .get("/cluster/status", ({ set }) => {
      // Open anyway, and read by the dashboard of any peer for its capacity view.
      set.headers["access-control-allow-origin"] = "*";
      return view.status();
    }, {
      response: { 200: S.ClusterStatus },
      detail: { summary: "Counters: members, storage, repair, quorum, limits", tags: ["cluster"] },
    })
    .get(
      "/metrics",
      async ({ request }) => {
        const metrics = view.metrics;
        if (!metrics) throw new MeshError("NotFound", "no such route");
        if (!metrics.public) requireAdmin(await auth.authenticate(request));
        return new Response(await metrics.render(), { headers: { "content-type": metrics.contentType } });
      },
      {
        response: { 200: S.MetricsText, ...S.errorResponses(...S.AUTH_ERRORS) },
        detail: { summary: "Prometheus metrics of this peer (an admin token, unless the peer runs with --metrics-public)", tags: ["cluster"], security: [{ bearer: [] }] },
      },
    )
    .post("/cluster/drain", async ({ status }) => status(202, await view.drain()), {
      admin: true,
      parse: "none",
      response: { 202: S.DrainState, ...S.errorResponses(...S.AUTH_ERRORS) },
      detail: { summary: "Hand everything on this peer to the others; says when it is safe to stop, or why it cannot be yet", tags: ["admin"] },
    })
    .delete("/cluster/drain", () => view.cancelDrain(), {
      admin: true,
      parse: "none",
      response: { 200: S.DrainState, ...S.errorResponses(...S.AUTH_ERRORS) },
      detail: { summary: "Cancel this peer's drain: it holds data and counts in quorums again (harmless if it is not draining)", tags: ["admin"] },
    })
    .post("/cluster/members/:id/drain", async ({ params, request, status }) => status(202, await view.drainMember(params.id, false, request.signal)), {
      admin: true,
      parse: "none",
      params: S.idParams("the member's peer id (this peer's own id drains this peer)"),
      response: { 202: S.DrainState, ...S.errorResponses("NoSuchMember", ...S.AUTH_ERRORS) },
      detail: { summary: "Drain any member of the mesh through this peer; its drain state as it answers (503 if it is dead or does not answer)", tags: ["admin"] },
    })
    .delete("/cluster/members/:id/drain", ({ params, request }) => view.drainMember(params.id, true, request.signal), {
      admin: true,
      parse: "none",
      params: S.idParams("the member's peer id"),
      response: { 200: S.DrainState, ...S.errorResponses("NoSuchMember", ...S.AUTH_ERRORS) },
      detail: { summary: "Cancel any member's drain through this peer (503 if it is dead or does not answer)", tags: ["admin"] },
    })
    .get("/cluster/events", ({ query }) => view.events?.read(query.after, query.limit) ?? { events: [], lastSeq: 0, capacity: 0 }, {
      admin: true,
      query: S.EventsQuery,
      response: { 200: S.ClusterEvents, ...S.errorResponses("InvalidArgument", ...S.AUTH_ERRORS) },
      detail: { summary: "Recent cluster events on this peer (members, repair, drain, keys), oldest first", tags: ["cluster"] },
    })
    .get("/cluster/locate/:bucket/*", async ({ bucket, request }) => objects.locate(bucket, rawKey(request, LOCATE_PATH)), {
      bucket: "read",
      params: S.ObjectParams,
      response: { 200: S.Location, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "NoSuchKey", ...S.AUTH_ERRORS) },
      detail: { summary: "Where an object lives: its chunks and their holders, its index shard and replicas", tags: ["cluster"] },
    })

    // ---- upload progress records: a caller sees those of buckets it may read ----
    .get(
      "/uploads/:token",
      async ({ params, principal }) => {
        const record = uploads && (await uploads.get(validateUploadToken(params.token)));
        if (!record || !allows(principal, record.bucket, "read")) throw noSuchUpload();
        return record;
      },
      {
        signedIn: true,
        params: S.UploadTokenParams,
        response: { 200: S.UploadProgress, ...S.errorResponses("InvalidArgument", "NoSuchUpload", ...S.AUTH_ERRORS) },
        detail: { summary: "An upload's progress by its token, from any peer, while it runs and for 24 hours after (404 if this key may not read its bucket)", tags: ["uploads"] },
      },
    )
    .get(
      "/uploads",
      async ({ principal, query }) => {
        if (!uploads) return { uploads: [] };
        return { uploads: await uploads.list(query.limit ?? DEFAULT_UPLOADS_LIMIT, (bucket) => allows(principal, bucket, "read")) };
      },
      {
        signedIn: true,
        query: S.UploadsQuery,
        response: { 200: S.UploadList, ...S.errorResponses("InvalidArgument", ...S.AUTH_ERRORS) },
        detail: { summary: "The newest upload records of buckets this key may read, newest first", tags: ["uploads"] },
      },
    )

    // ---- administration ----
    .delete("/admin/members/:id", ({ params }) => view.removeMember(params.id), {
      admin: true,
      params: S.idParams("the member's peer id"),
      response: { 200: S.RemovedMember, ...S.errorResponses("MemberNotDead", "NoSuchMember", ...S.AUTH_ERRORS) },
      detail: { summary: "Take a dead member out of the mesh for good", tags: ["admin"] },
    })
    .get("/admin/keys", async () => ({ keys: await auth.keys.list() }), {
      admin: true,
      response: { 200: S.KeyList, ...S.errorResponses(...S.AUTH_ERRORS) },
      detail: { summary: "Every access key (without secrets)", tags: ["admin"] },
    })
    .post("/admin/keys", async ({ body, status }) => status(201, await auth.keys.create(validateSpec(body))), {
      admin: true,
      // Read whatever the Content-Type says (curl sends form encoding by default), and bounded.
      parse: [({ request }) => jsonBody(request), "json"],
      body: S.KeySpec,
      response: { 201: S.CreatedKey, ...S.errorResponses("InvalidArgument", "InvalidBucketName", ...S.AUTH_ERRORS) },
      detail: { summary: "Create an access key: its secret and token are shown once", tags: ["admin"] },
    })
    .delete(
      "/admin/keys/:id",
      async ({ params, status }) => {
        await auth.keys.revoke(params.id);
        return status(204, undefined);
      },
      {
        admin: true,
        params: S.idParams("the access key id"),
        response: { 204: S.NoContent, ...S.errorResponses("NoSuchKey", ...S.AUTH_ERRORS) },
        detail: { summary: "Revoke an access key, on every peer at once", tags: ["admin"] },
      },
    )

    // ---- remote stores (src/remotes/): defined by an admin, fronted by buckets ----
    .get("/admin/remotes", async () => ({ remotes: await remoteParts().remotes.list() }), {
      admin: true,
      response: { 200: S.RemoteList, ...S.errorResponses(...S.AUTH_ERRORS) },
      detail: { summary: "Every remote store (never their credentials)", tags: ["admin"] },
    })
    .get("/admin/remotes/:name", ({ params, request }) => remoteParts().remotes.get(params.name, { signal: request.signal }), {
      admin: true,
      params: S.RemoteParams,
      response: { 200: S.ShownRemote, ...S.errorResponses("InvalidArgument", "NoSuchRemote", ...S.AUTH_ERRORS) },
      detail: { summary: "One remote store (never its credentials)", tags: ["admin"] },
    })
    .put("/admin/remotes/:name", async ({ params, request }) => remoteParts().remotes.put(params.name, await jsonBody(request)), {
      admin: true,
      parse: "none",
      params: S.RemoteParams,
      response: { 200: S.ShownRemote, ...S.errorResponses("InvalidArgument", "NotImplemented", ...S.AUTH_ERRORS) },
      detail: { summary: 'Define or replace a remote store, {"type": "http", "endpoint": "https://origin.example"} (s3, azure, gcs, swift: 501 until their adapters land); credentials are stored sealed', tags: ["admin"] },
    })
    .delete(
      "/admin/remotes/:name",
      async ({ params, status }) => {
        await remoteParts().remotes.remove(params.name);
        return status(204, undefined);
      },
      {
        admin: true,
        params: S.RemoteParams,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidArgument", "NoSuchRemote", ...S.AUTH_ERRORS) },
        detail: { summary: "Remove a remote store (buckets pulling from it then fail their misses with 502)", tags: ["admin"] },
      },
    )
    .post(
      "/admin/remotes/:name/test",
      async ({ params, request }) => {
        const probe = remoteParts().probe;
        if (!probe) throw new MeshError("NotFound", "no such route");
        return probe(params.name, request.signal);
      },
      {
        admin: true,
        params: S.RemoteParams,
        response: { 200: S.ProbeResult, ...S.errorResponses("InvalidArgument", "NoSuchRemote", ...S.AUTH_ERRORS) },
        detail: { summary: "Probe a remote: write, read, list and delete a probe object (read-only types: read and list); each step's outcome and time, ok: false when it fails", tags: ["admin"] },
      },
    )
    .post(
      "/buckets/:bucket/origin/sync",
      async ({ bucket, request, status }) => {
        const sync = remoteParts().sync;
        if (!sync) throw new MeshError("NotFound", "no such route");
        return status(202, await sync.begin(bucket, { signal: request.signal }));
      },
      {
        bucket: "owner",
        params: S.BucketParams,
        response: { 202: S.SyncState, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", "NoSuchOrigin", "NoSuchRemote", "SlowDown", ...S.AUTH_ERRORS) },
        detail: { summary: "Import the origin's objects (metadata only, bytes on first read) into the bucket's index, in the background; progress in GET /buckets/{b}/origin", tags: ["buckets"] },
      },
    )
    .get("/buckets/:bucket/origin", async ({ bucket, request }) => {
      const parts = remoteParts();
      const cfg = await parts.origins.get(bucket, { signal: request.signal });
      const sync = await parts.sync?.state(bucket, { signal: request.signal });
      return { ...cfg, ...(sync && { sync }) };
    }, {
      bucket: "owner",
      params: S.BucketParams,
      response: { 200: S.OriginConfig, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "NoSuchOrigin", ...S.AUTH_ERRORS) },
      detail: { summary: "The bucket's origin", tags: ["buckets"] },
    })
    .put("/buckets/:bucket/origin", async ({ bucket, request }) => remoteParts().origins.put(bucket, await jsonBody(request)), {
      bucket: "owner",
      parse: "none",
      params: S.BucketParams,
      response: { 200: S.OriginConfig, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", "NotImplemented", ...S.AUTH_ERRORS) },
      detail: {
        summary: 'Front the bucket with a remote: {"remote", "prefix", "mode": "pull-through", "defaultTtlSeconds": 3600, "negativeTtlSeconds": 60, "staleIfErrorSeconds": 86400}; a miss is fetched once mesh-wide, served and kept',
        tags: ["buckets"],
      },
    })
    .delete(
      "/buckets/:bucket/origin",
      async ({ bucket, status }) => {
        await remoteParts().origins.remove(bucket);
        return status(204, undefined);
      },
      {
        bucket: "owner",
        params: S.BucketParams,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "NoSuchOrigin", ...S.AUTH_ERRORS) },
        detail: { summary: "Detach the bucket from its origin (copies already kept stay)", tags: ["buckets"] },
      },
    )

    // ---- buckets ----
    .get("/buckets", async ({ principal }) => ({ buckets: (await objects.listBuckets()).filter((b) => seesBucket(principal, b.name, b.owner)) }), {
      signedIn: true,
      response: { 200: S.BucketList, ...S.errorResponses(...S.AUTH_ERRORS) },
      detail: { summary: "The buckets this key can see", tags: ["buckets"] },
    })
    .put(
      "/buckets/:bucket",
      async ({ bucket, principal }) => {
        const made = await objects.createBucket(bucket, { actor: principal.accessKeyId }, ownerToRecord(principal));
        if (!made.created && createVerdict(principal, bucket, made.owner) === "taken") throw bucketTaken(bucket);
        return { bucket: made.bucket };
      },
      {
      bucket: "create",
      parse: "none",
      params: S.BucketParams,
      response: { 200: S.CreatedBucket, ...S.errorResponses("InvalidBucketName", "BucketAlreadyExists", ...S.AUTH_ERRORS) },
      detail: { summary: "Create a bucket, owned by the key that creates it (creating one of your own that exists is fine; another key's is 409 BucketAlreadyExists)", tags: ["buckets"] },
      },
    )
    .delete(
      "/buckets/:bucket",
      async ({ bucket, principal, status }) => {
        await objects.deleteBucket(bucket, { actor: principal.accessKeyId });
        return status(204, undefined);
      },
      {
        bucket: "owner",
        params: S.BucketParams,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "BucketNotEmpty", ...S.AUTH_ERRORS) },
        detail: { summary: "Delete an empty bucket", tags: ["buckets"] },
      },
    )
    .get(
      "/buckets/:bucket/objects",
      async ({ bucket, query }) => {
        const page = await objects.listObjects(bucket, {
          prefix: query.prefix ?? "",
          delimiter: query.delimiter ?? "",
          limit: query.limit === undefined ? undefined : Math.min(query.limit, 1000),
          after: query.cursor ? decodeCursor(query.cursor, "invalid cursor") : undefined,
        });
        return { objects: page.objects, prefixes: page.prefixes, nextCursor: page.next === null ? null : encodeCursor(page.next) };
      },
      {
        bucket: "read",
        params: S.BucketParams,
        query: S.ListQuery,
        response: { 200: S.ObjectListing, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
        detail: { summary: "List objects in key order, a page at a time", tags: ["objects"] },
      },
    )

    // ---- change events: the bucket's log, read with a cursor ----
    .get(
      "/buckets/:bucket/events",
      async ({ bucket, query }) => {
        // A first read names a bucket that exists; a consumer holding a cursor reads on, also past the bucket's removal.
        if (!query.cursor) await objects.requireBucket(bucket);
        return eventsPage(changes, bucket, query);
      },
      {
        bucket: "read",
        params: S.BucketParams,
        query: S.EventsParams,
        response: { 200: S.EventsPage, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
        detail: { summary: "The bucket's change events after a cursor, oldest first, as S3 event records; keep the cursor to miss nothing", tags: ["events"] },
      },
    )
    .get(
      "/buckets/:bucket/events/stream",
      ({ bucket, query, request }) => {
        if (!streams) throw new MeshError("NotFound", "no such route");
        return openEventStream(streams, changes, (b) => objects.requireBucket(b), request, bucket, query);
      },
      {
        bucket: "read",
        params: S.BucketParams,
        query: S.EventStreamParams,
        response: { 200: S.EventStreamText, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", "TooManyStreams", ...S.AUTH_ERRORS) },
        detail: {
          summary: "The bucket's change events live, as Server-Sent Events (each id a cursor: reconnect with Last-Event-ID to miss nothing), from now, earliest or a cursor",
          tags: ["events"],
        },
      },
    )


    // ---- webhooks: a bucket's targets, and how their deliveries go ----
    .get("/buckets/:bucket/notifications", ({ bucket, request }) => notifications.get(bucket, { signal: request.signal }), {
      bucket: "owner",
      params: S.BucketParams,
      response: { 200: S.Notifications, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
      detail: { summary: "The bucket's webhook targets (never their secrets)", tags: ["events"] },
    })
    .put("/buckets/:bucket/notifications", async ({ bucket, request }) => notifications.put(bucket, await jsonBody(request)), {
      bucket: "owner",
      parse: "none",
      params: S.BucketParams,
      response: { 200: S.Notifications, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
      detail: {
        summary: 'Set the bucket\'s webhook targets, {"targets": [{"id", "url", "events", "prefix", "suffix", "secret", "maxBatch"}]}: each gets the events from now on, POSTed as {"Records": [...]} and signed with its secret',
        tags: ["events"],
      },
    })
    .delete(
      "/buckets/:bucket/notifications",
      async ({ bucket, status }) => {
        await notifications.remove(bucket);
        return status(204, undefined);
      },
      {
        bucket: "owner",
        params: S.BucketParams,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
        detail: { summary: "Remove the bucket's webhook targets", tags: ["events"] },
      },
    )
    .get("/buckets/:bucket/notifications/status", ({ bucket, request }) => notifications.status(bucket, { signal: request.signal }), {
      bucket: "read",
      params: S.BucketParams,
      response: { 200: S.NotificationStatus, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
      detail: { summary: "Each webhook target's lag (events not yet acknowledged), last success and last error", tags: ["events"] },
    })
    // ---- search: a schema per bucket, queries in JSON or text ----
    .get("/buckets/:bucket/schema", ({ bucket }) => search.getSchema(bucket), {
      bucket: "read",
      params: S.BucketParams,
      response: { 200: S.SchemaState, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "NoSuchSchema", ...S.AUTH_ERRORS) },
      detail: { summary: "The bucket's search schema, each field building or ready", tags: ["search"] },
    })
    .put("/buckets/:bucket/schema", async ({ bucket, request }) => search.putSchema(bucket, await jsonBody(request)), {
      bucket: "owner",
      parse: "none",
      params: S.BucketParams,
      response: { 200: S.SchemaState, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
      detail: { summary: 'Set the bucket\'s search schema, {"fields": {"year": "number", ...}}; new fields are indexed in the background', tags: ["search"] },
    })
    .delete(
      "/buckets/:bucket/schema",
      async ({ bucket, status }) => {
        await search.deleteSchema(bucket);
        return status(204, undefined);
      },
      {
        bucket: "owner",
        params: S.BucketParams,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "NoSuchSchema", ...S.AUTH_ERRORS) },
        detail: { summary: "Remove the bucket's search schema and its index", tags: ["search"] },
      },
    )
    .delete("/buckets/:bucket/schema/:field", ({ bucket, params }) => search.deleteField(bucket, params.field), {
      bucket: "owner",
      params: S.FieldParams,
      response: { 200: S.SchemaState, ...S.errorResponses("InvalidBucketName", "NoSuchBucket", "NoSuchSchema", "NoSuchField", ...S.AUTH_ERRORS) },
      detail: { summary: "Remove one field from the bucket's search schema", tags: ["search"] },
    })
    .post("/buckets/:bucket/query", async ({ bucket, request }) => search.query(bucket, await jsonBody(request)), {
      bucket: "read",
      parse: "none",
      params: S.BucketParams,
      response: { 200: S.QueryAnswer, ...S.errorResponses("InvalidQuery", "InvalidBucketName", "NoSuchBucket", "IndexNotReady", ...S.AUTH_ERRORS) },
      detail: { summary: 'Find objects by metadata: {"where": [{"field", "op", "value"}], "sort": {"field", "order"}, "limit", "cursor"}', tags: ["search"] },
    })
    .get("/buckets/:bucket/query", ({ bucket, query }) => search.queryText(bucket, query), {
      bucket: "read",
      params: S.BucketParams,
      query: S.TextQueryParams,
      response: { 200: S.QueryAnswer, ...S.errorResponses("InvalidQuery", "InvalidBucketName", "NoSuchBucket", "IndexNotReady", ...S.AUTH_ERRORS) },
      detail: { summary: 'Find objects by metadata in text: ?q=year>=2020 and title prefix "Mesh"&sort=year&order=desc', tags: ["search"] },
    })

    // ---- objects: bodies stream both ways, so Elysia never parses them ----
    .put(
      "/buckets/:bucket/objects/*",
      async ({ bucket, request, principal }) => {
        const declared = request.headers.get("content-length");
        const contentLength = declared === null ? undefined : Number(declared);
        if (contentLength !== undefined && !(Number.isInteger(contentLength) && contentLength >= 0)) throw new BadRequestError("invalid Content-Length", "InvalidArgument");
        const key = rawKey(request, OBJECT_PATH);
        const token = tokenFor(request);
        // Read before the body: a malformed condition stores nothing.
        const condition = writeCondition(request.headers);
        const put = (body: ReadableStream<Uint8Array> | null, alongside?: Alongside) =>
          objects.putObject(bucket, key, body, {
            contentLength,
            contentType: request.headers.get("content-type") ?? undefined,
            meta: userMeta(request.headers, META_PREFIX),
            headers: storedHeaders(request.headers),
            signal: request.signal,
            actor: principal.accessKeyId,
            alongside,
            condition,
          });
        const result = await tracked(uploads?.begin(token, bucket, key, contentLength), request.body, request, put, (r) => r.size);
        const { bucket: b, key: k, size, etag, contentType, versionId } = result;
        return Response.json({ bucket: b, key: k, size, etag, contentType, ...(versionId !== undefined && { versionId }) }, { headers: { etag: `"${result.etag}"`, ...versionHeader(versionId), [UPLOAD_TOKEN_HEADER]: token } });
      },
      {
        bucket: "write",
        parse: "none",
        params: S.ObjectParams,
        response: {
          200: S.PutResult,
          ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "MetadataTooLarge", "IncompleteBody", "NoSuchBucket", "NoSuchKey", "RequestTimeout", "PreconditionFailed", "ConditionalRequestConflict", "NotImplemented", ...S.AUTH_ERRORS),
        },
        detail: {
          summary:
            "Upload an object (streamed); Content-Type and x-meta-* headers are kept; x-upload-token names its progress record (one is made if absent) and comes back; If-None-Match: * or If-Match: <etag> make it conditional (decided by a consensus round: 412 when the condition fails, 409 to retry)",
          tags: ["objects"],
          requestBody: S.UPLOAD_BODY,
        },
      },
    )
    .get("/buckets/:bucket/objects/*", async ({ bucket, request }) => objectResponse(objects, bucket, request, cameAsHead.has(request), remote?.pull), {
      bucket: "read",
      params: S.ObjectParams,
      response: { 200: S.ObjectBytes, 206: S.ObjectBytes, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "NoSuchBucket", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed", "InvalidRange", ...S.AUTH_ERRORS) },
      detail: { summary: "Download an object (streamed); Range gives 206; ?versionId= reads one version of a versioned bucket's object (x-version-id names the version read)", tags: ["objects"] },
    })
    .head("/buckets/:bucket/objects/*", async ({ bucket, request }) => objectResponse(objects, bucket, request, true, remote?.pull), {
      bucket: "read",
      params: S.ObjectParams,
      response: { 200: S.NoContent, 206: S.NoContent, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed", "InvalidRange", ...S.AUTH_ERRORS) },
      detail: { summary: "An object's headers only (?versionId= as for GET)", tags: ["objects"] },
    })
    .delete(
      "/buckets/:bucket/objects/*",
      async ({ bucket, request, principal, status, set }) => {
        const done = await objects.deleteObject(bucket, rawKey(request, OBJECT_PATH), { actor: principal.accessKeyId, versionId: versionIdOf(request), condition: deleteHeaders(request.headers) });
        for (const [name, value] of Object.entries({ ...versionHeader(done.versionId), ...(done.deleteMarker && { "x-delete-marker": "true" }) })) set.headers[name] = value;
        return status(204, undefined);
      },
      {
        bucket: "write",
        params: S.ObjectParams,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "NoSuchBucket", "NoSuchKey", "PreconditionFailed", "ConditionalRequestConflict", "NotImplemented", ...S.AUTH_ERRORS) },
        detail: {
          summary:
            "Delete an object (deleting one that is not there is fine); in a versioned bucket a delete marker is made (x-version-id names it), and ?versionId= removes that version for good; If-Match (and x-amz-if-match-size, x-amz-if-match-last-modified-time) make it conditional",
          tags: ["objects"],
        },
      },
    )

    // ---- multipart uploads: S3's, through the same service; the key rides in ?key= ----
    .post(
      "/buckets/:bucket/multipart",
      async ({ bucket, request, set, status }) => {
        const key = keyParam(request.url);
        const token = tokenFor(request);
        const uploadId = await multipart.create(bucket, key, {
          contentType: request.headers.get("content-type") || "application/octet-stream",
          meta: userMeta(request.headers, META_PREFIX),
          headers: storedHeaders(request.headers),
          ...(uploads ? { uploadToken: token } : {}),
        });
        await uploads?.beginMultipart(token, bucket, key, uploadId);
        set.headers[UPLOAD_TOKEN_HEADER] = token;
        return status(201, { bucket, key, uploadId });
      },
      {
        bucket: "write",
        parse: "none",
        params: S.BucketParams,
        query: S.UploadQuery,
        response: { 201: S.CreatedUpload, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "MetadataTooLarge", "NoSuchBucket", ...S.AUTH_ERRORS) },
        detail: { summary: "Start a multipart upload; Content-Type and x-meta-* headers are kept for the object; x-upload-token names its progress record, which its parts and completion update", tags: ["multipart"] },
      },
    )
    .get(
      "/buckets/:bucket/multipart",
      async ({ bucket, query }) => {
        const page = await multipart.listUploads(bucket, {
          prefix: query.prefix ?? "",
          limit: Math.min(query.limit ?? 1000, 1000),
          after: query.cursor ? decodeCursor(query.cursor, "invalid cursor") : undefined,
        });
        return { uploads: page.uploads.map((u) => ({ key: u.key, uploadId: u.uploadId, initiated: new Date(u.initiated).toISOString() })), nextCursor: page.next === null ? null : encodeCursor(page.next) };
      },
      {
        bucket: "read",
        params: S.BucketParams,
        query: S.OpenUploadsQuery,
        response: { 200: S.OpenUploads, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "NoSuchBucket", ...S.AUTH_ERRORS) },
        detail: { summary: "The bucket's multipart uploads in progress, by key and upload id, a page at a time (uploads older than --multipart-expiry are aborted by the peers)", tags: ["multipart"] },
      },
    )
    .put(
      "/buckets/:bucket/multipart/:uploadId/parts/:partNumber",
      async ({ bucket, params, request }) => {
        const key = keyParam(request.url);
        const contentLength = partLength(request.headers);
        const token = uploads && (await multipartToken(request, multipart, bucket, key, params.uploadId));
        const send = (body: ReadableStream<Uint8Array> | null) => multipart.uploadPart(bucket, key, params.uploadId, params.partNumber, body, contentLength, { signal: request.signal });
        const part = await tracked(token ? uploads?.beginPart(token, params.uploadId, params.partNumber) : undefined, request.body, request, send, (p) => p.size);
        return Response.json({ partNumber: part.partNumber, etag: part.etag, size: part.size }, { headers: { etag: `"${part.etag}"`, ...(token ? { [UPLOAD_TOKEN_HEADER]: token } : {}) } });
      },
      {
        bucket: "write",
        parse: "none",
        params: S.PartParams,
        query: S.UploadQuery,
        response: {
          200: S.UploadedPart,
          ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "IncompleteBody", "MissingContentLength", "NoSuchBucket", "NoSuchUpload", "RequestTimeout", ...S.AUTH_ERRORS),
        },
        detail: { summary: "Upload one part (streamed, Content-Length required); sending a part number again replaces that part", tags: ["multipart"], requestBody: S.UPLOAD_BODY },
      },
    )
    .get(
      "/buckets/:bucket/multipart/:uploadId",
      async ({ bucket, params, request }) => {
        const key = keyParam(request.url);
        return { bucket, key, uploadId: params.uploadId, parts: await listAllParts(multipart, bucket, key, params.uploadId) };
      },
      {
        bucket: "read",
        params: S.UploadParams,
        query: S.UploadQuery,
        response: { 200: S.UploadParts, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "NoSuchBucket", "NoSuchUpload", ...S.AUTH_ERRORS) },
        detail: { summary: "The parts of an upload in progress (to resume it: send only the missing ones)", tags: ["multipart"] },
      },
    )
    .post(
      "/buckets/:bucket/multipart/:uploadId/complete",
      async ({ bucket, body, params, request }) => {
        const key = keyParam(request.url);
        // An upload no longer there may have just been completed: Complete answers a repeat (its progress record is already ended).
        const token = uploads && (await multipartToken(request, multipart, bucket, key, params.uploadId).catch((err: unknown) => {
          if (err instanceof MeshError && err.code === "NoSuchUpload") return undefined;
          throw err;
        }));
        const m = await multipart.complete(bucket, key, params.uploadId, body.parts);
        if (token && !m.repeated) await uploads?.endMultipart(token, params.uploadId, { size: m.size });
        return Response.json({ bucket, key, etag: m.etag, size: m.size }, { headers: { etag: `"${m.etag}"`, ...(token ? { [UPLOAD_TOKEN_HEADER]: token } : {}) } });
      },
      {
        bucket: "write",
        parse: [({ request }) => jsonBody(request, MAX_COMPLETE_BYTES), "json"],
        params: S.UploadParams,
        query: S.UploadQuery,
        body: S.CompleteUpload,
        response: {
          200: S.CompletedUpload,
          ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchBucket", "NoSuchUpload", ...S.AUTH_ERRORS),
        },
        detail: { summary: "Make the object from the listed parts (no bytes are copied); the upload then ends", tags: ["multipart"] },
      },
    )
    .delete(
      "/buckets/:bucket/multipart/:uploadId",
      async ({ bucket, params, request, status }) => {
        const key = keyParam(request.url);
        const token = uploads && (await multipartToken(request, multipart, bucket, key, params.uploadId));
        await multipart.abort(bucket, key, params.uploadId);
        if (token) await uploads?.endMultipart(token, params.uploadId, { error: "aborted by the client" });
        return status(204, undefined);
      },
      {
        bucket: "write",
        params: S.UploadParams,
        query: S.UploadQuery,
        response: { 204: S.NoContent, ...S.errorResponses("InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "NoSuchBucket", "NoSuchUpload", ...S.AUTH_ERRORS) },
        detail: { summary: "Abandon an upload: its parts are forgotten and their chunks collected", tags: ["multipart"] },
      },
    );
  routes = app.routes;
  return app;
}

/**
 * GET or HEAD of an object: its headers, and its bytes (or the range asked for) unless HEAD.
 * With `pull`, a miss or a stale copy of a bucket with an origin is pulled through
 * (src/remotes/pull-through.ts), and its answer says how in X-Cache and Age.
 */
/** Requests that came as HEAD and go through the app as GET (see `headAsGet`). */
const cameAsHead = new WeakSet<Request>();

/**
 * The native app's handler. Elysia runs a GET route's handler for a HEAD (its HEAD routes are
 * never reached) and reads the whole answer to count it: a HEAD of a 1 GiB object read 1 GiB.
 * So a HEAD goes through as a GET that the object route knows for a HEAD (`cameAsHead`: it
 * answers headers only), and whatever body another route makes is dropped unread.
 */
export function headAsGet(app: { handle(request: Request): Promise<Response> }): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== "HEAD") return app.handle(request);
    const get = new Request(request.url, { method: "GET", headers: request.headers, signal: request.signal });
    inheritRequestId(request, get);
    cameAsHead.add(get);
    const answer = await app.handle(get);
    await answer.body?.cancel().catch(() => {});
    return new Response(null, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
  };
}

async function objectResponse(objects: NativeObjects, bucket: string, request: Request, head: boolean, pull?: Pick<PullThrough, "serve">): Promise<Response> {
  const key = rawKey(request, OBJECT_PATH);
  const ranged = request.headers.has("range");
  const rangeOf = (size: number) => parseRange(request.headers.get("range"), size);
  const versionId = versionIdOf(request);
  // A version is read as it is kept; only the current object is pulled through from an origin.
  if (versionId !== undefined) pull = undefined;
  const served = pull ? await pull.serve(bucket, key, { body: !head && !ranged, head, range: ranged ? rangeOf : undefined, signal: request.signal }) : undefined;
  if (served?.kind === "range") {
    // A range of an object not kept yet, read from the origin (no ETag: the mesh has not hashed it).
    const headers = { ...objectHeaders(served.manifest, META_PREFIX), ...cacheHeaders(served) };
    delete headers.etag;
    headers["content-length"] = String(served.end - served.start);
    headers["content-range"] = `bytes ${served.start}-${served.end - 1}/${served.manifest.size}`;
    return new Response(served.body, { status: 206, headers });
  }
  if (served?.kind === "stream") {
    const headers = { ...objectHeaders(served.manifest, META_PREFIX), ...cacheHeaders(served) };
    delete headers.etag;
    if (served.manifest.size > 0) headers["content-length"] = String(served.manifest.size);
    return new Response(served.body, { status: 200, headers });
  }
  const m = served?.manifest ?? (await objects.headObject(bucket, key, { signal: request.signal, versionId }));
  // SSE-S3 objects are opened with the mesh key (readObject); an SSE-C object needs its customer's key, which only the S3 API takes.
  if (m.sse?.kind === "C") throw new BadRequestError("this object is encrypted with a customer key (SSE-C): read it through the S3 API with its key", "InvalidRequest");
  const headers: Record<string, string> = { ...objectHeaders(m, META_PREFIX), ...(served ? cacheHeaders(served) : {}), ...versionHeader(m.versionId) };
  const range = parseRange(request.headers.get("range"), m.size);
  if (range === "unsatisfiable") {
    throw new MeshError("InvalidRange", `the range is not satisfiable for an object of ${m.size} bytes`, { headers: { "content-range": `bytes */${m.size}` } });
  }
  const [start, end] = range ?? [0, m.size];
  headers["content-length"] = String(end - start);
  if (range) headers["content-range"] = `bytes ${start}-${end - 1}/${m.size}`;
  const status = range ? 206 : 200;
  if (head) return new Response(null, { status, headers });
  return new Response(await objects.readObject(m, start, end, { signal: request.signal }), { status, headers });
}
