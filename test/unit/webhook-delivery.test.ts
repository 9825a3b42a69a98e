// Webhook delivery (src/changes/delivery.ts) against small fakes of the log, the index and
// the receiver, with no network: batches in id order across shards, attempts counted after
// failures, positions persisted per shard, a second peer taking the shards over from the
// rows the first one wrote (no gap, few duplicates), filters honoured, and the backoff's
// bounds. The real mesh is test/cluster/webhooks.test.ts.
import { describe, expect, test } from "bun:test";
import { createSecretSealer } from "../../src/auth/sealed-secret.ts";
import { createDelivery, retryDelayMs, signBody, type Delivery } from "../../src/changes/delivery.ts";
import type { ShardsRead } from "../../src/changes/log.ts";
import { matches, type EventFilter, type LoggedEvent } from "../../src/changes/records.ts";
import { secretContext, storeTargets } from "../../src/changes/targets.ts";
import { BUCKETS_SHARD, notificationsRow } from "../../src/metadata/keys.ts";
import type { IndexEntry } from "../../src/metadata/types.ts";
import type { ScanRow } from "../../src/store/index-store.ts";
import { createLogger } from "../../src/util/log.ts";

const BUCKET = "fake";
const SHARDS = ["o0", "o1", "o2", BUCKETS_SHARD];
const SECRET = "unit-test-webhook-secret-0123";
const sealer = createSecretSealer(new Uint8Array(32).fill(7));
const quiet = createLogger("test", () => {}, "error");

/** An event id at ms `t` from peer "p". */
const idAt = (t: number) => `${String(1_700_000_000_000 + t).padStart(13, "0")}-000000-p`;

/** A log of events spread over three shards, read as the real one answers (per-shard limits, `reached`). */
function fakeLog(count: number) {
  const events = Array.from({ length: count }, (_, i) => ({ id: idAt(i + 1), bucket: BUCKET, shard: SHARDS[i % 3], event: { name: i % 4 === 3 ? "ObjectRemoved:Delete" : "ObjectCreated:Put", key: `k${i}` } as LoggedEvent }));
  let reads = 0;
  return {
    events,
    reads: () => reads,
    shards: () => SHARDS,
    async readShards(_bucket: string, after: Map<string, string>, opts: { limit: number; filter: EventFilter }): Promise<ShardsRead> {
      reads++;
      const out: ShardsRead["events"] = [];
      const reached = new Map<string, string>();
      for (const [shard, from] of after) {
        const mine = events.filter((e) => e.shard === shard && e.id > from && matches(opts.filter, e.event)).slice(0, opts.limit);
        out.push(...mine);
        // The whole log is settled: a shard is read to the end unless it stopped at its limit.
        reached.set(shard, mine.length === opts.limit ? mine[mine.length - 1].id : idAt(10_000));
      }
      return { events: out.sort((a, b) => (a.id < b.id ? -1 : 1)), reached };
    },
  };
}

/** An index shared by the fake peers: rows by shard and name, last write wins. */
function fakeIndex() {
  const rows = new Map<string, IndexEntry>();
  return {
    rows,
    async read(shard: string, row: string) {
      return rows.get(`${shard}|${row}`) ?? null;
    },
    async write(shard: string, row: string, entry: IndexEntry) {
      rows.set(`${shard}|${row}`, entry);
    },
    /** The local BUCKETS_SHARD scan delivery finds targets with. */
    async scan(shard: string, opts: { prefix: string; after?: string }): Promise<ScanRow[]> {
      if (shard !== BUCKETS_SHARD || opts.after) return [];
      return [...rows].filter(([k]) => k.startsWith(`${BUCKETS_SHARD}|${opts.prefix}`)).map(([k, e]) => [k.slice(BUCKETS_SHARD.length + 1), e]);
    },
  };
}

