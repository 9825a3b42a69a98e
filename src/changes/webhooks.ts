// A bucket's webhook targets as the native API serves them: set (PUT), shown without
// secrets (GET), removed (DELETE), and their delivery status through any peer. The targets
// are one row of BUCKETS_SHARD (notificationsRow), written and read with quorums; delivery
// itself is src/changes/delivery.ts. Status reads each target's progress rows (one per
// shard, written by whichever peer delivers that shard) and counts, through the log, the
// matching events past them.
import type { AbortOptions } from "@libp2p/interface";
import type { SecretSealer } from "../auth/sealed-secret.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { BUCKETS_SHARD, deliveryRow, notificationsRow } from "../metadata/keys.ts";
import { mapLimit } from "../util/map-limit.ts";
import type { ChangeLog } from "./log.ts";
import { eventTimeMs } from "./records.ts";
import { filterOfTarget, progressOf, shownTarget, startPosition, storedTargets, storeTargets, validateTargets, type NotificationsValue, type ShownTarget, type StoredTarget } from "./targets.ts";

/** Status counts pending events up to this many per target (beyond, `lagCapped`). */
export const LAG_CAP = 1000;
/** Progress rows read at once for a status. */
const STATUS_READS = 16;

/** A target's delivery as status shows it. */
export interface TargetStatus {
  id: string;
  /** Matching events not yet acknowledged by the target (counted up to LAG_CAP; events younger than the log's settle time are not counted yet). */
  lag: number;
  /** True when there may be more pending events than `lag` says. */
  lagCapped: boolean;
  /** Event time (ms since the epoch) of the oldest pending event, when there is one. */
  oldestPendingMs?: number;
  /** When the target last acknowledged a delivery (null: never yet). */
  lastSuccessMs: number | null;
  /** The latest failed delivery, kept after recovery (null: none). */
  lastError: { message: string; atMs: number } | null;
  /** Is the latest attempt a failure (lastError newer than lastSuccessMs)? */
  failing: boolean;
}

/** The webhook targets of buckets, as the native API uses them. */
export interface Notifications {
  get(bucket: string, opts?: AbortOptions): Promise<{ targets: ShownTarget[] }>;
  /** Replace the bucket's targets with those of `raw` ({"targets": [...]}), checked; a target that keeps its id keeps its place in the log. */
  put(bucket: string, raw: unknown, opts?: AbortOptions): Promise<{ targets: ShownTarget[] }>;
  remove(bucket: string, opts?: AbortOptions): Promise<void>;
  status(bucket: string, opts?: AbortOptions): Promise<{ targets: TargetStatus[] }>;
}

/** What the notifications service reads and writes. */
export interface NotificationsDeps {
  index: Pick<IndexClient, "read" | "write">;
  changes: Pick<ChangeLog, "shards" | "readShards">;
  sealer: SecretSealer;
  /** Throw NoSuchBucket unless the bucket exists. */
  requireBucket(bucket: string, opts?: AbortOptions): Promise<void>;
  /** A fresh HLC stamp for a row written. */
  stamp(): string;
  /** The targets changed through this peer (its delivery reads them again now). */
  changed?(): void;
  clock?: () => number;
}

/** Create the notifications service of one peer. */
export function createNotifications(deps: NotificationsDeps): Notifications {
  const { index } = deps;
  const clock = deps.clock ?? Date.now;

  async function stored(bucket: string, opts?: AbortOptions): Promise<StoredTarget[]> {
    return storedTargets((await index.read(BUCKETS_SHARD, notificationsRow(bucket), opts))?.value);
  }

  /** One target's status: its progress in every shard, then the matching events past it. */
  async function statusOf(bucket: string, t: StoredTarget, opts?: AbortOptions): Promise<TargetStatus> {
    const shards = deps.changes.shards();
    let lastSuccessMs = 0;
    let lastError: TargetStatus["lastError"] = null;
    const positions = new Map<string, string>();
    await mapLimit(shards, STATUS_READS, async (shard) => {
      const p = progressOf((await index.read(shard, deliveryRow(bucket, t.id), opts))?.value, t.createdMs);
      positions.set(shard, p?.position ?? startPosition(t.createdMs));
      if (p && p.lastSuccessMs > lastSuccessMs) lastSuccessMs = p.lastSuccessMs;
      if (p?.lastError && p.lastError.atMs > (lastError?.atMs ?? 0)) lastError = p.lastError;
    });
    // Each shard sends a share of the cap; a shard that fills its share may hold more.
    const perShard = Math.min(LAG_CAP, Math.max(20, Math.ceil((2 * LAG_CAP) / shards.length)));
    const read = await deps.changes.readShards(bucket, positions, { limit: perShard, filter: filterOfTarget(t) });
    const perShardCount = new Map<string, number>();
    for (const e of read.events) perShardCount.set(e.shard, (perShardCount.get(e.shard) ?? 0) + 1);
    const lagCapped = read.events.length > LAG_CAP || [...perShardCount.values()].some((n) => n >= perShard);
    const failing = lastError !== null && (lastError as { atMs: number }).atMs > lastSuccessMs;
    return {
      id: t.id,
      lag: Math.min(LAG_CAP, read.events.length),
      lagCapped,
      ...(read.events.length && { oldestPendingMs: eventTimeMs(read.events[0].id) }),
      lastSuccessMs: lastSuccessMs || null,
      lastError,
      failing,
    };
  }

  return {
    async get(bucket, opts) {
      await deps.requireBucket(bucket, opts);
      return { targets: (await stored(bucket, opts)).map(shownTarget) };
    },
    async put(bucket, raw, opts) {
      await deps.requireBucket(bucket, opts);
      const targets = validateTargets(raw);
      const previous: NotificationsValue = { targets: await stored(bucket, opts) };
      const value = storeTargets(bucket, targets, previous, clock(), deps.sealer);
      await index.write(BUCKETS_SHARD, notificationsRow(bucket), { ts: deps.stamp(), value: value.targets.length ? value : null }, opts);
      deps.changed?.();
      return { targets: value.targets.map(shownTarget) };
    },
    async remove(bucket, opts) {
      await deps.requireBucket(bucket, opts);
      await index.write(BUCKETS_SHARD, notificationsRow(bucket), { ts: deps.stamp(), value: null }, opts);
      deps.changed?.();
    },
    async status(bucket, opts) {
      await deps.requireBucket(bucket, opts);
      const targets = await stored(bucket, opts);
      return { targets: await mapLimit(targets, 2, (t) => statusOf(bucket, t, opts)) };
    },
  };
}
