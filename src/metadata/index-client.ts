// Reading and writing index entries on their shard's replicas with quorums of a
// majority (2 of 3): writes wait for the quorum to have the entry fsynced, reads take the
// newest of a quorum of answers and repair replicas that answered with something older.
import { MeshError } from "../errors.ts";
import { callQuorum, majority } from "../net/quorum.ts";
import type { Rpc } from "../net/rpc.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore, ScanOptions, ScanRow } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { newer, type IndexEntry } from "./types.ts";

/** A scan of several shards on one replica. */
export interface ShardScan extends ScanOptions {
  shards: string[];
}

/** Quorum access to the replicated index. */
export interface IndexClient {
  /** Write an entry; resolves once a quorum of replicas has it on disk. */
  write(shard: string, row: string, entry: IndexEntry): Promise<void>;
  /** The newest entry among a quorum of replicas (tombstones included), repairing stale ones. */
  read(shard: string, row: string): Promise<IndexEntry | null>;
  /** Ask one replica about one row (no quorum): used by locate. */
  readFrom(peer: string, shard: string, row: string): Promise<IndexEntry | null>;
  /** Scan shards on one replica. */
  scanOn(peer: string, scan: ShardScan): Promise<Record<string, ScanRow[]>>;
  /** Register the replica side (RPC handlers). */
  serve(): void;
  /** Shards whose last write from this peer reached fewer than RF replicas (awaiting repair). */
  readonly underReplicated: Set<string>;
}

/** Dependencies of the index client. */
export interface IndexClientDeps {
  self: string;
  store: IndexStore;
  rpc: Rpc;
  placement: Placement;
  log: Logger;
  /** Called with every timestamp seen, so the local clock stays ahead of it. */
  observe(ts: string): void;
}

const RPC_TIMEOUT_MS = 10_000;

/** Create the index client of one peer. */
export function createIndexClient(deps: IndexClientDeps): IndexClient {
  const { self, store, rpc, placement, log } = deps;
  const quorum = () => majority(placement.rf);
  const underReplicated = new Set<string>();

  const apply = (peer: string, shard: string, row: string, entry: IndexEntry): Promise<boolean> =>
    peer === self ? store.apply(shard, row, entry) : rpc.call<boolean>(peer, "index.apply", { shard, row, entry }, { timeoutMs: RPC_TIMEOUT_MS }).then((r) => r.result);

  const get = (peer: string, shard: string, row: string): Promise<IndexEntry | null> =>
    peer === self ? store.get(shard, row) : rpc.call<IndexEntry | null>(peer, "index.get", { shard, row }, { timeoutMs: RPC_TIMEOUT_MS }).then((r) => r.result);

  async function scanLocal(scan: ShardScan): Promise<Record<string, ScanRow[]>> {
    const out: Record<string, ScanRow[]> = {};
    await Promise.all(scan.shards.map(async (s) => (out[s] = await store.scan(s, scan))));
    return out;
  }

  return {
    underReplicated,
    async write(shard, row, entry) {
      deps.observe(entry.ts);
      const replicas = placement.shardReplicas(shard);
      const result = await callQuorum(replicas, quorum(), (p) => apply(p, shard, row, entry), `index write ${shard}`);
      void result.all.then((outcomes) => {
        const stored = outcomes.filter((o) => o.ok).length;
        if (stored < placement.rf) {
          underReplicated.add(shard);
          log.debug(`index write ${shard}: on ${stored} of ${placement.rf} replicas; repair will catch up the rest`);
        } else underReplicated.delete(shard);
      });
    },

    async read(shard, row) {
      const replicas = placement.shardReplicas(shard);
      const result = await callQuorum(replicas, quorum(), (p) => get(p, shard, row), `index read ${shard}`);
      let best: IndexEntry | null = null;
      for (const { value } of result.values) if (value && newer(value, best)) best = value;
      if (best) {
        deps.observe(best.ts);
        const newest = best;
        // Read repair: every replica (also the slow ones, once they answer) ends with the newest entry.
        void result.all.then((outcomes) => {
          for (const o of outcomes) {
            if (o.ok && newer(newest, o.value)) void apply(o.peer, shard, row, newest).catch(() => {});
          }
        });
      }
      return best;
    },

    readFrom: get,

    scanOn(peer, scan) {
      if (peer === self) return scanLocal(scan);
      return rpc.call<Record<string, ScanRow[]>>(peer, "index.scan", scan, { timeoutMs: RPC_TIMEOUT_MS }).then((r) => r.result);
    },

    serve() {
      rpc.register("index.apply", async ({ params }) => {
        const { shard, row, entry } = params as { shard: string; row: string; entry: IndexEntry };
        if (typeof entry?.ts !== "string") throw new MeshError("InvalidRequest", "index entry without timestamp", 400);
        deps.observe(entry.ts);
        return { result: await store.apply(shard, row, entry) };
      });
      rpc.register("index.get", async ({ params }) => {
        const { shard, row } = params as { shard: string; row: string };
        return { result: await store.get(shard, row) };
      });
      rpc.register("index.scan", async ({ params }) => ({ result: await scanLocal(params as ShardScan) }));
    },
  };
}
