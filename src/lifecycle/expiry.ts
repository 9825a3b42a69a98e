// The lifecycle worker's job: every pass applies each bucket's lifecycle rules (S3's
// PutBucketLifecycleConfiguration, stored in the buckets shard, which every member holds)
// to the object shards this peer acts for.
//
// Who acts: the first replica of a shard that this peer believes alive, itself included,
// as webhook delivery and write-through pick their shards (src/changes/delivery.ts), so each
// object is handled by one peer at a time. Two peers whose views differ for a moment may
// both act on a shard; every action is safe to try twice (a second delete finds its
// condition failed or the version gone, a second abort finds the upload gone).
//
// What a pass does, per bucket with rules and per shard, reading this peer's replica of the
// shard a page of rows per step, and only rows under the longest key prefix all the
// relevant rules share:
// - current objects (the object rows): one an Expiration rule makes due is deleted with a
//   condition (its ETag and its exact Last-Modified), decided by a consensus round among the
//   key's replicas (src/metadata/consensus.ts): an object written again after the page was
//   read is never deleted. In a versioned bucket the delete makes a delete marker.
// - versions (the version rows, a key's newest first): a noncurrent version, counted from
//   when the next newer version was written, is removed when a NoncurrentVersionExpiration
//   rule makes it due beyond the newest NewerNoncurrentVersions of them; a delete marker that
//   is its key's only version left is removed under ExpiredObjectDeleteMarker (or an
//   Expiration in days, once it is that old). Before either, a listing by quorum confirms
//   what this replica showed: the version is still not the current one, or the marker is
//   still alone, so a stale replica never removes a current version.
// - multipart uploads (the upload rows): aborted once AbortIncompleteMultipartUpload's days
//   have passed since initiation, through the same abort as --multipart-expiry.
// Bounded: rows per step, actions (deletes, removals, aborts) per pass; a pass that spends
// its actions ends early and the next one goes on (what it removed is no longer found).
import type { AbortOptions } from "@libp2p/interface";
import type { LifecycleConfig } from "../config.ts";
import { MeshError } from "../errors.ts";
import {
  BUCKETS_SHARD,
  LIFECYCLE_ROW_PREFIX,
  objectRowPrefix,
  parseUploadRow,
  splitVersionListKey,
  uploadRowPrefix,
  versionRowPrefix,
} from "../metadata/keys.ts";
import { isDeleteMarker, type ObjectManifest, type VersionValue } from "../metadata/types.ts";
import type { UploadRecord } from "../objects/multipart.ts";
import type { ObjectService } from "../objects/object-service.ts";
import type { Placement } from "../placement/placement.ts";
import { untilAborted } from "../repair/abortable.ts";
import type { WorkerStatus } from "../repair/worker.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { abortDue, commonPrefix, expirationDue, expiredMarkerDue, noncurrentDue, rowsNeeded, type LifecycleRule } from "./rules.ts";

/** Rows of a shard read per step. */
export const STEP_ROWS = 100;
/** Lifecycle configurations read per step of the buckets shard. */
const CONFIG_PAGE = 16;

/** Figures for `/cluster/status` (`workers.lifecycle`). */
export interface LifecycleStats {
  /** The length of a lifecycle day, in ms (a real day unless shortened for tests). */
  dayMs: number;
  /** Wall-clock time the last complete pass ended (0: none yet). */
  lastPassAtMs: number;
  /** Current objects expired since start (deleted, or given a delete marker in a versioned bucket). */
  objectsExpired: number;
  /** Noncurrent versions and expired delete markers removed since start. */
  versionsRemoved: number;
  /** Multipart uploads aborted since start. */
  uploadsAborted: number;
  /** Actions not taken because the object changed after its row was read (or a quorum listing disagreed with this replica). */
  skippedChanged: number;
}

/** `workers.lifecycle` in `/cluster/status`: the figures and the worker's state. */
export type LifecycleStatus = LifecycleStats & Partial<WorkerStatus>;

/** What the lifecycle job reads and acts through. */
export interface LifecycleDeps {
  self: string;
  /** This peer's replicas of the index. */
  indexStore: Pick<IndexStore, "shards" | "scan">;
  placement: Pick<Placement, "shardReplicas">;
  /** Does this peer believe `peer` alive (itself always)? */
  isAlive(peer: string): boolean;
  objects: Pick<ObjectService, "deleteObject" | "listVersions">;
  /** Abort one upload unless a Complete holds it (Multipart.expire). */
  abortUpload(bucket: string, key: string, uploadId: string, opts?: AbortOptions): Promise<"aborted" | "gone" | "completing">;
  config: LifecycleConfig;
  log: Logger;
  /** Wall clock (tests inject one). */
  clock?: () => number;
}

