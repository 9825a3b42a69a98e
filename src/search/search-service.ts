// The search of one peer as clients see it: bucket schemas (a replicated row of the
// buckets shard, cached for a moment on every peer), the check of metadata against them
// on writes, and queries, fanned out to the index shards as a listing is.
//
// A query round asks a quorum of replicas of every object shard (this peer first, one
// call per peer) for their next matches after the cursor (src/search/shard-query.ts);
// each answer is complete up to the position it `reached`, so the merge is complete up
// to the nearest of those (the bound), and rounds go on from the bound until the page is
// full. A key that the replicas of its shard do not report alike (one has a newer
// version, or lacks a delete the other has) is read again with a quorum read and judged
// on what that returns: so a write acknowledged through any peer shows in the next query.
import type { AbortOptions } from "@libp2p/interface";
import { Type } from "@sinclair/typebox";
import { ConflictError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { askShardQuorums } from "../metadata/listing.ts";
import { allObjectShards, BUCKETS_SHARD, objectRow, schemaRow } from "../metadata/keys.ts";
import type { SharedCaches } from "../metadata/shared-cache.ts";
import type { IndexEntry } from "../metadata/types.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { MetadataRules } from "../objects/object-service.ts";
import type { Placement } from "../placement/placement.ts";
import type { IndexStore } from "../store/index-store.ts";
import { mapLimit } from "../util/map-limit.ts";
import { INDEXED_SYSTEM_FIELDS, type ObjectSummary } from "./derive.ts";
import type { PeerIndexState, SearchIndexer } from "./indexer.ts";
import { MAX_CONDITIONS, MAX_CURSOR, MAX_IN, MAX_LIMIT, QueryError, queryFromText, validateQuery, type Query, type ValidQuery } from "./query.ts";
import { FIELD_TYPES, parseMetadata, validateSchema, type BucketSchema, type FieldType } from "./schema.ts";
import { before, matchPosition, queryShard, usable, type ShardAnswer, type ShardMatch, type ShardQuery } from "./shard-query.ts";

/** One object in a query's answer. */
export interface FoundObject {
  key: string;
  size: number;
  etag: string;
  /** ISO 8601. */
  lastModified: string;
  contentType: string;
  meta: Record<string, string>;
}

/** A page of a query's answer. */
export interface QueryPage {
  objects: FoundObject[];
  /** Pass back as `cursor` for the next page; null when there is none. */
  nextCursor: string | null;
}

/** A field's state in GET /buckets/{b}/schema. */
export interface FieldState {
  type: FieldType;
  /** `building` until every live peer has indexed the objects it holds. */
  state: "building" | "ready";
}

/** A bucket's schema with the state of its index across the mesh. */
export interface SchemaState {
  bucket: string;
  fields: Record<string, FieldState>;
  /** `ready` once every field and the system fields are indexed on every live peer. */
  state: "building" | "ready";
  /** While building: peers whose index is complete, of the live peers, and objects indexed so far. */
  progress: { peersReady: number; peers: number; objectsIndexed: number };
}

/** The text form's parameters (GET /buckets/{b}/query). */
export interface TextQuery {
  q?: string;
  sort?: string;
  order?: string;
  limit?: string;
  cursor?: string;
  allowPartial?: string;
}

/** Search as the APIs use it. */
export interface SearchService {
  /** Serve the replica side (RPC). */
  start(): void;
  stop(): void;
  /** What the object service checks metadata with. */
  rules: MetadataRules;
  getSchema(bucket: string): Promise<SchemaState>;
  putSchema(bucket: string, raw: unknown): Promise<SchemaState>;
  deleteSchema(bucket: string): Promise<void>;
  deleteField(bucket: string, field: string): Promise<SchemaState>;
  query(bucket: string, raw: unknown): Promise<QueryPage>;
  queryText(bucket: string, params: TextQuery): Promise<QueryPage>;
  /** Every key this peer's own replicas answer to a query (JSON model), in order, with no other replica asked: what a repair left here. */
  localAnswer(bucket: string, raw: unknown): Promise<string[]>;
}

/** Dependencies of the search service. */
export interface SearchServiceDeps {
  self: string;
  index: IndexClient;
  store: IndexStore;
  placement: Placement;
  rpc: Rpc;
  indexer: SearchIndexer;
  caches: SharedCaches;
  indexShards: number;
  /** A fresh row stamp. */
  now(): string;
  /** Every peer believed alive, this one included. */
  livePeers(): string[];
  /** Throws NoSuchBucket (the object service's check, cached). */
  requireBucket(bucket: string, opts?: AbortOptions): Promise<void>;
}

/** How long a peer trusts a schema (or its absence) it read: a change reaches the others through a forget at once. */
const SCHEMA_CACHE_MS = 5000;
const SCHEMA_CACHE_MAX = 10_000;
/** Most time one query spends in rounds before it answers a shorter page with a cursor. */
const QUERY_TIME_MS = 2000;
/** Most index rows a replica reads per shard in one round of an ordered scan. */
const ROUND_BUDGET = 2048;
/** Quorum reads in flight when checking keys the replicas disagree on. */
const VERIFY_CONCURRENCY = 16;
const RPC_TIMEOUT_MS = 10_000;
const STATE_TIMEOUT_MS = 2000;

// ---- The replica side ----

const ValueSchema = Type.Union([Type.Number(), Type.String({ maxLength: 4096 }), Type.Boolean()]);
const FieldTypeSchema = Type.Union(FIELD_TYPES.map((t) => Type.Literal(t)));
const FieldNameSchema = Type.String({ minLength: 1, maxLength: 64 });
const ConditionSchema = Type.Object({
  field: FieldNameSchema,
  type: FieldTypeSchema,
  system: Type.Boolean(),
  op: Type.Union(["=", "!=", "<", "<=", ">", ">=", "prefix", "in"].map((o) => Type.Literal(o))),
  value: Type.Union([ValueSchema, Type.Array(ValueSchema, { minItems: 1, maxItems: MAX_IN })]),
});
const SortSchema = Type.Object({ field: FieldNameSchema, type: FieldTypeSchema, system: Type.Boolean(), order: Type.Union([Type.Literal("asc"), Type.Literal("desc")]) });
const SummarySchema = Type.Object({
  ts: Type.String({ maxLength: 160 }),
  size: Type.Number(),
  // As long as a PUT may make them: a peer's answer is refused whole if one object breaks its schema.
  etag: Type.String(),
  lastModified: Type.Number(),
  contentType: Type.String(),
  meta: Type.Record(Type.String(), Type.String()),
});
const MatchSchema = Type.Tuple([Type.String({ maxLength: 2048 }), Type.String({ maxLength: MAX_CURSOR }), SummarySchema]);
const AnswerSchema = Type.Object({ rows: Type.Array(MatchSchema, { maxItems: MAX_LIMIT + 1 }), reached: Type.Union([Type.String({ maxLength: MAX_CURSOR }), Type.Null()]) });

/** A query round on one replica: its answer for each shard named, and the queried fields its index is still building. */
const QueryMethod = defineMethod("search.query", {
  params: Type.Object({
    bucket: Type.String({ minLength: 1, maxLength: 63 }),
    shards: Type.Array(Type.String({ pattern: "^o[0-9]{1,4}$" }), { maxItems: 4096 }),
    where: Type.Array(ConditionSchema, { maxItems: MAX_CONDITIONS }),
    sort: SortSchema,
    after: Type.Optional(Type.String({ maxLength: MAX_CURSOR })),
    limit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT + 1 }),
    budget: Type.Integer({ minimum: 1, maximum: 100_000 }),
  }),
  result: Type.Object({ answers: Type.Record(Type.String(), AnswerSchema), building: Type.Array(FieldNameSchema, { maxItems: MAX_CONDITIONS + 1 }) }),
});
type QueryParams = ShardQuery & { shards: string[] };
type QueryResult = { answers: Record<string, ShardAnswer>; building: string[] };

