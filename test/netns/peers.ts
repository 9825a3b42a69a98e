// Real `bun run node` peers inside the simulated hosts of hosts.ts, and bounded helpers
// to talk to them. The process harness (test/harness/process.ts) spawns `bun run node`
// directly; here the same command runs under `ip netns exec <ns>`, so that each peer has
// its own network stack and fixed ports on its own address.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { MESH_KEY_FILE } from "../../src/net/mesh-key.ts";
import { ADMIN_ENV } from "../harness/credentials.ts";
import { suiteLeaks } from "../harness/leak-check.ts";
import { json, request, type Reply } from "../harness/http.ts";
import type { PeerProcess } from "../harness/process.ts";
import { killAllIn, tool, type Host } from "./hosts.ts";
import type { PeerView } from "../../src/api/status.ts";

/** The repository root (this file is test/netns/peers.ts), so any clone works. */
export const REPO_ROOT = path.resolve(import.meta.dir, "..", "..");

export const P2P_PORT = 7400;
export const HTTP_PORT = 7480;
export const S3_PORT = 7481;

/** Same line as test/harness/process.ts waits for. */
const READY = /^meshstore peer (\S+) ready p2p=(\S+) http=(\S+) s3=(\S+)$/m;

/** A peer process on a simulated host. `base` is the URL the test uses: always the host's own address. */
export interface NsPeer extends PeerProcess {
  host: Host;
  base: string;
  killed: boolean;
}

/** The `--bootstrap` address of a peer: its host address, never what it advertises. */
export function bootstrapAddr(p: NsPeer): string {
  return `/ip4/${p.host.ip}/tcp/${P2P_PORT}/p2p/${p.peerId}`;
}

/**
 * Start `bun run node` on `host` (data in the host's folder), joining through `bootstrap`
 * if given, and wait up to `timeoutMs` for its ready line.
 */
export async function startPeer(host: Host, join: { bootstrap: string; meshKeyFile: string } | undefined, timeoutMs = 30_000): Promise<NsPeer> {
  const args = ["--data", host.dataDir, "--p2p", `/ip4/0.0.0.0/tcp/${P2P_PORT}`, "--http", `0.0.0.0:${HTTP_PORT}`, "--s3", `0.0.0.0:${S3_PORT}`, "--dead-after", "2", "--repair-delay", "3"];
  if (join) args.push("--bootstrap", join.bootstrap, "--mesh-key", join.meshKeyFile);
  const proc = Bun.spawn([tool("ip")!, "netns", "exec", host.ns, process.execPath, "run", "--silent", "node", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...ADMIN_ENV },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const output: string[] = [];
  let ready: RegExpExecArray | null = null;
  let wake = () => {};
  // Both streams are captured whole (for the failure dump) and go to the suite's secret
  // check; stdout is also scanned for the ready line.
  const pump = async (stream: ReadableStream<Uint8Array>, scan: boolean) => {
    const decoder = new TextDecoder();
    const lines = suiteLeaks.lines(`${host.ns} ${scan ? "stdout" : "stderr"}`);
    let text = "";
    for await (const chunk of stream) {
      const s = decoder.decode(chunk, { stream: true });
      output.push(s);
      lines.write(s);
      if (scan && !ready) {
        text += s;
        ready = READY.exec(text);
        if (ready) wake();
      }
    }
    lines.end();
    wake();
  };
  void pump(proc.stdout, true);
  void pump(proc.stderr, false);
  const outcome = await new Promise<"ready" | "exited" | "timeout">((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), timeoutMs);
    wake = () => {
      clearTimeout(timer);
      resolve(ready ? "ready" : "exited");
    };
    void proc.exited.then(() => setTimeout(wake, 50)); // let the last output arrive first
  });
  const m = ready as RegExpExecArray | null;
  if (outcome !== "ready" || !m) {
    killAllIn(host.ns);
    throw new Error(`peer on ${host.ns} (${host.ip}) did not become ready (${outcome}):\n${output.join("")}`);
  }
  const meshKey = join?.meshKeyFile ?? path.join(host.dataDir, MESH_KEY_FILE);
  if (existsSync(meshKey)) suiteLeaks.registerMeshKey(readFileSync(meshKey, "utf8"));
  return { proc, peerId: m[1], p2p: m[2].split(","), http: m[3], s3: m[4], output, host, base: `http://${host.ip}:${HTTP_PORT}`, killed: false };
}

/** kill -9 of the peer: every process in its namespace (the launcher and the peer under it). */
export async function killPeer(p: NsPeer): Promise<void> {
  p.killed = true;
  killAllIn(p.host.ns);
  await withTimeout(p.proc.exited, 5_000, `${p.host.ns} exit after SIGKILL`);
}

/** Every peer's captured output, for a failing test. */
export function dumpOutputs(peers: NsPeer[]): string {
  return peers.map((p) => `----- peer ${p.host.index} ${p.host.ip} ${p.peerId}${p.killed ? " (killed)" : ""} -----\n${p.output.join("")}`).join("\n");
}

// ---------- bounded waiting ----------

/** Reject with `what` if `p` takes longer than `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export { waitFor } from "../harness/wait.ts";

// ---------- bounded HTTP ----------

/** The harness's admin request, with a time limit (a hung route must not hang the test). */
export function req(base: string, method: string, route: string, init: { body?: Bun.BodyInit; headers?: Record<string, string> } = {}, ms = 5_000): Promise<Reply> {
  return withTimeout(request(base, method, route, init), ms, `${method} ${base}${route}`);
}

/** A GET of a JSON route that must answer 200. */
export async function getJson<T = any>(base: string, route: string, ms = 5_000): Promise<T> {
  const r = await req(base, "GET", route, {}, ms);
  if (r.status !== 200) throw new Error(`GET ${base}${route}: ${r.status} ${new TextDecoder().decode(r.body).slice(0, 200)}`);
  return json<T>(r);
}

/** `GET /cluster/peers`: the peer's own record and its view of the others. */
export function clusterPeers(base: string): Promise<PeerView> {
  return getJson(base, "/cluster/peers");
}

/** Each live peer's `/cluster/peers`, in the order of `peers` (killed peers left out). */
export async function viewsOf(peers: NsPeer[]): Promise<{ peer: NsPeer; view: PeerView }[]> {
  const up = peers.filter((p) => !p.killed);
  return Promise.all(up.map(async (peer) => ({ peer, view: await clusterPeers(peer.base) })));
}

/** Whether, in these views, every peer sees every other peer of them alive. */
export function everyoneAlive(views: { peer: NsPeer; view: Pick<PeerView, "peers"> }[]): boolean {
  return views.every(({ peer, view }) => views.every(({ peer: q }) => q === peer || view.peers.some((m) => m.id === q.peerId && m.state === "alive")));
}

/** Whether every live peer sees every other live peer alive. */
export async function allSeeAllAlive(peers: NsPeer[]): Promise<boolean> {
  return everyoneAlive(await viewsOf(peers));
}
