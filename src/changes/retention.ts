// Retention of the change event log: events leave it when they are older than the
// retention age, or when their shard holds more than its share (the oldest go first).
//
// Every replica applies the same rule to its own rows and drops them locally (no delete
// markers: a marker per event would cost as much as the event). A row one replica has
// dropped and another still holds does not come back through anti-entropy: the index
// client asks `expired` before it merges a carried row, and that answers for both the
// age and the point where a count trim last cut the shard here.
//
// A shard's event rows are "\x01e<bucket>\0<id>", so each bucket's events are in time
// order but the shard's are not. The age rule therefore walks each bucket from its oldest
// event and skips to the next bucket at the first one young enough: a pass costs the
// dropped rows and a short probe per bucket, not a walk of the log. The count rule needs
// the shard's oldest events across buckets: the store keeps a count of event rows per
// shard (MergeRules.tallied), and only a shard over its limit is walked, building a
// histogram of event times in fixed slots (bounded memory whatever the log holds), then
// again inside the slot where the cut falls, down to the millisecond; the last walk drops
// what lies below the cut, and the oldest of the events stamped in the cut's millisecond.
// Every walk and drop goes a page of rows per step.
import { ALL_EVENTS_PREFIX, eventBucketOf, eventIdOf, isEventRow } from "../metadata/keys.ts";
import type { IndexEntry } from "../store/index-entry.ts";
import type { IndexStore, ScanRow } from "../store/index-store.ts";
import { MAX_CLOCK_DRIFT_MS } from "../util/hlc.ts";
import type { Logger } from "../util/log.ts";
import { positionAt } from "./gate.ts";
import { eventTimeMs } from "./records.ts";
import type { WorkerStatus } from "../repair/worker.ts";

/** Most rows one step reads (and drops). */
export const STEP_ROWS = 1000;
/** Rows the age rule first reads of each bucket: most buckets have nothing to drop. */
const PROBE_ROWS = 16;
/** Slots of the histogram a count trim builds per walk (a Uint32Array: 256 KiB). */
export const SLOTS = 65_536;
/** Most events stamped in the cut's millisecond that a count trim sorts to find the oldest. */
const MAX_TIED = 10_000;

/** Figures for `/cluster/status` (`workers.eventRetention`). */
export interface RetentionStats {
  retentionMs: number;
  maxPerShard: number;
  /** Wall-clock time the last complete pass ended (0: none yet). */
  lastPassAtMs: number;
  /** Events this peer dropped since start for their age. */
  droppedForAge: number;
  /** Events this peer dropped since start because their shard held more than maxPerShard. */
  droppedForCount: number;
}

/** `workers.eventRetention` in `/cluster/status`: the figures and the worker's state. */
export type RetentionStatus = RetentionStats & Partial<WorkerStatus>;

/** What retention works on. */
export interface RetentionDeps {
  /** The local index store, opened with `tallied: isEventRow` (its counts trigger count trims). */
  store: Pick<IndexStore, "shards" | "scan" | "drop" | "tallied">;
  retentionMs: number;
  maxPerShard: number;
  log?: Logger;
  /** Wall clock (tests inject one). */
  clock?: () => number;
}

/** The retention job (a worker's pass), its figures, and the rule anti-entropy asks. */
export interface Retention {
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: RetentionStats;
  /** Has this row left the log here (an event older than the retention, or at or below where a count trim cut its shard)? */
  expired(shard: string, row: string, entry: IndexEntry): boolean;
}

/** Where a count trim cuts: every event before `beforeMs` goes, and the `tied` oldest stamped at exactly `beforeMs`. */
interface Cut {
  beforeMs: number;
  tied: number;
}


