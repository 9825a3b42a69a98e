// Prometheus metrics of one peer (GET /metrics). Each peer has its own prom-client Registry
// (never the process-global one), so several peers in one process report separately.
// Requests are counted in one place, the HTTP servers' observe hook (api/http-server.ts);
// everything else is read from the peer's parts when scraped (collect callbacks), so no
// part carries metrics code. Labels stay few and bounded: API, operation (a route template
// or an S3 operation name), status code, RPC method, member state; never a bucket or a key.
import { statfs } from "node:fs/promises";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClientLimits } from "../api/client-limits.ts";
import type { Api } from "../errors.ts";
import type { ExchangeOutcome } from "../api/http-server.ts";
import { requestIdOf } from "../api/request-id.ts";
import { pathOf } from "../api/request-target.ts";
import { s3OperationOf } from "../api/s3/handler.ts";
import type { MemberState, MemberTable } from "../membership/member-table.ts";
import type { Swim } from "../membership/swim.ts";
import { allShards } from "../metadata/keys.ts";
import type { Rpc } from "../net/rpc.ts";
import type { ChunkClient } from "../objects/chunk-client.ts";
import type { CacheStats } from "../cache/chunk-cache.ts";
import type { Placement } from "../placement/placement.ts";
import type { RepairService } from "../repair/repair-service.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { Startable } from "../util/lifecycle.ts";
import type { Logger } from "../util/log.ts";

/** What the metrics read. */
export interface MetricsSources {
  peerId: string;
  version: string;
  /** The data folder: its file system's total and free bytes. */
  dataDir: string;
  indexShards: number;
  table: MemberTable;
  placement: Pick<Placement, "shardVoters" | "shardQuorum" | "reachable">;
  chunkStore: Pick<ChunkStore, "counts">;
  chunks: Pick<ChunkClient, "badReplicas">;
  repair: Pick<RepairService, "status">;
  rpc: Pick<Rpc, "counters">;
  swim: Pick<Swim, "messagesSent">;
  limits: Pick<ClientLimits, "counts">;
  /** The native API's routes (method and path template), to name its operations. */
  nativeRoutes(): ReadonlyArray<{ method: string; path: string }>;
  /** With `--access-log`: one info line per request. */
  accessLog?: Logger;
  /** Incomplete multipart uploads this peer aborted for their age. */
  multipartExpired?(): number;
  /** Change events this peer dropped from its replicas of the log (past retention, or beyond the per-shard count). */
  eventsDropped?(): number;
  /** The chunk cache's figures. */
  cache?(): CacheStats;
}

/** The metrics part of one peer. */
export interface Metrics extends Startable {
  /** The servers' observe hook (ServeOptions.observe). */
  observe(api: Api, request: Request): (outcome: ExchangeOutcome) => void;
  /** The scrape: Prometheus text format. */
  render(): Promise<string>;
  /** Its Content-Type. */
  readonly contentType: string;
}

/** Request duration buckets, in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** How often the event-loop lag is sampled. */
const LAG_SAMPLE_MS = 500;

/** A matcher from a request's method and path to the native route template it hits ("GET /buckets/:bucket"); "other" if none. */
export function nativeOperations(routes: () => ReadonlyArray<{ method: string; path: string }>): (method: string, path: string) => string {
  let compiled: Array<{ method: string; re: RegExp; name: string }> | undefined;
  return (method, path) => {
    compiled ??= routes()
      .filter((r) => r.method !== "ALL")
      .map((r) => ({
        method: r.method,
        re: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+").replace(/\*/g, ".*")}$`, "s"),
        name: `${r.method} ${r.path}`,
      }));
    // A static route wins over a parameter one, as in the router: try templates without ':' or '*' first.
    let found: string | undefined;
    for (const r of compiled) {
      if (r.method !== method || !r.re.test(path)) continue;
      if (!/[:*]/.test(r.name)) return r.name;
      found ??= r.name;
    }
    return found ?? "other";
  };
}

/** Set a counter to `value` (a total some part keeps) at scrape time. */
function setTotal(c: Counter<string>, value: number, labels: Record<string, string> = {}): void {
  c.inc(labels, Math.max(0, value));
}

