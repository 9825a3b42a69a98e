import { describe, expect, test } from "bun:test";
import { createBatcher } from "../../src/util/batcher.ts";

describe("call batcher", () => {
  test("calls to one peer in the same turn go as one batch; each caller gets its own result", async () => {
    const sent: Array<[string, number[]]> = [];
    const call = createBatcher<number, number>(async (peer, items) => {
      sent.push([peer, items]);
      return items.map((i) => i * 10);
    });
    const results = await Promise.all([call("a", 1), call("b", 2), call("a", 3), call("a", 4)]);
    expect(results).toEqual([10, 20, 30, 40]);
    expect(sent).toEqual([
      ["a", [1, 3, 4]],
      ["b", [2]],
    ]);
    expect(await call("a", 5)).toBe(50);
    expect(sent).toHaveLength(3);
  });

  test("a failed batch fails every call in it, and only those; big batches are split", async () => {
    let batches = 0;
    const call = createBatcher<number, number>(async (peer, items) => {
      batches++;
      if (peer === "down") throw new Error("unreachable");
      return items;
    });
    const down = Promise.allSettled([call("down", 1), call("down", 2)]);
    const up = call("up", 3);
    expect((await down).map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(await up).toBe(3);
    batches = 0;
    const many = await Promise.all(Array.from({ length: 600 }, (_, i) => call("up", i)));
    expect(many[599]).toBe(599);
    expect(batches).toBe(3);
  });

  test("a sender that answers the wrong number of results fails the batch instead of mismatching", async () => {
    const call = createBatcher<number, number>(async () => [1]);
    const r = await Promise.allSettled([call("a", 1), call("a", 2)]);
    expect(r.map((x) => x.status)).toEqual(["rejected", "rejected"]);
  });

  test("an aborted call leaves its batch if it was not sent yet, and otherwise stops waiting at once", async () => {
    const sent: number[][] = [];
    const answers: Array<() => void> = [];
    const call = createBatcher<number, number>(async (_, items) => {
      sent.push(items);
      await new Promise<void>((r) => answers.push(r));
      return items;
    });
    const gone = new AbortController();
    const withdrawn = call("a", 1, gone.signal);
    const kept = call("a", 2, new AbortController().signal);
    gone.abort();
    expect(await withdrawn.catch((e: Error) => e.name)).toBe("AbortError");
    await Bun.sleep(5);
    expect(sent).toEqual([[2]]);

    const late = new AbortController();
    const waiting = call("a", 3, late.signal);
    await Bun.sleep(5);
    expect(sent).toEqual([[2], [3]]);
    late.abort();
    expect(await waiting.catch((e: Error) => e.name)).toBe("AbortError");
    for (const answer of answers) answer();
    expect(await kept).toBe(2);
    // A call whose signal had aborted already is never queued.
    expect(await call("a", 4, AbortSignal.abort()).catch((e: Error) => e.name)).toBe("AbortError");
    expect(sent).toEqual([[2], [3]]);
  });
});