/** A replica's state of one bucket's index (GET /buckets/{b}/schema gathers them). */
const StateMethod = defineMethod("search.state", {
  params: Type.Object({ bucket: Type.String({ minLength: 1, maxLength: 63 }) }),
  result: Type.Object({
    fields: Type.Record(Type.String(), Type.Object({ type: FieldTypeSchema, ready: Type.Boolean() })),
    systemReady: Type.Boolean(),
    objectsIndexed: Type.Integer({ minimum: 0 }),
  }),
});

// ---- Cursors ----

/** The part of a query a cursor belongs to: a cursor of another query is refused, not misapplied. */
const fingerprint = (q: ValidQuery) => Bun.hash.xxHash64(JSON.stringify([q.where, q.sort])).toString(36);

// A cursor is "<fingerprint>.<position as base64url of its UTF-8>": whatever bytes a key
// holds, a cursor stays within MAX_CURSOR (a 1024-byte key and its value: under 1,500 chars).
function encodeCursor(pos: string, q: ValidQuery): string {
  return `${fingerprint(q)}.${Buffer.from(pos, "utf8").toString("base64url")}`;
}

function decodeCursor(cursor: string, q: ValidQuery): string {
  const m = /^([0-9a-z]{1,16})\.([A-Za-z0-9_-]*)$/.exec(cursor);
  if (!m) throw new QueryError("cursor is the nextCursor of an earlier page, unchanged");
  if (m[1] !== fingerprint(q)) throw new QueryError("cursor belongs to another query: a cursor continues the query (where and sort) that returned it");
  return Buffer.from(m[2], "base64url").toString("utf8");
}

