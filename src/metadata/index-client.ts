// Reading and writing index entries on their shard's replicas with quorums of a
// majority (2 of 3, src/placement/quorum-rule.ts): writes wait for the quorum to have the
// entry fsynced, reads take the newest of a quorum of answers and repair replicas that
// answered with something older. A row stamped further ahead than the allowed clock drift
// is refused wherever it comes from (a write, a read's answers, anti-entropy): stored, it
// would outrank every real write to that row until the clock caught up with it.
import type { AbortOptions } from "@libp2p/interface";
import { Type, type TSchema } from "@sinclair/typebox";
import { MeshError, RemoteError } from "../errors.ts";
import { createBatcher, MAX_BATCH } from "../util/batcher.ts";
import { MAX_CLOCK_DRIFT_MS, msAhead } from "../util/hlc.ts";
import { callQuorum } from "../net/quorum.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { Placement } from "../placement/placement.ts";
import { DIGEST_BUCKETS, type IndexStore, type ScanOptions, type ScanRow } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import type { LogGate } from "../changes/gate.ts";
import type { LeaseTable } from "../cache/manifest-leases.ts";
import type { LeasedRead } from "../cache/manifest-cache.ts";
import { deletesAreFinal, KEYS_SHARD } from "./keys.ts";
import { newer, type IndexEntry } from "./types.ts";

/** A scan of several shards on one replica. */
export interface ShardScan extends ScanOptions {
  shards: string[];
  /** Return only these fields of each value (a listing needs a few of a manifest's many). */
  fields?: string[];
}

function project(rows: ScanRow[], fields: string[] | undefined): ScanRow[] {
  if (!fields) return rows;
  return rows.map(([row, e]) => {
    if (e.value === null || typeof e.value !== "object") return [row, e];
    const v = e.value as Record<string, unknown>;
    return [row, { ts: e.ts, value: Object.fromEntries(fields.map((f) => [f, v[f]])) }];
  });
}

/** Options of a write. */
export interface WriteOptions extends AbortOptions {
  /**
   * A row written in the same atomic batch on every replica (the write's change event,
   * src/changes/): admitted by each replica's log gate, which may refuse it as late.
   */
  companion?: ScanRow;
  /**
   * More rows of the same shard merged in that batch, each by last-writer-wins, never
   * gated (a versioned write's version rows, src/objects/versions.ts). At most MAX_EXTRA_ROWS.
   */
  extra?: ScanRow[];
}

/** Most extra rows one write carries. */
export const MAX_EXTRA_ROWS = 8;

/** Quorum access to the replicated index. Every call may be cut short by `opts.signal`. */
export interface IndexClient {
  /** Write an entry; resolves once a quorum of replicas has it on disk. */
  write(shard: string, row: string, entry: IndexEntry, opts?: WriteOptions): Promise<void>;
  /** The newest entry among a quorum of replicas (tombstones included), repairing stale ones. */
  read(shard: string, row: string, opts?: AbortOptions): Promise<IndexEntry | null>;
  /** The same read, asking each replica for a lease on the row (src/cache/manifest-leases.ts). */
  readLeased(shard: string, row: string, opts?: AbortOptions): Promise<LeasedRead>;
  /** Ask one replica about one row (no quorum): used by locate. */
  readFrom(peer: string, shard: string, row: string, opts?: AbortOptions): Promise<IndexEntry | null>;
  /** Scan shards on one replica. */
  scanOn(peer: string, scan: ShardScan, opts?: AbortOptions): Promise<Record<string, ScanRow[]>>;
  /** A replica's digests of the given shards (anti-entropy). */
  digestsOn(peer: string, shards: string[], opts?: AbortOptions): Promise<Record<string, string[]>>;
  /** A replica's rows of one shard in the given digest buckets (all rows when omitted). */
  rowsOn(peer: string, shard: string, buckets?: number[], opts?: AbortOptions): Promise<ScanRow[]>;
  /** Merge rows into a replica; resolves with how many were newer there. */
  applyManyOn(peer: string, shard: string, rows: ScanRow[], opts?: AbortOptions): Promise<number>;
  /** Serve the replica side to other peers (RPC handlers). */
  start(): void;
  /** Stop serving it. */
  stop(): void;
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
  /** Every peer believed alive, this one included. */
  livePeers(): string[];
  /** Is a delete marker with this timestamp past its lifetime (to be dropped, not stored)? */
  isExpiredTombstone(ts: string): boolean;
  /** Wall clock (ms) that row stamps are held against; Date.now by default. */
  clock?: () => number;
  /** Admits the change events that writes carry (src/changes/gate.ts); without one, every event is admitted. */
  gate?: Pick<LogGate, "admit">;
  /** Has this row of `shard` left the index here for good (an event past the log's retention)? Anti-entropy does not take it back. */
  expired?(shard: string, row: string, entry: IndexEntry): boolean;
  /**
   * The leases this replica grants on object rows; a write of a row is acknowledged only
   * once their holders have forgotten it. Anti-entropy and handoff do not revoke: a row
   * they bring was acknowledged by a write quorum, which overlaps every lease quorum.
   */
  leases?: Pick<LeaseTable, "grant" | "revoke">;
}

