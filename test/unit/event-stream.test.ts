// The live stream loop (src/changes/stream.ts) and its SSE format against a fake change log:
// the next page is read only once the client took the last, the cursor moves with what
// was written, reads that keep failing end the stream, the cap, the client going away and
// the peer stopping all end streams and free their places.
import { describe, expect, test } from "bun:test";
import { sseFormat } from "../../src/api/event-stream.ts";
import type { ChangeEvent } from "../../src/changes/records.ts";
import { createEventStreams, type EventStreamsDeps } from "../../src/changes/stream.ts";
import { MeshError } from "../../src/errors.ts";

const id = (n: number) => `1700000000${String(n).padStart(3, "0")}-${n.toString(16).padStart(6, "0")}-p`;
const event = (n: number): ChangeEvent => ({ id: id(n), bucket: "b", event: { name: "ObjectCreated:Put", key: `k${n}`, size: 1, etag: "e" } });

/** A log of `total` events served in pages; counts reads and the cursors asked from. */
function fakeLog(total: number) {
  const asked: string[] = [];
  const changes: EventStreamsDeps["changes"] = {
    async read(_bucket, { cursor, limit }) {
      asked.push(cursor);
      const events = Array.from({ length: total }, (_, i) => event(i + 1)).filter((e) => e.id > cursor).slice(0, limit);
      return { events, cursor: events.length ? events[events.length - 1].id : cursor };
    },
  };
  return { changes, asked };
}

const decoder = new TextDecoder();

describe("event streams", () => {
  test("pages are read only as the client takes them; the SSE ids follow the log and resume nothing twice", async () => {
    const log = fakeLog(450);
    const streams = createEventStreams({ changes: log.changes, maxStreams: 4, pollMs: 50 });
    const aborter = new AbortController();
    const res = streams.open({ request: new Request("http://h/", { signal: aborter.signal }), bucket: "b", cursor: "", filter: {}, format: sseFormat(60_000) });
    const reader = res.body!.getReader();
    expect(decoder.decode((await reader.read()).value)).toBe("retry: 2000\nid: \n\n");
    await Bun.sleep(50);
    // One page read ahead at most while the client reads nothing.
    expect(log.asked.length).toBeLessThanOrEqual(1);
    const first = decoder.decode((await reader.read()).value);
    const ids = [...first.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
    expect(ids.length).toBe(200);
    expect(ids[0]).toBe(id(1));
    expect(first).toContain("event: ObjectCreated:Put\ndata: {");
    await reader.read();
    expect(log.asked).toEqual(["", id(200)]);
    aborter.abort();
    await Bun.sleep(10);
    expect(streams.status()).toMatchObject({ open: 0, opened: 1 });
  });

  test("reads that keep failing end the stream with a comment; the place is freed", async () => {
    // Real time, plus 10 s more at each read: failures add up to 30 s after a few reads.
    let skew = 0;
    const streams = createEventStreams({
      changes: {
        read: async () => {
          skew += 10_000;
          throw new MeshError("ServiceUnavailable", "no quorum");
        },
      },
      maxStreams: 1,
      pollMs: 50,
      clock: () => Date.now() + skew,
    });
    const res = streams.open({ request: new Request("http://h/"), bucket: "b", cursor: "", filter: {}, format: sseFormat(3600_000) });
    const text = await res.text();
    expect(text).toContain(": error: no quorum; reconnect with Last-Event-ID");
    expect(streams.status().open).toBe(0);
  });

  test("the cap refuses with 503 TooManyStreams and Retry-After; close ends every stream and refuses new ones", async () => {
    const streams = createEventStreams({ changes: fakeLog(0).changes, maxStreams: 2, pollMs: 50 });
    const open = () => streams.open({ request: new Request("http://h/"), bucket: "b", cursor: "", filter: {}, format: sseFormat(60_000) });
    const a = open();
    const b = open();
    let refused: unknown;
    try {
      open();
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(MeshError);
    expect((refused as MeshError).code).toBe("TooManyStreams");
    expect((refused as MeshError).headers["retry-after"]).toBe("5");
    expect(streams.status()).toEqual({ open: 2, max: 2, opened: 2, refused: 1 });
    streams.close();
    // Both bodies end (cleanly) once what was written is read.
    expect(await a.text()).toStartWith("retry:");
    expect(await b.text()).toStartWith("retry:");
    expect(streams.status().open).toBe(0);
    expect(() => open()).toThrow("stopping");
  });

  test("a ping names the position read up to once it passed the last id sent", () => {
    const f = sseFormat(1000);
    expect(f.opening("")).toBe("retry: 2000\nid: \n\n");
    expect(f.ping("")).toBe(": ping\n\n");
    expect(f.events([event(1)], id(1))).toStartWith(`id: ${id(1)}\nevent: ObjectCreated:Put\ndata: `);
    expect(f.ping(id(1))).toBe(": ping\n\n");
    expect(f.ping("1700000009999-000000")).toBe(": ping\nid: 1700000009999-000000\n\n");
    expect(f.ping("1700000009999-000000")).toBe(": ping\n\n");
  });
});
