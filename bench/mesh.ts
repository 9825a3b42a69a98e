// A mesh of separate `bun run node` processes for benchmarks: fresh data folders, any
// free ports, each peer bootstrapped to the first; waits until every peer sees all.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnPeer, type PeerProcess } from "../test/harness/process.ts";

/** A running benchmark mesh. */
export interface BenchMesh {
  peers: PeerProcess[];
  /** Kill every peer and delete the folders. */
  close(): void;
}

/** Start `n` peers with `extraArgs` each (`preload`: a file Bun preloads into every peer) and wait until each sees all `n` alive. */
export async function startMesh(n: number, extraArgs: string[] = [], opts: { preload?: string } = {}): Promise<BenchMesh> {
  const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-bench-"));
  const peers: PeerProcess[] = [];
  const close = () => {
    for (const p of peers) p.proc.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < n; i++) {
      const args = ["--data", path.join(root, `p${i}`), "--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0", ...extraArgs];
      // The first peer creates the mesh key; the others join with it.
      peers.push(await spawnPeer(i === 0 ? args : [...args, "--bootstrap", peers[0].p2p[0], "--mesh-key", path.join(root, "p0", "mesh.key")], { preload: opts.preload, cwd: path.join(import.meta.dir, "..") }));
    }
    const alive = async (p: PeerProcess) => ((await (await fetch(`${p.http}/cluster/status`)).json()) as { peers: { alive: number } }).peers.alive;
    for (let t = 0; t < 300 && (await Promise.all(peers.map(alive))).some((a) => a < n); t++) await Bun.sleep(100);
  } catch (err) {
    close();
    throw err;
  }
  return { peers, close };
}
