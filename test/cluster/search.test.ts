// Search on a real 3-peer mesh (issue 14): 5,000 objects with random typed metadata
// written through random peers, overwritten and deleted, against 100 seeded random
// queries paged through random peers and compared with a brute-force evaluation; writes
// reflected by the next query through any peer, a killed replica and its return; a field
// added to a bucket of 10,000 objects becoming ready and answering; and bad input.
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { deleteObject, json, listAllPages, mapLimit, mustCreateBucket, request, statusAndCode, errorOf, type Reply } from "../harness/http.ts";
import { s3Client, sdkStatusAndName } from "../harness/s3.ts";
import { bruteForce, MODEL_SCHEMA, randomMeta, randomQuery, type ModelObject } from "../harness/search-model.ts";
import type { Query } from "../../src/search/query.ts";

let cluster: Cluster;
beforeAll(async () => {
  // A slow backfill, so that a field's "building" state lasts long enough to be seen.
  cluster = await startConverged(3, { config: { searchBackfillPerSecond: 5000 } });
});
afterAll(() => teardownCluster(cluster));

const url = (i: number) => cluster.peer(i).httpUrl;
const anyPeer = () => url(Math.floor(cluster.random() * 3));
const body = (v: unknown) => ({ body: JSON.stringify(v) });

async function putSchema(bucket: string, schema: unknown): Promise<Reply> {
  return request(url(0), "PUT", `/buckets/${bucket}/schema`, body(schema));
}

async function waitReady(bucket: string, timeoutMs = 20_000) {
  await cluster.waitFor(`${bucket}'s index ready`, async () => json((await request(url(0), "GET", `/buckets/${bucket}/schema`))).state === "ready", timeoutMs, 200);
}

/** Every key of a query's answer, page after page, each page through a random peer. */
async function queryAll(bucket: string, q: Query, peer = anyPeer): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const r = await request(peer(), "POST", `/buckets/${bucket}/query`, body({ ...q, cursor }));
    if (r.status !== 200) throw new Error(`query ${JSON.stringify(q)}: ${statusAndCode(r)} ${errorOf(r).message}`);
    const page = json<{ objects: Array<{ key: string }>; nextCursor: string | null }>(r);
    if (page.objects.length > (q.limit ?? 100)) throw new Error(`a page of ${page.objects.length} objects for limit ${q.limit}`);
    keys.push(...page.objects.map((o) => o.key));
    if (page.nextCursor === null) return keys;
    cursor = page.nextCursor;
  }
  throw new Error("a query did not end within 1000 pages");
}

/** Write `o` through a random peer and record what the peer stored. */
async function write(bucket: string, model: Map<string, ModelObject>, key: string, meta: Record<string, string>, size: number, peer = anyPeer) {
  const headers = Object.fromEntries(Object.entries(meta).map(([k, v]) => [`x-meta-${k}`, v]));
  const contentType = size % 2 ? "text/plain" : "application/octet-stream";
  const r = await request(peer(), "PUT", `/buckets/${bucket}/objects/${encodeURIComponent(key)}`, { body: "x".repeat(size), headers: { ...headers, "content-type": contentType } });
  if (r.status !== 200) throw new Error(`PUT ${key}: ${statusAndCode(r)}`);
  const etag = json<{ etag: string }>(r).etag;
  model.set(key, { key, size, etag, contentType, lastModified: 0, meta });
}

/** The lastModified the peers stamped, from a listing. */
async function learnTimes(bucket: string, model: Map<string, ModelObject>) {
  for (const page of await listAllPages(url(1), bucket, { limit: 1000 })) for (const o of page.objects) model.get(o.key)!.lastModified = Date.parse(o.lastModified as string);
}

