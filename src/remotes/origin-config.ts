// A bucket's origin: the remote it pulls through from (PUT /buckets/{b}/origin), one row of
// BUCKETS_SHARD (originRow) beside the bucket's own. Read on every miss of the bucket, so
// each peer trusts what it read for a moment (the shared "origins" cache, absences too: a
// bucket without an origin costs one cached lookup per miss, not a quorum read); a change
// through any peer is forgotten mesh-wide at once.
import type { AbortOptions } from "@libp2p/interface";
import { Type } from "@sinclair/typebox";
import { BadRequestError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { BUCKETS_SHARD, originRow } from "../metadata/keys.ts";
import type { SharedCaches } from "../metadata/shared-cache.ts";

/** How a bucket uses its remote. */
export const ORIGIN_MODES = ["pull-through", "write-through"] as const;

/** A bucket's origin as stored and shown. */
export interface OriginConfig {
  remote: string;
  /** Put before each key at the remote. */
  prefix: string;
  mode: (typeof ORIGIN_MODES)[number];
  /** Freshness when the origin says nothing (no Cache-Control max-age, no Expires). */
  defaultTtlSeconds: number;
  /** How long an origin's 404 is remembered. */
  negativeTtlSeconds: number;
  /** How long past its freshness a copy is still served when the origin fails or times out. */
  staleIfErrorSeconds: number;
  updatedMs: number;
  /** Write-through only: where its queue of changes starts (src/remotes/write-through.ts); kept when the origin is set again in the same mode, remote and prefix. */
  writeThroughSinceMs?: number;
}

/** Defaults, as the issue names them. */
export const ORIGIN_DEFAULTS = { defaultTtlSeconds: 3600, negativeTtlSeconds: 60, staleIfErrorSeconds: 86400 } as const;
/** Longest TTL accepted: a year. */
const MAX_TTL_SECONDS = 365 * 24 * 3600;
const MAX_PREFIX_CHARS = 512;
const ORIGIN_CACHE_MS = 2000;

/** Bucket origins, as the routes and the pull-through use them. */
export interface Origins {
  /** Set the bucket's origin from a request body (the remote must exist). */
  put(bucket: string, raw: unknown, opts?: AbortOptions): Promise<OriginConfig>;
  /** The bucket's origin, or NoSuchOrigin. */
  get(bucket: string, opts?: AbortOptions): Promise<OriginConfig>;
  /** The bucket's origin, or null (cached: the pull-through asks on every miss). */
  find(bucket: string, opts?: AbortOptions): Promise<OriginConfig | null>;
  remove(bucket: string, opts?: AbortOptions): Promise<void>;
}

/** What bucket origins need. */
export interface OriginsDeps {
  index: Pick<IndexClient, "read" | "write">;
  caches: SharedCaches;
  stamp(): string;
  requireBucket(bucket: string, opts?: AbortOptions): Promise<void>;
  remoteExists(name: string, opts?: AbortOptions): Promise<boolean>;
  /** Can the remote take writes (write-through needs it)? */
  remoteWritable?(name: string, opts?: AbortOptions): Promise<boolean>;
  /** Told after a change through this peer (the write-through worker reads the origins again). */
  changed?(): void;
}

/** A request body checked into an origin (a 400 naming the field). */
export function validateOrigin(raw: unknown): Omit<OriginConfig, "updatedMs"> {
  const bad = (why: string) => new BadRequestError(why, "InvalidArgument");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("the body is a JSON object: {remote, prefix?, mode, defaultTtlSeconds?, negativeTtlSeconds?, staleIfErrorSeconds?}");
  const b = raw as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!["remote", "prefix", "mode", "defaultTtlSeconds", "negativeTtlSeconds", "staleIfErrorSeconds"].includes(k)) throw bad(`unknown field "${k.slice(0, 40)}"`);
  if (typeof b.remote !== "string" || !b.remote) throw bad("remote names a remote (PUT /admin/remotes/{name})");
  if (b.prefix !== undefined && (typeof b.prefix !== "string" || b.prefix.length > MAX_PREFIX_CHARS)) throw bad(`prefix is a string of at most ${MAX_PREFIX_CHARS} characters`);
  const mode = b.mode ?? "pull-through";
  if (!ORIGIN_MODES.includes(mode as OriginConfig["mode"])) throw bad(`mode is one of ${ORIGIN_MODES.join(", ")}`);
  const ttl = (field: keyof typeof ORIGIN_DEFAULTS) => {
    const v = b[field] ?? ORIGIN_DEFAULTS[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_TTL_SECONDS) throw bad(`${field} is a whole number of seconds from 0 to ${MAX_TTL_SECONDS}`);
    return v;
  };
  return {
    remote: b.remote,
    prefix: (b.prefix as string | undefined) ?? "",
    mode: mode as OriginConfig["mode"],
    defaultTtlSeconds: ttl("defaultTtlSeconds"),
    negativeTtlSeconds: ttl("negativeTtlSeconds"),
    staleIfErrorSeconds: ttl("staleIfErrorSeconds"),
  };
}

/** Create bucket origins. */
export function createOrigins(deps: OriginsDeps): Origins {
  const cache = deps.caches.define<OriginConfig>("origins", { max: 10_000, ttlMs: ORIGIN_CACHE_MS, missTtlMs: ORIGIN_CACHE_MS, key: Type.String({ minLength: 1, maxLength: 63 }) });
  const read = (bucket: string, opts?: AbortOptions) => cache.get(bucket, async () => ((await deps.index.read(BUCKETS_SHARD, originRow(bucket), opts))?.value as OriginConfig | null) ?? null);

  return {
    async put(bucket, raw, opts) {
      await deps.requireBucket(bucket, opts);
      const spec = validateOrigin(raw);
      if (!(await deps.remoteExists(spec.remote, opts).catch(() => false))) throw new BadRequestError(`no remote named ${spec.remote.slice(0, 80)} (define it with PUT /admin/remotes/{name})`, "InvalidArgument");
      if (spec.mode === "write-through" && deps.remoteWritable && !(await deps.remoteWritable(spec.remote, opts))) {
        throw new BadRequestError(`remote ${spec.remote.slice(0, 80)} is read-only: write-through needs a remote that takes writes (s3, azure, gcs, swift)`, "InvalidArgument");
      }
      const now = Date.now();
      const row: OriginConfig = { ...spec, updatedMs: now };
      if (spec.mode === "write-through") {
        // Set again with the same remote and prefix, the queue keeps its place: nothing pending is skipped.
        const before = await deps.index.read(BUCKETS_SHARD, originRow(bucket), opts).then((r) => (r?.value as OriginConfig | null) ?? null);
        const same = before?.mode === "write-through" && before.remote === spec.remote && before.prefix === spec.prefix;
        row.writeThroughSinceMs = same ? (before.writeThroughSinceMs ?? before.updatedMs) : now;
      }
      await deps.index.write(BUCKETS_SHARD, originRow(bucket), { ts: deps.stamp(), value: row }, opts);
      await cache.forget(bucket);
      cache.remember(bucket, row);
      deps.changed?.();
      return row;
    },
    async get(bucket, opts) {
      await deps.requireBucket(bucket, opts);
      const row = await read(bucket, opts);
      if (!row) throw new NotFoundError(`bucket ${bucket} has no origin`, "NoSuchOrigin");
      return row;
    },
    find: read,
    async remove(bucket, opts) {
      await this.get(bucket, opts);
      await deps.index.write(BUCKETS_SHARD, originRow(bucket), { ts: deps.stamp(), value: null }, opts);
      await cache.forget(bucket);
      deps.changed?.();
    },
  };
}
