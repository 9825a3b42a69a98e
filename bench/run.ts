// `bun run bench [--quick] [--peers N]`: measures this machine's limits (disk, SHA-256,
// chacha20-poly1305, a minimal single-process HTTP server as the software ceiling), then
// a mesh of separate `bun run node` peers driven over HTTP from this process, and prints
// one table of figure / machine limit / ratio / target (search figures: beside the same
// mesh without an index, bench/search.ts). Writes bench/results.json and
// bench/scaling.svg.
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startCeiling } from "./ceiling-server.ts";
import { measureLimits } from "./limits.ts";
import { measureLink } from "./link.ts";
import { measureList, type ListPoint } from "./list-latency.ts";
import { measureMeshKeyCost } from "./mesh-key-cost.ts";
import { createBucket, getLarge, getSmall, putLarge, putSmall, type OpsResult } from "./load.ts";
import type { PeerProcess } from "../test/harness/process.ts";
import { startMesh } from "./mesh.ts";
import { measureRepair } from "./repair-rate.ts";
import { describeScan, measureRepairScan } from "./repair-scan.ts";
import { sampleRss } from "./rss.ts";
import { measureSearch, searchRows } from "./search.ts";
import { judge, log, type Row } from "./stats.ts";
import { renderScaling } from "./svg.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, peers: { type: "string", default: "3" } } });
const quick = values.quick!;
const PEERS = Number(values.peers);
const RF = 3;
const MiB = 1024 * 1024;
const cfg = quick
  ? { diskMib: 1024, large: { size: 64 * MiB, count: 4, inflight: 4 }, small: 2_000, listSizes: [1_000, 10_000], repairMib: 256, scalingPeers: [3], searchObjects: 10_000 }
  : { diskMib: 1024, large: { size: 256 * MiB, count: 4, inflight: 4 }, small: 20_000, listSizes: [1_000, 10_000, 30_000, 100_000], repairMib: 1024, scalingPeers: [3, 5, 8], searchObjects: 100_000 };
const SMALL = { size: 4096, inflight: 64 };
const startedAt = performance.now();

// ---- machine limits -------------------------------------------------------------------
log(`machine limits: disk ${cfg.diskMib} MiB, SHA-256, chacha20-poly1305`);
const limits = measureLimits({ diskMib: cfg.diskMib });
log(`disk write+fsync ${limits.disk.writeMBps.toFixed(0)} MB/s, read ${limits.disk.readMBps.toFixed(0)} MB/s, sha256 ${limits.sha256MBps.toFixed(0)} MB/s, chacha20-poly1305 ${limits.chachaMBps.toFixed(0)} MB/s`);

const linkMib = quick ? 64 : 256;
log(`p2p link with and without the mesh key: ${linkMib} MiB through one stream, both ends in this process`);
const link = await measureLink(linkMib);
log(`link: no key ${link.plainMBps.toFixed(0)} MB/s, mesh key ${link.meshKeyMBps.toFixed(0)} MB/s, @libp2p/pnet ${link.pnetMBps.toFixed(0)} MB/s (${link.pnetMib} MiB)`);

log(`mesh key cost: one ${linkMib} MiB object PUT and GET on 3 peers with the key and on 3 with a pass-through protector`);
const keyCost = await measureMeshKeyCost(linkMib);

log("software ceiling: single-process Bun HTTP server, one file per object, fsync");
const ceilingServer = await startCeiling();
let ceiling;
try {
  const t = [ceilingServer.url];
  const largePut = await putLarge(t, "c", cfg.large);
  const largeGet = await getLarge(t, "c", cfg.large);
  const smallPut = await putSmall(t, "c", { to: cfg.small, ...SMALL });
  const smallGet = await getSmall(t, "c", { to: cfg.small, ...SMALL });
  ceiling = { largePut, largeGet, smallPut, smallGet };
  log(`ceiling: large PUT ${largePut.MBps.toFixed(0)} MB/s, GET ${largeGet.MBps.toFixed(0)} MB/s; small PUT ${smallPut.opsPerSec.toFixed(0)}/s, GET ${smallGet.opsPerSec.toFixed(0)}/s`);
} finally {
  ceilingServer.close();
}

