// Pull-through reads of a bucket with an origin (issue 15): a GET or HEAD that misses, or
// finds a copy past its freshness, is answered from the origin and the bytes kept at RF=3.
//
// One origin fetch per object across the whole mesh. Every object has one "filler" peer: the
// first live replica of its index shard (the same rule webhook delivery uses to pick one
// peer per shard). Only the filler talks to the origin for that key:
//   - a peer that is not the filler asks it over RPC (`origin.fill`); a HEAD waits for the
//     fill to end, then reads the stored object from the mesh like any other; a GET for the
//     whole body (`stream`) is answered as soon as the fill is storing a body, and reads it
//     from the chunks stored so far (fill-join.ts: `origin.progress` polls); the caller that
//     started the fill is its MISS, the others COALESCED. Waiting costs RPCs, never an origin
//     request;
//   - on the filler, fills are single-flight per key (`flights`): the first caller starts it,
//     every later caller (local or by RPC) joins the same one; the first local caller is
//     handed the body as it arrives (X-Cache: MISS), later GETs join it by its progress
//     (COALESCED) as above, and HEADs (or GETs of a fill that stores no body: a 304, a
//     pass, an origin that sent no length) wait for its end and read the stored copy;
//   - a fill re-reads the manifest before it fetches, so a caller that arrives just after a
//     fill ended (its flight gone) sees the fresh copy and costs nothing; an origin 404 is
//     remembered on the filler for the bucket's negative TTL (bounded, in memory: the filler
//     is the one place that asks).
// If the filler cannot be reached, the asking peer fills itself (availability first: two
// peers may then each fetch once, until membership agrees again).
//
// The body is cut into chunks by the object service's own upload path (putObject with the
// origin's length, so the manifest is written only when the length matches) while a second
// branch streams to the first client (`split`): the fill reads the origin at the pace of the
// slower of the two, with at most CLIENT_BUFFER_BYTES queued for the client, so memory stays
// bounded; a client that goes away, or stalls past CLIENT_STALL_MS, is detached and the fill
// goes on. Freshness (freshness.ts) is kept in the manifest (`origin`): a stale copy is
// revalidated with If-None-Match (304: fresh again, REVALIDATED); if the origin fails or
// times out, the stale copy is served up to staleIfErrorSeconds (STALE). `no-store` and
// `private` answers are streamed to their caller and not kept; the other callers then fetch
// for themselves (nothing shared may be kept), and the filler remembers the key as one to
// pass for the negative TTL, so that later callers do not make it fetch first (a caller
// through another peer that arrives before that costs two origin requests: the filler's,
// which learns it cannot keep the answer, and its own). A HEAD on a miss waits for the whole
// fill and is answered from the stored copy. A Range GET on a miss (or on an imported object)
// is not a fill: the peer asked reads only the chunk-aligned span the range needs from the
// origin, with If-Match on the origin's ETag (learnt from the import, or from a HEAD), and
// streams the range from it without keeping it (ranged-read.ts); if the object changed under
// it, or the origin cannot answer a range, it falls back to the full fill. A stale kept copy
// asked with Range is revalidated like any other. An object imported by an origin sync
// (origin-sync.ts: a manifest with no chunks and a `remote` mark) is a miss to every reader
// here but HEAD, which answers from it.
import type { AbortOptions } from "@libp2p/interface";
import { Type, type Static } from "@sinclair/typebox";
import { MeshError, NotFoundError, SlowDownError } from "../errors.ts";
import { objectRow, objectShard } from "../metadata/keys.ts";
import type { ObjectManifest } from "../metadata/types.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { ObjectService } from "../objects/object-service.ts";
import type { Placement } from "../placement/placement.ts";
import type { Logger } from "../util/log.ts";
import { boundedCache } from "../util/lru.ts";
import { OriginError, type RemoteObjectInfo } from "./backend.ts";
import { freshnessOf } from "./freshness.ts";
import { fillProgress, joinBody, progressAnswer, PROGRESS_METHOD, type FillProgress } from "./fill-join.ts";
import { readRange } from "./ranged-read.ts";
import type { Origins } from "./origin-config.ts";
import type { Remotes } from "./registry.ts";