/** The lifecycle job (a worker's pass) and its figures. */
export interface LifecycleJob {
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: LifecycleStats;
}

/** Errors that mean the object is no longer what the worker read: nothing to do. */
const CHANGED = new Set(["PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "NoSuchVersion", "NoSuchBucket"]);

/** A key as a log line shows it: escaped, at most 200 characters. */
const shown = (key: string) => JSON.stringify(key).slice(1, -1).slice(0, 200);

/** Create the lifecycle job. */
export function createLifecycleJob(deps: LifecycleDeps): LifecycleJob {
  const { self, log, config } = deps;
  const clock = deps.clock ?? Date.now;
  const dayMs = config.dayMs;
  const stats: LifecycleStats = { dayMs, lastPassAtMs: 0, objectsExpired: 0, versionsRemoved: 0, uploadsAborted: 0, skippedChanged: 0 };
  /** Actions left in this pass. */
  let budget = 0;

  /** Run one action; false (and counted) when the object changed under it. Other 4xx answers are logged and skipped, anything else fails the pass. */
  async function act(what: string, action: () => Promise<void>): Promise<boolean> {
    budget--;
    try {
      await action();
      return true;
    } catch (err) {
      if (err instanceof MeshError && CHANGED.has(err.code)) {
        stats.skippedChanged++;
        return false;
      }
      if (err instanceof MeshError && err.status >= 400 && err.status < 500) {
        log.warn(`lifecycle: ${what} refused: ${err.message}`);
        return false;
      }
      throw err;
    }
  }

  /** Every row of `shard` under `prefix`, a page per step, handed to `each` until the pass's actions are spent. */
  async function* walk(shard: string, prefix: string, signal: AbortSignal, each: (row: string, value: unknown, now: number) => Promise<void>): AsyncGenerator<void> {
    let after: string | undefined;
    for (;;) {
      signal.throwIfAborted();
      const rows = await deps.indexStore.scan(shard, { prefix, after, limit: STEP_ROWS });
      const now = clock();
      for (const [row, entry] of rows) {
        if (budget <= 0) return;
        await each(row, entry.value, now);
      }
      yield;
      if (rows.length < STEP_ROWS) return;
      after = rows[rows.length - 1][0];
    }
  }

  /** Expiration of current objects. */
  function currentObjects(bucket: string, rules: LifecycleRule[], shard: string, signal: AbortSignal): AsyncGenerator<void> {
    const base = objectRowPrefix(bucket);
    const prefix = commonPrefix(rules, (r) => r.expiration?.days !== undefined || r.expiration?.dateMs !== undefined);
    return walk(shard, base + prefix, signal, async (row, value, now) => {
      const m = value as ObjectManifest | null;
      if (!m) return;
      const key = row.slice(base.length);
      const due = expirationDue(rules, { key, tags: m.tags, size: m.size, lastModified: m.lastModified }, dayMs);
      if (due === undefined || due > now) return;
      await config.beforeExpire?.(bucket, key);
      await act(`expiring ${bucket}/${shown(key)}`, async () => {
        // Only the object this row showed: same ETag, same Last-Modified to the millisecond, same tags.
        await untilAborted(deps.objects.deleteObject(bucket, key, { condition: { ifMatch: m.etag, ifLastModifiedMs: m.lastModified, ifTags: m.tags ?? {} }, lifecycle: true }), signal);
        stats.objectsExpired++;
      });
    });
  }

  /** The newest versions of `key` by a quorum listing (at most `limit`). */
  async function newestVersions(bucket: string, key: string, limit: number) {
    const page = await deps.objects.listVersions(bucket, { prefix: key, limit });
    return page.versions.filter((v) => v.key === key);
  }

  /** Remove one version for good, after `confirm` holds for the key's versions as a quorum lists them. */
  async function removeVersion(bucket: string, key: string, versionId: string, limit: number, confirm: (newest: Awaited<ReturnType<typeof newestVersions>>) => boolean, signal: AbortSignal): Promise<void> {
    await act(`removing version ${versionId} of ${bucket}/${shown(key)}`, async () => {
      if (!confirm(await untilAborted(newestVersions(bucket, key, limit), signal))) {
        stats.skippedChanged++;
        return;
      }
      await untilAborted(deps.objects.deleteObject(bucket, key, { versionId, lifecycle: true }), signal);
      stats.versionsRemoved++;
    });
  }

  /** Noncurrent version expiration and expired delete markers: a key's versions are walked newest first. */
  function versionRows(bucket: string, rules: LifecycleRule[], shard: string, signal: AbortSignal): AsyncGenerator<void> {
    const base = versionRowPrefix(bucket);
    // Marker clean-up goes with an expiration rule's filter: a prefix common to both kinds.
    const prefix = commonPrefix(rules, (r) => r.noncurrentExpiration !== undefined || r.expiration !== undefined);
    /** The key being walked: how many versions seen, the newest one's marker (if it is one), and the last version's Last-Modified. */
    let cur: { key: string; seen: number; marker?: { versionId: string; lastModified: number }; newerLastModified: number } | undefined;
    const markerAlone = async (now: number) => {
      const c = cur;
      if (!c || c.seen !== 1 || !c.marker || !expiredMarkerDue(rules, { key: c.key, lastModified: c.marker.lastModified }, now, dayMs)) return;
      const id = c.marker.versionId;
      await removeVersion(bucket, c.key, id, 2, (newest) => newest.length === 1 && newest[0].versionId === id && isDeleteMarker(newest[0].value), signal);
    };
    const each = async (row: string, value: unknown, now: number) => {
      const v = value as VersionValue | null;
      const split = splitVersionListKey(row.slice(base.length));
      if (!v || !split) return;
      if (!cur || cur.key !== split.key) {
        await markerAlone(now);
        cur = { key: split.key, seen: 1, newerLastModified: v.lastModified, ...(isDeleteMarker(v) && { marker: { versionId: v.versionId, lastModified: v.lastModified } }) };
        return;
      }
      // A noncurrent version: `rank` 1 is the newest of them; it became noncurrent when the version above it was written.
      const rank = cur.seen++;
      const since = cur.newerLastModified;
      cur.newerLastModified = v.lastModified;
      const subject = isDeleteMarker(v) ? { key: split.key } : { key: split.key, tags: v.tags, size: v.size };
      if (!noncurrentDue(rules, { ...subject, rank, noncurrentSinceMs: since }, now, dayMs)) return;
      const id = v.versionId;
      await removeVersion(bucket, split.key, id, 1, (newest) => newest.length > 0 && newest[0].versionId !== id, signal);
    };
    return (async function* () {
      yield* walk(shard, base + prefix, signal, each);
      if (budget > 0) await markerAlone(clock());
    })();
  }

  /** AbortIncompleteMultipartUpload. */
  function uploads(bucket: string, rules: LifecycleRule[], shard: string, signal: AbortSignal): AsyncGenerator<void> {
    const prefix = commonPrefix(rules, (r) => r.abortIncompleteDays !== undefined);
    return walk(shard, uploadRowPrefix(bucket) + prefix, signal, async (row, value, now) => {
      const record = value as UploadRecord | null;
      const at = parseUploadRow(row);
      if (!record || !at || !abortDue(rules, { key: at.key, initiatedMs: record.initiated }, now, dayMs)) return;
      await act(`aborting upload ${at.uploadId} of ${bucket}/${shown(at.key)}`, async () => {
        if ((await untilAborted(deps.abortUpload(bucket, at.key, at.uploadId, { signal }), signal)) === "aborted") stats.uploadsAborted++;
      });
    });
  }

  /** The object shards this peer acts for: those whose first replica it believes alive is itself. */
  const ownShards = () =>
    deps.indexStore
      .shards()
      .filter((s) => s.startsWith("o") && deps.placement.shardReplicas(s).find((p) => p === self || deps.isAlive(p)) === self)
      .sort();

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    budget = config.maxActionsPerPass;
    const before = { ...stats };
    const shards = ownShards();
    let after: string | undefined;
    // Configurations a page at a time from this peer's replica of the buckets shard (every member holds it).
    while (shards.length && budget > 0) {
      const page = await deps.indexStore.scan(BUCKETS_SHARD, { prefix: LIFECYCLE_ROW_PREFIX, after, limit: CONFIG_PAGE });
      yield;
      for (const [row, entry] of page) {
        const rules = entry.value as LifecycleRule[] | null;
        if (!rules?.some((r) => r.enabled)) continue;
        const bucket = row.slice(LIFECYCLE_ROW_PREFIX.length);
        const need = rowsNeeded(rules);
        for (const shard of shards) {
          if (need.objects) yield* currentObjects(bucket, rules, shard, signal);
          if (need.versions) yield* versionRows(bucket, rules, shard, signal);
          if (need.uploads) yield* uploads(bucket, rules, shard, signal);
          if (budget <= 0) break;
        }
        if (budget <= 0) break;
      }
      if (page.length < CONFIG_PAGE) break;
      after = page[page.length - 1][0];
    }
    stats.lastPassAtMs = clock();
    const done = [stats.objectsExpired - before.objectsExpired, stats.versionsRemoved - before.versionsRemoved, stats.uploadsAborted - before.uploadsAborted];
    if (done.some((n) => n > 0)) log.info(`lifecycle pass: ${done[0]} objects expired, ${done[1]} versions removed, ${done[2]} uploads aborted${budget <= 0 ? ` (stopped at ${config.maxActionsPerPass} actions; the next pass goes on)` : ""}`);
  }

  return { pass, stats };
}
