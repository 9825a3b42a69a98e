// Metrics, logs and live status on a real 3-peer mesh in one process (TCP, real HTTP, the
// AWS SDK): GET /metrics parses as Prometheus text, counts S3 PutObject calls exactly,
// keeps each peer's values apart, needs an admin token unless --metrics-public, and shows
// a killed peer as dead and the mesh as unhealthy within the dead-after time; at the
// default log level the survivors log the death; the suite-wide secret check knows the
// secrets made here (it checks every log line after every test);
// /cluster/status counts a new chunk on each of its holders within a second.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { createLogger } from "../../src/util/log.ts";
import { startConverged, teardownCluster, TEST_MEMBERSHIP, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, locate, mustCreateBucket, mustPut, request, TEST_CHUNK } from "../harness/http.ts";
import { ADMIN_BEARER, bearer, createKey, s3Client, TEST_ADMIN, type CreatedKey } from "../harness/s3.ts";
import { suiteLeaks } from "../harness/leak-check.ts";
import { waitFor } from "../harness/wait.ts";

/** One sample line of the Prometheus text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (NaN|[+-]Inf|-?[0-9]+(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?: -?[0-9]+)?$`);
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/**
 * A strict parser of the text format: every line is blank, `# HELP name text`,
 * `# TYPE name type` (once per family, before its samples) or `name{labels} value`;
 * each sample belongs to a declared family (histograms: _bucket, _sum, _count).
 */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const [n, line] of text.split("\n").entries()) {
    const where = `line ${n + 1}: ${JSON.stringify(line)}`;
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
      if (!m) throw new Error(`bad comment, ${where}`);
      if (m[1] === "TYPE") {
        if (!TYPES.has(m[3]) || types.has(m[2])) throw new Error(`bad or repeated TYPE, ${where}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample, ${where}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const family = types.has(m[1]) ? m[1] : m[1].replace(/_(bucket|sum|count)$/, "");
    if (!types.has(family)) throw new Error(`sample of an undeclared family, ${where}`);
    const value = m[3] === "NaN" ? NaN : m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types };
}

/** The value of the one sample named `name` whose labels include `labels` (0 if none: a counter not yet touched). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

async function scrape(base: string, authorization = ADMIN_BEARER): Promise<Sample[]> {
  const r = await request(base, "GET", "/metrics", { headers: { authorization } });
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
  expect(r.headers.get("content-type")).toContain("text/plain");
  return parseMetrics(new TextDecoder().decode(r.body)).samples;
}

const PUTS = { api: "s3", operation: "PutObject", code: "200" };

let c: Cluster;
let key: CreatedKey;
const url = (i: number) => c.peer(i).httpUrl;

beforeAll(async () => {
  c = await startConverged(3, { topology: "star", config: { chunkSize: TEST_CHUNK, accessLog: true } });
  key = await createKey(url(0), { name: "metrics-writer", buckets: { metered: "owner" } });
});

afterAll(async () => {
  await teardownCluster(c);
});

describe("GET /metrics", () => {
  test("is valid Prometheus text with the meshstore families", async () => {
    const r = await request(url(0), "GET", "/metrics");
    expect(r.status).toBe(200);
    const text = new TextDecoder().decode(r.body);
    const { samples, types } = parseMetrics(text);
    for (const family of [
      "meshstore_requests_total",
      "meshstore_request_duration_seconds",
      "meshstore_requests_in_flight",
      "meshstore_request_bytes_received_total",
      "meshstore_response_bytes_sent_total",
      "meshstore_chunks_stored",
      "meshstore_chunk_bytes_stored",
      "meshstore_disk_bytes",
      "meshstore_under_replicated",
      "meshstore_repair_queue",
      "meshstore_repaired_bytes_total",
      "meshstore_scrub_corrupt_chunks_total",
      "meshstore_multipart_uploads_expired_total",
      "meshstore_bad_replicas",
      "meshstore_cache_lookups_total",
      "meshstore_cache_bytes",
      "meshstore_cluster_peers",
      "meshstore_cluster_healthy",
      "meshstore_cluster_available",
      "meshstore_rpc_calls_total",
      "meshstore_membership_messages_sent_total",
      "meshstore_limit_rejections_total",
      "meshstore_process_cpu_seconds_total",
      "meshstore_process_resident_memory_bytes",
      "meshstore_event_loop_lag_seconds",
      "meshstore_build_info",
    ]) {
      expect(types.has(family)).toBe(true);
    }
    expect([...types.keys()].every((n) => n.startsWith("meshstore_"))).toBe(true);
    expect(valueOf(samples, "meshstore_cluster_peers", { state: "alive" })).toBe(3);
    expect(valueOf(samples, "meshstore_cluster_available")).toBe(1);
    expect(valueOf(samples, "meshstore_disk_bytes", { kind: "total" })).toBeGreaterThan(0);
    expect(valueOf(samples, "meshstore_process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(valueOf(samples, "meshstore_rpc_calls_total", { method: "swim.ping", result: "ok" }) + valueOf(samples, "meshstore_rpc_calls_total", { method: "swim.ping", result: "received" })).toBeGreaterThan(0);
    expect(samples.find((s) => s.name === "meshstore_build_info")?.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    // No bucket or key ever becomes a label.
    expect(samples.every((s) => Object.keys(s.labels).every((l) => ["api", "operation", "code", "le", "kind", "state", "method", "result", "reason", "mode", "version", "tier"].includes(l)))).toBe(true);
  });

  test("needs an admin token: none 401, a non-admin key 403, the admin 200", async () => {
    const none = await fetch(url(1) + "/metrics");
    expect(none.status).toBe(401);
    await none.arrayBuffer();
    const notAdmin = await request(url(1), "GET", "/metrics", { headers: { authorization: bearer(key.token) } });
    expect(notAdmin.status).toBe(403);
    const admin = await request(url(1), "GET", "/metrics");
    expect(admin.status).toBe(200);
  });

  test("10 S3 PutObject calls raise PutObject/200 by exactly 10 on the peer that served them, and on no other", async () => {
    const s3 = s3Client(c.peer(0).s3Url, { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey });
    await mustCreateBucket(url(0), "metered");
    const before = await Promise.all([0, 1, 2].map(async (i) => valueOf(await scrape(url(i)), "meshstore_requests_total", PUTS)));
    for (let i = 0; i < 10; i++) await s3.send(new PutObjectCommand({ Bucket: "metered", Key: `k/${i}?x=1`, Body: `body ${i}` }));
    const after = await Promise.all([0, 1, 2].map(async (i) => scrape(url(i))));
    expect(valueOf(after[0], "meshstore_requests_total", PUTS) - before[0]).toBe(10);
    // Three peers in one process: the others' registries saw none of them.
    expect(valueOf(after[1], "meshstore_requests_total", PUTS)).toBe(before[1]);
    expect(valueOf(after[2], "meshstore_requests_total", PUTS)).toBe(before[2]);
    expect(valueOf(after[0], "meshstore_request_duration_seconds_count", { api: "s3", operation: "PutObject" })).toBeGreaterThanOrEqual(10);
    expect(valueOf(after[0], "meshstore_request_bytes_received_total", { api: "s3" })).toBeGreaterThan(0);
    expect(valueOf(after[0], "meshstore_requests_in_flight", { api: "s3" })).toBe(0);
    // The native API counts by route template.
    expect(valueOf(after[0], "meshstore_requests_total", { api: "native", operation: "GET /metrics", code: "200" })).toBeGreaterThan(0);
    // The access log names the operation, never the key or its query.
    const access = c.peers[0].logs.filter((l) => l.includes("[p0:access]") && l.includes(" s3 PutObject 200 "));
    expect(access.length).toBeGreaterThanOrEqual(10);
    expect(access.some((l) => l.includes("k/") || l.includes("x=1"))).toBe(false);
  });

  test("/cluster/status counts a new chunk on every holder within a second", async () => {
    await mustCreateBucket(url(0), "live-counts");
    const before = await Promise.all([0, 1, 2].map((i) => clusterStatus(url(i))));
    const body = new Uint8Array(TEST_CHUNK / 2).map((_, i) => (i * 7 + 3) & 0xff);
    await mustPut(url(0), "live-counts", "one-chunk", body);
    const loc = await locate(url(0), "live-counts", "one-chunk");
    expect(loc.chunks.length).toBe(1);
    const holders = loc.chunks[0].holders;
    expect(holders.length).toBeGreaterThanOrEqual(2);
    const started = Date.now();
    for (const id of holders) {
      const i = c.peers.findIndex((p) => p.id === id);
      await waitFor(`peer ${i} counts the chunk`, async () => {
        const s = await clusterStatus(url(i));
        return s.storage.chunks === before[i].storage.chunks + 1 && s.storage.bytes === before[i].storage.bytes + body.length;
      }, Math.max(50, 1000 - (Date.now() - started)), 50);
    }
    const st = await clusterStatus(url(0));
    expect(st.storage.diskTotalBytes).toBeGreaterThan(0);
    expect(st.storage.diskFreeBytes).toBeGreaterThan(0);
    expect(st.storage.diskFreeBytes).toBeLessThanOrEqual(st.storage.diskTotalBytes);
    const scraped = await scrape(url(0));
    if (holders.includes(c.peers[0].id)) expect(valueOf(scraped, "meshstore_chunks_stored")).toBe(before[0].storage.chunks + 1);
  });

  test("a killed peer is dead and the mesh unhealthy on the others within the dead-after time; they log it at the default level", async () => {
    // The harness logs at info unless MESH_TEST_LOG says otherwise; that is the default level.
    const saved = process.env.MESH_LOG;
    delete process.env.MESH_LOG;
    const lines: string[] = [];
    createLogger("probe", (_l, line) => lines.push(line)).info("shown by default");
    if (saved !== undefined) process.env.MESH_LOG = saved;
    expect(lines.length).toBe(1);

    const before = await scrape(url(0));
    expect(valueOf(before, "meshstore_cluster_peers", { state: "dead" })).toBe(0);
    const deadId = c.peers[2].id;
    const mark = c.peers.map((p) => p.logs.length);
    const linesSinceKill = (i: number) => c.peers[i].logs.slice(mark[i]);
    const killedAt = Date.now();
    await c.kill(2);
    // Suspicion takes a missed probe or two, then dead-after; slack for a busy machine.
    const limit = (TEST_MEMBERSHIP.deadAfterMs ?? 1500) + 3000;
    for (const i of [0, 1]) {
      await waitFor(`peer ${i} reports the dead peer`, async () => {
        const s = await scrape(url(i));
        return valueOf(s, "meshstore_cluster_peers", { state: "dead" }) === 1 && valueOf(s, "meshstore_cluster_healthy") === 0;
      }, Math.max(100, limit - (Date.now() - killedAt)), 100);
      expect(linesSinceKill(i).some((l) => l.includes(" INFO ") && l.includes(`member ${deadId.slice(-6)}:`) && l.endsWith("-> dead"))).toBe(true);
    }
    // Two live peers cannot keep 3 copies: repair says it has work, at the default level too.
    await waitFor("a survivor logs that repair started", () => [0, 1].some((i) => linesSinceKill(i).some((l) => / INFO .*repair started: \d+ chunk\(s\) and \d+ index shard\(s\) under-replicated/.test(l))), 10_000);
    const after = await scrape(url(0));
    expect(valueOf(after, "meshstore_cluster_peers", { state: "alive" })).toBe(2);
    // Calls to the dead peer failed, and are counted as such.
    expect(after.filter((s) => s.name === "meshstore_rpc_calls_total" && s.labels.result === "error").reduce((n, s) => n + s.value, 0)).toBeGreaterThan(0);
    // Two of three voters of every shard remain: still a quorum everywhere.
    expect(valueOf(after, "meshstore_cluster_available")).toBe(1);
  });

  test("no secret or token appears in any log line: the suite-wide check knows every secret made here", () => {
    // test/preload.ts checks every peer's lines after each test against every secret the
    // suite knows (test/harness/leak-check.ts); here: the ones this file used are known.
    for (const s of [key.secretAccessKey, key.token, TEST_ADMIN.secretAccessKey, ADMIN_BEARER.slice("Bearer ".length)]) expect(suiteLeaks.knows(s)).toBe(true);
    for (const p of c.peers) expect(p.logs.length).toBeGreaterThan(0);
  });
});

describe("--metrics-public", () => {
  let open: Cluster | undefined;
  afterAll(async () => {
    await teardownCluster(open);
  });

  test("serves /metrics without a token", async () => {
    // rf 1: a mesh of one keeps every copy it should (at rf 3 it would count as under-replicated).
    open = await startConverged(1, { rf: 1, config: { metricsPublic: true } });
    const r = await fetch(open.peer(0).httpUrl + "/metrics");
    expect(r.status).toBe(200);
    const { samples } = parseMetrics(await r.text());
    expect(valueOf(samples, "meshstore_cluster_peers", { state: "alive" })).toBe(1);
    await waitFor("a repair pass has run", () => open!.peer(0).status().workers.repair.passes > 0, 5000);
    const later = parseMetrics(await (await fetch(open.peer(0).httpUrl + "/metrics")).text()).samples;
    expect(valueOf(later, "meshstore_cluster_healthy")).toBe(1);
    expect(valueOf(later, "meshstore_cluster_available")).toBe(1);
  });
});
