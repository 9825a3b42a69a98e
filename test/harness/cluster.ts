// In-process cluster harness: N real peers in one Bun process, each with its own temp
// data folder, identity and ports (port 0), talking real libp2p over TCP on 127.0.0.1.
// A test can stop, kill, restart, add and partition peers. `withCluster` always tears
// down and, only when the test fails, prints every peer's log lines and the seed. Every
// line also goes to the suite-wide secret check (leak-check.ts), with the mesh key and
// any admin key a peer made.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { PeerView } from "../../src/api/status.ts";
import type { MembershipConfig, PeerConfigInput, RepairConfig } from "../../src/config.ts";
import { startPeer, type Peer } from "../../src/peer.ts";
import type { LogLevel } from "../../src/util/log.ts";
import { TEST_ADMIN } from "./credentials.ts";
import { suiteLeaks } from "./leak-check.ts";
import { mulberry32, seedFromEnv } from "./random.ts";
import { freePort } from "./ports.ts";
import { removeInBackground } from "./cleanup.ts";
import { waitFor } from "./wait.ts";
import { startSlowLink, type LinkShape, type SlowLink } from "./slow-link.ts";

/** Fast membership timings for tests (real protocol, short intervals). */
export const TEST_MEMBERSHIP: Partial<MembershipConfig> = {
  probeIntervalMs: 200,
  probeTimeoutMs: 150,
  suspectAfterMisses: 1,
  deadAfterMs: 1500,
  syncEveryProbes: 10,
  deadProbeEveryProbes: 3,
  discoveryIntervalMs: 5000,
};

/** Log levels, most verbose first (as src/util/log.ts orders them). */
const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Fast repair timings for tests. */
export const TEST_REPAIR: Partial<RepairConfig> = {
  scanIntervalMs: 300,
  gcIntervalMs: 500,
  gcGraceMs: 2000,
  scrubIntervalMs: 1000,
  tombstoneTtlMs: 60_000,
};

/** Options for a test cluster. */
export interface ClusterOptions {
  /** How peer i joins: through the previous peer (a chain) or through peer 0. */
  topology?: "chain" | "star";
  seed?: number;
  rf?: number;
  membership?: Partial<MembershipConfig>;
  /** Extra config for every peer. */
  config?: PeerConfigInput;
  /** Put every peer behind a slow, lossy link (slow-link.ts): all its p2p traffic crosses it. */
  link?: LinkShape;
}

/** One peer slot of the cluster; survives restarts (same folder, same id). */
export interface TestPeer {
  readonly index: number;
  readonly dataDir: string;
  /** The running peer, or undefined while stopped. */
  handle?: Peer;
  /** Stable across restarts. */
  id: string;
  readonly logs: string[];
  bootstrapIndex?: number;
  /** With a shaped link: the peer's own p2p port and the relay in front of it (kept across restarts). */
  shaped?: { p2pPort: number; link: SlowLink };
}

/** A running in-process cluster. */
export class Cluster {
  readonly peers: TestPeer[] = [];
  readonly seed: number;
  readonly random: () => number;
  private readonly root: string;
  private groups: number[][] | undefined;

  constructor(private readonly opts: ClusterOptions = {}) {
    this.seed = opts.seed ?? seedFromEnv();
    this.random = mulberry32(this.seed);
    this.root = mkdtempSync(path.join(os.tmpdir(), "meshstore-cluster-"));
  }

  /** Start `n` peers, each joining per the topology; resolves once all are started (not yet converged). */
  async start(n: number): Promise<this> {
    for (let i = 0; i < n; i++) {
      const boot = i === 0 ? undefined : this.opts.topology === "star" ? 0 : i - 1;
      await this.add(boot);
    }
    return this;
  }

  /** Add one peer joining through peer `bootstrapIndex` (none: a new mesh). */
  async add(bootstrapIndex?: number): Promise<TestPeer> {
    const index = this.peers.length;
    const slot: TestPeer = { index, dataDir: path.join(this.root, `peer-${index}`), id: "", logs: [], bootstrapIndex };
    this.peers.push(slot);
    await this.launch(slot);
    return slot;
  }