/** What X-Cache says of a response. */
export const CACHE_STATES = ["HIT", "MISS", "STALE", "REVALIDATED", "COALESCED"] as const;
export type CacheState = (typeof CACHE_STATES)[number];

/** What to answer a GET or HEAD with. */
export type Served =
  /** Serve `manifest` from the mesh (`cache` undefined: not an origin copy). */
  | { kind: "stored"; manifest: ObjectManifest; cache?: CacheState }
  /** Stream `body` as it comes from the origin; `manifest` gives the headers only (no chunks, no ETag yet). */
  | { kind: "stream"; manifest: ObjectManifest; body: ReadableStream<Uint8Array>; cache: "MISS" | "COALESCED" }
  /** A Range GET on a miss: `body` is bytes [start, end) of the origin's object of `manifest.size` bytes, not kept. */
  | { kind: "range"; manifest: ObjectManifest; body: ReadableStream<Uint8Array>; start: number; end: number; cache: "MISS" };

/** A Range header read against an object's size: [start, end), undefined for none (or one to ignore), or "unsatisfiable". */
export type RangeOf = (size: number) => [number, number] | undefined | "unsatisfiable";

/** Pull-through reads, as the native and S3 GET and HEAD use them. */
export interface PullThrough {
  /**
   * What to serve for bucket/key; `body`: the caller wants the whole body (a GET without Range);
   * `range`: a GET with Range (a miss is then read from the origin as a "range", not filled).
   */
  serve(bucket: string, key: string, opts: { body: boolean; head?: boolean; range?: RangeOf; signal?: AbortSignal }): Promise<Served>;
  /** Serve `origin.fill` for the keys this peer fills. */
  start(): void;
  stop(): void;
  /** Counters since start: origin requests made here, fills, coalesced callers, ranged reads of misses. */
  readonly stats: { originRequests: number; fills: number; coalesced: number; fillsInFlight: number; rangedReads: number };
}

/** What the pull-through needs. */
export interface PullThroughDeps {
  self: string;
  objects: Pick<ObjectService, "headObject" | "readObject" | "putObject" | "deleteObject" | "restamp">;
  origins: Pick<Origins, "find">;
  remotes: Pick<Remotes, "backendFor">;
  placement: Pick<Placement, "shardReplicas">;
  isAlive(id: string): boolean;
  indexShards: number;
  /** The mesh's chunk size: a ranged miss reads whole chunks of it from the origin. */
  chunkSize: number;
  rpc: Pick<Rpc, "register" | "unregister" | "call">;
  log: Logger;
  /** The peer's: a fill runs until it ends or the peer stops, whoever asked for it. */
  signal: AbortSignal;
  now?: () => number;
}

/** Bytes queued for the first client of a fill before the fill waits for it. */
const CLIENT_BUFFER_BYTES = 1024 * 1024;
/** A client whose queue stays full this long is detached (its response is cut; the fill goes on). */
const CLIENT_STALL_MS = 30_000;
/** An origin whose body sends nothing for this long fails the fill (no manifest is written). */
const ORIGIN_STALL_MS = 30_000;
/** Fills in flight on one peer at once; beyond, SlowDown. */
const MAX_FLIGHTS = 1024;
/** Origin 404s remembered at once. */
const MAX_NEGATIVES = 10_000;
/** How long a finished fill's progress stays readable, for joiners still polling it. */
const PROGRESS_LINGER_MS = 5_000;
/** How long a peer waits for the filler to finish a fill. */
const FILL_WAIT_MS = 10 * 60_000;

/** A fill's result as its callers (and the RPC reply) see it. */
const FillResult = Type.Object({
  outcome: Type.Union([Type.Literal("stored"), Type.Literal("absent"), Type.Literal("pass"), Type.Literal("streaming")]),
  cache: Type.Optional(Type.Union(CACHE_STATES.map((s) => Type.Literal(s)))),
  /** "streaming": the fill is storing the body; its headers (from the origin) and the fill's stamp, to join it by progress polls. */
  shown: Type.Optional(
    Type.Object({
      size: Type.Number(),
      contentType: Type.String(),
      meta: Type.Record(Type.String(), Type.String()),
      headers: Type.Optional(Type.Record(Type.String(), Type.String())),
      lastModified: Type.Number(),
    }),
  ),
  fetchedMs: Type.Optional(Type.Number()),
});
type FillResult = Static<typeof FillResult>;

