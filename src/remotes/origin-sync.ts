// External buckets in the index (issue 15): POST /buckets/{b}/origin/sync walks the remote's
// listing under the origin's prefix and imports each object's metadata (size, ETag, last
// modified, content type, user metadata) as a manifest with no chunks and a `remote` mark,
// without copying bytes. Listing and search then cover the remote's objects; the first read
// of one goes through the pull-through (pull-through.ts), which fetches it once and keeps it.
//
// A sync runs in the background on the peer asked, page by page. After each page its state
// (counts, and the resume point: the remote's cursor and the last mesh key compared) is
// written to a row of BUCKETS_SHARD (syncRow), so every peer shows it in GET
// /buckets/{b}/origin, and a sync cut short resumes from its last page: on the same peer
// when it starts again, or on the first live member once the row's heartbeat is stale.
//
// Each page is compared with the mesh's keys in the same range (remote listings and mesh
// listings share UTF-8 byte order), so memory stays one page whatever the bucket's size:
//   - a remote object the mesh lacks is imported; one whose ETag the mesh already has (on the
//     imported mark, or on the origin stamp of a kept copy) is left alone (a second sync with
//     nothing changed writes no object row); one whose ETag changed is imported again (the
//     kept bytes are dropped: the next read fetches the new ones);
//   - an object written in the mesh itself (no origin stamp, no mark) is never touched;
//   - an imported or fetched object in the range that the remote no longer lists is removed,
//     after a head at the remote confirms it is gone (so an odd listing order never deletes).
// Adapters whose listings lack content type or user metadata (s3, swift) are asked a head
// per imported object, SYNC_CONCURRENCY at a time.
import type { AbortOptions } from "@libp2p/interface";
import { BadRequestError, MeshError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { BUCKETS_SHARD, compareKeys, MAX_KEY_BYTES, SYNC_ROW_PREFIX, syncRow } from "../metadata/keys.ts";
import { listAll, type ListingDeps } from "../metadata/listing.ts";
import type { ObjectManifest } from "../metadata/types.ts";
import type { MarkedObject, ObjectService } from "../objects/object-service.ts";
import type { Logger } from "../util/log.ts";
import { mapLimit } from "../util/map-limit.ts";
import type { RemoteBackend, RemoteObjectInfo, RemoteType } from "./backend.ts";
import type { Origins } from "./origin-config.ts";
import type { Remotes } from "./registry.ts";

/** A bucket's sync as its row stores it and GET /buckets/{b}/origin shows it. */
export interface SyncState {
  state: "running" | "done" | "failed";
  /** The peer running it (or that last ran it). */
  peer: string;
  remote: string;
  prefix: string;
  startedMs: number;
  finishedMs?: number;
  /** Written at each page: a running sync whose heartbeat is older than the stale time is taken over. */
  heartbeatMs: number;
  /** Objects the remote listed so far. */
  listed: number;
  imported: number;
  updated: number;
  removed: number;
  errors: number;
  lastError?: string;
  /** Resume point: the remote's cursor of the next page (null: the first). */
  cursor: string | null;
  /** Resume point: mesh keys up to this one were compared (absent: none yet). */
  after?: string;
}

/** Origin syncs, as the routes use them. */
export interface OriginSync {
  /** Start a sync of the bucket (or answer the one running); its state as written. */
  begin(bucket: string, opts?: AbortOptions): Promise<SyncState>;
  /** The bucket's last or current sync, or null. */
  state(bucket: string, opts?: AbortOptions): Promise<SyncState | null>;
  /** Watch for syncs to resume (this peer's after a restart, anyone's gone stale). */
  start(): void;
  stop(): Promise<void>;
  /** Wait for this peer's sync of `bucket` to end (tests). */
  settled(bucket: string): Promise<void>;
}

/** What a sync needs. */
export interface OriginSyncDeps {
  self: string;
  index: Pick<IndexClient, "read" | "write">;
  listing: ListingDeps;
  objects: Pick<ObjectService, "requireBucket" | "importManifest" | "listMarks" | "deleteObject" | "headObject">;
  origins: Pick<Origins, "find">;
  remotes: Pick<Remotes, "backendFor">;
  /** Members believed alive, this peer included: the first in order takes over a stale sync. */
  livePeers(): string[];
  stamp(): string;
  log: Logger;
  /** The peer's: a sync stops (resumably) when the peer does. */
  signal: AbortSignal;
  /** How old a running sync's heartbeat must be before another peer takes it over. */
  staleMs?: number;
  /** How often each peer looks for syncs to resume. */
  watchMs?: number;
}

/** Objects asked of the remote per page. */
const PAGE_SIZE = 1000;
/** Heads, imports and removals in flight at once per sync. */
const SYNC_CONCURRENCY = 16;
/** Syncs running on one peer at once; beyond, a sync waits for the watcher (its row says running). */
const MAX_RUNS = 8;
const STALE_MS = 60_000;
const WATCH_MS = 15_000;
const EARLY_LOOK_MS = 2_000;
/** Adapters whose listing carries no content type or user metadata: a head per imported object. */
const HEAD_TO_IMPORT: ReadonlySet<RemoteType> = new Set(["s3", "swift"]);

/** The manifest of an object imported from its origin: no chunks, the remote's facts, a `remote` mark. */
export function importedManifest(info: RemoteObjectInfo, now: number): ObjectManifest {
  const headers: Record<string, string> = {};
  if (info.cacheControl) headers["cache-control"] = info.cacheControl;
  if (info.expires) headers.expires = info.expires;
  return {
    size: info.size,
    // Shown as the object's ETag until its bytes are fetched (then the MD5 of what was kept).
    etag: bareEtag(info.etag) ?? "",
    contentType: info.contentType || "application/octet-stream",
    meta: info.meta,
    ...(Object.keys(headers).length ? { headers } : {}),
    lastModified: info.lastModified ?? now,
    chunkSize: 0,
    chunks: [],
    remote: { ...(info.etag !== undefined && { etag: info.etag }), syncedMs: now },
  };
}

/** An ETag without its quotes or weak mark (adapters' listings and reads do not always quote alike). */
const bareEtag = (etag: string | undefined) => etag?.replace(/^(W\/)?"|"$/g, "");

/** Is the mesh's copy already the remote's object (same ETag on its mark or origin stamp)? */
const sameAs = (mark: MarkedObject, info: RemoteObjectInfo) => info.etag !== undefined && bareEtag(mark.remote?.etag ?? mark.originEtag) === bareEtag(info.etag);

const short = (err: unknown) => (err instanceof MeshError ? err.message : "the remote or the mesh failed").slice(0, 300);

/** Create the origin syncs of one peer. */
export function createOriginSync(deps: OriginSyncDeps): OriginSync {
  const staleMs = deps.staleMs ?? STALE_MS;
  const runs = new Map<string, Promise<void>>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let early: ReturnType<typeof setTimeout> | undefined;

  const readState = async (bucket: string, opts?: AbortOptions) => ((await deps.index.read(BUCKETS_SHARD, syncRow(bucket), opts))?.value as SyncState | null) ?? null;
  const writeState = (bucket: string, st: SyncState) => deps.index.write(BUCKETS_SHARD, syncRow(bucket), { ts: deps.stamp(), value: st });

  /** Compare one remote page with the mesh keys in (st.after, last] and apply the differences. */
  async function syncPage(bucket: string, backend: RemoteBackend, st: SyncState, objects: RemoteObjectInfo[], last: string | undefined) {
    const prefix = st.prefix;
    const page = new Map<string, RemoteObjectInfo>();
    for (const o of objects) {
      const key = o.key.slice(prefix.length);
      if (!o.key.startsWith(prefix) || key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) {
        st.errors++;
        st.lastError = `a remote key cannot be a mesh key: ${o.key.slice(0, 100)}`;
        continue;
      }
      page.set(key, o);
    }
    // The mesh's side of the range, one listing page at a time: marks of the page's keys are
    // kept (at most one remote page of them); others that came from the origin are candidates for removal.
    const marks = new Map<string, MarkedObject>();
    const gone: string[] = [];
    let after = st.after;
    for (;;) {
      const got = await deps.objects.listMarks(bucket, { after, limit: PAGE_SIZE });
      let past = false;
      for (const m of got.objects) {
        if (last !== undefined && compareKeys(m.key, last) > 0) {
          past = true;
          break;
        }
        if (page.has(m.key)) marks.set(m.key, m);
        else if (!m.local) gone.push(m.key);
      }
      await removeGone(bucket, backend, st, gone.splice(0));
      if (past || got.next === null) break;
      after = got.next;
    }
    await mapLimit([...page], SYNC_CONCURRENCY, async ([key, listed]) => {
      const mark = marks.get(key);
      if (mark?.local || (mark && sameAs(mark, listed))) return;
      try {
        const info = HEAD_TO_IMPORT.has(backend.type) ? await backend.head(listed.key, { signal: deps.signal }) : listed;
        if (!info) return; // deleted at the remote since it was listed
        await deps.objects.importManifest(bucket, key, importedManifest({ ...info, key: listed.key }, Date.now()));
        if (mark) st.updated++;
        else st.imported++;
      } catch (err) {
        if (deps.signal.aborted) throw err;
        st.errors++;
        st.lastError = short(err);
      }
    });
  }

  /** Remove objects that came from the origin and that the remote confirms are gone. */
  async function removeGone(bucket: string, backend: RemoteBackend, st: SyncState, keys: string[]) {
    await mapLimit(keys, SYNC_CONCURRENCY, async (key) => {
      try {
        if ((await backend.head(st.prefix + key, { signal: deps.signal })) !== null) return;
        // Written in the mesh since it was listed? Then it stays.
        const m = await deps.objects.headObject(bucket, key).catch(() => null);
        if (!m || (!m.origin && !m.remote)) return;
        await deps.objects.deleteObject(bucket, key);
        st.removed++;
      } catch (err) {
        if (deps.signal.aborted) throw err;
        st.errors++;
        st.lastError = short(err);
      }
    });
  }

  /** Run (or resume) a sync from its row's resume point until the remote's listing ends. */
  async function run(bucket: string, start: SyncState): Promise<void> {
    const st: SyncState = { ...start, peer: deps.self, state: "running" };
    try {
      const cfg = await deps.origins.find(bucket);
      if (!cfg) throw new NotFoundError(`bucket ${bucket} has no origin any more`, "NoSuchOrigin");
      const backend = await deps.remotes.backendFor(cfg.remote);
      if (!backend.list) throw new BadRequestError(`remote ${cfg.remote} (${backend.type}) cannot list its objects`, "InvalidArgument");
      for (;;) {
        deps.signal.throwIfAborted();
        const got = await backend.list(st.prefix, st.cursor, { limit: PAGE_SIZE, signal: deps.signal });
        const end = got.next === null;
        const lastRemote = got.objects.length ? got.objects[got.objects.length - 1].key.slice(st.prefix.length) : undefined;
        // At the listing's end the whole rest of the mesh's keys is compared.
        if (got.objects.length || end) await syncPage(bucket, backend, st, got.objects, end ? undefined : lastRemote);
        st.listed += got.objects.length;
        st.cursor = got.next;
        if (lastRemote !== undefined && !end) st.after = lastRemote;
        st.heartbeatMs = Date.now();
        if (end) break;
        await writeState(bucket, st);
      }
      st.state = "done";
      st.finishedMs = Date.now();
      await writeState(bucket, st);
      deps.log.info(`sync of ${bucket} done: ${st.listed} listed, ${st.imported} imported, ${st.updated} updated, ${st.removed} removed, ${st.errors} errors`);
    } catch (err) {
      // A peer stopping leaves the row running at its last page: it resumes from there.
      if (deps.signal.aborted) return;
      st.state = "failed";
      st.finishedMs = Date.now();
      st.lastError = short(err);
      await writeState(bucket, st).catch(() => {});
      deps.log.warn(`sync of ${bucket} failed: ${st.lastError}`);
    }
  }

  function launch(bucket: string, st: SyncState) {
    const p = run(bucket, st).finally(() => runs.delete(bucket));
    runs.set(bucket, p);
  }

  /** Resume this peer's interrupted syncs, and stale ones when this peer is the first live member. */
  let watching = false;
  async function watch() {
    if (watching) return;
    watching = true;
    try {
      await resumeDue();
    } finally {
      watching = false;
    }
  }

  async function resumeDue() {
    const rows = await listAll<SyncState>(deps.listing, { shards: [BUCKETS_SHARD], rowPrefix: SYNC_ROW_PREFIX });
    const first = [...deps.livePeers()].sort()[0];
    for (const { key: bucket, value: st } of rows) {
      if (st.state !== "running" || runs.has(bucket) || runs.size >= MAX_RUNS) continue;
      const mine = st.peer === deps.self;
      if (!mine && !(first === deps.self && Date.now() - st.heartbeatMs > staleMs)) continue;
      deps.log.info(`resuming the sync of ${bucket} after ${st.listed} listed objects`);
      const taken = { ...st, peer: deps.self, heartbeatMs: Date.now() };
      await writeState(bucket, taken);
      launch(bucket, taken);
    }
  }

  return {
    start() {
      // Look for syncs to resume now (this peer may have stopped in one), then now and then.
      const tick = () => void watch().catch((err: Error) => deps.log.debug(`sync watch failed: ${err.message}`));
      tick();
      // Once more soon after: a peer just started may not reach a quorum for the first look.
      early = setTimeout(tick, EARLY_LOOK_MS);
      timer = setInterval(tick, deps.watchMs ?? WATCH_MS);
    },
    async begin(bucket, opts) {
      await deps.objects.requireBucket(bucket, opts);
      const cfg = await deps.origins.find(bucket, opts);
      if (!cfg) throw new NotFoundError(`bucket ${bucket} has no origin`, "NoSuchOrigin");
      const backend = await deps.remotes.backendFor(cfg.remote, opts);
      if (!backend.list) throw new BadRequestError(`remote ${cfg.remote} is of type ${backend.type}, which cannot list its objects: nothing to sync`, "InvalidArgument");
      const current = await readState(bucket, opts);
      // One sync per bucket at a time: a second POST answers the one running.
      if (current?.state === "running" && (runs.has(bucket) || Date.now() - current.heartbeatMs <= staleMs)) return current;
      if (runs.size >= MAX_RUNS) throw new MeshError("SlowDown", `${MAX_RUNS} syncs are running on this peer`);
      const now = Date.now();
      const st: SyncState = { state: "running", peer: deps.self, remote: cfg.remote, prefix: cfg.prefix, startedMs: now, heartbeatMs: now, listed: 0, imported: 0, updated: 0, removed: 0, errors: 0, cursor: null };
      await writeState(bucket, st);
      launch(bucket, st);
      return st;
    },
    state: readState,
    async stop() {
      clearInterval(timer);
      clearTimeout(early);
      await Promise.allSettled([...runs.values()]);
    },
    async settled(bucket) {
      await runs.get(bucket);
    },
  };
}
