import { createHash } from "node:crypto";
import { describe, expect, test } from "bun:test";
import { buildRing, DEFAULT_VNODES, ringPosition, type Ring, type RingMember } from "../../src/placement/ring.ts";

// Override with RING_SEED=<n> to explore other key/member sets; failures print the seed.
const SEED = Number(process.env.RING_SEED ?? 0x5eed1e55);
const KEYS = 100_000;

/** Tiny deterministic PRNG (mulberry32) so every run measures the same keys. */
function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomHex(rnd: () => number, chars: number): string {
  let s = "";
  while (s.length < chars) s += Math.floor(rnd() * 2 ** 32).toString(16).padStart(8, "0");
  return s.slice(0, chars);
}

const rnd = mulberry32(SEED);
const chunkKeys = Array.from({ length: KEYS }, () => randomHex(rnd, 64));
const shardKeys = Array.from({ length: KEYS }, (_, i) => `shard:${String(i).padStart(4, "0")}`);
const peerIds = (n: number) => Array.from({ length: n }, () => `12D3KooW${randomHex(rnd, 40)}`);
const named = (n: number, prefix = "node-") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const asMembers = (ids: readonly string[]): RingMember[] => ids.map((id) => ({ id }));

/** Per-member count of keys held, over the first `rf` replicas of each key. */
function load(ring: Ring, keys: readonly string[], rf: number): Map<string, number> {
  const counts = new Map<string, number>(ring.members.map((m) => [m, 0]));
  for (const k of keys) for (const m of ring.replicasFor(k, rf)) counts.set(m, counts.get(m)! + 1);
  return counts;
}

function maxOverMean(counts: Map<string, number>): number {
  const vals = [...counts.values()];
  const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
  return Math.max(...vals) / mean;
}

describe("ringPosition", () => {
  test("64-hex chunk ids use their leading 32 bits directly", () => {
    expect(ringPosition("ab" + "0".repeat(62))).toBe(0xab000000);
    expect(ringPosition("f".repeat(64))).toBe(0xffffffff);
    expect(ringPosition("0".repeat(64))).toBe(0);
  });

  test("other strings use the leading 32 bits of SHA-256 (checked against node:crypto)", () => {
    for (const k of ["", "shard:0042", "F".repeat(64), "ab".repeat(31), "héllo ✓"]) {
      const expected = parseInt(createHash("sha256").update(k, "utf8").digest("hex").slice(0, 8), 16);
      expect(ringPosition(k)).toBe(expected);
    }
  });

  test("golden values stay fixed (changing them reshuffles every deployed cluster)", () => {
    expect(ringPosition("shard:0042")).toBe(1426417992);
    expect(ringPosition("")).toBe(3820012610);
    const ring = buildRing(asMembers(["alpha", "bravo", "charlie", "delta", "echo"]));
    expect(ring.replicasFor("shard:0000", 3)).toEqual(["delta", "charlie", "alpha"]);
    expect(ring.replicasFor("shard:0042", 3)).toEqual(["charlie", "delta", "echo"]);
    expect(ring.replicasFor("a".repeat(64), 3)).toEqual(["bravo", "echo", "alpha"]);
    expect(ring.replicasFor("0123456789abcdef".repeat(4), 3)).toEqual(["charlie", "bravo", "delta"]);
  });
});