const RPC_TIMEOUT_MS = 10_000;

// ---- The replica side's params, checked before any handler runs (src/net/rpc.ts) ----

/** Longest row name: a bucket and a key (at most 1024 UTF-8 bytes), plus an upload id and a part number. */
const MAX_ROW_CHARS = 2048;
/** Most shards one call names: every shard there can be (4096 object shards, buckets, keys and uploads). */
const MAX_SHARDS_PER_CALL = 4099;
/** Most rows one index.applyMany carries; anti-entropy and handoff send longer lists in pieces of APPLY_PIECE. */
const MAX_ROWS_PER_CALL = 10_000;
const APPLY_PIECE = 1000;
/** Most rows one scan returns, and most fields it projects. */
const MAX_SCAN_LIMIT = 10_000;
const MAX_FIELDS = 64;

const ShardSchema = Type.String({ pattern: "^(?:b|k|u|o[0-9]{1,4})$" });
const ShardsSchema = Type.Array(ShardSchema, { maxItems: MAX_SHARDS_PER_CALL });
const RowSchema = Type.String({ maxLength: MAX_ROW_CHARS });
/** An encoded HLC timestamp (src/util/hlc.ts) whose node is a peer id. */
const TimestampSchema = Type.String({ maxLength: 160, pattern: "^[0-9]{13}-[0-9a-f]{6}-." });
/** An index entry exactly as stored: a stamp and a JSON value (null for a delete marker). */
const EntrySchema = Type.Object({ ts: TimestampSchema, value: Type.Unknown(), origin: Type.Optional(TimestampSchema) }, { additionalProperties: false });
const GetItemSchema = Type.Object({ shard: ShardSchema, row: RowSchema, lease: Type.Optional(Type.Boolean()) });
const ApplyItemSchema = Type.Object({
  shard: ShardSchema,
  row: RowSchema,
  entry: EntrySchema,
  companion: Type.Optional(Type.Tuple([RowSchema, EntrySchema])),
  extra: Type.Optional(Type.Array(Type.Tuple([RowSchema, EntrySchema]), { maxItems: MAX_EXTRA_ROWS })),
});
const ScanSchema = Type.Object({
  shards: ShardsSchema,
  prefix: RowSchema,
  after: Type.Optional(RowSchema),
  limit: Type.Integer({ minimum: 1, maximum: MAX_SCAN_LIMIT }),
  fields: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: MAX_FIELDS })),
});

const BucketsSchema = Type.Array(Type.Integer({ minimum: 0, maximum: DIGEST_BUCKETS - 1 }), { maxItems: DIGEST_BUCKETS });
const RowEntrySchema = Type.Tuple([RowSchema, EntrySchema]);
const RowsSchema = Type.Array(RowEntrySchema, { maxItems: MAX_ROWS_PER_CALL });
/** Rows in a reply: a shard's rows in some digest buckets may be more than a call may carry. */
const ReplyRowsSchema = Type.Array(RowEntrySchema);
/** One item's outcome in a batch reply. */
const ItemResultSchema = <T extends TSchema>(value: T) =>
  Type.Union([Type.Object({ ok: Type.Literal(true), v: value }), Type.Object({ ok: Type.Literal(false), code: Type.String({ maxLength: 64 }), message: Type.String(), status: Type.Integer() })]);

