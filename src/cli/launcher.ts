// The peer follows its launcher. `npx -y bun run node` is four processes: npm exec, a
// `sh -c`, `bun run` and the peer. A signal to npm reaches the shell, which dies without
// passing it on, and a SIGKILL reaches nobody: either way `bun run` and the peer were left
// running as orphans. So the peer notes the chain of launchers above it at start and
// watches it: when one further up exits (npm, its shell), the peer stops gracefully, as
// on SIGTERM. When its direct parent (`bun run`) vanishes, which only a SIGKILL of that
// process does, the peer dies the same abrupt death, as the README promises.
//
// On Linux the chain is read from /proc and each poll reads a few small files there.
// Elsewhere (macOS) it is read once with `ps` at start, and polls only ask whether each
// launcher is still alive (signal 0).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** A launcher process above the peer, as seen at start. */
export interface Launcher {
  pid: number;
  /** Its parent then: a change means the process above it exited. */
  ppid: number;
  command: string;
}

/** How often the chain is checked. */
const POLL_MS = 200;
/** A chain deeper than this is not a launcher chain any more. */
const MAX_DEPTH = 8;

/** True if `command` (a process's arguments joined by spaces) is one of the launchers meshstore runs under. */
export function isLauncherCommand(command: string): boolean {
  const [first = "", second = ""] = command.split(" ");
  const name = first.slice(first.lastIndexOf("/") + 1);
  if (name === "npm" || name === "npx" || name === "bunx") return true; // npm's process title is "npm exec ..."
  if (/^node(js)?$/.test(name) && /\/np[mx]-cli\.js$/.test(second)) return true;
  if (/^bun(\.exe)?$/.test(name) && (second === "run" || second === "x")) return true;
  return /^(sh|bash|dash|zsh)$/.test(name) && second === "-c"; // npm and bun run scripts through a shell
}

/** What /proc says of `pid` (Linux), or undefined if it has gone or /proc is not there. */
function procInfo(pid: number): { ppid: number; zombie: boolean; command: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0+$/, "").replaceAll("\0", " ");
    return { ppid: Number(ppid), zombie: state === "Z", command };
  } catch {
    return undefined;
  }
}

/** What `ps` says of `pid` (any Unix), or undefined. Run only at start: it spawns a process. */
export function psInfo(pid: number): { ppid: number; zombie: boolean; command: string } | undefined {
  const r = spawnSync("ps", ["-o", "ppid=,stat=,command=", "-p", String(pid)], { encoding: "utf8", timeout: 2000 });
  const m = r.status === 0 ? /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(r.stdout.trim()) : null;
  return m ? { ppid: Number(m[1]), zombie: m[2].startsWith("Z"), command: m[3] } : undefined;
}

/** The launchers above this process, nearest first (empty when started directly); `read` defaults to /proc. */
export function launcherChain(startPid = process.ppid, read: (pid: number) => ReturnType<typeof procInfo> = procInfo): Launcher[] {
  const chain: Launcher[] = [];
  let pid = startPid;
  while (pid > 1 && chain.length < MAX_DEPTH) {
    const info = read(pid);
    if (!info || !isLauncherCommand(info.command)) break;
    chain.push({ pid, ppid: info.ppid, command: info.command });
    pid = info.ppid;
  }
  return chain;
}

/** The first launcher of `chain` that has exited (or whose parent has), if any. */
export function goneLauncher(chain: Launcher[], parentPid = process.ppid): Launcher | undefined {
  if (chain.length && parentPid !== chain[0].pid) return chain[0];
  for (const [i, l] of chain.entries()) {
    const info = procInfo(l.pid);
    if (!info || info.zombie) return l;
    // A new parent means the launcher above died. The topmost launcher's parent is no
    // launcher (a shell, nohup's parent): that one may go, and npm lives on re-parented.
    if (i < chain.length - 1 && info.ppid !== l.ppid) return chain[i + 1];
  }
  return undefined;
}

/** True if `pid` exists (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Call `onGone` once when the launcher chain this process started under breaks; `abrupt`
 * if it was the direct parent. The timer is unref'd: it never keeps the peer alive.
 * Returns a function that stops watching.
 */
export function watchLauncher(onGone: (why: string, abrupt: boolean) => void): () => void {
  const viaProc = procInfo(process.pid) !== undefined;
  const watched = launcherChain(process.ppid, viaProc ? procInfo : psInfo);
  if (watched.length === 0) return () => {};
  const timer = setInterval(() => {
    const gone = viaProc ? goneLauncher(watched) : watched.find((l, i) => (i === 0 ? process.ppid !== l.pid : !alive(l.pid)));
    if (!gone) return;
    clearInterval(timer);
    onGone(`its launcher "${gone.command.split(" ").slice(0, 3).join(" ")}" (pid ${gone.pid}) has exited`, process.ppid !== watched[0].pid);
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
