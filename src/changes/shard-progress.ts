// Where a consumer of a bucket's change log stands, shard by shard, on this peer: the part
// webhook delivery (delivery.ts) and write-through (src/remotes/write-through.ts) share.
//
// A consumer (a webhook target, a write-through bucket) is served shard by shard: this peer
// takes the shards whose first replica it believes alive is itself, and reads each one's
// replicated progress row (quorum reads and writes) when it takes it up. A position is such
// that every matching event of the shard at or below it has been handled; it only moves to
// an event this peer handled, or to where a read of the log showed nothing further (a read's
// `reached` is gap-free by the log gate). Rows are written after handled batches and, for
// positions moved past nothing, now and then: a peer taking over starts at the row, so what
// was handled after the last write is handled again (at least once), and nothing is skipped.
import type { IndexClient } from "../metadata/index-client.ts";
import type { Placement } from "../placement/placement.ts";
import type { Logger } from "../util/log.ts";
import { mapLimit } from "../util/map-limit.ts";
import type { ChangeLog, ShardsRead } from "./log.ts";
import type { EventFilter } from "./records.ts";
import { progressOf, startPosition, type DeliveryProgress } from "./targets.ts";

/** Shards whose progress rows are read at once when this peer takes them up. */
const PROGRESS_READS = 8;
/** How often positions moved past events the consumer did not want are written (handled batches are written at once). */
const IDLE_FLUSH_MS = 30_000;

/** Where one shard stands for one consumer on this peer. */
interface ShardState {
  position: string;
  /** The position last written to the shard's progress row (or read from it). */
  persisted: string;
}

/** One consumer's place in its bucket's log on this peer. */
export interface ConsumerProgress {
  bucket: string;
  /** Its name in log lines. */
  label: string;
  /** Its progress row in each shard. */
  row: string;
  /** When it began: where a shard without a (matching) progress row starts. */
  since: number;
  /** The shards this peer serves it, with their positions once their rows are read. */
  shards: Map<string, ShardState>;
  lastSuccessMs: number;
  lastError?: { message: string; atMs: number };
  flushedAtMs: number;
}

/** A read of the log cut to one batch. */
export interface NextBatch {
  read: ShardsRead;
  /** The first events of `read` in id order, at most `maxBatch`. */
  batch: ShardsRead["events"];
}

/** What shard progress reads and writes. */
export interface ShardProgressDeps {
  self: string;
  index: Pick<IndexClient, "read" | "write">;
  changes: Pick<ChangeLog, "shards" | "readShards">;
  placement: Pick<Placement, "shardReplicas">;
  /** Does this peer believe `peer` alive (itself always)? */
  isAlive(peer: string): boolean;
  /** A fresh HLC stamp for a row this peer writes. */
  stamp(): string;
  log: Logger;
  signal: AbortSignal;
  clock: () => number;
}

/** The shared steps of a log consumer. */
export interface ShardProgress {
  /** A consumer's state, serving no shard yet. */
  fresh(bucket: string, label: string, row: string, since: number): ConsumerProgress;
  /** Keep `c.shards` to the shards this peer serves, reading the rows of those it takes up. */
  takeUp(c: ConsumerProgress): Promise<void>;
  /** The next batch: at most `maxBatch` events after the positions, in id order (throws when the log cannot be read). */
  nextBatch(c: ConsumerProgress, maxBatch: number, filter: EventFilter): Promise<NextBatch>;
  /** After an empty batch: move past what the read covered; written now and then, not at every poll. */
  movePastNothing(c: ConsumerProgress, read: ShardsRead): Promise<void>;
  /**
   * After a batch was handled but for `failed` events: each shard moves to just before its
   * first failed event, or, with none, as far as the batch (a shard with events left out) or
   * the read went. Returns the shards that moved.
   */
  advance(c: ConsumerProgress, next: NextBatch, failed?: Iterable<{ shard: string; id: string }>): Set<string>;
  /** Write the progress rows of `shards` (their positions here, the last success and error). */
  persist(c: ConsumerProgress, shards: Iterable<string>): Promise<void>;
}

