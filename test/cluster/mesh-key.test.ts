// Only holders of the mesh key can connect: every p2p connection is wrapped in the
// pre-shared key before noise starts. A libp2p node without the key, or with another
// mesh's key, cannot connect, call RPC, or appear in any member's view, while a node
// using @libp2p/pnet's own protector with the right key interoperates with ours.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import type { ConnectionProtector, Libp2p } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { preSharedKey } from "@libp2p/pnet";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { readFileSync } from "node:fs";
import { createLibp2p } from "libp2p";
import { parseMeshKey, newMeshKeyText } from "../../src/net/mesh-key.ts";
import { noiseCrypto } from "../../src/net/noise-crypto.ts";
import { meshKeyProtector } from "../../src/net/protector.ts";
import { RPC_PROTOCOL } from "../../src/net/rpc.ts";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, mustCreateBucket, mustGet, mustPut, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

let c: Cluster;
beforeAll(async () => {
  c = await startConverged(3);
});
afterAll(() => teardownCluster(c));

/** A plain libp2p node on 127.0.0.1, with the given protector or none. */
async function outsider(protector?: (components: any) => ConnectionProtector): Promise<Libp2p<{ ping: unknown; identify: unknown }>> {
  const node = await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    ...(protector ? { connectionProtector: protector } : {}),
    services: { ping: ping(), identify: identify() },
  });
  return node as unknown as Libp2p<{ ping: unknown; identify: unknown }>;
}

test("nodes without the key, or with another key, cannot connect or call anything; a @libp2p/pnet node with the key can", async () => {
  const target = multiaddr(c.peer(0).multiaddrs()[0]);
  const strangers = [await outsider(), await outsider(meshKeyProtector(parseMeshKey(newMeshKeyText(), "other")))];
  try {
    for (const [n, node] of strangers.entries()) {
      await expect(node.dial(target, { signal: AbortSignal.timeout(3000) }), `stranger ${n} dial`).rejects.toThrow();
      await expect(node.dialProtocol(target, RPC_PROTOCOL, { signal: AbortSignal.timeout(3000) }), `stranger ${n} rpc`).rejects.toThrow();
      expect(node.getConnections().length).toBe(0);
    }
    // Every member's view holds the three members and nobody else.
    const ids = new Set(c.peers.map((p) => p.id));
    for (const i of [0, 1, 2]) {
      const view = await c.viewOf(i);
      expect([...view.keys()].every((id) => ids.has(id))).toBe(true);
      for (const s of strangers) expect(view.has(s.peerId.toString())).toBe(false);
    }
  } finally {
    await Promise.all(strangers.map((s) => s.stop()));
  }

  // Interop: @libp2p/pnet (wasm/JS XSalsa20) on one side, our libsodium protector on the other.
  const psk = readFileSync(c.meshKeyFile);
  const friend = await outsider(preSharedKey({ psk }));
  try {
    const rtt = await (friend.services.ping as { ping(ma: unknown, o?: unknown): Promise<number> }).ping(target, { signal: AbortSignal.timeout(5000) });
    expect(rtt).toBeGreaterThanOrEqual(0);
  } finally {
    await friend.stop();
  }

  // Meanwhile the members serve reads and writes, and show the key's fingerprint, never the key.
  await mustCreateBucket(c.peer(0).httpUrl, "keyed");
  const body = seededBytes(3 * 1024 * 1024, c.seed);
  await mustPut(c.peer(1).httpUrl, "keyed", "obj", body);
  expect(sameBytes(await mustGet(c.peer(2).httpUrl, "keyed", "obj"), body)).toBe(true);
  const status = (await clusterStatus(c.peer(0).httpUrl)) as unknown as { meshKey: { fingerprint: string } };
  expect(status.meshKey.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  const hex = psk.toString("utf8").split("\n")[2];
  expect(JSON.stringify(status)).not.toContain(hex);
}, 60_000);