/** A receiver: records each POST and answers per `answer` (null: no answer until the sender gives up). */
function fakeReceiver(answer: (n: number, peer: string) => number | null = () => 200) {
  const posts: Array<{ ids: string[]; attempt: number; peer: string; signed: boolean; status: number; names: string[] }> = [];
  const fetch = async (_url: string, init: RequestInit) => {
    const headers = init.headers as Record<string, string>;
    const body = init.body as string;
    const status = answer(posts.length, headers["x-meshstore-peer"]);
    if (status === null) {
      // The sender dies while it waits: its POST is cut short.
      await new Promise((_, reject) => init.signal!.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
    }
    posts.push({
      ids: headers["x-meshstore-event-ids"].split(","),
      attempt: Number(headers["x-meshstore-delivery-attempt"]),
      peer: headers["x-meshstore-peer"],
      signed: headers["x-meshstore-signature"] === signBody(SECRET, body),
      status: status!,
      names: (JSON.parse(body) as { Records: Array<{ eventName: string }> }).Records.map((r) => r.eventName),
    });
    return new Response("ok", { status: status! });
  };
  return { posts, fetch, delivered: () => new Set(posts.filter((p) => p.status === 200).flatMap((p) => p.ids)) };
}

let stamps = 0;
function peer(self: string, index: ReturnType<typeof fakeIndex>, log: ReturnType<typeof fakeLog>, receiver: ReturnType<typeof fakeReceiver>, alive: (p: string) => boolean = () => true): Delivery {
  return createDelivery({
    self,
    store: index,
    index,
    changes: log,
    placement: { shardReplicas: () => ["A", "B", "C"] },
    isAlive: alive,
    sealer,
    stamp: () => `${String(1_800_000_000_000 + ++stamps).padStart(13, "0")}-000000-${self}`,
    config: { retryBaseMs: 2, maxRetryMs: 10, webhookPollMs: 5, webhookRefreshMs: 20, webhookTimeoutMs: 1000 },
    log: quiet,
    random: () => 0.5,
    fetch: receiver.fetch,
  });
}

async function configure(index: ReturnType<typeof fakeIndex>, target: Record<string, unknown>): Promise<void> {
  const value = storeTargets(BUCKET, [{ id: "t", url: "http://receiver.test/hook", events: ["*"], secret: SECRET, maxBatch: 4, ...target } as never], null, 1_700_000_000_000, sealer);
  await index.write(BUCKET_SHARD_ROW.shard, BUCKET_SHARD_ROW.row, { ts: "0000000000001-000000-x", value });
}
const BUCKET_SHARD_ROW = { shard: BUCKETS_SHARD, row: notificationsRow(BUCKET) };

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

describe("webhook delivery", () => {
  test("every event in batches of maxBatch, in id order; failed POSTs retried with the attempt counted; progress written per shard", async () => {
    const index = fakeIndex();
    const log = fakeLog(30);
    const receiver = fakeReceiver((n) => (n < 2 ? 503 : 200));
    await configure(index, {});
    const a = peer("A", index, log, receiver);
    a.start();
    await until("all delivered", () => receiver.delivered().size === 30);
    await a.stop();
    expect(receiver.posts.map((p) => p.attempt).slice(0, 4)).toEqual([1, 2, 3, 1]);
    expect(receiver.posts[0].ids).toEqual(receiver.posts[2].ids);
    expect(receiver.posts.every((p) => p.signed && p.peer === "A" && p.ids.length <= 4)).toBe(true);
    // Acknowledged batches come in id order with no id twice.
    const acked = receiver.posts.filter((p) => p.status === 200).flatMap((p) => p.ids);
    expect(acked).toEqual(log.events.map((e) => e.id));
    // Each object shard's row holds its last event.
    for (const shard of ["o0", "o1", "o2"]) {
      const last = log.events.filter((e) => e.shard === shard).at(-1)!.id;
      const row = [...index.rows].find(([k]) => k.startsWith(`${shard}|\x01w`))![1].value as { position: string; lastError: { message: string } };
      expect(row.position >= last).toBe(true);
      expect(row.lastError.message).toContain("HTTP 503");
    }
    expect(a.stats()).toMatchObject({ delivered: Math.ceil(30 / 4), failed: 2, events: 30 });
  });

  test("a second peer takes the shards over from the rows the first one wrote: no gap, at most a batch again", async () => {
    const index = fakeIndex();
    const log = fakeLog(40);
    let cut = false;
    // A's fifth POST gets no answer: A dies waiting for it.
    const receiver = fakeReceiver((n, from) => (from === "A" && n >= 4 ? null : 200));
    await configure(index, { maxBatch: 3 });
    const a = peer("A", index, log, receiver);
    a.start();
    await until("a part delivered", () => receiver.delivered().size === 12);
    await Bun.sleep(10);
    await a.stop();
    cut = true;
    const before = receiver.delivered();
    // B saw A alive, so it delivered nothing; now A is dead to it.
    const b = peer("B", index, log, receiver, (p) => !(cut && p === "A"));
    b.start();
    await until("the rest delivered", () => receiver.delivered().size === 40);
    await b.stop();
    const fromB = receiver.posts.filter((p) => p.peer === "B").flatMap((p) => p.ids);
    expect(fromB.length).toBeGreaterThan(0);
    // B resumed where A's rows said: what it sent again is at most one batch per shard.
    expect(fromB.filter((id) => before.has(id)).length).toBeLessThanOrEqual(3 * 3);
    expect([...receiver.delivered()].sort()).toEqual(log.events.map((e) => e.id));
  });

  test("a peer delivers only the shards it is first live replica of; a filter leaves events out and moves past them", async () => {
    const index = fakeIndex();
    const log = fakeLog(24);
    const receiver = fakeReceiver();
    await configure(index, { events: ["ObjectRemoved:*"], maxBatch: 100 });
    // B believes A alive: B delivers nothing.
    const b = peer("B", index, log, receiver);
    b.start();
    await Bun.sleep(60);
    await b.stop();
    expect(receiver.posts).toEqual([]);
    const a = peer("A", index, log, receiver);
    a.start();
    const removed = log.events.filter((e) => e.event.name === "ObjectRemoved:Delete").map((e) => e.id);
    await until("the deletes delivered", () => receiver.delivered().size === removed.length);
    const reads = log.reads();
    await Bun.sleep(30);
    await a.stop();
    expect([...receiver.delivered()].sort()).toEqual(removed);
    expect(receiver.posts.flatMap((p) => p.names).every((n) => n === "ObjectRemoved:Delete")).toBe(true);
    // Idle polls go on, but nothing is sent again.
    expect(log.reads()).toBeGreaterThan(reads);
    expect(receiver.posts.length).toBe(1);
  });

  test("a secret sealed to another target does not open: that target gets nothing", async () => {
    const index = fakeIndex();
    const log = fakeLog(5);
    const receiver = fakeReceiver();
    await configure(index, {});
    const row = index.rows.get(`${BUCKETS_SHARD}|${notificationsRow(BUCKET)}`)!;
    const value = row.value as { targets: Array<{ sealedSecret: string }> };
    value.targets[0].sealedSecret = sealer.seal(secretContext(BUCKET, "other"), SECRET);
    const a = peer("A", index, log, receiver);
    a.start();
    await Bun.sleep(60);
    await a.stop();
    expect(a.stats().targets).toBe(0);
    expect(receiver.posts).toEqual([]);
  });

  test("the retry delay doubles from the base to the cap, with jitter, never outside them", () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 1000, 300_000, () => 0.5))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(40, 1000, 300_000, () => 0.999)).toBe(300_000);
    expect(retryDelayMs(1, 1000, 300_000, () => 0)).toBe(1000);
    expect(retryDelayMs(3, 1000, 300_000, () => 0)).toBe(3000);
    expect(retryDelayMs(3, 1000, 300_000, () => 0.999)).toBe(4998);
    expect(retryDelayMs(1_000_000, 1000, 300_000, () => 0)).toBe(225_000);
  });
});
