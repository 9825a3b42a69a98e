// `bun run fuzz`: FUZZ_RUNS (default 10,000) model-generated requests against an in-process
// mesh of FUZZ_PEERS peers (default 1), seeded by FUZZ_SEED (printed either way). Prints the
// statuses seen; exits 1 on any failing reply, a peer not answering, or a known object changed.
import { fuzzMesh, fuzzSeed, summaryLines } from "./engine.ts";

const runs = Number(process.env.FUZZ_RUNS ?? 10_000);
const peers = Number(process.env.FUZZ_PEERS ?? 1);
const seed = fuzzSeed();
console.log(`fuzz: ${runs} cases against ${peers} peer(s), seed ${seed}`);
const summary = await fuzzMesh({ runs, seed, peers, concurrency: Number(process.env.FUZZ_CONCURRENCY ?? 8), shrink: process.env.FUZZ_SHRINK === "1", keepGoing: process.env.FUZZ_KEEP_GOING === "1", log: (l) => console.log(l) });
for (const line of summaryLines(summary)) console.log(line);
const ok = !summary.failure && summary.found.size === 0 && summary.afterRun.length === 0 && summary.fiveHundreds === 0;
console.log(ok ? "fuzz: OK" : "fuzz: FAILED");
process.exit(ok ? 0 : 1);
