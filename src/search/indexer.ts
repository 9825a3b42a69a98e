// This peer's side of the search index: which buckets have a schema (read from its own
// replica of the buckets shard, which every peer holds), the derivation that makes the
// index store write secondary rows beside each manifest of those buckets, and the
// backfill that indexes the objects already stored when a field is added.
//
// A field is ready here once every manifest this peer held when it learned of the field
// has been re-derived: manifests written or repaired in later derive it as they arrive.
// Readiness is a local note, so a restarted peer does not index again what it has.
import { BUCKETS_SHARD, bucketFieldsPrefix, bucketOfObjectRow, fieldRowPrefix, objectRowPrefix, SCHEMA_ROW_PREFIX } from "../metadata/keys.ts";
import { createRateLimiter } from "../repair/rate-limiter.ts";
import type { IndexStore } from "../store/index-store.ts";
import type { Logger } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import { deriveObjectRows, type DerivedFields } from "./derive.ts";
import type { BucketSchema, FieldType } from "./schema.ts";

/** What this peer's index can answer for one bucket. */
export interface IndexView {
  /** The fields its rows are derived for, with their types (as this peer knows the schema). */
  fields: DerivedFields;
  /** User fields whose rows are complete here. */
  ready: ReadonlySet<string>;
  /** The system fields' rows are complete here. */
  systemReady: boolean;
}

/** This peer's state of one bucket's index (GET /buckets/{b}/schema gathers every peer's). */
export interface PeerIndexState {
  fields: Record<string, { type: FieldType; ready: boolean }>;
  systemReady: boolean;
  /** Objects the running (or last) backfill has indexed. */
  objectsIndexed: number;
}

/** The local search index of one peer. */
export interface SearchIndexer {
  /** Read the schemas and notes this peer has and start deriving; call before the index serves. */
  load(): Promise<void>;
  /** Follow schema changes and backfill. */
  start(): void;
  stop(): Promise<void>;
  /** Read the schema rows again now (a change made through this peer need not wait for the next look). */
  sync(): Promise<void>;
  /** What this peer's index holds for `bucket`, or undefined when the bucket has no schema here. */
  view(bucket: string): IndexView | undefined;
  /** This peer's state of `bucket`'s index. */
  state(bucket: string): PeerIndexState;
  /** Resolves once no backfill is queued or running (tests and benches). */
  idle(): Promise<void>;
}

/** Dependencies of the indexer. */
export interface IndexerDeps {
  store: IndexStore;
  log: Logger;
  /** Objects per second a backfill indexes. */
  perSecond: number;
  /** How often the schema rows are read again. */
  syncIntervalMs?: number;
}

interface BucketIndex {
  fields: DerivedFields;
  ready: Set<string>;
  systemReady: boolean;
  indexed: number;
  /** Bumped by every change of the fields: a backfill that saw one mid-way proves nothing ready. */
  changes: number;
}

/** What a peer notes of a bucket's index: the fields (with their types) whose rows are complete. */
interface ReadyNote {
  fields: DerivedFields;
  system: boolean;
}

const noteName = (bucket: string) => `search:${bucket}`;
/** Manifests read per step of a backfill (re-derived together, so they share fsyncs). */
const BACKFILL_PAGE = 256;
/** Most schema rows read in one look: far above any real number of buckets. */
const MAX_SCHEMAS = 100_000;

const sameFields = (a: DerivedFields, b: DerivedFields) => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
};

