// Every native route through `app.handle(new Request(...))`, with no port: who may call it
// (no or a wrong token 401, a key without the right 403), schema errors as 400 in the JSON
// error format, each error code the route can answer, the request id on every answer and in
// the log line of a 5xx. The peer behind the routes is a small in-memory fake (the network
// is not the point here: the cluster tests cover real peers). Then /openapi.json lists every
// route with its schemas, and /docs answers HTML that loads nothing from elsewhere.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AccessKey, AccessKeyInfo, KeySpec } from "../../src/auth/access-keys.ts";
import { bearerAuth } from "../../src/auth/guard.ts";
import { ConflictError, MeshError, NotFoundError, QuorumError, SlowDownError } from "../../src/errors.ts";
import { nativeErrors } from "../../src/api/errors.ts";
import type { NativeChanges } from "../../src/api/native-events.ts";
import type { NativeStreams } from "../../src/api/event-stream.ts";
import { headAsGet, createNativeApi, type ClusterView, type ListedMember, type NativeMultipart, type NativeNotifications, type NativeObjects, type NativeOrigins, type NativeSearch } from "../../src/api/native.ts";
import { validateRemoteName, validateRemoteSpec, type ShownRemote } from "../../src/remotes/registry.ts";
import { validateOrigin, type OriginConfig } from "../../src/remotes/origin-config.ts";
import { shownTarget, storeTargets, validateTargets, type NotificationsValue } from "../../src/changes/targets.ts";
import { createSecretSealer } from "../../src/auth/sealed-secret.ts";
import { uploadListKey, validateKey } from "../../src/metadata/keys.ts";
import type { ObjectManifest } from "../../src/metadata/types.ts";
import { MIN_PART_BYTES, multipartEtag, type PartRecord, type UploadRecord } from "../../src/objects/multipart.ts";
import { createLogger, type LogLevel } from "../../src/util/log.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createHlc } from "../../src/util/hlc.ts";
import { storeRows } from "../../src/uploads/rows.ts";
import { createUploadRecords, type UploadRecords } from "../../src/uploads/service.ts";

// ---- the fakes ----

const ADMIN = "admin-token";
const READER = "reader-token"; // read on "docs" only
const WRITER = "writer-token"; // write on "docs" only
const OWNER = "owner-token"; // owner of every bucket, not an admin

const keyOf = (accessKeyId: string, admin: boolean, buckets: AccessKey["buckets"]): AccessKey => ({ accessKeyId, admin, buckets, name: accessKeyId, secretAccessKey: "s".repeat(40), createdMs: 1 });
const TOKENS: Record<string, AccessKey> = {
  [ADMIN]: keyOf("MKADMIN", true, {}),
  [READER]: keyOf("MKREADER", false, { docs: "read" }),
  [WRITER]: keyOf("MKWRITER", false, { docs: "write" }),
  [OWNER]: keyOf("MKOWNER", false, { "*": "owner" }),
};

/** Buckets of objects in memory, with the same errors as the real object service. */
function fakeObjects(): NativeObjects & { failNext?: Error; reads?: number } {
  const buckets = new Map<string, Map<string, { m: ObjectManifest; bytes: Uint8Array }>>();
  const bucket = (name: string) => {
    const b = buckets.get(name);
    if (!b) throw new NotFoundError(`bucket ${name} does not exist`, "NoSuchBucket");
    return b;
  };
  const self: NativeObjects & { failNext?: Error; reads?: number } = {
    async createBucket(name) {
      if (self.failNext) throw self.failNext;
      const created = !buckets.has(name);
      if (created) buckets.set(name, new Map());
      return { bucket: name, created };
    },
    async deleteBucket(name) {
      if (bucket(name).size) throw new ConflictError(`bucket ${name} is not empty`, "BucketNotEmpty");
      buckets.delete(name);
    },
    async listBuckets() {
      return [...buckets.keys()].map((name) => ({ name, createdMs: 1 }));
    },
    async requireBucket(name) {
      bucket(name);
    },
    async putObject(b, key, body, opts) {
      const objects = bucket(b);
      validateKey(key);
      const bytes = new Uint8Array(body ? await new Response(body).arrayBuffer() : new ArrayBuffer(0));
      const etag = new Bun.CryptoHasher("md5").update(bytes).digest("hex");
      const m: ObjectManifest = { size: bytes.byteLength, etag, contentType: opts.contentType ?? "application/octet-stream", meta: opts.meta ?? {}, headers: opts.headers, lastModified: 1_700_000_000_000, chunkSize: 1 << 20, chunks: [] };
      objects.set(key, { m, bytes });
      return { bucket: b, key, size: m.size, etag, contentType: m.contentType };
    },
    async headObject(b, key) {
      const o = bucket(b).get(key);
      if (!o) throw new NotFoundError(`no object ${key} in bucket ${b}`, "NoSuchKey");
      return o.m;
    },
    async readObject(m, start, end) {
      self.reads = (self.reads ?? 0) + 1;
      for (const objects of buckets.values()) for (const o of objects.values()) if (o.m === m) return new Response(o.bytes.slice(start, end)).body!;
      throw new Error("no such manifest");
    },
    async deleteObject(b, key) {
      bucket(b).delete(key);
      return {};
    },
    async listObjects(b, q) {
      const keys = [...bucket(b).keys()].filter((k) => k.startsWith(q.prefix ?? "") && (q.after === undefined || k > q.after)).sort();
      const limit = q.limit ?? 1000;
      const page = keys.slice(0, limit);
      return { objects: page.map((key) => ({ key, size: 1, etag: "e", lastModified: "2024-01-01T00:00:00.000Z" })), prefixes: [], next: keys.length > limit ? page[page.length - 1] : null };
    },
    async locate(b, key) {
      const m = await self.headObject(b, key);
      return { bucket: b, key, size: m.size, etag: m.etag, inline: true, chunks: [], shard: { id: "o1", replicas: ["p1"], holders: ["p1"] } };
    },
  };
  return self;
}

/** The fake's upload ids: 32 hex digits counting from 1, so the table below can name them. */
const uploadIdOf = (n: number) => n.toString(16).padStart(32, "0");
const UPLOAD = uploadIdOf(1); // key "big.bin" in "docs", part 1 = "hello"
const UPLOAD2 = uploadIdOf(2); // key "big.bin" in "docs", no parts

