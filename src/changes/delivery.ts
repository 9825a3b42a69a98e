// Webhook delivery: the worker every peer runs, POSTing each bucket's change events to its
// targets ({"Records": [...]}, signed with the target's secret), at least once and with no gap.
//
// Who delivers what: a target's events are read shard by shard, and the deliverer of shard S
// is the first of S's replicas (placement.shardReplicas) that this peer believes alive, itself
// included. Peers whose views differ for a moment may both deliver S (a duplicate, which
// at-least-once allows); when the deliverer dies, the next replica takes over as soon as it
// stops believing it alive. Progress is a replicated row per target in each shard
// (deliveryRow, written and read with quorums): a position such that every matching event of
// the shard at or below it has been acknowledged. A peer that takes a shard over reads that
// row and goes on from there, so what the dead peer delivered after its last write is sent
// again, and nothing is skipped. Positions only ever move to where this peer has delivered,
// or to where a read of the log (src/changes/log.ts) showed no further matching events: a
// read's `reached` is gap-free by the log gate's marks (src/changes/gate.ts).
// That part, shared with write-through, is shard-progress.ts.
//
// One target, one POST at a time: its next batch is the first `maxBatch` events, in id order,
// of the shards this peer delivers. Any 2xx acknowledges (the positions of the batch's shards
// are then written); anything else, or no answer within the timeout, is retried (the read is
// made again from the same positions) after an exponential backoff with jitter, until
// retention takes the events away. Targets come from this peer's own replica of
// BUCKETS_SHARD (every member holds it), read again every few seconds.
//
// Bounded: targets per peer, POSTs in flight, events per batch (at most 100), response bytes
// read (the rest is dropped). Secrets are opened into memory to sign and never logged.
import { createHmac } from "node:crypto";
import type { EventsConfig } from "../config.ts";
import type { SecretSealer } from "../auth/sealed-secret.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { deliveryRow, BUCKETS_SHARD, NOTIFICATIONS_ROW_PREFIX } from "../metadata/keys.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { createStepScheduler } from "../util/step-scheduler.ts";
import type { ChangeLog, ShardsRead } from "./log.ts";
import { createShardProgress, type ConsumerProgress, type NextBatch } from "./shard-progress.ts";
import { toS3Record, type EventFilter } from "./records.ts";
import { filterOfTarget, secretContext, storedTargets, type StoredTarget } from "./targets.ts";

/** Most targets one peer delivers to (every bucket's, at most 10 each); the rest wait, with a warning. */
export const MAX_TARGETS_PER_PEER = 2000;
/** Most targets with a step (a read and at most one POST) under way at once on one peer. */
export const MAX_CONCURRENT_STEPS = 8;
/** Bytes of a receiver's answer read (and dropped) before the rest is cancelled. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Notification rows scanned per page of the local BUCKETS_SHARD. */
const SCAN_PAGE = 200;
/** Longest error message kept for status. */
const MAX_ERROR_CHARS = 300;

/** Headers of a delivery. */
export const HEADERS = {
  eventIds: "x-meshstore-event-ids",
  attempt: "x-meshstore-delivery-attempt",
  signature: "x-meshstore-signature",
  peer: "x-meshstore-peer",
} as const;

/** The X-Meshstore-Signature value of a body: "sha256=" and the hex HMAC-SHA256 of its exact bytes with the target's secret. */
export function signBody(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Wait before attempt `failures + 1`: base doubled per failure, capped at max, times a jitter in [0.75, 1.25), never below base nor above max. */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number, random: () => number): number {
  const nominal = Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(Math.min(maxMs, Math.max(baseMs, nominal * (0.75 + random() / 2))));
}

/** The timings delivery runs with (src/config.ts). */
export type DeliveryConfig = Pick<EventsConfig, "retryBaseMs" | "maxRetryMs" | "webhookPollMs" | "webhookRefreshMs" | "webhookTimeoutMs">;

