// The fuzz run shared by the test suite (2,000 cases) and `bun run fuzz` (10,000): a mesh
// with known objects, then seeded batches of model-generated requests (model.ts) sent over
// raw TCP with bounded concurrency, each judged on its own reply, and at the end the peers'
// health and the known objects, byte for byte.
//
// A reply fails when it has no status line (a reset, a close or a hang before one), when
// it is a 5xx other than 501 NotImplemented (a 503 passes only as SlowDown with a
// Retry-After: the documented in-flight cap, which a client is told to retry), or when an
// error (4xx) other than to a HEAD carries no error code and message. After the run, any
// error a peer logged or that escaped a handler fails it too.
import crypto from "node:crypto";
import fc from "fast-check";
import { Cluster } from "../harness/cluster.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { mapLimit, mustCreateBucket, mustPut, objectPath, request, TEST_CHUNK } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import { createKey, type Creds } from "../harness/s3.ts";
import { caseArb, type FuzzCase, type FuzzWorld } from "./model.ts";
import { errorCodeOf, portOf, replyText, sendWire, signedWire, signHeaders, type WireReply, type WireRequest } from "./wire.ts";

export interface FuzzOptions {
  runs: number;
  seed: number;
  peers: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Cases per fast-check run (each run sends one batch concurrently). */
  batch?: number;
  /** Shrink a failing batch to a smaller one (slower; off by default: the failing request is printed whole). */
  shrink?: boolean;
  /** Do not stop at the first failing batch: run every case and list the failures found (grouped by kind). */
  keepGoing?: boolean;
  log?: (line: string) => void;
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  /** "200", "404 NoSuchKey", "no status line"... -> count. */
  statuses: Map<string, number>;
  /** The same for the signed S3 requests alone (how deep the fuzzer got past authentication). */
  signedStatuses: Map<string, number>;
  fiveHundreds: number;
  /** The first failure: the request and what was wrong, with the seed and fast-check's path (empty when all passed). */
  failure?: string;
  /** Failures by kind ("no status line", "500 InternalError"...): how many and the first few. */
  found: Map<string, { count: number; examples: string[] }>;
  /** Problems found after the run: a dead peer, a changed known object. */
  afterRun: string[];
  ms: number;
}

const KNOWN_BUCKET = "fz-known";
const OWN_BUCKETS = ["fz-a", "fz-b"];
const NEW_BUCKET = "fz-new";
const UPLOAD_KEY = "mp-key";
/** Known objects: empty, tiny, unicode-named, one and several chunks. */
const KNOWN: Array<[string, number]> = [
  ["empty", 0],
  ["one", 1],
  ["dir/ü €/😀", 1000],
  ["k1", 100_000],
  ["k2", TEST_CHUNK + 12_345],
  ["a b+c%d", 3 * TEST_CHUNK + 1],
];

/** How long a peer may take to stop after the run (each of its parts gets 5 s before it is abandoned). */
const STOP_MAX_MS = 3000;

const sha = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex");

/** One line naming a case: enough to write it again by hand. */
export function describeCase(c: FuzzCase): string {
  const body = Buffer.from(c.body.subarray(0, 160)).toString("latin1");
  return `${c.api}${c.signed ? " signed" : ""} ${c.method} ${c.path}${c.rawQuery ? "?" + c.rawQuery : ""} host=${JSON.stringify(c.host)} length=${c.length}${c.absolute ? " absolute-form" : ""} headers=${JSON.stringify(c.headers)} body=${c.body.byteLength}B ${JSON.stringify(body)}`;
}

/** The bytes of a case on the wire. */
async function toWire(c: FuzzCase, port: number, creds: Creds): Promise<WireRequest> {
  const target = (c.absolute ? `http://127.0.0.1:${port}` : "") + c.path + (c.rawQuery ? "?" + c.rawQuery : "");
  let headers: Array<[string, string]> = c.headers;
  if (c.signed) {
    const own: Record<string, string> = {};
    for (const [k, v] of c.headers) own[k] = v;
    try {
      headers = Object.entries(await signHeaders(port, { method: c.method, path: c.path, rawQuery: c.rawQuery, headers: own, body: c.body, creds }));
    } catch {
      // a header the signer refuses: send it unsigned
    }
  }
  const lines = [`${c.method} ${target} HTTP/1.1`];
  const hostValue = c.host === "ok" ? `127.0.0.1:${port}` : c.host;
  if (c.host !== "none") lines.push(`host: ${hostValue}`);
  for (const [k, v] of headers) if (k.toLowerCase() !== "host") lines.push(`${k}: ${v}`);
  let body = c.body;
  let halfClose = false;
  switch (c.length) {
    case "exact":
      lines.push(`content-length: ${body.byteLength}`);
      break;
    case "over":
      lines.push(`content-length: ${body.byteLength + 1 + (body.byteLength % 97)}`);
      halfClose = true;
      break;
    case "under":
      lines.push(`content-length: ${Math.max(0, body.byteLength - 1 - (body.byteLength % 13))}`);
      break;
    case "chunked":
      lines.push("transfer-encoding: chunked");
      body = Buffer.concat([Buffer.from(body.byteLength ? `${body.byteLength.toString(16)}\r\n` : ""), body, Buffer.from(body.byteLength ? "\r\n0\r\n\r\n" : "0\r\n\r\n")]);
      break;
    case "omit":
      break;
  }
  lines.push("connection: close");
  return { head: lines.join("\r\n"), body, halfClose };
}

