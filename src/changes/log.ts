// Reading a bucket's change events. Every shard that holds a bucket's rows (each object
// shard, and BUCKETS_SHARD for the bucket's own events) keeps its events as rows named by
// their ids; a read asks a quorum of each shard's replicas for the events after a position
// (one call per peer, as listing does), together with each replica's mark (gate.ts). Per
// shard the merged answer is complete up to `reached`: the smallest mark of the replicas
// asked, and the last event a replica sent when it stopped at its limit. Events above it
// wait for a later read.
//
// A cursor is one position in id space: every event at or below it has been served. A
// page serves events in id order across shards, so that holds, and a key's events (one
// shard, ids in last-writer-wins order) come in order.
import { Type } from "@sinclair/typebox";
import { BadRequestError } from "../errors.ts";
import { askShardQuorums } from "../metadata/listing.ts";
import { allObjectShards, BUCKETS_SHARD, eventRowPrefix } from "../metadata/keys.ts";
import { MAX_CLOCK_DRIFT_MS } from "../util/hlc.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore } from "../store/index-store.ts";
import { positionAt, type LogGate } from "./gate.ts";
import { matches, type ChangeEvent, type EventFilter, type LoggedEvent } from "./records.ts";

/** Most events one page serves. */
export const MAX_PAGE = 1000;
/** Events a page serves unless asked for another number. */
export const DEFAULT_PAGE = 100;
/** Rows one replica scans per shard per call when a filter leaves most out. */
const FILTER_SCAN_BUDGET = 5000;
const RPC_TIMEOUT_MS = 10_000;

/** A position: "" (before every event) or an event id, or a time position (gate.ts). */
const POSITION_RE = /^(?:|[0-9]{13}-[0-9a-f]{6}(?:-[A-Za-z0-9]{1,128})?)$/;

const PositionSchema = Type.String({ maxLength: 160, pattern: POSITION_RE.source });
const LoggedEventSchema = Type.Object({
  name: Type.String({ maxLength: 64 }),
  key: Type.Optional(Type.String({ maxLength: 2048 })),
  size: Type.Optional(Type.Number()),
  etag: Type.Optional(Type.String({ maxLength: 128 })),
  actor: Type.Optional(Type.String({ maxLength: 128 })),
});
const FilterSchema = Type.Object({
  types: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 20 })),
  prefix: Type.Optional(Type.String({ maxLength: 1024 })),
  suffix: Type.Optional(Type.String({ maxLength: 1024 })),
});
const ShardAnswerSchema = Type.Object({
  events: Type.Array(Type.Tuple([PositionSchema, LoggedEventSchema]), { maxItems: MAX_PAGE }),
  /** Set when the replica stopped early: its answer is complete up to here. */
  cut: Type.Optional(PositionSchema),
});
/** A replica's events of one bucket in some of its shards, after a position per shard, with its mark. */
const ScanEvents = defineMethod("events.scan", {
  params: Type.Object({
    bucket: Type.String({ minLength: 3, maxLength: 63 }),
    after: Type.Record(Type.String({ pattern: "^(?:b|o[0-9]{1,4})$" }), PositionSchema, { maxProperties: 4097 }),
    limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE }),
    filter: FilterSchema,
  }),
  result: Type.Object({ mark: PositionSchema, shards: Type.Record(Type.String(), ShardAnswerSchema) }),
});

type ShardAnswer = { events: Array<[string, LoggedEvent]>; cut?: string; mark: string };

/** A read of some shards from a position each. */
export interface ShardsRead {
  /** Events at or below their shard's `reached`, in id order. */
  events: Array<ChangeEvent & { shard: string }>;
  /** Per shard: every event at or below it has been read (never below where the read started). */
  reached: Map<string, string>;
}

/** The change log as one peer reads and serves it. */
export interface ChangeLog {
  /** Every shard that holds events of some bucket. */
  shards(): string[];
  /** Events of `bucket` after a position per shard, at most `limit` per shard. */
  readShards(bucket: string, after: Map<string, string>, opts: { limit: number; filter: EventFilter }): Promise<ShardsRead>;
  /** A page of `bucket`'s events after `cursor`, in id order, and the cursor to go on from. */
  read(bucket: string, opts: { cursor: string; limit: number; filter: EventFilter }): Promise<{ events: ChangeEvent[]; cursor: string }>;
  /** A cursor from which only events from about now on are read. */
  now(): string;
  /** Serve this replica's side (the events.scan method). */
  start(): void;
  stop(): void;
}

/** What the change log reads from. */
export interface ChangeLogDeps {
  self: string;
  store: Pick<IndexStore, "scan">;
  gate: Pick<LogGate, "mark">;
  rpc: Pick<Rpc, "register" | "unregister" | "call">;
  placement: Placement;
  indexShards: number;
  /** How far the gate's marks trail the clock (src/changes/gate.ts). */
  settleMs: number;
  clock?: () => number;
}

