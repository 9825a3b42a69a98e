// The background workers in bounded steps (src/repair/worker.ts): a repair step over a
// synthetic store touches at most one batch of chunk ids, a stop interrupts a long pass
// at once (also inside an await that never ends), failures back off, and GC reads each
// shard's manifests once per change rather than once per batch.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Rpc } from "../../src/net/rpc.ts";
import { createChunkGc } from "../../src/repair/chunk-gc.ts";
import { createChunkRepair, STEP_IDS } from "../../src/repair/chunk-repair.ts";
import { createReferenceIndex } from "../../src/repair/gc-references.ts";
import { createRateLimiter } from "../../src/repair/rate-limiter.ts";
import { backoffMs, createWorker, type Job } from "../../src/repair/worker.ts";
import type { ChunkStore } from "../../src/store/chunk-store.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { deletesAreFinal } from "../../src/metadata/keys.ts";
import { encodeTimestamp } from "../../src/util/hlc.ts";
import { createLogger } from "../../src/util/log.ts";
import { syntheticChunkId, syntheticClient, syntheticPlacement, syntheticStore, type SyntheticClientOptions } from "../harness/synthetic-chunks.ts";

const SELF = "peer-a";
const MEMBERS = [SELF, "peer-b", "peer-c"];
const quiet = createLogger("test", () => {}, "error");

/** Poll until `cond` holds (fails the test after 10 s). */
async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

function repairOver(count: number, client: SyntheticClientOptions = {}) {
  const store = syntheticStore(count);
  const chunks = syntheticClient(client);
  const repair = createChunkRepair({
    self: SELF,
    store,
    chunks,
    placement: syntheticPlacement(MEMBERS),
    concurrency: 4,
    limiter: createRateLimiter(1e12),
    collecting: () => false,
    log: quiet,
  });
  return { store, chunks, repair };
}

describe("chunk repair in steps", () => {
  test("each step asks about one batch of ids, reads the listing only as far as that batch, and the pass still repairs what is missing", async () => {
    const count = 20_500;
    const placement = syntheticPlacement(MEMBERS);
    // About 1 in 16 chunks lacks its copy on b; we push those for which we come before c
    // in the chunk's owner order (the first owner holding a chunk repairs it).
    const lacksOnB = (id: string) => parseInt(id.slice(8, 10), 16) < 16;
    const ours = new Set<string>();
    const { store, chunks, repair } = repairOver(count, {
      lacks: (peer, id) => {
        if (peer !== "peer-b" || !lacksOnB(id)) return false;
        const os = placement.chunkOwners(id);
        if (os.indexOf(SELF) < os.indexOf("peer-c")) ours.add(id);
        return true;
      },
    });
    const perStep: number[] = [];
    let before = 0;
    for await (const _ of repair.pass(new AbortController().signal)) {
      perStep.push(chunks.hasIds - before);
      before = chunks.hasIds;
      // Memory per step is one batch: the listing is read only one batch ahead of the work.
      expect(store.listed).toBeLessThanOrEqual(perStep.length * STEP_IDS + 1);
    }
    // Three members, rf 3: every chunk is asked about at its two other owners, once per pass.
    expect(perStep.length).toBe(Math.ceil(count / STEP_IDS));
    expect(Math.max(...perStep)).toBe(2 * STEP_IDS);
    expect(chunks.hasIds).toBe(2 * count);
    expect(chunks.hasCalls).toBe(2 * perStep.length);
    expect(ours.size).toBeGreaterThan(100);
    expect(new Set(chunks.pushed)).toEqual(ours);
    expect(chunks.pushed.length).toBe(ours.size);
    expect(repair.stats.chunksRepaired).toBe(ours.size);
    expect(repair.stats.underReplicated).toBe(0);
    expect(repair.stats.queue).toBe(0);
  });

  test("an owner that does not answer leaves chunks under-replicated: nothing is pushed or handed off", async () => {
    const chunks = syntheticClient();
    const has = (peer: string, ids: string[]) => (peer === "peer-c" ? Promise.reject(new Error("unreachable")) : chunks.has(peer, ids));
    const store = syntheticStore(3_000);
    const repair = createChunkRepair({ self: SELF, store, chunks: { ...chunks, has }, placement: syntheticPlacement(MEMBERS), concurrency: 4, limiter: createRateLimiter(1e12), collecting: () => false, log: quiet });
    for await (const _ of repair.pass(new AbortController().signal));
    // Counted by the first owner holding each chunk: here, for the chunks where we come before b.
    const placement = syntheticPlacement(MEMBERS);
    const firstOfUs = Array.from({ length: 3_000 }, (_, i) => placement.chunkOwners(syntheticChunkId(i))).filter((os) => os.indexOf(SELF) < os.indexOf("peer-b")).length;
    expect(firstOfUs).toBeGreaterThan(500);
    expect(repair.stats.underReplicated).toBe(firstOfUs);
    expect(chunks.pushed).toEqual([]);
    expect(store.deleted).toBe(0);
  });
});

