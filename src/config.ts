// Typed peer configuration. Every field has a default; the CLI flags and the MESH_*
// environment variables map onto the same object (flags win over the environment).
import { multiaddr } from "@multiformats/multiaddr";
import { parseArgs } from "node:util";
import path from "node:path";
import { ConfigError, UsageError } from "./errors.ts";
import { ACCESS_KEY_ID_RE } from "./metadata/keys.ts";
import type { RpcLimits } from "./net/rpc.ts";
import type { UploadRecordsConfig } from "./uploads/records.ts";
import type { LogLevel, LogSink } from "./util/log.ts";
import type { Rate } from "./util/token-buckets.ts";

/** File in the data folder holding the admin key a new mesh created (mode 0600). */
export const ADMIN_KEY_FILE = "admin-key.json";
/** The peer's p2p addresses, one per line, written at each start by `node` (what other peers --bootstrap through). */
export const P2P_ADDRESS_FILE = "p2p-address";

/** A host and TCP port; port 0 means "pick a free port". */
export interface HostPort {
  host: string;
  port: number;
}

/** Liveness detection (SWIM-style probing and gossip). All times in milliseconds. */
export interface MembershipConfig {
  /** How often this peer probes one other member. */
  probeIntervalMs: number;
  /** How long a direct or indirect probe may take before it counts as missed. */
  probeTimeoutMs: number;
  /** How many other members are asked to probe a member that missed a direct probe. */
  indirectProbes: number;
  /** Consecutive missed probes before a member is suspected. */
  suspectAfterMisses: number;
  /** How long a member stays suspect before it is declared dead (`--dead-after`). */
  deadAfterMs: number;
  /** At most this many membership updates ride on each message. */
  maxGossipPerMessage: number;
  /** Each update is retransmitted `gossipMultiplier * ceil(log2(N + 1))` times. */
  gossipMultiplier: number;
  /** Every this many probe intervals, exchange the full member list with one member (push-pull). */
  syncEveryProbes: number;
  /** Every this many probe intervals, probe one dead member to notice it came back. */
  deadProbeEveryProbes: number;
  /** How often to look up the mesh's members in the DHT. */
  discoveryIntervalMs: number;
}

/** Self-healing workers. All times in milliseconds. */
export interface RepairConfig {
  /** How often each peer checks its chunks and index shards against the ring. */
  scanIntervalMs: number;
  /** Chunk transfers a repair pass runs at once. */
  concurrency: number;
  /** Cap on repair and rebalance traffic this peer sends, bytes per second. */
  bytesPerSecond: number;
  /** Cap on how fast the scrubber re-reads local chunks, bytes per second. */
  scrubBytesPerSecond: number;
  /** Pause between scrub passes. */
  scrubIntervalMs: number;
  /** How often unreferenced chunks are looked for. */
  gcIntervalMs: number;
  /** A chunk no manifest references is deleted after it has been seen unreferenced this long. */
  gcGraceMs: number;
  /** Delete markers older than this are dropped (a replica away longer could resurrect data). */
  tombstoneTtlMs: number;
  /** Incomplete multipart uploads older than this are aborted (`--multipart-expiry`); 0: never. */
  multipartExpiryMs: number;
}

/** What one client may cost this peer (both APIs together). Rates of 0 turn a limit off. */
export interface LimitsConfig {
  /** Requests served at once (`--max-inflight`); beyond it: S3 503 SlowDown, native 429. `/health` is never refused. */
  maxInflight: number;
  /**
   * A request body that sends nothing for this long fails with RequestTimeout (`--body-timeout`);
   * it also bounds how long a request's headers may take, and how long a download may wait
   * for its client to read.
   */
  bodyIdleMs: number;
  /** Bytes of upload buffers across all requests (`--upload-memory`, in MiB); beyond it uploads wait in line. */
  uploadMemoryBytes: number;
  /** How long an upload waits in that line before it is refused with SlowDown. */
  uploadMemoryWaitMs: number;
  /** Requests per access key (`--rate-per-key`). */
  perKey: Rate;
  /** Requests per client address, an IPv6 client by its /64 (`--rate-per-ip`). */
  perIp: Rate;
  /** Failed authentications per client address (`--rate-auth-fail`); once spent, that address is refused until it refills. */
  authFailures: Rate;
  /**
   * Apply the per-address limits to loopback clients too. Off by default: the APIs listen
   * on loopback unless told otherwise, and behind a reverse proxy on the same host every
   * client shares one loopback address, so those limits would throttle everyone at once.
   */
  limitLoopback: boolean;
}