describe("the model", () => {
  const BUCKET = "model";
  const model = new Map<string, ModelObject>();

  test("5,000 objects written through random peers, overwritten and deleted; 100 random queries equal brute force", async () => {
    await mustCreateBucket(url(0), BUCKET);
    expect(statusAndCode(await putSchema(BUCKET, MODEL_SCHEMA))).toBe("200");
    const random = cluster.random;
    const keyOf = (n: number) => `obj/${String(n).padStart(5, "0")}${n % 17 === 0 ? "-é" : ""}`;
    await mapLimit(Array.from({ length: 5000 }, (_, i) => i), 48, (i) => write(BUCKET, model, keyOf(i), randomMeta(random), Math.floor(random() * 40)));
    // Overwrites (new metadata) and deletes, through random peers.
    // Each key once: two writes of one key at once would leave the model unsure which won.
    const touched = [...new Set(Array.from({ length: 400 }, () => Math.floor(random() * 5000)))];
    await mapLimit(touched, 32, async (n) => {
      const key = keyOf(n);
      if (random() < 0.4) {
        const r = await deleteObject(anyPeer(), BUCKET, key);
        if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE ${key}: ${statusAndCode(r)}`);
        model.delete(key);
      } else await write(BUCKET, model, key, randomMeta(random), Math.floor(random() * 40));
    });
    await learnTimes(BUCKET, model);
    await waitReady(BUCKET);

    const keys = [...model.keys()];
    let nonEmpty = 0;
    for (let n = 0; n < 100; n++) {
      const limits = [300, 1000];
      const q = randomQuery(random, keys, limits[Math.floor(random() * limits.length)]);
      const want = bruteForce(model.values(), q);
      const got = await queryAll(BUCKET, q);
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`query ${n} ${JSON.stringify(q)}: ${got.length} keys, want ${want.length}; first difference at ${got.findIndex((k, i) => k !== want[i])}`);
      if (want.length) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(50); // the queries are not all trivially empty
  }, 120_000);

  test("an overwrite or delete shows in the next query through every peer", async () => {
    const key = "obj/00003";
    const q: Query = { where: [{ field: "year", op: "=", value: 1234.5 }], limit: 10 };
    await write(BUCKET, model, key, { year: "1234.5", title: "Fresh" }, 3);
    for (const i of [0, 1, 2]) expect(await queryAll(BUCKET, q, () => url(i))).toEqual([key]);
    await write(BUCKET, model, key, { year: "1234.25" }, 3);
    for (const i of [0, 1, 2]) expect(await queryAll(BUCKET, q, () => url(i))).toEqual([]);
    await write(BUCKET, model, key, { year: "1234.5" }, 3);
    expect(statusAndCode(await deleteObject(url(2), BUCKET, key))).toBe("204");
    model.delete(key);
    for (const i of [0, 1, 2]) expect(await queryAll(BUCKET, q, () => url(i))).toEqual([]);
  }, 30_000);

  test("a killed replica, writes while it is away, and its return leave every answer identical to the model", async () => {
    const random = cluster.random;
    const keys = [...model.keys()];
    const queries = Array.from({ length: 8 }, () => randomQuery(random, keys, 1000));
    await cluster.kill(2);
    const touchedKeys = new Set<string>();
    // Changes the dead replica misses: it comes back stale and is repaired.
    for (let n = 0; n < 40; n++) {
      const key = keys[Math.floor(random() * keys.length)];
      touchedKeys.add(key);
      if (n % 4 === 0) {
        await deleteObject(url(n % 2), BUCKET, key);
        model.delete(key);
      } else await write(BUCKET, model, key, randomMeta(random), 5, () => url(n % 2));
    }
    await learnTimes(BUCKET, model);
    for (const q of queries) expect(await queryAll(BUCKET, q, () => url(Math.floor(random() * 2)))).toEqual(bruteForce(model.values(), q));
    await cluster.restart(2);
    await cluster.waitFor("all alive", () => cluster.allSee([0, 1, 2], [0, 1, 2], "alive"), 15_000);
    // Right away (answers are checked against a quorum where replicas differ) and after repair.
    for (const q of queries) expect(await queryAll(BUCKET, q, () => url(2))).toEqual(bruteForce(model.values(), q));
    // Repair brings the returned replica's manifests, and with them its search rows, up to date:
    // its own index alone then gives every answer.
    let lastDiff = "";
    await cluster.waitFor("the returned replica's own index answers like the model", async () => {
      for (const q of queries) {
        const local = await cluster.peer(2).testHooks.localSearch(BUCKET, q);
        const want = bruteForce(model.values(), q);
        if (JSON.stringify(local) !== JSON.stringify(want)) {
          lastDiff = `${JSON.stringify(q)}: ${local.length} keys here, ${want.length} in the model; missing ${want.filter((k) => !local.includes(k)).slice(0, 3)}, extra ${local.filter((k) => !want.includes(k)).slice(0, 3)}`;
          const miss = want.find((k) => !local.includes(k));
          // Whether the replica has the object's manifest (found by key) but not its row in the sort field's index.
          const byKey = (peer: number, sort?: Query["sort"]) => cluster.peer(peer).testHooks.localSearch(BUCKET, { where: [{ field: "key", op: "=", value: miss }], sort });
          if (miss) lastDiff += `; ${miss} (changed while away: ${touchedKeys.has(miss)}) here by key ${JSON.stringify(await byKey(2))}, by the sort field ${JSON.stringify(await byKey(2, q.sort))}, on peer 0 ${JSON.stringify(await byKey(0, q.sort))}; the model has ${JSON.stringify(model.get(miss))}`;
          return false;
        }
      }
      return true;
    }, 60_000, 500).catch((err: Error) => {
      throw new Error(`${err.message}; last difference: ${lastDiff}`);
    });
    for (const q of queries) for (const i of [0, 1, 2]) expect(await queryAll(BUCKET, q, () => url(i))).toEqual(bruteForce(model.values(), q));
  }, 120_000);
});

describe("a field added to a bucket that has objects", () => {
  test("10,000 objects: the field builds (queries on it answer 409 meanwhile), becomes ready, then answers correctly", async () => {
    const BUCKET = "backfill";
    await mustCreateBucket(url(0), BUCKET);
    const model = new Map<string, ModelObject>();
    const random = cluster.random;
    await mapLimit(Array.from({ length: 10_000 }, (_, i) => i), 64, async (i) => {
      const key = `b${i}`;
      const meta = { rank: String(i % 1000), colour: ["red", "green", "blue"][i % 3] };
      const r = await request(url(i % 3), "PUT", `/buckets/${BUCKET}/objects/${key}`, { body: "", headers: { "x-meta-rank": meta.rank, "x-meta-colour": meta.colour } });
      if (r.status !== 200) throw new Error(`PUT ${key}: ${statusAndCode(r)}`);
      model.set(key, { key, size: 0, etag: "", contentType: "", lastModified: 0, meta });
    });
    const schema = { fields: { rank: "number" as const, colour: "string" as const } };
    const put = json(await putSchema(BUCKET, schema));
    expect(put.fields.rank).toEqual({ type: "number", state: "building" });
    const q: Query = { where: [{ field: "rank", op: ">=", value: 990 }, { field: "colour", op: "=", value: "blue" }], sort: { field: "rank", order: "desc" }, limit: 1000 };
    const early = await request(url(1), "POST", `/buckets/${BUCKET}/query`, body(q));
    expect(statusAndCode(early)).toBe("409 IndexNotReady");
    expect(errorOf(early).message).toContain("rank");
    // allowPartial answers meanwhile (perhaps missing objects).
    expect(statusAndCode(await request(url(1), "POST", `/buckets/${BUCKET}/query`, body({ ...q, allowPartial: true })))).toBe("200");

    const progress: number[] = [];
    await cluster.waitFor("backfill ready", async () => {
      const s = json((await request(url(2), "GET", `/buckets/${BUCKET}/schema`)));
      progress.push(s.progress.objectsIndexed);
      return s.state === "ready";
    }, 30_000, 200);
    expect(progress.some((n) => n > 0)).toBe(true);
    const want = bruteForce(model.values(), q, schema);
    expect(want.length).toBe(33); // ranks 990..999, ten objects each, of which the ones with i % 3 = 2 are blue
    for (const i of [0, 1, 2]) expect(await queryAll(BUCKET, q, () => url(i))).toEqual(want);
    // The text form agrees.
    const text = await request(url(0), "GET", `/buckets/${BUCKET}/query?q=${encodeURIComponent('rank >= 990 and colour = "blue"')}&sort=rank&order=desc&limit=1000`);
    expect(json(text).objects.map((o: { key: string }) => o.key)).toEqual(want);
  }, 90_000);
});

describe("bad input", () => {
  const BUCKET = "bad-input";
  beforeAll(async () => {
    await mustCreateBucket(url(0), BUCKET);
    expect(statusAndCode(await putSchema(BUCKET, MODEL_SCHEMA))).toBe("200");
    await waitReady(BUCKET);
  });

  test("a PUT whose metadata does not fit its field's type is refused, naming the field, and stores nothing (native and S3)", async () => {
    for (const [field, value] of [["year", "nineteen"], ["released", "yesterday"], ["draft", "yes"], ["title", "x".repeat(300)]]) {
      const r = await request(url(1), "PUT", `/buckets/${BUCKET}/objects/typed`, { body: "x", headers: { [`x-meta-${field}`]: value } });
      expect(statusAndCode(r)).toBe("400 InvalidArgument");
      expect(errorOf(r).message).toContain(field);
    }
    expect((await request(url(0), "GET", `/buckets/${BUCKET}/objects/typed`)).status).toBe(404);
    const s3 = s3Client(cluster.peer(2).s3Url, undefined, { maxAttempts: 1 });
    expect(await sdkStatusAndName("S3 PUT", s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "typed", Body: "x", Metadata: { year: "MCMXC" } })))).toBe("400 InvalidArgument");
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "typed", Body: "x", Metadata: { year: "1990" } }));
    expect(await queryAll(BUCKET, { where: [{ field: "year", op: "=", value: 1990 }] })).toEqual(["typed"]);
  });

  test("malformed queries, unknown fields, absurd limits and foreign cursors: 400 InvalidQuery with a message", async () => {
    const bad: unknown[] = [
      [],
      { where: "year > 3" },
      { where: [{ field: "nope", op: "=", value: 1 }] },
      { where: [{ field: "year", op: "~", value: 1 }] },
      { where: [{ field: "year", op: "=", value: "1990" }] },
      { where: [{ field: "year", op: "in", value: Array.from({ length: 33 }, (_, i) => i) }] },
      { where: [{ field: "tags", op: "<", value: "a" }] },
      { sort: { field: "tags" } },
      { sort: { field: "year", order: "sideways" } },
      { limit: 0 },
      { limit: 1_000_000 },
      { limit: "ten" },
      { cursor: "not-a-cursor" },
      { extra: true },
    ];
    for (const q of bad) {
      const r = await request(anyPeer(), "POST", `/buckets/${BUCKET}/query`, body(q));
      expect(`${JSON.stringify(q)}: ${statusAndCode(r)}`).toBe(`${JSON.stringify(q)}: 400 InvalidQuery`);
      expect(errorOf(r).message.length).toBeGreaterThan(10);
    }
    const notJson = await request(url(0), "POST", `/buckets/${BUCKET}/query`, { body: "{where" });
    expect(statusAndCode(notJson)).toBe("400 InvalidArgument");
    // A cursor of one query given to another.
    const first = json(await request(url(0), "POST", `/buckets/${BUCKET}/query`, body({ limit: 1, where: [{ field: "size", op: ">=", value: 0 }] })));
    await request(url(0), "PUT", `/buckets/${BUCKET}/objects/second`, { body: "y" });
    const again = json(await request(url(0), "POST", `/buckets/${BUCKET}/query`, body({ limit: 1 })));
    expect(again.nextCursor).not.toBeNull();
    const foreign = await request(url(0), "POST", `/buckets/${BUCKET}/query`, body({ limit: 1, where: [{ field: "year", op: ">", value: 0 }], cursor: again.nextCursor }));
    expect(statusAndCode(foreign)).toBe("400 InvalidQuery");
    expect(first.objects.length).toBe(1);
    // The text form says where the fault is.
    const text = await request(url(1), "GET", `/buckets/${BUCKET}/query?q=${encodeURIComponent("year >= 2020 and title prefx \"M\"")}`);
    expect(statusAndCode(text)).toBe("400 InvalidQuery");
    expect(errorOf(text).message).toContain("position 23");
    expect(statusAndCode(await request(url(1), "GET", `/buckets/${BUCKET}/query?limit=-3`))).toBe("400 InvalidQuery");
  });

  test("schemas: bad ones refused, missing ones and fields 404, queries on a missing bucket 404", async () => {
    const badSchemas: unknown[] = [
      { fields: { year: "integer" } },
      { fields: { "Bad Name": "string" } },
      { fields: { size: "number" } },
      { fields: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, "string"])) },
      { fields: [] },
      "x",
    ];
    for (const s of badSchemas) expect(statusAndCode(await putSchema(BUCKET, s))).toBe("400 InvalidArgument");
    expect(statusAndCode(await request(url(0), "DELETE", `/buckets/${BUCKET}/schema/nofield`))).toBe("404 NoSuchField");
    expect(statusAndCode(await request(url(0), "GET", "/buckets/model-less/schema"))).toBe("404 NoSuchBucket");
    expect(statusAndCode(await request(url(0), "POST", "/buckets/model-less/query", body({})))).toBe("404 NoSuchBucket");
    await mustCreateBucket(url(0), "no-schema");
    expect(statusAndCode(await request(url(0), "GET", "/buckets/no-schema/schema"))).toBe("404 NoSuchSchema");
    // Without a schema: system fields filter, sorting by key; other sorts need the index.
    expect(statusAndCode(await request(url(0), "POST", "/buckets/no-schema/query", body({ where: [{ field: "size", op: ">", value: 1 }] })))).toBe("200");
    expect(statusAndCode(await request(url(0), "POST", "/buckets/no-schema/query", body({ sort: { field: "size" } })))).toBe("400 InvalidQuery");
    // contentType and etag are conditions, not orders.
    expect(statusAndCode(await request(url(0), "POST", `/buckets/${BUCKET}/query`, body({ sort: { field: "etag" } })))).toBe("400 InvalidQuery");
    // A field removed: queries on it are refused, the rest of the schema stays.
    const left = json(await request(url(0), "DELETE", `/buckets/${BUCKET}/schema/draft`));
    expect(Object.keys(left.fields)).not.toContain("draft");
    expect(statusAndCode(await request(url(2), "POST", `/buckets/${BUCKET}/query`, body({ where: [{ field: "draft", op: "=", value: true }] })))).toBe("400 InvalidQuery");
    expect(statusAndCode(await request(url(0), "DELETE", `/buckets/${BUCKET}/schema`))).toBe("204");
    expect(statusAndCode(await request(url(1), "GET", `/buckets/${BUCKET}/schema`))).toBe("404 NoSuchSchema");
  });
});
