// Real `bun run node` processes for end-to-end tests: spawn, wait for the ready line,
// SIGTERM or SIGKILL. Output is kept and shown when a test fails. Every line a process
// prints, on stdout or stderr, also goes to the suite-wide secret check (leak-check.ts),
// as do the secrets it made or was given: its mesh key, a new mesh's admin key, a key
// `keys create` printed. The one place a secret is meant to appear, the admin key a new
// mesh prints once on stdout, is left out of the check (test/cluster/cli.test.ts asserts
// it is printed there, and only at the first start).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Subprocess } from "bun";
import { ADMIN_KEY_FILE } from "../../src/config.ts";
import { MESH_KEY_FILE } from "../../src/net/mesh-key.ts";
import { ADMIN_ENV } from "./credentials.ts";
import { suiteLeaks } from "./leak-check.ts";

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
/** The first line of the admin key banner (src/cli.ts); the id, secret and token follow on the next lines. */
const ADMIN_BANNER = "meshstore: this is a new mesh; its admin key is shown once here";
const ADMIN_BANNER_LINES_AFTER = 4;

/** A stdout line filter that passes everything but the lines of the admin key banner. */
function adminBannerSkipper(): (line: string) => boolean {
  let skipping = 0;
  return (line) => {
    if (line.startsWith(ADMIN_BANNER)) {
      skipping = ADMIN_BANNER_LINES_AFTER;
      return false;
    }
    if (skipping === 0) return false;
    skipping--;
    return true;
  };
}

/** The value after `flag` in `args`, if any. */
function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Register the secrets a `bun run node` with `args` holds: its mesh key (given or made) and the admin key it made. */
function registerPeerSecrets(args: string[], cwd: string): void {
  const data = flagValue(args, "--data");
  const given = flagValue(args, "--mesh-key");
  for (const file of [given, data && path.join(data, MESH_KEY_FILE)]) {
    if (file && existsSync(path.resolve(cwd, file))) suiteLeaks.registerMeshKey(readFileSync(path.resolve(cwd, file), "utf8"));
  }
  const adminFile = data && path.resolve(cwd, data, ADMIN_KEY_FILE);
  if (adminFile && existsSync(adminFile)) suiteLeaks.registerKey(JSON.parse(readFileSync(adminFile, "utf8")) as { accessKeyId: string; secretAccessKey: string; token: string }, true);
}

/** Start `bun run node` with `args` and wait (up to `timeoutMs`) for its ready line. */
export async function spawnPeer(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; preload?: string; viaNpx?: boolean } = {},
): Promise<PeerProcess> {
  // A preload (benchmarks only) needs Bun itself to run the entry point, not a package script.
  // `viaNpx` starts the peer as the README does, `npx -y bun run node` (proc is then npm's process).
  const command = opts.preload
    ? [process.execPath, "--preload", opts.preload, "src/cli.ts", "node"]
    : opts.viaNpx
      ? ["npx", "-y", "bun", "run", "--silent", "node"]
      : [process.execPath, "run", "--silent", "node"];
  const cwd = opts.cwd ?? process.cwd();
  const proc = Bun.spawn([...command, ...args], {
    cwd,
    env: { ...process.env, ...ADMIN_ENV, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const source = `bun run node (pid ${proc.pid})`;
  const outLines = suiteLeaks.lines(`${source} stdout`, adminBannerSkipper());
  const errLines = suiteLeaks.lines(`${source} stderr`);
  const output: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, lines: typeof outLines) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      output.push(text);
      lines.write(text);
    }
    lines.end();
  };
  void pump(proc.stderr, errLines);
  const stdout = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    const next = await Promise.race([stdout.read(), Bun.sleep(deadline - Date.now()).then(() => undefined)]);
    if (!next || next.done) break;
    const part = decoder.decode(next.value, { stream: true });
    text += part;
    outLines.write(part);
    const m = READY.exec(text);
    if (m) {
      output.push(text);
      stdout.releaseLock();
      void pump(proc.stdout, outLines);
      registerPeerSecrets(args, cwd);
      return { proc, peerId: m[1], p2p: m[2].split(","), http: m[3], s3: m[4], output };
    }
  }
  proc.kill("SIGKILL");
  registerPeerSecrets(args, cwd);
  throw new Error(`peer did not become ready:\n${text}\n${output.join("")}`);
}

/** Run `bun run <script> args` to its end (killed after 15 s); returns its exit code and output. */
async function runScript(script: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, "run", "--silent", script, ...args], { cwd, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Run `bun run node` expecting it to exit by itself; returns its exit code and output. */
export async function runNodeExpectingExit(args: string[], cwd = process.cwd()): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runScript("node", args, cwd, ADMIN_ENV);
  registerPeerSecrets(args, cwd);
  const source = `bun run node (exited ${r.code})`;
  const out = suiteLeaks.lines(`${source} stdout`, adminBannerSkipper());
  out.write(r.stdout);
  out.end();
  const err = suiteLeaks.lines(`${source} stderr`);
  err.write(r.stderr);
  err.end();
  return r;
}

/**
 * Run a client command (`bun run keys ...`, `bun run members ...`) to its end. Its stderr
 * goes to the secret check; its stdout is the answer the user asked for, and the secrets
 * in it (a key `keys create` made, the mesh key `keys mesh-key --out` wrote) are registered.
 */
export async function runCli(command: "keys" | "members", args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runScript(command, args, process.cwd(), env);
  suiteLeaks.registerFromJson(r.stdout);
  const out = flagValue(args, "--out");
  if (command === "keys" && args[0] === "mesh-key" && out && existsSync(out)) suiteLeaks.registerMeshKey(readFileSync(out, "utf8"));
  const err = suiteLeaks.lines(`bun run ${command} ${args[0] ?? ""} stderr`);
  err.write(r.stderr);
  err.end();
  return r;
}