describe("buildRing basics", () => {
  test("empty ring", () => {
    const ring = buildRing([]);
    expect(ring.members).toEqual([]);
    expect(ring.replicasFor("shard:1", 3)).toEqual([]);
  });

  test("members are sorted; duplicates collapse; input order does not matter", () => {
    const ids = peerIds(12);
    const a = buildRing(asMembers(ids));
    const shuffled = [...ids].reverse().concat(ids.slice(0, 4)); // reversed plus duplicates
    const b = buildRing(asMembers(shuffled));
    expect(a.members).toEqual([...ids].sort());
    expect(b.members).toEqual(a.members);
    for (const k of [...chunkKeys.slice(0, 2000), ...shardKeys.slice(0, 2000)]) {
      expect(b.replicasFor(k, 3)).toEqual(a.replicasFor(k, 3));
    }
  });

  test("duplicate ids with different weights take the largest, regardless of order", () => {
    const a = buildRing([{ id: "x", weight: 1 }, { id: "x", weight: 3 }, { id: "y" }]);
    const b = buildRing([{ id: "y" }, { id: "x", weight: 3 }, { id: "x" }]);
    const c = buildRing([{ id: "x", weight: 3 }, { id: "y" }]);
    for (const k of shardKeys.slice(0, 3000)) {
      expect(a.replicasFor(k, 1)[0]).toBe(c.replicasFor(k, 1)[0]);
      expect(b.replicasFor(k, 1)[0]).toBe(c.replicasFor(k, 1)[0]);
    }
  });

  test("same placement in a separate process", () => {
    const ids = named(9, "peer-");
    const sample = [...chunkKeys.slice(0, 200), ...shardKeys.slice(0, 200)];
    const script = `
      import { buildRing } from ${JSON.stringify(new URL("../../src/placement/ring.ts", import.meta.url).pathname)};
      const ring = buildRing(${JSON.stringify(asMembers([...ids].reverse()))});
      console.log(JSON.stringify(${JSON.stringify(sample)}.map((k) => ring.replicasFor(k, 3))));
    `;
    const proc = Bun.spawnSync([process.execPath, "-e", script]);
    expect(proc.exitCode).toBe(0);
    const ring = buildRing(asMembers(ids));
    expect(JSON.parse(proc.stdout.toString())).toEqual(sample.map((k) => ring.replicasFor(k, 3)));
  });

  test("replicasFor returns distinct members; rf edge cases", () => {
    const ring = buildRing(asMembers(named(5)));
    for (const k of shardKeys.slice(0, 500)) {
      const all = ring.replicasFor(k, 99);
      expect(all.length).toBe(5);
      expect([...all].sort()).toEqual([...ring.members]);
      expect(ring.replicasFor(k, 3)).toEqual(all.slice(0, 3)); // prefixes agree across rf
      expect(ring.replicasFor(k, 0)).toEqual([]);
      expect(ring.replicasFor(k, -2)).toEqual([]);
    }
    const single = buildRing(asMembers(["solo"]));
    expect(single.replicasFor("shard:7", 3)).toEqual(["solo"]);
  });

  test("invalid weights and vnodes are rejected", () => {
    expect(() => buildRing([{ id: "a", weight: 0 }])).toThrow(RangeError);
    expect(() => buildRing([{ id: "a", weight: -1 }])).toThrow(RangeError);
    expect(() => buildRing([{ id: "a", weight: Number.NaN }])).toThrow(RangeError);
    expect(() => buildRing([{ id: "" }])).toThrow(TypeError);
    expect(() => buildRing([{ id: "a" }], { vnodes: 0 })).toThrow(RangeError);
    expect(() => buildRing([{ id: "a" }], { vnodes: 1.5 })).toThrow(RangeError);
  });
});

