// The native API's request and response shapes, as TypeBox schemas: Elysia validates
// requests (and responses) against them, and /openapi.json is generated from them.
import { t } from "elysia";
import { httpStatus, type ErrorCode } from "../errors.ts";

/** An error body, `{error: {code, message}}`, whose code is one of `codes`. */
function errorBody(codes: readonly string[], description: string) {
  return t.Object(
    {
      error: t.Object({
        code: t.String({ description: "machine-readable code (S3's where one fits)", enum: [...codes] }),
        message: t.String({ description: "what went wrong, in plain words" }),
      }),
    },
    { description },
  );
}

/** Response schemas for the errors a route can answer, by status (several codes may share one). */
export function errorResponses(...codes: ErrorCode[]): Record<number, ReturnType<typeof errorBody>> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(httpStatus(code), [...(byStatus.get(httpStatus(code)) ?? []), code]);
  return Object.fromEntries([...byStatus].map(([status, same]) => [status, errorBody(same, same.join(" or "))]));
}

/** Errors every authenticated route can answer (a bad token, a non-admin or unpermitted key, too many requests, no quorum). */
export const AUTH_ERRORS: ErrorCode[] = ["Unauthorized", "AccessDenied", "SlowDown", "ServiceUnavailable"];

export const BucketParams = t.Object({
  bucket: t.String({ description: "bucket name: 3 to 63 lowercase letters, digits, dots and hyphens (S3's rules)" }),
});

export const ObjectParams = t.Object({
  bucket: BucketParams.properties.bucket,
  "*": t.String({ description: "object key: any UTF-8 up to 1024 bytes, taken from the raw path (`a//b` and `%2F` are bytes of the key)" }),
});

/** The params of a route with one `:id`. */
export const idParams = (description: string) => t.Object({ id: t.String({ description }) });

export const Health = t.Object({ status: t.Literal("ok"), peerId: t.String() });

/** A member as `/cluster/peers` shows it; `addrs` only to callers with a token. */
export const Member = t.Object({
  id: t.String({ description: "libp2p peer id" }),
  addrs: t.Optional(t.Array(t.String(), { description: "p2p multiaddrs (key holders only)" })),
  http: t.Optional(t.String({ description: "the member's native API URL" })),
  state: t.String({ description: "alive, suspect, dead or removed" }),
  draining: t.Optional(t.Boolean({ description: "handing its data to the others before it stops (owns nothing new, not counted in quorums)" })),
  lastSeenMs: t.Number(),
  incarnation: t.Number(),
});

export const PeersView = t.Object({ self: Member, peers: t.Array(Member) });

/** `/cluster/status`: counters by part of the peer (their fields evolve with the parts; src/api/status.ts types them). */
export const ClusterStatus = t.Record(t.String(), t.Unknown(), { description: "peer id, rf, member counts, storage, repair, workers, scrub, gc, quorum, limits, draining..." });

export const MetricsText = t.String({ description: "the Prometheus text exposition format" });

export const DrainState = t.Object({
  draining: t.Boolean(),
  safeToStop: t.Boolean({ description: "nothing is left here that the mesh lacks" }),
  reason: t.Optional(t.String({ description: 'why the drain cannot make progress, while that is so (e.g. "3 members, RF 3: nowhere to move the data")' })),
});

export const QuorumRule = t.Object({ members: t.Number(), rf: t.Number(), r: t.Number(), w: t.Number() });

export const RemovedMember = t.Object({ removed: t.String(), quorum: QuorumRule });

const Permission = t.Union([t.Literal("read"), t.Literal("write"), t.Literal("owner")]);

export const KeySpec = t.Object(
  {
    name: t.Optional(t.String({ maxLength: 128 })),
    admin: t.Optional(t.Boolean()),
    buckets: t.Optional(t.Record(t.String(), Permission, { description: 'bucket name (or "*") to permission' })),
    create: t.Optional(t.Boolean({ description: "may create buckets, and holds owner rights on each bucket it creates" })),
  },
  { description: "what the new key may do" },
);

export const KeyInfo = t.Object({
  accessKeyId: t.String(),
  name: t.Optional(t.String()),
  admin: t.Boolean(),
  buckets: t.Record(t.String(), Permission),
  create: t.Optional(t.Boolean({ description: "may create buckets (and owns those it creates)" })),
  createdMs: t.Number(),
});

export const KeyList = t.Object({ keys: t.Array(KeyInfo) });

export const CreatedKey = t.Object({
  ...KeyInfo.properties,
  secretAccessKey: t.String({ description: "shown once: the S3 secret" }),
  token: t.String({ description: "shown once: the native API's bearer token" }),
});

export const BucketList = t.Object({
  buckets: t.Array(t.Object({ name: t.String(), createdMs: t.Number(), owner: t.Optional(t.String({ description: "the access key id that created it (none: a bucket from before buckets had owners)" })) })),
});