describe("worker", () => {
  /** Start a repair worker over `count` ids, wait until it has done `steps` steps, stop it, and time the stop. */
  async function stopMidPass(count: number, client: SyntheticClientOptions, steps: number) {
    const { chunks, repair } = repairOver(count, client);
    const worker = createWorker("repair", repair, { intervalMs: 60_000, log: quiet });
    worker.start();
    await until(`${steps} steps and a question to the owners`, () => worker.status().steps >= steps && chunks.hasCalls > 2 * steps);
    expect(worker.status().state).toBe("busy");
    const t0 = performance.now();
    await worker.stop();
    const stopMs = performance.now() - t0;
    const callsAtStop = chunks.hasCalls;
    await Bun.sleep(100);
    return { stopMs, worker, chunks, callsAtStop };
  }

  test("stop interrupts a pass over 1,000,000 ids at once, between steps", async () => {
    const { stopMs, worker, chunks, callsAtStop } = await stopMidPass(1_000_000, { hasDelayMs: 2 }, 5);
    console.log(`stop returned in ${stopMs.toFixed(1)} ms after ${worker.status().steps} of 1,000 steps`);
    expect(stopMs).toBeLessThan(100);
    expect(worker.status().passes).toBe(0);
    expect(worker.status().steps).toBeLessThan(1_000);
    expect(chunks.hasCalls).toBe(callsAtStop); // nothing more was asked after the stop
    expect(worker.status().state).toBe("idle");
  });

  test("stop interrupts a step waiting on an owner that never answers", async () => {
    const { stopMs, worker } = await stopMidPass(100_000, { hasDelayMs: Infinity }, 0);
    console.log(`stop returned in ${stopMs.toFixed(1)} ms while a step waited on a hung owner`);
    expect(stopMs).toBeLessThan(100);
    expect(worker.status().steps).toBe(0);
  });

  test("a stop of the peer's signal stops the worker too; a rate-limited pass reports throttled", async () => {
    const peer = new AbortController();
    const limiter = createRateLimiter(1000);
    const job: Job = {
      async *pass(signal) {
        for (;;) {
          await limiter.take(1000, signal);
          yield;
        }
      },
      throttled: () => limiter.waiting > 0,
    };
    const worker = createWorker("throttled", job, { intervalMs: 60_000, log: quiet, signal: peer.signal });
    worker.start();
    await until("the worker throttled", () => worker.status().state === "throttled");
    expect(worker.status().steps).toBe(1);
    const t0 = performance.now();
    peer.abort();
    await worker.done;
    expect(performance.now() - t0).toBeLessThan(100);
  });

  test("a failing pass backs off, doubling up to a bound, with jitter; the state says error and keeps the message", async () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((n) => backoffMs(100, n, () => 0.999_999))).toEqual([100, 200, 400, 800, 1600, 1600, 1600]);
    expect(backoffMs(100, 3, () => 0)).toBe(200);
    let attempts = 0;
    const job: Job = {
      async *pass() {
        attempts++;
        if (attempts <= 3) throw new Error(`disk says no (${attempts})`);
        yield;
      },
    };
    const started: number[] = [];
    const worker = createWorker("flaky", { pass: (s) => (started.push(performance.now()), job.pass(s)) }, { intervalMs: 20, log: quiet, random: () => 0.999_999 });
    worker.start();
    await until("the first failure", () => worker.status().errors === 1);
    expect(worker.status()).toMatchObject({ state: "error", errors: 1, lastError: { message: "disk says no (1)" } });
    await until("a pass that succeeds", () => worker.status().passes === 1);
    const s = worker.status();
    expect(s.passes).toBe(1);
    expect(s.errors).toBe(0);
    expect(s.lastError?.message).toBe("disk says no (3)");
    // Waits after failures 1, 2, 3: about 20, 40 and 80 ms.
    const gaps = started.slice(1, 4).map((t, i) => t - started[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(18);
    expect(gaps[1]).toBeGreaterThanOrEqual(38);
    expect(gaps[2]).toBeGreaterThanOrEqual(78);
    await worker.stop();
  });

  test("wake cuts the wait short", async () => {
    let passes = 0;
    const worker = createWorker(
      "sleepy",
      {
        async *pass() {
          passes++;
          yield;
        },
      },
      { intervalMs: 60_000, log: quiet },
    );
    worker.start();
    await until("the first pass", () => worker.status().passes === 1);
    expect(worker.status().state).toBe("idle");
    await Bun.sleep(50);
    expect(passes).toBe(1);
    worker.wake();
    await until("a second pass", () => worker.status().passes === 2);
    expect(passes).toBe(2);
    await worker.stop();
  });
});