/** Fill bucket/key on this peer (the filler), or join the fill in flight; answers when the copy is stored. */
export const FILL_METHOD = defineMethod("origin.fill", {
  params: Type.Object(
    {
      bucket: Type.String({ minLength: 3, maxLength: 63 }),
      key: Type.String({ minLength: 1, maxLength: 4096 }),
      /** The caller wants the body: answer "streaming" as soon as the fill is storing one (then poll origin.progress). */
      stream: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  result: FillResult,
});

/** The body handed to the first client of a fill. */
interface Handoff {
  manifest: ObjectManifest;
  body: ReadableStream<Uint8Array>;
}

/** X-Cache and Age headers of a served object (none for an object that is not an origin copy). */
export function cacheHeaders(served: Served, now = Date.now()): Record<string, string> {
  if (!served.cache) return {};
  const fetched = served.manifest.origin?.fetchedMs;
  const age = served.kind === "stored" && fetched !== undefined ? Math.max(0, Math.floor((now - fetched) / 1000)) : 0;
  return { "x-cache": served.cache, age: String(age) };
}

/**
 * Two readers of one origin body: `store` (the fill) drives the reads; `client` gets each
 * piece too, with at most CLIENT_BUFFER_BYTES queued. `abort` ends both. `onEnd`: the origin
 * sent its whole body. The client gets each piece one piece late, and the last one only at
 * `finish`, once the fill has stored the object: a client that has every byte can only then
 * send a GET that is a HIT, and a fill that fails at the end (a short body) fails its client
 * too rather than leave it believing it got the object.
 */
export function split(source: ReadableStream<Uint8Array>, withClient: boolean, stallMs = CLIENT_STALL_MS, originStallMs = ORIGIN_STALL_MS, onEnd?: () => void) {
  const reader = source.getReader();
  let ctl: ReadableStreamDefaultController<Uint8Array> | undefined;
  let detached = !withClient;
  /** The piece the client gets next (held back: see above). */
  let held: Uint8Array | undefined;
  let wake: (() => void) | undefined;
  const rouse = () => {
    wake?.();
    wake = undefined;
  };
  const detach = (reason?: unknown) => {
    if (!detached && reason !== undefined) {
      try {
        ctl?.error(reason);
      } catch {
        // already closed
      }
    }
    detached = true;
    rouse();
  };
  const client = withClient
    ? new ReadableStream<Uint8Array>(
        {
          start: (c) => void (ctl = c),
          pull: rouse,
          cancel: () => detach(),
        },
        new ByteLengthQueuingStrategy({ highWaterMark: CLIENT_BUFFER_BYTES }),
      )
    : undefined;
  const full = () => !detached && ctl !== undefined && (ctl.desiredSize ?? 1) <= 0;
  const store = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        // The slower reader sets the pace; a client stalled too long is let go.
        const since = Date.now();
        while (full()) {
          const left = stallMs - (Date.now() - since);
          if (left <= 0) {
            detach(new Error("the client stopped reading"));
            break;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, Math.min(left, 1000));
          });
        }
        let piece: Awaited<ReturnType<typeof reader.read>>;
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          // An origin that stops sending mid-body must not hold the fill (and its waiters) for ever.
          const stalled = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new OriginError(`the origin sent nothing for ${originStallMs} ms`)), originStallMs);
          });
          piece = await Promise.race([reader.read(), stalled]);
        } catch (err) {
          detach(err);
          reader.cancel(err).catch(() => {});
          throw err;
        } finally {
          clearTimeout(timer);
        }
        if (piece.done) {
          onEnd?.();
          c.close();
          return;
        }
        if (!detached && held) ctl?.enqueue(held);
        held = piece.value;
        c.enqueue(piece.value);
      },
      cancel(reason) {
        detach(reason ?? new Error("the fill stopped"));
        return reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  const abort = (reason: unknown) => {
    detach(reason);
    reader.cancel(reason).catch(() => {});
  };
  const finish = () => {
    if (!detached) {
      if (held) ctl?.enqueue(held);
      ctl?.close();
    }
    held = undefined;
    detached = true;
  };
  return { store, client, abort, finish };
}

