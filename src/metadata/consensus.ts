// Conditional writes decided by a consensus round among a row's voters (issue 17, item 2):
// single-decree Paxos on the row, as CASPaxos does, where the row IS the register and the
// ballot IS the new entry's stamp. Unconditional writes keep the plain quorum write.
//
// A proposer picks a ballot b, a fresh HLC stamp of its own, and:
//   1. prepare(b) at every voter. A voter promises b only if b is above every ballot it has
//      promised and above the stamp of the row it holds, and remembers the promise with that
//      stamp (the "basis") before answering with its row.
//   2. With promises from a majority, the newest of their rows is the current value. The
//      caller's decision (a precondition check) is taken on it. If the majority did not all
//      hold that same row, it may not be chosen yet: it is written back as b's value first
//      (stamped b, marked with the stamp it was first proposed under, so its proposer, retrying,
//      knows its write went through).
//   3. accept(b, entry stamped b) at every voter. A voter takes it only if its promise is
//      still b and its row is still the basis it promised on, and writes it (with the
//      write's change event) in one batch.
//   4. Accepted by a majority: decided. Otherwise another round, with a higher ballot.
// Why two conditional writers never both succeed: each success needs a majority's accepts,
// each accept a promise on an unchanged row. Of two rounds b1 < b2, both majorities share a
// voter. If it promised b2 before accepting b1, it refuses b1's accept. If it accepted b1
// first, its row changed, so it either refuses to promise b2 (b2 is below the row's stamp)
// or promises b2 with b1's row as its answer; b2, taking the newest row of its majority,
// decides on b1's value or on a newer one. Either way the later success saw the earlier one.
// Because ballots are stamps, last-writer-wins merging (repair, anti-entropy, reads) orders
// decided values as the rounds did: a later round's value always has the higher stamp.
// Promises are kept in memory only: an accept needs the promise of its very ballot, so a
// voter that forgot one (restarted, or dropped it to stay bounded) refuses the accept and
// the proposer runs another round. What a restart must not do is promise a ballot below one
// it promised before: a horizon on disk (src/util/horizon-file.ts), pushed ahead once every
// HORIZON_STEP_MS, holds a time above every ballot promised, and a restarted voter promises
// only ballots past it (the others meanwhile make the majority).
import path from "node:path";
import { Type } from "@sinclair/typebox";
import { MeshError } from "../errors.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore, ScanRow } from "../store/index-store.ts";
import type { LogGate } from "../changes/gate.ts";
import type { LeaseTable } from "../cache/manifest-leases.ts";
import { encodeTimestamp, type Hlc } from "../util/hlc.ts";
import { openHorizon, type Horizon } from "../util/horizon-file.ts";
import { createBatcher, MAX_BATCH } from "../util/batcher.ts";
import { sleep } from "../util/sleep.ts";
import type { IndexEntry } from "./types.ts";

/** How many rounds a decision may take before it gives up with 409 ConditionalRequestConflict ... */
export const MAX_ROUNDS = 40;
/** ... and at most this long (a voter just restarted refuses to promise for up to HORIZON_STEP_MS). */
export const DECIDE_BUDGET_MS = 5_000;
/** The longest random wait between two rounds of one decision. */
const MAX_BACKOFF_MS = 200;
const RPC_TIMEOUT_MS = 5_000;
/** Most extra rows one write carries. */
const MAX_EXTRA_ROWS = 16;
/** Most promises a voter holds; past it the oldest go (their rounds' accepts are then refused). */
const MAX_PROMISES = 100_000;
/** How far ahead of a promised ballot the horizon file is pushed. */
const HORIZON_STEP_MS = 1_000;
/** The horizon file under the data folder. */
export const PROMISE_HORIZON_FILE = "promise-horizon";

const TimestampSchema = Type.String({ maxLength: 160, pattern: "^[0-9]{13}-[0-9a-f]{6}-." });
const EntrySchema = Type.Object({ ts: TimestampSchema, value: Type.Unknown(), origin: Type.Optional(TimestampSchema) }, { additionalProperties: false });
/** Rows decided by consensus: objects (conditional writes) and buckets (a name is created once). */
const Target = { shard: Type.String({ pattern: "^(?:b|o[0-9]{1,4})$" }), row: Type.String({ maxLength: 2048 }), ballot: TimestampSchema };

