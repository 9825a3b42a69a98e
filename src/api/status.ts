// What `/cluster/peers` and `/cluster/status` answer: their types (the test harness imports
// them rather than redeclaring them) and how they are put together from the peer's parts.
import { statfs } from "node:fs/promises";
import pkg from "../../package.json" with { type: "json" };
import type { LifecycleStatus } from "../lifecycle/expiry.ts";
import type { MemberState, MemberTable } from "../membership/member-table.ts";
import type { Swim } from "../membership/swim.ts";
import { noiseCryptoName } from "../net/noise-crypto.ts";
import type { Rpc } from "../net/rpc.ts";
import type { BadReplica, ChunkClient } from "../objects/chunk-client.ts";
import type { Placement } from "../placement/placement.ts";
import { copiesOf, type Copies, type QuorumRule } from "../placement/quorum-rule.ts";
import type { MultipartExpiryStatus } from "../repair/multipart-expiry.ts";
import type { RetentionStatus } from "../changes/retention.ts";
import type { RepairService, RepairStatus } from "../repair/repair-service.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { Startable } from "../util/lifecycle.ts";
import type { ClientLimits } from "./client-limits.ts";
import type { StreamsStatus } from "../changes/stream.ts";
import type { WriteThroughStats } from "../remotes/write-through.ts";
import type { CacheStats } from "../cache/chunk-cache.ts";

/** A member as `/cluster/peers` shows it. */
export interface PeerInfo {
  id: string;
  /** Its p2p addresses (left out for callers without a token). */
  addrs: string[];
  /** Its native API's advertised URL, once it has told. */
  http?: string;
  state: MemberState;
  /** Handing its data to the others before it stops: it owns nothing new and quorums do not count it. */
  draining: boolean;
  /** When this peer last heard from it directly (its own record: now). */
  lastSeenMs: number;
  incarnation: number;
}

/** `/cluster/peers`: this peer's own record and its view of the others, sorted by id. */
export interface PeerView {
  self: PeerInfo;
  peers: PeerInfo[];
}

/** The member view of `table`, as `/cluster/peers` answers it. */
export function peerView(table: MemberTable, now = Date.now()): PeerView {
  const info = (m: { id: string; addrs: string[]; http?: string; state: MemberState; inc: number; draining?: boolean }, lastSeenMs: number): PeerInfo => ({
    id: m.id,
    addrs: m.addrs,
    http: m.http,
    state: m.state,
    draining: m.draining === true,
    lastSeenMs,
    incarnation: m.inc,
  });
  return {
    self: info(table.self, now),
    peers: table
      .others()
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((m) => info(m, m.lastSeenMs)),
  };
}

/** `/cluster/status`: counts an operator (and the tests) read. */
// A type, not an interface: the route's response schema is a record, which an interface does not fit.
export type ClusterStatus = RepairStatus & {
  workers: { multipartExpiry?: MultipartExpiryStatus; eventRetention?: RetentionStatus; lifecycle?: LifecycleStatus };
  peerId: string;
  /** The meshstore version this peer runs (package.json). */
  version: string;
  rf: number;
  /**
   * The placement ring copies go to (alive members, and the recently dead, minus those
   * draining): each member's fraction of the key space as one of its rf owners, sorted by
   * id; the shares sum to min(rf, members).
   */
  ring: { owners: ReadonlyArray<{ id: string; share: number }> };
  /** Members by state, this peer included (as alive). */
  peers: { alive: number; suspect: number; dead: number; known: number };
  noiseCrypto: string;
  rpc: { inboundBodyBytes: number };
  membership: { messagesSent: number; probesStarted: number; messagesPerSecond: number; healthScore: number };
  /** Local chunk files, as held now (the chunk store's live counts), and the data folder's file system (checked every few seconds; 0 until first checked). */
  storage: { chunks: number; bytes: number; diskTotalBytes: number; diskFreeBytes: number };
  badReplicas: BadReplica[];
  quorum: QuorumRule;
  /** Copies of each chunk this mesh can keep now; `warning` while fewer members than RF. */
  copies: Copies;
  meshKey: { fingerprint: string };
  limits: ReturnType<ClientLimits["status"]>;
  /** Live change event streams (SSE and ListenBucketNotification) this peer serves. */
  eventStreams?: StreamsStatus;
  /** Write-through buckets' queues as this peer applies them (src/remotes/write-through.ts). */
  writeThrough?: WriteThroughStats;
  /** The chunk cache's tiers (src/cache/chunk-cache.ts): bytes held, bound, hits, misses, hit ratio; `disk` null when off. */
  cache?: CacheStats;
  draining: boolean;
  uptimeSeconds: number;
  process: { pid: number; rssBytes: number };
};

