// Repair rate on a mesh of separate `bun run node` processes (see bench/repair-rate.ts).
//   bun bench/repair.ts [--peers 5] [--mib 1024] [--object-mib 16]
import { parseArgs } from "node:util";
import { measureRepair } from "./repair-rate.ts";

const { values } = parseArgs({ options: { peers: { type: "string", default: "5" }, mib: { type: "string", default: "1024" }, "object-mib": { type: "string", default: "16" } } });
const r = await measureRepair({ peers: Number(values.peers), mib: Number(values.mib), objectMib: Number(values["object-mib"]) });
process.exit(r.badChunks ? 1 : 0);
