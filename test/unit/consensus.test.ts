// The consensus round of conditional writes (src/metadata/consensus.ts) under seeded,
// adversarial message timing: three voters on real LevelDB stores, three proposers, every
// message delayed at random and some lost, one voter restarted (its promises forgotten) in
// the middle. Checked: an If-None-Match race has exactly one winner every time, and a
// compare-and-swap counter's acknowledged writes form one chain with no value written twice; a
// decision with an outbid answer (as CreateBucket has) is never left at 409.
import { afterEach, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createConsensus, type Consensus, type Decision } from "../../src/metadata/consensus.ts";
import { deletesAreFinal } from "../../src/metadata/keys.ts";
import type { IndexEntry } from "../../src/metadata/types.ts";
import type { Rpc } from "../../src/net/rpc.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { createHlc, decodeTimestamp } from "../../src/util/hlc.ts";
import { mulberry32 } from "../harness/random.ts";

const SHARD = "o7";
const PEERS = ["peer-a", "peer-b", "peer-c"];
const SEED = Number(process.env.MESH_TEST_SEED ?? 20261207);

type Handler = (req: { from: string; params: unknown; signal: AbortSignal }) => Promise<{ result: unknown }>;

/** Three peers, each a voter and a proposer, joined by a lossy, jittery fake network. */
async function mesh(random: () => number, loss: number) {
  const root = await mkdtemp(path.join(os.tmpdir(), "consensus-"));
  const handlers = new Map<string, Map<string, Handler>>();
  const stores = new Map<string, IndexStore>();
  const nodes = new Map<string, Consensus>();
  const delay = () => new Promise((r) => setTimeout(r, Math.floor(random() * 4)));

  async function boot(id: string) {
    const store = stores.get(id) ?? (await openIndexStore(path.join(root, id), { deletesAreFinal }));
    stores.set(id, store);
    const own = new Map<string, Handler>();
    handlers.set(id, own);
    const hlc = createHlc(id);
    const rpc = {
      register: (m: { name: string }, h: Handler) => void own.set(m.name, h),
      unregister: (m: { name: string }) => void own.delete(m.name),
      async call(peer: string, m: { name: string }, params: unknown) {
        await delay();
        if (random() < loss) throw new Error("lost on the way");
        const h = handlers.get(peer)?.get(m.name);
        if (!h) throw new Error("no such method");
        const reply = await h({ from: id, params, signal: new AbortController().signal });
        await delay();
        if (random() < loss) throw new Error("reply lost");
        return reply;
      },
    } as unknown as Rpc;
    const node = createConsensus({
      self: id,
      store,
      rpc,
      placement: { shardVoters: () => PEERS, shardQuorum: () => 2, reachable: () => true },
      hlc,
      dir: path.join(root, `${id}-state`),
      observe: (ts) => hlc.observe(decodeTimestamp(ts)),
    });
    await node.start();
    nodes.set(id, node);
  }
  for (const id of PEERS) await boot(id);

  return {
    node: (i: number) => nodes.get(PEERS[i])!,
    /** Forget everything in memory (its promises), keep its disk: a crash and restart. */
    async restart(i: number) {
      nodes.get(PEERS[i])!.stop();
      await boot(PEERS[i]);
    },
    async close() {
      for (const n of nodes.values()) n.stop();
      for (const s of stores.values()) await s.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** Outcome of a decide: "ok", or the error's code. */
const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code ?? String(e));

test("If-None-Match races through three proposers over a lossy network: exactly one winner each round", async () => {
  const random = mulberry32(SEED);
  const m = await mesh(random, 0.05);
  cleanup = m.close;
  const tally = new Map<string, number>();
  for (let round = 0; round < 40; round++) {
    const row = `lock-${round}`;
    const create = (who: number): Decision<string> => ({
      check: (cur) => (cur ? Object.assign(new Error("exists"), { code: "PreconditionFailed" }) : undefined),
      build: (_cur, ts) => ({ write: { who, round }, result: ts }),
    });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => outcome(m.node(i % 3).decide(SHARD, row, create(i)))));
    for (const r of results) tally.set(r, (tally.get(r) ?? 0) + 1);
    const wins = results.filter((r) => r === "ok").length;
    // A lost reply can leave a winner unsure (409); never two winners.
    expect(wins).toBeLessThanOrEqual(1);
    for (const r of results) expect(["ok", "PreconditionFailed", "ConditionalRequestConflict", "ServiceUnavailable"]).toContain(r);
    if (round === 20) await m.restart(1);
  }
  // Most rounds have their winner told so despite the losses.
  expect(tally.get("ok") ?? 0).toBeGreaterThanOrEqual(30);
});