/** Create the indexer of one peer. */
export function createSearchIndexer(deps: IndexerDeps): SearchIndexer {
  const { store, log } = deps;
  const buckets = new Map<string, BucketIndex>();
  const queue = new Set<string>();
  const limiter = createRateLimiter(deps.perSecond);
  const stopping = new AbortController();
  let worker: Promise<void> | undefined;
  let looping: Promise<void> | undefined;
  let idleWaiters: Array<() => void> = [];

  const objectShards = () => store.shards().filter((s) => s.startsWith("o"));

  store.setDerivation({
    derive(shard, row, entry) {
      // Manifests only: object shards, rows that are not multipart rows (\x01...).
      if (shard.charCodeAt(0) !== 0x6f || row.charCodeAt(0) === 1) return [];
      const bucket = bucketOfObjectRow(row);
      const b = bucket === undefined ? undefined : buckets.get(bucket);
      return b ? deriveObjectRows(bucket!, row, entry, b.fields) : [];
    },
  });

  async function saveNote(bucket: string, b: BucketIndex): Promise<void> {
    const ready = Object.fromEntries(Object.entries(b.fields).filter(([f]) => b.ready.has(f)));
    await store.putNote(noteName(bucket), { fields: ready, system: b.systemReady } satisfies ReadyNote);
  }

  async function clear(prefix: string): Promise<void> {
    for (const shard of objectShards()) await store.clearDerived(shard, prefix);
  }

  /** The schemas in this peer's replica of the buckets shard. */
  async function localSchemas(): Promise<Map<string, DerivedFields>> {
    const rows = await store.scan(BUCKETS_SHARD, { prefix: SCHEMA_ROW_PREFIX, limit: MAX_SCHEMAS });
    const out = new Map<string, DerivedFields>();
    for (const [row, entry] of rows) {
      const schema = entry.value as BucketSchema | null;
      if (schema && typeof schema.fields === "object") out.set(row.slice(SCHEMA_ROW_PREFIX.length), schema.fields);
    }
    return out;
  }

  function enqueue(bucket: string): void {
    queue.add(bucket);
    kick();
  }

  /** Run the worker unless it runs; when it ends, run it again if work arrived as it ended. */
  function kick(): void {
    worker ??= work().finally(() => {
      worker = undefined;
      if (queue.size && !stopping.signal.aborted) return kick();
      for (const w of idleWaiters) w();
      idleWaiters = [];
    });
  }

  async function work(): Promise<void> {
    while (queue.size && !stopping.signal.aborted) {
      const bucket = queue.values().next().value as string;
      queue.delete(bucket);
      try {
        await backfill(bucket);
      } catch (err) {
        if (stopping.signal.aborted) return;
        log.warn(`search index of bucket ${bucket}: backfill failed, retrying soon: ${(err as Error).message}`);
        await sleep(1000, stopping.signal);
        queue.add(bucket);
      }
    }
  }

  /** Re-derive every manifest of `bucket` held here; then its fields (as they were at the start) are ready. */
  async function backfill(bucket: string): Promise<void> {
    const b = buckets.get(bucket);
    if (!b) return;
    const target = { ...b.fields };
    const changes = b.changes;
    // A write that worked out its rows before the derivation knew these fields may still be
    // queued, unseen by the scan below: it lands first, so the scan sees it and re-derives it.
    await store.flush();
    b.indexed = 0;
    const started = performance.now();
    for (const shard of objectShards()) {
      let after: string | undefined;
      for (;;) {
        const rows = await store.scan(shard, { prefix: objectRowPrefix(bucket), after, limit: BACKFILL_PAGE });
        if (!rows.length) break;
        await limiter.take(rows.length, stopping.signal);
        if (buckets.get(bucket) !== b) return; // the schema went away meanwhile
        await Promise.all(rows.map(([row]) => store.rederive(shard, row)));
        b.indexed += rows.length;
        if (rows.length < BACKFILL_PAGE) break;
        after = rows[rows.length - 1][0];
      }
    }
    // A field removed and added again meanwhile lost the rows this pass wrote before; the pass queued by that change writes them.
    if (buckets.get(bucket) !== b || b.changes !== changes) return;
    for (const [f, type] of Object.entries(target)) if (b.fields[f] === type) b.ready.add(f);
    b.systemReady = true;
    await saveNote(bucket, b);
    // A field added meanwhile was queued again by sync; its objects are indexed by the next pass.
    log.info(`search index of bucket ${bucket}: ${b.indexed} objects indexed in ${Math.round(performance.now() - started)} ms`);
  }

  // One look at a time: the loop's and a schema change's would otherwise clear and queue together.
  let looking: Promise<void> = Promise.resolve();
  const sync = (): Promise<void> => (looking = looking.then(look, look));

  /** Bring the derivation in line with the schema rows, clearing what a removed field left and queueing backfills. */
  async function look(): Promise<void> {
    const schemas = await localSchemas();
    for (const bucket of buckets.keys()) {
      if (schemas.has(bucket)) continue;
      buckets.delete(bucket);
      await clear(bucketFieldsPrefix(bucket));
      await store.putNote(noteName(bucket), undefined);
    }
    for (const [bucket, fields] of schemas) {
      const b = buckets.get(bucket);
      if (!b) {
        buckets.set(bucket, { fields: { ...fields }, ready: new Set(), systemReady: false, indexed: 0, changes: 0 });
        enqueue(bucket);
        continue;
      }
      if (sameFields(b.fields, fields)) continue;
      b.changes++;
      // Gone or retyped fields stop deriving first, then their rows go.
      const changed = Object.keys(b.fields).filter((f) => b.fields[f] !== fields[f]);
      for (const f of changed) {
        delete b.fields[f];
        b.ready.delete(f);
      }
      for (const f of changed) await clear(fieldRowPrefix(bucket, f));
      for (const [f, type] of Object.entries(fields)) b.fields[f] ??= type;
      await saveNote(bucket, b);
      if (Object.keys(fields).some((f) => !b.ready.has(f))) enqueue(bucket);
    }
  }

  return {
    async load() {
      const schemas = await localSchemas();
      for (const [bucket, fields] of schemas) {
        const note = (await store.getNote(noteName(bucket))) as ReadyNote | undefined;
        const ready = new Set(Object.keys(fields).filter((f) => note?.fields[f] === fields[f]));
        const b: BucketIndex = { fields: { ...fields }, ready, systemReady: note?.system === true, indexed: 0, changes: 0 };
        buckets.set(bucket, b);
        // A field dropped while this peer was down may have left rows: they go before anything reads them.
        for (const f of Object.keys(note?.fields ?? {})) if (note!.fields[f] !== fields[f]) await clear(fieldRowPrefix(bucket, f));
        if (!b.systemReady || ready.size < Object.keys(fields).length) enqueue(bucket);
      }
    },
    start() {
      const every = deps.syncIntervalMs ?? 500;
      looping = (async () => {
        // The buckets shard's digests as of the last look that succeeded: while they stay the
        // same (they change after every write to the shard is on disk), no schema row changed.
        let looked: string | undefined;
        while (!stopping.signal.aborted) {
          await sleep(every, stopping.signal);
          if (stopping.signal.aborted) break;
          // Read before the look: a write that lands during it changes them again.
          const digests = store.digests(BUCKETS_SHARD).join();
          if (digests === looked) continue;
          await sync().then(
            () => (looked = digests),
            (err: unknown) => log.warn(`search index: reading the schemas failed: ${(err as Error).message}`),
          );
        }
      })();
    },
    async stop() {
      stopping.abort();
      await Promise.allSettled([looping, worker]);
    },
    sync,
    view(bucket) {
      const b = buckets.get(bucket);
      return b && { fields: b.fields, ready: b.ready, systemReady: b.systemReady };
    },
    state(bucket) {
      const b = buckets.get(bucket);
      if (!b) return { fields: {}, systemReady: false, objectsIndexed: 0 };
      return {
        fields: Object.fromEntries(Object.entries(b.fields).map(([f, type]) => [f, { type, ready: b.ready.has(f) }])),
        systemReady: b.systemReady,
        objectsIndexed: b.indexed,
      };
    },
    idle: () => (worker ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
  };
}