/** Everything a peer needs to start. */
export interface PeerConfig {
  /** The peer's folder: identity key, chunks, index. */
  dataDir: string;
  /** libp2p listen multiaddrs. */
  p2pListen: string[];
  /** Multiaddrs to announce instead of the listen ones (a relay or NAT in front); embedding only. */
  p2pAnnounce?: string[];
  /** The native API's URL as other hosts reach it (`--advertise-http`); derived when unset. */
  advertiseHttp?: string;
  /** The S3 API's URL as other hosts reach it (`--advertise-s3`); derived when unset. */
  advertiseS3?: string;
  /** Native HTTP API, dashboard, metrics. */
  http: HostPort;
  /** S3-compatible API. */
  s3: HostPort;
  /** Multiaddrs (with /p2p/<id>) of peers to join through. */
  bootstrap: string[];
  /** The mesh key file (`--mesh-key`); default: `mesh.key` in the data folder, created by a new mesh's first peer. */
  meshKeyFile?: string;
  /** Replication factor. */
  rf: number;
  /** Name of the mesh: peers provide and look up a DHT key derived from it. */
  meshName: string;
  /** How long after a peer is declared dead its data is re-replicated. */
  repairDelayMs: number;
  /** Objects are cut into chunks of this many bytes. */
  chunkSize: number;
  /** Objects up to this size live inside their manifest instead of in chunks. */
  inlineMaxBytes: number;
  /** Number of object-index shards; one bucket's keys spread over all of them. */
  indexShards: number;
  /** Objects per second a peer indexes when a search field is added to a bucket that has some (src/search/indexer.ts). */
  searchBackfillPerSecond: number;
  /** The memory cache, in bytes (`--cache-memory` MiB; 0: off): 1/8 manifests under lease (src/cache/manifest-cache.ts), 7/8 chunks (src/cache/chunk-cache.ts). */
  cacheMemoryBytes: number;
  /** The chunk cache's disk tier under <data>/cache, in bytes (`--cache-disk` MiB; 0: off). */
  cacheDiskBytes: number;
  /** The change event log (src/changes/). */
  events: EventsConfig;
  /** Require credentials on the native and S3 APIs (`--insecure-no-auth` turns this off). */
  auth: boolean;
  /** Serve `/metrics` to anyone who can reach the native port (`--metrics-public`); otherwise it needs an admin token. */
  metricsPublic: boolean;
  /** Log one line per HTTP request (`--access-log`): API, operation, status, bytes, duration, request id. */
  accessLog: boolean;
  /** On a graceful stop, how long requests in flight may take before they are cut off (`--stop-grace`). */
  stopGraceMs: number;
  /** An admin key to (re)assert at start (MESH_ADMIN_KEY / MESH_ADMIN_SECRET). */
  admin?: { accessKeyId: string; secretAccessKey: string };
  membership: MembershipConfig;
  repair: RepairConfig;
  limits: LimitsConfig;
  /** Label for log lines (defaults to the short peer id). */
  logLabel?: string;
  /** Lowest level logged (defaults to MESH_LOG, else info). */
  logLevel?: LogLevel;
  /** Where log lines go (defaults to stderr). */
  logSink?: LogSink;
  /** Source of randomness for protocol choices (tests pass a seeded one). */
  random?: () => number;
  /** Limits on inbound RPC streams (defaults: DEFAULT_RPC_LIMITS in net/rpc.ts; tests shorten the timeouts). */
  rpcLimits?: Partial<RpcLimits>;
  /** Upload progress record timings (defaults: DEFAULT_UPLOAD_RECORDS in uploads/records.ts; tests shorten them). */
  uploads?: Partial<UploadRecordsConfig>;
  /** Bucket lifecycle rules (src/lifecycle/): how long a day is and how often they are applied (defaults: DEFAULT_LIFECYCLE; tests shorten the day). */
  lifecycle?: Partial<LifecycleConfig>;
}

/** How the lifecycle worker applies buckets' lifecycle rules (src/lifecycle/expiry.ts). */
export interface LifecycleConfig {
  /** The length of a day the rules count in (S3's days; a test makes it a second). */
  dayMs: number;
  /** Pause between passes. */
  intervalMs: number;
  /** Most actions (expirations, version removals, aborts) one pass of one peer takes; the next pass goes on. */
  maxActionsPerPass: number;
  /**
   * Called after the worker judged a current object expired and before its conditional delete
   * (tests overwrite the object here, to see the delete refused). Never set outside tests.
   */
  beforeExpire?: (bucket: string, key: string) => Promise<void>;
}

