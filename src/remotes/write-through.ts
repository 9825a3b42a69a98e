// Write-through origins (issue 15): every acknowledged PUT, copy, multipart completion and
// DELETE of a bucket whose origin has mode "write-through" is also applied to the remote.
//
// The durable queue is the bucket's change event log itself (src/changes/): every write of
// an object already records an event in the same index batch as its manifest, replicated,
// at-least-once and gap-free by the log gate. So nothing new is written on the request path:
// a per-bucket consumer on each peer reads the events of the shards it applies (the shards
// whose first replica it believes alive is itself, as webhook delivery does) from a
// replicated progress row per shard (writeThroughRow, quorum reads and writes:
// src/changes/shard-progress.ts, shared with webhook delivery), and moves
// that row only past events the remote has taken. A peer that restarts reads its rows and
// goes on; a peer that dies is replaced by the next live replica of each of its shards,
// which starts where the row says. Events applied after the last row write are applied
// again, which is harmless: an event is applied as the key's latest state, read from the
// manifest when it is applied (present: its bytes are streamed from the mesh to
// backend.put, with content type and user metadata; absent: backend.delete). A stale event
// of an overwritten key uploads the newer bytes; a copy the pull-through fetched from the
// remote itself (manifest.origin set) is skipped.
//
// Failures: the batch's events before a shard's first failed one still move the shard on;
// the rest are read again after an exponential backoff with jitter (config.events
// writeThroughRetryBaseMs .. writeThroughMaxRetryMs), until they are taken or retention
// takes the events away. The queue starts at the origin's writeThroughSinceMs (when it was
// attached in this mode): objects written before that are not copied.
//
// Bounded: buckets per peer, buckets stepping at once, events per batch, remote calls at
// once per bucket (writeThroughConcurrency); bodies are streamed, never held whole.
import type { AbortOptions } from "@libp2p/interface";
import type { EventsConfig } from "../config.ts";
import { MeshError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { BUCKETS_SHARD, ORIGIN_ROW_PREFIX, writeThroughRow } from "../metadata/keys.ts";
import type { ObjectManifest } from "../metadata/types.ts";
import type { ObjectService } from "../objects/object-service.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { mapLimit } from "../util/map-limit.ts";
import { retryDelayMs } from "../changes/delivery.ts";
import type { ChangeLog } from "../changes/log.ts";
import { createShardProgress, type ConsumerProgress, type NextBatch } from "../changes/shard-progress.ts";
import { checkFilter, eventTimeMs, type ChangeEvent } from "../changes/records.ts";
import { progressOf, startPosition } from "../changes/targets.ts";
import type { RemoteBackend } from "./backend.ts";
import type { OriginConfig, Origins } from "./origin-config.ts";
import { createStepScheduler } from "../util/step-scheduler.ts";

/** Most write-through buckets one peer applies; the rest wait, with a warning. */
export const MAX_BUCKETS_PER_PEER = 1000;
/** Buckets with a step under way at once on one peer. */
const MAX_CONCURRENT_STEPS = 4;
/** Events one step reads and applies at most. */
const MAX_BATCH = 100;
/** Status counts pending events up to this many per bucket (beyond, `pendingCapped`). */
export const PENDING_CAP = 1000;
/** Origin rows scanned per page of the local BUCKETS_SHARD. */
const SCAN_PAGE = 200;
const MAX_ERROR_CHARS = 300;
/** The events the queue applies. */
const FILTER = checkFilter({ types: ["ObjectCreated:*", "ObjectRemoved:*", "LifecycleExpiration:*"] });

/** The timings and bounds write-through runs with (src/config.ts). */
export type WriteThroughConfig = Pick<EventsConfig, "webhookPollMs" | "webhookRefreshMs" | "writeThroughRetryBaseMs" | "writeThroughMaxRetryMs" | "writeThroughConcurrency">;

/** What write-through reads and writes. */
export interface WriteThroughDeps {
  self: string;
  /** This peer's replica of the index: its BUCKETS_SHARD holds every bucket's origin. */
  store: Pick<IndexStore, "scan">;
  index: Pick<IndexClient, "read" | "write">;
  changes: Pick<ChangeLog, "shards" | "readShards">;
  placement: Pick<Placement, "shardReplicas">;
  objects: Pick<ObjectService, "headObject" | "readObject">;
  backendFor(remote: string): Promise<RemoteBackend>;
  isAlive(peer: string): boolean;
  stamp(): string;
  config: WriteThroughConfig;
  log: Logger;
  signal?: AbortSignal;
  random?: () => number;
  clock?: () => number;
}

/** This peer's write-through figures (`writeThrough` in /cluster/status). */
export interface WriteThroughStats {
  /** Write-through buckets this peer knows of. */
  buckets: number;
  /** Events read by this peer and not yet applied (at most one batch per bucket). */
  pending: number;
  /** Remote puts and deletes done, and failed, since start. */
  applied: number;
  failed: number;
  lastError: { bucket: string; message: string; atMs: number } | null;
}

/** A bucket's write-through queue as GET /buckets/{b}/origin shows it (through any peer). */
export interface WriteThroughStatus {
  /** Events not yet applied to the remote (at most PENDING_CAP). */
  pending: number;
  pendingCapped: boolean;
  oldestPendingMs?: number;
  lastSuccessMs: number | null;
  /** The latest failure (kept after recovery: compare with lastSuccessMs). */
  lastError: { message: string; atMs: number } | null;
  failing: boolean;
}

/** The write-through worker of one peer. */
export interface WriteThrough {
  start(): void;
  stop(): Promise<void>;
  /** Read the origins again now (one was just changed through this peer). */
  refresh(): void;
  stats(): WriteThroughStats;
  /** The bucket's queue, read from its progress rows and the log. */
  status(bucket: string, origin: OriginConfig, opts?: AbortOptions): Promise<WriteThroughStatus>;
}

/** A write-through bucket this peer knows of, and its queue here (its place in the log: shard-progress.ts). */
interface Live extends ConsumerProgress {
  origin: OriginConfig;
  failures: number;
  nextAtMs: number;
  busy: boolean;
  pending: number;
}

/** When a bucket's queue starts: its origin's writeThroughSinceMs (kept across re-PUTs in the same mode), else its updatedMs. */
export const queueSince = (o: OriginConfig) => o.writeThroughSinceMs ?? o.updatedMs;

/** Create the write-through worker of one peer. */
export function createWriteThrough(deps: WriteThroughDeps): WriteThrough {
  const { self, log, config } = deps;
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const stopping = new AbortController();
  const signal = stopping.signal;
  const live = new Map<string, Live>();
  const counts = { applied: 0, failed: 0 };
  let lastError: WriteThroughStats["lastError"] = null;
  let overflowWarned = false;
  const progress = createShardProgress({ self, index: deps.index, changes: deps.changes, placement: deps.placement, isAlive: deps.isAlive, stamp: deps.stamp, log, signal, clock });
  deps.signal?.addEventListener("abort", () => stopping.abort(), { once: true });
  if (deps.signal?.aborted) stopping.abort();

  /** The write-through origins in this peer's replica of BUCKETS_SHARD, merged into `live`. */
  async function refresh(): Promise<void> {
    const seen = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const rows = await deps.store.scan(BUCKETS_SHARD, { prefix: ORIGIN_ROW_PREFIX, after, limit: SCAN_PAGE });
      for (const [row, entry] of rows) {
        const origin = entry.value as OriginConfig | null;
        if (!origin || origin.mode !== "write-through") continue;
        if (seen.size >= MAX_BUCKETS_PER_PEER) {
          if (!overflowWarned) log.warn(`more than ${MAX_BUCKETS_PER_PEER} write-through buckets: this peer applies the first ${MAX_BUCKETS_PER_PEER} only`);
          overflowWarned = true;
          break;
        }
        const bucket = row.slice(ORIGIN_ROW_PREFIX.length);
        seen.add(bucket);
        const known = live.get(bucket);
        const since = queueSince(origin);
        if (known && known.since === since) {
          known.origin = origin;
          continue;
        }
        live.set(bucket, { ...progress.fresh(bucket, `write-through ${bucket}`, writeThroughRow(bucket), since), origin, failures: 0, nextAtMs: 0, busy: false, pending: 0 });
      }
      if (rows.length < SCAN_PAGE || seen.size >= MAX_BUCKETS_PER_PEER) break;
      after = rows[rows.length - 1][0];
    }
    for (const b of live.keys()) if (!seen.has(b)) live.delete(b);
  }

  /** Apply one key's latest state to the remote. */
  async function apply(t: Live, backend: RemoteBackend, key: string): Promise<void> {
    let m: ObjectManifest | null;
    try {
      m = await deps.objects.headObject(t.bucket, key, { signal });
    } catch (err) {
      const code = (err as MeshError).code;
      if (code === "NoSuchKey") m = null;
      else if (code === "NoSuchBucket") return; // The bucket is gone: its remote copies are left as they are.
      else throw err;
    }
    const remoteKey = t.origin.prefix + key;
    if (!m) {
      await backend.delete!(remoteKey, { signal });
      return;
    }
    // A copy the pull-through fetched from this remote is already there; so is an object an
    // origin sync imported from it (origin-sync.ts: no bytes here to send, only a `remote` mark).
    if (m.origin || m.remote) return;
    // An SSE-C object's bytes open only with its customer's key, which is never kept: nothing
    // here can send them. Skipped (and said), rather than retried forever in front of the rest.
    if (m.sse?.kind === "C") {
      log.warn(`${t.label}: ${key.slice(0, 200)} is encrypted with a customer key (SSE-C): not sent to remote ${t.origin.remote}`);
      return;
    }
    const body = await deps.objects.readObject(m, 0, m.size, { signal });
    try {
      await backend.put!(remoteKey, body, { contentType: m.contentType, meta: m.meta }, { signal });
    } catch (err) {
      await body.cancel().catch(() => {});
      throw err;
    }
  }

  async function step(t: Live): Promise<void> {
    const poll = config.webhookPollMs;
    await progress.takeUp(t).catch((err: unknown) => log.debug(`${t.label}: ${(err as Error).message}`));
    if (!t.shards.size) {
      t.nextAtMs = clock() + poll;
      return;
    }
    let next: NextBatch;
    try {
      next = await progress.nextBatch(t, MAX_BATCH, FILTER);
    } catch (err) {
      if (signal.aborted) return;
      log.debug(`${t.label}: the log could not be read: ${(err as Error).message}`);
      t.nextAtMs = clock() + poll;
      return;
    }
    const { read, batch } = next;
    t.pending = read.events.length;
    if (!batch.length) {
      await progress.movePastNothing(t, read);
      t.nextAtMs = clock() + poll;
      return;
    }
    // Each key once, as its latest state: the last of its events in the batch stands for the others.
    const lastOfKey = new Map<string, ChangeEvent & { shard: string }>();
    for (const e of batch) if (e.event.key !== undefined) lastOfKey.set(e.event.key, e);
    const failedIds: Array<{ shard: string; id: string }> = [];
    let failure: string | undefined;
    try {
      const backend = await deps.backendFor(t.origin.remote);
      if (!backend.put || !backend.delete) throw new MeshError("OriginError", `remote ${t.origin.remote} is read-only`);
      await mapLimit([...lastOfKey.values()], Math.max(1, config.writeThroughConcurrency), async (e) => {
        if (signal.aborted) return;
        try {
          await apply(t, backend, e.event.key!);
          counts.applied++;
          t.pending = Math.max(0, t.pending - 1);
        } catch (err) {
          counts.failed++;
          failedIds.push({ shard: e.shard, id: e.id });
          failure ??= String((err as Error).message ?? err).slice(0, MAX_ERROR_CHARS);
        }
      });
    } catch (err) {
      failure = String((err as Error).message ?? err).slice(0, MAX_ERROR_CHARS);
      for (const e of lastOfKey.values()) failedIds.push({ shard: e.shard, id: e.id });
    }
    if (signal.aborted) return;
    // A shard moves to just before its first failed event, or (none failed) as far as the read or batch went.
    const moved = progress.advance(t, next, failedIds);
    const now = clock();
    if (failure === undefined) {
      if (t.failures) log.info(`${t.label}: applied again after ${t.failures} failed attempt(s)`);
      t.failures = 0;
      t.lastSuccessMs = now;
      await progress.persist(t, moved);
      t.nextAtMs = read.events.length > batch.length || batch.length >= MAX_BATCH ? clock() : clock() + poll;
      return;
    }
    t.failures++;
    t.lastError = { message: failure, atMs: now };
    lastError = { bucket: t.bucket, ...t.lastError };
    const wait = retryDelayMs(t.failures, config.writeThroughRetryBaseMs, config.writeThroughMaxRetryMs, random);
    if (t.failures === 1) log.warn(`${t.label}: ${failedIds.length} change(s) not applied to remote ${t.origin.remote}: ${failure}; retrying with backoff`);
    else log.debug(`${t.label}: attempt ${t.failures} failed: ${failure}; next in ${wait} ms`);
    // The error is shown through any peer; failed events stay queued.
    await progress.persist(t, new Set([...moved, ...failedIds.map((f) => f.shard)]));
    t.nextAtMs = clock() + wait;
  }

  const scheduler = createStepScheduler<Live>({
    items: () => live.values(),
    step,
    failed(t, err) {
      log.warn(`${t.label}: ${(err as Error).message}`);
      t.nextAtMs = clock() + config.webhookPollMs;
    },
    refresh,
    refreshFailed: (err) => log.warn(`write-through origins could not be read: ${(err as Error).message}`),
    refreshEveryMs: config.webhookRefreshMs,
    maxConcurrent: MAX_CONCURRENT_STEPS,
    signal,
    clock,
  });

  return {
    start: () => scheduler.start(),
    async stop() {
      stopping.abort();
      await scheduler.stopped();
    },
    refresh: () => scheduler.refresh(),
    stats() {
      let pending = 0;
      for (const t of live.values()) pending += t.pending;
      return { buckets: live.size, pending, ...counts, lastError };
    },
    async status(bucket, origin, opts) {
      const since = queueSince(origin);
      const shards = deps.changes.shards();
      let lastSuccessMs = 0;
      let lastErr: WriteThroughStatus["lastError"] = null;
      const positions = new Map<string, string>();
      await mapLimit(shards, 16, async (shard) => {
        const p = progressOf((await deps.index.read(shard, writeThroughRow(bucket), opts))?.value, since);
        positions.set(shard, p?.position ?? startPosition(since));
        if (p && p.lastSuccessMs > lastSuccessMs) lastSuccessMs = p.lastSuccessMs;
        if (p?.lastError && p.lastError.atMs > (lastErr?.atMs ?? 0)) lastErr = p.lastError;
      });
      const perShard = Math.min(PENDING_CAP, Math.max(20, Math.ceil((2 * PENDING_CAP) / shards.length)));
      const read = await deps.changes.readShards(bucket, positions, { limit: perShard, filter: FILTER });
      const counted = new Map<string, number>();
      for (const e of read.events) counted.set(e.shard, (counted.get(e.shard) ?? 0) + 1);
      const e0 = read.events[0];
      const le = lastErr as WriteThroughStatus["lastError"];
      return {
        pending: Math.min(PENDING_CAP, read.events.length),
        pendingCapped: read.events.length > PENDING_CAP || [...counted.values()].some((n) => n >= perShard),
        ...(e0 && { oldestPendingMs: eventTimeMs(e0.id) }),
        lastSuccessMs: lastSuccessMs || null,
        lastError: le,
        failing: le !== null && le.atMs > lastSuccessMs && read.events.length > 0,
      };
    },
  };
}

/** Bucket origins whose `get` also shows a write-through bucket's queue (GET /buckets/{b}/origin). */
export function withQueueStatus<O extends Pick<Origins, "get">>(origins: O, wt: Pick<WriteThrough, "status">): O {
  return {
    ...origins,
    async get(bucket: string, opts?: AbortOptions) {
      const cfg = await origins.get(bucket, opts);
      if (cfg.mode !== "write-through") return cfg;
      return { ...cfg, writeThrough: await wt.status(bucket, cfg, opts) };
    },
  };
}
