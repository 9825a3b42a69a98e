// Storage emulators from npm run as child processes on 127.0.0.1 (s3rver, Azurite): spawn,
// wait until the port answers (bounded), stop with SIGINT (both shut down cleanly on it) and
// SIGKILL if the process has not exited within 3 s. Azurite prints "successfully closed" on
// SIGINT but, once it has served a request, its process lingers (a timer of its store keeps
// Node's loop alive): after that line, SIGKILL only ends an idle process, and the close
// still counts as clean. Output is kept (bounded) for the failure message.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.ts";

/** A running emulator. */
export interface Emulator {
  endpoint: string;
  /** Milliseconds from spawn to a first answer. */
  startMs: number;
  /** `clean`: it exited, or said it had closed, within the grace time. */
  stop(): Promise<{ stopMs: number; clean: boolean }>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;

/** Spawn `node <script> ...args(port, dir)` and wait for its HTTP port to answer. */
export async function startEmulator(name: string, nodeArgs: string[], args: (port: number, dir: string) => string[], closedLine?: RegExp): Promise<Emulator> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), `${name}-`));
  const t0 = performance.now();
  const proc = Bun.spawn(["node", ...nodeArgs, ...args(port, dir)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const output: string[] = [];
  for (const stream of [proc.stdout, proc.stderr]) {
    void (async () => {
      for await (const chunk of stream) if (output.length < 200) output.push(new TextDecoder().decode(chunk));
    })();
  }
  const endpoint = `http://127.0.0.1:${port}`;
  for (;;) {
    const up = await fetch(endpoint, { signal: AbortSignal.timeout(1_000) }).then(
      async (r) => (await r.body?.cancel(), true),
      () => false,
    );
    if (up) break;
    if (proc.exitCode !== null || performance.now() - t0 > START_TIMEOUT_MS) {
      proc.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      throw new Error(`${name} did not start: ${output.join("").slice(-2000)}`);
    }
    await Bun.sleep(50);
  }
  const startMs = performance.now() - t0;
  return {
    endpoint,
    startMs,
    async stop() {
      const s0 = performance.now();
      proc.kill("SIGINT");
      const said = () => closedLine !== undefined && closedLine.test(output.join(""));
      let clean = false;
      while (performance.now() - s0 < STOP_GRACE_MS) {
        if (proc.exitCode !== null || proc.signalCode !== null || said()) {
          clean = true;
          break;
        }
        await Bun.sleep(20);
      }
      const stopMs = performance.now() - s0;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
      await rm(dir, { recursive: true, force: true });
      return { stopMs, clean };
    },
  };
}

/** s3rver (npm) with signature checks off. Under node: Bun lacks the DES cipher s3rver's list-v2 continuation tokens use, hence also the legacy OpenSSL provider. */
export function startS3rver(bucket: string): Promise<Emulator> {
  const script = path.join(import.meta.dir, "../../node_modules/s3rver/bin/s3rver.js");
  return startEmulator("s3rver", ["--openssl-legacy-provider", script], (port, dir) => ["-d", dir, "-a", "127.0.0.1", "-p", String(port), "--silent", "--allow-mismatched-signatures", "--no-vhost-buckets", "--configure-bucket", bucket]);
}

/** Azurite's blob service alone (npm), in memory, bounded to 256 MB of extents. */
export function startAzurite(): Promise<Emulator> {
  const script = path.join(import.meta.dir, "../../node_modules/azurite/dist/src/blob/main.js");
  return startEmulator("azurite", [script], (port) => ["--blobHost", "127.0.0.1", "--blobPort", String(port), "--silent", "--skipApiVersionCheck", "--inMemoryPersistence", "--extentMemoryLimit", "256"], /successfully closed/);
}
