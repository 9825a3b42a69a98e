// The self-healing workers of one peer, started together: chunk repair/rebalance/handoff
// and shard anti-entropy share one pass (the ring is the same for both), scrub and GC
// run on their own timers. Each is a worker of bounded steps (worker.ts) whose state
// shows in `/cluster/status` under `workers`. Drain turns the peer into a pure sender.
import type { RepairConfig } from "../config.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import type { Rpc } from "../net/rpc.ts";
import type { ChunkClient } from "../objects/chunk-client.ts";
import type { Placement } from "../placement/placement.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { allShards } from "../metadata/keys.ts";
import { createChunkGc, type GcStats } from "./chunk-gc.ts";
import { createChunkRepair } from "./chunk-repair.ts";
import { createRateLimiter } from "./rate-limiter.ts";
import { createScrub, type ScrubStats } from "./scrub.ts";
import { createShardSync } from "./shard-sync.ts";
import { createWorker, type WorkerStatus } from "./worker.ts";

/** Longest wait between two looks for expired delete markers in a shard. */
const TOMBSTONE_SCAN_MAX_MS = 10 * 60_000;

/** Dependencies of the repair service. */
export interface RepairDeps {
  self: string;
  config: RepairConfig;
  indexShards: number;
  chunkStore: ChunkStore;
  indexStore: IndexStore;
  chunks: ChunkClient;
  index: IndexClient;
  placement: Placement;
  rpc: Rpc;
  isExpiredTombstone(ts: string): boolean;
  /** Other members that may hold index rows: all but those dead longer than the tombstone lifetime. */
  knownPeers(): string[];
  /** Other members GC asks: all but those removed or out of the live ring (chunk-gc.ts explains why that is safe). */
  gcPeers(): string[];
  /** Members out of the live ring (dead past the repair delay, not removed), with the wall-clock time each left it. */
  departedMembers(): Array<{ id: string; leftRingMs: number }>;
  /** Chunk ids of uploads in progress on this peer. */
  uploading(): Iterable<string>;
  log: Logger;
  signal: AbortSignal;
  /** Source of the workers' backoff jitter, in [0, 1). */
  random?: () => number;
  /** Told when a repair pass starts with work known to be waiting, and when a pass did work (the event feed). */
  onRepair?(event: "started" | "finished", detail: string): void;
}

/** The self-healing part of `/cluster/status`. */
export type RepairStatus = {
  underReplicated: { chunks: number; shards: number };
  repair: {
    queue: number;
    chunksRepaired: number;
    bytesRepaired: number;
    chunksHandedOff: number;
    rowsRepaired: number;
    rowsHandedOff: number;
    lastChunkPassMs: number;
    lastShardPassMs: number;
  };
  scrub: ScrubStats;
  gc: GcStats & { tombstonesDropped: number };
  /** Each background worker's state (idle, busy, throttled, error), steps, passes and last error. */
  workers: { repair: WorkerStatus; gc: WorkerStatus; scrub: WorkerStatus };
};

/** The running self-healing workers. */
export interface RepairService {
  start(): void;
  /** Run a repair pass now (after a ring change or a drain request). */
  wake(): void;
  /** `/cluster/status` figures. */
  status(): RepairStatus;
  /** True when this peer holds no chunks and no index rows (after a drain). */
  empty(): Promise<boolean>;
  /** Interrupt the workers' passes, withdraw GC's RPC method, and resolve once every worker loop has exited. */
  stop(): Promise<void>;
}

