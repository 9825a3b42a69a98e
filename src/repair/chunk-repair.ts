// Chunk repair, rebalance and handoff. Each pass, a peer checks every chunk it holds
// against the ring: it asks the chunk's owners whether they hold it, and
// - if it is the first owner (in ring order) holding the chunk, it pushes the chunk to
//   owners that lack it (repair after a failure, rebalance after a join);
// - if it is not an owner, it pushes to the owners when none holds it, and deletes its
//   own copy only once every owner has confirmed holding a verified copy (handoff).
// A pass goes through the local chunks one batch at a time (one step): a step asks each
// owner once about the batch and does the batch's transfers, so its work and memory do
// not grow with the store. Transfers are bounded in concurrency and rate.
import type { ChunkClient } from "../objects/chunk-client.ts";
import type { Placement } from "../placement/placement.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { Logger } from "../util/log.ts";
import { mapLimit } from "../util/map-limit.ts";
import { untilAborted } from "./abortable.ts";
import { inBatches } from "./batches.ts";
import type { RateLimiter } from "./rate-limiter.ts";

/** Counters shown in /cluster/status. */
export interface ChunkRepairStats {
  /** Chunks this peer is responsible for that lack an owner (after the last pass). */
  underReplicated: number;
  /** Transfers waiting in the current step. */
  queue: number;
  chunksRepaired: number;
  bytesRepaired: number;
  handedOff: number;
  lastPassMs: number;
}

/** Dependencies of chunk repair. */
export interface ChunkRepairDeps {
  self: string;
  store: Pick<ChunkStore, "list" | "get" | "delete">;
  chunks: Pick<ChunkClient, "has" | "ownedBy" | "putTo">;
  placement: Pick<Placement, "chunkOwners" | "rf">;
  concurrency: number;
  limiter: RateLimiter;
  /** Chunks GC is waiting to collect: never spread again (an owner may have collected its copy already). */
  collecting(id: string): boolean;
  log: Logger;
}

/** Chunk repair as a job of bounded steps. */
export interface ChunkRepair {
  /** One pass over the local chunks; each step is one batch of at most STEP_IDS ids. */
  pass(signal: AbortSignal): AsyncGenerator<void>;
  stats: ChunkRepairStats;
}

/** Local chunk ids per step: one `has` call per owner (chunk-client's limit is 5,000 ids per call). */
export const STEP_IDS = 1000;

/** `map.get(key)`, created empty on first use (appending stays O(1), unlike copying the list). */
function listFor<K, V>(map: Map<K, V[]>, key: K): V[] {
  let list = map.get(key);
  if (!list) map.set(key, (list = []));
  return list;
}

