// Simulated hosts for the multi-host test: one Linux network namespace per peer, each
// with a veth into one bridge that lives in its own namespace, plus one veth from the
// test's own (root) namespace into that bridge, so the test process is the "client host"
// at DRIVER_IP. Partitions are iptables DROP rules inside the peer namespaces.
//
// Everything here is synchronous and bounded (spawnSync with a timeout), so that the
// teardown also works from a process "exit" handler. Every name carries a random tag
// (ms-<tag>-p0, ms-<tag>-br, ms-<tag>-d), and a small registry in /run lets a later run
// remove what a killed run (SIGKILL of bun test) left behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The subnet every simulated host lives on; nothing else on the machine may use it. */
export const SUBNET = { prefix: "10.213.77.", base: "10.213.77.0", bits: 24 } as const;
/** The test process's own address on the bridge. */
export const DRIVER_IP = `${SUBNET.prefix}254`;

/** Peer i (0-based) gets .1, .2, ... */
export function peerIp(i: number): string {
  return `${SUBNET.prefix}${i + 1}`;
}

const CMD_TIMEOUT_MS = 10_000;
const REGISTRY = "/run/meshstore-netns";
// `ip`, `iptables` and `tc` live in /usr/sbin, which a non-login PATH may lack.
const SBIN_PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin`;

/** Result of a command: exit code and both outputs. */
export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command synchronously with a time limit; never throws (code -1 when it could not run). */
export function run(cmd: string[], timeoutMs = CMD_TIMEOUT_MS): CmdResult {
  const exe = Bun.which(cmd[0], { PATH: SBIN_PATH });
  if (!exe) return { code: -1, stdout: "", stderr: `${cmd[0]}: not found` };
  const r = Bun.spawnSync([exe, ...cmd.slice(1)], { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, env: { ...process.env, PATH: SBIN_PATH } });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Run a command and throw with its output if it fails. */
export function must(cmd: string[], timeoutMs = CMD_TIMEOUT_MS): string {
  const r = run(cmd, timeoutMs);
  if (r.code !== 0) throw new Error(`\`${cmd.join(" ")}\` failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Absolute path of a system tool (for `ip netns exec ... <tool>`), or undefined. */
export function tool(name: string): string | undefined {
  return Bun.which(name, { PATH: SBIN_PATH }) ?? undefined;
}

function randomTag(): string {
  return Math.floor(Math.random() * 36 ** 6)
    .toString(36)
    .padStart(6, "0");
}

// ---------- capability ----------

/**
 * Whether this machine can run the test now: root, `ip netns`, a bridge, and iptables
 * inside a namespace, probed for real with a scratch namespace (removed again), because a
 * container can have the tools but not the permission; and the subnet not held by another
 * live run of this test. `reason` says what is missing. (A subnet used by anything else
 * is not a skip: createHosts refuses it, loudly.)
 */
export function checkCapability(): { ok: boolean; reason: string } {
  if (process.platform !== "linux") return { ok: false, reason: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: "not running as root (network namespaces and iptables need root)" };
  for (const t of ["ip", "iptables"]) if (!tool(t)) return { ok: false, reason: `\`${t}\` is not installed (Debian: apt-get install -y iproute2 iptables)` };
  const list = run(["ip", "netns", "list"]);
  if (list.code !== 0) return { ok: false, reason: `\`ip netns list\` failed: ${list.stderr.trim()}` };
  const ns = `ms-${randomTag()}-probe`;
  try {
    const steps = [
      ["ip", "netns", "add", ns],
      ["ip", "-n", ns, "link", "add", "br0", "type", "bridge"],
      ["ip", "netns", "exec", ns, tool("iptables")!, "-w", "5", "-S"],
    ];
    for (const s of steps) {
      const r = run(s);
      if (r.code !== 0) return { ok: false, reason: `\`${s.join(" ")}\` failed: ${(r.stderr || r.stdout).trim()}` };
    }
    return liveRunCheck();
  } finally {
    run(["ip", "netns", "del", ns]);
  }
}

/** Whether another live run of this test holds the subnet (then this one skips). */
function liveRunCheck(): { ok: boolean; reason: string } {
  removeStale();
  const other = liveRuns().find((e) => subnetUsers().some((u) => u.dev === `ms-${e.tag}-d`));
  if (other) return { ok: false, reason: `another run of this test (pid ${other.pid}) is using ${SUBNET.base}/${SUBNET.bits}` };
  return { ok: true, reason: "" };
}

// ---------- subnet check ----------

