// p2p link throughput with and without the mesh key: two libp2p nodes in this process
// (TCP on 127.0.0.1, noise, yamux) stream bytes through one stream, once with no
// protector, once with meshstore's libsodium protector and once with @libp2p/pnet's own
// (at most 16 MiB: under Bun 1.4.5 @libp2p/pnet 3.0.27 stalls on larger buffered sends).
// Run alone: bun bench/link.ts [MiB]
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { ConnectionProtector, Libp2p } from "@libp2p/interface";
import { preSharedKey } from "@libp2p/pnet";
import { createLibp2p } from "libp2p";
import { newMeshKeyText, parseMeshKey } from "../src/net/mesh-key.ts";
import { noiseCrypto } from "../src/net/noise-crypto.ts";
import { meshKeyProtector } from "../src/net/protector.ts";
import { safeTcp } from "../src/net/safe-tcp.ts";

const PROTOCOL = "/meshstore/bench-link/1.0.0";
const PIECE = 1024 * 1024;

/** MB/s of each way of protecting a link. */
export interface LinkResult {
  plainMBps: number;
  meshKeyMBps: number;
  pnetMBps: number;
  /** MiB sent through @libp2p/pnet (capped, see above). */
  pnetMib: number;
}

async function node(protector?: (components: any) => ConnectionProtector): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [safeTcp()],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    ...(protector ? { connectionProtector: protector } : {}),
  });
}

/** Send `mib` MiB from one node to another through one stream; MB/s. */
async function throughput(mib: number, protector?: () => (components: any) => ConnectionProtector): Promise<number> {
  const [a, b] = [await node(protector?.()), await node(protector?.())];
  try {
    let received = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await b.handle(PROTOCOL, async (stream) => {
      for await (const piece of stream) {
        received += piece.byteLength;
        if (received >= mib * PIECE) done();
      }
    });
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL);
    const piece = new Uint8Array(PIECE).fill(7);
    const started = performance.now();
    for (let i = 0; i < mib; i++) if (!stream.send(piece)) await stream.onDrain();
    await finished;
    const secs = (performance.now() - started) / 1000;
    await stream.close().catch(() => {});
    return (mib * PIECE) / 1e6 / secs;
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

/** Measure the three links; each figure is the better of two runs (the first warms up). */
export async function measureLink(mib: number): Promise<LinkResult> {
  const psk = new TextEncoder().encode(newMeshKeyText());
  const best = async (n: number, p?: () => (components: any) => ConnectionProtector) => Math.max(await throughput(n, p), await throughput(n, p));
  const plainMBps = await best(mib);
  const meshKeyMBps = await best(mib, () => meshKeyProtector(parseMeshKey(new TextDecoder().decode(psk), "bench")));
  const pnetMib = Math.min(mib, 16);
  const pnetMBps = await best(pnetMib, () => preSharedKey({ psk }));
  return { plainMBps, meshKeyMBps, pnetMBps, pnetMib };
}

if (import.meta.main) {
  const mib = Number(process.argv[2] ?? 256);
  const r = await measureLink(mib);
  console.log(`p2p link, ${mib} MiB through one stream: no key ${r.plainMBps.toFixed(0)} MB/s; mesh key (libsodium) ${r.meshKeyMBps.toFixed(0)} MB/s (${((100 * r.meshKeyMBps) / r.plainMBps).toFixed(0)}%); @libp2p/pnet ${r.pnetMBps.toFixed(0)} MB/s over ${r.pnetMib} MiB (${((100 * r.pnetMBps) / r.plainMBps).toFixed(0)}%)`);
}