test("a decision's outbid answer: creations raced by six proposers are never 409, and the one 200 is the value that stands", async () => {
  const random = mulberry32(SEED + 1);
  const m = await mesh(random, 0);
  cleanup = m.close;
  const tally = new Map<string, number>();
  const coded = (code: string) => Object.assign(new Error(code), { code });
  for (let round = 0; round < 60; round++) {
    const row = `bucket-${round}`;
    // As CreateBucket: a creation is only decided on an absent row, so a row chosen since is another's.
    const create = (who: number): Decision<number> => ({
      check: (cur) => (cur ? coded("PreconditionFailed") : undefined),
      build: () => ({ write: { who }, result: who }),
      outbid: (chosen) => (chosen ? coded("Taken") : undefined),
    });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => outcome(m.node(i % 3).decide(SHARD, row, create(i)))));
    for (const r of results) tally.set(r, (tally.get(r) ?? 0) + 1);
    expect(results.filter((r) => r === "ok").length).toBe(1);
    for (const r of results) expect(["ok", "PreconditionFailed", "Taken"]).toContain(r);
    // The row holds the winner's value.
    const read = await outcome(m.node(round % 3).decide(SHARD, row, { check: (cur) => Object.assign(coded("Read"), { message: JSON.stringify(cur?.value) }), build: () => ({ write: null, result: 0 }) }).catch((e: Error) => Promise.reject({ code: e.message })));
    expect(read).toBe(JSON.stringify({ who: results.indexOf("ok") }));
  }
  console.log(`creation races: ${JSON.stringify(Object.fromEntries(tally))}`);
});

test("a compare-and-swap counter through three proposers, with message loss and a voter restart: one chain, no value twice", async () => {
  const random = mulberry32(SEED + 1);
  const m = await mesh(random, 0.03);
  cleanup = m.close;
  const acked: number[] = [];
  const inDoubt: number[] = [];
  // Each proposer: increment whatever it finds (the check is "still the value I read").
  const step = async (i: number) => {
    let seen: number | undefined;
    const d: Decision<number> = {
      check: () => undefined,
      build: (cur: IndexEntry | null) => {
        seen = ((cur?.value as { n: number } | null)?.n ?? 0) + 1;
        return { write: { n: seen }, result: seen };
      },
    };
    const r = await m.node(i).decide(SHARD, "counter", d).then(
      (n) => ({ ok: true as const, n }),
      (e: { code?: string }) => ({ ok: false as const, code: e.code }),
    );
    if (r.ok) acked.push(r.n);
    else if ((r.code === "ConditionalRequestConflict" || r.code === "ServiceUnavailable") && seen !== undefined) inDoubt.push(seen);
  };
  for (let batch = 0; batch < 60; batch++) {
    await Promise.all([0, 1, 2].map(step));
    if (batch === 30) await m.restart(2);
  }
  acked.sort((a, b) => a - b);
  for (let i = 1; i < acked.length; i++) if (acked[i] === acked[i - 1]) throw new Error(`value ${acked[i]} acknowledged twice`);
  // Every value up to the last acknowledged one was written by an acknowledged or doubtful round.
  const known = new Set([...acked, ...inDoubt]);
  for (let v = 1; v <= acked[acked.length - 1]; v++) expect(known.has(v)).toBe(true);
  expect(acked.length).toBeGreaterThan(100);
});
