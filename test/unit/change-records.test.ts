// The event log's pure parts: the admission gate's promise (no event at or below a mark
// given is ever admitted, and a mark never passes a write still on its way to disk), the
// S3 records and the filters.
import { describe, expect, test } from "bun:test";
import { createLogGate, positionAt } from "../../src/changes/gate.ts";
import { checkFilter, matches, recordKey, sequencerOf, toS3Record, type LoggedEvent } from "../../src/changes/records.ts";
import { mulberry32 } from "../harness/random.ts";

const idAt = (ms: number, counter = 0, node = "12D3KooWPeer") => `${String(ms).padStart(13, "0")}-${counter.toString(16).padStart(6, "0")}-${node}`;

describe("the log gate", () => {
  test("a mark trails the clock by the settle time and only grows; an event at or below it is refused as EventLate", () => {
    let now = 1_000_000;
    const gate = createLogGate(3000, () => now);
    expect(gate.mark()).toBe(positionAt(997_000));
    expect(() => gate.admit(idAt(996_999))).toThrow(expect.objectContaining({ code: "EventLate", status: 503 }));
    gate.admit(idAt(997_000))();
    now = 990_000; // the clock stepped back: marks do not
    expect(gate.mark()).toBe(positionAt(997_000));
    now = 1_005_000;
    expect(gate.mark()).toBe(positionAt(1_002_000));
    expect(() => gate.admit(idAt(1_001_999, 5))).toThrow(expect.objectContaining({ code: "EventLate" }));
  });

  test("a write admitted but not yet on disk holds the mark below its id until released", () => {
    let now = 1_000_000;
    const gate = createLogGate(1000, () => now);
    const release = gate.admit(idAt(999_500, 3));
    now = 1_010_000;
    expect(gate.mark()).toBe(positionAt(999_500));
    expect(gate.mark() < idAt(999_500, 0)).toBe(true);
    release();
    release(); // twice is harmless
    expect(gate.mark()).toBe(positionAt(1_009_000));
  });

  test("seeded random interleavings: every admitted id is above every mark given before it was admitted, and above every mark given while it was in flight", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = mulberry32(seed);
      let now = 5_000_000;
      const gate = createLogGate(500, () => now);
      const inFlight: Array<{ id: string; release: () => void }> = [];
      let highestMark = "";
      for (let step = 0; step < 500; step++) {
        now += Math.floor(random() * 50);
        const r = random();
        if (r < 0.4) {
          // A coordinator's stamp, up to a second old by the time it arrives.
          const id = idAt(now - Math.floor(random() * 1000), Math.floor(random() * 10));
          try {
            const release = gate.admit(id);
            expect(id > highestMark).toBe(true);
            inFlight.push({ id, release });
          } catch {
            expect(id <= highestMark || id <= positionAt(now - 500)).toBe(true);
          }
        } else if (r < 0.7 && inFlight.length) {
          inFlight.splice(Math.floor(random() * inFlight.length), 1)[0].release();
        } else {
          const mark = gate.mark();
          for (const w of inFlight) expect(w.id > mark).toBe(true);
          if (mark > highestMark) highestMark = mark;
        }
      }
    }
  });
});

describe("records and filters", () => {
  const put: LoggedEvent = { name: "ObjectCreated:Put", key: "photos/a b+é.jpg", size: 5, etag: "abc", actor: "MKWRITER" };

  test("an S3 record: URL-encoded key with + for spaces, size, eTag, a sequencer that orders a key's events, the actor", () => {
    const id = idAt(1_733_500_000_123, 0x2a);
    const r = toS3Record({ id, bucket: "photos", event: put });
    expect(r.eventSource).toBe("meshstore:s3");
    expect(r.eventName).toBe("ObjectCreated:Put");
    expect(r.eventTime).toBe("2024-12-06T15:46:40.123Z");
    expect(r.userIdentity.principalId).toBe("MKWRITER");
    expect(r.s3.bucket.name).toBe("photos");
    expect(r.s3.object).toEqual({ key: "photos%2Fa+b%2B%C3%A9.jpg", size: 5, eTag: "abc", sequencer: sequencerOf(id) });
    expect(decodeURIComponent(recordKey(put.key!).replace(/\+/g, " "))).toBe(put.key!);
    expect(sequencerOf(idAt(1_733_500_000_123, 0x2b)) > sequencerOf(id)).toBe(true);
    expect(sequencerOf(idAt(1_733_500_000_124, 0)) > sequencerOf(idAt(1_733_500_000_123, 0xffffff))).toBe(true);
    const removed = toS3Record({ id, bucket: "photos", event: { name: "ObjectRemoved:Delete", key: "k" } });
    expect(removed.s3.object).toEqual({ key: "k", sequencer: sequencerOf(id) });
    expect(removed.userIdentity.principalId).toBe("anonymous");
  });

  test("types by name, by family (with or without s3:) and *; prefix and suffix on the key", () => {
    expect(matches(checkFilter({ types: ["s3:ObjectCreated:*"] }), put)).toBe(true);
    expect(matches(checkFilter({ types: ["ObjectRemoved:*"] }), put)).toBe(false);
    expect(matches(checkFilter({ types: ["ObjectCreated:Copy", "ObjectCreated:Put"] }), put)).toBe(true);
    expect(matches(checkFilter({ types: ["*"] }), { name: "BucketCreated" })).toBe(true);
    expect(matches(checkFilter({ prefix: "photos/", suffix: ".jpg" }), put)).toBe(true);
    expect(matches(checkFilter({ suffix: ".png" }), put)).toBe(false);
    expect(matches(checkFilter({ prefix: "photos/" }), { name: "BucketCreated" })).toBe(false);
    expect(checkFilter({ types: [""], prefix: "", suffix: "" })).toEqual({});
  });

  test("unknown types, too many and too long affixes are 400 InvalidArgument", () => {
    for (const bad of [{ types: ["ObjectCreated:Nope"] }, { types: ["Object*"] }, { types: Array(21).fill("BucketCreated") }, { prefix: "x".repeat(1025) }, { suffix: "é".repeat(600) }]) {
      expect(() => checkFilter(bad)).toThrow(expect.objectContaining({ code: "InvalidArgument", status: 400 }));
    }
  });
});