describe("GC references", () => {
  let root: string;
  let index: IndexStore;
  let wall = 1_700_000_000_000;
  const ts = () => encodeTimestamp({ wall: wall++, logical: 0, node: "n" });
  const manifest = (ids: string[]) => ({ ts: ts(), value: { size: 1, etag: "e", contentType: "x", meta: {}, lastModified: 0, chunkSize: 1, chunks: ids.map((id) => ({ id, size: 1 })) } });

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-gc-refs-"));
    index = await openIndexStore(path.join(root, "index"), { deletesAreFinal });
  });
  afterAll(async () => {
    await index.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("a shard is read again only after its rows changed, and every change is seen", async () => {
    const id = (i: number) => syntheticChunkId(1_000_000 + i);
    await index.apply("o1", "b\0k1", manifest([id(1), id(2)]));
    await index.apply("o2", "b\0k2", manifest([id(2), id(3)]));
    await index.apply("b", "bucket-row", { ts: ts(), value: { createdMs: 0 } });
    const refs = createReferenceIndex(index);
    let has = await refs.lookup();
    expect([1, 2, 3, 4].map((i) => has(id(i)))).toEqual([true, true, true, false]);
    expect(refs.shardReads).toBe(2); // object shards only
    has = await refs.lookup();
    expect(refs.shardReads).toBe(2);

    await index.apply("o1", "b\0k1", manifest([id(4)])); // overwritten: 1 is garbage now, 2 still referenced by o2
    has = await refs.lookup();
    expect([1, 2, 3, 4].map((i) => has(id(i)))).toEqual([false, true, true, true]);
    expect(refs.shardReads).toBe(3);

    await index.apply("o2", "b\0k2", { ts: ts(), value: null }); // deleted
    await index.drop("o1", [["b\0k1", (await index.get("o1", "b\0k1"))!.ts]]); // handed off
    has = await refs.lookup();
    expect([1, 2, 3, 4].map((i) => has(id(i)))).toEqual([false, false, false, false]);
  });

  test("a GC pass goes in batches of at most 5,000 ids and reads each shard once, not once per batch; it collects after the grace period only", async () => {
    const count = 12_345;
    const referenced = new Set<string>();
    for (let s = 0; s < 8; s++) {
      const ids = Array.from({ length: 50 }, (_, i) => syntheticChunkId(s * 100 + i));
      ids.forEach((x) => referenced.add(x));
      await index.apply(`o${10 + s}`, `gc\0obj${s}`, manifest(ids));
    }
    const store = syntheticStore(count);
    let now = 0;
    const rpc = { register() {}, call: async () => Promise.reject(new Error("no other members")) } as unknown as Rpc;
    let reads = 0;
    const countingIndex = { shards: () => index.shards(), digests: (s: string) => index.digests(s), rowsIn: (s: string) => (reads++, index.rowsIn(s)) } as unknown as IndexStore;
    const gc = createChunkGc({ self: SELF, chunkStore: store as unknown as ChunkStore, indexStore: countingIndex, rpc, peersToAsk: () => [], graceMs: 1000, uploading: () => [], log: quiet, clock: () => now });
    const shards = index.shards().filter((s) => s.startsWith("o")).length;

    const run = async () => {
      let steps = 0;
      for await (const _ of gc.pass(new AbortController().signal)) steps++;
      return steps;
    };
    expect(await run()).toBe(3); // 5,000 + 5,000 + 2,345
    expect(reads).toBe(shards);
    expect(gc.stats.pending).toBe(count - referenced.size);
    expect(store.deleted).toBe(0);
    expect(gc.collecting(syntheticChunkId(12_000))).toBe(true);
    expect(gc.collecting(syntheticChunkId(0))).toBe(false);

    now = 999;
    await run();
    expect(store.deleted).toBe(0);
    expect(reads).toBe(shards); // nothing changed: no shard read again
    now = 1000;
    await run();
    expect(store.deleted).toBe(count - referenced.size);
    expect(gc.stats.chunksCollected).toBe(count - referenced.size);
    expect(gc.stats.skipped).toBeUndefined();
  });
});