// ---- the mesh -------------------------------------------------------------------------
/** Membership messages each peer sends per second, averaged over the peers, over `secs` idle seconds. */
async function heartbeatRate(peers: PeerProcess[], secs: number): Promise<number> {
  const sent = () => Promise.all(peers.map(async (p) => ((await (await fetch(`${p.http}/cluster/status`)).json()) as { membership: { messagesSent: number } }).membership.messagesSent));
  const before = await sent();
  await Bun.sleep(secs * 1000);
  const after = await sent();
  return after.reduce((n, a, i) => n + a - before[i], 0) / peers.length / secs;
}

const smallPutOn = async (targets: string[]): Promise<OpsResult> => {
  await createBucket(targets[0], "small");
  return putSmall(targets, "small", { to: cfg.small, ...SMALL });
};

log(`mesh: starting ${PEERS} peers (RF=${RF})`);
let mesh = await startMesh(PEERS);
let meshFigures;
try {
  const all = mesh.peers.map((p) => p.http);
  const one = [all[0]];
  await createBucket(all[0], "large");
  const rss = sampleRss(all);
  const largePutOne = await putLarge(one, "large", { ...cfg.large, prefix: "one/" });
  log(`mesh: large PUT through one peer ${largePutOne.MBps.toFixed(0)} MB/s`);
  const largePutSpread = await putLarge(all, "large", { ...cfg.large, prefix: "spread/" });
  log(`mesh: large PUT spread ${largePutSpread.MBps.toFixed(0)} MB/s`);
  const largeGetOne = await getLarge(one, "large", { ...cfg.large, prefix: "one/" });
  log(`mesh: large GET through one peer ${largeGetOne.MBps.toFixed(0)} MB/s`);
  const largeGetSpread = await getLarge(all, "large", { ...cfg.large, prefix: "spread/" });
  log(`mesh: large GET spread ${largeGetSpread.MBps.toFixed(0)} MB/s`);
  const rssResult = await rss.stop();
  log(`mesh: max peer RSS ${(rssResult.max / 1e6).toFixed(0)} MB (${rssResult.samples} samples)`);
  const smallPut = await smallPutOn(all);
  log(`mesh: small PUT ${smallPut.opsPerSec.toFixed(0)}/s p50 ${smallPut.p50ms.toFixed(1)} p99 ${smallPut.p99ms.toFixed(1)} ms`);
  const smallGet = await getSmall(all, "small", { to: cfg.small, ...SMALL });
  log(`mesh: small GET ${smallGet.opsPerSec.toFixed(0)}/s p50 ${smallGet.p50ms.toFixed(1)} p99 ${smallGet.p99ms.toFixed(1)} ms`);
  // Conditional PUTs (issue 17): If-None-Match: * on new keys, each decided by a consensus round among the key's replicas.
  const conditionalPut = await putSmall(all, "small", { to: cfg.small, ...SMALL, prefix: "if-none-match/", headers: { "if-none-match": "*" } });
  log(`mesh: conditional small PUT ${conditionalPut.opsPerSec.toFixed(0)}/s p50 ${conditionalPut.p50ms.toFixed(1)} p99 ${conditionalPut.p99ms.toFixed(1)} ms`);
  const list = await measureList(all, cfg.listSizes);
  meshFigures = { largePutOne, largePutSpread, largeGetOne, largeGetSpread, rss: rssResult, smallPut, smallGet, conditionalPut, list };
} finally {
  mesh.close();
}

