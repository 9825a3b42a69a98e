import { describe, expect, test } from "bun:test";
import { Awareness, MAX_SCORE, RoundTrips, suspicionTimeout } from "../../src/membership/lifeguard.ts";

describe("Lifeguard", () => {
  test("the health score stretches timeouts and stays within its bounds", () => {
    const a = new Awareness();
    expect(a.scale(500)).toBe(500);
    a.apply(1);
    a.apply(1);
    expect(a.scale(500)).toBe(1500);
    for (let i = 0; i < 20; i++) a.apply(1);
    expect(a.score).toBe(MAX_SCORE);
    for (let i = 0; i < 20; i++) a.apply(-1);
    expect(a.score).toBe(0);
  });

  test("probe timeouts follow observed round trips, between the floor and the ceiling", () => {
    const r = new RoundTrips();
    expect(r.timeout("a", 500, 4000)).toBe(500);
    for (let i = 0; i < 20; i++) r.observe("a", 50);
    expect(r.timeout("a", 500, 4000)).toBe(500); // a fast link keeps the floor
    for (let i = 0; i < 20; i++) r.observe("b", i % 2 ? 300 : 900);
    const slow = r.timeout("b", 500, 4000);
    expect(slow).toBeGreaterThan(900); // a slow, jittery link gets more than its worst sample
    expect(slow).toBeLessThanOrEqual(4000);
    for (let i = 0; i < 5; i++) r.observe("c", 60_000);
    expect(r.timeout("c", 500, 4000)).toBe(4000);
    r.forget("b");
    expect(r.timeout("b", 500, 4000)).toBe(500);
  });

  test("suspicion shrinks from max to min as independent confirmations arrive", () => {
    const seq = [0, 1, 2, 3, 4].map((c) => suspicionTimeout(2000, 10_000, 3, c));
    expect(seq[0]).toBe(10_000);
    expect(seq[3]).toBe(2000);
    expect(seq[4]).toBe(2000);
    for (let i = 1; i < seq.length; i++) expect(seq[i]).toBeLessThanOrEqual(seq[i - 1]);
    // The first confirmation counts most (log scale).
    expect(seq[0] - seq[1]).toBeGreaterThan(seq[1] - seq[2]);
    // In a mesh too small for confirmations, the full time applies.
    expect(suspicionTimeout(2000, 10_000, 0, 5)).toBe(10_000);
  });
});