/** Create the repair service. */
export function createRepairService(deps: RepairDeps): RepairService {
  const { config, log, signal } = deps;
  const gc = createChunkGc({
    self: deps.self,
    chunkStore: deps.chunkStore,
    indexStore: deps.indexStore,
    rpc: deps.rpc,
    peersToAsk: deps.gcPeers,
    waitingFor: gcWaitingFor,
    graceMs: config.gcGraceMs,
    uploading: deps.uploading,
    log: log.child("gc"),
  });
  const repairLimiter = createRateLimiter(config.bytesPerSecond);
  const scrubLimiter = createRateLimiter(config.scrubBytesPerSecond);
  const chunkRepair = createChunkRepair({
    self: deps.self,
    store: deps.chunkStore,
    chunks: deps.chunks,
    placement: deps.placement,
    concurrency: config.concurrency,
    limiter: repairLimiter,
    collecting: gc.collecting,
    log: log.child("repair"),
  });
  const shardSync = createShardSync({
    self: deps.self,
    store: deps.indexStore,
    index: deps.index,
    placement: deps.placement,
    indexShards: deps.indexShards,
    isExpiredTombstone: deps.isExpiredTombstone,
    // Markers live for days: looking for expired ones a few times per lifetime is plenty.
    tombstoneScanEveryMs: Math.min(TOMBSTONE_SCAN_MAX_MS, deps.config.tombstoneTtlMs / 10),
    log: log.child("anti-entropy"),
  });
  const scrub = createScrub({ store: deps.chunkStore, chunks: deps.chunks, limiter: scrubLimiter, log: log.child("scrub") });

  /**
   * Why GC must still wait for members that left the ring (chunk-gc.ts): every acknowledged
   * manifest sits on W of its shard's voters, so while fewer than W voters of every object
   * shard have left, a member that has it is asked. Then a complete shard-sync pass since
   * the last departure puts the departed members' rows on their shards' new replicas.
   */
  function gcWaitingFor(): string | undefined {
    const departed = deps.departedMembers();
    if (!departed.length) return undefined;
    const gone = new Set(departed.map((d) => d.id));
    for (const shard of allShards(deps.indexShards)) {
      if (!shard.startsWith("o")) continue;
      const lost = deps.placement.shardVoters(shard).filter((v) => gone.has(v)).length;
      if (lost >= deps.placement.shardQuorum(shard)) return `index shard ${shard} lost ${lost} voters with members that left the ring: its manifests may live only on them (remove those members if they are gone for good)`;
    }
    const lastLeft = Math.max(...departed.map((d) => d.leftRingMs));
    if (lastLeft > shardSync.stats.lastCompletePassStartedMs) return "waiting for a complete shard repair pass since a member left the ring";
    return undefined;
  }

  /** Work counters of the repair worker: chunks repaired, bytes repaired, chunks handed off, rows repaired, rows handed off. */
  const repairWork = () => [chunkRepair.stats.chunksRepaired, chunkRepair.stats.bytesRepaired, chunkRepair.stats.handedOff, shardSync.stats.rowsRepaired, shardSync.stats.rowsHandedOff];
  let lastWaiting = "0/0";

  // Repair as an operator reads it in the log: one line when passes start finding work,
  // one when a pass finds nothing left, with what was done in between.
  const logTotals = () => ({
    chunks: chunkRepair.stats.chunksRepaired,
    bytes: chunkRepair.stats.bytesRepaired,
    rows: shardSync.stats.rowsRepaired,
    handedOff: chunkRepair.stats.handedOff + shardSync.stats.rowsHandedOff,
  });
  let repairing: { since: number; at: ReturnType<typeof logTotals> } | undefined;
  const noteRepairPass = (before: ReturnType<typeof logTotals>) => {
    const now = logTotals();
    const under = { chunks: chunkRepair.stats.underReplicated, shards: shardSync.stats.underReplicated };
    const worked = now.chunks > before.chunks || now.rows > before.rows || now.handedOff > before.handedOff;
    if (!repairing && (worked || under.chunks > 0 || under.shards > 0)) {
      repairing = { since: Date.now(), at: before };
      log.info(`repair started: ${under.chunks} chunk(s) and ${under.shards} index shard(s) under-replicated; this pass copied ${now.chunks - before.chunks} chunk(s) and ${now.rows - before.rows} index row(s)`);
    } else if (repairing && !worked && under.chunks === 0 && under.shards === 0) {
      const a = repairing.at;
      log.info(`repair done in ${((Date.now() - repairing.since) / 1000).toFixed(1)} s: ${now.chunks - a.chunks} chunk(s) (${now.bytes - a.bytes} bytes) and ${now.rows - a.rows} index row(s) copied, ${now.handedOff - a.handedOff} handed off; nothing under-replicated`);
      repairing = undefined;
    }
  };

  const workerOptions = (intervalMs: number) => ({ intervalMs, log, signal, random: deps.random });
  const repairWorker = createWorker(
    "repair",
    {
      async *pass(stop) {
        const before = repairWork();
        const logBefore = logTotals();
        const waiting = { chunks: chunkRepair.stats.underReplicated, shards: shardSync.stats.underReplicated };
        // A pass that finds the same backlog as the last one (a dead member's copies waiting
        // for its repair delay) is not news: the feed would fill with it.
        const waitingKey = `${waiting.chunks}/${waiting.shards}`;
        let reported = waiting.chunks + waiting.shards > 0 && waitingKey !== lastWaiting;
        lastWaiting = waitingKey;
        if (reported) deps.onRepair?.("started", `repair pass started: ${waiting.chunks} chunk(s) and ${waiting.shards} index shard(s) under-replicated`);
        for (const part of [shardSync.pass(stop), chunkRepair.pass(stop)]) {
          for await (const step of part) {
            // Work found without a known backlog (a handoff, a rebalance): the pass started now, as far as the feed tells.
            if (!reported && repairWork().some((n, i) => n > before[i])) {
              reported = true;
              deps.onRepair?.("started", "repair pass started: copies to move or restore");
            }
            yield step;
          }
        }
        const after = repairWork();
        const done = after.map((n, i) => n - before[i]);
        if (done.some((n) => n > 0)) {
          deps.onRepair?.("finished", `repair pass finished: ${done[0]} chunk(s) repaired (${done[1]} bytes), ${done[2]} handed off, ${done[3]} index row(s) repaired, ${done[4]} handed off`);
        } else if (reported) {
          deps.onRepair?.("finished", `repair pass finished: nothing could be repaired (${chunkRepair.stats.underReplicated} chunk(s) and ${shardSync.stats.underReplicated} shard(s) still under-replicated)`);
        }
        if (!stop.aborted) noteRepairPass(logBefore);
      },
      throttled: () => repairLimiter.waiting > 0,
    },
    workerOptions(config.scanIntervalMs),
  );
  const gcWorker = createWorker("gc", gc, workerOptions(config.gcIntervalMs));
  const scrubWorker = createWorker("scrub", { pass: scrub.pass, throttled: () => scrubLimiter.waiting > 0 }, workerOptions(config.scrubIntervalMs));
  const workers = [repairWorker, gcWorker, scrubWorker];

  // The ring also changes without a membership event (a dead peer leaves it when its repair
  // delay runs out): look once a second and start a pass at once when it moved.
  let ringKey = "";
  const watchRing = () => {
    const key = deps.placement.members().join(",");
    if (key !== ringKey) {
      ringKey = key;
      repairWorker.wake();
    }
  };

  let ringTimer: ReturnType<typeof setInterval> | undefined;
  const stopWatching = () => clearInterval(ringTimer);
  signal.addEventListener("abort", stopWatching, { once: true });

  return {
    start() {
      if (ringTimer || signal.aborted) return;
      gc.start();
      workers.forEach((w) => w.start());
      ringTimer = setInterval(watchRing, 1000);
    },
    wake: () => repairWorker.wake(),
    async stop() {
      stopWatching();
      gc.stop();
      await Promise.all(workers.map((w) => w.stop()));
    },
    async empty() {
      // The live counts answer "not yet" at once (a drain is polled, also over RPC with a
      // timeout); only an apparently empty store is confirmed by a scan of the folder.
      if (deps.indexStore.shards().length !== 0 || deps.chunkStore.counts().chunks !== 0) return false;
      return (await deps.chunkStore.stats()).chunks === 0;
    },
    status: () => ({
      underReplicated: { chunks: chunkRepair.stats.underReplicated, shards: shardSync.stats.underReplicated },
      repair: {
        queue: chunkRepair.stats.queue,
        chunksRepaired: chunkRepair.stats.chunksRepaired,
        bytesRepaired: chunkRepair.stats.bytesRepaired,
        chunksHandedOff: chunkRepair.stats.handedOff,
        rowsRepaired: shardSync.stats.rowsRepaired,
        rowsHandedOff: shardSync.stats.rowsHandedOff,
        lastChunkPassMs: chunkRepair.stats.lastPassMs,
        lastShardPassMs: shardSync.stats.lastPassMs,
      },
      scrub: { ...scrub.stats },
      gc: { ...gc.stats, tombstonesDropped: shardSync.stats.tombstonesDropped },
      workers: { repair: repairWorker.status(), gc: gcWorker.status(), scrub: scrubWorker.status() },
    }),
  };
}
