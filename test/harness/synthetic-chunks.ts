// Synthetic inputs for the background workers (src/repair/): a chunk store that lists
// generated ids without any data on disk, a placement from the real ring over made-up
// members, and a chunk client that answers in-process and counts what it was asked. The
// real pass code runs over them, so a test or the bench sees what a pass does per step.
import type { ChunkClient } from "../../src/objects/chunk-client.ts";
import type { Placement } from "../../src/placement/placement.ts";
import { buildRing } from "../../src/placement/ring.ts";
import type { ChunkStore } from "../../src/store/chunk-store.ts";
import { sleep } from "../../src/util/sleep.ts";

/** murmur3's 32-bit finalizer: a bijection, so distinct inputs give distinct words. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The i-th synthetic chunk id: 64 lowercase hex, uniform like a SHA-256 (the ring reads its first 8 digits), distinct for i < 2^29. */
export function syntheticChunkId(i: number): string {
  let id = "";
  for (let k = 0; k < 8; k++) id += fmix32(i * 8 + k).toString(16).padStart(8, "0");
  return id;
}

/** A chunk store of `count` generated ids (listed lazily, as the real store reads folders); reads give a 1-byte body, deletes are counted. */
export function syntheticStore(count: number): Pick<ChunkStore, "list" | "get" | "delete"> & { listed: number; deleted: number } {
  const body = new Uint8Array(1);
  const store = {
    listed: 0,
    deleted: 0,
    async *list() {
      for (let i = 0; i < count; i++) {
        store.listed++;
        yield syntheticChunkId(i);
      }
    },
    get: async () => body,
    async delete() {
      store.deleted++;
      return true;
    },
  };
  return store;
}

/** Placement on the real ring over `members` (the first is this peer). */
export function syntheticPlacement(members: string[], rf = 3): Pick<Placement, "chunkOwners" | "rf"> {
  const ring = buildRing(members.map((id) => ({ id })));
  return { rf, chunkOwners: (id) => ring.replicasFor(id, rf) };
}

/** Options of the synthetic chunk client. */
export interface SyntheticClientOptions {
  /** Does `peer` lack chunk `id`? (Default: every peer holds every chunk.) */
  lacks?(peer: string, id: string): boolean;
  /** Delay of each `has` answer, ms; Infinity: never answers (a hung peer). */
  hasDelayMs?: number;
}

/** A chunk client answering in-process; counts the ids each call carried. */
export function syntheticClient(opts: SyntheticClientOptions = {}): Pick<ChunkClient, "has" | "ownedBy" | "putTo"> & { hasIds: number; hasCalls: number; pushed: string[] } {
  const lacks = opts.lacks ?? (() => false);
  const client = {
    hasIds: 0,
    hasCalls: 0,
    pushed: [] as string[],
    async has(peer: string, ids: string[]) {
      client.hasCalls++;
      client.hasIds += ids.length;
      if (opts.hasDelayMs === Infinity) await new Promise(() => {});
      else if (opts.hasDelayMs) await sleep(opts.hasDelayMs);
      return ids.filter((id) => !lacks(peer, id));
    },
    ownedBy: async () => [],
    async putTo(_peer: string, id: string) {
      client.pushed.push(id);
    },
  };
  return client;
}
