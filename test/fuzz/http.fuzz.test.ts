// The fuzz suite over both HTTP APIs (engine.ts, model.ts): 2,000 seeded requests from a
// model of the routes, malformed and well-formed, signed and not, sent over raw TCP. No
// reply may be a 5xx other than 501 or come without a status line; the peer stays up and
// the known objects read back byte for byte. A failure prints the seed (FUZZ_SEED=...
// replays it) and the failing request whole. `bun run fuzz` runs 10,000.
import { expect, test } from "bun:test";
import { fuzzMesh, fuzzSeed, summaryLines } from "./engine.ts";

test("2,000 fuzzed requests to the native and S3 APIs: no 5xx but 501, a status line for each, the peer alive and known objects intact", async () => {
  const seed = fuzzSeed();
  const summary = await fuzzMesh({ runs: 2000, seed, peers: 1, concurrency: 8 });
  const lines = summaryLines(summary);
  if (summary.failure || summary.afterRun.length) console.error(lines.join("\n"));
  expect(summary.failure ?? "no failure").toBe("no failure");
  expect(summary.afterRun).toEqual([]);
  expect(summary.cases).toBeGreaterThanOrEqual(2000);
  expect(summary.fiveHundreds).toBe(0);
}, 90_000);