/** Create the retention job. */
export function createRetention(deps: RetentionDeps): Retention {
  const { store } = deps;
  const clock = deps.clock ?? Date.now;
  const stats: RetentionStats = { retentionMs: deps.retentionMs, maxPerShard: deps.maxPerShard, lastPassAtMs: 0, droppedForAge: 0, droppedForCount: 0 };
  /** Per shard: no event at or below this id is kept here any more (the last count trim's cut). */
  const floors = new Map<string, string>();

  const drop = (shard: string, rows: ScanRow[]) => store.drop(shard, rows.map(([row, e]) => [row, e.ts]));

  /** Drop the events of `shard` below `cut` (a position), bucket by bucket, from each one's oldest. */
  async function* dropOlder(shard: string, cut: string, signal: AbortSignal): AsyncGenerator<void> {
    let after: string | undefined;
    let limit = PROBE_ROWS;
    for (;;) {
      signal.throwIfAborted();
      const rows = await store.scan(shard, { prefix: ALL_EVENTS_PREFIX, after, limit });
      if (!rows.length) return;
      const old: ScanRow[] = [];
      /** A bucket whose remaining events are young enough: the rest of its rows are skipped. */
      let done: string | undefined;
      let skipped = false;
      for (const r of rows) {
        const bucket = eventBucketOf(r[0]);
        if (bucket === done) continue;
        if (eventIdOf(r[0]) < cut) old.push(r);
        else (done = bucket), (skipped = true);
      }
      if (old.length) {
        await drop(shard, old);
        stats.droppedForAge += old.length;
      }
      if (rows.length < limit) return;
      const last = rows[rows.length - 1][0];
      // Past every row of a finished bucket ("\x01" sorts after its "\0" and before any next name's character).
      after = eventBucketOf(last) === done ? `${done}\x01` : last;
      // Probe the next buckets briefly; read on in larger pages while everything read is old.
      limit = skipped ? PROBE_ROWS : Math.min(STEP_ROWS, limit * 4);
      yield;
    }
  }

  /** Walk every event row of `shard`, a page per step; rows `visit` returns true for are dropped (counted as count drops). */
  async function* walk(shard: string, signal: AbortSignal, visit: (row: ScanRow, ms: number) => boolean): AsyncGenerator<void> {
    let after: string | undefined;
    for (;;) {
      signal.throwIfAborted();
      const rows = await store.scan(shard, { prefix: ALL_EVENTS_PREFIX, after, limit: STEP_ROWS });
      const gone = rows.filter((r) => visit(r, eventTimeMs(eventIdOf(r[0]))));
      if (gone.length) {
        await drop(shard, gone);
        stats.droppedForCount += gone.length;
      }
      yield;
      if (rows.length < STEP_ROWS) return;
      after = rows[rows.length - 1][0];
    }
  }

  /**
   * Find where to cut `shard` so it keeps maxPerShard events: histogram walks, each in a
   * finer range, until the cut falls on a slot's end or on one millisecond. Undefined if
   * the shard is (no longer) over its limit.
   */
  async function* findCut(shard: string, signal: AbortSignal): AsyncGenerator<void, Cut | undefined> {
    const hist = new Uint32Array(SLOTS);
    // First range: from the retention age (older events are gone, or go in this pass anyway) to past the latest admissible stamp.
    let lo = clock() - deps.retentionMs;
    let width = Math.max(1, Math.ceil((deps.retentionMs + MAX_CLOCK_DRIFT_MS) / SLOTS));
    for (;;) {
      hist.fill(0);
      let below = 0;
      let total = 0;
      yield* walk(shard, signal, (_, ms) => {
        total++;
        if (ms < lo) below++;
        else if (ms - lo < SLOTS * width) hist[Math.floor((ms - lo) / width)]++;
        return false;
      });
      const excess = total - deps.maxPerShard;
      if (excess <= 0) return undefined;
      if (below >= excess) return { beforeMs: lo, tied: 0 };
      let before = below;
      let slot = 0;
      while (slot < SLOTS && before + hist[slot] < excess) before += hist[slot++];
      // Only events newer than the whole range could make up the excess: cut at its end.
      if (slot === SLOTS) return { beforeMs: lo + SLOTS * width, tied: 0 };
      const start = lo + slot * width;
      if (before + hist[slot] === excess) return { beforeMs: start + width, tied: 0 };
      if (width === 1) return { beforeMs: start, tied: excess - before };
      lo = start;
      width = Math.ceil(width / SLOTS);
    }
  }

  /** Bring `shard` down to maxPerShard events, the oldest going first. */
  async function* trim(shard: string, signal: AbortSignal): AsyncGenerator<void> {
    const cut = yield* findCut(shard, signal);
    if (!cut) return;
    // Raised before the rows go, so that anti-entropy cannot slip one back in between.
    raiseFloor(shard, positionAt(cut.beforeMs));
    const tied: ScanRow[] = [];
    let overflow = false;
    yield* walk(shard, signal, (r, ms) => {
      if (ms === cut.beforeMs && cut.tied) {
        if (tied.length < MAX_TIED) tied.push(r);
        else overflow = true;
      }
      return ms < cut.beforeMs;
    });
    if (cut.tied && overflow) {
      // More events in one millisecond than are worth sorting: keep them, a few over the limit, until the next cut passes them.
      deps.log?.debug(`event retention: more than ${MAX_TIED} events of ${shard} stamped at ${cut.beforeMs}; kept ${cut.tied} of them over the limit`);
    } else if (cut.tied) {
      tied.sort((a, b) => (eventIdOf(a[0]) < eventIdOf(b[0]) ? -1 : 1));
      const oldest = tied.slice(0, cut.tied);
      if (oldest.length) raiseFloor(shard, eventIdOf(oldest[oldest.length - 1][0]));
      for (let i = 0; i < oldest.length; i += STEP_ROWS) {
        signal.throwIfAborted();
        await drop(shard, oldest.slice(i, i + STEP_ROWS));
        yield;
      }
      stats.droppedForCount += oldest.length;
    }
  }

  function raiseFloor(shard: string, floor: string): void {
    const had = floors.get(shard);
    if (had === undefined || floor > had) floors.set(shard, floor);
  }

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    const ageCut = positionAt(clock() - deps.retentionMs);
    for (const shard of store.shards().sort()) {
      if (!store.tallied(shard)) continue;
      yield* dropOlder(shard, ageCut, signal);
      if (store.tallied(shard) > deps.maxPerShard) yield* trim(shard, signal);
    }
    stats.lastPassAtMs = clock();
  }

  return {
    pass,
    stats,
    expired(shard, row, entry) {
      if (!isEventRow(row)) return false;
      if (clock() - eventTimeMs(entry.ts) > deps.retentionMs) return true;
      const floor = floors.get(shard);
      return floor !== undefined && entry.ts <= floor;
    },
  };
}