/** Real days, a pass every 5 minutes (expiry is due at a day boundary, so a pass a few minutes late loses nothing), 1000 actions per pass. */
export const DEFAULT_LIFECYCLE: LifecycleConfig = { dayMs: 86_400_000, intervalMs: 5 * 60_000, maxActionsPerPass: 1000 };

/** The lifecycle settings of a config, defaults filled in. */
export function lifecycleConfig(cfg: Pick<PeerConfig, "lifecycle">): LifecycleConfig {
  return { ...DEFAULT_LIFECYCLE, ...stripUndefined(cfg.lifecycle ?? {}) };
}

/** How the change event log keeps and serves events (src/changes/). */
export interface EventsConfig {
  /** Events older than this leave the log. */
  retentionMs: number;
  /** Beyond this many events in one shard, the oldest leave the log. */
  maxPerShard: number;
  /** Pause between retention passes (src/changes/retention.ts): how long an event may outstay either limit. */
  retentionIntervalMs: number;
  /** How far behind its clock a replica lets readers go (src/changes/gate.ts): a write's time from its stamp to its replicas. */
  settleMs: number;
  /** First wait before a failed webhook delivery is retried; it doubles up to maxRetryMs. */
  retryBaseMs: number;
  maxRetryMs: number;
  /** A live stream (SSE) sends a comment ping after this long without anything else, so proxies and clients see it alive. */
  streamPingMs: number;
  /** How often a live stream that has caught up reads the log again. */
  streamPollMs: number;
  /** Most live streams (SSE and ListenBucketNotification) one peer serves at once; more are refused with 503 TooManyStreams. */
  maxStreams: number;
  /** How often a webhook target with nothing to send looks for new events (src/changes/delivery.ts). */
  webhookPollMs: number;
  /** How often each peer reads the webhook targets again from its replica of the buckets shard. */
  webhookRefreshMs: number;
  /** How long a receiver has to answer a delivery POST before it counts as failed. */
  webhookTimeoutMs: number;
  /** First wait before a write-through bucket's failed remote writes are tried again (src/remotes/write-through.ts); it doubles up to writeThroughMaxRetryMs. */
  writeThroughRetryBaseMs: number;
  writeThroughMaxRetryMs: number;
  /** Remote puts and deletes one write-through bucket has under way at once on one peer. */
  writeThroughConcurrency: number;
}

/** The event log's defaults: a week or a million events per shard, whichever comes first. */
export const DEFAULT_EVENTS: EventsConfig = {
  retentionMs: 7 * 24 * 3600_000,
  maxPerShard: 1_000_000,
  retentionIntervalMs: 60_000,
  settleMs: 3000,
  retryBaseMs: 1000,
  maxRetryMs: 5 * 60_000,
  streamPingMs: 10_000,
  streamPollMs: 500,
  maxStreams: 256,
  webhookPollMs: 1000,
  webhookRefreshMs: 3000,
  webhookTimeoutMs: 10_000,
  writeThroughRetryBaseMs: 1000,
  writeThroughMaxRetryMs: 5 * 60_000,
  writeThroughConcurrency: 4,
};

/** A partial config: any field may be omitted and gets its default. */
export type PeerConfigInput = Partial<Omit<PeerConfig, "membership" | "repair" | "limits" | "events">> & {
  events?: Partial<EventsConfig>;
  membership?: Partial<MembershipConfig>;
  repair?: Partial<RepairConfig>;
  limits?: Partial<LimitsConfig>;
};

/** The largest chunk size a peer may be configured with (peers also refuse larger chunks from others). */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

/** Production membership timings. */
export const DEFAULT_MEMBERSHIP: MembershipConfig = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectProbes: 2,
  suspectAfterMisses: 1,
  deadAfterMs: 10_000,
  maxGossipPerMessage: 8,
  gossipMultiplier: 3,
  syncEveryProbes: 15,
  deadProbeEveryProbes: 5,
  discoveryIntervalMs: 30_000,
};

/** Production repair settings. */
export const DEFAULT_REPAIR: RepairConfig = {
  scanIntervalMs: 10_000,
  concurrency: 4,
  bytesPerSecond: 256 * 1024 * 1024,
  scrubBytesPerSecond: 32 * 1024 * 1024,
  scrubIntervalMs: 60 * 60_000,
  gcIntervalMs: 60_000,
  gcGraceMs: 6 * 3600_000,
  tombstoneTtlMs: 7 * 24 * 3600_000,
  multipartExpiryMs: 24 * 3600_000,
};

