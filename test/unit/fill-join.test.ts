// A joiner's body of a pull-through fill (src/remotes/fill-join.ts) without a mesh: chunks that
// settle out of order are read in order as the leading ones are stored; the rest comes from the
// final manifest (an inline one too); a failed fill, or a manifest that is not the joined
// fill's, cuts the body; the last bytes wait for the fill to be kept; a cancelled body reads
// no further chunk.
import { describe, expect, test } from "bun:test";
import type { ObjectManifest } from "../../src/metadata/types.ts";
import { fillProgress, joinBody, progressAnswer, PROGRESS_PAGE, type FillProgress } from "../../src/remotes/fill-join.ts";

const FETCHED = 1_700_000_000_000;
const CHUNK = 1000;

/** `n` chunks of CHUNK bytes, chunk i filled with i. */
const chunkBytes = (i: number) => new Uint8Array(CHUNK).fill(i & 0xff);
const refOf = (i: number) => ({ id: `c${i}`, size: CHUNK });

/** An object service that serves chunks c<i> from memory and a manifest set by the test; counts chunk reads. */
function fakeObjects() {
  const state = { manifest: null as ObjectManifest | null, reads: 0 };
  const objects = {
    async headObject() {
      if (!state.manifest) throw Object.assign(new Error("no such key"), { code: "NoSuchKey" });
      return state.manifest;
    },
    async readObject(m: ObjectManifest, start: number, end: number) {
      const bytes =
        m.inline !== undefined
          ? Buffer.from(m.inline, "base64")
          : Buffer.concat(
              m.chunks.map((c, i) => {
                // Only the chunks the span covers are read.
                if ((i + 1) * CHUNK <= start || i * CHUNK >= end) return new Uint8Array(CHUNK);
                state.reads++;
                return chunkBytes(Number(c.id.slice(1)));
              }),
            );
      const part = new Uint8Array(bytes.subarray(start, end));
      return new ReadableStream<Uint8Array>({ start: (c) => (part.byteLength && c.enqueue(part), c.close()) });
    },
  };
  return { state, objects };
}

const manifestOf = (n: number, extra: Partial<ObjectManifest> = {}): ObjectManifest => ({
  size: n * CHUNK,
  etag: "e",
  contentType: "application/octet-stream",
  meta: {},
  lastModified: 0,
  chunkSize: CHUNK,
  chunks: Array.from({ length: n }, (_, i) => refOf(i)),
  origin: { fetchedMs: FETCHED, expiresMs: FETCHED + 1000 },
  ...extra,
});

const started = (p: FillProgress) => p.start(manifestOf(0, { size: 0 }), FETCHED);

async function readAll(s: ReadableStream<Uint8Array>): Promise<{ bytes: Uint8Array; error?: string }> {
  const parts: Uint8Array[] = [];
  try {
    for await (const p of s) parts.push(p);
  } catch (err) {
    return { bytes: Buffer.concat(parts), error: (err as Error).message };
  }
  return { bytes: Buffer.concat(parts) };
}

const expected = (n: number) => Buffer.concat(Array.from({ length: n }, (_, i) => chunkBytes(i)));

