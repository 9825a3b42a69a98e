// Moving chunks between peers: write a chunk to its ring owners (acknowledged at a
// quorum, the rest completing in the background), read a chunk from whichever holder
// answers with bytes that hash to its id, and ask peers which chunks they hold. Reads go
// through the peer's chunk cache (src/cache/chunk-cache.ts) when it has one: memory for
// small objects, then this peer's store, then the disk tier, then the other holders.
import type { AbortOptions } from "@libp2p/interface";
import { Type } from "@sinclair/typebox";
import type { ChunkCache } from "../cache/chunk-cache.ts";
import { MAX_CHUNK_SIZE } from "../config.ts";
import { MeshError } from "../errors.ts";
import { callQuorum } from "../net/quorum.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import { PeerIdSchema } from "../net/rpc-schema.ts";
import type { Placement } from "../placement/placement.ts";
import { ChunkCorruptError, sha256Hex, type ChunkStore } from "../store/chunk-store.ts";
import type { Logger } from "../util/log.ts";
import { noteBufferTraffic } from "../util/memory.ts";

/** A replica a reader found corrupt. */
export interface BadReplica {
  chunk: string;
  peer: string;
  atMs: number;
}

/** Options of a chunk read. */
export interface ChunkGetOptions extends AbortOptions {
  /** The chunk is a whole (small) object's body: the cache's memory tier may serve and keep it. */
  wholeObject?: boolean;
}

/** Chunk transfer for one peer. */
export interface ChunkClient {
  /** Store on the chunk's owners; resolves with the peers that acknowledged once a quorum has it on disk. */
  put(id: string, bytes: Uint8Array, opts?: AbortOptions): Promise<{ holders: string[]; settled: Promise<string[]> }>;
  /** Verified bytes from the first holder that has them; tries `hints` after the ring owners. */
  get(id: string, hints?: string[], opts?: ChunkGetOptions): Promise<Uint8Array>;
  /** Store a chunk on one given peer (repair and handoff). */
  putTo(peer: string, id: string, bytes: Uint8Array, opts?: AbortOptions): Promise<void>;
  /** Of `ids`, those for which `peer`'s own view of the ring counts `candidate` among the owners. */
  ownedBy(peer: string, candidate: string, ids: string[], opts?: AbortOptions): Promise<string[]>;
  /** Which of `ids` does `peer` hold? */
  has(peer: string, ids: string[], opts?: AbortOptions): Promise<string[]>;
  /** Replicas found corrupt by this peer's reads or its scrub, newest last (bounded). */
  readonly badReplicas: BadReplica[];
  /** Record this peer's replica of `chunk` as corrupt among badReplicas (scrub's finding). */
  noteCorrupt(chunk: string): void;
  /** Serve the chunk methods to other peers. */
  start(): void;
  /** Stop serving them. */
  stop(): void;
}

/** Dependencies of the chunk client. */
export interface ChunkClientDeps {
  self: string;
  store: ChunkStore;
  rpc: Rpc;
  placement: Placement;
  log: Logger;
  /** Peers currently believed alive (others are tried last). */
  isAlive(peer: string): boolean;
  /** The peer's chunk cache (src/cache/chunk-cache.ts): asked before other peers, filled by what they send. */
  cache?: ChunkCache;
}

/** A chunk id on the wire: its SHA-256, 64 lowercase hex digits. */
export const ChunkIdSchema = Type.String({ pattern: "^[0-9a-f]{64}$" });
/** Most chunk ids one call carries; longer lists go in pieces. */
export const MAX_IDS_PER_CALL = 5000;
/** A list of chunk ids on the wire. */
export const ChunkIdsSchema = Type.Array(ChunkIdSchema, { maxItems: MAX_IDS_PER_CALL });
const ChunkParams = Type.Object({ id: ChunkIdSchema });

/** Store one chunk (the body) on the callee; answers whether it was new there. */
const ChunkPut = defineMethod("chunk.put", { params: ChunkParams, result: Type.Boolean(), maxBodyBytes: MAX_CHUNK_SIZE });
/** The chunk's bytes, as the body; NoSuchChunk (404) when the callee has none. */
const ChunkGet = defineMethod("chunk.get", { params: ChunkParams, result: Type.Null() });
/** Of `ids`, those whose owners in the callee's view of the ring include `candidate`. */
const ChunkOwnedBy = defineMethod("chunk.ownedBy", { params: Type.Object({ candidate: PeerIdSchema, ids: ChunkIdsSchema }), result: ChunkIdsSchema });
/** Of `ids`, those the callee holds. */
const ChunkHas = defineMethod("chunk.has", { params: Type.Object({ ids: ChunkIdsSchema }), result: ChunkIdsSchema });

/** `ids` in pieces that fit one call, each answered by `ask`, the answers joined. */
export async function inPieces(ids: string[], ask: (piece: string[]) => Promise<string[]>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i += MAX_IDS_PER_CALL) out.push(...(await ask(ids.slice(i, i + MAX_IDS_PER_CALL))));
  return out;
}

const PUT_TIMEOUT_MS = 30_000;
const GET_TIMEOUT_MS = 30_000;
const MAX_BAD_REPORTS = 100;