/**
 * Production client limits: far above what one well-behaved client does (a peer serves a
 * few thousand small requests a second at best), so they only ever meet floods, stalls
 * and password guessing. Bursts are twice the rate.
 */
export const DEFAULT_LIMITS: LimitsConfig = {
  maxInflight: 256,
  bodyIdleMs: 30_000,
  uploadMemoryBytes: 512 * 1024 * 1024,
  uploadMemoryWaitMs: 10_000,
  perKey: { perSecond: 1000, burst: 2000 },
  perIp: { perSecond: 2000, burst: 4000 },
  authFailures: { perSecond: 10, burst: 20 },
  limitLoopback: false,
};

/** A rate of `n` per second with a burst of twice that (0: no limit). */
export function rateOf(n: number): Rate {
  return { perSecond: n, burst: 2 * n };
}

/** The embedded defaults: one peer, data under the current folder, HTTP on loopback. */
export const DEFAULTS: Omit<PeerConfig, "membership" | "repair" | "limits" | "events"> = {
  dataDir: "./meshstore-data",
  p2pListen: ["/ip4/0.0.0.0/tcp/7400"],
  http: { host: "127.0.0.1", port: 7480 },
  s3: { host: "127.0.0.1", port: 7481 },
  bootstrap: [],
  rf: 3,
  meshName: "meshstore",
  repairDelayMs: 30_000,
  chunkSize: 4 * 1024 * 1024,
  inlineMaxBytes: 16 * 1024,
  indexShards: 32,
  searchBackfillPerSecond: 20_000,
  cacheMemoryBytes: 64 * 1024 * 1024,
  cacheDiskBytes: 0,
  auth: true,
  metricsPublic: false,
  accessLog: false,
  stopGraceMs: 5000,
};