/** Create chunk repair. */
export function createChunkRepair(deps: ChunkRepairDeps): ChunkRepair {
  const { self, store, chunks, placement, log } = deps;
  const stats: ChunkRepairStats = { underReplicated: 0, queue: 0, chunksRepaired: 0, bytesRepaired: 0, handedOff: 0, lastPassMs: 0 };

  /** For each peer, which of the asked ids it holds; peers that did not answer are absent. */
  async function askHolders(wanted: Map<string, string[]>, signal: AbortSignal): Promise<Map<string, Set<string>>> {
    const answers = new Map<string, Set<string>>();
    await Promise.all(
      [...wanted].map(async ([peer, ids]) => {
        try {
          answers.set(peer, new Set(await chunks.has(peer, ids, { signal })));
        } catch {
          // unreachable: neither holder nor confirmed non-holder
        }
      }),
    );
    return answers;
  }

  async function push(id: string, targets: string[], signal: AbortSignal): Promise<boolean> {
    const bytes = await store.get(id).catch(() => null); // a corrupt local copy is quarantined by get and not spread
    if (!bytes) return false;
    let ok = true;
    for (const peer of targets) {
      await deps.limiter.take(bytes.byteLength, signal);
      try {
        await chunks.putTo(peer, id, bytes, { signal });
        stats.chunksRepaired++;
        stats.bytesRepaired += bytes.byteLength;
      } catch (err) {
        ok = false;
        log.debug(`repair: pushing ${id.slice(0, 12)} to ${peer.slice(-6)} failed: ${(err as Error).message}`);
      }
    }
    return ok;
  }

  /**
   * Handoff candidates whose owners all agree that we are not an owner. Views of the
   * ring differ for a moment while members come and go; without this check two peers
   * that each think the other an owner could both delete their copies.
   */
  async function confirmedHandoffs(ids: string[], owners: Map<string, string[]>, signal: AbortSignal): Promise<string[]> {
    if (!ids.length) return [];
    const byOwner = new Map<string, string[]>();
    for (const id of ids) for (const p of owners.get(id)!) listFor(byOwner, p).push(id);
    const vetoed = new Set<string>();
    await Promise.all(
      [...byOwner].map(async ([peer, list]) => {
        try {
          for (const id of await chunks.ownedBy(peer, self, list, { signal })) vetoed.add(id);
        } catch {
          for (const id of list) vetoed.add(id); // no answer: keep our copy for now
        }
      }),
    );
    return ids.filter((id) => !vetoed.has(id));
  }

  /** Check one batch of local chunks against their owners; returns how many are under-replicated. */
  async function step(batch: string[], signal: AbortSignal): Promise<number> {
    const owners = new Map<string, string[]>();
    const wanted = new Map<string, string[]>();
    for (const id of batch) {
      const os = placement.chunkOwners(id);
      owners.set(id, os);
      for (const p of os) if (p !== self) listFor(wanted, p).push(id);
    }
    const answers = await untilAborted(askHolders(wanted, signal), signal);

    const jobs: Array<() => Promise<void>> = [];
    const handoffs: string[] = [];
    let under = 0;
    const pushJob = (id: string, missing: string[]) => async () => void ((await push(id, missing, signal)) || under++);
    for (const [id, os] of owners) {
      if (deps.collecting(id)) continue;
      const holds = (p: string) => (p === self ? true : answers.get(p)?.has(id) === true);
      const missing = os.filter((p) => p !== self && answers.has(p) && !holds(p));
      const unreachable = os.filter((p) => p !== self && !answers.has(p));
      if (os.includes(self)) {
        const firstHolder = os.find(holds);
        if (firstHolder !== self) continue; // another owner is responsible
        if (unreachable.length || os.length < placement.rf) under++;
        else if (missing.length) jobs.push(pushJob(id, missing));
      } else {
        const ownerHolds = os.some((p) => p !== self && holds(p));
        // Only a draining peer is outside its own ring. It lets a copy go only to a full set
        // of owners: with fewer than rf (a mesh of rf members, one draining) there is nowhere
        // to move it, and dropping it would leave fewer copies for nothing (maintenance.ts says so).
        if (missing.length === 0 && unreachable.length === 0 && os.length >= placement.rf) {
          handoffs.push(id);
        } else if (!ownerHolds) {
          // Only we hold it: it must reach its owners before anything else.
          if (missing.length) jobs.push(pushJob(id, missing));
          else under++;
        }
      }
    }
    for (const id of await untilAborted(confirmedHandoffs(handoffs, owners, signal), signal)) {
      jobs.push(async () => {
        await store.delete(id);
        stats.handedOff++;
      });
    }
    stats.queue = jobs.length;
    await untilAborted(
      mapLimit(jobs, deps.concurrency, async (job) => {
        if (signal.aborted) return; // abandoned by a stop: start nothing new
        await job();
        stats.queue--;
      }),
      signal,
    );
    return under;
  }

  async function* pass(signal: AbortSignal): AsyncGenerator<void> {
    const started = performance.now();
    let under = 0;
    try {
      for await (const batch of inBatches(store.list(), STEP_IDS)) {
        under += await step(batch, signal);
        yield;
      }
    } finally {
      stats.queue = 0;
    }
    stats.underReplicated = under;
    stats.lastPassMs = Math.round(performance.now() - started);
  }

  return { pass, stats };
}
