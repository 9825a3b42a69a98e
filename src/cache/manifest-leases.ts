// The replica side of manifest caching: read leases on object rows (issue 15, item 4).
//
// A peer may keep an object's manifest in memory (src/cache/manifest-cache.ts) only while
// it holds a lease on that row from a quorum of the row's replicas. A replica records the
// lease BEFORE it reads the row for the holder, and before it acknowledges any write of
// that row it makes every holder it granted forget the row (`cache.revoke`), or, for a
// holder it cannot reach, waits out the lease. So:
//   - a write acknowledged before a lease was granted is on W replicas, one of which is in
//     the granting quorum: the holder read it (or something newer);
//   - a write acknowledged after is on a replica of the granting quorum, which revoked the
//     holder's lease (or saw it run out) before acknowledging.
// Either way, once a write is acknowledged, no peer serves what it replaced from cache.
// The holder counts its lease from before it asked, the replica from when it granted, so
// the holder's copy always expires first (clocks need only run at the same rate).
//
// A replica that crashed forgets whom it granted. It remembers on disk, in one small file
// rewritten at most every HORIZON_STEP_MS while it grants, a time by which every lease it
// granted has run out; restarted, it holds back write acknowledgements of object rows
// until that time (at most one lease length after it starts). A fresh replica waits for nothing.
import path from "node:path";
import { Type } from "@sinclair/typebox";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { Logger } from "../util/log.ts";
import { openHorizon, type Horizon } from "../util/horizon-file.ts";
import { sleep } from "../util/sleep.ts";

/** How long a lease lasts, counted by the replica from its grant. */
export const LEASE_MS = 3000;
/** Most rows under lease on one replica; past it, leases are refused (the holder then does not cache). */
export const MAX_LEASED_ROWS = 100_000;
/** The horizon file is rewritten only when a grant would outlive it, then pushed this far ahead. */
const HORIZON_STEP_MS = 30_000;
/** File under the data folder holding that horizon (wall-clock ms). */
export const HORIZON_FILE = "lease-horizon";

/**
 * Sent by a replica before it acknowledges a write of a row stamped `ts`: the holder forgets
 * what it holds of the row unless that is at least as new, and answers whether it kept it
 * (then the lease stands, so a later write revokes it again).
 */
export const RevokeMethod = defineMethod("cache.revoke", {
  params: Type.Object(
    { shard: Type.String({ pattern: "^o[0-9]{1,4}$" }), row: Type.String({ maxLength: 2048 }), ts: Type.String({ maxLength: 160, pattern: "^[0-9]{13}-[0-9a-f]{6}-." }) },
    { additionalProperties: false },
  ),
  result: Type.Boolean(),
});

/** May rows of this shard be leased? Object manifests only: other rows have their own caches. */
export const leasable = (shard: string): boolean => /^o[0-9]{1,4}$/.test(shard);

/** The leases one replica has granted. */
export interface LeaseTable {
  /** Record a lease of (shard, row) for `holder`; call before reading the row for it. False: refused, the holder must not cache. */
  grant(holder: string, shard: string, row: string): Promise<boolean>;
  /**
   * Before acknowledging a write of (shard, row) stamped `ts`: no holder still holds anything
   * older, or its lease has run out. Undefined when there is nothing to wait for (most writes).
   */
  revoke(shard: string, row: string, ts: string): Promise<void> | undefined;
  /** Rows under lease now (expired ones may count until swept). */
  readonly size: number;
  /** Read the horizon an earlier run left (before serving). */
  start(): Promise<void>;
  /** End waits under way (their writes fail rather than being acknowledged). */
  stop(): void;
}

/** What a lease table needs. */
export interface LeaseTableDeps {
  self: string;
  rpc: Pick<Rpc, "call">;
  /** The data folder (the horizon file lives there). */
  dir: string;
  /** The same as `cache.revoke`, in this peer's own manifest cache: true if it kept what it holds. */
  dropLocal(shard: string, row: string, ts: string): boolean;
  log: Logger;
  leaseMs?: number;
  maxRows?: number;
  /** Monotonic ms (lease ends). */
  monotonic?: () => number;
  /** Wall-clock ms (the horizon, which must survive a restart). */
  wall?: () => number;
}