/** Write single rows (a batch of them, each succeeding or failing on its own). */
const ApplyBatch = defineMethod("index.applyBatch", {
  params: Type.Object({ items: Type.Array(ApplyItemSchema, { maxItems: MAX_BATCH }) }),
  result: Type.Array(ItemResultSchema(Type.Boolean()), { maxItems: MAX_BATCH }),
});
/** Read single rows as the replica stores them (with `lease`, also asking for a lease: its answer is `v.leased`). */
const GetBatch = defineMethod("index.getBatch", {
  params: Type.Object({ items: Type.Array(GetItemSchema, { maxItems: MAX_BATCH }) }),
  result: Type.Array(ItemResultSchema(Type.Object({ entry: Type.Union([EntrySchema, Type.Null()]), leased: Type.Boolean() })), { maxItems: MAX_BATCH }),
});
/** Scan several shards (a listing round). */
const Scan = defineMethod("index.scan", { params: ScanSchema, result: Type.Record(Type.String(), ReplyRowsSchema) });
/** Digests of shards, by digest bucket (anti-entropy). */
const Digests = defineMethod("index.digests", { params: Type.Object({ shards: ShardsSchema }), result: Type.Record(Type.String(), Type.Array(Type.String())) });
/** A shard's rows in the given digest buckets. */
const Rows = defineMethod("index.rows", { params: Type.Object({ shard: ShardSchema, buckets: Type.Optional(BucketsSchema) }), result: ReplyRowsSchema });
/** Merge rows into a shard; answers how many were newer. */
const ApplyMany = defineMethod("index.applyMany", { params: Type.Object({ shard: ShardSchema, rows: RowsSchema }), result: Type.Integer({ minimum: 0 }) });
/** The replica side's methods. */
export const INDEX_METHODS = { ApplyBatch, GetBatch, Scan, Digests, Rows, ApplyMany };

type GetItem = { shard: string; row: string; lease?: boolean };
type ApplyItem = { shard: string; row: string; entry: IndexEntry; companion?: ScanRow; extra?: ScanRow[] };
/** A replica's answer: its entry, and whether it granted the lease asked for. */
type GetAnswer = { entry: IndexEntry | null; leased: boolean };
/** One item's outcome in a batch reply. */
type ItemResult<T> = { ok: true; v: T } | { ok: false; code: string; message: string; status: number };

async function settle<T>(fn: () => Promise<T>): Promise<ItemResult<T>> {
  try {
    return { ok: true, v: await fn() };
  } catch (err) {
    const e = err instanceof MeshError ? err : new MeshError("InternalError", (err as Error).message);
    return { ok: false, code: e.code, message: e.message, status: e.status };
  }
}

function unwrap<T>(r: ItemResult<T>): T {
  if (!r.ok) throw new RemoteError(r.code, r.message);
  return r.v;
}

/**
 * May `e` be stored or believed at wall-clock time `nowMs`: a well-formed stamp no further
 * ahead than the allowed clock drift? (Listings skip the rows that may not.)
 */
export function admissibleAt(e: IndexEntry | null | undefined, nowMs: number): e is IndexEntry {
  return typeof e?.ts === "string" && msAhead(e.ts, nowMs) <= MAX_CLOCK_DRIFT_MS;
}