export const CreatedBucket = t.Object({ bucket: t.String() });

export const ListQuery = t.Object({
  prefix: t.Optional(t.String({ description: "only keys starting with this" })),
  delimiter: t.Optional(t.String({ description: "roll keys up to the next delimiter after the prefix into `prefixes`" })),
  limit: t.Optional(t.Integer({ minimum: 1, description: "entries per page (at most 1000)" })),
  cursor: t.Optional(t.String({ description: "`nextCursor` of the previous page" })),
});

export const ObjectListing = t.Object({
  objects: t.Array(t.Object({ key: t.String(), size: t.Number(), etag: t.String(), lastModified: t.String() })),
  prefixes: t.Array(t.String()),
  nextCursor: t.Union([t.String(), t.Null()]),
});

export const PutResult = t.Object({ bucket: t.String(), key: t.String(), size: t.Number(), etag: t.String(), contentType: t.String(), versionId: t.Optional(t.String()) });

export const Location = t.Object({
  bucket: t.String(),
  key: t.String(),
  size: t.Number(),
  etag: t.String(),
  inline: t.Boolean(),
  chunks: t.Array(t.Object({ id: t.String(), size: t.Number(), expected: t.Array(t.String()), holders: t.Array(t.String()) })),
  shard: t.Object({ id: t.String(), replicas: t.Array(t.String()), holders: t.Array(t.String()) }),
});

/** A response with no body (204), or bytes the schema cannot describe (an object's content). */
export const NoContent = t.Void({ description: "no content" });
export const ObjectBytes = t.Unknown({ description: "the object's bytes (a Range gives 206 and those bytes only)" });

/** The OpenAPI description of an upload's body: any bytes, streamed (Elysia never parses it). */
export const UPLOAD_BODY = { required: true, content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } } as const;

export const EventsQuery = t.Object({
  after: t.Optional(t.Integer({ minimum: 0, description: "only events with a larger seq (the `lastSeq` of the previous answer)" })),
  limit: t.Optional(t.Integer({ minimum: 1, description: "most events to return, the newest ones (at most 1000)" })),
});

export const ClusterEvents = t.Object({
  events: t.Array(
    t.Object({
      seq: t.Integer(),
      timeMs: t.Number(),
      type: t.String({ description: "peer.joined, peer.suspect, peer.dead, peer.alive, peer.removed, repair.started, repair.finished, drain.started, drain.finished, drain.cancelled, key.created, key.revoked" }),
      peer: t.Optional(t.String({ description: "the member it is about" })),
      detail: t.String(),
    }),
  ),
  lastSeq: t.Integer({ description: "the newest seq on this peer: pass it as `after` next time" }),
  capacity: t.Integer({ description: "how many events this peer keeps" }),
});

// ---- multipart uploads ----

/** The object key of a multipart route, in the query (ids and part numbers fill the path). */
export const UploadQuery = t.Object({
  key: t.String({ minLength: 1, description: "object key: any UTF-8 up to 1024 bytes, percent-encoded ('+' is a space)" }),
});

export const OpenUploadsQuery = t.Object({
  prefix: t.Optional(t.String({ description: "only uploads of keys starting with this" })),
  limit: t.Optional(t.Integer({ minimum: 1, description: "uploads per page (at most 1000)" })),
  cursor: t.Optional(t.String({ description: "`nextCursor` of the previous page" })),
});

export const OpenUploads = t.Object({
  uploads: t.Array(t.Object({ key: t.String(), uploadId: t.String(), initiated: t.String({ description: "when it was started (ISO 8601)" }) }), { description: "uploads in progress, by key and upload id" }),
  nextCursor: t.Union([t.String(), t.Null()]),
});

export const UploadParams = t.Object({
  bucket: BucketParams.properties.bucket,
  uploadId: t.String({ description: "the id that starting the upload answered" }),
});

export const PartParams = t.Object({
  ...UploadParams.properties,
  partNumber: t.Integer({ minimum: 1, maximum: 10_000, description: "1 to 10,000; the object is the parts in this order" }),
});

export const CreatedUpload = t.Object({ bucket: t.String(), key: t.String(), uploadId: t.String() });

export const UploadedPart = t.Object({
  partNumber: t.Integer(),
  etag: t.String({ description: "MD5 hex of the part's bytes: give it back to complete the upload" }),
  size: t.Number(),
});

export const UploadParts = t.Object({ bucket: t.String(), key: t.String(), uploadId: t.String(), parts: t.Array(UploadedPart, { description: "every part uploaded so far, by part number" }) });

