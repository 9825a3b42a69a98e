// One replica's search index on a real LevelDB store: derived rows written and removed in
// the same batch as their manifest, the backfill of a bucket's objects when a schema
// arrives, a removed field's rows cleared, and queryShard's pages (narrowed or scanned,
// cut by small limits and budgets) concatenated equal to a brute-force answer, for 150
// seeded random queries over 600 objects with overwrites and deletes.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BUCKETS_SHARD, fieldRowPrefix, objectRow, schemaRow } from "../../src/metadata/keys.ts";
import type { ObjectManifest } from "../../src/metadata/types.ts";
import { createSearchIndexer } from "../../src/search/indexer.ts";
import { validateQuery } from "../../src/search/query.ts";
import { queryShard } from "../../src/search/shard-query.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createLogger } from "../../src/util/log.ts";
import { bruteForce, MODEL_SCHEMA, randomMeta, randomQuery, type ModelObject } from "../harness/search-model.ts";
import { mulberry32 } from "../harness/random.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-search-shard-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const BUCKET = "films";
const SHARD = "o0";
let clock = 1_000_000;
const stamp = () => `${String(clock++).padStart(13, "0")}-000000-test`;
const log = createLogger("test", () => {}, "error");

function manifest(o: ModelObject): ObjectManifest {
  return { size: o.size, etag: o.etag, contentType: o.contentType, meta: o.meta, lastModified: o.lastModified, chunkSize: 4096, chunks: [] };
}

async function put(store: IndexStore, o: ModelObject) {
  await store.apply(SHARD, objectRow(BUCKET, o.key), { ts: stamp(), value: manifest(o) });
}

async function derivedCount(store: IndexStore, prefix: string) {
  const from = Buffer.from(prefix);
  return (await store.scanDerived(SHARD, { gte: from, lt: Buffer.concat([from, Buffer.of(0xff)]), limit: 100_000 })).length;
}

describe("derived rows", () => {
  test("written with the manifest, replaced on overwrite, removed on delete; a backfill indexes what was there before the schema", async () => {
    const store = await openIndexStore(path.join(root, "rows"), { deletesAreFinal: () => false });
    const indexer = createSearchIndexer({ store, log, perSecond: 1e6 });
    try {
      await indexer.load();
      const before: ModelObject = { key: "old", size: 1, etag: "e", contentType: "text/plain", lastModified: 5, meta: { year: "1999", tags: "a,b" } };
      await put(store, before);
      expect(await derivedCount(store, `${BUCKET}\0`)).toBe(0); // no schema yet: nothing derived

      await store.apply(BUCKETS_SHARD, schemaRow(BUCKET), { ts: stamp(), value: MODEL_SCHEMA });
      await indexer.sync();
      await indexer.idle();
      expect(indexer.state(BUCKET).fields.year).toEqual({ type: "number", ready: true });
      // 2 system rows (size, lastModified) + year + 2 tags
      expect(await derivedCount(store, `${BUCKET}\0`)).toBe(5);

      await put(store, { ...before, meta: { year: "2001", tags: "c" } });
      expect(await derivedCount(store, fieldRowPrefix(BUCKET, "tags"))).toBe(1);
      expect(await derivedCount(store, `${BUCKET}\0`)).toBe(4);

      await store.apply(SHARD, objectRow(BUCKET, "old"), { ts: stamp(), value: null });
      expect(await derivedCount(store, `${BUCKET}\0`)).toBe(0);

      // A field leaves the schema: its rows go, the others stay.
      await put(store, { ...before, key: "new", meta: { year: "2002", tags: "d" } });
      const { tags: _, ...rest } = MODEL_SCHEMA.fields;
      await store.apply(BUCKETS_SHARD, schemaRow(BUCKET), { ts: stamp(), value: { fields: rest } });
      await indexer.sync();
      expect(await derivedCount(store, fieldRowPrefix(BUCKET, "tags"))).toBe(0);
      expect(await derivedCount(store, fieldRowPrefix(BUCKET, "year"))).toBe(1);
    } finally {
      await indexer.stop();
      await store.close();
    }
  });
});