/** Create the shared steps of this peer's log consumers. */
export function createShardProgress(deps: ShardProgressDeps): ShardProgress {
  const { self, log, signal, clock } = deps;

  /** The shards this peer serves now: those whose first replica it believes alive is itself. */
  function ownedShards(): string[] {
    return deps.changes.shards().filter((s) => deps.placement.shardReplicas(s).find((p) => p === self || deps.isAlive(p)) === self);
  }

  async function persist(c: ConsumerProgress, shards: Iterable<string>): Promise<void> {
    await Promise.all(
      [...shards].map(async (shard) => {
        const st = c.shards.get(shard);
        if (!st) return;
        const position = st.position;
        const value: DeliveryProgress = { position, since: c.since, lastSuccessMs: c.lastSuccessMs, ...(c.lastError && { lastError: c.lastError }) };
        try {
          await deps.index.write(shard, c.row, { ts: deps.stamp(), value }, { signal });
          if (st.persisted < position) st.persisted = position;
        } catch (err) {
          // Written again later; a peer taking over meanwhile handles some events twice.
          log.debug(`${c.label}: progress in shard ${shard} not written: ${(err as Error).message}`);
        }
      }),
    );
  }

  return {
    fresh: (bucket, label, row, since) => ({ bucket, label, row, since, shards: new Map(), lastSuccessMs: 0, flushedAtMs: clock() }),

    async takeUp(c) {
      const owned = ownedShards();
      const wanted = new Set(owned);
      for (const s of c.shards.keys()) if (!wanted.has(s)) c.shards.delete(s);
      await mapLimit(
        owned.filter((s) => !c.shards.has(s)),
        PROGRESS_READS,
        async (shard) => {
          let p: DeliveryProgress | null;
          try {
            p = progressOf((await deps.index.read(shard, c.row, { signal }))?.value, c.since);
          } catch (err) {
            // Not this time (no quorum): the shard waits for a later step rather than start from the beginning.
            log.debug(`${c.label}: progress in shard ${shard} unreadable: ${(err as Error).message}`);
            return;
          }
          const position = p?.position ?? startPosition(c.since);
          c.shards.set(shard, { position, persisted: position });
          if (p && p.lastSuccessMs > c.lastSuccessMs) c.lastSuccessMs = p.lastSuccessMs;
          if (p?.lastError && p.lastError.atMs > (c.lastError?.atMs ?? 0)) c.lastError = p.lastError;
        },
      );
    },

    async nextBatch(c, maxBatch, filter) {
      // Each shard reads a share of a batch (so a step holds about two batches of events,
      // however many shards this peer serves); the batch then stops where a shard that read
      // its whole share stopped, so batches follow id order as the log's cursor reads do.
      const share = Math.min(maxBatch, Math.max(2, Math.ceil((2 * maxBatch) / c.shards.size)));
      const read = await deps.changes.readShards(c.bucket, new Map([...c.shards].map(([s, st]) => [s, st.position])), { limit: share, filter });
      const perShard = new Map<string, number>();
      for (const e of read.events) perShard.set(e.shard, (perShard.get(e.shard) ?? 0) + 1);
      let upTo: string | undefined;
      for (const [shard, n] of perShard) if (n >= share && (upTo === undefined || read.reached.get(shard)! < upTo)) upTo = read.reached.get(shard)!;
      const batch = (upTo === undefined ? read.events : read.events.filter((e) => e.id <= upTo)).slice(0, maxBatch);
      return { read, batch };
    },

    async movePastNothing(c, read) {
      for (const [shard, to] of read.reached) {
        const st = c.shards.get(shard);
        if (st && to > st.position) st.position = to;
      }
      const now = clock();
      if (now - c.flushedAtMs < IDLE_FLUSH_MS) return;
      c.flushedAtMs = now;
      await persist(c, [...c.shards].filter(([, st]) => st.position > st.persisted).map(([s]) => s));
    },

    advance(c, { read, batch }, failed = []) {
      const firstFailed = new Map<string, string>();
      for (const f of failed) if (!firstFailed.has(f.shard) || f.id < firstFailed.get(f.shard)!) firstFailed.set(f.shard, f.id);
      const leftOut = new Set(read.events.slice(batch.length).map((e) => e.shard));
      const moved = new Set<string>();
      for (const [shard, st] of c.shards) {
        const stop = firstFailed.get(shard);
        let to: string | undefined;
        if (stop !== undefined || leftOut.has(shard)) {
          for (const e of batch) if (e.shard === shard && (stop === undefined || e.id < stop) && (to === undefined || e.id > to)) to = e.id;
        } else to = read.reached.get(shard);
        if (to !== undefined && to > st.position) {
          st.position = to;
          moved.add(shard);
        }
      }
      return moved;
    },

    persist,
  };
}
