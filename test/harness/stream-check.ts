// Sends 8 MiB through one noise+yamux stream between two in-process peers and checks
// every byte. Run directly (`bun test/harness/stream-check.ts`) it prints the result as
// JSON, so a test can run it in a child process with another MESH_NOISE_CRYPTO.
import { Uint8ArrayList } from "uint8arraylist";
import { withCluster } from "./cluster.ts";
import { seededBytes } from "./random.ts";

const PROTOCOL = "/meshstore-test/sink/1.0.0";
const SIZE = 8 * 1024 * 1024 + 123;

/** Send 8 MiB + 123 bytes from peer 0 to peer 1 over one stream. */
export async function sendThroughOneStream(): Promise<{ ok: boolean; crypto: string; mbps: number }> {
  return withCluster(2, { topology: "chain" }, async (c) => {
    const a = c.peer(0);
    const b = c.peer(1);
    const received = new Uint8ArrayList();
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await b.testHooks.handle(PROTOCOL, async (stream) => {
      for await (const piece of stream) received.append(piece);
      await stream.close();
      done();
    });
    const payload = seededBytes(SIZE, 42);
    const start = performance.now();
    const stream = await a.testHooks.dial(b.multiaddrs()[0], PROTOCOL);
    for (let off = 0; off < payload.byteLength; off += 64 * 1024) {
      if (!stream.send(payload.subarray(off, off + 64 * 1024))) await stream.onDrain();
    }
    await stream.close();
    await finished;
    const secs = (performance.now() - start) / 1000;
    const ok = received.byteLength === SIZE && Buffer.from(received.subarray()).equals(Buffer.from(payload));
    return { ok, crypto: String(a.status().noiseCrypto), mbps: SIZE / 1e6 / secs };
  });
}

if (import.meta.main) {
  console.log(JSON.stringify(await sendThroughOneStream()));
  process.exit(0);
}
