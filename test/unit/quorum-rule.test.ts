import { describe, expect, test } from "bun:test";
import { quorumRule } from "../../src/placement/quorum-rule.ts";

describe("quorum rule", () => {
  test("r = min(RF, members), W = floor(r/2)+1, for 1 to 7 members and RF 1 to 5", () => {
    const table: string[] = [];
    for (let rf = 1; rf <= 5; rf++) {
      for (let members = 1; members <= 7; members++) {
        const q = quorumRule(rf, members);
        const r = Math.min(rf, members);
        expect(q).toEqual({ members, rf, r, w: Math.floor(r / 2) + 1 });
        // An acknowledged write survives the loss of any one peer whenever the mesh can keep 2 copies.
        if (r >= 2) expect(q.w).toBeGreaterThanOrEqual(2);
        // Two write quorums always share a peer, so two sides of a partition never both
        // settle a write among the same r replicas without one of them seeing the other's.
        expect(2 * q.w).toBeGreaterThan(r);
        // The quorum is never more than the copies kept: a whole mesh can always write.
        expect(q.w).toBeLessThanOrEqual(r);
        table.push(`${rf}/${members}:${q.w}`);
      }
    }
    // Spot checks of the table that the README states.
    expect(quorumRule(3, 1)).toMatchObject({ r: 1, w: 1 });
    expect(quorumRule(3, 2)).toMatchObject({ r: 2, w: 2 });
    expect(quorumRule(3, 5)).toMatchObject({ r: 3, w: 2 });
    expect(quorumRule(5, 7)).toMatchObject({ r: 5, w: 3 });
    expect(quorumRule(4, 4)).toMatchObject({ r: 4, w: 3 });
    expect(table).toHaveLength(35);
  });
});