/** Create the index client of one peer. */
export function createIndexClient(deps: IndexClientDeps): IndexClient {
  const { self, store, rpc, placement, log } = deps;
  const clock = deps.clock ?? Date.now;

  const admissible = (e: IndexEntry | null | undefined): e is IndexEntry => admissibleAt(e, clock());
  /** Throw ClockDrift (400) for an entry stamped too far ahead of our clock. */
  function checkStamp(entry: IndexEntry): void {
    const ahead = msAhead(entry.ts, clock());
    if (ahead <= MAX_CLOCK_DRIFT_MS) return;
    if (!Number.isFinite(ahead)) throw new MeshError("InvalidParams", "index entry with a malformed timestamp");
    throw new MeshError("ClockDrift", `index entry stamped ${Math.round(ahead / 1000)} s ahead of this peer's clock; at most ${MAX_CLOCK_DRIFT_MS / 1000} s of drift is allowed`);
  }

  // Single-row reads and writes to a peer are batched per event-loop turn (src/util/batcher.ts);
  // the replica applies a batch's writes together, so they share group-committed fsyncs.
  // Each item of a batch succeeds or fails on its own.
  // A batch carries many callers' items: it is not cut short by one of them (each stops waiting on its own signal).
  const remoteApply = createBatcher<ApplyItem, ItemResult<boolean>>(async (peer, items) => (await rpc.call(peer, ApplyBatch, { items }, { timeoutMs: RPC_TIMEOUT_MS })).result);
  const remoteGet = createBatcher<GetItem, ItemResult<GetAnswer>>(async (peer, items) => (await rpc.call(peer, GetBatch, { items }, { timeoutMs: RPC_TIMEOUT_MS })).result);

  const apply = async (peer: string, shard: string, row: string, entry: IndexEntry, signal?: AbortSignal, companion?: ScanRow, extra?: ScanRow[]): Promise<boolean> => {
    if (peer !== self) return unwrap(await remoteApply(peer, { shard, row, entry, ...(companion && { companion }), ...(extra?.length && { extra }) }, signal));
    return applyHere(shard, row, entry, companion, extra);
  };

  /** A write's rows on this replica: checked, its event admitted by the gate, all in one batch. */
  async function applyHere(shard: string, row: string, entry: IndexEntry, companion?: ScanRow, extra?: ScanRow[]): Promise<boolean> {
    checkStamp(entry);
    for (const [, e] of extra ?? []) checkStamp(e);
    let applied: boolean;
    if (!companion) applied = await store.apply(shard, row, entry, undefined, extra);
    else {
      checkStamp(companion[1]);
      const release = deps.gate?.admit(companion[1].ts);
      try {
        applied = await store.apply(shard, row, entry, companion, extra);
      } finally {
        release?.();
      }
    }
    // Not acknowledged until no peer serves the row's old value from a cache.
    const revoking = deps.leases?.revoke(shard, row, entry.ts);
    if (revoking) await revoking;
    return applied;
  }

  /** One replica's entry; with `lease`, the lease is recorded before the row is read. */
  async function answer(holder: string, shard: string, row: string, lease: boolean): Promise<GetAnswer> {
    const leased = lease && deps.leases ? await deps.leases.grant(holder, shard, row) : false;
    return { entry: await store.get(shard, row), leased };
  }

  const getAnswer = async (peer: string, shard: string, row: string, signal: AbortSignal | undefined, lease: boolean): Promise<GetAnswer> =>
    peer === self ? answer(self, shard, row, lease) : unwrap(await remoteGet(peer, lease ? { shard, row, lease } : { shard, row }, signal));
  const get = async (peer: string, shard: string, row: string, signal?: AbortSignal): Promise<IndexEntry | null> => (await getAnswer(peer, shard, row, signal, false)).entry;

  /**
   * Merge rows locally. A delete marker past its lifetime is taken only when it overrides
   * something we still hold; where we hold nothing it was dropped here already. Rows from
   * the future (a replica that stored them before they were refused, or a hostile one) are
   * left out, so anti-entropy never spreads them.
   */
  async function applyRows(shard: string, rows: ScanRow[]): Promise<number> {
    let applied = 0;
    for (const [row, entry] of rows) {
      if (!admissible(entry)) continue;
      // (Revocations in the keys shard never expire: see shard-sync.)
      if (entry.value === null && shard !== KEYS_SHARD && deps.isExpiredTombstone(entry.ts) && !(await store.get(shard, row))) continue;
      if (deps.expired?.(shard, row, entry)) continue;
      deps.observe(entry.ts);
      if (await store.apply(shard, row, entry)) applied++;
    }
    return applied;
  }

  async function scanLocal(scan: ShardScan): Promise<Record<string, ScanRow[]>> {
    const out: Record<string, ScanRow[]> = {};
    await Promise.all(scan.shards.map(async (s) => (out[s] = project(await store.scan(s, scan), scan.fields))));
    return out;
  }

  /** The newest entry among a quorum of voters; `leased` when a quorum of them granted a lease on it. */
  async function quorumRead(shard: string, row: string, signal: AbortSignal | undefined, lease: boolean): Promise<LeasedRead> {
    // W voters share at least one peer with the W voters of every acknowledged write.
    const replicas = placement.shardVoters(shard);
    const quorum = placement.shardQuorum(shard);
    const result = await callQuorum({ voters: replicas, reachable: placement.reachable }, quorum, (p) => getAnswer(p, shard, row, signal, lease), `index read ${shard}`);
    let best: IndexEntry | null = null;
    let grants = 0;
    const final = deletesAreFinal(shard);
    for (const { value } of result.values) {
      if (value.leased) grants++;
      if (admissible(value.entry) && newer(value.entry, best, final)) best = value.entry;
    }
    if (!best) {
      // Nothing at the replicas we know of. Views of the ring can differ for a moment (a
      // peer that just joined, or one that has not yet heard of one), so before answering
      // "no such thing" ask every other live peer; misses are rare enough to afford it.
      const others = deps.livePeers().filter((p) => !replicas.includes(p));
      const found = await Promise.all(others.map((p) => get(p, shard, row, signal).catch(() => null)));
      for (const value of found) if (admissible(value) && newer(value, best, final)) best = value;
      if (best) {
        const newest = best;
        for (const p of replicas) void apply(p, shard, row, newest).catch(() => {});
        // Found off the row's voters: their leases do not cover it.
        return { entry: best, leased: false, voters: replicas };
      }
      return { entry: null, leased: grants >= quorum, voters: replicas };
    }
    deps.observe(best.ts);
    const newest = best;
    // Read repair: every replica (also the slow ones, once they answer) ends with the newest entry.
    void result.all.then((outcomes) => {
      for (const o of outcomes) {
        if (o.ok && newer(newest, o.value.entry, final)) void apply(o.peer, shard, row, newest).catch(() => {});
      }
    });
    return { entry: best, leased: grants >= quorum, voters: replicas };
  }

  return {
    async write(shard, row, entry, opts = {}) {
      if ((opts.extra?.length ?? 0) > MAX_EXTRA_ROWS) throw new MeshError("InternalError", `a write carries at most ${MAX_EXTRA_ROWS} extra rows`);
      deps.observe(entry.ts);
      // Acknowledged by W voters; the live replicas get it too, so repair has nothing to catch up.
      const targets = { voters: placement.shardVoters(shard), extra: placement.shardReplicas(shard), reachable: placement.reachable };
      const result = await callQuorum(targets, placement.shardQuorum(shard), (p) => apply(p, shard, row, entry, opts.signal, opts.companion, opts.extra), `index write ${shard}`);
      void result.all.then((outcomes) => {
        const stored = outcomes.filter((o) => o.ok).length;
        if (stored < placement.rf) log.debug(`index write ${shard}: on ${stored} of ${placement.rf} replicas; anti-entropy will catch up the rest`);
      });
    },

    read: async (shard, row, opts = {}) => (await quorumRead(shard, row, opts.signal, false)).entry,
    readLeased: (shard, row, opts = {}) => quorumRead(shard, row, opts.signal, true),

    readFrom: (peer, shard, row, opts = {}) => get(peer, shard, row, opts.signal),

    async digestsOn(peer, shards, opts = {}) {
      if (peer === self) return Object.fromEntries(shards.map((sh) => [sh, store.digests(sh)]));
      return (await rpc.call(peer, Digests, { shards }, { timeoutMs: RPC_TIMEOUT_MS, signal: opts.signal })).result;
    },
    async rowsOn(peer, shard, buckets, opts = {}) {
      if (peer === self) return store.rowsIn(shard, buckets);
      return (await rpc.call(peer, Rows, { shard, buckets }, { timeoutMs: RPC_TIMEOUT_MS, signal: opts.signal })).result;
    },
    async applyManyOn(peer, shard, rows, opts = {}) {
      if (peer === self) return applyRows(shard, rows);
      const fit = rows.filter(([, e]) => admissible(e));
      let applied = 0;
      for (let i = 0; i < fit.length; i += APPLY_PIECE) {
        applied += (await rpc.call(peer, ApplyMany, { shard, rows: fit.slice(i, i + APPLY_PIECE) }, { timeoutMs: RPC_TIMEOUT_MS, signal: opts.signal })).result;
      }
      return applied;
    },

    async scanOn(peer, scan, opts = {}) {
      if (peer === self) return scanLocal(scan);
      // Rows from the future stay in (a listing's page bounds count every row scanned); listings skip them.
      const { result } = await rpc.call(peer, Scan, scan, { timeoutMs: RPC_TIMEOUT_MS, signal: opts.signal });
      return Object.fromEntries(scan.shards.map((s) => [s, result[s] ?? []]));
    },

    start() {
      rpc.register(ApplyBatch, async ({ params: { items } }) => ({
        result: await Promise.all(
          items.map(({ shard, row, entry, companion, extra }) =>
            settle(async () => {
              checkStamp(entry);
              deps.observe(entry.ts);
              return applyHere(shard, row, entry, companion, extra);
            }),
          ),
        ),
      }));
      rpc.register(GetBatch, async ({ from, params: { items } }) => ({
        result: await Promise.all(items.map(({ shard, row, lease }) => settle(() => answer(from, shard, row, lease === true)))),
      }));
      rpc.register(Scan, async ({ params }) => ({ result: await scanLocal(params) }));
      rpc.register(Digests, async ({ params: { shards } }) => ({
        result: Object.fromEntries(shards.map((sh) => [sh, store.digests(sh)])),
      }));
      rpc.register(Rows, async ({ params: { shard, buckets } }) => ({
        result: await store.rowsIn(shard, buckets),
      }));
      rpc.register(ApplyMany, async ({ params: { shard, rows } }) => {
        // A sender never sends rows from the future (applyManyOn leaves them out): refuse the call whole.
        for (const [, entry] of rows) checkStamp(entry);
        return { result: await applyRows(shard, rows) };
      });
    },

    stop() {
      for (const method of Object.values(INDEX_METHODS)) rpc.unregister(method);
    },
  };
}