  /** The running handle of peer i (throws if it is stopped). */
  peer(i: number): Peer {
    const h = this.peers[i]?.handle;
    if (!h) throw new Error(`peer ${i} is not running`);
    return h;
  }

  /** Indexes of running peers. */
  running(): number[] {
    return this.peers.filter((p) => p.handle).map((p) => p.index);
  }

  /** Graceful stop of peer i. */
  async stop(i: number): Promise<void> {
    const h = this.peers[i].handle;
    this.peers[i].handle = undefined;
    await h?.stop();
  }

  /** Abrupt stop of peer i: no goodbyes, sockets dropped. */
  async kill(i: number): Promise<void> {
    const h = this.peers[i].handle;
    this.peers[i].handle = undefined;
    await h?.kill();
  }

  /** Restart peer i with its data folder, joining through `via` (default: any running peer). */
  async restart(i: number, via?: number): Promise<TestPeer> {
    const slot = this.peers[i];
    if (slot.handle) await this.stop(i);
    slot.bootstrapIndex = via ?? this.running()[0];
    await this.launch(slot);
    return slot;
  }

  /** Cut the mesh into groups of peer indexes; links between groups drop. */
  async partition(groups: number[][]): Promise<void> {
    this.groups = groups;
    await this.applyPartition();
  }

  /** Remove any partition. */
  async heal(): Promise<void> {
    this.groups = undefined;
    await Promise.all(this.running().map((i) => this.peer(i).testHooks.partition([])));
  }