/** Build the metrics of one peer. */
export function createMetrics(src: MetricsSources): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const nativeOperation = nativeOperations(src.nativeRoutes);
  const operationOf = (api: Api, request: Request) => (api === "s3" ? s3OperationOf(request) : nativeOperation(request.method, pathOf(request.url)));

  // ---- requests (counted by the observe hook) ----
  const requests = new Counter({ name: "meshstore_requests_total", help: "HTTP requests answered, by API, operation and status code", labelNames: ["api", "operation", "code"], registers });
  const duration = new Histogram({ name: "meshstore_request_duration_seconds", help: "HTTP request duration, from arrival to the end of the answer, by API and operation", labelNames: ["api", "operation"], buckets: DURATION_BUCKETS, registers });
  const inflight = new Gauge({ name: "meshstore_requests_in_flight", help: "HTTP requests being served now, by API", labelNames: ["api"], registers });
  const bytesIn = new Counter({ name: "meshstore_request_bytes_received_total", help: "Request body bytes received, by API", labelNames: ["api"], registers });
  const bytesOut = new Counter({ name: "meshstore_response_bytes_sent_total", help: "Response body bytes sent, by API", labelNames: ["api"], registers });
  for (const api of ["native", "s3"]) {
    inflight.set({ api }, 0);
    bytesIn.inc({ api }, 0);
    bytesOut.inc({ api }, 0);
  }

  // ---- storage ----
  new Gauge({
    name: "meshstore_chunks_stored",
    help: "Chunks held by this peer",
    registers,
    collect() {
      this.set(src.chunkStore.counts().chunks);
    },
  });
  new Gauge({
    name: "meshstore_chunk_bytes_stored",
    help: "Bytes of the chunks held by this peer",
    registers,
    collect() {
      this.set(src.chunkStore.counts().bytes);
    },
  });
  new Gauge({
    name: "meshstore_disk_bytes",
    help: "The data folder's file system: total and free bytes",
    labelNames: ["kind"],
    registers,
    async collect() {
      try {
        const fs = await statfs(src.dataDir);
        this.set({ kind: "total" }, fs.blocks * fs.bsize);
        this.set({ kind: "free" }, fs.bavail * fs.bsize);
      } catch {
        this.reset();
      }
    },
  });

  // ---- self-healing ----
  new Gauge({
    name: "meshstore_under_replicated",
    help: "Chunks and index shards with fewer copies than they should have, as the last repair pass found",
    labelNames: ["kind"],
    registers,
    collect() {
      const u = src.repair.status().underReplicated;
      this.set({ kind: "chunks" }, u.chunks);
      this.set({ kind: "shards" }, u.shards);
    },
  });
  new Gauge({
    name: "meshstore_repair_queue",
    help: "Chunks waiting to be repaired",
    registers,
    collect() {
      this.set(src.repair.status().repair.queue);
    },
  });
  new Counter({
    name: "meshstore_repaired_bytes_total",
    help: "Bytes of chunks this peer copied to peers missing them",
    registers,
    collect() {
      this.reset();
      setTotal(this, src.repair.status().repair.bytesRepaired);
    },
  });
  new Counter({
    name: "meshstore_scrub_corrupt_chunks_total",
    help: "Corrupt chunks the scrubber found here",
    registers,
    collect() {
      this.reset();
      setTotal(this, src.repair.status().scrub.corruptFound);
    },
  });
  new Counter({
    name: "meshstore_multipart_uploads_expired_total",
    help: "Incomplete multipart uploads this peer aborted because they were older than --multipart-expiry",
    registers,
    collect() {
      this.reset();
      setTotal(this, src.multipartExpired?.() ?? 0);
    },
  });
  new Counter({
    name: "meshstore_events_dropped_total",
    help: "Change events this peer dropped from its replicas of the event log: older than --event-retention, or beyond --event-retention-count in their shard",
    registers,
    collect() {
      this.reset();
      setTotal(this, src.eventsDropped?.() ?? 0);
    },
  });
  // ---- the cache tier (src/cache/) ----
  new Counter({
    name: "meshstore_cache_lookups_total",
    help: "Cache lookups by tier (memory and disk: chunks; manifests: manifests under lease) and result (hit, miss)",
    labelNames: ["tier", "result"],
    registers,
    collect() {
      this.reset();
      const c = src.cache?.();
      for (const [tier, t] of [["memory", c?.memory], ["disk", c?.disk], ["manifests", c?.manifests]] as const) {
        setTotal(this, t?.hits ?? 0, { tier, result: "hit" });
        setTotal(this, t?.misses ?? 0, { tier, result: "miss" });
      }
    },
  });
  new Gauge({
    name: "meshstore_cache_bytes",
    help: "Cache bytes by tier (memory, disk, manifests): held now and the bound (kind: used, max)",
    labelNames: ["tier", "kind"],
    registers,
    collect() {
      const c = src.cache?.();
      for (const [tier, t] of [["memory", c?.memory], ["disk", c?.disk], ["manifests", c?.manifests]] as const) {
        this.set({ tier, kind: "used" }, t?.bytes ?? 0);
        this.set({ tier, kind: "max" }, t?.maxBytes ?? 0);
      }
    },
  });
  new Gauge({
    name: "meshstore_bad_replicas",
    help: "Replicas on other peers recently found corrupt or wrong (kept in a short list)",
    registers,
    collect() {
      this.set(src.chunks.badReplicas.length);
    },
  });

  // ---- the mesh ----
  const STATES: MemberState[] = ["alive", "suspect", "dead"];
  const byState = () => {
    const counts: Record<string, number> = { alive: 1, suspect: 0, dead: 0 };
    for (const m of src.table.others()) if (m.state in counts) counts[m.state]++;
    return counts;
  };
  new Gauge({
    name: "meshstore_cluster_peers",
    help: "Members by state as this peer sees them (itself counted alive)",
    labelNames: ["state"],
    registers,
    collect() {
      const counts = byState();
      for (const state of STATES) this.set({ state }, counts[state]);
    },
  });
  new Gauge({
    name: "meshstore_cluster_healthy",
    help: "1 when every member is alive and nothing is under-replicated",
    registers,
    collect() {
      const counts = byState();
      const u = src.repair.status().underReplicated;
      this.set(counts.suspect === 0 && counts.dead === 0 && u.chunks === 0 && u.shards === 0 ? 1 : 0);
    },
  });
  new Gauge({
    name: "meshstore_cluster_available",
    help: "1 when every index shard has a quorum of its voters reachable (reads and writes can succeed)",
    registers,
    collect() {
      const p = src.placement;
      const ok = allShards(src.indexShards).every((shard) => p.shardVoters(shard).filter((v) => p.reachable(v)).length >= p.shardQuorum(shard));
      this.set(ok ? 1 : 0);
    },
  });
  new Counter({
    name: "meshstore_rpc_calls_total",
    help: "RPC calls by method: sent and answered (ok), sent and failed (error), received",
    labelNames: ["method", "result"],
    registers,
    collect() {
      this.reset();
      const { sent, failed, received } = src.rpc.counters;
      for (const [method, n] of sent) {
        const bad = failed.get(method) ?? 0;
        setTotal(this, n - bad, { method, result: "ok" });
        setTotal(this, bad, { method, result: "error" });
      }
      for (const [method, n] of received) setTotal(this, n, { method, result: "received" });
    },
  });
  new Counter({
    name: "meshstore_membership_messages_sent_total",
    help: "Membership (SWIM) messages sent",
    registers,
    collect() {
      this.reset();
      setTotal(this, src.swim.messagesSent);
    },
  });
  new Counter({
    name: "meshstore_limit_rejections_total",
    help: "Requests refused by the client limits, by reason",
    labelNames: ["reason"],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(src.limits.counts)) setTotal(this, n, { reason });
    },
  });

  // ---- the process ----
  let lastCpu = process.cpuUsage();
  new Counter({
    name: "meshstore_process_cpu_seconds_total",
    help: "CPU time of the whole process (every peer in it), user and system",
    labelNames: ["mode"],
    registers,
    collect() {
      this.reset();
      lastCpu = process.cpuUsage();
      setTotal(this, lastCpu.user / 1e6, { mode: "user" });
      setTotal(this, lastCpu.system / 1e6, { mode: "system" });
    },
  });
  new Gauge({
    name: "meshstore_process_resident_memory_bytes",
    help: "Resident memory of the whole process",
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  let lagSeconds = 0;
  let lagMaxSeconds = 0;
  new Gauge({
    name: "meshstore_event_loop_lag_seconds",
    help: `Event-loop lag: how late a ${LAG_SAMPLE_MS} ms timer fired, last sample and the most since the previous scrape`,
    labelNames: ["kind"],
    registers,
    collect() {
      this.set({ kind: "last" }, lagSeconds);
      this.set({ kind: "max" }, lagMaxSeconds);
      lagMaxSeconds = lagSeconds;
    },
  });
  new Gauge({ name: "meshstore_build_info", help: "The meshstore version this peer runs (always 1)", labelNames: ["version"], registers }).set({ version: src.version }, 1);

  let lagTimer: ReturnType<typeof setTimeout> | undefined;
  const sampleLag = () => {
    const due = performance.now() + LAG_SAMPLE_MS;
    lagTimer = setTimeout(() => {
      lagSeconds = Math.max(0, performance.now() - due) / 1000;
      lagMaxSeconds = Math.max(lagMaxSeconds, lagSeconds);
      sampleLag();
    }, LAG_SAMPLE_MS);
    lagTimer.unref();
  };

  return {
    contentType: registry.contentType,
    start() {
      sampleLag();
    },
    stop() {
      clearTimeout(lagTimer);
      lagTimer = undefined;
    },
    observe(api, request) {
      inflight.inc({ api });
      return (outcome) => {
        inflight.dec({ api });
        const operation = operationOf(api, request);
        requests.inc({ api, operation, code: String(outcome.status) });
        duration.observe({ api, operation }, outcome.durationMs / 1000);
        bytesIn.inc({ api }, outcome.bytesIn);
        bytesOut.inc({ api }, outcome.bytesOut);
        // Operation names and ids only: never the path, the query string or a header (a token or a signature).
        src.accessLog?.info(
          `${api} ${operation} ${outcome.status} in=${outcome.bytesIn} out=${outcome.bytesOut} ${outcome.durationMs.toFixed(1)}ms id=${requestIdOf(request)}`,
        );
      };
    },
    render: () => registry.metrics(),
  };
}