log(`search: a fresh mesh of ${PEERS} peers, ${cfg.searchObjects} objects with five indexed fields and as many in a bucket without a schema`);
mesh = await startMesh(PEERS);
let search;
try {
  search = await measureSearch(mesh.peers.map((p) => p.http), cfg.searchObjects);
} finally {
  mesh.close();
}

log(`repair: 5 peers, ${cfg.repairMib} MiB, --dead-after 2 --repair-delay 3`);
const repair = await measureRepair({ peers: 5, mib: cfg.repairMib, objectMib: 16, log });

log("repair scan: one peer, 100,000 and 1,000,000 synthetic chunk ids (ids only, no data)");
const repairScan = await measureRepairScan();
for (const s of repairScan.sizes) log(describeScan(s));

const scalingPut: Array<{ peers: number } & OpsResult> = [{ peers: PEERS, ...meshFigures.smallPut }];
const heartbeat: Array<{ peers: number; perPeerPerSec: number }> = [];
for (const n of cfg.scalingPeers) {
  log(`scaling: ${n} peers: heartbeat messages while idle${n === PEERS ? "" : ", then small PUT"}`);
  mesh = await startMesh(n);
  try {
    const beats = await heartbeatRate(mesh.peers, 5);
    log(`scaling: ${n} peers: ${beats.toFixed(2)} membership messages per peer per second`);
    heartbeat.push({ peers: n, perPeerPerSec: beats });
    if (n === PEERS) continue;
    const r = await smallPutOn(mesh.peers.map((p) => p.http));
    log(`scaling: ${n} peers: ${r.opsPerSec.toFixed(0)} PUT/s`);
    scalingPut.push({ peers: n, ...r });
  } finally {
    mesh.close();
  }
}
scalingPut.sort((a, b) => a.peers - b.peers);
const durationSecs = (performance.now() - startedAt) / 1000;

