// Real `bun run node` processes for end-to-end tests: spawn, wait for the ready line,
// SIGTERM or SIGKILL. Output is kept and shown when a test fails.
import type { Subprocess } from "bun";
import { ADMIN_ENV } from "./credentials.ts";

/** A spawned peer process. */
export interface PeerProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  peerId: string;
  p2p: string[];
  http: string;
  s3: string;
  output: string[];
}

const READY = /^meshstore peer (\S+) ready p2p=(\S+) http=(\S+) s3=(\S+)$/m;

/** Start `bun run node` with `args` and wait (up to `timeoutMs`) for its ready line. */
export async function spawnPeer(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; preload?: string } = {}): Promise<PeerProcess> {
  // A preload (benchmarks only) needs Bun itself to run the entry point, not a package script.
  const command = opts.preload ? [process.execPath, "--preload", opts.preload, "src/cli.ts", "node"] : [process.execPath, "run", "--silent", "node"];
  const proc = Bun.spawn([...command, ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: { ...process.env, ...ADMIN_ENV, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const output: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output.push(decoder.decode(chunk));
  };
  void pump(proc.stderr);
  const stdout = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    const next = await Promise.race([stdout.read(), Bun.sleep(deadline - Date.now()).then(() => undefined)]);
    if (!next || next.done) break;
    text += decoder.decode(next.value);
    const m = READY.exec(text);
    if (m) {
      output.push(text);
      stdout.releaseLock();
      void pump(proc.stdout);
      return { proc, peerId: m[1], p2p: m[2].split(","), http: m[3], s3: m[4], output };
    }
  }
  proc.kill("SIGKILL");
  throw new Error(`peer did not become ready:\n${text}\n${output.join("")}`);
}

/** Run `bun run node` expecting it to exit by itself; returns its exit code and output. */
export async function runNodeExpectingExit(args: string[], cwd = process.cwd()): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, "run", "--silent", "node", ...args], { cwd, env: { ...process.env, ...ADMIN_ENV }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}