/** Throw InvalidArgument unless `cursor` is one this mesh could have given. */
export function checkCursor(cursor: string, nowMs: number): string {
  if (cursor.length > 160 || !POSITION_RE.test(cursor)) throw new BadRequestError("the cursor is not one this API gave: pass back a cursor or event id exactly as it was received", "InvalidArgument");
  if (cursor && Number(cursor.slice(0, 13)) > nowMs + MAX_CLOCK_DRIFT_MS) throw new BadRequestError("the cursor is from the future: pass back a cursor or event id exactly as it was received", "InvalidArgument");
  return cursor;
}

/** Create the change log of one peer. */
export function createChangeLog(deps: ChangeLogDeps): ChangeLog {
  const { store, gate, rpc } = deps;
  const clock = deps.clock ?? Date.now;
  const shards = [...allObjectShards(deps.indexShards), BUCKETS_SHARD];

  /** This replica's answer: the mark first, then the scans (an event admitted meanwhile is above the mark). */
  async function scanHere(bucket: string, after: Record<string, string>, limit: number, filter: EventFilter) {
    const mark = gate.mark();
    const prefix = eventRowPrefix(bucket);
    const filtered = Boolean(filter.types || filter.prefix || filter.suffix);
    const budget = filtered ? Math.max(FILTER_SCAN_BUDGET, limit) : limit;
    const out: Record<string, { events: Array<[string, LoggedEvent]>; cut?: string }> = {};
    await Promise.all(
      Object.entries(after).map(async ([shard, from]) => {
        const rows = await store.scan(shard, { prefix, after: from ? prefix + from : undefined, limit: budget });
        const events: Array<[string, LoggedEvent]> = [];
        let cut: string | undefined;
        for (const [row, entry] of rows) {
          const id = row.slice(prefix.length);
          const event = entry.value as LoggedEvent | null;
          if (event && matches(filter, event)) events.push([id, event]);
          if (events.length === limit) {
            cut = id;
            break;
          }
        }
        if (cut === undefined && rows.length === budget) cut = rows[rows.length - 1][0].slice(prefix.length);
        out[shard] = cut === undefined ? { events } : { events, cut };
      }),
    );
    return { mark, shards: out };
  }

  async function ask(peer: string, bucket: string, after: Map<string, string>, list: string[], limit: number, filter: EventFilter): Promise<Record<string, ShardAnswer>> {
    const from = Object.fromEntries(list.map((s) => [s, after.get(s)!]));
    const answer =
      peer === deps.self ? await scanHere(bucket, from, limit, filter) : (await rpc.call(peer, ScanEvents, { bucket, after: from, limit, filter }, { timeoutMs: RPC_TIMEOUT_MS })).result;
    const out: Record<string, ShardAnswer> = {};
    for (const s of list) {
      const a = answer.shards[s];
      if (a) out[s] = { events: a.events as Array<[string, LoggedEvent]>, cut: a.cut, mark: answer.mark };
    }
    return out;
  }

  async function readShards(bucket: string, after: Map<string, string>, opts: { limit: number; filter: EventFilter }): Promise<ShardsRead> {
    const list = [...after.keys()];
    const answers = await askShardQuorums(deps, list, "reading events", (peer, part) => ask(peer, bucket, after, part, opts.limit, opts.filter));
    const events: ShardsRead["events"] = [];
    const reached = new Map<string, string>();
    for (const shard of list) {
      const replies = answers.get(shard)!;
      let bound = replies.reduce((m, r) => (r.mark < m ? r.mark : m), replies[0].mark);
      for (const r of replies) if (r.cut !== undefined && r.cut < bound) bound = r.cut;
      const start = after.get(shard)!;
      const seen = new Set<string>();
      for (const r of replies) {
        for (const [id, event] of r.events) {
          if (id <= start || id > bound || seen.has(id)) continue;
          seen.add(id);
          events.push({ id, bucket, shard, event });
        }
      }
      reached.set(shard, bound > start ? bound : start);
    }
    events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { events, reached };
  }

  return {
    shards: () => shards,
    readShards,
    async read(bucket, { cursor, limit, filter }) {
      // Each shard sends a share of the page: events spread over shards, and a shard that
      // stops early only bounds the page (the next read goes on from there).
      const perShard = Math.min(limit, Math.ceil((2 * limit) / shards.length) + 16);
      const { events, reached } = await readShards(bucket, new Map(shards.map((s) => [s, cursor])), { limit: perShard, filter });
      let upTo = [...reached.values()].reduce((m, r) => (r < m ? r : m));
      const page = events.filter((e) => e.id <= upTo).slice(0, limit);
      if (page.length === limit) upTo = page[page.length - 1].id;
      return { events: page.map(({ id, bucket: b, event }) => ({ id, bucket: b, event })), cursor: upTo > cursor ? upTo : cursor };
    },
    now: () => positionAt(clock() - deps.settleMs),
    start() {
      rpc.register(ScanEvents, async ({ params }) => ({ result: await scanHere(params.bucket, params.after, params.limit, params.filter) }));
    },
    stop() {
      rpc.unregister(ScanEvents);
    },
  };
}