export const CompleteUpload = t.Object(
  {
    parts: t.Array(t.Object({ partNumber: t.Integer({ minimum: 1, maximum: 10_000 }), etag: t.String({ minLength: 1, maxLength: 128 }) }), {
      minItems: 1,
      maxItems: 10_000,
      description: "the parts that make the object, in ascending part order; each but the last at least 5 MiB",
    }),
  },
  { description: "which uploaded parts make the object" },
);

export const CompletedUpload = t.Object({
  bucket: t.String(),
  key: t.String(),
  etag: t.String({ description: "S3's multipart ETag: MD5 of the parts' MD5s, then '-' and the number of parts" }),
  size: t.Number(),
});

// ---- upload progress records (src/uploads/) ----

export const UploadTokenParams = t.Object({ token: t.String({ description: "the upload's token (its x-upload-token header)" }) });

export const UploadsQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, description: "most records to return, newest first (default 50, at most 200)" })),
});

/** An upload's progress record. */
export const UploadProgress = t.Object({
  token: t.String(),
  bucket: t.String(),
  key: t.String(),
  state: t.Union([t.Literal("inprogress"), t.Literal("fail"), t.Literal("success")], { description: "a running upload silent for 60 s reads as fail (stalled)" }),
  bytesReceived: t.Integer({ minimum: 0 }),
  size: t.Optional(t.Integer({ minimum: 0, description: "the declared length while running, the object's size once done" })),
  startedMs: t.Integer(),
  finishedMs: t.Optional(t.Integer()),
  error: t.Optional(t.String()),
  uploadId: t.Optional(t.String({ description: "a multipart upload's id (its parts count towards bytesReceived)" })),
});

export const UploadList = t.Object({ uploads: t.Array(UploadProgress) });

// ---- search (src/search/) ----

export const FieldParams = t.Object({
  bucket: BucketParams.properties.bucket,
  field: t.String({ description: "the field's name" }),
});

const FieldTypeName = t.Union([t.Literal("number"), t.Literal("date"), t.Literal("string"), t.Literal("bool"), t.Literal("keywords")]);

export const SchemaState = t.Object({
  bucket: t.String(),
  fields: t.Record(t.String(), t.Object({ type: FieldTypeName, state: t.Union([t.Literal("building"), t.Literal("ready")]) })),
  state: t.Union([t.Literal("building"), t.Literal("ready")], { description: "ready once every field is indexed on every live peer" }),
  progress: t.Object({ peersReady: t.Number(), peers: t.Number(), objectsIndexed: t.Number() }),
});

export const EventsParams = t.Object({
  cursor: t.Optional(t.String({ description: "where the previous page ended (its cursor), or an event id" })),
  from: t.Optional(t.String({ description: "without a cursor: earliest (the default) or now" })),
  limit: t.Optional(t.String({ description: "1 to 1000 events; 100 by default" })),
  types: t.Optional(t.String({ description: "comma-separated: ObjectCreated:*, ObjectRemoved:Delete, BucketCreated, ..." })),
  prefix: t.Optional(t.String()),
  suffix: t.Optional(t.String()),
});

export const EventStreamParams = t.Object({
  from: t.Optional(t.String({ description: "without a Last-Event-ID header: now (the default), earliest, or an event id or cursor" })),
  types: t.Optional(t.String({ description: "comma-separated: ObjectCreated:*, ObjectRemoved:Delete, BucketCreated, ..." })),
  prefix: t.Optional(t.String()),
  suffix: t.Optional(t.String()),
});

export const EventStreamText = t.String({
  description: "text/event-stream: per event `id: <event id>` (a cursor: resume with Last-Event-ID), `event: <eventName>`, `data: <S3 record>`; a `: ping` comment when idle",
});

export const EventsPage = t.Object({
  events: t.Array(t.Record(t.String(), t.Unknown(), { description: "an S3 event record (eventName, eventTime, s3.object.key URL-encoded, size, eTag, sequencer, userIdentity)" })),
  cursor: t.String({ description: "pass back as ?cursor= to read on" }),
});

/** A webhook target as GET and PUT answer it: never its secret. */
export const ShownTarget = t.Object({
  id: t.String({ description: "the target's name in the bucket: 1 to 64 letters, digits, _ or -" }),
  url: t.String({ description: "where deliveries are POSTed (http or https)" }),
  events: t.Array(t.String(), { description: "event types sent: ObjectCreated:*, ObjectRemoved:Delete, BucketCreated, * ..." }),
  prefix: t.Optional(t.String()),
  suffix: t.Optional(t.String()),
  maxBatch: t.Number({ description: "most events per POST (1 to 100)" }),
  createdMs: t.Number({ description: "the target receives the events stamped from this time on" }),
});

export const Notifications = t.Object({ targets: t.Array(ShownTarget) });

