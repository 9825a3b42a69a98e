// 8 MiB through one noise+yamux stream between two peers over TCP, every byte checked;
// once with sodium and once (in a child process) with the pure-JS fallback.
import { expect, test } from "bun:test";
import { sendThroughOneStream } from "../harness/stream-check.ts";

test("8 MiB through one encrypted stream arrives intact (sodium-native)", async () => {
  const r = await sendThroughOneStream();
  console.log(`8 MiB over one stream with ${r.crypto}: ${r.mbps.toFixed(0)} MB/s`);
  expect(r.crypto).toBe("sodium-native");
  expect(r.ok).toBe(true);
}, 30_000);

test("8 MiB through one encrypted stream arrives intact (pure-JS fallback)", async () => {
  const proc = Bun.spawn([process.execPath, "test/harness/stream-check.ts"], { env: { ...process.env, MESH_NOISE_CRYPTO: "pure-js" }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const r = JSON.parse(out.trim().split("\n").pop() || "{}");
  if (code !== 0) console.error(err);
  console.log(`8 MiB over one stream with ${r.crypto}: ${Number(r.mbps).toFixed(0)} MB/s`);
  expect(code).toBe(0);
  expect(r.crypto).toBe("pure-js");
  expect(r.ok).toBe(true);
}, 60_000);
