import { describe, expect, test } from "bun:test";
import type { Stream } from "@libp2p/interface";
import { Uint8ArrayList } from "uint8arraylist";
import { ByteBudget, encodeMessage, MessageReader, MessageTooLargeError, StreamStalledError } from "../../src/net/frames.ts";
import { mulberry32 } from "../harness/random.ts";

/** A stand-in stream that yields `bytes` cut at random places (sometimes as Uint8ArrayLists). */
function streamOf(bytes: Uint8Array, random: () => number): Stream {
  async function* pieces() {
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(bytes.length - off, 1 + Math.floor(random() * 70_000));
      const piece = bytes.slice(off, off + n);
      yield random() < 0.3 ? new Uint8ArrayList(piece.subarray(0, n >> 1), piece.subarray(n >> 1)) : piece;
      off += n;
    }
  }
  return { [Symbol.asyncIterator]: pieces } as unknown as Stream;
}

describe("rpc framing", () => {
  test("messages read back one by one whatever the piece boundaries; bytes beyond a message are kept", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = mulberry32(seed);
      const sent = Array.from({ length: 12 }, (_, i) => {
        const size = [0, 1, 100, 65_536, 300_001][Math.floor(random() * 5)];
        const body = size ? new Uint8Array(size).map((_, j) => (j * 31 + i) & 255) : undefined;
        return { header: { i, m: "x".repeat(Math.floor(random() * 300)) }, body };
      });
      const wire = Buffer.concat(sent.flatMap((m) => encodeMessage(m.header, m.body)));
      const reader = new MessageReader(streamOf(wire, random));
      for (const m of sent) {
        const got = await reader.next<{ i: number; m: string }>();
        expect(got?.header).toEqual(m.header);
        expect(got?.body ? Buffer.from(got.body).equals(Buffer.from(m.body!)) : m.body === undefined).toBe(true);
      }
      expect(await reader.next()).toBeNull();
    }
  });

  test("a stream cut inside a message is an error, not a short message", async () => {
    const wire = Buffer.concat(encodeMessage({ a: 1 }, new Uint8Array(1000)));
    for (const cut of [2, 6, 20, wire.length - 1]) {
      const reader = new MessageReader(streamOf(wire.subarray(0, cut), mulberry32(cut)));
      await expect(reader.next()).rejects.toThrow(/ended inside a message/);
    }
  });

  test("a declared body over the limit is refused before the body arrives; a stalled message and an idle stream time out", async () => {
    const prefix = (bodyLen: number) => {
      const [p] = encodeMessage({ m: "x" });
      const out = Buffer.from(p);
      out.writeUInt32BE(bodyLen, out.length - 4);
      return out;
    };
    // The stream yields only the prefix and then never ends: refusal cannot wait for the body.
    const hanging = (bytes: Uint8Array): Stream =>
      ({
        async *[Symbol.asyncIterator]() {
          if (bytes.length) yield bytes;
          await new Promise(() => {});
        },
      }) as unknown as Stream;
    await expect(new MessageReader(hanging(prefix(2 ** 30)), { maxBody: () => 1024 }).next()).rejects.toBeInstanceOf(MessageTooLargeError);
    await expect(new MessageReader(hanging(prefix(4096)), { maxBody: () => 1024 }).next()).rejects.toBeInstanceOf(MessageTooLargeError);
    const started = performance.now();
    await expect(new MessageReader(hanging(prefix(100)), { stallMs: 50 }).next()).rejects.toBeInstanceOf(StreamStalledError);
    await expect(new MessageReader(hanging(new Uint8Array(0)), { idleMs: 50 }).next()).rejects.toBeInstanceOf(StreamStalledError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("large headers read back with and without a budget; the budget holds a body until the next message", async () => {
    const header = { m: "x", rows: "r".repeat(200_000) };
    const wire = Buffer.concat([...encodeMessage(header, new Uint8Array(5000)), ...encodeMessage(header)]);
    expect((await new MessageReader(streamOf(wire, mulberry32(1))).next<typeof header>())?.header).toEqual(header);
    const budget = new ByteBudget(1024 * 1024);
    const reader = new MessageReader(streamOf(wire, mulberry32(2)), { budget, stallMs: 1000 });
    expect((await reader.next<typeof header>())?.body?.byteLength).toBe(5000);
    expect(budget.inUse).toBe(5000);
    expect((await reader.next<typeof header>())?.header).toEqual(header);
    expect(budget.inUse).toBe(0);
    expect(await reader.next()).toBeNull();
  });

  test("the byte budget grants in order, waits while spent, gives up after the timeout, and refuses what can never fit", async () => {
    const budget = new ByteBudget(100);
    await budget.take(60, 1000);
    const order: string[] = [];
    const big = budget.take(50, 1000).then(() => order.push("big"));
    const small = budget.take(10, 1000).then(() => order.push("small"));
    await Bun.sleep(10);
    expect(order).toEqual([]); // the small one waits behind the big one, though it would fit
    budget.give(60);
    await Promise.all([big, small]);
    expect(order).toEqual(["big", "small"]);
    expect(budget.inUse).toBe(60);
    await expect(budget.take(50, 30)).rejects.toBeInstanceOf(StreamStalledError);
    await expect(budget.take(101, 30)).rejects.toBeInstanceOf(MessageTooLargeError);
    budget.give(60);
    expect(budget.inUse).toBe(0);
  });
});