export const NotificationStatus = t.Object({
  targets: t.Array(
    t.Object({
      id: t.String(),
      lag: t.Number({ description: "matching events not yet acknowledged, counted up to 1000" }),
      lagCapped: t.Boolean({ description: "there may be more pending events than lag says" }),
      oldestPendingMs: t.Optional(t.Number({ description: "event time of the oldest pending event (ms since the epoch)" })),
      lastSuccessMs: t.Union([t.Number(), t.Null()], { description: "when the target last acknowledged a delivery" }),
      lastError: t.Union([t.Object({ message: t.String(), atMs: t.Number() }), t.Null()], { description: "the latest failed delivery (kept after recovery)" }),
      failing: t.Boolean({ description: "the latest attempt failed" }),
    }),
  ),
});

export const TextQueryParams = t.Object({
  q: t.Optional(t.String({ description: 'conditions joined by "and": year>=2020 and title prefix "Mesh"' })),
  sort: t.Optional(t.String()),
  order: t.Optional(t.String({ description: "asc or desc" })),
  limit: t.Optional(t.String()),
  cursor: t.Optional(t.String()),
  allowPartial: t.Optional(t.String({ description: "true or false" })),
});

export const QueryAnswer = t.Object({
  objects: t.Array(t.Object({ key: t.String(), size: t.Number(), etag: t.String(), lastModified: t.String(), contentType: t.String(), meta: t.Record(t.String(), t.String()) })),
  nextCursor: t.Union([t.String(), t.Null()]),
});

// ---- remotes and bucket origins (src/remotes/) ----
export const RemoteParams = t.Object({ name: t.String({ description: "the remote's name: 1 to 63 lowercase letters, digits and hyphens" }) });

export const ShownRemote = t.Object({
  name: t.String(),
  type: t.String({ description: "http, s3, azure, gcs or swift" }),
  endpoint: t.String(),
  bucket: t.Optional(t.String()),
  container: t.Optional(t.String()),
  region: t.Optional(t.String()),
  hasCredentials: t.Boolean({ description: "credentials are stored sealed and never shown" }),
  updatedMs: t.Number(),
});

export const RemoteList = t.Object({ remotes: t.Array(ShownRemote) });

/** An origin sync's state (src/remotes/origin-sync.ts). */
export const SyncState = t.Object({
  state: t.String({ description: "running, done or failed" }),
  peer: t.String({ description: "the peer running it, or that last ran it" }),
  remote: t.String(),
  prefix: t.String(),
  startedMs: t.Number(),
  finishedMs: t.Optional(t.Number()),
  heartbeatMs: t.Number({ description: "written at each page; a running sync gone quiet is resumed by another peer" }),
  listed: t.Number({ description: "objects the remote listed" }),
  imported: t.Number({ description: "new objects imported (metadata only)" }),
  updated: t.Number({ description: "objects whose remote ETag changed, imported again" }),
  removed: t.Number({ description: "imported or fetched objects gone from the remote, removed" }),
  errors: t.Number(),
  lastError: t.Optional(t.String()),
  cursor: t.Union([t.String(), t.Null()], { description: "resume point: the remote's cursor of the next page" }),
  after: t.Optional(t.String({ description: "resume point: mesh keys up to this one were compared" })),
});

/** A remote probe's answer (src/remotes/remote-probe.ts). */
export const ProbeResult = t.Object({
  ok: t.Boolean(),
  steps: t.Array(t.Object({ step: t.String(), ok: t.Boolean(), ms: t.Number(), error: t.Optional(t.String()) })),
});

export const OriginConfig = t.Object({
  remote: t.String(),
  prefix: t.String({ description: "put before each key at the remote" }),
  mode: t.String({ description: "pull-through, or write-through (every PUT and DELETE also applied to the remote, queued durably)" }),
  defaultTtlSeconds: t.Number({ description: "freshness when the origin sends no Cache-Control max-age or Expires" }),
  negativeTtlSeconds: t.Number({ description: "how long an origin 404 is remembered" }),
  staleIfErrorSeconds: t.Number({ description: "how long past freshness a copy is served while the origin fails" }),
  updatedMs: t.Number(),
  writeThroughSinceMs: t.Optional(t.Number({ description: "write-through: changes from then on are applied to the remote" })),
  writeThrough: t.Optional(
    t.Object(
      {
        pending: t.Number({ description: "changes not yet applied to the remote (at most 1000)" }),
        pendingCapped: t.Boolean(),
        oldestPendingMs: t.Optional(t.Number()),
        lastSuccessMs: t.Union([t.Number(), t.Null()]),
        lastError: t.Union([t.Object({ message: t.String(), atMs: t.Number() }), t.Null()], { description: "the latest failed remote write (kept after recovery)" }),
        failing: t.Boolean(),
      },
      { description: "write-through: the bucket's queue of changes for the remote" },
    ),
  ),
  sync: t.Optional(SyncState),
});
