// A bucket's settings that S3 configures as one document each (default encryption, tags,
// CORS rules, lifecycle rules): each is one row of the buckets shard (its name from
// src/metadata/keys.ts), replaced whole by a quorum write and removed with its bucket.
// Settings read on the path of other requests (the default encryption on every write that
// names none, CORS on every answer to a request with an Origin) are cached on every peer for
// a moment, absences too, and forgotten mesh-wide when changed (src/metadata/shared-cache.ts).
import { Type } from "@sinclair/typebox";
import type { AbortOptions } from "@libp2p/interface";
import type { LifecycleRule } from "../lifecycle/rules.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { BUCKETS_SHARD, bucketTagsRow, corsRow, encryptionRow, lifecycleRow } from "../metadata/keys.ts";
import type { SharedCache, SharedCaches } from "../metadata/shared-cache.ts";
import type { CorsRule, IndexEntry } from "../metadata/types.ts";

/** A bucket's default encryption (S3's PutBucketEncryption): the algorithm new objects get when a request names none. */
export interface BucketEncryption {
  algorithm: "AES256";
  /** S3's BucketKeyEnabled, kept to be returned as it was set (it changes nothing here: there is no KMS). */
  bucketKey?: boolean;
}

/** One setting of every bucket. */
export interface BucketSetting<T> {
  /** The bucket's setting, or null when it has none. */
  get(bucket: string, opts?: AbortOptions): Promise<T | null>;
  /** What `get` would answer from this peer's cache now, or undefined (a hot path's way to skip an await). */
  peek(bucket: string): { value: T | null } | undefined;
  /** Replace it (null: remove it). */
  set(bucket: string, value: T | null): Promise<void>;
}

/** The settings, by name. */
export interface BucketSettingValues {
  encryption: BucketEncryption;
  tags: Record<string, string>;
  cors: CorsRule[];
  lifecycle: LifecycleRule[];
}

export type BucketSettings = { [K in keyof BucketSettingValues]: BucketSetting<BucketSettingValues[K]> } & {
  /** Remove every setting of a deleted bucket: a new bucket of the same name starts without them. */
  clear(bucket: string): Promise<void>;
};

/** Buckets whose cached settings one peer holds at most, per setting. */
const CACHE_MAX = 10_000;
/** How long a cached setting (or its absence) is trusted; a change through any peer drops it at once everywhere reachable. */
const CACHE_MS = 2000;

/** What the settings are kept with. */
export interface BucketSettingsDeps {
  index: Pick<IndexClient, "read" | "write">;
  caches: SharedCaches;
  /** A fresh HLC stamp. */
  now(): string;
}

/** Create the bucket settings of one peer. */
export function createBucketSettings(deps: BucketSettingsDeps): BucketSettings {
  const { index } = deps;
  const cached = <T>(name: "encryption" | "cors") => deps.caches.define<T>(name, { max: CACHE_MAX, ttlMs: CACHE_MS, missTtlMs: CACHE_MS, key: Type.String({ minLength: 1, maxLength: 63 }) });

  function setting<T>(rowOf: (bucket: string) => string, cache?: SharedCache<T>): BucketSetting<T> {
    const load = async (bucket: string, opts?: AbortOptions) => ((await index.read(BUCKETS_SHARD, rowOf(bucket), opts)) as IndexEntry<T> | null)?.value ?? null;
    return {
      get: (bucket, opts) => (cache ? cache.get(bucket, () => load(bucket, opts)) : load(bucket, opts)),
      peek: (bucket) => cache?.peek(bucket),
      async set(bucket, value) {
        await index.write(BUCKETS_SHARD, rowOf(bucket), { ts: deps.now(), value });
        await cache?.forget(bucket);
      },
    };
  }

  const settings = {
    encryption: setting<BucketEncryption>(encryptionRow, cached("encryption")),
    tags: setting<Record<string, string>>(bucketTagsRow),
    cors: setting<CorsRule[]>(corsRow, cached("cors")),
    lifecycle: setting<LifecycleRule[]>(lifecycleRow),
  };
  return {
    ...settings,
    async clear(bucket) {
      for (const s of Object.values(settings)) await s.set(bucket, null);
    },
  };
}