describe("replica shares", () => {
  const sum = (shares: ReadonlyArray<{ share: number }>) => shares.reduce((a, b) => a + b.share, 0);

  test("shares sum to min(rf, members), are sorted by id, and an empty ring has none", () => {
    expect(buildRing([]).replicaShares(3)).toEqual([]);
    for (const n of [1, 2, 3, 5, 8]) {
      const ring = buildRing(asMembers(peerIds(n)));
      for (const rf of [0, 1, 2, 3, 4]) {
        const shares = ring.replicaShares(rf);
        expect(shares.map((x) => x.id)).toEqual([...ring.members]);
        expect(`${n} members rf ${rf}: ${sum(shares).toFixed(12)}`).toBe(`${n} members rf ${rf}: ${Math.min(rf, n).toFixed(12)}`);
        for (const x of shares) expect(x.share).toBeLessThanOrEqual(1);
      }
    }
  });

  test("equal members get about equal shares, and the exact shares agree with sampled keys", () => {
    const ring = buildRing(asMembers(named(6)));
    const shares = ring.replicaShares(3);
    for (const x of shares) expect(`${x.id} ${Math.abs(x.share - 0.5) < 0.05}`).toBe(`${x.id} true`); // mean 3/6
    const sampled = load(ring, chunkKeys, 3);
    for (const x of shares) expect(Math.abs(sampled.get(x.id)! / chunkKeys.length - x.share)).toBeLessThan(0.01);
  });

  test("a heavier member's share grows with its weight", () => {
    const shares = buildRing([{ id: "big", weight: 2 }, { id: "a" }, { id: "b" }]).replicaShares(1);
    const of = (id: string) => shares.find((x) => x.id === id)!.share;
    expect(of("big") / of("a")).toBeGreaterThan(1.7);
    expect(of("big") / of("a")).toBeLessThan(2.3);
  });

  test("a member removed from the ring has share 0; the others take it up, and one ring computes its shares once", () => {
    const ids = named(5);
    const before = buildRing(asMembers(ids));
    const after = buildRing(asMembers(ids.filter((id) => id !== "node-2")));
    const shareOf = (ring: Ring, id: string) => ring.replicaShares(3).find((x) => x.id === id)?.share ?? 0;
    expect(shareOf(before, "node-2")).toBeGreaterThan(0.4);
    expect(shareOf(after, "node-2")).toBe(0);
    expect(sum(after.replicaShares(3))).toBeCloseTo(3, 12);
    for (const id of after.members) expect(shareOf(after, id)).toBeGreaterThan(shareOf(before, id));
    expect(after.replicaShares(3)).toBe(after.replicaShares(3));
  });

  test("cheap: 64 members' shares in well under a second", () => {
    const ring = buildRing(asMembers(peerIds(64)));
    const t0 = performance.now();
    ring.replicaShares(3);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe("spread", () => {
  const sets: [string, string[]][] = [
    ["node-0..15", named(16)],
    ["random peer ids A", peerIds(16)],
    ["random peer ids B", peerIds(16)],
  ];
  for (const [label, ids] of sets) {
    for (const [kind, keys] of [["chunk ids", chunkKeys], ["shard keys", shardKeys]] as const) {
      test(`16 members (${label}), ${kind}: primary and rf=3 within 1.25x of mean`, () => {
        const ring = buildRing(asMembers(ids));
        const primary = maxOverMean(load(ring, keys, 1));
        const replicas = maxOverMean(load(ring, keys, 3));
        const msg = `seed=${SEED} ${label} ${kind} primary max/mean=${primary.toFixed(3)} rf3 max/mean=${replicas.toFixed(3)}`;
        if (process.env.RING_VERBOSE) console.log(msg);
        expect(primary, msg).toBeLessThanOrEqual(1.25);
        expect(replicas, msg).toBeLessThanOrEqual(1.25);
      });
    }
  }
});

describe("minimal movement", () => {
  for (const n of [8, 16]) {
    test(`adding a member to ${n} moves ~1/${n + 1} of primaries, all to the newcomer`, () => {
      const ids = peerIds(n);
      const before = buildRing(asMembers(ids));
      const newcomer = "12D3KooWnewcomer";
      const after = buildRing(asMembers([...ids, newcomer]));
      let moved = 0;
      for (const k of chunkKeys) {
        const was = before.replicasFor(k, 1)[0];
        const now = after.replicasFor(k, 1)[0];
        if (was !== now) {
          moved++;
          expect(now, `seed=${SEED} key ${k} moved ${was} -> ${now}`).toBe(newcomer);
        }
      }
      const frac = moved / chunkKeys.length;
      const ideal = 1 / (n + 1);
      const msg = `seed=${SEED} n=${n} moved=${frac.toFixed(4)} ideal=${ideal.toFixed(4)} ratio=${(frac / ideal).toFixed(3)}`;
      if (process.env.RING_VERBOSE) console.log(msg);
      expect(frac, msg).toBeGreaterThanOrEqual(0.6 * ideal);
      expect(frac, msg).toBeLessThanOrEqual(1.5 * ideal);
    });

    test(`removing a member from ${n} moves only the keys it owned`, () => {
      const ids = peerIds(n);
      const before = buildRing(asMembers(ids));
      const gone = ids[3];
      const after = buildRing(asMembers(ids.filter((id) => id !== gone)));
      for (const k of chunkKeys) {
        const was = before.replicasFor(k, 1)[0];
        if (was === gone) expect(after.replicasFor(k, 1)[0]).not.toBe(gone);
        else expect(after.replicasFor(k, 1)[0], `seed=${SEED} key ${k}`).toBe(was!);
      }
    });
  }

  test("rf=3: adding a member only inserts it into replica sets (order kept, at most one dropped)", () => {
    const ids = peerIds(10);
    const newcomer = "12D3KooWnewcomer";
    const before = buildRing(asMembers(ids));
    const after = buildRing(asMembers([...ids, newcomer]));
    let changed = 0;
    for (const k of [...chunkKeys.slice(0, 30_000), ...shardKeys.slice(0, 10_000)]) {
      const old = before.replicasFor(k, 3);
      const now = after.replicasFor(k, 3);
      const others = now.filter((m) => m !== newcomer);
      // Without the newcomer, the new set is the old set's prefix: nothing else reshuffled.
      expect(others, `seed=${SEED} key ${k}`).toEqual(old.slice(0, others.length));
      expect(old.filter((m) => !now.includes(m)).length).toBeLessThanOrEqual(1);
      if (now.includes(newcomer)) changed++;
    }
    // The newcomer should join roughly 3/11 of replica sets.
    const frac = changed / 40_000;
    expect(frac, `seed=${SEED} joined=${frac}`).toBeGreaterThan(0.6 * (3 / 11));
    expect(frac, `seed=${SEED} joined=${frac}`).toBeLessThan(1.5 * (3 / 11));
  });

  test("rf=3: removing a member drops it and appends the next member, order kept", () => {
    const ids = peerIds(10);
    const gone = ids[5];
    const before = buildRing(asMembers(ids));
    const after = buildRing(asMembers(ids.filter((id) => id !== gone)));
    for (const k of chunkKeys.slice(0, 30_000)) {
      const old = before.replicasFor(k, 3).filter((m) => m !== gone);
      const now = after.replicasFor(k, 3);
      expect(now.slice(0, old.length), `seed=${SEED} key ${k}`).toEqual(old);
    }
  });
});

describe("weights", () => {
  test("a weight-2 member holds about twice the keys of a weight-1 member", () => {
    const ids = peerIds(8);
    const heavy = ids[0];
    const ring = buildRing(ids.map((id) => ({ id, weight: id === heavy ? 2 : 1 })));
    for (const [kind, keys] of [["chunk", chunkKeys], ["shard", shardKeys]] as const) {
      const counts = load(ring, keys, 1);
      const light = ids.slice(1).map((id) => counts.get(id)!);
      const lightMean = light.reduce((a, b) => a + b, 0) / light.length;
      const ratio = counts.get(heavy)! / lightMean;
      const msg = `seed=${SEED} ${kind} heavy/light=${ratio.toFixed(3)}`;
      if (process.env.RING_VERBOSE) console.log(msg);
      expect(ratio, msg).toBeGreaterThan(1.7);
      expect(ratio, msg).toBeLessThan(2.3);
    }
  });

  test("a smaller vnodes option still places deterministically", () => {
    const a = buildRing(asMembers(named(4)), { vnodes: 8 });
    const b = buildRing(asMembers(named(4).reverse()), { vnodes: 8 });
    for (const k of shardKeys.slice(0, 1000)) expect(a.replicasFor(k, 2)).toEqual(b.replicasFor(k, 2));
  });
});

describe("performance", () => {
  test(`building a 100-member ring (${DEFAULT_VNODES} vnodes each) takes well under 50 ms`, () => {
    const members = asMembers(peerIds(100));
    buildRing(members); // warm up the JIT
    const t0 = performance.now();
    buildRing(members);
    const ms = performance.now() - t0;
    expect(ms, `build took ${ms.toFixed(2)} ms`).toBeLessThan(50);
  });

  test("100k replicasFor(rf=3) calls with 16 members take well under a second", () => {
    const ring = buildRing(asMembers(peerIds(16)));
    const t0 = performance.now();
    for (const k of chunkKeys) ring.replicasFor(k, 3);
    const ms = performance.now() - t0;
    expect(ms, `100k lookups took ${ms.toFixed(1)} ms`).toBeLessThan(1000);
  });
});