/** Fill in defaults and validate. Throws ConfigError with a plain message. */
export function resolveConfig(input: PeerConfigInput = {}): PeerConfig {
  const cfg: PeerConfig = {
    ...DEFAULTS,
    ...stripUndefined(input),
    membership: { ...DEFAULT_MEMBERSHIP, ...stripUndefined(input.membership ?? {}) },
    repair: { ...DEFAULT_REPAIR, ...stripUndefined(input.repair ?? {}) },
    limits: { ...DEFAULT_LIMITS, ...stripUndefined(input.limits ?? {}) },
    events: { ...DEFAULT_EVENTS, ...stripUndefined(input.events ?? {}) },
  };
  cfg.dataDir = path.resolve(cfg.dataDir);
  if (!Number.isInteger(cfg.rf) || cfg.rf < 1 || cfg.rf > 16) throw new ConfigError(`rf must be a whole number from 1 to 16, got ${cfg.rf}`);
  for (const a of [...cfg.p2pListen, ...cfg.bootstrap]) parseMultiaddr(a);
  for (const b of cfg.bootstrap) {
    if (!b.includes("/p2p/")) throw new ConfigError(`bootstrap address must end with /p2p/<peer id>: ${b}`);
  }
  if (!Number.isInteger(cfg.chunkSize) || cfg.chunkSize < 4096 || cfg.chunkSize > MAX_CHUNK_SIZE) throw new ConfigError("chunk size must be from 4 KiB to 64 MiB");
  if (cfg.inlineMaxBytes < 0 || cfg.inlineMaxBytes >= cfg.chunkSize) throw new ConfigError("inline limit must be below the chunk size");
  if (!Number.isInteger(cfg.indexShards) || cfg.indexShards < 1 || cfg.indexShards > 4096) throw new ConfigError("index shards must be from 1 to 4096");
  for (const [bytes, flag] of [[cfg.cacheMemoryBytes, "--cache-memory"], [cfg.cacheDiskBytes, "--cache-disk"]] as const) {
    if (!Number.isInteger(bytes) || bytes < 0) throw new ConfigError(`${flag} must be a whole number of MiB (0: off)`);
  }
  if (!(cfg.searchBackfillPerSecond >= 1)) throw new ConfigError("the search backfill rate must be at least 1 object per second");
  if (!(cfg.events.retentionMs >= 1000)) throw new ConfigError("the event retention must be at least 1 s");
  if (!Number.isInteger(cfg.events.maxPerShard) || cfg.events.maxPerShard < 1) throw new ConfigError("the events kept per shard must be a whole number of at least 1");
  if (!(cfg.events.retentionIntervalMs >= 100)) throw new ConfigError("the pause between event retention passes must be at least 100 ms");
  if (!(cfg.events.streamPingMs >= 10 && cfg.events.streamPingMs <= 3600_000)) throw new ConfigError("the event stream ping interval must be from 10 ms to 1 hour");
  // Bounded both ways: a tight poll would turn every stream into a stream of quorum reads.
  if (!(cfg.events.streamPollMs >= 50 && cfg.events.streamPollMs <= 10_000)) throw new ConfigError("the event stream poll interval must be from 50 ms to 10 s");
  if (!Number.isInteger(cfg.events.maxStreams) || cfg.events.maxStreams < 0) throw new ConfigError("the most event streams per peer must be a whole number (0: none)");
  const { retryBaseMs, maxRetryMs, webhookPollMs, webhookRefreshMs, webhookTimeoutMs } = cfg.events;
  if (!(retryBaseMs >= 1 && maxRetryMs >= retryBaseMs)) throw new ConfigError("webhook retries need a first wait of at least 1 ms and a longest wait no shorter than it");
  const { writeThroughRetryBaseMs: wtBase, writeThroughMaxRetryMs: wtMax, writeThroughConcurrency: wtConc } = cfg.events;
  if (!(wtBase >= 1 && wtMax >= wtBase)) throw new ConfigError("write-through retries need a first wait of at least 1 ms and a longest wait no shorter than it");
  if (!(Number.isInteger(wtConc) && wtConc >= 1 && wtConc <= 64)) throw new ConfigError("write-through concurrency must be a whole number from 1 to 64");
  if (!(webhookPollMs >= 10 && webhookRefreshMs >= 10 && webhookTimeoutMs >= 100)) throw new ConfigError("webhook poll and refresh intervals must be at least 10 ms, and the delivery timeout at least 100 ms");
  if (cfg.meshKeyFile !== undefined) cfg.meshKeyFile = path.resolve(cfg.meshKeyFile);
  if (cfg.admin && (!ACCESS_KEY_ID_RE.test(cfg.admin.accessKeyId) || cfg.admin.secretAccessKey.length < 16)) {
    throw new ConfigError("MESH_ADMIN_KEY must be 16 to 64 uppercase letters and digits, and MESH_ADMIN_SECRET at least 16 characters");
  }
  for (const [flag, url] of [["--advertise-http", cfg.advertiseHttp], ["--advertise-s3", cfg.advertiseS3]] as const) {
    if (url !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(url)) throw new ConfigError(`${flag} must be a URL such as http://10.0.0.5:7480, got "${url}"`);
  }
  const l = cfg.limits;
  if (!Number.isInteger(l.maxInflight) || l.maxInflight < 1) throw new ConfigError(`max-inflight must be a whole number of at least 1, got ${l.maxInflight}`);
  if (!(l.bodyIdleMs > 0)) throw new ConfigError("body-timeout must be positive");
  if (!(l.uploadMemoryBytes >= 1024 * 1024)) throw new ConfigError("upload-memory must be at least 1 MiB");
  for (const [name, r] of [["rate-per-key", l.perKey], ["rate-per-ip", l.perIp], ["rate-auth-fail", l.authFailures]] as const) {
    if (!(r.perSecond >= 0 && r.burst >= 0) || (r.perSecond > 0 && r.burst < 1)) throw new ConfigError(`${name} must be a number of requests per second (0: no limit)`);
  }
  const expiry = cfg.repair.multipartExpiryMs;
  if (!Number.isFinite(expiry) || (expiry !== 0 && expiry < 1000)) throw new ConfigError(`multipart-expiry must be at least 1 s, or off, got ${expiry} ms`);
  const lc = lifecycleConfig(cfg);
  if (!(lc.dayMs >= 100 && lc.intervalMs >= 50)) throw new ConfigError("a lifecycle day must be at least 100 ms and the pause between lifecycle passes at least 50 ms");
  if (!(Number.isInteger(lc.maxActionsPerPass) && lc.maxActionsPerPass >= 1)) throw new ConfigError("lifecycle actions per pass must be a whole number of at least 1");
  const m = cfg.membership;
  if (m.probeTimeoutMs >= m.probeIntervalMs) throw new ConfigError("membership probe timeout must be shorter than the probe interval");
  if (!(cfg.stopGraceMs >= 0)) throw new ConfigError("stop-grace must be a number of seconds, 0 or more");
  if (m.deadAfterMs <= 0 || cfg.repairDelayMs < 0) throw new ConfigError("dead-after must be positive and repair-delay not negative");
  return cfg;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function parseMultiaddr(s: string) {
  try {
    return multiaddr(s);
  } catch {
    throw new ConfigError(`not a valid multiaddr: ${s}`);
  }
}

/** Parse "HOST:PORT" (or ":PORT", or "PORT"). */
export function parseHostPort(s: string, what: string): HostPort {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${what} must be HOST:PORT (port 0 picks a free one), got "${s}"`);
  const host = m[1] === undefined || m[1] === "" ? "127.0.0.1" : m[1].replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

function parseSeconds(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`${what} must be a number of seconds, got "${s}"`);
  return Math.round(n * 1000);
}

const AGE_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 24 * 3600_000 };

/**
 * Parse an age such as "90s", "30m", "2h", "1d" or "off" (0); a bare number is seconds.
 * With `offAllowed: false`, "off" is a ConfigError saying so (`why`: what the option does instead).
 */
export function parseAge(s: string, what: string, opts: { offAllowed?: boolean; why?: string } = {}): number {
  const offAllowed = opts.offAllowed ?? true;
  const t = s.trim().toLowerCase();
  if (t === "off") {
    if (offAllowed) return 0;
    throw new ConfigError(`${what} cannot be off${opts.why ? `: ${opts.why}` : ""}; give an age such as 2h or 7d`);
  }
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(t);
  const ms = m ? Math.round(Number(m[1]) * AGE_UNITS_MS[m[2] || "s"]) : NaN;
  if (!(ms >= 1000)) throw new ConfigError(`${what} must be an age of at least 1 s such as 90s, 30m, 2h or 1d${offAllowed ? ", or off" : ""}; got "${s}"`);
  return ms;
}

function parsePositiveInt(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${what} must be a whole number of at least 1, got "${s}"`);
  return n;
}