/** What delivery reads and writes. */
export interface DeliveryDeps {
  self: string;
  /** This peer's replica of the index: its copy of BUCKETS_SHARD holds every bucket's targets. */
  store: Pick<IndexStore, "scan">;
  index: Pick<IndexClient, "read" | "write">;
  changes: Pick<ChangeLog, "shards" | "readShards">;
  placement: Pick<Placement, "shardReplicas">;
  /** Does this peer believe `peer` alive (itself always)? */
  isAlive(peer: string): boolean;
  sealer: SecretSealer;
  /** A fresh HLC stamp for a row this peer writes. */
  stamp(): string;
  config: DeliveryConfig;
  log: Logger;
  /** The peer's: aborted at stop. */
  signal?: AbortSignal;
  random?: () => number;
  clock?: () => number;
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** Figures of this peer's delivery. */
export interface DeliveryStats {
  /** Targets this peer knows of. */
  targets: number;
  /** Steps under way. */
  inFlight: number;
  /** POSTs acknowledged, and failed, since start. */
  delivered: number;
  failed: number;
  /** Events in acknowledged POSTs since start. */
  events: number;
}

/** The delivery worker of one peer. */
export interface Delivery {
  start(): void;
  /** Stop: no new step starts; resolves once those under way have ended. */
  stop(): Promise<void>;
  /** Read the targets again now (they were just changed through this peer). */
  refresh(): void;
  stats(): DeliveryStats;
}

/** A target this peer knows of, and its delivery state here (its place in the log: shard-progress.ts). */
interface Live extends ConsumerProgress {
  target: StoredTarget;
  secret: string;
  filter: EventFilter;
  /** Failed POSTs since the last acknowledged one: the next attempt's number is this plus one. */
  failures: number;
  /** Failed reads of the log in a row (no quorum): they back off too, but are no delivery attempt. */
  readFailures: number;
  nextAtMs: number;
  busy: boolean;
}

/** A fetch failure in words, without the URL (it may carry a token in its query). */
function describeFailure(err: unknown, url: string): string {
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const what = typeof e?.message === "string" ? e.message : String(err);
  const code = typeof e?.code === "string" ? `${e.code}: ` : "";
  return `${code}${what}`.split(url).join("<url>").slice(0, MAX_ERROR_CHARS);
}

/** Read at most MAX_RESPONSE_BYTES of a response and drop them; cancel the rest. */
async function drain(res: Response): Promise<void> {
  const reader = res.body?.getReader();
  if (!reader) return;
  try {
    let read = 0;
    while (read <= MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The answer's status is what counts; a body cut short is no matter.
  }
}

/** Create the delivery worker of one peer. */
export function createDelivery(deps: DeliveryDeps): Delivery {
  const { self, log, config } = deps;
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const doFetch = deps.fetch ?? ((url, init) => fetch(url, init));
  const stopping = new AbortController();
  const signal = stopping.signal;

  const live = new Map<string, Live>();
  const counts = { delivered: 0, failed: 0, events: 0 };
  /** Targets whose secret did not open (warned once each). */
  const unopened = new Set<string>();
  const progress = createShardProgress({ self, index: deps.index, changes: deps.changes, placement: deps.placement, isAlive: deps.isAlive, stamp: deps.stamp, log, signal, clock });
  let overflowWarned = false;
  deps.signal?.addEventListener("abort", () => stopping.abort(), { once: true });
  if (deps.signal?.aborted) stopping.abort();

  /** A target's key in `live` (a bucket name has no "/"). */
  const keyOf = (bucket: string, id: string) => `${bucket}/${id}`;

  /** The targets in this peer's replica of BUCKETS_SHARD, merged into `live` (state kept for a target created at the same time). */
  async function refresh(): Promise<void> {
    const seen = new Set<string>();
    let after: string | undefined;
    outer: for (;;) {
      const rows = await deps.store.scan(BUCKETS_SHARD, { prefix: NOTIFICATIONS_ROW_PREFIX, after, limit: SCAN_PAGE });
      for (const [row, entry] of rows) {
        const bucket = row.slice(NOTIFICATIONS_ROW_PREFIX.length);
        for (const target of storedTargets(entry.value)) {
          const key = keyOf(bucket, target.id);
          if (seen.size >= MAX_TARGETS_PER_PEER) {
            if (!overflowWarned) log.warn(`more than ${MAX_TARGETS_PER_PEER} webhook targets in the mesh: this peer delivers to the first ${MAX_TARGETS_PER_PEER} only`);
            overflowWarned = true;
            break outer;
          }
          const secret = deps.sealer.open(secretContext(bucket, target.id), target.sealedSecret);
          if (secret === null) {
            if (!unopened.has(key)) log.warn(`webhook target ${bucket}/${target.id}: its secret does not open with this mesh's key; not delivering to it`);
            unopened.add(key);
            continue;
          }
          seen.add(key);
          const known = live.get(key);
          if (known && known.target.createdMs === target.createdMs) {
            // Same target, maybe with a new URL, filter or batch size: it keeps its place.
            Object.assign(known, { target, secret, filter: filterOfTarget(target) });
            continue;
          }
          const fresh = progress.fresh(bucket, `webhook ${bucket}/${target.id}`, deliveryRow(bucket, target.id), target.createdMs);
          live.set(key, { ...fresh, target, secret, filter: filterOfTarget(target), failures: 0, readFailures: 0, nextAtMs: 0, busy: false });
        }
      }
      if (rows.length < SCAN_PAGE) break;
      after = rows[rows.length - 1][0];
    }
    for (const key of live.keys()) if (!seen.has(key)) live.delete(key);
  }

  /** POST a batch; resolves with null when acknowledged (any 2xx), else why not. */
  async function post(t: Live, events: ShardsRead["events"], attempt: number): Promise<string | null> {
    const body = JSON.stringify({ Records: events.map(toS3Record) });
    const headers = {
      "content-type": "application/json",
      [HEADERS.eventIds]: events.map((e) => e.id).join(","),
      [HEADERS.attempt]: String(attempt),
      [HEADERS.signature]: signBody(t.secret, body),
      [HEADERS.peer]: self,
    };
    const timeout = AbortSignal.timeout(config.webhookTimeoutMs);
    try {
      // Redirects are not followed: the target is the URL its owner gave.
      const res = await doFetch(t.target.url, { method: "POST", body, headers, redirect: "manual", signal: AbortSignal.any([signal, timeout]) });
      await drain(res);
      if (res.status >= 200 && res.status < 300) return null;
      return `the receiver answered HTTP ${res.status}${res.statusText ? ` ${res.statusText.slice(0, 60)}` : ""}`;
    } catch (err) {
      if (timeout.aborted) return `no answer within ${config.webhookTimeoutMs} ms`;
      return describeFailure(err, t.target.url);
    }
  }

  /** One step of one target: read its next batch, POST it (or move past nothing), record the outcome. */
  async function step(t: Live): Promise<void> {
    const poll = config.webhookPollMs;
    try {
      await progress.takeUp(t);
    } catch (err) {
      log.debug(`${t.label}: ${(err as Error).message}`);
    }
    if (!t.shards.size) {
      t.nextAtMs = clock() + poll;
      return;
    }
    let next: NextBatch;
    try {
      next = await progress.nextBatch(t, t.target.maxBatch, t.filter);
      t.readFailures = 0;
    } catch (err) {
      if (signal.aborted) return;
      t.readFailures++;
      if (t.readFailures === 1) log.info(`${t.label}: the log could not be read (${(err as Error).message}); trying again`);
      t.nextAtMs = clock() + retryDelayMs(t.readFailures, poll, Math.max(poll, config.maxRetryMs), random);
      return;
    }
    const { read, batch } = next;
    if (!batch.length) {
      await progress.movePastNothing(t, read);
      t.nextAtMs = clock() + poll;
      return;
    }
    const attempt = t.failures + 1;
    const failure = await post(t, batch, attempt);
    if (signal.aborted) return;
    const now = clock();
    const sent = new Set(batch.map((e) => e.shard));
    if (failure === null) {
      counts.delivered++;
      counts.events += batch.length;
      if (t.failures) log.info(`${t.label}: delivered again after ${t.failures} failed attempt(s)`);
      t.failures = 0;
      t.lastSuccessMs = now;
      progress.advance(t, next);
      await progress.persist(t, sent);
      // A full batch suggests more: go on at once; otherwise wait for new events.
      t.nextAtMs = read.events.length > batch.length || batch.length === t.target.maxBatch ? clock() : clock() + poll;
      return;
    }
    counts.failed++;
    t.failures++;
    t.lastError = { message: failure, atMs: now };
    const wait = retryDelayMs(t.failures, config.retryBaseMs, config.maxRetryMs, random);
    // The URL stays out of the log (it may carry a token); the target's name says which.
    if (t.failures === 1) log.warn(`${t.label}: delivery of ${batch.length} event(s) failed: ${failure}; retrying with backoff`);
    else log.debug(`${t.label}: attempt ${attempt} failed: ${failure}; next in ${wait} ms`);
    // The error is shown by status through any peer; positions stay where they were.
    await progress.persist(t, sent);
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
    refreshFailed: (err) => log.warn(`webhook targets could not be read: ${(err as Error).message}`),
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
    stats: () => ({ targets: live.size, inFlight: scheduler.inFlight(), ...counts }),
  };
}
