// Repair rate on a mesh of separate `bun run node` processes: store a data set, kill -9
// one peer, and time how long the survivors take, without any command, to bring every
// chunk and shard back to 3 live holders. Then check every object with `locate`.
import { ADMIN_BEARER } from "../test/harness/credentials.ts";
import type { PeerProcess } from "../test/harness/process.ts";
import { keyOf, putLarge, createBucket } from "./load.ts";
import { startMesh } from "./mesh.ts";
import { mbps } from "./stats.ts";

export const DEAD_AFTER_S = 2;
export const REPAIR_DELAY_S = 3;

interface Status {
  peers: { alive: number; dead: number };
  underReplicated: { chunks: number; shards: number };
  repair: { bytesRepaired: number; queue: number };
  storage: { chunks: number; bytes: number };
}
const status = async (p: PeerProcess) => (await (await fetch(`${p.http}/cluster/status`)).json()) as Status;

export interface RepairResult {
  peers: number;
  storedBytes: number;
  uploadMBps: number;
  lostBytes: number;
  repairedBytes: number;
  /** From the first repaired byte to zero under-replicated. */
  repairSecs: number;
  MBps: number;
  killToZeroSecs: number;
  /** Chunks not on 3 live ring-owner holders afterwards (0 is right). */
  badChunks: number;
}

export async function measureRepair(o: { peers: number; mib: number; objectMib: number; log?: (s: string) => void }): Promise<RepairResult> {
  const log = o.log ?? console.log;
  const objectBytes = o.objectMib * 1024 * 1024;
  const count = Math.ceil((o.mib * 1024 * 1024) / objectBytes);
  const mesh = await startMesh(o.peers, ["--dead-after", String(DEAD_AFTER_S), "--repair-delay", String(REPAIR_DELAY_S)]);
  const procs = mesh.peers;
  try {
    await createBucket(procs[0].http, "repair");
    const up = await putLarge(
      procs.map((p) => p.http),
      "repair",
      { count, size: objectBytes, inflight: 4, prefix: "o" },
    );
    log(`repair: stored ${count} objects, ${up.bytes / 2 ** 20} MiB, in ${up.secs.toFixed(1)} s (${up.MBps.toFixed(0)} MB/s through the API, RF=3)`);
    const settled = async (ps: PeerProcess[]) => (await Promise.all(ps.map(status))).every((s) => s.underReplicated.chunks === 0 && s.underReplicated.shards === 0 && s.repair.queue === 0);
    while (!(await settled(procs))) await Bun.sleep(500);

    const victim = procs[o.peers - 1];
    const survivors = procs.slice(0, o.peers - 1);
    // storage stats are refreshed in the background at most once a second: ask twice.
    await status(victim);
    await Bun.sleep(1100);
    const lost = (await status(victim)).storage.bytes;
    const repairedNow = async () => (await Promise.all(survivors.map(status))).reduce((n, s) => n + s.repair.bytesRepaired, 0);
    const before = await repairedNow();
    victim.proc.kill("SIGKILL");
    const killedAt = performance.now();
    // Copying starts once the peer is declared dead and the repair delay has passed.
    while ((await repairedNow()) === before) {
      if (performance.now() - killedAt > 120_000) throw new Error("repair never started");
      await Bun.sleep(100);
    }
    const repairSeenAt = performance.now();
    while (!(await settled(survivors))) {
      if (performance.now() - killedAt > 600_000) throw new Error("repair did not finish in 10 min");
      await Bun.sleep(200);
    }
    const doneAt = performance.now();
    const repaired = (await repairedNow()) - before;
    const repairSecs = (doneAt - repairSeenAt) / 1000;
    const killToZeroSecs = (doneAt - killedAt) / 1000;
    log(`repair: killed a peer holding ${(lost / 2 ** 20).toFixed(0)} MiB; dead after ${DEAD_AFTER_S} s, repair delay ${REPAIR_DELAY_S} s`);
    log(`repair: ${(repaired / 2 ** 20).toFixed(0)} MiB in ${repairSecs.toFixed(1)} s from the first repaired byte: ${mbps(repaired, repairSecs).toFixed(0)} MB/s; ${killToZeroSecs.toFixed(1)} s from kill -9 to zero under-replicated`);
    // Every object, asked through a survivor: each chunk on 3 live holders that match the ring.
    const live = new Set(await Promise.all(survivors.map(async (p) => ((await (await fetch(`${p.http}/health`)).json()) as { peerId: string }).peerId)));
    let bad = 0;
    for (let i = 0; i < count; i++) {
      const l = (await (await fetch(`${survivors[0].http}/cluster/locate/repair/${encodeURIComponent(keyOf("o", i))}`, { headers: { authorization: ADMIN_BEARER } })).json()) as { chunks: Array<{ expected: string[]; holders: string[] }> };
      for (const ch of l.chunks) if (ch.holders.length !== 3 || !ch.holders.every((h) => live.has(h) && ch.expected.includes(h))) bad++;
    }
    log(`repair: locate: ${bad === 0 ? "every chunk of every object is on 3 live holders" : `${bad} chunks are not on 3 live holders`}`);
    return { peers: o.peers, storedBytes: up.bytes, uploadMBps: up.MBps, lostBytes: lost, repairedBytes: repaired, repairSecs, MBps: mbps(repaired, repairSecs), killToZeroSecs, badChunks: bad };
  } finally {
    mesh.close();
  }
}
