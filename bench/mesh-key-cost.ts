// What the mesh key costs a real mesh: one large object PUT through one peer and read
// back through another, on 3 `bun run node` peers with the key and on 3 peers whose
// protector is swapped for a pass-through (bench/without-mesh-key.ts), same code, same
// run. The two meshes alternate and each keeps its best round, so a noisy moment on the
// machine does not land on one side only.
// Run alone: bun bench/mesh-key-cost.ts [MiB]
import { createBucket, getLarge, putLarge } from "./load.ts";
import { startMesh } from "./mesh.ts";
import { log } from "./stats.ts";

/** MB/s of one object's PUT and GET with and without the key. */
export interface MeshKeyCost {
  mib: number;
  withKey: { putMBps: number; getMBps: number };
  withoutKey: { putMBps: number; getMBps: number };
}

const ROUNDS = 2;
const WITHOUT_KEY = new URL("./without-mesh-key.ts", import.meta.url).pathname;

/** PUT one `mib` MiB object through the first peer, GET it through the second; MB/s of each. */
async function moveOne(mib: number, withKey: boolean, round: number) {
  const mesh = await startMesh(3, [], withKey ? {} : { preload: WITHOUT_KEY });
  try {
    const [a, b] = mesh.peers.map((p) => p.http);
    const bucket = `keycost${round}`;
    await createBucket(a, bucket);
    const o = { size: mib * 1024 * 1024, count: 1, inflight: 1, prefix: "one/" };
    const put = await putLarge([a], bucket, o);
    const get = await getLarge([b], bucket, o);
    return { putMBps: put.MBps, getMBps: get.MBps };
  } finally {
    mesh.close();
  }
}

export async function measureMeshKeyCost(mib: number): Promise<MeshKeyCost> {
  const best = { withKey: { putMBps: 0, getMBps: 0 }, withoutKey: { putMBps: 0, getMBps: 0 } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const withKey of [false, true]) {
      const r = await moveOne(mib, withKey, round);
      const side = withKey ? best.withKey : best.withoutKey;
      side.putMBps = Math.max(side.putMBps, r.putMBps);
      side.getMBps = Math.max(side.getMBps, r.getMBps);
      log(`mesh key cost, round ${round + 1}, ${withKey ? "with key" : "no key"}: PUT ${r.putMBps.toFixed(0)} MB/s, GET ${r.getMBps.toFixed(0)} MB/s`);
    }
  }
  return { mib, ...best };
}

if (import.meta.main) {
  const mib = Number(process.argv[2] ?? 256);
  const r = await measureMeshKeyCost(mib);
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;
  console.log(
    `3-peer mesh, one ${mib} MiB object: PUT ${r.withKey.putMBps.toFixed(0)} MB/s with the key vs ${r.withoutKey.putMBps.toFixed(0)} without (${pct(r.withKey.putMBps, r.withoutKey.putMBps)}); ` +
      `GET ${r.withKey.getMBps.toFixed(0)} vs ${r.withoutKey.getMBps.toFixed(0)} (${pct(r.withKey.getMBps, r.withoutKey.getMBps)})`,
  );
  process.exit(0);
}