// Each method carries a batch of items (one per row), as index.getBatch does: calls to one
// voter in one turn of the event loop travel together (src/util/batcher.ts).
const PrepareItem = Type.Object(Target, { additionalProperties: false });
const PrepareAnswer = Type.Union([Type.Object({ ok: Type.Literal(true), entry: Type.Union([EntrySchema, Type.Null()]) }), Type.Object({ ok: Type.Literal(false), seen: Type.Optional(TimestampSchema) })]);
/** Phase 1: promise `ballot`, answering with the row as it is (or the highest stamp seen, refusing). */
const Prepare = defineMethod("index.prepare", {
  params: Type.Object({ items: Type.Array(PrepareItem, { maxItems: MAX_BATCH }) }, { additionalProperties: false }),
  result: Type.Array(PrepareAnswer, { maxItems: MAX_BATCH }),
});
/**
 * Phase 2: take the entry (and its change event) if the promise of `ballot` still holds. The
 * entry is stamped `ballot`, or, when a round completes a value an earlier round wrote to
 * some voters, keeps that value's own (lower) stamp.
 */
const AcceptItem = Type.Object(
  {
    ...Target,
    entry: EntrySchema,
    companion: Type.Optional(Type.Tuple([Type.String({ maxLength: 2048 }), EntrySchema])),
    extra: Type.Optional(Type.Array(Type.Tuple([Type.String({ maxLength: 2048 }), EntrySchema]), { maxItems: MAX_EXTRA_ROWS })),
  },
  { additionalProperties: false },
);
const Accept = defineMethod("index.accept", {
  params: Type.Object({ items: Type.Array(AcceptItem, { maxItems: MAX_BATCH }) }, { additionalProperties: false }),
  result: Type.Array(Type.Boolean(), { maxItems: MAX_BATCH }),
});
/** The row as a voter holds it, promising nothing (a refusal's read); `false`: it could not be read. */
const Peek = defineMethod("index.peek", {
  params: Type.Object({ items: Type.Array(Type.Object({ shard: Target.shard, row: Target.row }, { additionalProperties: false }), { maxItems: MAX_BATCH }) }, { additionalProperties: false }),
  result: Type.Array(Type.Union([EntrySchema, Type.Null(), Type.Literal(false)]), { maxItems: MAX_BATCH }),
});
/** The methods a voter serves. */
export const CONSENSUS_METHODS = { Prepare, Accept, Peek };

/** The rows a decided write puts on the voters, all in one batch with the row itself. */
export interface Built<T> {
  /** The row's new value (null: a delete marker), stamped with the round's ballot. */
  write: unknown;
  /** Its change event. */
  companion?: ScanRow;
  /** Other rows of the same shard (a versioned object's version rows), each merged by its own stamp. */
  extra?: ScanRow[];
  /** What `decide` resolves with. */
  result: T;
}

/** A conditional write: the condition, and the rows it writes when it holds. */
export interface Decision<T> {
  /** Why the current row (null: none, or a delete marker) refuses the write (412, 404), or undefined. */
  check(current: IndexEntry | null): Error | undefined;
  /** The rows to write, stamped `ts`, on the current row. */
  build(current: IndexEntry | null, ts: string): Built<T> | Promise<Built<T>>;
  /**
   * This decision's write may have landed, but another row (null: none) has been chosen since,
   * which is not its own: the error to answer with, when the decision can tell what happened
   * (undefined: 409 ConditionalRequestConflict).
   */
  outbid?(chosen: IndexEntry | null): Error | undefined;
}



/** Conditional writes of one peer: its proposer and its voter side. */
export interface Consensus {
  /**
   * Decide the row's next value from its current one (null: no row, or a delete marker's
   * null value), linearizably with every other decision on the row through any peer.
   */
  decide<T>(shard: string, row: string, decision: Decision<T>, opts?: { signal?: AbortSignal }): Promise<T>;
  start(): Promise<void>;
  stop(): void;
}

/** What it needs. */
export interface ConsensusDeps {
  self: string;
  store: IndexStore;
  rpc: Rpc;
  placement: Pick<Placement, "shardVoters" | "shardQuorum" | "reachable">;
  hlc: Hlc;
  /** Admits a write's change event (src/changes/gate.ts). */
  gate?: Pick<LogGate, "admit">;
  /** A write is acknowledged only once no peer serves the row's older value from a cache. */
  leases?: Pick<LeaseTable, "revoke">;
  /** Observe a stamp (the HLC moves past it). */
  observe(ts: string): void;
  /** The data folder (the promise horizon lives there). */
  dir: string;
}

interface Promise_ {
  ballot: string;
  /** The row's stamp when promised ("" for none). */
  basis: string;
}

/** `e`'s value written again in round `ballot`, keeping who first proposed it. */
const rewritten = (e: IndexEntry, ballot: string): IndexEntry => ({ ts: ballot, value: e.value, origin: e.origin ?? e.ts });