/** A whole number of MiB, 0 allowed (off), as bytes. */
function parseMebibytes(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || s.trim() === "") throw new ConfigError(`${what} must be a whole number of MiB (0: off), got "${s}"`);
  return n * 1024 * 1024;
}

function parseRate(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0 || s.trim() === "") throw new ConfigError(`${what} must be a number of requests per second (0: no limit), got "${s}"`);
  return n;
}

/** The `bun run node` flags, shared by the CLI's help text and parser. */
export const NODE_FLAGS = {
  data: { type: "string", env: "MESH_DATA", help: "the peer's folder: identity key, chunks, index", def: DEFAULTS.dataDir },
  p2p: { type: "string", env: "MESH_P2P", help: "libp2p listen multiaddr", def: DEFAULTS.p2pListen[0] },
  http: { type: "string", env: "MESH_HTTP", help: "native HTTP API HOST:PORT", def: "127.0.0.1:7480" },
  s3: { type: "string", env: "MESH_S3", help: "S3-compatible API HOST:PORT", def: "127.0.0.1:7481" },
  bootstrap: { type: "string", env: "MESH_BOOTSTRAP", help: "peer to join through (repeatable; env: comma-separated)", def: "none" },
  "mesh-key": { type: "string", env: "MESH_KEY_FILE", help: "the mesh's key file (required to join)", def: "mesh.key in --data; a new mesh creates it" },
  rf: { type: "string", env: "MESH_RF", help: "replication factor", def: String(DEFAULTS.rf) },
  "dead-after": { type: "string", env: "MESH_DEAD_AFTER", help: "seconds a silent peer stays suspect before it is dead", def: String(DEFAULT_MEMBERSHIP.deadAfterMs / 1000) },
  "repair-delay": { type: "string", env: "MESH_REPAIR_DELAY", help: "seconds after a peer is dead before its data is re-replicated", def: String(DEFAULTS.repairDelayMs / 1000) },
  "stop-grace": { type: "string", env: "MESH_STOP_GRACE", help: "seconds requests in flight get to finish when the peer stops, then they are cut off", def: String(DEFAULTS.stopGraceMs / 1000) },
  "advertise-http": { type: "string", env: "MESH_ADVERTISE_HTTP", help: "the native API's URL as other hosts reach it", def: "the --http address; for 0.0.0.0, this host's p2p address" },
  "advertise-s3": { type: "string", env: "MESH_ADVERTISE_S3", help: "the S3 API's URL as other hosts reach it", def: "the --s3 address; for 0.0.0.0, this host's p2p address" },
  "multipart-expiry": { type: "string", env: "MESH_MULTIPART_EXPIRY", help: "abort incomplete multipart uploads older than this AGE (90s, 2h, 1d; off: never)", def: "24h" },
  "event-retention": { type: "string", env: "MESH_EVENT_RETENTION", help: "how long change events are kept (90s, 2h, 7d; there is no off: every write records one)", def: "7d" },
  "event-retention-count": { type: "string", env: "MESH_EVENT_RETENTION_COUNT", help: "most change events kept per index shard (the oldest go first)", def: String(DEFAULT_EVENTS.maxPerShard) },
  "search-backfill-rate": { type: "string", env: "MESH_SEARCH_BACKFILL_RATE", help: "objects per second a peer indexes when a search field is added to a bucket", def: String(DEFAULTS.searchBackfillPerSecond) },
  "cache-memory": { type: "string", env: "MESH_CACHE_MEMORY", help: "MiB of memory cache: hot manifests (an eighth) and small objects' chunks (0: off)", def: String(DEFAULTS.cacheMemoryBytes / 1024 / 1024) },
  "cache-disk": { type: "string", env: "MESH_CACHE_DISK", help: "MiB of chunks fetched from other peers this peer keeps under <data>/cache (0: off)", def: "0" },
  "max-event-streams": { type: "string", env: "MESH_MAX_EVENT_STREAMS", help: "live change event streams (SSE, ListenBucketNotification) served at once; beyond: 503 TooManyStreams", def: String(DEFAULT_EVENTS.maxStreams) },
  "max-inflight": { type: "string", env: "MESH_MAX_INFLIGHT", help: "requests served at once; beyond: 503 SlowDown (S3) / 429 (native)", def: String(DEFAULT_LIMITS.maxInflight) },
  "body-timeout": { type: "string", env: "MESH_BODY_TIMEOUT", help: "seconds a request body may send nothing (or its headers take) before RequestTimeout", def: String(DEFAULT_LIMITS.bodyIdleMs / 1000) },
  "upload-memory": { type: "string", env: "MESH_UPLOAD_MEMORY", help: "MiB of upload buffers across all requests; beyond: uploads wait, then SlowDown", def: String(DEFAULT_LIMITS.uploadMemoryBytes / 1024 / 1024) },
  "rate-per-key": { type: "string", env: "MESH_RATE_PER_KEY", help: "requests per second per access key, burst twice that (0: off)", def: String(DEFAULT_LIMITS.perKey.perSecond) },
  "rate-per-ip": { type: "string", env: "MESH_RATE_PER_IP", help: "requests per second per client address, burst twice that (0: off; loopback exempt)", def: String(DEFAULT_LIMITS.perIp.perSecond) },
  "rate-auth-fail": { type: "string", env: "MESH_RATE_AUTH_FAIL", help: "failed authentications per second per client address, burst twice that (0: off; loopback exempt)", def: String(DEFAULT_LIMITS.authFailures.perSecond) },
  "insecure-no-auth": { type: "boolean", env: "MESH_INSECURE_NO_AUTH", help: "serve both APIs without credentials (local experiments only)", def: "off" },
  "metrics-public": { type: "boolean", env: "MESH_METRICS_PUBLIC", help: "serve /metrics without a token (otherwise an admin token is needed)", def: "off" },
  "access-log": { type: "boolean", env: "MESH_ACCESS_LOG", help: "log one line per HTTP request (API, operation, status, bytes, ms, request id)", def: "off" },
} as const;

