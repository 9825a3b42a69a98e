// Chunk repair, rebalance and handoff. Each pass, a peer checks every chunk it holds
// against the ring: it asks the chunk's owners whether they hold it, and
// - if it is the first owner (in ring order) holding the chunk, it pushes the chunk to
//   owners that lack it (repair after a failure, rebalance after a join);
// - if it is not an owner, it pushes to the owners when none holds it, and deletes its
//   own copy only once every owner has confirmed holding a verified copy (handoff).
// Transfers are bounded in concurrency and rate.
import type { ChunkClient } from "../objects/chunk-client.ts";
import type { Placement } from "../placement/placement.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { Logger } from "../util/log.ts";
import { mapLimit } from "../util/map-limit.ts";

/** Counters shown in /cluster/status. */
export interface ChunkRepairStats {
  /** Chunks this peer is responsible for that lack an owner (after the last pass). */
  underReplicated: number;
  /** Transfers waiting in the current pass. */
  queue: number;
  chunksRepaired: number;
  bytesRepaired: number;
  handedOff: number;
  lastPassMs: number;
}

/** Dependencies of chunk repair. */
export interface ChunkRepairDeps {
  self: string;
  store: ChunkStore;
  chunks: ChunkClient;
  placement: Placement;
  concurrency: number;
  limiter: { take(n: number): Promise<void> };
  /** Chunks GC is waiting to collect: never spread again (an owner may have collected its copy already). */
  collecting(id: string): boolean;
  log: Logger;
}

const HAS_BATCH = 1000;

/** Create the chunk repair pass. */
export function createChunkRepair(deps: ChunkRepairDeps): { pass(): Promise<void>; stats: ChunkRepairStats } {
  const { self, store, chunks, placement, log } = deps;
  const stats: ChunkRepairStats = { underReplicated: 0, queue: 0, chunksRepaired: 0, bytesRepaired: 0, handedOff: 0, lastPassMs: 0 };

  /** For each peer, which of the asked ids it holds; peers that did not answer are absent. */
  async function askHolders(wanted: Map<string, string[]>): Promise<Map<string, Set<string>>> {
    const answers = new Map<string, Set<string>>();
    await Promise.all(
      [...wanted].map(async ([peer, ids]) => {
        const held = new Set<string>();
        try {
          for (let i = 0; i < ids.length; i += HAS_BATCH) for (const id of await chunks.has(peer, ids.slice(i, i + HAS_BATCH))) held.add(id);
          answers.set(peer, held);
        } catch {
          // unreachable: neither holder nor confirmed non-holder
        }
      }),
    );
    return answers;
  }

  async function push(id: string, targets: string[]): Promise<boolean> {
    const bytes = await store.get(id).catch(() => null); // a corrupt local copy is quarantined by get and not spread
    if (!bytes) return false;
    let ok = true;
    for (const peer of targets) {
      await deps.limiter.take(bytes.byteLength);
      try {
        await chunks.putTo(peer, id, bytes);
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
  async function confirmedHandoffs(ids: string[], owners: Map<string, string[]>): Promise<string[]> {
    const byOwner = new Map<string, string[]>();
    for (const id of ids) for (const p of owners.get(id)!) byOwner.set(p, [...(byOwner.get(p) ?? []), id]);
    const vetoed = new Set<string>();
    await Promise.all(
      [...byOwner].map(async ([peer, list]) => {
        try {
          for (const id of await chunks.ownedBy(peer, self, list)) vetoed.add(id);
        } catch {
          for (const id of list) vetoed.add(id); // no answer: keep our copy for now
        }
      }),
    );
    return ids.filter((id) => !vetoed.has(id));
  }

  async function pass(): Promise<void> {
    const started = performance.now();
    const local: string[] = [];
    for await (const id of store.list()) local.push(id);
    const owners = new Map(local.map((id) => [id, placement.chunkOwners(id)]));
    const wanted = new Map<string, string[]>();
    for (const [id, os] of owners) for (const p of os) if (p !== self) wanted.set(p, [...(wanted.get(p) ?? []), id]);
    const answers = await askHolders(wanted);

    const jobs: Array<() => Promise<void>> = [];
    const handoffs: string[] = [];
    let under = 0;
    for (const [id, os] of owners) {
      if (deps.collecting(id)) continue;
      const holds = (p: string) => (p === self ? true : answers.get(p)?.has(id) === true);
      const missing = os.filter((p) => p !== self && answers.has(p) && !holds(p));
      const unreachable = os.filter((p) => p !== self && !answers.has(p));
      if (os.includes(self)) {
        const firstHolder = os.find(holds);
        if (firstHolder !== self) continue; // another owner is responsible
        if (unreachable.length || os.length < placement.rf) under++;
        else if (missing.length) jobs.push(async () => void ((await push(id, missing)) || under++));
      } else {
        const ownerHolds = os.some((p) => p !== self && holds(p));
        if (missing.length === 0 && unreachable.length === 0 && os.length > 0) {
          handoffs.push(id);
        } else if (!ownerHolds) {
          // Only we hold it: it must reach its owners before anything else.
          if (missing.length) jobs.push(async () => void ((await push(id, missing)) || under++));
          else under++;
        }
      }
    }
    jobs.push(...(await confirmedHandoffs(handoffs, owners)).map((id) => async () => {
      await store.delete(id);
      stats.handedOff++;
    }));
    stats.queue = jobs.length;
    await mapLimit(jobs, deps.concurrency, async (job) => {
      await job();
      stats.queue--;
    });
    stats.underReplicated = under;
    stats.lastPassMs = Math.round(performance.now() - started);
  }

  return { pass, stats };
}