/** The lease table of one replica. */
export function createLeaseTable(deps: LeaseTableDeps): LeaseTable {
  const leaseMs = deps.leaseMs ?? LEASE_MS;
  const maxRows = deps.maxRows ?? MAX_LEASED_ROWS;
  const mono = deps.monotonic ?? (() => performance.now());
  const wall = deps.wall ?? Date.now;
  const file = path.join(deps.dir, HORIZON_FILE);
  const stopping = new AbortController();
  // (shard, row) -> holder -> monotonic end of its lease.
  const leases = new Map<string, Map<string, number>>();
  // Revocations under way per row: a later write of the row waits for them too.
  const revoking = new Map<string, Promise<void>>();
  let horizon: Horizon | undefined;
  let graceUntil = 0;
  let lastSweep = 0;

  const rowKey = (shard: string, row: string) => `${shard}\n${row}`;

  function sweep(): void {
    const now = mono();
    if (now - lastSweep < 1000) return;
    lastSweep = now;
    for (const [k, holders] of leases) {
      for (const [h, end] of holders) if (end <= now) holders.delete(h);
      if (holders.size === 0) leases.delete(k);
    }
  }

  /** A lease that stands after a revoke (the holder kept a copy as new as the write). */
  function keep(k: string, holder: string, end: number): void {
    if (end <= mono()) return;
    let holders = leases.get(k);
    if (!holders) leases.set(k, (holders = new Map()));
    holders.set(holder, Math.max(end, holders.get(holder) ?? 0));
  }

  /** Tell one holder about the write; if it cannot be told, wait until its lease has run out. */
  async function tell(holder: string, shard: string, row: string, ts: string, end: number): Promise<void> {
    const k = rowKey(shard, row);
    if (holder === deps.self) {
      if (deps.dropLocal(shard, row, ts)) keep(k, holder, end);
      return;
    }
    const left = end - mono();
    if (left <= 0) return;
    const kept = await deps.rpc
      .call(holder, RevokeMethod, { shard, row, ts }, { timeoutMs: Math.ceil(left), lane: "control", signal: stopping.signal })
      .then((r) => r.result, () => undefined);
    if (kept !== undefined) {
      if (kept) keep(k, holder, end);
      return;
    }
    const still = end - mono();
    if (still > 0) await sleep(still, stopping.signal);
  }

  async function revokeHeld(shard: string, row: string, ts: string): Promise<void> {
    const wait = graceUntil - wall();
    if (wait > 0) await sleep(wait, stopping.signal);
    const k = rowKey(shard, row);
    const holders = leases.get(k);
    leases.delete(k);
    const prior = revoking.get(k);
    if (!holders?.size && !prior) return;
    const done = Promise.all([prior, ...[...(holders ?? [])].map(([h, end]) => tell(h, shard, row, ts, end))]).then(() => {});
    revoking.set(k, done);
    try {
      await done;
    } finally {
      if (revoking.get(k) === done) revoking.delete(k);
    }
    if (stopping.signal.aborted) throw new Error("peer stopping: the write is not acknowledged here");
  }

  return {
    async grant(holder, shard, row) {
      if (!leasable(shard) || stopping.signal.aborted) return false;
      const k = rowKey(shard, row);
      let holders = leases.get(k);
      if (!holders) {
        if (leases.size >= maxRows) sweep();
        if (leases.size >= maxRows) return false;
        holders = new Map();
        leases.set(k, holders);
      }
      // Recorded before the disk wait and the row's read: a write landing meanwhile revokes it.
      holders.set(holder, mono() + leaseMs);
      if (!horizon) return false;
      await horizon.cover(wall() + leaseMs);
      return true;
    },

    revoke(shard, row, ts) {
      if (!leasable(shard)) return undefined;
      // Most writes: no lease on the row, no revoke under way, no restart grace to wait out.
      if (graceUntil <= wall() && !leases.has(rowKey(shard, row)) && !revoking.has(rowKey(shard, row))) return undefined;
      return revokeHeld(shard, row, ts);
    },

    get size() {
      return leases.size;
    },

    async start() {
      horizon = await openHorizon(file, HORIZON_STEP_MS);
      if (!horizon.earlier) return;
      // Every lease an earlier run granted ends by its horizon, and by one lease after that run ended.
      graceUntil = Math.min(horizon.earlier, wall() + leaseMs);
      if (graceUntil > wall()) deps.log.info(`holding back write acknowledgements of object rows for ${graceUntil - wall()} ms: leases granted before the restart may still run`);
    },

    stop: () => stopping.abort(),
  };
}