/** Why a reply fails (its kind, for grouping, and the detail), or undefined if it passes. */
function judge(c: FuzzCase, r: WireReply): { kind: string; detail: string } | undefined {
  if (r.status === undefined) {
    const kind = `no status line (${r.timedOut ? "no answer in time" : r.reset ? "connection reset" : "connection closed"})`;
    return { kind, detail: kind };
  }
  const error = errorCodeOf(r);
  if (r.status >= 500 && r.status !== 501) {
    const slowDown = r.status === 503 && r.headers.has("retry-after") && error?.code === "SlowDown";
    if (!slowDown) return { kind: `${r.status} ${error?.code ?? ""}`, detail: `${r.status}: ${replyText(r).slice(0, 300)}` };
  }
  if (r.status >= 400 && c.method !== "HEAD" && !error) return { kind: `${r.status} without an error code`, detail: `${r.status} without an error code and message: ${JSON.stringify(replyText(r).slice(0, 200))}` };
  return undefined;
}

function statusKey(r: WireReply): string {
  if (r.status === undefined) return "no status line";
  const code = r.status >= 400 ? errorCodeOf(r)?.code : undefined;
  return code ? `${r.status} ${code}` : String(r.status);
}

/** Build the world the model draws from: buckets, known objects, a scoped key, an open multipart upload. */
async function setUp(cluster: Cluster): Promise<{ world: FuzzWorld; creds: Creds; known: Map<string, string> }> {
  const http = cluster.peer(0).httpUrl;
  for (const b of [KNOWN_BUCKET, ...OWN_BUCKETS]) await mustCreateBucket(http, b);
  const known = new Map<string, string>();
  for (const [i, [key, size]] of KNOWN.entries()) {
    const bytes = seededBytes(size, cluster.seed + i);
    await mustPut(http, KNOWN_BUCKET, key, bytes);
    known.set(key, sha(bytes));
  }
  // The fuzzing key owns its buckets and may only read the known one: the known objects are
  // protected by permissions as a client's would be, and no fuzzed admin call (drain, member
  // removal) can take the peer down on purpose.
  const key = await createKey(http, { name: "fuzz", buckets: { "fz-a": "owner", "fz-b": "owner", [NEW_BUCKET]: "owner", [KNOWN_BUCKET]: "read" } });
  const creds = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  const s3 = portOf(cluster.peer(0).s3Url);
  const started = await sendWire(s3, await signedWire(s3, { method: "POST", path: `/${OWN_BUCKETS[0]}/${UPLOAD_KEY}`, rawQuery: "uploads", creds }));
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(replyText(started))?.[1];
  if (!uploadId) throw new Error(`could not start a multipart upload: ${started.status} ${replyText(started).slice(0, 200)}`);
  const world: FuzzWorld = { ownBuckets: OWN_BUCKETS, newBucket: NEW_BUCKET, knownBucket: KNOWN_BUCKET, knownKeys: [...known.keys()].map((k) => k.split("/").map(encodeURIComponent).join("/")), uploadKey: UPLOAD_KEY, uploadId, token: key.token };
  return { world, creds, known };
}

/** After the run: every peer answers on both APIs and every known object reads back unchanged (through every peer). */
async function checkAfter(cluster: Cluster, creds: Creds, known: Map<string, string>): Promise<string[]> {
  const problems: string[] = [];
  for (const i of cluster.running()) {
    const p = cluster.peer(i);
    const health = await request(p.httpUrl, "GET", "/health");
    if (health.status !== 200) problems.push(`peer ${i}: GET /health ${health.status}`);
    const s3 = portOf(p.s3Url);
    const list = await sendWire(s3, await signedWire(s3, { method: "GET", path: "/", creds }));
    if (list.status !== 200) problems.push(`peer ${i}: S3 ListBuckets ${list.status}`);
    for (const [key, hash] of known) {
      const got = await request(p.httpUrl, "GET", objectPath(KNOWN_BUCKET, key), { headers: { authorization: ADMIN_BEARER } });
      if (got.status !== 200 || sha(got.body) !== hash) problems.push(`peer ${i}: known object ${JSON.stringify(key)} ${got.status}, ${got.body.byteLength} bytes, sha256 ${sha(got.body).slice(0, 12)} (want ${hash.slice(0, 12)})`);
    }
  }
  return problems;
}

