// S3 versioning on the replicated index. A bucket's state (never versioned, Enabled,
// Suspended) is a side row of the buckets shard, cached like other bucket settings. In a
// versioned bucket the object row keeps the current version, as in any bucket, so reads,
// listings, search and the manifest lease cache are unchanged; every version, the current
// one too, and every delete marker also has a row of its own beside it in the object's
// shard (src/metadata/keys.ts), written in the same batch on every replica as the object
// row (WriteOptions.extra), so repair, anti-entropy and listings carry them and chunk GC
// sees their chunks as referenced (src/repair/gc-references.ts reads every row of an
// object shard). Writing each version's own row, rather than moving the replaced one
// aside, needs no read before a write: two writers racing on a key both keep their
// versions, and last-writer-wins picks the same current one in the object row as the
// version order (newest first, src/objects/version-id.ts) puts first.
//
// Objects written before versioning was first set are "null" versions without rows: the
// first PutBucketVersioning gives each one its row, and a write in an Enabled bucket gives
// one to the object it replaces if that still has none (a peer that had not yet heard of
// the change may have written it).
import type { AbortOptions } from "@libp2p/interface";
import { Type } from "@sinclair/typebox";
import { BadRequestError, MeshError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { MAX_EXTRA_ROWS } from "../metadata/index-client.ts";
import {
  allObjectShards,
  BUCKETS_SHARD,
  eventRow,
  keyVersionsPrefix,
  objectRow,
  objectRowPrefix,
  objectShard,
  orderUnderKey,
  splitVersionListKey,
  versioningRow,
  versionListKey,
  versionRow,
  versionRowPrefix,
} from "../metadata/keys.ts";
import { AFTER_PREFIX, listMerged, listPages, type ListingDeps } from "../metadata/listing.ts";
import type { SharedCaches } from "../metadata/shared-cache.ts";
import { isDeleteMarker, type IndexEntry, type ObjectManifest, type VersioningState, type VersionValue } from "../metadata/types.ts";
import type { ScanRow } from "../store/index-store.ts";
import { decodeTimestamp, encodeTimestamp, MAX_LOGICAL } from "../util/hlc.ts";
import { mapLimit } from "../util/map-limit.ts";
import type { LoggedEvent, WriteContext } from "../changes/records.ts";
import { checkVersionId, NULL_VERSION, versionOrder } from "./version-id.ts";

/** A bucket's versioning status; null: never versioned. */
export type VersioningStatus = VersioningState["status"] | null;

/** What a write in a versioned bucket stores: the object row's value, the version rows beside it, and the version it made. */
export interface VersionedWrite {
  /** The object row's new value: the manifest naming its version, or null (a delete marker is current). */
  value: ObjectManifest | null;
  extra: ScanRow[];
  versionId: string;
  /** Rows past MAX_EXTRA_ROWS (old "null" rows of a key written while suspended): written after the batch. */
  later: ScanRow[];
}

/** One version in a listing. */
export interface ListedVersion {
  key: string;
  versionId: string;
  isLatest: boolean;
  value: VersionValue;
}

/** A page of ListObjectVersions. */
export interface VersionPage {
  versions: ListedVersion[];
  prefixes: string[];
  /** Set when there is more: where the next page starts. */
  next?: { keyMarker: string; versionIdMarker?: string };
}

/** What a ListObjectVersions page asks for. */
export interface VersionQuery {
  prefix?: string;
  delimiter?: string;
  keyMarker?: string;
  versionIdMarker?: string;
  limit: number;
}

/** What a DELETE of one version did. */
export interface DeletedVersion {
  /** The version removed was a delete marker. */
  deleteMarker: boolean;
}

/** The versioning side of the object service. */
export interface Versions {
  /** The bucket's status (cached for a moment; a change is forgotten mesh-wide at once). */
  status(bucket: string, opts?: AbortOptions): Promise<VersioningStatus>;
  /** The status if this peer holds it in memory now (undefined: ask `status`). */
  peekStatus(bucket: string): VersioningStatus | undefined;
  /** Set Enabled or Suspended; the first time, objects already there get their "null" version rows. */
  setStatus(bucket: string, status: VersioningState["status"]): Promise<void>;
  /** The rows a write of `value` (null: a delete) stamped `ts` stores in a bucket of `status`. */
  planWrite(bucket: string, key: string, ts: string, value: ObjectManifest | null, status: "Enabled" | "Suspended", opts?: AbortOptions): Promise<VersionedWrite>;
  /** One version of an object (a manifest or a delete marker), or null if there is no such version. */
  get(bucket: string, key: string, versionId: string, status: VersioningStatus, opts?: AbortOptions): Promise<VersionValue | null>;
  /** The newest version row of a key, if any. */
  newest(bucket: string, key: string, opts?: AbortOptions): Promise<VersionValue | null>;
  /** Remove one version for good; if it was the current one, the newest left becomes current. */
  deleteVersion(bucket: string, key: string, versionId: string, status: VersioningStatus, ctx?: WriteContext): Promise<DeletedVersion | null>;
  /** A page of a versioned bucket's versions and delete markers, in key order, newest first within a key. */
  list(bucket: string, q: VersionQuery): Promise<VersionPage>;
  /** Is there any version row left in the bucket (a bucket with versions is not empty)? */
  anyVersion(bucket: string): Promise<boolean>;
  /** The bucket was deleted: so is its versioning state. */
  forgetBucket(bucket: string): Promise<void>;
}

/** Dependencies of the versioning side. */
export interface VersionsDeps {
  index: IndexClient;
  listing: ListingDeps;
  indexShards: number;
  caches: SharedCaches;
  /** A fresh HLC stamp. */
  now(): string;
  /** The object row as reads see it (the manifest lease cache). */
  readCurrent(shard: string, row: string, opts?: AbortOptions): Promise<IndexEntry | null>;
}

/** How long a peer trusts a bucket's versioning state (a change is also forgotten mesh-wide at once). */
const STATUS_CACHE_MS = 2000;
const STATUS_CACHE_MAX = 10_000;
/** Version rows read per round when walking one key's versions. */
const KEY_PAGE = 64;
/** Objects given their "null" rows at once when versioning is first set. */
const MIGRATE_CONCURRENCY = 16;
/** The fields a version listing needs of each row. */
const LISTED_FIELDS = ["versionId", "deleteMarker", "size", "etag", "lastModified"];

/**
 * The stamp of the "null" version row of an object written before versioning: made from
 * its manifest alone, so that whoever writes that row (the first PutBucketVersioning, or a
 * later write that replaces the object) writes the very same entry.
 */
export const preVersionStamp = (m: ObjectManifest): string => encodeTimestamp({ wall: Math.max(0, Math.floor(m.lastModified)), logical: 0, node: "0" });

/** How far back a promotion that deletes the object row may be stamped (its tombstone must be young: see promotionStamp). */
const PROMOTION_LOOKBACK_MS = 5000;

/**
 * The stamp of the object row when a DELETE of its current version makes an older one
 * current: just above the row's stamp, not now. A PUT racing with the DELETE is stamped
 * after the version it replaced, so it still wins the row by last-writer-wins and the row
 * keeps agreeing with the version order (a "now" stamp would let the older version
 * overwrite the newer PUT). A deletion of the row (nothing, or a delete marker, left) is
 * stamped no earlier than PROMOTION_LOOKBACK_MS ago, so that its tombstone is never
 * old enough to be dropped as expired before every replica has it. Undefined: use now.
 */
export function promotionStamp(current: string | undefined, deletes: boolean, nowMs: number): string | undefined {
  if (current === undefined) return undefined;
  const t = decodeTimestamp(current);
  const next = t.logical < MAX_LOGICAL ? { ...t, logical: t.logical + 1 } : { ...t, wall: t.wall + 1, logical: 0 };
  if (deletes && next.wall < nowMs - PROMOTION_LOOKBACK_MS) return encodeTimestamp({ wall: nowMs - PROMOTION_LOOKBACK_MS, logical: 0, node: t.node });
  return encodeTimestamp(next);
}

/** The version a manifest is: its own id, or "null" for one written before versioning. */
export const versionOf = (m: Pick<ObjectManifest, "versionId">): string => m.versionId ?? NULL_VERSION;

/** Create the versioning side. */
export function createVersions(deps: VersionsDeps): Versions {
  const { index, listing } = deps;
  const states = deps.caches.define<VersioningState>("versioning", { max: STATUS_CACHE_MAX, ttlMs: STATUS_CACHE_MS, missTtlMs: STATUS_CACHE_MS, key: Type.String({ minLength: 1, maxLength: 63 }) });
  const shardOf = (bucket: string, key: string) => objectShard(bucket, key, deps.indexShards);

  async function status(bucket: string, opts: AbortOptions = {}): Promise<VersioningStatus> {
    const s = await states.get(bucket, async () => ((await index.read(BUCKETS_SHARD, versioningRow(bucket), opts)) as IndexEntry<VersioningState> | null)?.value ?? null);
    return s?.status ?? null;
  }

  /** A key's version rows, newest first, a page at a time (keys that merely start with `key` left out). */
  async function* keyVersions(bucket: string, key: string, opts: AbortOptions = {}): AsyncGenerator<{ order: string; value: VersionValue }> {
    for await (const rows of listPages<VersionValue>(listing, { shards: [shardOf(bucket, key)], rowPrefix: keyVersionsPrefix(bucket, key), pageSize: KEY_PAGE })) {
      opts.signal?.throwIfAborted();
      for (const r of rows) {
        const order = orderUnderKey(r.key);
        if (order !== undefined) yield { order, value: r.value };
      }
    }
  }

  /** The rows of a key's "null" versions (one, unless two writers raced while versioning was suspended). */
  async function nullRows(bucket: string, key: string, opts?: AbortOptions): Promise<Array<{ order: string; value: VersionValue }>> {
    const out: Array<{ order: string; value: VersionValue }> = [];
    for await (const v of keyVersions(bucket, key, opts)) if (v.value.versionId === NULL_VERSION) out.push(v);
    return out;
  }

  /** The "null" version row an object written before versioning gets. */
  const nullRowOf = (bucket: string, key: string, m: ObjectManifest): ScanRow => {
    const ts = preVersionStamp(m);
    return [versionRow(bucket, key, versionOrder(ts)), { ts, value: { ...m, versionId: NULL_VERSION } }];
  };

  async function migrate(bucket: string): Promise<void> {
    for await (const rows of listPages<ObjectManifest>(listing, { shards: allObjectShards(deps.indexShards), rowPrefix: objectRowPrefix(bucket) })) {
      await mapLimit(rows, MIGRATE_CONCURRENCY, async (r) => {
        if (r.value.versionId !== undefined) return;
        const [row, entry] = nullRowOf(bucket, r.key, r.value);
        await index.write(shardOf(bucket, r.key), row, entry);
      });
    }
  }

  async function newest(bucket: string, key: string, opts?: AbortOptions): Promise<VersionValue | null> {
    for await (const v of keyVersions(bucket, key, opts)) return v.value;
    return null;
  }

  /** A write's event row (in the object's shard, stamped as the write). */
  const eventOf = (bucket: string, ts: string, event: LoggedEvent): ScanRow => [eventRow(bucket, ts), { ts, value: event }];

  return {
    status,
    peekStatus(bucket) {
      const held = states.peek(bucket);
      return held && (held.value?.status ?? null);
    },

    async setStatus(bucket, next) {
      const before = await status(bucket);
      await index.write(BUCKETS_SHARD, versioningRow(bucket), { ts: deps.now(), value: { status: next } satisfies VersioningState });
      await states.forget(bucket);
      // After the state is out: a write from here on keeps versions itself.
      if (before === null) await migrate(bucket);
    },

    async planWrite(bucket, key, ts, value, st, opts = {}) {
      const order = versionOrder(ts);
      const versionId = st === "Enabled" ? order : NULL_VERSION;
      const { versionId: _old, ...bare } = value ?? ({} as Partial<ObjectManifest>);
      const current: ObjectManifest | null = value ? { ...(bare as ObjectManifest), versionId } : null;
      const own: VersionValue = current ? (current as VersionValue) : { deleteMarker: true, versionId, lastModified: Date.now() };
      const rows: ScanRow[] = [[versionRow(bucket, key, order), { ts, value: own }]];
      if (st === "Enabled") {
        // The object this write replaces keeps its version: one from before versioning has no row yet.
        const was = (await deps.readCurrent(shardOf(bucket, key), objectRow(bucket, key), opts)) as IndexEntry<ObjectManifest> | null;
        if (was?.value && was.value.versionId === undefined) rows.push(nullRowOf(bucket, key, was.value));
      } else {
        // Suspended: this write is the "null" version now; the one before goes.
        for (const old of await nullRows(bucket, key, opts)) if (old.order !== order) rows.push([versionRow(bucket, key, old.order), { ts, value: null }]);
      }
      return { value: current, extra: rows.slice(0, MAX_EXTRA_ROWS), versionId, later: rows.slice(MAX_EXTRA_ROWS) };
    },

    async get(bucket, key, versionId, st, opts = {}) {
      checkVersionId(versionId);
      const shard = shardOf(bucket, key);
      if (versionId !== NULL_VERSION) {
        if (st === null) return null;
        const e = (await index.read(shard, versionRow(bucket, key, versionId), opts)) as IndexEntry<VersionValue> | null;
        return e?.value ?? null;
      }
      if (st !== null) {
        const rows = await nullRows(bucket, key, opts);
        if (rows.length) return rows[0].value;
      }
      // No row: the current object, if it is a "null" version (written before versioning).
      const cur = (await deps.readCurrent(shard, objectRow(bucket, key), opts)) as IndexEntry<ObjectManifest> | null;
      return cur?.value && versionOf(cur.value) === NULL_VERSION ? { ...cur.value, versionId: NULL_VERSION } : null;
    },

    newest,

    async deleteVersion(bucket, key, versionId, st, ctx = {}) {
      checkVersionId(versionId);
      const shard = shardOf(bucket, key);
      const oRow = objectRow(bucket, key);
      // The versions this delete removes: the row of that id (several "null" rows if writers raced).
      let found: Array<{ order: string; value: VersionValue }>;
      if (versionId === NULL_VERSION) found = st === null ? [] : await nullRows(bucket, key);
      else if (st === null) return null;
      else {
        const e = (await index.read(shard, versionRow(bucket, key, versionId))) as IndexEntry<VersionValue> | null;
        found = e?.value ? [{ order: versionId, value: e.value }] : [];
      }
      const curEntry = (await index.read(shard, oRow)) as IndexEntry<ObjectManifest> | null;
      const cur = curEntry?.value ?? null;
      const first = await newest(bucket, key);
      // Current: the object row's version, or with none (a delete marker is current) the newest row's.
      const isCurrent = cur ? versionOf(cur) === versionId : first !== null && first.versionId === versionId && found.length > 0;
      if (!found.length && !isCurrent) return null;
      const ts = deps.now();
      const gone = new Set(found.map((f) => f.order));
      const tombstones: ScanRow[] = found.map((f) => [versionRow(bucket, key, f.order), { ts, value: null }]);
      const deletedMarker = found.length > 0 && isDeleteMarker(found[0].value);
      const event = eventOf(bucket, ts, { name: ctx.lifecycle ? "LifecycleExpiration:Delete" : "ObjectRemoved:Delete", key, versionId, ...(ctx.actor && { actor: ctx.actor }) });
      if (!isCurrent) {
        const [row, entry] = tombstones[0];
        await index.write(shard, row, entry, { companion: event, extra: tombstones.slice(1, 1 + MAX_EXTRA_ROWS) });
        return { deleteMarker: deletedMarker };
      }
      // The newest version left becomes current (none, or a delete marker: no object).
      let next: VersionValue | null = null;
      for await (const v of keyVersions(bucket, key)) {
        if (gone.has(v.order)) continue;
        next = v.value;
        break;
      }
      const value = next && !isDeleteMarker(next) ? next : null;
      await index.write(shard, oRow, { ts: promotionStamp(curEntry?.ts, value === null, Date.now()) ?? ts, value }, { companion: event, extra: tombstones.slice(0, MAX_EXTRA_ROWS) });
      return { deleteMarker: deletedMarker };
    },

    async list(bucket, q) {
      const prefix = q.prefix ?? "";
      const delimiter = q.delimiter || undefined;
      if (q.versionIdMarker && !q.keyMarker) throw new BadRequestError("A version-id marker cannot be specified without a key marker.", "InvalidArgument");
      if (q.versionIdMarker) checkVersionId(q.versionIdMarker);
      let after: string | undefined;
      // The key whose newest version an earlier page already listed (a version-id-marker resumes inside it).
      let lastKey: string | undefined;
      if (q.keyMarker) {
        if (q.versionIdMarker) {
          lastKey = q.keyMarker;
          let order: string | undefined = q.versionIdMarker;
          if (order === NULL_VERSION) order = (await nullRows(bucket, q.keyMarker))[0]?.order;
          after = versionListKey(q.keyMarker, order);
        } else if (delimiter && q.keyMarker.startsWith(prefix) && q.keyMarker.endsWith(delimiter) && q.keyMarker.length > prefix.length) {
          after = q.keyMarker + AFTER_PREFIX;
        } else after = versionListKey(q.keyMarker);
      }
      type Item = { version: ListedVersion } | { prefix: string };
      const items: Item[] = [];
      let lastPrefix: string | undefined;
      let nullShown: string | undefined;
      const shards = allObjectShards(deps.indexShards);
      let done = q.limit === 0;
      while (!done && items.length <= q.limit) {
        const page = await listMerged<VersionValue>(listing, { shards, rowPrefix: versionRowPrefix(bucket), prefix, limit: q.limit + 1 - items.length, after, fields: LISTED_FIELDS });
        let rolled = false;
        for (const r of page.rows) {
          const split = splitVersionListKey(r.key);
          if (!split) continue;
          const { key } = split;
          if (delimiter) {
            const at = key.indexOf(delimiter, prefix.length);
            if (at >= 0) {
              const common = key.slice(0, at + delimiter.length);
              if (common !== lastPrefix) items.push({ prefix: common });
              lastPrefix = common;
              // Skip the rest of the rolled-up prefix instead of reading every version under it.
              after = common + AFTER_PREFIX;
              rolled = true;
              break;
            }
          }
          // Two "null" rows of a key (writers raced while suspended): the newer is the version.
          if (r.value.versionId === NULL_VERSION) {
            if (nullShown === key) continue;
            nullShown = key;
          }
          items.push({ version: { key, versionId: r.value.versionId, isLatest: key !== lastKey, value: r.value } });
          lastKey = key;
          if (items.length > q.limit) break;
        }
        if (rolled) continue;
        if (page.next === null) done = true;
        else after = page.next;
      }
      const shown = items.slice(0, q.limit);
      const last = shown[shown.length - 1];
      const more = items.length > q.limit;
      return {
        versions: shown.flatMap((i) => ("version" in i ? [i.version] : [])),
        prefixes: shown.flatMap((i) => ("prefix" in i ? [i.prefix] : [])),
        ...(more && last && { next: "prefix" in last ? { keyMarker: last.prefix } : { keyMarker: last.version.key, versionIdMarker: last.version.versionId } }),
      };
    },

    async anyVersion(bucket) {
      const page = await listMerged(listing, { shards: allObjectShards(deps.indexShards), rowPrefix: versionRowPrefix(bucket), prefix: "", limit: 1, fields: [] });
      return page.rows.length > 0;
    },

    async forgetBucket(bucket) {
      await index.write(BUCKETS_SHARD, versioningRow(bucket), { ts: deps.now(), value: null });
      await states.forget(bucket);
    },
  };
}

/** S3's answer to a read of a version id that names a delete marker (GET/HEAD with ?versionId=). */
export function deleteMarkerNotAllowed(versionId: string, lastModified: number): MeshError {
  return new MeshError("MethodNotAllowed", "The specified method is not allowed against this resource.", {
    headers: { "x-amz-delete-marker": "true", "x-amz-version-id": versionId, "last-modified": new Date(lastModified).toUTCString() },
  });
}

/** S3's answer to a read of a key whose current version is a delete marker. */
export function deletedKey(key: string, bucket: string, versionId: string): MeshError {
  return new MeshError("NoSuchKey", `no object ${key.slice(0, 200)} in bucket ${bucket}`, { headers: { "x-amz-delete-marker": "true", "x-amz-version-id": versionId } });
}
