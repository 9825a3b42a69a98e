// Expiry of incomplete multipart uploads, as S3's AbortIncompleteMultipartUpload lifecycle
// rule does it: an upload initiated longer ago than the configured age is aborted, and its
// parts' chunks, no longer referenced by any row, are then collected by chunk GC.
//
// Every replica of an object shard holds its upload rows, so every replica would find the
// same old uploads. Without a coordinator, one of them acts per shard: the first replica of
// the shard on the live ring that this peer can reach. Two peers that disagree on who that
// is (a member suspected by one of them) may both act; the abort's handshake with
// Complete (objects/multipart.ts) makes a second abort find the upload gone, so an upload
// is still aborted once. A pass reads each shard this peer acts for in pages of
// BATCH_ROWS upload rows, one page per step. The same pass removes the records completed
// uploads leave for repeated Completes (objects/multipart.ts) once they are as old as the
// expiry age, so they stay a bounded while.
import type { AbortOptions } from "@libp2p/interface";
import { ALL_COMPLETED_PREFIX, ALL_UPLOADS_PREFIX, parseCompletedRow, parseUploadRow } from "../metadata/keys.ts";
import type { CompletedUpload, UploadRecord } from "../objects/multipart.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { untilAborted } from "./abortable.ts";
import type { WorkerStatus } from "./worker.ts";

/** Upload rows read per step. */
export const BATCH_ROWS = 100;

/** Figures for `/cluster/status` (`workers.multipartExpiry`) and the metrics. */
export interface MultipartExpiryStats {
  /** The configured age in ms (null: expiry is off). */
  ageMs: number | null;
  /** Wall-clock time the last complete pass ended (0: none yet). */
  lastPassAtMs: number;
  /** Uploads this peer aborted since start. */
  uploadsAborted: number;
}

/** `workers.multipartExpiry` in `/cluster/status`: the figures, and the worker's state while expiry is on. */
export type MultipartExpiryStatus = MultipartExpiryStats & Partial<WorkerStatus>;

/** Dependencies of the expiry job. */
export interface MultipartExpiryDeps {
  self: string;
  indexStore: Pick<IndexStore, "shards" | "scan">;
  placement: Pick<Placement, "shardReplicas" | "reachable">;
  /** Abort one upload unless a Complete holds it (Multipart.expire). */
  expire(bucket: string, key: string, uploadId: string, opts?: AbortOptions): Promise<"aborted" | "gone" | "completing">;
  /** Remove the record of a completed upload (Multipart.forgetCompleted); without it such records are left alone. */
  forgetCompleted?(bucket: string, key: string, uploadId: string, opts?: AbortOptions): Promise<void>;
  /** Mark an aborted upload's progress record failed (src/uploads/; never throws). */
  recordEnd?(token: string, uploadId: string, error: string): Promise<void>;
  ageMs: number;
  log: Logger;
  /** Wall clock (tests inject one). */
  clock?: () => number;
}

/** The expiry job (a worker's pass) and its figures. */
export interface MultipartExpiry {
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: MultipartExpiryStats;
}

/** Of a shard's replicas on the live ring, the one that expires its uploads: the first reachable one. */
export function actingReplica(replicas: readonly string[], reachable: (peer: string) => boolean): string | undefined {
  return replicas.find(reachable);
}

/** How long ago an upload began, shown as "26.0 h", "3.5 min" or "2.1 s". */
export function describeAge(ms: number): string {
  if (ms >= 3600_000) return `${(ms / 3600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Pause between passes for an age: a quarter of it, from 0.5 s to 10 min (so an upload lives at most 1.25 ages). */
export function expiryIntervalMs(ageMs: number): number {
  return Math.min(10 * 60_000, Math.max(500, Math.round(ageMs / 4)));
}

/** Create the expiry job. */
export function createMultipartExpiry(deps: MultipartExpiryDeps): MultipartExpiry {
  const { self, log } = deps;
  const clock = deps.clock ?? Date.now;
  const stats: MultipartExpiryStats = { ageMs: deps.ageMs, lastPassAtMs: 0, uploadsAborted: 0 };

  async function expireOne(row: string, record: UploadRecord, now: number, signal: AbortSignal): Promise<void> {
    const at = parseUploadRow(row);
    if (!at) return;
    const outcome = await untilAborted(deps.expire(at.bucket, at.key, at.uploadId, { signal }), signal);
    if (outcome !== "aborted") return;
    stats.uploadsAborted++;
    if (record.uploadToken) await deps.recordEnd?.(record.uploadToken, at.uploadId, `expired: incomplete for ${describeAge(now - record.initiated)} (--multipart-expiry ${describeAge(deps.ageMs)})`);
    // Names only: bucket, key and upload id are no secrets (keys are shown whole in listings too).
    log.info(`aborted incomplete multipart upload ${at.uploadId} of ${at.bucket}/${JSON.stringify(at.key).slice(1, -1).slice(0, 200)}: started ${describeAge(now - record.initiated)} ago (expiry ${describeAge(deps.ageMs)})`);
  }

  async function forgetOne(row: string, signal: AbortSignal): Promise<void> {
    const at = parseCompletedRow(row);
    if (!at || !deps.forgetCompleted) return;
    await untilAborted(deps.forgetCompleted(at.bucket, at.key, at.uploadId, { signal }), signal);
  }

  /** Every row of `shard` under `prefix`, in pages of BATCH_ROWS, handed to `each` (one page per step). */
  async function* scanPages(shard: string, prefix: string, signal: AbortSignal, each: (row: string, value: unknown, now: number) => Promise<void>): AsyncGenerator<void> {
    let after: string | undefined;
    for (;;) {
      signal.throwIfAborted();
      const rows = await deps.indexStore.scan(shard, { prefix, after, limit: BATCH_ROWS });
      const now = clock();
      for (const [row, entry] of rows) await each(row, entry.value, now);
      yield;
      if (rows.length < BATCH_ROWS) break;
      after = rows[rows.length - 1][0];
    }
  }

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    for (const shard of deps.indexStore.shards().filter((s) => s.startsWith("o")).sort()) {
      if (actingReplica(deps.placement.shardReplicas(shard), deps.placement.reachable) !== self) continue;
      yield* scanPages(shard, ALL_UPLOADS_PREFIX, signal, async (row, value, now) => {
        const record = value as UploadRecord | null;
        if (record && now - record.initiated >= deps.ageMs) await expireOne(row, record, now, signal);
      });
      if (!deps.forgetCompleted) continue;
      yield* scanPages(shard, ALL_COMPLETED_PREFIX, signal, async (row, value, now) => {
        const done = value as CompletedUpload | null;
        if (done && now - done.completedMs >= deps.ageMs) await forgetOne(row, signal);
      });
    }
    stats.lastPassAtMs = clock();
  }

  return { pass, stats };
}