// ---- the table ------------------------------------------------------------------------
const rows: Row[] = [];
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;
const f0 = (n: number) => n.toLocaleString("en", { maximumFractionDigits: 0 });
const f1 = (n: number) => n.toFixed(1);
const m = meshFigures;
const diskPerRf = limits.disk.writeMBps / RF;
const largeLabel = `${cfg.large.count}×${cfg.large.size / MiB} MiB, ${cfg.large.inflight} in flight`;
for (const [name, r] of [["one peer", m.largePutOne], ["spread", m.largePutSpread]] as const) {
  rows.push({
    figure: `large PUT MB/s, ${name} (${largeLabel})`,
    value: f0(r.MBps),
    limit: `ceiling upload ${f0(ceiling.largePut.MBps)}; disk write/RF ${f0(diskPerRf)}`,
    ratio: `${pct(r.MBps, ceiling.largePut.MBps)}; ${pct(r.MBps, diskPerRf)}`,
    target: judge([
      [(100 * r.MBps) / ceiling.largePut.MBps, { op: ">=", value: 20, unit: "% of ceiling" }],
      [(100 * r.MBps) / diskPerRf, { op: ">=", value: 50, unit: "% of disk/RF" }],
    ]),
  });
}
for (const [name, r] of [["one peer", m.largeGetOne], ["spread", m.largeGetSpread]] as const) {
  rows.push({
    figure: `large GET MB/s, ${name}`,
    value: f0(r.MBps),
    limit: `ceiling download ${f0(ceiling.largeGet.MBps)}; disk read ${f0(limits.disk.readMBps)}`,
    ratio: `${pct(r.MBps, ceiling.largeGet.MBps)}; ${pct(r.MBps, limits.disk.readMBps)}`,
    target: judge([[(100 * r.MBps) / ceiling.largeGet.MBps, { op: ">=", value: 30, unit: "% of ceiling" }]]),
  });
}
for (const [name, r, c, want] of [
  ["PUT", m.smallPut, ceiling.smallPut, 2000],
  ["GET", m.smallGet, ceiling.smallGet, 8000],
] as const) {
  rows.push({
    // Every PUT writes its change event in its manifest's batch (issue 16; `bun bench/small-put-mesh.ts` measures this figure alone).
    figure: `small ${name} ops/s (p50 / p99 ms), ${f0(cfg.small)}×4 KiB, 64 in flight${name === "PUT" ? ", events on" : ""}`,
    value: `${f0(r.opsPerSec)} (${f1(r.p50ms)} / ${f1(r.p99ms)})`,
    limit: `ceiling ${f0(c.opsPerSec)}/s (${f1(c.p50ms)} / ${f1(c.p99ms)})`,
    ratio: pct(r.opsPerSec, c.opsPerSec),
    target: judge([
      [r.opsPerSec, { op: ">=", value: want, unit: "/s" }],
      [r.p99ms, { op: "<", value: 50, unit: " ms p99" }],
    ]),
  });
}
rows.push({
  figure: `conditional small PUT ops/s (p50 / p99 ms), If-None-Match: * on new keys, ${f0(cfg.small)}×4 KiB, 64 in flight`,
  value: `${f0(m.conditionalPut.opsPerSec)} (${f1(m.conditionalPut.p50ms)} / ${f1(m.conditionalPut.p99ms)})`,
  limit: `unconditional small PUT ${f0(m.smallPut.opsPerSec)}/s in the same run`,
  ratio: pct(m.conditionalPut.opsPerSec, m.smallPut.opsPerSec),
  target: judge([[(100 * m.conditionalPut.opsPerSec) / m.smallPut.opsPerSec, { op: ">=", value: 50, unit: "% of unconditional" }]]),
});
for (const p of m.list.filter((p: ListPoint) => p.objects >= 10_000)) {
  rows.push({
    figure: `list 1,000-key page p50 ms (max), bucket of ${f0(p.objects)}`,
    value: `${f1(p.p50ms)} (${f1(p.maxms)})`,
    limit: "—",
    ratio: "—",
    target: `${judge([[p.p50ms, { op: "<", value: 25, unit: " ms" }]])}${p.objects >= 100_000 ? "" : " (target is for 100k)"}`,
  });
}
rows.push(...searchRows(search));
rows.push({
  figure: `repair MB/s, 5 peers, ${cfg.repairMib} MiB, 1 killed (${f1(repair.killToZeroSecs)} s kill→0 under-replicated${repair.badChunks ? `, ${repair.badChunks} BAD chunks` : ""})`,
  value: f0(repair.MBps),
  limit: `disk write ${f0(limits.disk.writeMBps)}; chacha ${f0(limits.chachaMBps)}`,
  ratio: `${pct(repair.MBps, limits.disk.writeMBps)}; ${pct(repair.MBps, limits.chachaMBps)}`,
  target: judge([[repair.MBps, { op: ">=", value: 100, unit: " MB/s" }]]),
});
{
  const [small, large] = [repairScan.sizes[0], repairScan.sizes[repairScan.sizes.length - 1]];
  const memory = (r: typeof small) => `${f1(r.ms / 1000)} s, peak heap +${f0(r.peakHeapDeltaMB)} MB, RSS +${f0(r.peakRssDeltaMB)} MB`;
  rows.push({
    figure: `repair scan ns per chunk, ${f0(large.ids)} synthetic chunk ids on one peer (${memory(large)})`,
    value: f0(large.nsPerChunk),
    limit: `${f0(small.ids)} ids: ${f0(small.nsPerChunk)} ns (${memory(small)})`,
    ratio: `${repairScan.growth.toFixed(2)}x`,
    target: judge([[repairScan.growth, { op: "<", value: 1.5, unit: `x the ${f0(small.ids)}-id cost` }]]),
  });
}
rows.push({
  figure: `peer RSS max MB during large PUT/GET (${f0((4 * cfg.large.count * cfg.large.size) / MiB)} MiB moved)`,
  value: f0(m.rss.max / 1e6),
  limit: `first sample ${f0(Math.max(...m.rss.firstPerPeer) / 1e6)}`,
  ratio: "—",
  target: judge([[m.rss.max / 1e6, { op: "<", value: 250, unit: " MB" }]]),
});
for (const h of heartbeat) {
  rows.push({ figure: `scaling: membership messages per peer per second, ${h.peers} peers, idle (1 s probe interval)`, value: h.perPeerPerSec.toFixed(2), limit: "—", ratio: "—", target: "—" });
}
for (const s of scalingPut.filter((s) => s.peers !== PEERS)) {
  rows.push({ figure: `scaling: small PUT ops/s (p99 ms), ${s.peers} peers`, value: `${f0(s.opsPerSec)} (${f1(s.p99ms)})`, limit: `${PEERS} peers: ${f0(m.smallPut.opsPerSec)}`, ratio: pct(s.opsPerSec, m.smallPut.opsPerSec), target: "—" });
}
rows.push({
  figure: `p2p link MB/s with the mesh key (libsodium XSalsa20), ${linkMib} MiB, both ends in one process; @libp2p/pnet ${f0(link.pnetMBps)} (${link.pnetMib} MiB)`,
  value: f0(link.meshKeyMBps),
  limit: `no key ${f0(link.plainMBps)}`,
  ratio: pct(link.meshKeyMBps, link.plainMBps),
  target: judge([[(100 * link.meshKeyMBps) / link.plainMBps, { op: ">=", value: 80, unit: "%" }]]),
});
for (const op of ["put", "get"] as const) {
  const [withKey, withoutKey] = [keyCost.withKey[`${op}MBps`], keyCost.withoutKey[`${op}MBps`]];
  rows.push({
    figure: `mesh key cost: one ${keyCost.mib} MiB object ${op.toUpperCase()} MB/s on 3 peers with the key (best of 2 rounds each)`,
    value: f0(withKey),
    limit: `same mesh without the key ${f0(withoutKey)}`,
    ratio: pct(withKey, withoutKey),
    target: judge([[(100 * withKey) / withoutKey, { op: ">=", value: 80, unit: "%" }]]),
  });
}
rows.push({ figure: "machine: SHA-256 MB/s (Bun.CryptoHasher, 4 MiB)", value: f0(limits.sha256MBps), limit: "—", ratio: "—", target: "—" });

