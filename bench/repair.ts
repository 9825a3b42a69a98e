// Repair rate on a mesh of separate `bun run node` processes: store a data set, kill -9
// one peer, and time how long the survivors take, without any command, to bring every
// chunk and shard back to 3 live holders.
//   bun bench/repair.ts [--peers 5] [--mib 1024] [--object-mib 16]
import { parseArgs } from "node:util";
import type { PeerProcess } from "../test/harness/process.ts";
import { startMesh } from "./mesh.ts";

const { values } = parseArgs({ options: { peers: { type: "string", default: "5" }, mib: { type: "string", default: "1024" }, "object-mib": { type: "string", default: "16" } } });
const peers = Number(values.peers);
const totalBytes = Number(values.mib) * 1024 * 1024;
const objectBytes = Number(values["object-mib"]) * 1024 * 1024;
const DEAD_AFTER_S = 2;
const REPAIR_DELAY_S = 3;

interface Status {
  peers: { alive: number; dead: number };
  underReplicated: { chunks: number; shards: number };
  repair: { bytesRepaired: number; queue: number };
  storage: { chunks: number; bytes: number };
}
const status = async (p: PeerProcess) => (await (await fetch(`${p.http}/cluster/status`)).json()) as Status;

const mesh = await startMesh(peers, ["--dead-after", String(DEAD_AFTER_S), "--repair-delay", String(REPAIR_DELAY_S)]);
const procs = mesh.peers;
try {
  await fetch(`${procs[0].http}/buckets/repair`, { method: "PUT" });

  const block = new Uint8Array(objectBytes);
  const count = Math.ceil(totalBytes / objectBytes);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) {
        const i = next++;
        crypto.getRandomValues(block.subarray(0, 65536));
        const body = block.slice();
        for (let off = 65536; off < body.length; off += 65536) body.copyWithin(off, 0, 65536);
        new DataView(body.buffer).setUint32(0, i); // distinct objects, distinct chunks
        for (let off = 4 * 1024 * 1024; off < body.length; off += 4 * 1024 * 1024) new DataView(body.buffer).setUint32(off, i * 1000 + off / 4096);
        const res = await fetch(`${procs[i % peers].http}/buckets/repair/objects/o${i}`, { method: "PUT", body });
        if (!res.ok) throw new Error(`PUT failed ${res.status}`);
      }
    }),
  );
  const upSecs = (performance.now() - t0) / 1000;
  console.log(`stored ${count} objects, ${(count * objectBytes) / 2 ** 20} MiB, in ${upSecs.toFixed(1)} s (${((count * objectBytes) / 1e6 / upSecs).toFixed(0)} MB/s through the API, RF=3)`);
  const settled = async (ps: PeerProcess[]) => (await Promise.all(ps.map(status))).every((s) => s.underReplicated.chunks === 0 && s.underReplicated.shards === 0 && s.repair.queue === 0);
  while (!(await settled(procs))) await Bun.sleep(500);

  const victim = procs[peers - 1];
  const survivors = procs.slice(0, peers - 1);
  const lost = (await status(victim)).storage.bytes;
  const before = (await Promise.all(survivors.map(status))).reduce((n, s) => n + s.repair.bytesRepaired, 0);
  victim.proc.kill("SIGKILL");
  const killedAt = performance.now();
  // Copying starts once the peer is declared dead and the repair delay has passed.
  const repairedNow = async () => (await Promise.all(survivors.map(status))).reduce((n, s) => n + s.repair.bytesRepaired, 0);
  while ((await repairedNow()) === before) {
    if (performance.now() - killedAt > 120_000) throw new Error("repair never started");
    await Bun.sleep(100);
  }
  const repairSeenAt = performance.now();
  while (!(await settled(survivors))) await Bun.sleep(200);
  const doneAt = performance.now();
  const repaired = (await Promise.all(survivors.map(status))).reduce((n, s) => n + s.repair.bytesRepaired, 0) - before;
  const repairSecs = (doneAt - repairSeenAt) / 1000;
  console.log(`killed a peer holding ${(lost / 2 ** 20).toFixed(0)} MiB; dead after ${DEAD_AFTER_S} s, repair delay ${REPAIR_DELAY_S} s`);
  console.log(`repaired ${(repaired / 2 ** 20).toFixed(0)} MiB in ${repairSecs.toFixed(1)} s from the first repaired byte: ${(repaired / 1e6 / repairSecs).toFixed(0)} MB/s; ${((doneAt - killedAt) / 1000).toFixed(1)} s from kill -9 to zero under-replicated`);
  // Every object, asked through a survivor: each chunk on 3 live holders that match the ring.
  const live = new Set(await Promise.all(survivors.map(async (p) => ((await (await fetch(`${p.http}/health`)).json()) as { peerId: string }).peerId)));
  let bad = 0;
  for (let i = 0; i < count; i++) {
    const l = (await (await fetch(`${survivors[0].http}/cluster/locate/repair/o${i}`)).json()) as { chunks: Array<{ expected: string[]; holders: string[] }> };
    for (const ch of l.chunks) if (ch.holders.length !== 3 || !ch.holders.every((h) => live.has(h) && ch.expected.includes(h))) bad++;
  }
  console.log(`locate: ${bad === 0 ? "every chunk of every object is on 3 live holders" : `${bad} chunks are not on 3 live holders`}`);
  if (bad) process.exitCode = 1;
} finally {
  mesh.close();
}
process.exit(process.exitCode ?? 0);