/** Headers of a body streamed as it comes: what the origin said of it. */
function shownManifest(info: RemoteObjectInfo, now: number): ObjectManifest {
  const headers: Record<string, string> = {};
  if (info.cacheControl) headers["cache-control"] = info.cacheControl;
  if (info.expires) headers.expires = info.expires;
  return {
    size: info.size,
    etag: "",
    contentType: info.contentType || "application/octet-stream",
    meta: info.meta,
    ...(Object.keys(headers).length ? { headers } : {}),
    lastModified: info.lastModified ?? now,
    chunkSize: 0,
    chunks: [],
  };
}

const isMissing = (err: unknown) => err instanceof MeshError && err.code === "NoSuchKey";
const noSuchKey = (bucket: string, key: string) => new NotFoundError(`no object ${key.slice(0, 200)} in bucket ${bucket}`, "NoSuchKey");

/** Create the pull-through of one peer. */
export function createPullThrough(deps: PullThroughDeps): PullThrough {
  const clock = deps.now ?? Date.now;
  const flights = new Map<string, Promise<FillResult>>();
  // What each fill in flight (and, for PROGRESS_LINGER_MS, each just ended) has stored: its joiners read from it.
  const progresses = new Map<string, FillProgress>();
  const negatives = boundedCache<string, true>({ max: MAX_NEGATIVES }, clock);
  // Keys whose origin said no-store or private, remembered like a 404 (nginx's "hit for pass"):
  // their callers fetch for themselves without the filler fetching first.
  const passes = boundedCache<string, true>({ max: MAX_NEGATIVES }, clock);
  const stats = { originRequests: 0, fills: 0, coalesced: 0, fillsInFlight: 0, rangedReads: 0 };

  const manifestOrNull = (bucket: string, key: string, opts?: AbortOptions) => deps.objects.headObject(bucket, key, opts).catch((err) => (isMissing(err) ? null : Promise.reject(err)));

  const fillerOf = (bucket: string, key: string) =>
    deps.placement.shardReplicas(objectShard(bucket, key, deps.indexShards)).find((p) => p === deps.self || deps.isAlive(p)) ?? deps.self;

  /** One fill, run once per key at a time on this peer; `handoff` gets the body for the first client. */
  async function runFill(bucket: string, key: string, progress: FillProgress, handoff?: (h: Handoff) => void): Promise<FillResult> {
    const id = objectRow(bucket, key);
    const cfg = await deps.origins.find(bucket);
    const found = await manifestOrNull(bucket, key);
    // An object imported by a sync (`remote`) has no bytes here yet: a miss, fetched unconditionally.
    const m = found?.remote ? null : found;
    const now = clock();
    if (m && (!m.origin || m.origin.expiresMs > now)) return { outcome: "stored", cache: "HIT" };
    if (!cfg) return m ? { outcome: "stored", cache: "STALE" } : { outcome: "absent" };
    if (!m && negatives.get(id)) return { outcome: "absent" };
    if (!m && !handoff && passes.get(id)) return { outcome: "pass" };
    const backend = await deps.remotes.backendFor(cfg.remote);
    stats.originRequests++;
    let got: Awaited<ReturnType<typeof backend.get>>;
    try {
      got = await backend.get(cfg.prefix + key, { ifNoneMatch: m?.origin?.etag, signal: deps.signal });
    } catch (err) {
      if (m?.origin && now <= m.origin.expiresMs + cfg.staleIfErrorSeconds * 1000) {
        deps.log.warn(`origin of ${bucket} failed (${(err as Error).message}); serving a stale copy`);
        return { outcome: "stored", cache: "STALE" };
      }
      throw err;
    }
    if (got === "not-modified") {
      if (!m?.origin) throw new OriginError("the origin answered 304 to an unconditional read");
      await deps.objects.restamp(bucket, key, m, { ...m.origin, fetchedMs: now, expiresMs: now + (m.origin.expiresMs - m.origin.fetchedMs) });
      return { outcome: "stored", cache: "REVALIDATED" };
    }
    if (got === "changed") throw new OriginError("the origin's object changed during the read");
    if (got === null) {
      if (cfg.negativeTtlSeconds > 0) negatives.set(id, true, cfg.negativeTtlSeconds * 1000);
      // Gone at the origin: the kept copy (or the imported entry) goes too.
      if (found) await deps.objects.deleteObject(bucket, key);
      return { outcome: "absent" };
    }
    const { info } = got;
    const fresh = freshnessOf(info.cacheControl, info.expires, cfg.defaultTtlSeconds, now);
    const shown = shownManifest(info, now);
    if (!fresh.store) {
      if (cfg.negativeTtlSeconds > 0) passes.set(id, true, cfg.negativeTtlSeconds * 1000);
      if (handoff) handoff({ manifest: shown, body: got.body });
      else await got.body.cancel().catch(() => {});
      return { outcome: "pass" };
    }
    const parts = split(got.body, handoff !== undefined, CLIENT_STALL_MS, ORIGIN_STALL_MS, () => (progress.received = true));
    if (handoff && parts.client) handoff({ manifest: shown, body: parts.client });
    // Joiners can stream only what has a length to announce.
    if (info.size > 0) progress.start(shown, now);
    try {
      await deps.objects.putObject(bucket, key, parts.store, {
        contentLength: info.size > 0 ? info.size : undefined,
        contentType: shown.contentType,
        meta: info.meta,
        headers: shown.headers,
        origin: { ...(info.etag && { etag: info.etag }), fetchedMs: now, expiresMs: now + fresh.ttlMs },
        signal: deps.signal,
        onChunkStored: progress.chunkStored,
      });
    } catch (err) {
      parts.abort(err);
      throw err;
    }
    parts.finish();
    stats.fills++;
    negatives.delete(id);
    passes.delete(id);
    return { outcome: "stored", cache: "MISS" };
  }

  /**
   * Fill here (this peer is the filler, or the filler cannot be reached): single-flight per key.
   * `join`: a caller that wants the body and finds (or, by RPC, starts) a fill is answered
   * "streaming" once the fill is storing a body, to read it by progress polls.
   */
  async function fillHere(bucket: string, key: string, wantBody: boolean, join = false): Promise<FillResult | { outcome: "stream"; handoff: Handoff }> {
    const id = objectRow(bucket, key);
    const inFlight = flights.get(id);
    if (inFlight) {
      stats.coalesced++;
      const p = progresses.get(id);
      if (wantBody && p && !p.done) {
        const joined = await streamingOr(p, inFlight, "COALESCED");
        if (joined) return joined;
      }
      const r = await inFlight;
      return r.outcome === "stored" && (r.cache === "MISS" || r.cache === "REVALIDATED") ? { outcome: "stored", cache: "COALESCED" } : r;
    }
    if (flights.size >= MAX_FLIGHTS) throw new SlowDownError(`${MAX_FLIGHTS} origin fills are in flight on this peer`);
    let handed: ((h: Handoff) => void) | undefined;
    const handoff = wantBody && !join ? new Promise<Handoff>((resolve) => (handed = resolve)) : undefined;
    const progress = fillProgress();
    progresses.set(id, progress);
    const done = runFill(bucket, key, progress, handed).then(
      (r) => {
        progress.done = true;
        return r;
      },
      (err: Error) => {
        progress.failed = err.message.slice(0, 200);
        throw err;
      },
    );
    const ended = done.finally(() => {
      flights.delete(id);
      stats.fillsInFlight = flights.size;
      // Joiners still polling see done/failed for a moment; then the final manifest answers them.
      // Bounded: past MAX_FLIGHTS lingering, a finished fill's progress goes at once (its joiners read the manifest).
      if (progresses.size > 2 * MAX_FLIGHTS) progresses.delete(id);
      else setTimeout(() => progresses.get(id) === progress && progresses.delete(id), PROGRESS_LINGER_MS).unref?.();
    });
    // The first caller may have its body already and not wait for the end: the flight's failure is its joiners' to see.
    ended.catch((err: Error) => deps.log.debug(`fill of ${bucket}/${key.slice(0, 100)} failed: ${err.message}`));
    flights.set(id, ended);
    stats.fillsInFlight = flights.size;
    if (join) return (await streamingOr(progress, ended, "MISS")) ?? ended;
    if (!handoff) return ended;
    return Promise.race([handoff.then((h) => ({ outcome: "stream" as const, handoff: h })), ended]);
  }

  /** "streaming" once `p` has a body to join, or undefined if the fill ends first (its result then answers). */
  async function streamingOr(p: FillProgress, flight: Promise<FillResult>, cache: "MISS" | "COALESCED"): Promise<FillResult | undefined> {
    const began = await Promise.race([p.started.then(() => true), flight.then(() => false, () => false)]);
    // A fill that has its whole body is storing its last chunks and the manifest: a moment, after
    // which the caller is answered from the kept copy, with its ETag.
    if (!began || p.received || !p.shown || p.fetchedMs === undefined) return undefined;
    const { size, contentType, meta, headers, lastModified } = p.shown;
    return { outcome: "streaming", cache, shown: { size, contentType, meta, ...(headers && { headers }), lastModified }, fetchedMs: p.fetchedMs };
  }

  /** Ask the filler; fill here if it cannot be asked. */
  async function fillAt(filler: string, bucket: string, key: string, wantBody: boolean, signal?: AbortSignal) {
    if (filler === deps.self) return fillHere(bucket, key, wantBody);
    try {
      return (await deps.rpc.call(filler, FILL_METHOD, { bucket, key, ...(wantBody && { stream: true }) }, { timeoutMs: FILL_WAIT_MS, signal })).result;
    } catch (err) {
      if (signal?.aborted) throw err;
      const code = err instanceof MeshError ? err.code : undefined;
      if (code !== undefined && !["PeerUnreachable", "ServiceUnavailable", "UnknownMethod", "InternalError"].includes(code)) throw err;
      deps.log.info(`filler ${filler.slice(-6)} of ${bucket} could not be asked (${(err as Error).message}); filling here`);
      return fillHere(bucket, key, wantBody);
    }
  }

  /** A `pass` (the origin said no-store): fetch for this caller alone and keep nothing. */
  async function passThrough(bucket: string, key: string, signal?: AbortSignal): Promise<Served> {
    const cfg = await deps.origins.find(bucket);
    if (!cfg) throw noSuchKey(bucket, key);
    const backend = await deps.remotes.backendFor(cfg.remote);
    stats.originRequests++;
    const got = await backend.get(cfg.prefix + key, { signal });
    if (got === null) throw noSuchKey(bucket, key);
    if (typeof got === "string") throw new OriginError(`the origin answered "${got}" to an unconditional read`);
    return { kind: "stream", manifest: shownManifest(got.info, clock()), body: got.body, cache: "MISS" };
  }

  /**
   * A Range GET on a miss, or on an imported object: the span read from the origin and not
   * kept. null: do a full fill instead (no ETag or size to pin the read to, or the object
   * changed under it, or the origin cannot answer a range).
   */
  async function rangedMiss(bucket: string, key: string, m: ObjectManifest | null, rangeOf: RangeOf, signal?: AbortSignal): Promise<Served | null> {
    const cfg = await deps.origins.find(bucket, { signal });
    if (cfg?.mode !== "pull-through") return null;
    const id = objectRow(bucket, key);
    if (!m && negatives.get(id)) throw noSuchKey(bucket, key);
    const backend = await deps.remotes.backendFor(cfg.remote);
    let etag = m?.remote?.etag;
    let size = m?.size ?? 0;
    if (!etag || size <= 0) {
      stats.originRequests++;
      const info = await backend.head(cfg.prefix + key, { signal });
      if (!info) {
        if (cfg.negativeTtlSeconds > 0) negatives.set(id, true, cfg.negativeTtlSeconds * 1000);
        throw noSuchKey(bucket, key);
      }
      ({ etag, size } = info);
    }
    if (!etag || size <= 0) return null;
    const span = rangeOf(size);
    if (span === "unsatisfiable") {
      throw new MeshError("InvalidRange", `the range is not satisfiable for an object of ${size} bytes`, { headers: { "content-range": `bytes */${size}` } });
    }
    if (!span) return null;
    const [start, end] = span;
    stats.originRequests++;
    const got = await readRange(backend, cfg.prefix + key, { start, end, size, etag }, deps.chunkSize, ORIGIN_STALL_MS, signal);
    if (got.kind === "absent") throw noSuchKey(bucket, key);
    if (got.kind === "fallback") {
      deps.log.info(`ranged read of ${bucket}/${key.slice(0, 100)}: ${got.why}; reading it whole`);
      return null;
    }
    stats.rangedReads++;
    return { kind: "range", manifest: shownManifest(got.info, clock()), body: got.body, start, end, cache: "MISS" };
  }

  return {
    stats,
    async serve(bucket, key, opts) {
      // A miss keeps what it said (in a versioned bucket: that a delete marker is current).
      let miss: unknown;
      const m = await deps.objects.headObject(bucket, key, opts).catch((err) => (isMissing(err) ? ((miss = err), null) : Promise.reject(err)));
      if (opts.range && !opts.head && (!m || m.remote)) {
        const r = await rangedMiss(bucket, key, m, opts.range, opts.signal);
        if (r) return r;
      }
      // A HEAD of an imported object is answered from what the sync imported: no fetch for headers alone.
      if (m?.remote && opts.head) return { kind: "stored", manifest: m, cache: "MISS" };
      if (m && !m.origin && !m.remote) return { kind: "stored", manifest: m };
      if (m?.origin && m.origin.expiresMs > clock()) return { kind: "stored", manifest: m, cache: "HIT" };
      // A write-through bucket is the truth its remote copies: a miss there is a miss (pulling
      // it in could bring back a key deleted in the mesh whose delete is still queued).
      if (!m && (await deps.origins.find(bucket, opts))?.mode !== "pull-through") throw miss ?? noSuchKey(bucket, key);
      const r = await fillAt(fillerOf(bucket, key), bucket, key, opts.body, opts.signal);
      if (r.outcome === "stream") return { kind: "stream", manifest: r.handoff.manifest, body: r.handoff.body, cache: "MISS" };
      if (r.outcome === "streaming" && r.shown && r.fetchedMs !== undefined) {
        const filler = fillerOf(bucket, key);
        const id = objectRow(bucket, key);
        // The fill runs where it was asked: here if this peer is (or stood in for) the filler.
        const local = progresses.get(id);
        const poll =
          local && local.fetchedMs === r.fetchedMs
            ? async (from: number) => progressAnswer(progresses.get(id), from)
            : async (from: number, signal: AbortSignal) => (await deps.rpc.call(filler, PROGRESS_METHOD, { bucket, key, from }, { timeoutMs: 30_000, signal })).result;
        const manifest: ObjectManifest = { ...r.shown, etag: "", chunkSize: 0, chunks: [] };
        return { kind: "stream", manifest, body: joinBody(deps.objects, bucket, key, r.shown.size, r.fetchedMs, poll), cache: r.cache === "MISS" ? "MISS" : "COALESCED" };
      }
      if (r.outcome === "absent") throw noSuchKey(bucket, key);
      if (r.outcome === "pass") return passThrough(bucket, key, opts.signal);
      const stored = await deps.objects.headObject(bucket, key, opts);
      return { kind: "stored", manifest: stored, cache: r.cache ?? "HIT" };
    },
    start() {
      deps.rpc.register(FILL_METHOD, async ({ params }) => {
        // Not the caller's signal: a caller that gives up does not stop the fill.
        const r = await fillHere(params.bucket, params.key, params.stream === true, params.stream === true);
        const result: FillResult = r.outcome === "stream" ? { outcome: "stored", cache: "MISS" } : r;
        return { result };
      });
      deps.rpc.register(PROGRESS_METHOD, async ({ params }) => ({ result: progressAnswer(progresses.get(objectRow(params.bucket, params.key)), params.from) }));
    },
    stop: () => {
      deps.rpc.unregister(FILL_METHOD);
      deps.rpc.unregister(PROGRESS_METHOD);
    },
  };
}