describe("a schema arriving while writes are in flight", () => {
  test("every object written meanwhile gets its rows: by the write or by the backfill", async () => {
    const store = await openIndexStore(path.join(root, "race"), { deletesAreFinal: () => false });
    const indexer = createSearchIndexer({ store, log, perSecond: 1e6 });
    try {
      await indexer.load();
      await store.apply(BUCKETS_SHARD, schemaRow(BUCKET), { ts: stamp(), value: { fields: { year: "number" } } });
      const o = (i: number): ModelObject => ({ key: `r${i}`, size: 1, etag: "e", contentType: "text/plain", lastModified: 5, meta: { year: String(i) } });
      // Writes queued around the moment the indexer learns the schema.
      const writes = Array.from({ length: 3000 }, (_, i) => put(store, o(i)));
      await new Promise((r) => setTimeout(r, 1));
      await indexer.sync();
      await Promise.all(writes);
      await indexer.idle();
      expect(indexer.state(BUCKET).fields.year.ready).toBe(true);
      expect(await derivedCount(store, fieldRowPrefix(BUCKET, "year"))).toBe(3000);
    } finally {
      await indexer.stop();
      await store.close();
    }
  });
});

describe("queryShard", () => {
  test("150 random queries, paged with small limits and budgets, equal the brute-force answer", async () => {
    const store = await openIndexStore(path.join(root, "model"), { deletesAreFinal: () => false });
    const indexer = createSearchIndexer({ store, log, perSecond: 1e6 });
    const random = mulberry32(14);
    try {
      await store.apply(BUCKETS_SHARD, schemaRow(BUCKET), { ts: stamp(), value: MODEL_SCHEMA });
      await indexer.load();
      await indexer.idle();
      const model = new Map<string, ModelObject>();
      for (let i = 0; i < 700; i++) {
        const key = `k${Math.floor(random() * 600)}${random() < 0.1 ? "/é" : ""}`;
        if (random() < 0.08 && model.has(key)) {
          model.delete(key);
          await store.apply(SHARD, objectRow(BUCKET, key), { ts: stamp(), value: null });
          continue;
        }
        const o: ModelObject = { key, size: Math.floor(random() * 64), etag: `e${i}`, contentType: random() < 0.5 ? "text/plain" : "application/octet-stream", lastModified: 1_700_000_000_000 + Math.floor(random() * 60_000), meta: randomMeta(random) };
        model.set(key, o);
        await put(store, o);
      }
      const keys = [...model.keys()];
      const view = indexer.view(BUCKET);
      for (let n = 0; n < 150; n++) {
        const raw = randomQuery(random, keys, 1);
        const q = validateQuery(raw, MODEL_SCHEMA);
        const want = bruteForce(model.values(), q);
        const got: string[] = [];
        const limit = 1 + Math.floor(random() * 40);
        const budget = 10 + Math.floor(random() * 300);
        // A small cap makes narrowing give up on wide conditions and scan instead.
        const cap = [5, 60, 1000][n % 3];
        let after: string | undefined;
        for (let page = 0; page < 10_000; page++) {
          const answer = await queryShard(store, view, SHARD, { bucket: BUCKET, where: q.where, sort: q.sort, after, limit, budget }, cap);
          got.push(...answer.rows.map(([key]) => key));
          if (answer.reached === null) break;
          after = answer.reached;
        }
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`query ${n} ${JSON.stringify(raw)} (limit ${limit}, budget ${budget}, narrowing cap ${cap}): got ${got.length} keys, want ${want.length}\n got ${got.slice(0, 10)}\nwant ${want.slice(0, 10)}`);
      }
    } finally {
      await indexer.stop();
      await store.close();
    }
  });
});