function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** Whether the CIDR (or bare address) `dst` overlaps our /24. A default route does not count. */
function overlapsSubnet(dst: string): boolean {
  if (dst === "default" || !/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst)) return false;
  const [addr, bitsText] = dst.split("/");
  const bits = Math.min(bitsText === undefined ? 32 : Number(bitsText), SUBNET.bits);
  if (bits === 0) return false;
  const mask = bits === 32 ? 0xffffffff : (~((1 << (32 - bits)) - 1)) >>> 0;
  return ((ipToInt(addr) & mask) >>> 0) === ((ipToInt(SUBNET.base) & mask) >>> 0);
}

/** Routes and addresses of this namespace that touch 10.213.77.0/24 (empty when it is free). */
export function subnetUsers(): { what: string; dev: string }[] {
  const users: { what: string; dev: string }[] = [];
  for (const r of JSON.parse(must(["ip", "-j", "-4", "route", "show", "table", "all"])) as { dst: string; dev?: string; table?: string }[]) {
    if (overlapsSubnet(r.dst)) users.push({ what: `route ${r.dst} dev ${r.dev ?? "?"}${r.table ? ` table ${r.table}` : ""}`, dev: r.dev ?? "" });
  }
  for (const link of JSON.parse(must(["ip", "-j", "-4", "addr"])) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[]) {
    for (const a of link.addr_info) if (overlapsSubnet(`${a.local}/${a.prefixlen}`)) users.push({ what: `address ${a.local}/${a.prefixlen} on ${link.ifname}`, dev: link.ifname });
  }
  return users;
}

// ---------- topology ----------

/** One simulated host: its namespace, the interface facing the bridge, its address and its disk (a folder). */
export interface Host {
  index: number;
  ns: string;
  dev: string;
  ip: string;
  dataDir: string;
}

/** The whole set-up: hosts, the bridge's namespace, the driver's veth in the root namespace, the hosts' folders. */
export interface Topology {
  tag: string;
  hosts: Host[];
  bridgeNs: string;
  driverDev: string;
  dataRoot: string;
}

let live: Topology | undefined;
const onSignal = (sig: NodeJS.Signals) => {
  // Tear down synchronously, then die the way the signal meant.
  if (live) destroyHosts(live);
  process.exit(sig === "SIGINT" ? 130 : 143);
};
const onExit = () => {
  if (live) destroyHosts(live);
};

/**
 * Create `n` hosts on a fresh bridge. Removes leftovers of killed earlier runs first,
 * then refuses (throws) if anything on the machine still uses the subnet.
 */
export function createHosts(n: number): Topology {
  if (n < 1 || n > 250) throw new Error(`host count must be 1..250, got ${n}`);
  removeStale();
  const users = subnetUsers();
  if (users.length) throw new Error(`${SUBNET.base}/${SUBNET.bits} is already in use on this machine, so the test will not touch it: ${users.map((u) => u.what).join("; ")}`);
  const tag = randomTag();
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), `meshstore-netns-${tag}-`));
  const topo: Topology = {
    tag,
    hosts: Array.from({ length: n }, (_, i) => ({ index: i, ns: `ms-${tag}-p${i}`, dev: "eth0", ip: peerIp(i), dataDir: path.join(dataRoot, `p${i}`) })),
    bridgeNs: `ms-${tag}-br`,
    driverDev: `ms-${tag}-d`,
    dataRoot,
  };
  // Registered (and the handlers installed) before the first command, so even a
  // half-built topology is torn down.
  mkdirSync(REGISTRY, { recursive: true });
  writeFileSync(path.join(REGISTRY, `${tag}.json`), JSON.stringify({ pid: process.pid, started: startTimeOf(process.pid), tag, dataRoot } satisfies RegistryEntry));
  live = topo;
  process.on("exit", onExit);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const br = topo.bridgeNs;
    must(["ip", "netns", "add", br]);
    must(["ip", "-n", br, "link", "add", "br0", "type", "bridge"]);
    must(["ip", "-n", br, "link", "set", "br0", "up"]);
    for (const h of topo.hosts) {
      must(["ip", "netns", "add", h.ns]);
      must(["ip", "-n", h.ns, "link", "set", "lo", "up"]);
      // Created inside the bridge's namespace with the far end moved straight into the
      // host's: no interface of the root namespace is involved.
      must(["ip", "-n", br, "link", "add", `v${h.index}`, "type", "veth", "peer", "name", h.dev, "netns", h.ns]);
      must(["ip", "-n", br, "link", "set", `v${h.index}`, "master", "br0", "up"]);
      must(["ip", "-n", h.ns, "addr", "add", `${h.ip}/${SUBNET.bits}`, "dev", h.dev]);
      must(["ip", "-n", h.ns, "link", "set", h.dev, "up"]);
    }
    must(["ip", "link", "add", topo.driverDev, "type", "veth", "peer", "name", "vd", "netns", br]);
    must(["ip", "-n", br, "link", "set", "vd", "master", "br0", "up"]);
    // No IPv6 on the driver's interface: nothing of the root namespace leaks onto the bridge.
    const v6 = `/proc/sys/net/ipv6/conf/${topo.driverDev}/disable_ipv6`;
    if (existsSync(v6)) writeFileSync(v6, "1");
    must(["ip", "addr", "add", `${DRIVER_IP}/${SUBNET.bits}`, "dev", topo.driverDev]);
    must(["ip", "link", "set", topo.driverDev, "up"]);
  } catch (err) {
    destroyHosts(topo);
    throw err;
  }
  return topo;
}

