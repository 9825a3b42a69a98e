// Listing latency against bucket size, on a mesh of separate `bun run node` processes
// (see bench/list-latency.ts).
//   bun bench/list.ts [--sizes 10000,100000] [--peers 3]
import { parseArgs } from "node:util";
import { measureList } from "./list-latency.ts";
import { startMesh } from "./mesh.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "10000,100000" }, peers: { type: "string", default: "3" } } });
const mesh = await startMesh(Number(values.peers));
try {
  const points = await measureList(mesh.peers.map((p) => p.http), values.sizes!.split(",").map(Number));
  console.log(`\n${mesh.peers.length} peers, RF=3, 100-byte objects\n`);
  console.log("| objects in bucket | 1,000-key page p50 ms | max ms | small PUT/s while filling (64 in flight) |");
  console.log("| --- | --- | --- | --- |");
  for (const p of points) console.log(`| ${p.objects.toLocaleString("en")} | ${p.p50ms.toFixed(1)} | ${p.maxms.toFixed(1)} | ${p.fillPutsPerSec.toFixed(0)} |`);
} finally {
  mesh.close();
}
process.exit(0);