describe("fill joiners", () => {
  test("chunks settling out of order are read in order, and only once the leading ones are stored", async () => {
    const p = fillProgress();
    started(p);
    p.chunkStored(1, refOf(1), ["a"]);
    expect(progressAnswer(p, 0).chunks).toEqual([]);
    p.chunkStored(0, refOf(0), ["a"]);
    expect(progressAnswer(p, 0).chunks.map((c) => c.id)).toEqual(["c0", "c1"]);
    expect(progressAnswer(p, 1).chunks.map((c) => c.id)).toEqual(["c1"]);
    for (let i = 2; i < PROGRESS_PAGE + 10; i++) p.chunkStored(i, refOf(i), ["a"]);
    expect(progressAnswer(p, 0).chunks.length).toBe(PROGRESS_PAGE);
    expect(progressAnswer(undefined, 0)).toEqual({ found: false, done: false, chunks: [] });
  });

  test("a joiner streams what is stored as it appears, then the final manifest's rest", async () => {
    const { state, objects } = fakeObjects();
    const p = fillProgress();
    started(p);
    const n = 6;
    const body = joinBody(objects, "b", "k", n * CHUNK, FETCHED, async (from) => progressAnswer(p, from));
    const reading = readAll(body);
    // The fill stores chunks over time; the last two are only ever in the manifest (the progress is gone by then).
    for (let i = 0; i < 4; i++) {
      await Bun.sleep(15);
      p.chunkStored(i, refOf(i), ["a"]);
    }
    await Bun.sleep(30);
    state.manifest = manifestOf(n);
    p.done = true;
    const got = await reading;
    expect(got.error).toBeUndefined();
    expect(Buffer.compare(got.bytes, expected(n))).toBe(0);
    expect(state.reads).toBe(n);
  });

  test("a joiner's last bytes wait until the fill has kept the object; a filler gone by then ends the body anyway", async () => {
    const { state, objects } = fakeObjects();
    const p = fillProgress();
    started(p);
    for (let i = 0; i < 3; i++) p.chunkStored(i, refOf(i), ["a"]);
    const reader = joinBody(objects, "b", "k", 3 * CHUNK, FETCHED, async (from) => progressAnswer(p, from)).getReader();
    let got = 0;
    const reading = (async () => {
      for (;;) {
        const r = await reader.read();
        if (r.done) return got;
        got += r.value.byteLength;
      }
    })();
    await Bun.sleep(60);
    // Every chunk is stored, but no manifest yet: the body holds its last bytes back.
    expect(got).toBeLessThan(3 * CHUNK);
    state.manifest = manifestOf(3);
    p.done = true;
    expect(await reading).toBe(3 * CHUNK);

    // The filler cannot be asked any more: the bytes (checked chunks) still end the body.
    const q = fillProgress();
    started(q);
    for (let i = 0; i < 3; i++) q.chunkStored(i, refOf(i), ["a"]);
    let polls = 0;
    const gone = await readAll(joinBody(objects, "b", "k", 3 * CHUNK, FETCHED, async (from) => (++polls > 1 ? Promise.reject(new Error("peer unreachable")) : progressAnswer(q, from))));
    expect(gone.error).toBeUndefined();
    expect(gone.bytes.byteLength).toBe(3 * CHUNK);
  });

  test("a small fill kept inline is read from its manifest", async () => {
    const { state, objects } = fakeObjects();
    const bytes = new Uint8Array(300).fill(7);
    state.manifest = manifestOf(0, { size: 300, inline: Buffer.from(bytes).toString("base64") });
    const body = joinBody(objects, "b", "k", 300, FETCHED, async () => progressAnswer(undefined, 0));
    const got = await readAll(body);
    expect(Buffer.compare(got.bytes, bytes)).toBe(0);
  });

  test("a failed fill, or a kept object that is not the joined fill's, cuts the body", async () => {
    const { state, objects } = fakeObjects();
    const p = fillProgress();
    started(p);
    p.chunkStored(0, refOf(0), ["a"]);
    p.failed = "the origin sent nothing";
    const cut = await readAll(joinBody(objects, "b", "k", 4 * CHUNK, FETCHED, async (from) => progressAnswer(p, from)));
    expect(cut.bytes.byteLength).toBeLessThan(4 * CHUNK);
    expect(cut.error).toContain("failed");

    state.manifest = manifestOf(4, { origin: { fetchedMs: FETCHED + 1, expiresMs: FETCHED + 2 } });
    const other = await readAll(joinBody(objects, "b", "k", 4 * CHUNK, FETCHED, async () => progressAnswer(undefined, 0)));
    expect(other.bytes.byteLength).toBe(0);
    expect(other.error).toContain("did not keep");
  });

  test("a cancelled joiner stops polling and reads no further chunk", async () => {
    const { state, objects } = fakeObjects();
    const p = fillProgress();
    started(p);
    p.chunkStored(0, refOf(0), ["a"]);
    let polls = 0;
    const reader = joinBody(objects, "b", "k", 10 * CHUNK, FETCHED, async (from) => (polls++, progressAnswer(p, from))).getReader();
    expect((await reader.read()).value?.byteLength).toBe(CHUNK);
    await reader.cancel();
    const at = polls;
    for (let i = 1; i < 10; i++) p.chunkStored(i, refOf(i), ["a"]);
    await Bun.sleep(50);
    expect(polls).toBe(at);
    expect(state.reads).toBe(1);
  });

  test("a joiner cancelled while it waits for the next chunk stops polling", async () => {
    const { objects } = fakeObjects();
    const p = fillProgress();
    started(p);
    let polls = 0;
    const reader = joinBody(objects, "b", "k", 10 * CHUNK, FETCHED, async (from) => (polls++, progressAnswer(p, from))).getReader();
    const pending = reader.read();
    await Bun.sleep(60);
    expect(polls).toBeGreaterThan(0);
    await reader.cancel();
    await pending.catch(() => {});
    await Bun.sleep(250);
    const at = polls;
    await Bun.sleep(300);
    expect(polls).toBe(at);
  });
});