/** The flags that take no value. */
type BooleanFlag = "insecure-no-auth" | "metrics-public" | "access-log";

/** Parse `bun run node` arguments and MESH_* variables into a config input. */
export function configFromArgs(argv: string[], env: Record<string, string | undefined> = process.env): PeerConfigInput {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        data: { type: "string" },
        p2p: { type: "string", multiple: true },
        http: { type: "string" },
        s3: { type: "string" },
        bootstrap: { type: "string", multiple: true },
        "mesh-key": { type: "string" },
        rf: { type: "string" },
        "dead-after": { type: "string" },
        "repair-delay": { type: "string" },
        "stop-grace": { type: "string" },
        "advertise-http": { type: "string" },
        "advertise-s3": { type: "string" },
        "multipart-expiry": { type: "string" },
        "search-backfill-rate": { type: "string" },
        "event-retention": { type: "string" },
        "event-retention-count": { type: "string" },
        "cache-memory": { type: "string" },
        "cache-disk": { type: "string" },
        "max-event-streams": { type: "string" },
        "max-inflight": { type: "string" },
        "body-timeout": { type: "string" },
        "upload-memory": { type: "string" },
        "rate-per-key": { type: "string" },
        "rate-per-ip": { type: "string" },
        "rate-auth-fail": { type: "string" },
        "insecure-no-auth": { type: "boolean" },
        "metrics-public": { type: "boolean" },
        "access-log": { type: "boolean" },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const str = (flag: Exclude<keyof typeof NODE_FLAGS, BooleanFlag>): string | undefined => {
    const v = values[flag];
    if (typeof v === "string") return v;
    return env[NODE_FLAGS[flag].env] || undefined;
  };
  const list = (flag: "p2p" | "bootstrap"): string[] | undefined => {
    const v = values[flag];
    if (Array.isArray(v) && v.length) return v;
    const e = env[NODE_FLAGS[flag].env];
    return e ? e.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
  };
  const input: PeerConfigInput = { membership: {}, limits: {} };
  input.dataDir = str("data");
  input.p2pListen = list("p2p");
  input.bootstrap = list("bootstrap");
  const http = str("http");
  if (http) input.http = parseHostPort(http, "--http");
  const s3 = str("s3");
  if (s3) input.s3 = parseHostPort(s3, "--s3");
  const rf = str("rf");
  if (rf) input.rf = parsePositiveInt(rf, "--rf");
  const dead = str("dead-after");
  if (dead) input.membership!.deadAfterMs = parseSeconds(dead, "--dead-after");
  const repair = str("repair-delay");
  if (repair) input.repairDelayMs = parseSeconds(repair, "--repair-delay");
  const expiry = str("multipart-expiry");
  if (expiry) input.repair = { multipartExpiryMs: parseAge(expiry, "--multipart-expiry") };
  const backfill = str("search-backfill-rate");
  if (backfill) input.searchBackfillPerSecond = parsePositiveInt(backfill, "--search-backfill-rate");
  for (const [flag, field] of [["cache-memory", "cacheMemoryBytes"], ["cache-disk", "cacheDiskBytes"]] as const) {
    const v = str(flag);
    if (v) input[field] = parseMebibytes(v, `--${flag}`);
  }
  const retention = str("event-retention");
  const retentionCount = str("event-retention-count");
  const maxStreams = str("max-event-streams");
  if (retention || retentionCount || maxStreams) {
    input.events = {
      ...(retention && { retentionMs: parseAge(retention, "--event-retention", { offAllowed: false, why: "every write records its change event, and events leave the log after this age or beyond --event-retention-count per shard" }) }),
      ...(retentionCount && { maxPerShard: parsePositiveInt(retentionCount, "--event-retention-count") }),
      ...(maxStreams && { maxStreams: parsePositiveInt(maxStreams, "--max-event-streams") }),
    };
  }
  const grace = str("stop-grace");
  if (grace) input.stopGraceMs = parseSeconds(grace, "--stop-grace");
  const limits = input.limits!;
  const inflight = str("max-inflight");
  if (inflight) limits.maxInflight = parsePositiveInt(inflight, "--max-inflight");
  const bodyTimeout = str("body-timeout");
  if (bodyTimeout) limits.bodyIdleMs = parseSeconds(bodyTimeout, "--body-timeout");
  const uploadMemory = str("upload-memory");
  if (uploadMemory) limits.uploadMemoryBytes = parsePositiveInt(uploadMemory, "--upload-memory") * 1024 * 1024;
  for (const [flag, field] of [["rate-per-key", "perKey"], ["rate-per-ip", "perIp"], ["rate-auth-fail", "authFailures"]] as const) {
    const v = str(flag);
    if (v) limits[field] = rateOf(parseRate(v, `--${flag}`));
  }
  input.meshKeyFile = str("mesh-key");
  input.advertiseHttp = str("advertise-http");
  input.advertiseS3 = str("advertise-s3");
  /** A boolean flag, or its variable set to anything but "", "0" or "false". */
  const on = (flag: BooleanFlag): boolean => {
    const e = env[NODE_FLAGS[flag].env];
    return values[flag] === true || (e !== undefined && e !== "" && e !== "0" && e !== "false");
  };
  if (on("insecure-no-auth")) input.auth = false;
  if (on("metrics-public")) input.metricsPublic = true;
  if (on("access-log")) input.accessLog = true;
  const adminKey = env.MESH_ADMIN_KEY;
  const adminSecret = env.MESH_ADMIN_SECRET;
  if (adminKey || adminSecret) {
    if (!adminKey || !adminSecret) throw new ConfigError("set both MESH_ADMIN_KEY and MESH_ADMIN_SECRET, or neither");
    input.admin = { accessKeyId: adminKey, secretAccessKey: adminSecret };
  }
  return input;
}
