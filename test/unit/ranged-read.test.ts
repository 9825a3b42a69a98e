// Ranged reads of objects not kept yet (src/remotes/ranged-read.ts): the chunk-aligned span,
// the slice cut from its stream (and the source cancelled once the slice is out), and the
// answers that send the caller back to a full read.
import { describe, expect, test } from "bun:test";
import type { GetOptions, RemoteBackend, RemoteBody } from "../../src/remotes/backend.ts";
import { alignedSpan, readRange, sliceStream } from "../../src/remotes/ranged-read.ts";

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);

/** A source of `data` in pieces of `piece` bytes that records whether it was cancelled and how much was pulled. */
function source(data: Uint8Array, piece: number) {
  const seen = { pulled: 0, cancelled: false };
  let at = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (at >= data.length) return c.close();
        const p = data.slice(at, at + piece);
        at += p.byteLength;
        seen.pulled += p.byteLength;
        c.enqueue(p);
      },
      cancel() {
        seen.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, seen };
}

const all = async (s: ReadableStream<Uint8Array>) => new Uint8Array(await new Response(s).arrayBuffer());

describe("alignedSpan", () => {
  test("covers the range with whole chunks, the last one cut at the object's end", () => {
    expect(alignedSpan(5, 10, 100, 16)).toEqual({ start: 0, end: 15 });
    expect(alignedSpan(15, 17, 100, 16)).toEqual({ start: 0, end: 31 });
    expect(alignedSpan(16, 32, 100, 16)).toEqual({ start: 16, end: 31 });
    expect(alignedSpan(90, 100, 100, 16)).toEqual({ start: 80, end: 99 });
    expect(alignedSpan(0, 1, 1, 16)).toEqual({ start: 0, end: 0 });
  });
  test("refuses an empty or out-of-bounds range", () => {
    expect(() => alignedSpan(5, 5, 100, 16)).toThrow(RangeError);
    expect(() => alignedSpan(0, 101, 100, 16)).toThrow(RangeError);
    expect(() => alignedSpan(0, 10, 100, 0)).toThrow(RangeError);
  });
});

describe("sliceStream", () => {
  test("passes exactly the bytes after the skip, across pieces, and cancels the rest", async () => {
    const data = bytes(1000);
    const { stream, seen } = source(data, 64);
    expect(await all(sliceStream(stream, 100, 250, 1000))).toEqual(data.subarray(100, 350));
    expect(seen.pulled).toBeLessThan(450);
    expect(seen.cancelled).toBe(true);
  });
  test("a source that ends short fails the stream", async () => {
    const { stream } = source(bytes(100), 30);
    await expect(all(sliceStream(stream, 50, 100, 1000))).rejects.toThrow("ended 50 bytes short");
  });
  test("a source that stalls fails the stream", async () => {
    const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
    await expect(all(sliceStream(stalled, 0, 10, 50))).rejects.toThrow("sent nothing for 50 ms");
  });
});

describe("readRange", () => {
  const data = bytes(100);
  /** A backend answering `answer` to every get, recording the options. */
  function backend(answer: (o: GetOptions) => Awaited<ReturnType<RemoteBackend["get"]>>) {
    const asked: GetOptions[] = [];
    return {
      asked,
      get: async (_key: string, o: GetOptions = {}) => {
        asked.push(o);
        return answer(o);
      },
    };
  }
  const ranged = (o: GetOptions, etag = '"e1"', size = 100): RemoteBody => ({
    info: { key: "k", size, etag, meta: {} },
    range: o.range,
    body: source(data.slice(o.range!.start, o.range!.end + 1), 7).stream,
  });
  const want = { start: 20, end: 40, size: 100, etag: '"e1"' };

  test("reads the aligned span with If-Match and returns the range", async () => {
    const b = backend((o) => ranged(o));
    const r = await readRange(b, "k", want, 16, 1000);
    expect(b.asked).toEqual([{ range: { start: 16, end: 47 }, ifMatch: '"e1"', signal: undefined }]);
    if (r.kind !== "body") throw new Error(r.kind);
    expect(await all(r.body)).toEqual(data.subarray(20, 40));
  });
  test("the same ETag written with or without quotes is the same", async () => {
    const r = await readRange(backend((o) => ranged(o, "e1")), "k", want, 16, 1000);
    expect(r.kind).toBe("body");
    if (r.kind === "body") await r.body.cancel();
  });
  test("a failed If-Match, an ignored Range, another ETag or size: a full read instead", async () => {
    expect((await readRange(backend(() => "changed"), "k", want, 16, 1000)).kind).toBe("fallback");
    const whole = { info: { key: "k", size: 100, etag: '"e1"', meta: {} }, body: source(data, 10).stream };
    expect(await readRange(backend(() => whole), "k", want, 16, 1000)).toEqual({ kind: "fallback", why: "the origin ignored Range" });
    expect(await readRange(backend((o) => ranged(o, '"e2"')), "k", want, 16, 1000)).toEqual({ kind: "fallback", why: "the origin's ETag changed" });
    expect(await readRange(backend((o) => ranged(o, '"e1"', 99)), "k", want, 16, 1000)).toEqual({ kind: "fallback", why: "the origin's size changed" });
  });
  test("an absent object", async () => {
    expect(await readRange(backend(() => null), "k", want, 16, 1000)).toEqual({ kind: "absent" });
  });
});