/** Start a mesh, fuzz it, check it, tear it down. Never throws for a finding: the summary says. */
export async function fuzzMesh(opts: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const batch = opts.batch ?? 32;
  const concurrency = opts.concurrency ?? 8;
  const cluster = new Cluster({ seed: opts.seed, rf: Math.min(3, opts.peers), topology: "star", config: { chunkSize: TEST_CHUNK } });
  const statuses = new Map<string, number>();
  const signedStatuses = new Map<string, number>();
  let cases = 0;
  let fiveHundreds = 0;
  let failure: string | undefined;
  const found = new Map<string, { count: number; examples: string[] }>();
  // A handler that throws outside the request's promise chain does not fail any reply (Bun
  // answered a bad Host with "200" and an empty body): count such escapes too.
  const escaped: string[] = [];
  const onEscape = (err: unknown) => void escaped.push(String((err as Error)?.stack ?? err).slice(0, 500));
  process.on("uncaughtException", onEscape);
  process.on("unhandledRejection", onEscape);
  try {
    await cluster.start(opts.peers);
    const all = cluster.running();
    await cluster.waitFor("all alive", () => cluster.allSee(all, all, "alive"), 30_000);
    const { world, creds, known } = await setUp(cluster);
    const ports = all.map((i) => ({ native: portOf(cluster.peer(i).httpUrl), s3: portOf(cluster.peer(i).s3Url) }));
    const arb = fc.array(caseArb(world), { minLength: batch, maxLength: batch });
    let nextLog = Date.now() + 5000;
    const details = await fc.check(
      fc.asyncProperty(arb, async (cs) => {
        const failures = await mapLimit(cs, concurrency, async (c, i) => {
            const peer = ports[i % ports.length];
            const port = c.api === "native" ? peer.native : peer.s3;
            const reply = await sendWire(port, await toWire(c, port, creds));
            cases++;
            const key = statusKey(reply);
            statuses.set(key, (statuses.get(key) ?? 0) + 1);
            if (c.signed) signedStatuses.set(key, (signedStatuses.get(key) ?? 0) + 1);
            if (process.env.FUZZ_SHOW === key) log(`${key}: ${replyText(reply).slice(0, 300)}\n  request: ${describeCase(c).slice(0, 600)}`);
            if (reply.status !== undefined && reply.status >= 500 && reply.status !== 501) fiveHundreds++;
            const why = judge(c, reply);
            if (!why) return undefined;
            const kind = why.kind;
            const entry = found.get(kind) ?? { count: 0, examples: [] };
            found.set(kind, entry);
            entry.count++;
            const text = `${why.detail}\n  request: ${describeCase(c)}`;
            if (entry.examples.length < 3) entry.examples.push(text);
            return text;
          });
          if (Date.now() > nextLog) {
            nextLog = Date.now() + 5000;
            log(`fuzz: ${cases} cases, ${((Date.now() - started) / 1000).toFixed(0)} s`);
          }
          const first = failures.find((f) => f !== undefined);
          if (first && !opts.keepGoing) throw new Error(first);
        }),
      { numRuns: Math.ceil(opts.runs / batch), seed: opts.seed, endOnFailure: !opts.shrink },
    );
    if (details.failed) {
      const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      failure = `${why}\n  (seed ${details.seed}, fast-check path "${details.counterexamplePath}", after ${details.numRuns} batches of ${batch})`;
    }
    const afterRun = await checkAfter(cluster, creds, known);
    for (const e of escaped.slice(0, 3)) afterRun.push(`an error escaped (${escaped.length} in all): ${e}`);
    // A peer stops its servers within a bound; hitting it means connections the server could not close.
    for (const i of cluster.running()) {
      const t = Date.now();
      await cluster.kill(i);
      if (Date.now() - t > STOP_MAX_MS) afterRun.push(`peer ${i} took ${Date.now() - t} ms to stop (connections left open?)`);
    }
    for (const p of cluster.peers) {
      const errors = p.logs.filter((l) => / ERROR /.test(l));
      for (const l of errors.slice(0, 3)) afterRun.push(`peer ${p.index} logged an error (${errors.length} in all): ${l.slice(0, 500)}`);
    }
    return { seed: opts.seed, cases, statuses, signedStatuses, fiveHundreds, failure, found, afterRun, ms: Date.now() - started };
  } catch (err) {
    log(cluster.dumpLogs().split("\n").slice(-200).join("\n"));
    throw err;
  } finally {
    process.off("uncaughtException", onEscape);
    process.off("unhandledRejection", onEscape);
    await cluster.teardown();
  }
}

/** The summary as printable lines. */
export function summaryLines(s: FuzzSummary): string[] {
  const hist = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(6)}  ${k}`);
  return [
    `fuzz: ${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s (seed ${s.seed}; rerun with FUZZ_SEED=${s.seed})`,
    `statuses:`,
    ...hist(s.statuses),
    `of which signed S3 requests:`,
    ...hist(s.signedStatuses),
    `5xx other than 501: ${s.fiveHundreds}`,
    ...[...s.found].flatMap(([kind, f]) => [`found ${f.count}x ${kind}, e.g.:`, ...f.examples.map((e) => "  " + e)]),
    ...(s.failure ? [`FAILED: ${s.failure}`] : []),
    ...s.afterRun.map((p) => `AFTER THE RUN: ${p}`),
  ];
}

/** FUZZ_SEED if set, else a fresh seed (always printed). */
export function fuzzSeed(): number {
  const env = Number(process.env.FUZZ_SEED);
  return Number.isInteger(env) ? env : Math.floor(Math.random() * 2 ** 31);
}
