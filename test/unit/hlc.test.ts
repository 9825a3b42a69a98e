import { describe, expect, test } from "bun:test";
import {
  ClockDriftError,
  compareTimestamps,
  createHlc,
  decodeTimestamp,
  encodeTimestamp,
  MAX_LOGICAL,
  type Timestamp,
} from "../../src/util/hlc.ts";
import { mulberry32 as prng } from "../harness/random.ts";

/** A clock whose readings come from a list (last value repeats). */
function scriptedClock(values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}

function expectStrictlyIncreasing(ts: Timestamp[]): void {
  for (let i = 1; i < ts.length; i++) {
    expect(compareTimestamps(ts[i - 1]!, ts[i]!)).toBe(-1);
  }
}

describe("compareTimestamps", () => {
  test("orders by wall, then logical, then node", () => {
    expect(compareTimestamps({ wall: 1, logical: 9, node: "z" }, { wall: 2, logical: 0, node: "a" })).toBe(-1);
    expect(compareTimestamps({ wall: 2, logical: 1, node: "a" }, { wall: 2, logical: 0, node: "z" })).toBe(1);
    expect(compareTimestamps({ wall: 2, logical: 1, node: "a" }, { wall: 2, logical: 1, node: "b" })).toBe(-1);
    expect(compareTimestamps({ wall: 2, logical: 1, node: "a" }, { wall: 2, logical: 1, node: "a" })).toBe(0);
  });
});

describe("createHlc().now", () => {
  test("is strictly monotonic when the wall clock stands still", () => {
    const hlc = createHlc("n1", { clock: () => 1_000 });
    const ts = Array.from({ length: 1000 }, () => hlc.now());
    expectStrictlyIncreasing(ts);
    expect(ts[0]).toEqual({ wall: 1_000, logical: 0, node: "n1" });
    expect(ts[999]).toEqual({ wall: 1_000, logical: 999, node: "n1" });
  });

  test("is strictly monotonic when the wall clock goes backwards", () => {
    const hlc = createHlc("n1", { clock: scriptedClock([5_000, 5_001, 4_000, 3_000, 5_001, 5_002, 100, 6_000]) });
    const ts = Array.from({ length: 8 }, () => hlc.now());
    expectStrictlyIncreasing(ts);
    // Never falls back to the regressed wall time.
    for (const t of ts) expect(t.wall).toBeGreaterThanOrEqual(5_000);
    // Catches up with real time once the clock passes the high-water mark.
    expect(ts[5]).toEqual({ wall: 5_002, logical: 0, node: "n1" });
    expect(ts[7]).toEqual({ wall: 6_000, logical: 0, node: "n1" });
  });

  test("tracks the wall clock when it advances", () => {
    const hlc = createHlc("n1", { clock: scriptedClock([10, 20, 30]) });
    expect(hlc.now()).toEqual({ wall: 10, logical: 0, node: "n1" });
    expect(hlc.now()).toEqual({ wall: 20, logical: 0, node: "n1" });
    expect(hlc.now()).toEqual({ wall: 30, logical: 0, node: "n1" });
  });

  test("defaults to Date.now", () => {
    const before = Date.now();
    const t = createHlc("n1").now();
    expect(t.wall).toBeGreaterThanOrEqual(before);
    expect(t.wall).toBeLessThanOrEqual(Date.now());
  });

  test("borrows the next ms when the logical counter is exhausted", () => {
    const hlc = createHlc("n1", { clock: () => 1_000 });
    hlc.observe({ wall: 1_000, logical: MAX_LOGICAL, node: "n2" });
    const t = hlc.now();
    expect(t).toEqual({ wall: 1_001, logical: 0, node: "n1" });
    expect(() => encodeTimestamp(t)).not.toThrow();
  });

  test("rejects an empty node id", () => {
    expect(() => createHlc("")).toThrow(TypeError);
  });
});