const found = (key: string, s: ObjectSummary): FoundObject => ({ key, size: s.size, etag: s.etag, lastModified: new Date(s.lastModified).toISOString(), contentType: s.contentType, meta: s.meta });

/** Create the search service of one peer. */
export function createSearchService(deps: SearchServiceDeps): SearchService {
  const { index, placement, indexer } = deps;
  const schemas = deps.caches.define<BucketSchema>("schemas", { max: SCHEMA_CACHE_MAX, ttlMs: SCHEMA_CACHE_MS, missTtlMs: SCHEMA_CACHE_MS, key: Type.String({ minLength: 1, maxLength: 63 }) });
  const objectShards = allObjectShards(deps.indexShards);

  const schemaOf = (bucket: string, opts?: AbortOptions) =>
    schemas.get(bucket, async () => ((await index.read(BUCKETS_SHARD, schemaRow(bucket), opts))?.value as BucketSchema | null) ?? null);

  async function writeSchema(bucket: string, schema: BucketSchema | null): Promise<void> {
    await index.write(BUCKETS_SHARD, schemaRow(bucket), { ts: deps.now(), value: schema });
    await schemas.forget(bucket);
    // This peer starts (or stops) indexing now; the others read the row within a moment.
    await indexer.sync();
  }

  /** The replica side of a round. */
  async function answerLocally(p: QueryParams): Promise<QueryResult> {
    const view = indexer.view(p.bucket);
    // Conditions are checked on each object's own metadata, so only the indexes a scan walks can be
    // incomplete: a user field's (the contract: any user field queried) and a system sort field's.
    const building = [...p.where.filter((c) => !c.system), p.sort].filter((c) => !usable(view, c.field, c.type, c.system)).map((c) => c.field);
    const answers: Record<string, ShardAnswer> = {};
    await Promise.all(p.shards.map(async (s) => (answers[s] = await queryShard(deps.store, view, s, p))));
    return { answers, building: [...new Set(building)] };
  }

  async function askPeer(peer: string, p: QueryParams): Promise<QueryResult> {
    if (peer === deps.self) return answerLocally(p);
    const { result } = await deps.rpc.call(peer, QueryMethod, p, { timeoutMs: RPC_TIMEOUT_MS });
    return result as QueryResult;
  }

  /** One round: every shard's matches after `after`, merged and complete up to the bound. */
  async function round(bucket: string, q: ValidQuery, after: string | undefined, per: number): Promise<{ rows: ShardMatch[]; bound: string | null; building: string[] }> {
    const building = new Set<string>();
    const answers = await askShardQuorums({ placement, self: deps.self }, objectShards, "query", async (peer, shards) => {
      const res = await askPeer(peer, { bucket, shards, where: q.where, sort: q.sort, after, limit: per, budget: ROUND_BUDGET });
      for (const f of res.building) building.add(f);
      return res.answers;
    });
    const order = q.sort.order;
    let bound: string | null = null;
    for (const replies of answers.values()) for (const a of replies) if (a.reached !== null && (bound === null || before(order, a.reached, bound))) bound = a.reached;
    const within = (pos: string) => bound === null || !before(order, bound, pos);

    const agreed: ShardMatch[] = [];
    const doubtful: Array<[shard: string, key: string]> = [];
    for (const [shard, replies] of answers) {
      // Per key: its first report, how many replicas reported it, whether alike, and whether any report falls within the bound.
      const seen = new Map<string, { match: ShardMatch; count: number; same: boolean; inBound: boolean }>();
      for (const a of replies) {
        for (const m of a.rows) {
          const prev = seen.get(m[0]);
          if (!prev) seen.set(m[0], { match: m, count: 1, same: true, inBound: within(m[1]) });
          else {
            prev.count++;
            prev.same &&= prev.match[2].ts === m[2].ts && prev.match[1] === m[1];
            prev.inBound ||= within(m[1]);
          }
        }
      }
      for (const [key, { match, count, same, inBound }] of seen) {
        if (!inBound) continue;
        if (same && count === replies.length) agreed.push(match);
        else doubtful.push([shard, key]);
      }
    }
    const checked = await mapLimit(doubtful, VERIFY_CONCURRENCY, async ([shard, key]) => matchPosition(q, key, (await index.read(shard, objectRow(bucket, key))) as IndexEntry | null));
    for (const m of checked) if (m && within(m[1]) && (after === undefined || before(order, after, m[1]))) agreed.push(m);
    agreed.sort((a, b) => (before(order, a[1], b[1]) ? -1 : 1));
    return { rows: agreed, bound, building: [...building] };
  }

  async function run(bucket: string, q: ValidQuery, schema: BucketSchema | null): Promise<QueryPage> {
    if (q.sort.system && q.sort.field !== "key" && !(INDEXED_SYSTEM_FIELDS as readonly string[]).includes(q.sort.field)) {
      throw new QueryError(`${q.sort.field} can be a condition but not the sort order: sort by key, ${INDEXED_SYSTEM_FIELDS.join(", ")} or a field of the bucket's schema`);
    }
    if (!schema && q.sort.system && q.sort.field !== "key") {
      throw new QueryError(`sorting by ${q.sort.field} needs the bucket's search index: give the bucket a schema (PUT /buckets/${bucket}/schema; {"fields": {}} is enough)`);
    }
    let after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, q);
    const per = Math.min(MAX_LIMIT + 1, Math.max(8, Math.ceil(((q.limit + 1) * 1.5) / objectShards.length) + 2));
    const deadline = performance.now() + QUERY_TIME_MS;
    const items: ShardMatch[] = [];
    let bound: string | null = null;
    for (;;) {
      const r = await round(bucket, q, after, per);
      if (r.building.length && !q.allowPartial) {
        throw new ConflictError(`the index of ${r.building.join(", ")} is still being built on some peers; try again soon, or ask with allowPartial (answers may then miss objects)`, "IndexNotReady");
      }
      items.push(...r.rows);
      bound = r.bound;
      if (bound === null || items.length > q.limit || performance.now() > deadline) break;
      after = bound;
    }
    const page = items.slice(0, q.limit);
    const next = items.length > q.limit ? page[page.length - 1][1] : bound;
    return { objects: page.map(([key, , s]) => found(key, s)), nextCursor: next === null ? null : encodeCursor(next, q) };
  }

  async function stateOf(bucket: string, schema: BucketSchema): Promise<SchemaState> {
    const peers = deps.livePeers();
    const states = await Promise.all(
      peers.map(async (p): Promise<PeerIndexState | null> => {
        if (p === deps.self) return indexer.state(bucket);
        try {
          return (await deps.rpc.call(p, StateMethod, { bucket }, { timeoutMs: STATE_TIMEOUT_MS })).result as PeerIndexState;
        } catch {
          return null; // a peer that does not answer has not shown it is ready
        }
      }),
    );
    const fieldReady = (f: string) => states.every((s) => s?.fields[f]?.type === schema.fields[f] && s.fields[f].ready);
    const fields = Object.fromEntries(Object.entries(schema.fields).map(([f, type]) => [f, { type, state: fieldReady(f) ? "ready" : "building" } as FieldState]));
    const peerReady = (s: PeerIndexState | null) => s !== null && s.systemReady && Object.entries(schema.fields).every(([f, type]) => s.fields[f]?.type === type && s.fields[f].ready);
    const peersReady = states.filter(peerReady).length;
    return {
      bucket,
      fields,
      state: peersReady === peers.length ? "ready" : "building",
      progress: { peersReady, peers: peers.length, objectsIndexed: states.reduce((n, s) => n + (s?.objectsIndexed ?? 0), 0) },
    };
  }

  async function requireSchema(bucket: string): Promise<BucketSchema> {
    await deps.requireBucket(bucket);
    const schema = await schemaOf(bucket);
    if (!schema) throw new NotFoundError(`bucket ${bucket} has no search schema`, "NoSuchSchema");
    return schema;
  }

  return {
    start() {
      deps.rpc.register(QueryMethod, async ({ params }) => ({ result: await answerLocally(params as QueryParams) }));
      deps.rpc.register(StateMethod, async ({ params }) => ({ result: indexer.state(params.bucket) }));
    },
    stop() {
      deps.rpc.unregister(QueryMethod);
      deps.rpc.unregister(StateMethod);
    },

    rules: {
      async checkMeta(bucket, meta, opts) {
        const schema = await schemaOf(bucket, opts);
        if (schema) parseMetadata(schema, meta);
      },
      forgetSchema: (bucket) => schemas.forget(bucket),
    },

    async getSchema(bucket) {
      return stateOf(bucket, await requireSchema(bucket));
    },
    async putSchema(bucket, raw) {
      await deps.requireBucket(bucket);
      const schema = validateSchema(raw);
      await writeSchema(bucket, schema);
      return stateOf(bucket, schema);
    },
    async deleteSchema(bucket) {
      await requireSchema(bucket);
      await writeSchema(bucket, null);
    },
    async deleteField(bucket, field) {
      const schema = await requireSchema(bucket);
      if (!Object.hasOwn(schema.fields, field)) throw new NotFoundError(`the schema of bucket ${bucket} has no field ${JSON.stringify(field.slice(0, 80))}`, "NoSuchField");
      const fields = { ...schema.fields };
      delete fields[field];
      const next = { fields };
      await writeSchema(bucket, next);
      return stateOf(bucket, next);
    },

    async query(bucket, raw) {
      await deps.requireBucket(bucket);
      const schema = await schemaOf(bucket);
      return run(bucket, validateQuery(raw, schema ?? { fields: {} }), schema);
    },
    async localAnswer(bucket, raw) {
      const schema = (await schemaOf(bucket)) ?? { fields: {} };
      const q = validateQuery(raw, schema);
      const view = indexer.view(bucket);
      const held = objectShards.filter((s) => placement.shardVoters(s).includes(deps.self));
      const all: ShardMatch[] = [];
      for (const shard of held) {
        let after: string | undefined;
        do {
          const a = await queryShard(deps.store, view, shard, { bucket, where: q.where, sort: q.sort, after, limit: MAX_LIMIT, budget: ROUND_BUDGET });
          all.push(...a.rows);
          after = a.reached ?? undefined;
        } while (after !== undefined);
      }
      return all.sort((a, b) => (before(q.sort.order, a[1], b[1]) ? -1 : 1)).map(([key]) => key);
    },
    async queryText(bucket, p) {
      await deps.requireBucket(bucket);
      const schema = await schemaOf(bucket);
      if (p.order !== undefined && p.sort === undefined) throw new QueryError("order needs sort: ?sort=<field>&order=asc|desc");
      const rest: Omit<Query, "where"> = {};
      if (p.sort !== undefined) rest.sort = { field: p.sort, order: p.order as "asc" | "desc" | undefined };
      if (p.limit !== undefined) rest.limit = /^[0-9]{1,7}$/.test(p.limit) ? Number(p.limit) : (p.limit as unknown as number);
      if (p.cursor !== undefined) rest.cursor = p.cursor;
      if (p.allowPartial !== undefined) {
        if (p.allowPartial !== "true" && p.allowPartial !== "false") throw new QueryError("allowPartial is true or false");
        rest.allowPartial = p.allowPartial === "true";
      }
      const text = p.q ?? "";
      return run(bucket, text.trim() === "" ? validateQuery({ ...rest, where: [] }, schema ?? { fields: {} }) : queryFromText(text, schema ?? { fields: {} }, rest), schema);
    },
  };
}