/** Multipart uploads in memory over the fake buckets, with the real service's rules and errors. */
function fakeMultipart(objects: NativeObjects): NativeMultipart & { signals: Array<AbortSignal | undefined> } {
  const uploads = new Map<string, { bucket: string; record: UploadRecord; parts: Map<number, PartRecord & { bytes: Uint8Array }> }>();
  let made = 0;
  const requireBucket = async (bucket: string) => {
    if (!(await objects.listBuckets()).some((b) => b.name === bucket)) throw new NotFoundError(`bucket ${bucket} does not exist`, "NoSuchBucket");
  };
  const upload = async (bucket: string, key: string, uploadId: string) => {
    validateKey(key);
    await requireBucket(bucket);
    const u = uploads.get(uploadId);
    if (!u || u.bucket !== bucket || u.record.key !== key) throw new NotFoundError("The specified upload does not exist.", "NoSuchUpload");
    return u;
  };
  const self: NativeMultipart & { signals: Array<AbortSignal | undefined> } = {
    signals: [],
    async create(bucket, key, init) {
      validateKey(key);
      await requireBucket(bucket);
      const uploadId = uploadIdOf(++made);
      uploads.set(uploadId, { bucket, record: { uploadId, key, initiated: 1, ...init }, parts: new Map() });
      return uploadId;
    },
    async uploadPart(bucket, key, uploadId, partNumber, body, contentLength, opts) {
      const u = await upload(bucket, key, uploadId);
      self.signals.push(opts?.signal);
      const bytes = new Uint8Array(body ? await new Response(body).arrayBuffer() : new ArrayBuffer(0));
      if (contentLength !== undefined && bytes.byteLength !== contentLength) throw new MeshError("IncompleteBody", `received ${bytes.byteLength} bytes but Content-Length said ${contentLength}`);
      const part = { partNumber, size: bytes.byteLength, etag: new Bun.CryptoHasher("md5").update(bytes).digest("hex"), lastModified: 1, chunks: [], holders: [], bytes };
      u.parts.set(partNumber, part);
      return part;
    },
    async listParts(bucket, key, uploadId, q) {
      const u = await upload(bucket, key, uploadId);
      const after = [...u.parts.values()].filter((p) => p.partNumber > (q.after ?? 0)).sort((a, b) => a.partNumber - b.partNumber);
      return { upload: u.record, parts: after.slice(0, q.limit), truncated: after.length > q.limit };
    },
    async complete(bucket, key, uploadId, wanted) {
      const u = await upload(bucket, key, uploadId);
      if (wanted.some((w, i) => i > 0 && w.partNumber <= wanted[i - 1].partNumber)) throw new MeshError("InvalidPartOrder", "The list of parts was not in ascending order.");
      const chosen = wanted.map((w, i) => {
        const p = u.parts.get(w.partNumber);
        if (!p || p.etag !== w.etag.replace(/"/g, "")) throw new MeshError("InvalidPart", `part ${w.partNumber} could not be found`);
        if (i < wanted.length - 1 && p.size < MIN_PART_BYTES) throw new MeshError("EntityTooSmall", `part ${w.partNumber} is too small`);
        return p;
      });
      const put = await objects.putObject(bucket, key, new Response(Buffer.concat(chosen.map((p) => p.bytes))).body, { contentType: u.record.contentType, meta: u.record.meta });
      uploads.delete(uploadId);
      return { size: put.size, etag: multipartEtag(chosen.map((p) => p.etag)), completedMs: 1 };
    },
    async abort(bucket, key, uploadId) {
      await upload(bucket, key, uploadId);
      uploads.delete(uploadId);
    },
    requireUpload: async (bucket, key, uploadId) => (await upload(bucket, key, uploadId)).record,
    async listUploads(bucket, q) {
      await requireBucket(bucket);
      const open = [...uploads.values()]
        .filter((u) => u.bucket === bucket && u.record.key.startsWith(q.prefix ?? "") && (q.after === undefined || uploadListKey(u.record.key, u.record.uploadId) > q.after))
        .sort((a, b) => (uploadListKey(a.record.key, a.record.uploadId) < uploadListKey(b.record.key, b.record.uploadId) ? -1 : 1));
      const page = open.slice(0, q.limit).map((u) => u.record);
      return { uploads: page, next: open.length > q.limit ? uploadListKey(page[page.length - 1].key, page[page.length - 1].uploadId) : null };
    },
  };
  return self;
}

function fakeKeys() {
  const made: AccessKeyInfo[] = [];
  return {
    async byToken(token: string) {
      return TOKENS[token] ?? null;
    },
    async list() {
      return [...Object.values(TOKENS).map(({ secretAccessKey: _, ...info }) => info), ...made];
    },
    async create(spec: KeySpec) {
      const info: AccessKeyInfo = { accessKeyId: `MKNEW${made.length}`, name: spec.name ?? "", admin: spec.admin ?? false, buckets: spec.buckets ?? {}, createdMs: 2 };
      made.push(info);
      return { ...info, secretAccessKey: "x".repeat(40), token: `mst_${info.accessKeyId}_t` };
    },
    async revoke(id: string) {
      if (!Object.values(TOKENS).some((k) => k.accessKeyId === id) && !made.some((k) => k.accessKeyId === id)) throw new NotFoundError(`no access key ${id}`, "NoSuchKey");
    },
  };
}

const member = (id: string, state: string): ListedMember => ({ id, addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${id}`], state, lastSeenMs: 5, incarnation: 0 });
const NOWHERE = "3 members, RF 3: nowhere to move the data";
const view: ClusterView = {
  peerId: "self-peer",
  peers: () => ({ self: member("self-peer", "alive"), peers: [member("alive-peer", "alive"), member("dead-peer", "dead")] }),
  status: () => ({ peerId: "self-peer", rf: 3, draining: false, uptimeSeconds: 1, peers: { alive: 2, suspect: 0, dead: 1, known: 3 } }),
  drain: async () => ({ draining: true, safeToStop: false, reason: NOWHERE }),
  cancelDrain: async () => ({ draining: false, safeToStop: false }),
  drainMember: async (id, cancel) => {
    if (id === "dead-peer") throw new MeshError("ServiceUnavailable", `member ${id} is dead: cannot drain it`);
    if (id !== "alive-peer" && id !== "self-peer") throw new NotFoundError(`no member ${id} in this mesh`, "NoSuchMember");
    return cancel ? { draining: false, safeToStop: false } : { draining: true, safeToStop: false };
  },
  removeMember: async (id) => {
    if (id === "alive-peer") throw new ConflictError(`member ${id} is alive: only a dead member can be removed`, "MemberNotDead");
    if (id !== "dead-peer") throw new NotFoundError(`no member ${id} in this mesh`, "NoSuchMember");
    return { removed: id, quorum: { members: 2, rf: 3, r: 2, w: 2 } };
  },
  metrics: { public: false, contentType: "text/plain; version=0.0.4; charset=utf-8", render: async () => "# TYPE meshstore_up gauge\nmeshstore_up 1\n" },
};

// ---- the app under test ----

let objects: ReturnType<typeof fakeObjects>;
let multipart: ReturnType<typeof fakeMultipart>;
let logged: Array<[LogLevel, string]>;
let app: ReturnType<typeof createNativeApi>;

/** A change log with no events, whose reads the bad-input tests count (none should get through). */
let changeReads = 0;
function fakeChanges(): NativeChanges {
  return {
    async read(_bucket, { cursor }) {
      changeReads++;
      return { events: [], cursor };
    },
    now: () => "0000000000000-000000",
  };
}
/** Each stream the route opened: where it starts and what it passes (bad input opens none). */
let streamsOpened: Array<{ bucket: string; cursor: string; filter: unknown }> = [];
function fakeStreams(): NativeStreams {
  return {
    pingMs: 1000,
    open({ bucket, cursor, filter, format }) {
      streamsOpened.push({ bucket, cursor, filter });
      return new Response(format.opening(cursor), { headers: { "content-type": format.contentType } });
    },
  };
}

/** Webhook targets in memory, checked and sealed as the real service does (delivery is tested in test/cluster/webhooks.test.ts). */
/** Remotes and origins kept in maps (the real ones are tested on a mesh in test/cluster/origin.test.ts). */
function fakeOrigins(): NativeOrigins {
  const remotes = new Map<string, ShownRemote>();
  const origins = new Map<string, OriginConfig>();
  const remote = (name: string) => {
    validateRemoteName(name);
    const r = remotes.get(name);
    if (!r) throw new NotFoundError(`no remote named ${name}`, "NoSuchRemote");
    return r;
  };
  const origin = async (bucket: string) => {
    await objects.requireBucket(bucket);
    const o = origins.get(bucket);
    if (!o) throw new NotFoundError(`bucket ${bucket} has no origin`, "NoSuchOrigin");
    return o;
  };
  return {
    remotes: {
      async put(name, raw) {
        validateRemoteName(name);
        const { credentials, ...spec } = validateRemoteSpec(raw);
        const shown = { name, ...spec, hasCredentials: credentials !== undefined, updatedMs: 1 };
        remotes.set(name, shown);
        return shown;
      },
      get: async (name) => remote(name),
      list: async () => [...remotes.values()],
      remove: async (name) => void (remote(name), remotes.delete(name)),
    },
    origins: {
      async put(bucket, raw) {
        await objects.requireBucket(bucket);
        const o = { ...validateOrigin(raw), updatedMs: 1 };
        remote(o.remote);
        origins.set(bucket, o);
        return o;
      },
      get: origin,
      remove: async (bucket) => void (await origin(bucket), origins.delete(bucket)),
    },
    pull: { serve: async (bucket, key, opts) => ({ kind: "stored", manifest: await objects.headObject(bucket, key, opts) }) },
    sync: {
      async begin(bucket) {
        const o = await origin(bucket);
        return { state: "running", peer: "self", remote: o.remote, prefix: o.prefix, startedMs: 1, heartbeatMs: 1, listed: 0, imported: 0, updated: 0, removed: 0, errors: 0, cursor: null };
      },
      state: async () => null,
    },
    probe: async (name) => (remote(name), { ok: false, steps: [{ step: "head", ok: false, ms: 1, error: "origin 127.0.0.1:9 could not be reached" }] }),
  };
}

function fakeNotifications(): NativeNotifications {
  const sealer = createSecretSealer(new Uint8Array(32));
  const rows = new Map<string, NotificationsValue>();
  return {
    async get(bucket) {
      await objects.requireBucket(bucket);
      return { targets: (rows.get(bucket)?.targets ?? []).map(shownTarget) };
    },
    async put(bucket, raw) {
      await objects.requireBucket(bucket);
      const value = storeTargets(bucket, validateTargets(raw), rows.get(bucket) ?? null, 1, sealer);
      rows.set(bucket, value);
      return { targets: value.targets.map(shownTarget) };
    },
    async remove(bucket) {
      await objects.requireBucket(bucket);
      rows.delete(bucket);
    },
    async status(bucket) {
      await objects.requireBucket(bucket);
      return { targets: (rows.get(bucket)?.targets ?? []).map((t) => ({ id: t.id, lag: 0, lagCapped: false, lastSuccessMs: null, lastError: null, failing: false })) };
    },
  };
}

/** Upload records in a real local index store (in a temporary folder). */
let recordsDir: string;
let recordsStore: IndexStore;
let uploads: UploadRecords;
/** A finished upload's record in "docs", and one in "other" (which READER may not read). */
const SEEDED_TOKEN = "seeded-token-docs";
const OTHER_TOKEN = "seeded-token-other";

beforeAll(async () => {
  recordsDir = mkdtempSync(path.join(os.tmpdir(), "meshstore-routes-"));
  recordsStore = await openIndexStore(recordsDir, { deletesAreFinal: () => false });
  uploads = createUploadRecords({ rows: storeRows(recordsStore, createHlc("routes-test")), log: createLogger("test", () => {}, "error") });
  await uploads.begin(SEEDED_TOKEN, "docs", "a/b.txt").succeed(5);
  await uploads.begin(OTHER_TOKEN, "other", "x").succeed(1);
});

afterAll(async () => {
  await recordsStore.close();
  rmSync(recordsDir, { recursive: true, force: true });
});

/** Search as the routes see it: every call answers a fixed, well-formed reply (the service itself is tested in test/cluster/search.test.ts). */
function fakeSearch(): NativeSearch {
  const state = { bucket: "docs", fields: { year: { type: "number" as const, state: "ready" as const } }, state: "ready" as const, progress: { peersReady: 1, peers: 1, objectsIndexed: 0 } };
  const page = { objects: [{ key: "a/b.txt", size: 5, etag: md5("hello"), lastModified: new Date(0).toISOString(), contentType: "text/plain", meta: { year: "2020" } }], nextCursor: null };
  return {
    getSchema: async () => state,
    putSchema: async () => state,
    deleteSchema: async () => {},
    deleteField: async () => state,
    query: async () => page,
    queryText: async () => page,
  };
}

/** What the next authentication throws instead of checking the token (a rate limit, a lost quorum). */
let authFails: MeshError | undefined;

beforeEach(async () => {
  objects = fakeObjects();
  logged = [];
  authFails = undefined;
  const keys = fakeKeys();
  const bearer = bearerAuth(keys, true);
  const log = createLogger("test", (level, line) => void logged.push([level, line]), "debug");
  multipart = fakeMultipart(objects);
  app = createNativeApi(view, objects, { authenticate: (r) => (authFails ? Promise.reject(authFails) : bearer(r)), required: true, keys }, nativeErrors(log), multipart, fakeSearch(), fakeChanges(), fakeNotifications(), uploads, fakeStreams(), fakeOrigins());
  await objects.createBucket("docs");
  // UPLOAD with part 1, then UPLOAD2 with none (ids count up).
  await multipart.create("docs", "big.bin", { contentType: "application/x-big", meta: {} });
  await multipart.uploadPart("docs", "big.bin", UPLOAD, 1, new Response("hello").body, 5);
  await multipart.create("docs", "big.bin", { contentType: "application/x-big", meta: {} });
});

interface Call {
  token?: string | null;
  body?: string;
  headers?: Record<string, string>;
}

/** One request through app.handle, as the admin unless `token` says otherwise (null: no Authorization). */
async function call(method: string, path: string, opts: Call = {}): Promise<Response> {
  const token = opts.token === undefined ? ADMIN : opts.token;
  const headers: Record<string, string> = { ...opts.headers };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  // As any HTTP client sends a body of known length (a Request built here carries none).
  if (opts.body !== undefined && headers["content-length"] === undefined) headers["content-length"] = String(Buffer.byteLength(opts.body));
  return app.handle(new Request(`http://localhost${path}`, { method, headers, body: opts.body }));
}

/** "404 NoSuchKey" for an error answer, after checking it is exactly `{error: {code, message}}` with a request id. */
async function errorOf(r: Response): Promise<string> {
  expect(r.headers.get("x-request-id")).toMatch(/^[0-9A-F]{16}$/);
  if (r.status < 400) return `${r.status} (not an error: ${(await r.text()).slice(0, 100)})`;
  expect(r.headers.get("content-type")).toStartWith("application/json");
  const body = (await r.json()) as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message"]);
  expect(body.error.message.length).toBeGreaterThan(0);
  return `${r.status} ${body.error.code}`;
}

const json = async <T>(r: Response): Promise<T> => (await r.json()) as T;
const md5 = (s: string | Uint8Array) => new Bun.CryptoHasher("md5").update(s).digest("hex");

// Every route with a request that succeeds as the admin (the fakes hold bucket "docs").
const OBJECT = "/buckets/docs/objects/a/b.txt";
const ROUTES: Array<{ method: string; path: string; body?: string; status: number; open?: boolean }> = [
  { method: "GET", path: "/health", status: 200, open: true },
  { method: "GET", path: "/cluster/peers", status: 200, open: true },
  { method: "GET", path: "/cluster/status", status: 200, open: true },
  { method: "GET", path: "/metrics", status: 200 },
  { method: "POST", path: "/cluster/drain", status: 202 },
  { method: "DELETE", path: "/cluster/drain", status: 200 },
  { method: "POST", path: "/cluster/members/alive-peer/drain", status: 202 },
  { method: "DELETE", path: "/cluster/members/alive-peer/drain", status: 200 },
  { method: "GET", path: "/cluster/events?after=0&limit=10", status: 200 },
  { method: "GET", path: "/cluster/locate/docs/a/b.txt", status: 200 },
  { method: "DELETE", path: "/admin/members/dead-peer", status: 200 },
  { method: "GET", path: "/admin/keys", status: 200 },
  { method: "POST", path: "/admin/keys", body: JSON.stringify({ name: "new", buckets: { docs: "read" } }), status: 201 },
  { method: "DELETE", path: "/admin/keys/MKREADER", status: 204 },
  { method: "GET", path: "/buckets", status: 200 },
  { method: "PUT", path: "/buckets/fresh", status: 200 },
  { method: "DELETE", path: "/buckets/empty", status: 204 },
  { method: "GET", path: "/buckets/docs/objects", status: 200 },
  { method: "PUT", path: OBJECT, body: "hello", status: 200 },
  { method: "GET", path: OBJECT, status: 200 },
  { method: "HEAD", path: OBJECT, status: 200 },
  { method: "DELETE", path: OBJECT, status: 204 },
  { method: "POST", path: "/buckets/docs/multipart?key=big.bin", status: 201 },
  { method: "PUT", path: `/buckets/docs/multipart/${UPLOAD}/parts/2?key=big.bin`, body: "world", status: 200 },
  { method: "GET", path: `/buckets/docs/multipart/${UPLOAD}?key=big.bin`, status: 200 },
  { method: "GET", path: "/buckets/docs/multipart?limit=5", status: 200 },
  { method: "POST", path: `/buckets/docs/multipart/${UPLOAD}/complete?key=big.bin`, body: JSON.stringify({ parts: [{ partNumber: 1, etag: md5("hello") }] }), status: 200 },
  { method: "DELETE", path: `/buckets/docs/multipart/${UPLOAD2}?key=big.bin`, status: 204 },
  { method: "PUT", path: "/buckets/docs/schema", body: JSON.stringify({ fields: { year: "number" } }), status: 200 },
  { method: "GET", path: "/buckets/docs/schema", status: 200 },
  { method: "DELETE", path: "/buckets/docs/schema/year", status: 200 },
  { method: "DELETE", path: "/buckets/docs/schema", status: 204 },
  { method: "POST", path: "/buckets/docs/query", body: JSON.stringify({ where: [] }), status: 200 },
  { method: "GET", path: "/buckets/docs/query?q=year%3E1&sort=year", status: 200 },
  { method: "GET", path: "/buckets/docs/events?limit=10&types=ObjectCreated:*", status: 200 },
  { method: "GET", path: "/buckets/docs/events/stream?from=earliest", status: 200 },
  { method: "PUT", path: "/buckets/docs/notifications", body: JSON.stringify({ targets: [{ id: "t1", url: "https://example.com/hook", events: ["ObjectCreated:*"], secret: "shh-0123456789abcdef" }] }), status: 200 },
  { method: "GET", path: "/buckets/docs/notifications", status: 200 },
  { method: "GET", path: "/buckets/docs/notifications/status", status: 200 },
  { method: "DELETE", path: "/buckets/docs/notifications", status: 204 },
  { method: "PUT", path: "/admin/remotes/web", body: JSON.stringify({ type: "http", endpoint: "http://127.0.0.1:9/" }), status: 200 },
  { method: "GET", path: "/admin/remotes", status: 200 },
  { method: "GET", path: "/admin/remotes/web", status: 200 },
  { method: "PUT", path: "/buckets/docs/origin", body: JSON.stringify({ remote: "web" }), status: 200 },
  { method: "GET", path: "/buckets/docs/origin", status: 200 },
  { method: "POST", path: "/buckets/docs/origin/sync", status: 202 },
  { method: "POST", path: "/admin/remotes/web/test", status: 200 },
  { method: "DELETE", path: "/buckets/docs/origin", status: 204 },
  { method: "DELETE", path: "/admin/remotes/web", status: 204 },
  { method: "GET", path: `/uploads/${SEEDED_TOKEN}`, status: 200 },
  { method: "GET", path: "/uploads?limit=5", status: 200 },
];

describe("native routes through app.handle", () => {
  beforeEach(async () => {
    await objects.createBucket("empty");
    await objects.putObject("docs", "a/b.txt", new Response("hello").body, { contentType: "text/plain" });
  });

  test("every route answers its success status with a request id", async () => {
    for (const r of ROUTES) {
      const res = await call(r.method, r.path, { body: r.body });
      expect(`${r.method} ${r.path}: ${res.status}`).toBe(`${r.method} ${r.path}: ${r.status}`);
      expect(res.headers.get("x-request-id")).toMatch(/^[0-9A-F]{16}$/);
    }
  });

  test("a missing, malformed or wrong token is 401 Unauthorized on every protected route; open routes need none", async () => {
    for (const r of ROUTES) {
      for (const token of [null, "wrong-token"]) {
        const res = await call(r.method, r.path, { token, body: r.body });
        // Open routes ignore tokens, but for /cluster/peers a wrong one is a 401 (a typo is not mistaken for no token).
        const refused = !r.open || (r.path === "/cluster/peers" && token !== null);
        const got = refused && r.method !== "HEAD" ? await errorOf(res) : String(res.status);
        const want = !refused ? String(r.status) : r.method === "HEAD" ? "401" : "401 Unauthorized";
        expect(`${r.method} ${r.path} token=${token}: ${got}`).toBe(`${r.method} ${r.path} token=${token}: ${want}`);
      }
    }
    const malformed = await app.handle(new Request("http://localhost/buckets", { headers: { authorization: "Basic Zm9vOmJhcg==" } }));
    expect(await errorOf(malformed)).toBe("401 Unauthorized");
  });

  test("admin routes refuse a key that is not an admin's with 403 AccessDenied", async () => {
    for (const r of ROUTES.filter((x) => x.path.startsWith("/admin/") || x.path.endsWith("/drain") || x.path.startsWith("/cluster/events") || x.path === "/metrics")) {
      expect(`${r.method} ${r.path}: ${await errorOf(await call(r.method, r.path, { token: OWNER, body: r.body }))}`).toBe(`${r.method} ${r.path}: 403 AccessDenied`);
    }
  });

  test("bucket and object routes need read, write or owner on the bucket (403 AccessDenied otherwise)", async () => {
    const cases: Array<[string, string, string, string?]> = [
      // [token, method, path, body] refused
      [READER, "PUT", OBJECT, "x"],
      [READER, "DELETE", OBJECT],
      [READER, "PUT", "/buckets/docs"],
      [WRITER, "PUT", "/buckets/docs"],
      [WRITER, "DELETE", "/buckets/docs"],
      [READER, "GET", "/buckets/empty/objects"],
      [READER, "GET", "/buckets/empty/objects/k"],
      [READER, "GET", "/cluster/locate/empty/k"],
    ];
    for (const [token, method, path, body] of cases) {
      expect(`${token} ${method} ${path}: ${await errorOf(await call(method, path, { token, body }))}`).toBe(`${token} ${method} ${path}: 403 AccessDenied`);
    }
    expect((await call("HEAD", "/buckets/empty/objects/k", { token: READER })).status).toBe(403);
    // Allowed with the right permission.
    expect((await call("GET", OBJECT, { token: READER })).status).toBe(200);
    expect((await call("GET", "/cluster/locate/docs/a/b.txt", { token: READER })).status).toBe(200);
    expect((await call("PUT", "/buckets/docs/objects/new", { token: WRITER, body: "w" })).status).toBe(200);
    expect((await call("PUT", "/buckets/owned", { token: OWNER })).status).toBe(200);
    // GET /buckets lists only what the key can see.
    const seen = await json<{ buckets: Array<{ name: string }> }>(await call("GET", "/buckets", { token: READER }));
    expect(seen.buckets.map((b) => b.name)).toEqual(["docs"]);
  });

  test("schema errors are 400 InvalidArgument in the JSON error format, and nothing is done", async () => {
    const bodies = ["not json", "[]", '"a string"', "null", '{"admin":"yes"}', '{"name":5}', '{"buckets":[]}', '{"buckets":{"docs":"superuser"}}', `{"name":"${"n".repeat(200)}"}`];
    for (const body of bodies) expect(`${body}: ${await errorOf(await call("POST", "/admin/keys", { body }))}`).toBe(`${body}: 400 InvalidArgument`);
    // A body past the limit is refused before it is parsed.
    expect(await errorOf(await call("POST", "/admin/keys", { body: `{"name":"${"n".repeat(100_000)}"}` }))).toBe("400 InvalidArgument");
    // A bad bucket name in a spec keeps its own code.
    expect(await errorOf(await call("POST", "/admin/keys", { body: '{"buckets":{"Bad Name":"read"}}' }))).toBe("400 InvalidBucketName");
    for (const q of ["limit=0", "limit=abc", "limit=1.5", "limit=-1", "cursor=not-ours"]) {
      expect(`?${q}: ${await errorOf(await call("GET", `/buckets/docs/objects?${q}`))}`).toBe(`?${q}: 400 InvalidArgument`);
    }
    expect(await errorOf(await call("PUT", OBJECT, { body: "x", headers: { "x-meta-a": "b".repeat(3000) } }))).toBe("400 MetadataTooLarge");
    const keys = await json<{ keys: unknown[] }>(await call("GET", "/admin/keys"));
    expect(keys.keys).toHaveLength(Object.keys(TOKENS).length);
  });

  test("each route's own error codes", async () => {
    const cases: Array<[string, string, string, string?]> = [
      // [expected, method, path, body]
      ["404 NoSuchBucket", "GET", "/buckets/ghost/objects"],
      ["404 NoSuchBucket", "DELETE", "/buckets/ghost"],
      ["404 NoSuchBucket", "PUT", "/buckets/ghost/objects/k", "x"],
      ["404 NoSuchBucket", "GET", "/buckets/ghost/objects/k"],
      ["404 NoSuchBucket", "DELETE", "/buckets/ghost/objects/k"],
      ["404 NoSuchBucket", "GET", "/cluster/locate/ghost/k"],
      ["404 NoSuchKey", "GET", "/buckets/docs/objects/missing"],
      ["404 NoSuchKey", "GET", "/cluster/locate/docs/missing"],
      ["409 BucketNotEmpty", "DELETE", "/buckets/docs"],
      ["400 InvalidBucketName", "PUT", "/buckets/Bad_Name"],
      ["400 InvalidBucketName", "DELETE", "/buckets/ab"],
      ["400 InvalidBucketName", "GET", "/buckets/ab/objects"],
      ["400 InvalidBucketName", "PUT", "/buckets/-x-/objects/k", "x"],
      ["400 InvalidBucketName", "GET", "/cluster/locate/A_B/k"],
      ["400 KeyTooLongError", "PUT", `/buckets/docs/objects/${"k".repeat(1025)}`, "x"],
      ["400 InvalidURI", "GET", "/buckets/docs/objects/%FF"],
      ["400 InvalidURI", "PUT", "/buckets/%zz", "x"],
      ["400 InvalidURI", "DELETE", "/admin/keys/%E0%A4%A"],
      ["409 MemberNotDead", "DELETE", "/admin/members/alive-peer"],
      ["404 NoSuchMember", "DELETE", "/admin/members/nobody"],
      ["404 NoSuchMember", "POST", "/cluster/members/nobody/drain"],
      ["404 NoSuchMember", "DELETE", "/cluster/members/nobody/drain"],
      ["503 ServiceUnavailable", "POST", "/cluster/members/dead-peer/drain"],
      ["503 ServiceUnavailable", "DELETE", "/cluster/members/dead-peer/drain"],
      ["404 NoSuchKey", "DELETE", "/admin/keys/MKNOSUCH"],
      ["404 NotFound", "GET", "/no/such/route"],
      ["405 MethodNotAllowed", "POST", OBJECT, "x"],
      ["405 MethodNotAllowed", "PATCH", "/buckets/docs"],
      ["405 MethodNotAllowed", "PUT", "/health"],
    ];
    for (const [want, method, path, body] of cases) expect(`${method} ${path.slice(0, 60)}: ${await errorOf(await call(method, path, { body }))}`).toBe(`${method} ${path.slice(0, 60)}: ${want}`);
    const missing = await call("GET", "/no/such/route");
    expect(await missing.json()).toEqual({ error: { code: "NotFound", message: "no such route" } });
    const wrongMethod = await call("POST", OBJECT, { body: "x" });
    expect(wrongMethod.headers.get("allow")).toBe("DELETE, GET, HEAD, PUT");
  });

  test("416 InvalidRange carries Content-Range; ranges give 206; HEAD has headers only", async () => {
    const r = await call("GET", OBJECT, { headers: { range: "bytes=10-20" } });
    expect(await errorOf(r)).toBe("416 InvalidRange");
    expect(r.headers.get("content-range")).toBe("bytes */5");
    const part = await call("GET", OBJECT, { headers: { range: "bytes=1-2" } });
    expect([part.status, part.headers.get("content-range"), await part.text()]).toEqual([206, "bytes 1-2/5", "el"]);
    const head = await call("HEAD", OBJECT);
    expect([head.status, head.headers.get("content-length"), head.headers.get("etag"), await head.text()]).toEqual([200, "5", `"${new Bun.CryptoHasher("md5").update("hello").digest("hex")}"`, ""]);
    const missing = await call("HEAD", "/buckets/docs/objects/nope");
    expect([missing.status, await missing.text()]).toEqual([404, ""]);
  });

  test("object keys keep //, %2F and dots as bytes; uploads keep their type and x-meta-* headers", async () => {
    for (const [path, key] of [["a//b", "a//b"], ["a%2Fb", "a/b"], ["a.b/..c", "a.b/..c"], ["%F0%9F%A6%84", "🦄"]] as const) {
      const put = await json<{ key: string }>(await call("PUT", `/buckets/docs/objects/${path}`, { body: key, headers: { "content-type": "text/x-test", "x-meta-color": "blue" } }));
      expect(put.key).toBe(key);
      const got = await call("GET", `/buckets/docs/objects/${path}`);
      expect([await got.text(), got.headers.get("content-type"), got.headers.get("x-meta-color")]).toEqual([key, "text/x-test", "blue"]);
    }
    const listing = await json<{ objects: Array<{ key: string }>; nextCursor: string | null }>(await call("GET", "/buckets/docs/objects?limit=2"));
    expect(listing.objects).toHaveLength(2);
    expect(listing.nextCursor).not.toBeNull();
    const rest = await json<{ objects: Array<{ key: string }> }>(await call("GET", `/buckets/docs/objects?cursor=${listing.nextCursor}`));
    expect(rest.objects.length).toBeGreaterThan(0);
  });

  test("drain answers carry the reason a drain cannot complete; a cancel answers not draining", async () => {
    expect(await json(await call("POST", "/cluster/drain"))).toEqual({ draining: true, safeToStop: false, reason: NOWHERE });
    expect(await json(await call("DELETE", "/cluster/drain"))).toEqual({ draining: false, safeToStop: false });
    expect(await json(await call("POST", "/cluster/members/alive-peer/drain"))).toEqual({ draining: true, safeToStop: false });
    expect(await json(await call("DELETE", "/cluster/members/alive-peer/drain"))).toEqual({ draining: false, safeToStop: false });
  });

  test("/cluster/peers shows p2p addresses only to a valid token", async () => {
    const anonymous = await json<{ self: Record<string, unknown>; peers: Array<Record<string, unknown>> }>(await call("GET", "/cluster/peers", { token: null }));
    expect(anonymous.self).not.toHaveProperty("addrs");
    expect(anonymous.peers.every((p) => !("addrs" in p))).toBe(true);
    const holder = await json<{ self: { addrs: string[] } }>(await call("GET", "/cluster/peers", { token: READER }));
    expect(holder.self.addrs).toHaveLength(1);
    expect(await json(await call("GET", "/cluster/status", { token: null }))).toEqual(view.status());
    expect(await json(await call("GET", "/health", { token: null }))).toEqual({ status: "ok", peerId: "self-peer" });
  });

  test("429 SlowDown and 503 ServiceUnavailable say when to retry; a 5xx is logged under its request id", async () => {
    authFails = new SlowDownError("too many requests with this key", 7);
    const slow = await call("GET", "/buckets");
    expect(await errorOf(slow)).toBe("429 SlowDown");
    expect(slow.headers.get("retry-after")).toBe("7");

    authFails = new QuorumError("buckets: needs 2 of 3 voting replicas");
    const noQuorum = await call("GET", "/buckets");
    expect(await errorOf(noQuorum)).toBe("503 ServiceUnavailable");
    expect(noQuorum.headers.get("retry-after")).toBe("1");
    const id503 = noQuorum.headers.get("x-request-id")!;
    expect(logged.some(([level, line]) => level === "warn" && line.includes(id503) && line.includes("503 ServiceUnavailable"))).toBe(true);

    authFails = undefined;
    objects.failNext = new TypeError("cannot read properties of undefined");
    const crash = await call("PUT", "/buckets/crash");
    expect(await errorOf(crash)).toBe("500 InternalError");
    const id500 = crash.headers.get("x-request-id")!;
    const line = logged.find(([, l]) => l.includes(id500));
    expect(line?.[0]).toBe("error");
    expect(line?.[1]).toContain("PUT /buckets/crash");
    expect(line?.[1]).toContain("cannot read properties of undefined");
    // A 4xx is the client's business, not the log's.
    const before = logged.length;
    await call("GET", "/buckets/docs/objects/missing");
    expect(logged.length).toBe(before);
  });
});

describe("multipart routes", () => {
  const mp = (rest = "", key = "big.bin") => `/buckets/docs/multipart${rest}?key=${key}`;
  const complete = (...parts: Array<[number, string]>) => JSON.stringify({ parts: parts.map(([partNumber, etag]) => ({ partNumber, etag })) });

  test("write on the bucket starts, sends, completes and aborts; read lists parts (403 AccessDenied otherwise)", async () => {
    const refused: Array<[string, string, string, string?]> = [
      [READER, "POST", mp()],
      [READER, "PUT", mp(`/${UPLOAD}/parts/2`), "x"],
      [READER, "POST", mp(`/${UPLOAD}/complete`), complete([1, md5("hello")])],
      [READER, "DELETE", mp(`/${UPLOAD2}`)],
      [READER, "GET", `/buckets/empty/multipart/${UPLOAD}?key=big.bin`],
      [WRITER, "POST", "/buckets/empty/multipart?key=k"],
    ];
    for (const [token, method, path, body] of refused) {
      expect(`${token} ${method} ${path}: ${await errorOf(await call(method, path, { token, body }))}`).toBe(`${token} ${method} ${path}: 403 AccessDenied`);
    }
    expect((await call("GET", mp(`/${UPLOAD}`), { token: READER })).status).toBe(200);
    const allowed: Array<[string, string, number, string?]> = [
      ["POST", mp(), 201],
      ["PUT", mp(`/${UPLOAD}/parts/2`), 200, "x"],
      ["DELETE", mp(`/${UPLOAD2}`), 204],
      ["POST", mp(`/${UPLOAD}/complete`), 200, complete([1, md5("hello")])],
    ];
    for (const [method, path, want, body] of allowed) expect(`${method} ${path}: ${(await call(method, path, { token: WRITER, body })).status}`).toBe(`${method} ${path}: ${want}`);
  });

  test("schema errors are 400 InvalidArgument: the key, the part number, the completion body; a part needs a Content-Length (411)", async () => {
    const cases: Array<[string, string, string?, Record<string, string>?]> = [
      ["POST", "/buckets/docs/multipart"],
      ["POST", "/buckets/docs/multipart?key="],
      ["POST", "/buckets/docs/multipart?key=a&key=b"],
      ["GET", `/buckets/docs/multipart/${UPLOAD}`],
      ["DELETE", `/buckets/docs/multipart/${UPLOAD}`],
      ["PUT", `/buckets/docs/multipart/${UPLOAD}/parts/1`, "x"],
      ["POST", `/buckets/docs/multipart/${UPLOAD}/complete`, complete([1, md5("hello")])],
      ...["0", "10001", "1.5", "abc", "-1"].map((n): [string, string, string] => ["PUT", mp(`/${UPLOAD}/parts/${n}`), "x"]),
      ["PUT", mp(`/${UPLOAD}/parts/2`), "x", { "content-length": "abc" }],
      ...["not json", "{}", "[]", '{"parts":[]}', '{"parts":"1"}', '{"parts":[{"partNumber":0,"etag":"x"}]}', '{"parts":[{"partNumber":1}]}', '{"parts":[{"partNumber":1,"etag":""}]}', '{"parts":[{"partNumber":"one","etag":"x"}]}'].map(
        (body): [string, string, string] => ["POST", mp(`/${UPLOAD}/complete`), body],
      ),
      // Past the completion's limit (1 MiB), refused before it is parsed.
      ["POST", mp(`/${UPLOAD}/complete`), complete(...Array.from({ length: 10_000 }, (_, i): [number, string] => [i + 1, "e".repeat(100)]))],
    ];
    for (const [method, path, body, headers] of cases) {
      const label = `${method} ${path.slice(0, 90)} ${(body ?? "").slice(0, 50)}`;
      expect(`${label}: ${await errorOf(await call(method, path, { body, headers }))}`).toBe(`${label}: 400 InvalidArgument`);
    }
    // A streamed body of unknown length.
    const unknownLength = new Request(`http://localhost${mp(`/${UPLOAD}/parts/2`)}`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN}` }, body: new Response("streamed").body });
    expect(await errorOf(await app.handle(unknownLength))).toBe("411 MissingContentLength");
    // Nothing was done: the upload still has its one part.
    const listed = await json<{ parts: unknown[] }>(await call("GET", mp(`/${UPLOAD}`)));
    expect(listed.parts).toEqual([{ partNumber: 1, etag: md5("hello"), size: 5 }]);
  });

  test("each route's own error codes", async () => {
    const ghost = "f".repeat(32);
    const cases: Array<[string, string, string, string?, Record<string, string>?]> = [
      // [expected, method, path, body, headers]
      ["404 NoSuchUpload", "GET", mp(`/${ghost}`)],
      ["404 NoSuchUpload", "GET", mp("/not-an-id")],
      ["404 NoSuchUpload", "PUT", mp(`/${ghost}/parts/1`), "x"],
      ["404 NoSuchUpload", "POST", mp(`/${ghost}/complete`), complete([1, md5("x")])],
      ["404 NoSuchUpload", "DELETE", mp(`/${ghost}`)],
      ["404 NoSuchUpload", "GET", mp(`/${UPLOAD}`, "other-key")],
      ["404 NoSuchBucket", "POST", "/buckets/ghost/multipart?key=k"],
      ["404 NoSuchBucket", "GET", `/buckets/ghost/multipart/${UPLOAD}?key=k`],
      ["400 InvalidBucketName", "POST", "/buckets/Bad_Name/multipart?key=k"],
      ["400 InvalidURI", "POST", "/buckets/docs/multipart?key=%FF"],
      ["400 KeyTooLongError", "POST", `/buckets/docs/multipart?key=${"k".repeat(1025)}`],
      ["400 MetadataTooLarge", "POST", mp(), undefined, { "x-meta-a": "b".repeat(3000) }],
      ["400 IncompleteBody", "PUT", mp(`/${UPLOAD}/parts/2`), "short", { "content-length": "9" }],
      ["400 InvalidPart", "POST", mp(`/${UPLOAD}/complete`), complete([1, md5("not hello")])],
      ["400 InvalidPart", "POST", mp(`/${UPLOAD}/complete`), complete([7, md5("hello")])],
      ["405 MethodNotAllowed", "PATCH", mp(`/${UPLOAD}`)],
    ];
    for (const [want, method, path, body, headers] of cases) expect(`${method} ${path.slice(0, 90)}: ${await errorOf(await call(method, path, { body, headers }))}`).toBe(`${method} ${path.slice(0, 90)}: ${want}`);
    // Out of order, and a small part before the last (the rule S3 has: parts but the last are at least 5 MiB).
    const two = await json<{ etag: string }>(await call("PUT", mp(`/${UPLOAD}/parts/2`), { body: "world" }));
    expect(await errorOf(await call("POST", mp(`/${UPLOAD}/complete`), { body: complete([2, two.etag], [1, md5("hello")]) }))).toBe("400 InvalidPartOrder");
    expect(await errorOf(await call("POST", mp(`/${UPLOAD}/complete`), { body: complete([1, md5("hello")], [2, two.etag]) }))).toBe("400 EntityTooSmall");
  });

  test("open uploads are listed by key and upload id, a page at a time, to readers of the bucket only", async () => {
    const started: string[] = [];
    for (const key of ["b/2", "a/1", "b/1"]) started.push((await json<{ uploadId: string }>(await call("POST", `/buckets/docs/multipart?key=${key}`))).uploadId);
    const first = await json<{ uploads: Array<{ key: string; uploadId: string; initiated: string }>; nextCursor: string | null }>(await call("GET", "/buckets/docs/multipart?prefix=b/&limit=1"));
    expect(first.uploads).toEqual([{ key: "b/1", uploadId: started[2], initiated: new Date(1).toISOString() }]);
    const second = await json<{ uploads: Array<{ key: string }>; nextCursor: string | null }>(await call("GET", `/buckets/docs/multipart?prefix=b/&limit=1&cursor=${first.nextCursor}`));
    expect([second.uploads.map((u) => u.key), second.nextCursor]).toEqual([["b/2"], null]);
    expect(await errorOf(await call("GET", "/buckets/docs/multipart?cursor=%%%"))).toBe("400 InvalidArgument");
    expect(await errorOf(await call("GET", "/buckets/ghost/multipart"))).toBe("404 NoSuchBucket");
    expect((await call("GET", "/buckets/docs/multipart", { token: READER })).status).toBe(200);
    expect(await errorOf(await call("GET", "/buckets/empty/multipart", { token: READER }))).toBe("403 AccessDenied");
  });

  test("an upload start to finish: type and x-meta-* kept, parts listed, the multipart ETag, the key decoded strictly; the request's signal reaches the part", async () => {
    const key = "dir/a b+c🦄";
    const path = (rest = "") => `/buckets/docs/multipart${rest}?key=${encodeURIComponent(key).replace("%20", "+")}`;
    const started = await call("POST", path(), { headers: { "content-type": "text/x-parts", "x-meta-color": "blue" } });
    expect(started.status).toBe(201);
    const { uploadId, ...rest } = await json<{ bucket: string; key: string; uploadId: string }>(started);
    expect(rest).toEqual({ bucket: "docs", key });
    const big = "p".repeat(MIN_PART_BYTES);
    const parts: Array<[number, string]> = [];
    for (const [n, body] of [[1, big], [2, "tail"]] as const) {
      const r = await call("PUT", path(`/${uploadId}/parts/${n}`), { body });
      const part = await json<{ partNumber: number; etag: string; size: number }>(r);
      expect(part).toEqual({ partNumber: n, etag: md5(body), size: body.length });
      expect(r.headers.get("etag")).toBe(`"${md5(body)}"`);
      parts.push([n, `"${part.etag}"`]);
    }
    expect(multipart.signals.at(-1)).toBeInstanceOf(AbortSignal);
    const listed = await json(await call("GET", path(`/${uploadId}`), { token: READER }));
    expect(listed).toEqual({ bucket: "docs", key, uploadId, parts: [{ partNumber: 1, etag: md5(big), size: big.length }, { partNumber: 2, etag: md5("tail"), size: 4 }] });
    // Quoted ETags (as S3 clients keep them) are fine too.
    const done = await call("POST", path(`/${uploadId}/complete`), { body: complete(...parts) });
    const etag = multipartEtag([md5(big), md5("tail")]);
    expect(await json(done)).toEqual({ bucket: "docs", key, etag, size: big.length + 4 });
    expect(done.headers.get("etag")).toBe(`"${etag}"`);
    expect(etag).toEndWith("-2");
    const got = await call("GET", `/buckets/docs/objects/${encodeURIComponent(key)}`);
    expect([got.headers.get("content-type"), got.headers.get("x-meta-color"), (await got.text()) === big + "tail"]).toEqual(["text/x-parts", "blue", true]);
    // The upload is over.
    expect(await errorOf(await call("GET", path(`/${uploadId}`)))).toBe("404 NoSuchUpload");
  });
});

describe("upload records", () => {
  test("a PUT answers a new token, or the client's; a malformed one is 400 InvalidArgument and stores nothing", async () => {
    const made = await call("PUT", "/buckets/docs/objects/t1", { body: "abc" });
    expect(made.status).toBe(200);
    expect(made.headers.get("x-upload-token")).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const named = await call("PUT", "/buckets/docs/objects/t2", { body: "abcd", headers: { "x-upload-token": "my-upload_0001" } });
    expect(named.headers.get("x-upload-token")).toBe("my-upload_0001");
    const record = (await (await call("GET", "/uploads/my-upload_0001")).json()) as Record<string, unknown>;
    expect(record).toMatchObject({ token: "my-upload_0001", bucket: "docs", key: "t2", state: "success", bytesReceived: 4, size: 4 });
    expect(typeof record.finishedMs).toBe("number");
    for (const bad of ["short", "x".repeat(65), "has space!", "dot.dot.dot"]) {
      const r = await call("PUT", "/buckets/docs/objects/t3", { body: "abc", headers: { "x-upload-token": bad } });
      expect(await errorOf(r)).toBe("400 InvalidArgument");
    }
    expect(await errorOf(await call("GET", "/buckets/docs/objects/t3"))).toBe("404 NoSuchKey");
    expect(await errorOf(await call("GET", "/uploads/bad token"))).toBe("400 InvalidArgument");
  });

  test("a failed PUT leaves a fail record with the reason", async () => {
    const r = await call("PUT", "/buckets/nope/objects/k", { body: "abc", headers: { "x-upload-token": "fails-for-sure" } });
    expect(await errorOf(r)).toBe("404 NoSuchBucket");
    const record = (await (await call("GET", "/uploads/fails-for-sure")).json()) as Record<string, unknown>;
    expect(record).toMatchObject({ state: "fail", bucket: "nope", key: "k" });
    expect(String(record.error)).toContain("NoSuchBucket");
  });

  test("a multipart upload keeps its start token: parts and completion sent without one update it", async () => {
    const started = await call("POST", "/buckets/docs/multipart?key=mp.bin", { headers: { "x-upload-token": "multipart-one" } });
    expect(started.headers.get("x-upload-token")).toBe("multipart-one");
    const { uploadId } = (await started.json()) as { uploadId: string };
    const part = await call("PUT", `/buckets/docs/multipart/${uploadId}/parts/1?key=mp.bin`, { body: "hello" });
    expect(part.headers.get("x-upload-token")).toBe("multipart-one");
    expect(await (await call("GET", "/uploads/multipart-one")).json()).toMatchObject({ state: "inprogress", bytesReceived: 5, uploadId });
    // A part naming another token still reports under the upload's own: no upload steers its bytes into another's record.
    await call("POST", "/buckets/docs/multipart?key=other.bin", { headers: { "x-upload-token": "multipart-other" } });
    const steered = await call("PUT", `/buckets/docs/multipart/${uploadId}/parts/1?key=mp.bin`, { body: "hello", headers: { "x-upload-token": "multipart-other" } });
    expect(steered.headers.get("x-upload-token")).toBe("multipart-one");
    expect(await (await call("GET", "/uploads/multipart-other")).json()).toMatchObject({ state: "inprogress", bytesReceived: 0 });
    const done = await call("POST", `/buckets/docs/multipart/${uploadId}/complete?key=mp.bin`, { body: JSON.stringify({ parts: [{ partNumber: 1, etag: md5("hello") }] }) });
    expect(done.status).toBe(200);
    expect(await (await call("GET", "/uploads/multipart-one")).json()).toMatchObject({ state: "success", bytesReceived: 5, size: 5 });
  });

  test("a key without read on the record's bucket gets 404 NoSuchUpload, as for no record at all; listings leave such records out", async () => {
    expect(await errorOf(await call("GET", `/uploads/${OTHER_TOKEN}`, { token: READER }))).toBe("404 NoSuchUpload");
    expect(await errorOf(await call("GET", "/uploads/no-such-token-here", { token: READER }))).toBe("404 NoSuchUpload");
    expect((await call("GET", `/uploads/${OTHER_TOKEN}`)).status).toBe(200);
    const seen = async (token: string) => ((await (await call("GET", "/uploads?limit=200", { token })).json()) as { uploads: Array<{ bucket: string; token: string }> }).uploads;
    const asReader = await seen(READER);
    expect(asReader.some((u) => u.token === SEEDED_TOKEN)).toBe(true);
    expect(asReader.every((u) => u.bucket === "docs")).toBe(true);
    expect((await seen(ADMIN)).some((u) => u.token === OTHER_TOKEN)).toBe(true);
    expect(await errorOf(await call("GET", "/uploads?limit=201"))).toBe("400 InvalidArgument");
  });
});

describe("the API's description", () => {
  test("the dashboard's three files are open, with their types; nothing else is served under /ui", async () => {
    for (const [path, type] of [["/ui", "text/html"], ["/ui/", "text/html"], ["/ui/index.html", "text/html"], ["/ui/app.js", "text/javascript"], ["/ui/style.css", "text/css"]]) {
      const res = await call("GET", path, { token: null });
      expect(`${path} ${res.status} ${res.headers.get("content-type")}`).toStartWith(`${path} 200 ${type}`);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
    for (const path of ["/ui/README.md", "/ui/%2e%2e%2fpackage.json", "/ui/..%2fpackage.json", "/ui/ui/app.js", "/ui/app.js/", "/ui/constructor", "/ui/__proto__"]) {
      expect(`${path} ${await errorOf(await call("GET", path, { token: null }))}`).toBe(`${path} 404 NotFound`);
    }
  });

  test("/openapi.json lists every native route with its schemas", async () => {
    const r = await call("GET", "/openapi.json", { token: null });
    expect(r.status).toBe(200);
    type Operation = { parameters?: Array<{ name: string; in: string; schema?: unknown }>; requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, { content?: Record<string, { schema: unknown }> }>; security?: unknown[] };
    const doc = (await r.json()) as { openapi: string; paths: Record<string, Record<string, Operation>> };
    expect(doc.openapi).toStartWith("3.");
    const documented = (path: string) => path.replace(/:([^/]+)/g, "{$1}");
    // The reference and the dashboard's files are pages, not API routes.
    const served = app.routes.filter((x) => !["/docs", "/openapi.json", "/ui"].includes(x.path) && !x.path.startsWith("/docs/") && !x.path.startsWith("/ui/"));
    for (const route of served) {
      const op = doc.paths[documented(route.path)]?.[route.method.toLowerCase()];
      expect(`${route.method} ${route.path}: ${op ? "documented" : "missing"}`).toBe(`${route.method} ${route.path}: documented`);
      // Path parameters, with schemas.
      for (const name of route.path.match(/:([^/]+)/g) ?? []) {
        expect(op!.parameters?.some((p) => p.in === "path" && p.name === name.slice(1) && p.schema !== undefined)).toBe(true);
      }
      // A response schema for its success, and the error body for its errors.
      const statuses = Object.keys(op!.responses);
      expect(statuses.some((s) => s.startsWith("2"))).toBe(true);
      for (const s of statuses.filter((x) => x >= "400")) {
        const schema = JSON.stringify(op!.responses[s].content);
        expect(`${route.method} ${route.path} ${s}: ${schema.includes('"error"')}`).toBe(`${route.method} ${route.path} ${s}: true`);
      }
      // Protected routes say so (a lock in the reference).
      const open = ["/health", "/cluster/peers", "/cluster/status"].includes(route.path);
      expect(`${route.method} ${route.path} secured: ${op!.security !== undefined}`).toBe(`${route.method} ${route.path} secured: ${!open}`);
    }
    expect(served.length).toBe(ROUTES.length);
    // The query and body schemas are there.
    const list = doc.paths["/buckets/{bucket}/objects"].get;
    expect(list.parameters!.filter((p) => p.in === "query").map((p) => p.name).sort()).toEqual(["cursor", "delimiter", "limit", "prefix"]);
    expect(JSON.stringify(doc.paths["/admin/keys"].post.requestBody)).toContain('"buckets"');
  });

  test("/docs answers an HTML reference whose script and styles come from this peer", async () => {
    const r = await call("GET", "/docs", { token: null });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/html");
    const html = await r.text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      expect(url).toStartWith("/docs/");
      const asset = await call("GET", url, { token: null });
      expect(`${url}: ${asset.status}`).toBe(`${url}: 200`);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
    expect(html).toContain("openapi.json");
  });
});

describe("search routes", () => {
  test("a reader of the bucket may query and read its schema, not change it; other buckets are refused", async () => {
    const reader = { token: READER };
    expect((await call("POST", "/buckets/docs/query", { ...reader, body: "{}" })).status).toBe(200);
    expect((await call("GET", "/buckets/docs/query?q=", reader)).status).toBe(200);
    expect((await call("GET", "/buckets/docs/schema", reader)).status).toBe(200);
    expect(await errorOf(await call("PUT", "/buckets/docs/schema", { ...reader, body: "{}" }))).toBe("403 AccessDenied");
    expect(await errorOf(await call("DELETE", "/buckets/docs/schema/year", reader))).toBe("403 AccessDenied");
    expect(await errorOf(await call("POST", "/buckets/other/query", { ...reader, body: "{}" }))).toBe("403 AccessDenied");
  });
});

describe("events routes", () => {
  test("absurd limits, cursors and types are 400 InvalidArgument with a message, before any read", async () => {
    changeReads = 0;
    for (const q of [
      "limit=0",
      "limit=1001",
      "limit=abc",
      "limit=1.5",
      "cursor=nope",
      "cursor=" + "9".repeat(13) + "-000000",
      "cursor=" + "1".repeat(400),
      "from=yesterday",
      "types=ObjectCreated:Nope",
      "types=" + Array(30).fill("BucketCreated").join(","),
      "prefix=" + "p".repeat(2000),
    ]) {
      expect(`${q.slice(0, 30)}: ${await errorOf(await call("GET", `/buckets/docs/events?${q}`))}`).toBe(`${q.slice(0, 30)}: 400 InvalidArgument`);
    }
    expect(changeReads).toBe(0);
    expect(await errorOf(await call("GET", "/buckets/nosuch/events"))).toBe("404 NoSuchBucket");
    expect(await errorOf(await call("GET", "/buckets/docs/events", { token: null }))).toBe("401 Unauthorized");
    expect(await errorOf(await call("GET", "/buckets/other/events", { token: READER }))).toBe("403 AccessDenied");
  });

  test("the stream route refuses bad input with 400 InvalidArgument before any stream opens", async () => {
    streamsOpened = [];
    for (const [q, headers] of [
      ["", { "last-event-id": "nope" }],
      ["", { "last-event-id": "9".repeat(13) + "-000000" }],
      ["from=yesterday", {}],
      ["from=" + "1".repeat(400), {}],
      ["types=ObjectCreated:Nope", {}],
      ["types=" + Array(30).fill("BucketCreated").join(","), {}],
      ["suffix=" + "s".repeat(2000), {}],
    ] as Array<[string, Record<string, string>]>) {
      const what = `${q.slice(0, 30)} ${JSON.stringify(headers).slice(0, 40)}`;
      expect(`${what}: ${await errorOf(await call("GET", `/buckets/docs/events/stream?${q}`, { headers }))}`).toBe(`${what}: 400 InvalidArgument`);
    }
    expect(await errorOf(await call("GET", "/buckets/nosuch/events/stream"))).toBe("404 NoSuchBucket");
    expect(await errorOf(await call("GET", "/buckets/docs/events/stream", { token: null }))).toBe("401 Unauthorized");
    expect(await errorOf(await call("GET", "/buckets/other/events/stream", { token: READER }))).toBe("403 AccessDenied");
    expect(streamsOpened).toEqual([]);
  });

  test("a stream starts at Last-Event-ID, else from (now by default, earliest, or a cursor), with the filter checked", async () => {
    streamsOpened = [];
    const id = "1700000000000-00000a-peer";
    const opened = async (q: string, headers: Record<string, string> = {}) => {
      const r = await call("GET", `/buckets/docs/events/stream?${q}`, { token: READER, headers });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toStartWith("text/event-stream");
      return (await r.text()) && streamsOpened.pop();
    };
    expect(await opened("types=s3:ObjectCreated:*&prefix=a/")).toEqual({ bucket: "docs", cursor: "0000000000000-000000", filter: { types: ["ObjectCreated:*"], prefix: "a/" } });
    expect(await opened("from=earliest")).toEqual({ bucket: "docs", cursor: "", filter: {} });
    expect(await opened(`from=${id}`)).toEqual({ bucket: "docs", cursor: id, filter: {} });
    expect(await opened("from=earliest", { "last-event-id": id })).toEqual({ bucket: "docs", cursor: id, filter: {} });
    // A consumer resuming from a position reads on past the bucket's removal, as GET /events does.
    expect((await call("GET", "/buckets/gone/events/stream", { headers: { "last-event-id": id } })).status).toBe(200);
  });

  test("a good read answers events and a cursor; from=now starts at the log's present", async () => {
    const r = await json<{ events: unknown[]; cursor: string }>(await call("GET", "/buckets/docs/events?from=now&types=s3:ObjectCreated:*,ObjectRemoved:Delete&limit=5", { token: READER }));
    expect(r).toEqual({ events: [], cursor: "0000000000000-000000" });
  });
});

describe("HEAD through the peer's handler", () => {
  test("a HEAD of an object answers its headers without reading its bytes (Elysia would run the GET route and read the whole body)", async () => {
    await call("PUT", "/buckets/docs/objects/big.bin", { body: "x".repeat(100_000) });
    const handle = headAsGet(app);
    objects.reads = 0;
    const head = await handle(new Request("http://localhost/buckets/docs/objects/big.bin", { method: "HEAD", headers: { authorization: `Bearer ${ADMIN}` } }));
    expect(`${head.status} ${head.headers.get("content-length")} ${head.body === null}`).toBe("200 100000 true");
    expect(head.headers.get("x-request-id")).toMatch(/^[0-9A-F]{16}$/);
    expect(objects.reads).toBe(0);
    const ranged = await handle(new Request("http://localhost/buckets/docs/objects/big.bin", { method: "HEAD", headers: { authorization: `Bearer ${ADMIN}`, range: "bytes=0-9" } }));
    expect(`${ranged.status} ${ranged.headers.get("content-length")} ${ranged.headers.get("content-range")}`).toBe("206 10 bytes 0-9/100000");
    expect((await handle(new Request("http://localhost/buckets/docs/objects/none", { method: "HEAD", headers: { authorization: `Bearer ${ADMIN}` } }))).status).toBe(404);
    expect(objects.reads).toBe(0);
    const get = await handle(new Request("http://localhost/buckets/docs/objects/big.bin", { headers: { authorization: `Bearer ${ADMIN}` } }));
    expect((await get.text()).length).toBe(100_000);
    expect(objects.reads).toBe(1);
  });
});