describe("createHlc().observe", () => {
  test("a remote timestamp ahead makes later local timestamps exceed it", () => {
    let wall = 1_000;
    const hlc = createHlc("a", { clock: () => wall });
    const remote: Timestamp = { wall: 1_500, logical: 7, node: "zzz" };
    hlc.observe(remote);
    const t1 = hlc.now();
    // Node "a" < "zzz", so the clock must win on (wall, logical), not on the node tie-breaker.
    expect(compareTimestamps(t1, remote)).toBe(1);
    expect(t1).toEqual({ wall: 1_500, logical: 8, node: "a" });
    wall = 1_200; // local clock still behind the remote
    expect(compareTimestamps(hlc.now(), t1)).toBe(1);
    wall = 2_000; // local clock caught up
    expect(hlc.now()).toEqual({ wall: 2_000, logical: 0, node: "a" });
  });

  test("a remote timestamp behind does not move the clock", () => {
    const hlc = createHlc("a", { clock: () => 1_000 });
    hlc.now();
    hlc.observe({ wall: 500, logical: 99, node: "b" });
    expect(hlc.now()).toEqual({ wall: 1_000, logical: 1, node: "a" });
  });

  test("an equal (wall, logical) from another node is still exceeded", () => {
    const hlc = createHlc("a", { clock: () => 1_000 });
    const remote = { wall: 1_000, logical: 3, node: "b" };
    hlc.observe(remote);
    expect(compareTimestamps(hlc.now(), remote)).toBe(1);
  });

  test("a remote with the same wall but a higher counter is merged", () => {
    const hlc = createHlc("a", { clock: () => 1_000 });
    expect(hlc.now()).toEqual({ wall: 1_000, logical: 0, node: "a" });
    hlc.observe({ wall: 1_000, logical: 41, node: "b" });
    expect(hlc.now()).toEqual({ wall: 1_000, logical: 42, node: "a" });
  });

  test("rejects timestamps more than maxDriftMs ahead, accepts the boundary", () => {
    let wall = 10_000;
    const hlc = createHlc("a", { clock: () => wall, maxDriftMs: 1_000 });
    expect(() => hlc.observe({ wall: 11_001, logical: 0, node: "b" })).toThrow(ClockDriftError);
    // The rejected timestamp must not have leaked into the clock state.
    expect(hlc.now()).toEqual({ wall: 10_000, logical: 0, node: "a" });
    hlc.observe({ wall: 11_000, logical: 0, node: "b" });
    expect(hlc.now()).toEqual({ wall: 11_000, logical: 1, node: "a" });
    wall = 20_000;
    hlc.observe({ wall: 20_900, logical: 0, node: "b" }); // fine again as local time moved on
  });

  test("default drift limit is 60 s", () => {
    const hlc = createHlc("a", { clock: () => 0 });
    expect(() => hlc.observe({ wall: 60_000, logical: 0, node: "b" })).not.toThrow();
    let err: unknown;
    try {
      hlc.observe({ wall: 60_001, logical: 0, node: "b" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ClockDriftError);
    expect((err as ClockDriftError).code).toBe("ClockDrift");
    expect((err as ClockDriftError).driftMs).toBe(60_001);
  });

  test("rejects malformed remote timestamps", () => {
    const hlc = createHlc("a", { clock: () => 1_000 });
    expect(() => hlc.observe({ wall: 1.5, logical: 0, node: "b" })).toThrow(TypeError);
    expect(() => hlc.observe({ wall: 1, logical: -1, node: "b" })).toThrow(TypeError);
    expect(() => hlc.observe({ wall: 1, logical: 0, node: "" })).toThrow(TypeError);
    expect(() => hlc.observe({ wall: Number.NaN, logical: 0, node: "b" })).toThrow(TypeError);
  });
});

describe("encodeTimestamp / decodeTimestamp", () => {
  test("fixed-width format", () => {
    expect(encodeTimestamp({ wall: 1_700_000_000_123, logical: 255, node: "peer-1" })).toBe(
      "1700000000123-0000ff-peer-1",
    );
    expect(encodeTimestamp({ wall: 5, logical: 0, node: "x" })).toBe("0000000000005-000000-x");
  });

  test("rejects unencodable timestamps and malformed strings", () => {
    expect(() => encodeTimestamp({ wall: 1e13, logical: 0, node: "x" })).toThrow(TypeError);
    expect(() => encodeTimestamp({ wall: 0, logical: MAX_LOGICAL + 1, node: "x" })).toThrow(TypeError);
    expect(() => encodeTimestamp({ wall: -1, logical: 0, node: "x" })).toThrow(TypeError);
    for (const bad of ["", "123-000000-x", "0000000000005-00000g-x", "0000000000005-000000-", "0000000000005_000000_x"]) {
      expect(() => decodeTimestamp(bad)).toThrow(TypeError);
    }
  });

  test("round trip and string order equals compareTimestamps order over random timestamps", () => {
    const rand = prng(0xc0ffee);
    // Node ids include '-' (the separator), non-ASCII and astral characters to stress decoding and ordering.
    const alphabet = ["a", "b", "Z", "0", "9", "-", "_", "é", "\u{1F600}", "~"];
    const randomNode = () => {
      const len = 1 + Math.floor(rand() * 4);
      let s = "";
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      return s;
    };
    const randomTs = (): Timestamp => {
      // Mix narrow ranges (to force ties on wall/logical) with the full encodable range.
      const narrow = rand() < 0.7;
      return {
        wall: narrow ? 1_700_000_000_000 + Math.floor(rand() * 3) : Math.floor(rand() * 9_999_999_999_999),
        logical: narrow ? Math.floor(rand() * 3) : Math.floor(rand() * (MAX_LOGICAL + 1)),
        node: randomNode(),
      };
    };

    const ts = Array.from({ length: 3000 }, randomTs);
    ts.push({ wall: 0, logical: 0, node: "a" }, { wall: 9_999_999_999_999, logical: MAX_LOGICAL, node: "a" });

    for (const t of ts) expect(decodeTimestamp(encodeTimestamp(t))).toEqual(t);

    // Pairwise: sign of string comparison equals sign of compareTimestamps.
    const sign = (x: number) => (x < 0 ? -1 : x > 0 ? 1 : 0);
    let ties = 0;
    for (let i = 0; i + 1 < ts.length; i++) {
      const a = ts[i]!;
      const b = ts[i + 1]!;
      const ea = encodeTimestamp(a);
      const eb = encodeTimestamp(b);
      const strCmp = ea < eb ? -1 : ea > eb ? 1 : 0;
      expect(strCmp).toBe(sign(compareTimestamps(a, b)));
      if (a.wall === b.wall && a.logical === b.logical) ties++;
    }
    expect(ties).toBeGreaterThan(100); // the node tie-breaker was actually exercised

    // Whole-list: sorting the encodings gives the same order as sorting by compareTimestamps.
    const byCompare = [...ts].sort(compareTimestamps).map(encodeTimestamp);
    const byString = ts.map(encodeTimestamp).sort();
    expect(byString).toEqual(byCompare);
  });
});
