import { describe, expect, test } from "bun:test";
import type { Stream } from "@libp2p/interface";
import { Uint8ArrayList } from "uint8arraylist";
import { encodeMessage, MessageReader } from "../../src/net/frames.ts";
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
});