/** Process ids living in a namespace (only ever processes this test started there). */
export function pidsIn(ns: string): number[] {
  return run(["ip", "netns", "pids", ns])
    .stdout.split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

/** SIGKILL every process in a namespace, by pid. */
export function killAllIn(ns: string): number[] {
  const pids = pidsIn(ns);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return pids;
}

/** Remove everything of `topo`: processes in its namespaces, the driver's veth, the namespaces, the folders. Idempotent. */
export function destroyHosts(topo: Topology): void {
  const names = [...topo.hosts.map((h) => h.ns), topo.bridgeNs];
  const existing = new Set(run(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]));
  for (const ns of names) if (existing.has(ns)) killAllIn(ns);
  run(["ip", "link", "del", topo.driverDev]);
  for (const ns of names) if (existing.has(ns)) run(["ip", "netns", "del", ns]);
  if (topo.dataRoot) rmSync(topo.dataRoot, { recursive: true, force: true });
  rmSync(path.join(REGISTRY, `${topo.tag}.json`), { force: true });
  if (live === topo) {
    live = undefined;
    process.off("exit", onExit);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** What the registry keeps per run: the test process (pid and start time, against pid reuse) and the run's tag and folder. */
interface RegistryEntry {
  pid: number;
  started: string;
  tag: string;
  dataRoot?: string;
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or "" if it is gone. */
function startTimeOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

function isAlive(e: RegistryEntry): boolean {
  return startTimeOf(e.pid) === e.started;
}

function registryEntries(): RegistryEntry[] {
  if (!existsSync(REGISTRY)) return [];
  return readdirSync(REGISTRY).flatMap((file) => {
    try {
      const e = JSON.parse(readFileSync(path.join(REGISTRY, file), "utf8")) as RegistryEntry;
      return /^[0-9a-z]{6}$/.test(e.tag) && Number.isInteger(e.pid) ? [e] : [];
    } catch {
      return [];
    }
  });
}

/** Runs of this test whose process is still alive (this one included, once it has created its hosts). */
function liveRuns(): RegistryEntry[] {
  return registryEntries().filter(isAlive);
}

/** Tear down the topologies of earlier runs whose test process is gone (e.g. killed with SIGKILL). */
function removeStale(): void {
  const namespaces = run(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]);
  for (const entry of registryEntries()) {
    if (isAlive(entry)) continue;
    const prefix = `ms-${entry.tag}-`;
    const hostNs = namespaces.filter((ns) => ns.startsWith(prefix) && ns !== `${prefix}br`);
    console.log(`netns: removing leftovers of an earlier run (tag ${entry.tag}, pid ${entry.pid} gone)`);
    destroyHosts({
      tag: entry.tag,
      hosts: hostNs.map((ns, index) => ({ index, ns, dev: "eth0", ip: "", dataDir: "" })),
      bridgeNs: `${prefix}br`,
      driverDev: `${prefix}d`,
      // Only ever a folder this code made under the temp folder.
      dataRoot: entry.dataRoot?.startsWith(path.join(os.tmpdir(), `meshstore-netns-${entry.tag}-`)) ? entry.dataRoot : "",
    });
  }
}

// ---------- partitions ----------

function iptables(ns: string, args: string[]): void {
  must(["ip", "netns", "exec", ns, tool("iptables")!, "-w", "5", ...args]);
}

/**
 * Cut every host of `a` off from every host of `b`, both ways: DROP rules on INPUT and
 * OUTPUT inside each namespace for the other side's addresses. The driver's address is
 * never dropped, so the test keeps talking to every host.
 */
export function cut(topo: Topology, a: number[], b: number[]): void {
  const block = (from: number[], to: number[]) => {
    for (const i of from) {
      for (const j of to) {
        const ip = topo.hosts[j].ip;
        iptables(topo.hosts[i].ns, ["-A", "INPUT", "-s", ip, "-j", "DROP"]);
        iptables(topo.hosts[i].ns, ["-A", "OUTPUT", "-d", ip, "-j", "DROP"]);
      }
    }
  };
  block(a, b);
  block(b, a);
}

/** Remove every partition rule (the test owns all rules in these namespaces). */
export function healAll(topo: Topology): void {
  for (const h of topo.hosts) {
    iptables(h.ns, ["-F", "INPUT"]);
    iptables(h.ns, ["-F", "OUTPUT"]);
  }
}