/** A voter's answer to a prepare. */
type PrepareReply = { ok: true; entry: IndexEntry | null } | { ok: false; seen?: string };

/** Too few of a row's voters to decide anything: 503, as a quorum write that cannot gather its voters. */
const unavailable = (shard: string, answered: number, quorum: number) =>
  new MeshError("ServiceUnavailable", `conditional write in ${shard}: ${answered} of the ${quorum} voting replicas needed answered`);

/** A conflict the caller may retry: 409 as S3 answers a conditional write that lost a race. */
export const conflict = () => new MeshError("ConditionalRequestConflict", "A conflicting operation occurred. If using PutObject you can retry the request. If using CompleteMultipartUpload you might need to restart the upload.");

/** Create the consensus part of one peer. */
export function createConsensus(deps: ConsensusDeps): Consensus {
  const { store, rpc, placement } = deps;
  const promises = new Map<string, Promise_>();
  // The highest ballot among promises dropped to stay bounded: a row without a promise in
  // memory promises only above it, so no promise is ever followed by a lower one.
  let droppedFloor = "";
  const locks = new Map<string, Promise<void>>();
  const stopping = new AbortController();
  let horizon: Horizon | undefined;

  const key = (shard: string, row: string) => `${shard}\n${row}`;

  /** Run `fn` alone among this voter's phases for the row. */
  async function locked<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const before = locks.get(k) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = before.then(() => mine);
    locks.set(k, chain);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (locks.get(k) === chain) locks.delete(k);
    }
  }

  async function prepareHere(shard: string, row: string, ballot: string): Promise<PrepareReply> {
    const k = key(shard, row);
    return locked(k, async () => {
      // Restarted: promises made before may be forgotten; promise nothing they could contradict.
      const wall = Number(ballot.slice(0, 13));
      if (!horizon || wall <= horizon.earlier) return { ok: false };
      const entry = await store.get(shard, row);
      const promised = promises.get(k);
      const highest = [promised?.ballot ?? droppedFloor, entry?.ts ?? ""].reduce((a, b) => (a > b ? a : b));
      if (ballot <= highest) return { ok: false, seen: highest };
      await horizon.cover(wall);
      promises.delete(k);
      if (promises.size >= MAX_PROMISES) {
        const [oldest, dropped] = promises.entries().next().value!;
        if (dropped.ballot > droppedFloor) droppedFloor = dropped.ballot;
        promises.delete(oldest);
      }
      promises.set(k, { ballot, basis: entry?.ts ?? "" });
      return { ok: true, entry };
    });
  }

  async function acceptHere(shard: string, row: string, ballot: string, entry: IndexEntry, companion?: ScanRow, extra: ScanRow[] = []): Promise<boolean> {
    if (entry.ts !== ballot) return false;
    const k = key(shard, row);
    const taken = await locked(k, async () => {
      const promised = promises.get(k);
      if (promised?.ballot !== ballot) return false;
      const release = companion ? deps.gate?.admit(companion[1].ts) : undefined;
      try {
        return await store.applyIf(shard, row, entry, companion, extra, promised.basis);
      } finally {
        release?.();
      }
    });
    // Like any write: not acknowledged until no peer serves what it replaced from a cache.
    const revoking = taken ? deps.leases?.revoke(shard, row, entry.ts) : undefined;
    if (revoking) await revoking;
    return taken;
  }

  /**
   * Call every reachable voter; resolve once `quorum` answered `good`, or as soon as that can
   * no longer happen (with `hearAll`, only once every voter has answered or failed).
   */
  function gather<R>(voters: string[], quorum: number, call: (peer: string) => Promise<R>, good: (r: R) => boolean, hearAll = false): Promise<{ good: R[]; bad: R[] }> {
    return new Promise((resolve) => {
      const goods: R[] = [];
      const bads: R[] = [];
      let pending = voters.length;
      let done = false;
      const settle = () => {
        if (done) return;
        if (goods.length >= quorum || pending === 0 || (!hearAll && goods.length + pending < quorum)) {
          done = true;
          resolve({ good: [...goods], bad: [...bads] });
        }
      };
      for (const peer of voters) {
        const run = placement.reachable(peer) ? call(peer) : Promise.reject(new Error("unreachable"));
        run.then(
          (r) => {
            pending--;
            (good(r) ? goods : bads).push(r);
            settle();
          },
          () => {
            pending--;
            settle();
          },
        );
      }
      settle();
    });
  }

  type AcceptArgs = { shard: string; row: string; ballot: string; entry: IndexEntry; companion?: ScanRow; extra?: ScanRow[] };
  const remotePeek = createBatcher<{ shard: string; row: string }, IndexEntry | null | false>(async (peer, items) => (await rpc.call(peer, Peek, { items }, { timeoutMs: RPC_TIMEOUT_MS })).result as Array<IndexEntry | null | false>);
  const remotePrepare = createBatcher<{ shard: string; row: string; ballot: string }, PrepareReply>(async (peer, items) => (await rpc.call(peer, Prepare, { items }, { timeoutMs: RPC_TIMEOUT_MS })).result);
  const remoteAccept = createBatcher<AcceptArgs, boolean>(async (peer, items) => (await rpc.call(peer, Accept, { items }, { timeoutMs: RPC_TIMEOUT_MS })).result);

  const peek = async (peer: string, shard: string, row: string): Promise<IndexEntry | null> => {
    const got = peer === deps.self ? await store.get(shard, row) : await remotePeek(peer, { shard, row });
    if (got === false) throw new Error("the voter could not read the row");
    return got;
  };
  const prepare = (peer: string, shard: string, row: string, ballot: string): Promise<PrepareReply> =>
    peer === deps.self ? prepareHere(shard, row, ballot) : remotePrepare(peer, { shard, row, ballot });
  const accept = (peer: string, shard: string, row: string, ballot: string, entry: IndexEntry, companion?: ScanRow, extra?: ScanRow[]) =>
    peer === deps.self
      ? acceptHere(shard, row, ballot, entry, companion, extra)
      : remoteAccept(peer, { shard, row, ballot, entry, ...(companion && { companion }), ...(extra?.length && { extra }) });

  async function propose<T>(shard: string, row: string, decision: Decision<T>, opts: { signal?: AbortSignal }): Promise<T> {
    const voters = placement.shardVoters(shard);
    const quorum = placement.shardQuorum(shard);
    // Our own earlier ballots: a round of ours that reached some voter may be what a later round finds.
    const ours = new Set<string>();
    let pendingResult: { result: unknown; companion?: ScanRow; extra?: ScanRow[] } | undefined;
    // Did an accept of ours perhaps land (a voter took it, or did not answer)? Then our write may have
    // happened and been overwritten since: its outcome is unknown, and only a retry can tell (409).
    let maybeWritten = false;
    const deadline = performance.now() + DECIDE_BUDGET_MS;
    let answeredLast = quorum;
    for (let round = 0; round < MAX_ROUNDS && performance.now() < deadline; round++) {
      if (opts.signal?.aborted || stopping.signal.aborted) throw conflict();
      // Outbid: back off for a random while that grows with each round, so that one proposer gets through.
      if (round > 0) await sleep(Math.random() * Math.min(MAX_BACKOFF_MS, 5 * 2 ** round), opts.signal);
      const ballot = encodeTimestamp(deps.hlc.now());
      const promised = await gather(voters, quorum, (p) => prepare(p, shard, row, ballot), (r) => r.ok);
      for (const r of promised.bad) if (!r.ok && r.seen) deps.observe(r.seen);
      // Too few voters answered at all (not outbid: unreachable or lost): if that lasts, 503 as for any write.
      answeredLast = promised.good.length + promised.bad.length;
      if (promised.good.length < quorum) continue;
      const rows = promised.good.map((r) => (r.ok ? r.entry : null));
      let current: IndexEntry | null = null;
      for (const e of rows) if (e && (!current || e.ts > current.ts)) current = e;
      if (current) deps.observe(current.ts);
      const settled = rows.every((e) => (e?.ts ?? "") === (current?.ts ?? ""));

      // A round of ours already wrote this value: that write stands (re-written here if not yet on a majority).
      if (current && ours.has(current.origin ?? current.ts) && pendingResult) {
        if (settled) return pendingResult.result as never;
        const again = await gather(voters, quorum, (p) => accept(p, shard, row, ballot, rewritten(current!, ballot), pendingResult!.companion, pendingResult!.extra), (ok) => ok);
        if (again.good.length >= quorum) return pendingResult.result as never;
        continue;
      }
      // Ours may be on a voter, but another row is newest here.
      let buryOurs = false;
      if (maybeWritten) {
        // Not settled: choose the newest first, then look again.
        if (!settled) {
          await gather(voters, quorum, (p) => accept(p, shard, row, ballot, current ? rewritten(current, ballot) : { ts: ballot, value: null }), (ok) => ok);
          continue;
        }
        // Settled on a row at least as new as our last round: it was chosen after ours, which
        // either never was or was overwritten since; we cannot tell (409), unless the decision can.
        if ((current?.ts ?? "") >= [...ours].reduce((a, b) => (a > b ? a : b))) throw decision.outbid?.(current?.value === null ? null : current) ?? conflict();
        // Settled on an older row: ours is not chosen (a majority would show it). Decide afresh; a
        // refusal must first bury ours under a newer stamp, or a later round could still choose it.
        buryOurs = true;
      }
      const live = current?.value === null ? null : current;
      const refusal = decision.check(live);
      if (refusal) {
        if (settled && !buryOurs) throw refusal;
        // The value refused against may not be chosen yet: make it so before answering.
        const back = await gather(voters, quorum, (p) => accept(p, shard, row, ballot, current ? rewritten(current, ballot) : { ts: ballot, value: null }), (ok) => ok);
        if (back.good.length >= quorum) throw refusal;
        continue;
      }
      const d = await decision.build(live, ballot);
      if ((d.extra?.length ?? 0) > MAX_EXTRA_ROWS) throw new MeshError("InternalError", `a conditional write carries at most ${MAX_EXTRA_ROWS} extra rows`);
      const companion = d.companion;
      ours.add(ballot);
      pendingResult = { result: d.result, companion, extra: d.extra };
      // Short of a majority, every voter's answer is awaited: only "refused" from all of them
      // means our value is nowhere (a voter that did not answer may hold it).
      const accepted = await gather(voters, quorum, (p) => accept(p, shard, row, ballot, { ts: ballot, value: d.write }, companion, d.extra), (ok) => ok, true);
      if (accepted.good.length >= quorum) return d.result;
      maybeWritten ||= accepted.good.length > 0 || accepted.bad.length < voters.length;
    }
    throw answeredLast < quorum ? unavailable(shard, answeredLast, quorum) : conflict();
  }

  /**
   * A refusal needs no round: if a majority of voters hold the same row, it is chosen, and
   * a decision that refuses it refuses it now (a read, as linearizable as a quorum read). Losers
   * of a race answer from here, without promises that would outbid the winner's round.
   */
  async function refusedOutright<T>(shard: string, row: string, decision: Decision<T>, voters: string[], quorum: number): Promise<Error | undefined> {
    const seen = await gather(voters, quorum, (p) => peek(p, shard, row), () => true);
    if (seen.good.length < quorum) return undefined;
    const first = seen.good[0];
    if (!seen.good.every((e) => (e?.ts ?? "") === (first?.ts ?? ""))) return undefined;
    if (first) deps.observe(first.ts);
    return decision.check(first?.value === null ? null : first);
  }

  return {
    async decide(shard, row, decision, opts = {}) {
      const voters = placement.shardVoters(shard);
      const quorum = placement.shardQuorum(shard);
      const reachable = voters.filter((p) => placement.reachable(p)).length;
      if (reachable < quorum) throw unavailable(shard, reachable, quorum);
      // One proposer per row on this peer at a time: local writers of one key queue here
      // rather than outbid one another at the voters (duelling proposers make no progress).
      const lock = `p\n${key(shard, row)}`;
      const queued = locks.has(lock);
      return locked(lock, async () => {
        // What the writers queued ahead of this one decided may refuse it already: find out
        // with a read rather than a round whose promises would outbid the next winner.
        if (queued) {
          const refused = await refusedOutright(shard, row, decision, voters, quorum);
          if (refused) throw refused;
        }
        return propose(shard, row, decision, opts);
      });
    },

    async start() {
      horizon = await openHorizon(path.join(deps.dir, PROMISE_HORIZON_FILE), HORIZON_STEP_MS);
      // Each item on its own: one that fails (a ballot from too far ahead, a store error) is refused alone.
      rpc.register(Prepare, async ({ params: { items } }) => ({
        result: await Promise.all(
          items.map(({ shard, row, ballot }) =>
            (async (): Promise<PrepareReply> => {
              deps.observe(ballot);
              return prepareHere(shard, row, ballot);
            })().catch((): PrepareReply => ({ ok: false })),
          ),
        ),
      }));
      rpc.register(Peek, async ({ params: { items } }) => ({
        result: await Promise.all(items.map(({ shard, row }) => store.get(shard, row).catch(() => false as const))),
      }));
      rpc.register(Accept, async ({ params: { items } }) => ({
        result: await Promise.all(
          items.map(({ shard, row, ballot, entry, companion, extra }) =>
            (async () => {
              deps.observe(ballot);
              return acceptHere(shard, row, ballot, entry, companion as ScanRow | undefined, extra as ScanRow[] | undefined);
            })().catch(() => false),
          ),
        ),
      }));
    },
    stop() {
      stopping.abort();
      for (const m of Object.values(CONSENSUS_METHODS)) rpc.unregister(m);
    },
  };
}
