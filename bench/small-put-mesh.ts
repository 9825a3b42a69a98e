// `bun bench/small-put-mesh.ts [--objects N] [--rounds R] [--conditional]`: the small-PUT figure of
// `bun run bench` alone: a fresh mesh of 3 `bun run node` peer processes (RF 3), N 4 KiB
// PUTs spread over the peers, 64 in flight, as bench/run.ts measures "small PUT ops/s".
// Every PUT writes its change event in the same batch as its manifest (issue 16: events
// are always on), so this is the events-on figure; run it on an older commit for the
// figure before events. Prints one line per round, then the median, to stdout.
import { parseArgs } from "node:util";
import { createBucket, putSmall } from "./load.ts";
import { startMesh } from "./mesh.ts";
import { log, percentile } from "./stats.ts";

const { values } = parseArgs({ options: { objects: { type: "string", default: "20000" }, rounds: { type: "string", default: "1" }, conditional: { type: "boolean", default: false } } });
const objects = Number(values.objects);
const rounds = Number(values.rounds);
if (!(Number.isInteger(objects) && objects > 0 && Number.isInteger(rounds) && rounds > 0)) throw new Error("--objects and --rounds take whole numbers above 0");

const rates: number[] = [];
const conditional: number[] = [];
for (let r = 0; r < rounds; r++) {
  log(`small PUT: round ${r + 1}: a fresh mesh of 3 peers, ${objects} × 4 KiB, 64 in flight`);
  const mesh = await startMesh(3);
  try {
    const all = mesh.peers.map((p) => p.http);
    await createBucket(all[0], "small");
    const res = await putSmall(all, "small", { to: objects, size: 4096, inflight: 64 });
    rates.push(res.opsPerSec);
    console.log(`small PUT ${res.opsPerSec.toFixed(0)} ops/s, p50 ${res.p50ms.toFixed(1)} ms, p99 ${res.p99ms.toFixed(1)} ms`);
    if (values.conditional) {
      // The same count with If-None-Match: * on new keys: a consensus round each (issue 17).
      const c = await putSmall(all, "small", { to: objects, size: 4096, inflight: 64, prefix: "c/", headers: { "if-none-match": "*" } });
      console.log(`conditional small PUT ${c.opsPerSec.toFixed(0)} ops/s, p50 ${c.p50ms.toFixed(1)} ms, p99 ${c.p99ms.toFixed(1)} ms (${((100 * c.opsPerSec) / res.opsPerSec).toFixed(0)}% of unconditional)`);
      conditional.push(c.opsPerSec);
    }
  } finally {
    mesh.close();
  }
}
if (rounds > 1) console.log(`median small PUT ${percentile(rates, 0.5).toFixed(0)} ops/s over ${rounds} rounds`);
if (rounds > 1 && conditional.length) console.log(`median conditional small PUT ${percentile(conditional, 0.5).toFixed(0)} ops/s over ${rounds} rounds`);
