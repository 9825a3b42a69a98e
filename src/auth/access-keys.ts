// Access keys, mesh-wide. Each key is one row of the replicated index (shard "k"), so
// every peer accepts every key. A key is an S3 access key id + secret; its native-API
// token is derived from the secret (HMAC), so there is one record to create and one to
// revoke, and a leaked token does not let anyone sign S3 requests. A revocation is final:
// in the keys shard a delete marker outranks any value whatever the stamps (`newer` in
// metadata/types.ts) and never expires, so no row, however new its stamp, brings a key back.
import crypto from "node:crypto";
import { Type } from "@sinclair/typebox";
import { BadRequestError, ConflictError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { ACCESS_KEY_ID_RE, KEYS_SHARD, validateBucketName } from "../metadata/keys.ts";
import { listAll, type ListingDeps } from "../metadata/listing.ts";
import type { SharedCaches } from "../metadata/shared-cache.ts";
import type { Placement } from "../placement/placement.ts";
import { encodeTimestamp, type Hlc } from "../util/hlc.ts";
import { openRecord, sealRecord, type SecretSealer } from "./sealed-secret.ts";

/** What a key may do in a bucket; each level includes the ones before it. */
export type Permission = "read" | "write" | "owner";
export const PERMISSIONS: readonly Permission[] = ["read", "write", "owner"];

/** Who is asking: the key's id, whether it is an admin, and its per-bucket grants. */
export interface Principal {
  accessKeyId: string;
  admin: boolean;
  /** Bucket name (or "*" for every bucket) to permission. */
  buckets: Record<string, Permission>;
  /**
   * May create buckets of any free name, and then holds owner rights on each bucket it
   * created (the bucket's row names it: BucketInfo.owner). Absent on keys made before it existed.
   */
  create?: boolean;
  /** The key's name (S3 shows it as the DisplayName of what the key owns). */
  name?: string;
}

/** An access key (the index row holds it with the secret sealed: src/auth/sealed-secret.ts). */
export interface AccessKey extends Principal {
  secretAccessKey: string;
  name: string;
  createdMs: number;
}

/** A key as listed: everything but the secret. */
export type AccessKeyInfo = Omit<AccessKey, "secretAccessKey">;

/** A newly created key, with the secrets shown this once. */
export interface CreatedKey extends AccessKeyInfo {
  secretAccessKey: string;
  token: string;
}

/** What a new key may do. */
export interface KeySpec {
  name?: string;
  admin?: boolean;
  buckets?: Record<string, Permission>;
  /** May create buckets and owns what it creates. */
  create?: boolean;
}

/** The mesh's access keys as one peer sees them. */
export interface AccessKeys {
  create(spec: KeySpec): Promise<CreatedKey>;
  /** Store a key with a given id and secret (the admin key from MESH_ADMIN_KEY/SECRET). */
  put(key: AccessKey): Promise<void>;
  /** A live key by id (cached for a few seconds; revocations clear the cache mesh-wide). */
  get(accessKeyId: string): Promise<AccessKey | null>;
  /** The key a native-API token belongs to, or null. */
  byToken(token: string): Promise<AccessKey | null>;
  list(): Promise<AccessKeyInfo[]>;
  revoke(accessKeyId: string): Promise<void>;
  /** Lookups cached now (at most KEY_CACHE_MAX). */
  cachedLookups(): number;
}

/** Dependencies of the key store. */
export interface AccessKeysDeps {
  self: string;
  index: IndexClient;
  placement: Placement;
  hlc: Hlc;
  /** Where the "keys" cache lives (every change to a key is forgotten mesh-wide through it). */
  caches: SharedCaches;
  /** Seals secrets before they are written to the index and opens them when read. */
  sealer: SecretSealer;
}

/** How long a peer trusts a key it found; every change also clears caches directly. */
const CACHE_MS = 5000;
/**
 * How long a peer trusts that a key id does not exist: short, since a miss is cheap to
 * ask again and a key created through a peer this one did not hear from is then accepted soon.
 */
const MISS_CACHE_MS = 1000;
/** Lookups remembered at most: unknown ids a client makes up evict old entries, never grow memory. */
export const KEY_CACHE_MAX = 10_000;
const TOKEN_PREFIX = "mst_";
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A new access key id: "MK" and 18 random base32 characters (the shape of AWS's ids). */
export function newAccessKeyId(): string {
  const bytes = crypto.randomBytes(18);
  return "MK" + Array.from(bytes, (b) => BASE32[b & 31]).join("");
}

/** A new 40-character secret. */
export function newSecret(): string {
  return crypto.randomBytes(30).toString("base64url");
}

/** The native-API bearer token of a key: its id and an HMAC of its secret. */
export function nativeToken(accessKeyId: string, secretAccessKey: string): string {
  const mac = crypto.createHmac("sha256", secretAccessKey).update("meshstore native token v1").digest("base64url");
  return `${TOKEN_PREFIX}${accessKeyId}_${mac}`;
}

/**
 * Does `who` hold at least `need` on `bucket`? `owner` is the bucket's owner when the caller
 * knows it (BucketInfo.owner): the key that created a bucket holds every permission on it.
 */
export function allows(who: Principal, bucket: string, need: Permission, owner?: string): boolean {
  if (who.admin) return true;
  if (owner !== undefined && owner === who.accessKeyId) return true;
  const own = (name: string) => (Object.hasOwn(who.buckets, name) ? who.buckets[name] : undefined);
  const held = own(bucket) ?? own("*");
  return held !== undefined && PERMISSIONS.indexOf(held) >= PERMISSIONS.indexOf(need);
}

/** Does `who` hold anything at all on `bucket`, owned by `owner` if known (ListBuckets shows only those)? */
export function seesBucket(who: Principal, bucket: string, owner?: string): boolean {
  return allows(who, bucket, "read", owner);
}

/** May `who` create `bucket` (if the name is free): a key with the `create` permission, or owner rights on the name. */
export function mayCreate(who: Principal, bucket: string): boolean {
  return who.create === true || allows(who, bucket, "owner");
}

/** Check a key spec from a client; throws BadRequest with a plain message. */
export function validateSpec(spec: unknown): KeySpec {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) throw new BadRequestError("the body must be a JSON object: {name?, admin?, create?, buckets?: {bucket: read|write|owner}}", "InvalidArgument");
  const s = spec as Record<string, unknown>;
  if (s.name !== undefined && (typeof s.name !== "string" || s.name.length > 128)) throw new BadRequestError("name must be a string of at most 128 characters", "InvalidArgument");
  if (s.admin !== undefined && typeof s.admin !== "boolean") throw new BadRequestError("admin must be true or false", "InvalidArgument");
  if (s.create !== undefined && typeof s.create !== "boolean") throw new BadRequestError("create must be true or false", "InvalidArgument");
  const buckets: Record<string, Permission> = {};
  if (s.buckets !== undefined) {
    if (typeof s.buckets !== "object" || s.buckets === null || Array.isArray(s.buckets)) throw new BadRequestError("buckets must be an object of bucket name to read, write or owner", "InvalidArgument");
    for (const [bucket, perm] of Object.entries(s.buckets)) {
      if (bucket !== "*") validateBucketName(bucket);
      if (!PERMISSIONS.includes(perm as Permission)) throw new BadRequestError(`permission on ${bucket} must be read, write or owner, not ${JSON.stringify(perm)}`, "InvalidArgument");
      buckets[bucket] = perm as Permission;
    }
  }
  return { name: s.name as string | undefined, admin: s.admin as boolean | undefined, buckets, ...(s.create === true ? { create: true } : {}) };
}

function info(k: AccessKeyInfo): AccessKeyInfo {
  return { accessKeyId: k.accessKeyId, name: k.name, admin: k.admin, buckets: k.buckets, ...(k.create ? { create: true } : {}), createdMs: k.createdMs };
}

/** Create the key store of one peer. */
export function createAccessKeys(deps: AccessKeysDeps): AccessKeys {
  const { index, hlc } = deps;
  // Misses are cached too, so unknown ids cannot make every request ask every peer; a key
  // created since is still accepted at once, because creation clears every peer's entry.
  const cache = deps.caches.define<AccessKey>("keys", { max: KEY_CACHE_MAX, ttlMs: CACHE_MS, missTtlMs: MISS_CACHE_MS, key: Type.String({ pattern: ACCESS_KEY_ID_RE.source }) });
  const listing: ListingDeps = { index, placement: deps.placement, self: deps.self };
  const now = () => encodeTimestamp(hlc.now());

  async function write(id: string, value: AccessKey | null) {
    await index.write(KEYS_SHARD, id, { ts: now(), value: value && sealRecord(value, deps.sealer) });
    // Peers that looked the id up recently (found or not) trust that for a moment: tell them.
    await cache.forget(id);
  }

  async function get(id: string): Promise<AccessKey | null> {
    if (!ACCESS_KEY_ID_RE.test(id)) return null;
    return cache.get(id, async () => {
      const entry = await index.read(KEYS_SHARD, id);
      return entry?.value ? openRecord<AccessKey>(entry.value, deps.sealer) : null;
    });
  }

  return {
    async create(spec) {
      const key: AccessKey = {
        accessKeyId: newAccessKeyId(),
        secretAccessKey: newSecret(),
        name: spec.name ?? "",
        admin: spec.admin ?? false,
        buckets: spec.buckets ?? {},
        ...(spec.create ? { create: true } : {}),
        createdMs: Date.now(),
      };
      await write(key.accessKeyId, key);
      return { ...info(key), secretAccessKey: key.secretAccessKey, token: nativeToken(key.accessKeyId, key.secretAccessKey) };
    },

    async put(key) {
      if (!ACCESS_KEY_ID_RE.test(key.accessKeyId)) throw new BadRequestError("an access key id is 16 to 64 uppercase letters and digits", "InvalidArgument");
      if (key.secretAccessKey.length < 16) throw new BadRequestError("a secret access key has at least 16 characters", "InvalidArgument");
      // Revocations are final (deletes in the keys shard win whatever their stamps): say so
      // rather than store nothing.
      const current = await index.read(KEYS_SHARD, key.accessKeyId);
      if (current && current.value === null) throw new ConflictError(`access key ${key.accessKeyId} was revoked; a revoked key id cannot be used again`, "KeyRevoked");
      await write(key.accessKeyId, key);
    },

    get,

    async byToken(token) {
      if (!token.startsWith(TOKEN_PREFIX)) return null;
      // Ids never contain "_" (the HMAC part may), so the first one after the prefix ends the id.
      const id = token.slice(TOKEN_PREFIX.length, token.indexOf("_", TOKEN_PREFIX.length));
      const key = await get(id);
      if (!key) return null;
      const expected = Buffer.from(nativeToken(key.accessKeyId, key.secretAccessKey));
      const given = Buffer.from(token);
      return expected.length === given.length && crypto.timingSafeEqual(expected, given) ? key : null;
    },

    async list() {
      return (await listAll<AccessKeyInfo>(listing, { shards: [KEYS_SHARD], rowPrefix: "" })).map((r) => info(r.value));
    },

    async revoke(id) {
      if (!(await get(id))) throw new NotFoundError(`no access key ${id.slice(0, 80)}`, "NoSuchKey");
      await write(id, null);
    },

    cachedLookups: () => cache.size,
  };
}