  /** Poll `check` until it returns true; throws with `what` after `timeoutMs`. */
  waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 100): Promise<number> {
    return waitFor(what, check, timeoutMs, everyMs);
  }

  /** GET a JSON route of peer i over real HTTP. */
  async getJson<T = any>(i: number, route: string): Promise<T> {
    const res = await fetch(this.peer(i).httpUrl + route);
    if (!res.ok) throw new Error(`GET ${route} on peer ${i}: ${res.status}`);
    return (await res.json()) as T;
  }

  /** Peer i's view through `/cluster/peers`: member id -> state. */
  async viewOf(i: number): Promise<Map<string, string>> {
    const body = await this.getJson<PeerView>(i, "/cluster/peers");
    return new Map([[body.self.id, "alive"], ...body.peers.map((p) => [p.id, p.state] as [string, string])]);
  }

  /** True when every running peer in `observers` sees each peer of `targets` in `state`. */
  async allSee(observers: number[], targets: number[], state: "alive" | "suspect" | "dead" | "suspect-or-dead"): Promise<boolean> {
    for (const o of observers) {
      const view = await this.viewOf(o);
      for (const t of targets) {
        const s = view.get(this.peers[t].id);
        const ok = state === "suspect-or-dead" ? s === "suspect" || s === "dead" : s === state;
        if (!ok) return false;
      }
    }
    return true;
  }

  /** Every peer's buffered log, labelled. */
  dumpLogs(): string {
    return this.peers.map((p) => `----- peer ${p.index} (${p.id.slice(-6)}) -----\n${p.logs.join("\n")}`).join("\n");
  }

  /**
   * Stop every peer and delete the temp folders. Safe to call twice. The folders are removed
   * in the background (cleanup.ts): nothing uses them once the peers are stopped.
   */
  async teardown(): Promise<void> {
    await Promise.all(this.running().map((i) => this.kill(i).catch(() => {})));
    await Promise.all(this.peers.map((p) => p.shaped?.link.close()));
    removeInBackground(this.root);
  }

  /** The cluster's mesh key: peer 0 creates it in its folder at its first start, as a new mesh's first peer does, and the others join with it. */
  get meshKeyFile(): string {
    return path.join(this.root, "peer-0", "mesh.key");
  }

  private async launch(slot: TestPeer): Promise<void> {
    const boot = slot.bootstrapIndex === undefined ? [] : this.peer(slot.bootstrapIndex).multiaddrs();
    const admin = this.opts.config?.admin ?? TEST_ADMIN;
    suiteLeaks.registerKey(admin, true);
    const shown = LEVELS.indexOf((process.env.MESH_TEST_LOG as LogLevel) || "info");
    const label = `p${slot.index}`;
    if (this.opts.link && !slot.shaped) {
      const p2pPort = await freePort();
      slot.shaped = { p2pPort, link: await startSlowLink(p2pPort, this.opts.link, this.seed + slot.index * 104729) };
    }
    const handle = await startPeer({
      ...this.opts.config,
      dataDir: slot.dataDir,
      p2pListen: [`/ip4/127.0.0.1/tcp/${slot.shaped?.p2pPort ?? 0}`],
      p2pAnnounce: slot.shaped ? [`/ip4/127.0.0.1/tcp/${slot.shaped.link.port}`] : undefined,
      http: { host: "127.0.0.1", port: 0 },
      s3: { host: "127.0.0.1", port: 0 },
      bootstrap: boot,
      meshKeyFile: slot.index === 0 ? undefined : this.meshKeyFile,
      rf: this.opts.rf ?? 3,
      repairDelayMs: this.opts.config?.repairDelayMs ?? 2000,
      membership: { ...TEST_MEMBERSHIP, ...this.opts.membership },
      repair: { ...TEST_REPAIR, ...this.opts.config?.repair },
      logLabel: label,
      // Every level reaches the secret check (debug lines are few); the peer's own log keeps
      // MESH_TEST_LOG's level and up (info by default, the CLI's default).
      logLevel: "debug",
      logSink: (lvl, line) => {
        suiteLeaks.capture(label, line);
        if (LEVELS.indexOf(lvl) < shown) return;
        slot.logs.push(line);
        if (slot.logs.length > 5000) slot.logs.splice(0, 1000);
      },
      random: mulberry32(this.seed + slot.index * 7919),
      admin,
    });
    if (handle.createdAdminKey) suiteLeaks.registerKey(handle.createdAdminKey, true);
    if (slot.index === 0 && existsSync(this.meshKeyFile)) suiteLeaks.registerMeshKey(readFileSync(this.meshKeyFile, "utf8"));
    if (slot.id && slot.id !== handle.peerId) throw new Error(`peer ${slot.index} came back with a new id`);
    slot.id = handle.peerId;
    slot.handle = handle;
    if (this.groups) await this.applyPartition();
  }

  private async applyPartition(): Promise<void> {
    const groups = this.groups ?? [];
    for (const i of this.running()) {
      const mine = groups.find((g) => g.includes(i)) ?? [i];
      const blocked = this.peers.filter((p) => !mine.includes(p.index) && p.id).map((p) => p.id);
      await this.peer(i).testHooks.partition(blocked);
    }
  }
}

/** Start `n` peers for a whole test file and wait until every peer sees every other alive. */
export async function startConverged(n: number, opts: ClusterOptions = {}): Promise<Cluster> {
  const cluster = await new Cluster(opts).start(n);
  const all = cluster.running();
  await cluster.waitFor("all alive", () => cluster.allSee(all, all, "alive"));
  return cluster;
}

/**
 * Tear down a file's cluster (no-op if it never started); MESH_TEST_DUMP=1 prints the logs.
 * What the peers logged while stopping is checked for secrets here, so that a leak counts
 * against this file rather than the next one's first test.
 */
export async function teardownCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  if (process.env.MESH_TEST_DUMP) console.error(cluster.dumpLogs());
  await cluster.teardown();
  suiteLeaks.assertNoLeaks("while tearing down the cluster");
}

/**
 * Run `body` against a fresh cluster of `n` peers. Always tears down; on failure prints
 * the seed and every peer's log, then rethrows.
 */
export async function withCluster<T>(n: number, opts: ClusterOptions, body: (c: Cluster) => Promise<T>): Promise<T> {
  const cluster = new Cluster(opts);
  try {
    await cluster.start(n);
    return await body(cluster);
  } catch (err) {
    console.error(`\ncluster test failed (seed ${cluster.seed}; rerun with MESH_TEST_SEED=${cluster.seed})\n${cluster.dumpLogs()}\n`);
    throw err;
  } finally {
    await cluster.teardown();
  }
}
