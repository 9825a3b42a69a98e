// The aws CLI and rclone against a real 3-peer mesh: runs test/tools/s3-cli-check.sh
// (see its header) and passes only if every step of it passes. Missing tools fail the
// script, and so this test: it never skips.
import { expect, test } from "bun:test";
import path from "node:path";

const SCRIPT = path.join(import.meta.dir, "s3-cli-check.sh");
const ROOT = path.join(import.meta.dir, "..", "..");
const TIMEOUT_MS = 240_000;

test("aws CLI and rclone work against a 3-peer mesh (s3-cli-check.sh)", async () => {
  // Its own process group, so that on a timeout the script and every peer it started
  // can be stopped together.
  const proc = Bun.spawn(["bash", SCRIPT], {
    cwd: ROOT,
    env: { ...process.env, BUN: process.execPath },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
  });
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid, sig);
    } catch {
      // already gone
    }
  };
  // The script bounds itself (170 s); this is the backstop. SIGTERM lets its trap stop
  // the peers and remove its temp folder; SIGKILL follows if that does not happen.
  let timedOut = false;
  const term = setTimeout(() => {
    timedOut = true;
    signalGroup("SIGTERM");
  }, TIMEOUT_MS - 20_000);
  const kill = setTimeout(() => signalGroup("SIGKILL"), TIMEOUT_MS - 8_000);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const output = stdout + stderr;
    if (code !== 0) console.error(`s3-cli-check.sh exited with ${code}${timedOut ? " (stopped by the test's time limit)" : ""}:\n${output}`);
    expect(code).toBe(0);
  } finally {
    clearTimeout(term);
    clearTimeout(kill);
  }
}, TIMEOUT_MS);