/** The parts `/cluster/status` reads. */
export interface StatusSources {
  peerId: string;
  rf: number;
  table: MemberTable;
  rpc: Pick<Rpc, "inboundBytes">;
  swim: Pick<Swim, "messagesSent" | "probesStarted" | "healthScore">;
  chunkStore: Pick<ChunkStore, "counts" | "stats">;
  chunks: Pick<ChunkClient, "badReplicas">;
  repair: Pick<RepairService, "status">;
  placement: Pick<Placement, "quorum" | "shares">;
  meshKeyFingerprint: string;
  limits: Pick<ClientLimits, "status">;
  /** The data folder, for its file system's total and free bytes. */
  dataDir?: string;
  /** The multipart expiry worker's figures (`workers.multipartExpiry`). */
  multipartExpiry?(): MultipartExpiryStatus;
  /** The change event log's retention worker's figures (`workers.eventRetention`). */
  eventRetention?(): RetentionStatus;
  /** The bucket lifecycle worker's figures (`workers.lifecycle`). */
  lifecycle?(): LifecycleStatus;
  /** The live event streams' figures (`eventStreams`). */
  eventStreams?(): StreamsStatus;
  /** The write-through worker's figures (`writeThrough`). */
  writeThrough?(): WriteThroughStats;
  /** The chunk cache's figures (`cache`). */
  cache?(): CacheStats;
}

/** Puts `/cluster/status` together. */
export interface StatusReporter extends Startable {
  status(): ClusterStatus;
}

/** How often the chunk folder is rescanned, so that the live counts also see files changed behind the store's back. */
const STORAGE_RESCAN_MS = 60_000;
/** How often the data folder's free space is checked. */
const DISK_CHECK_MS = 5000;

/** Create the status reporter of one peer. */
export function createStatusReporter(src: StatusSources): StatusReporter {
  let started = Date.now();
  let rescan: ReturnType<typeof setInterval> | undefined;
  let diskTimer: ReturnType<typeof setInterval> | undefined;
  const disk = { diskTotalBytes: 0, diskFreeBytes: 0 };
  const checkDisk = async () => {
    if (!src.dataDir) return;
    try {
      const fs = await statfs(src.dataDir);
      disk.diskTotalBytes = fs.blocks * fs.bsize;
      disk.diskFreeBytes = fs.bavail * fs.bsize;
    } catch {
      // keep the last figures
    }
  };
  return {
    async start() {
      started = Date.now();
      rescan = setInterval(() => void src.chunkStore.stats().catch(() => {}), STORAGE_RESCAN_MS);
      rescan.unref();
      await checkDisk();
      diskTimer = setInterval(() => void checkDisk(), DISK_CHECK_MS);
      diskTimer.unref();
    },
    stop() {
      clearInterval(rescan);
      clearInterval(diskTimer);
    },
    status() {
      const { table, swim } = src;
      const others = table.others();
      const count = (s: MemberState) => others.filter((m) => m.state === s).length;
      const uptimeS = Math.max(1, (Date.now() - started) / 1000);
      const repair = src.repair.status();
      return {
        peerId: src.peerId,
        version: pkg.version,
        rf: src.rf,
        // Computed once per ring (ring.ts keeps it): status is polled every few seconds.
        ring: { owners: src.placement.shares() },
        peers: { alive: count("alive") + 1, suspect: count("suspect"), dead: count("dead"), known: others.length + 1 },
        noiseCrypto: noiseCryptoName,
        rpc: { inboundBodyBytes: src.rpc.inboundBytes },
        membership: { messagesSent: swim.messagesSent, probesStarted: swim.probesStarted, messagesPerSecond: +(swim.messagesSent / uptimeS).toFixed(2), healthScore: swim.healthScore },
        storage: { ...src.chunkStore.counts(), ...disk },
        badReplicas: src.chunks.badReplicas,
        ...repair,
        workers: { ...repair.workers, ...(src.multipartExpiry && { multipartExpiry: src.multipartExpiry() }), ...(src.eventRetention && { eventRetention: src.eventRetention() }), ...(src.lifecycle && { lifecycle: src.lifecycle() }) },
        quorum: src.placement.quorum(),
        copies: copiesOf(src.placement.quorum()),
        meshKey: { fingerprint: src.meshKeyFingerprint },
        limits: src.limits.status(),
        ...(src.eventStreams && { eventStreams: src.eventStreams() }),
        ...(src.writeThrough && { writeThrough: src.writeThrough() }),
        ...(src.cache && { cache: src.cache() }),
        draining: table.self.draining === true,
        uptimeSeconds: Math.round(uptimeS),
        process: { pid: process.pid, rssBytes: process.memoryUsage.rss() },
      };
    },
  };
}