/** Create the chunk client and server of one peer. */
export function createChunkClient(deps: ChunkClientDeps): ChunkClient {
  const { self, store, rpc, placement, log, cache } = deps;
  const badReplicas: BadReplica[] = [];

  const record = (chunk: string, peer: string) => {
    badReplicas.push({ chunk, peer, atMs: Date.now() });
    if (badReplicas.length > MAX_BAD_REPORTS) badReplicas.shift();
  };
  const report = (chunk: string, peer: string) => {
    log.warn(`replica of chunk ${chunk.slice(0, 12)} on ${peer.slice(-6)} is corrupt; reading another`);
    record(chunk, peer);
  };

  const putOn = async (peer: string, id: string, bytes: Uint8Array, opts: AbortOptions = {}): Promise<void> => {
    noteBufferTraffic(bytes.byteLength);
    if (peer === self) await store.put(id, bytes);
    else await rpc.call(peer, ChunkPut, { id }, { body: bytes, timeoutMs: PUT_TIMEOUT_MS, signal: opts.signal });
  };

  const getFrom = async (peer: string, id: string, signal: AbortSignal | undefined): Promise<Uint8Array | null> => {
    const bytes = peer === self ? await store.get(id) : ((await rpc.call(peer, ChunkGet, { id }, { timeoutMs: GET_TIMEOUT_MS, signal })).body ?? new Uint8Array(0));
    noteBufferTraffic(bytes?.byteLength ?? 0);
    return bytes;
  };

  return {
    badReplicas,
    noteCorrupt: (chunk) => record(chunk, self),
    putTo: putOn,

    async put(id, bytes, opts = {}) {
      // Acknowledged by W voters; the live owners (where repair keeps RF copies) get it too.
      const targets = { voters: placement.chunkVoters(id), extra: placement.chunkOwners(id), reachable: placement.reachable };
      const result = await callQuorum(targets, placement.quorum().w, (p) => putOn(p, id, bytes, opts), `chunk ${id.slice(0, 12)}`);
      const settled = result.all.then((outcomes) => outcomes.filter((o) => o.ok).map((o) => o.peer));
      return { holders: result.values.map((v) => v.peer), settled };
    },

    async get(id, hints = [], opts = {}) {
      // A small object's chunk: the memory tier first (a hot one costs neither the disk nor the hash).
      const remembered = opts.wholeObject ? cache?.recall(id) : undefined;
      if (remembered) return remembered;
      const order = [...new Set([...placement.chunkOwners(id), ...placement.chunkVoters(id), ...hints])];
      // Local copy first, then live peers, then the ones we think are down.
      order.sort((a, b) => Number(b === self) - Number(a === self) || Number(deps.isAlive(b)) - Number(deps.isAlive(a)));
      const errors: string[] = [];
      let askedDisk = !cache?.hasDisk;
      for (const peer of order) {
        opts.signal?.throwIfAborted();
        // The disk tier once this peer's own store has not answered, before any other peer.
        if (peer !== self && !askedDisk) {
          askedDisk = true;
          const kept = await cache!.load(id, opts.wholeObject === true);
          if (kept) return kept;
        }
        try {
          const bytes = await getFrom(peer, id, opts.signal);
          if (!bytes) continue;
          if (sha256Hex(bytes) !== id) {
            report(id, peer);
            continue;
          }
          cache?.keep(id, bytes, { remote: peer !== self, memory: opts.wholeObject === true });
          return bytes;
        } catch (err) {
          if (err instanceof ChunkCorruptError || (err as MeshError).code === "ChunkCorrupt") report(id, peer);
          else if ((err as MeshError).code !== "NoSuchChunk") errors.push(`${peer.slice(-6)}: ${(err as Error).message}`);
        }
      }
      throw new MeshError("ChunkUnavailable", `no holder returned chunk ${id.slice(0, 12)} intact${errors.length ? ` (${errors.join("; ")})` : ""}`);
    },

    async ownedBy(peer, candidate, ids, opts = {}) {
      if (peer === self) return ids.filter((id) => placement.chunkOwners(id).includes(candidate));
      return inPieces(ids, async (piece) => (await rpc.call(peer, ChunkOwnedBy, { candidate, ids: piece }, { timeoutMs: 10_000, signal: opts.signal })).result);
    },

    async has(peer, ids, opts = {}) {
      if (peer === self) return (await Promise.all(ids.map(async (id) => ((await store.has(id)) ? id : null)))).filter((x): x is string => x !== null);
      return inPieces(ids, async (piece) => (await rpc.call(peer, ChunkHas, { ids: piece }, { timeoutMs: 10_000, signal: opts.signal })).result);
    },

    start() {
      // Only the small header is checked on the hot path; the store verifies the body's digest.
      rpc.register(ChunkPut, async ({ params: { id }, body }) => {
        noteBufferTraffic(body?.byteLength ?? 0);
        try {
          return { result: await store.put(id, body ?? new Uint8Array(0)) };
        } catch (err) {
          if ((err as { code?: string }).code === "BadDigest") throw new MeshError("BadDigest", (err as Error).message);
          throw err;
        }
      });
      rpc.register(ChunkGet, async ({ params: { id } }) => {
        try {
          const bytes = await store.get(id);
          if (!bytes) throw new MeshError("NoSuchChunk", `chunk ${id.slice(0, 12)} is not here`);
          noteBufferTraffic(bytes.byteLength);
          return { result: null, body: bytes };
        } catch (err) {
          if (err instanceof ChunkCorruptError) throw new MeshError("ChunkCorrupt", err.message);
          throw err;
        }
      });
      rpc.register(ChunkOwnedBy, async ({ params: { candidate, ids } }) => ({
        result: ids.filter((id) => placement.chunkOwners(id).includes(candidate)),
      }));
      rpc.register(ChunkHas, async ({ params: { ids } }) => {
        const have = await Promise.all(ids.map(async (id) => ((await store.has(id)) ? id : null)));
        return { result: have.filter((x) => x !== null) };
      });
    },

    stop() {
      for (const method of [ChunkPut, ChunkGet, ChunkOwnedBy, ChunkHas]) rpc.unregister(method);
    },
  };
}