const cpu = os.cpus()[0]?.model ?? "unknown";
console.log(`\nmeshstore bench (${quick ? "quick" : "full"}): ${PEERS} peers, RF=${RF}, ${cpu}, ${os.cpus().length} cores, Bun ${Bun.version}, ${f0(durationSecs)} s\n`);
const header = ["figure", "value", "machine limit", "ratio", "target"];
console.log(`| ${header.join(" | ")} |`);
console.log(`| ${header.map(() => "---").join(" | ")} |`);
for (const r of rows) console.log(`| ${r.figure} | ${r.value} | ${r.limit} | ${r.ratio} | ${r.target} |`);

const results = {
  date: new Date().toISOString(),
  mode: quick ? "quick" : "full",
  cpu,
  cores: os.cpus().length,
  bun: Bun.version,
  platform: `${os.platform()} ${os.release()}`,
  peers: PEERS,
  rf: RF,
  durationSecs,
  config: cfg,
  limits: { ...limits, ceiling, link, keyCost },
  mesh: meshFigures,
  search,
  repair,
  repairScan,
  scaling: { smallPut: scalingPut, list: m.list, heartbeat },
  table: rows,
};
const dir = import.meta.dir;
await Bun.write(path.join(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
await Bun.write(
  path.join(dir, "scaling.svg"),
  renderScaling({ title: `${results.mode} run, ${results.date.slice(0, 10)}, ${cpu}, ${results.cores} cores, Bun ${Bun.version}`, smallPut: scalingPut, list: m.list, heartbeat }),
);
console.log(`\nwrote bench/results.json and bench/scaling.svg`);
process.exit(0);
