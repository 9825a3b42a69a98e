// Three peers in one process over real TCP on 127.0.0.1: each joins through the one
// before, then each prints its view of the mesh.  Run: bun examples/three-peers.ts
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startPeer, type Peer } from "../src/index.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-example-"));
const peers: Peer[] = [];
try {
  for (let i = 0; i < 3; i++) {
    peers.push(
      await startPeer({
        dataDir: path.join(root, `peer-${i}`),
        p2pListen: ["/ip4/127.0.0.1/tcp/0"],
        http: { host: "127.0.0.1", port: 0 },
        s3: { host: "127.0.0.1", port: 0 },
        bootstrap: i === 0 ? [] : peers[i - 1].multiaddrs(),
        // The first peer creates the mesh key in its folder; the others join with it.
        meshKeyFile: i === 0 ? undefined : path.join(root, "peer-0", "mesh.key"),
        membership: { probeIntervalMs: 250, probeTimeoutMs: 200 },
      }),
    );
  }
  // Wait until every peer sees the other two alive.
  const converged = () => peers.every((p) => p.peers().peers.filter((m) => m.state === "alive").length === 2);
  for (let t = 0; t < 100 && !converged(); t++) await Bun.sleep(100);
  for (const p of peers) {
    const view = p.peers();
    console.log(`peer ${view.self.id.slice(-8)} (${p.httpUrl}) sees:`);
    for (const m of view.peers) console.log(`  ${m.id.slice(-8)}  ${m.state.padEnd(7)}  last seen ${Date.now() - m.lastSeenMs} ms ago`);
  }
} finally {
  await Promise.all(peers.map((p) => p.stop()));
  rmSync(root, { recursive: true, force: true });
}
