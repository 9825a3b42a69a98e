// The remotes registry: named remote stores an admin defines (PUT /admin/remotes/{name}) and
// buckets then pull through from (src/remotes/origin-config.ts). Each remote is one row of
// BUCKETS_SHARD (remoteRow), written and read with the mesh-wide quorum like access keys;
// its credentials enter the row sealed with the mesh's sealer, with "remote:<name>" as the
// associated data (a sealed blob copied onto another remote's row does not open there), and
// never leave it in clear except to build the backend: listings show only whether a remote
// has credentials. Backends are built by one function (`build`): by default the adapter of
// the remote's type (factory.ts), which also checks the body type by type.
// Built backends are kept in a small bounded cache, checked against the row's stamp so a
// remote changed through another peer is rebuilt once the shared cache forgets the old row.
import type { AbortOptions } from "@libp2p/interface";
import { Type } from "@sinclair/typebox";
import type { SecretSealer } from "../auth/sealed-secret.ts";
import { BadRequestError, MeshError, NotFoundError } from "../errors.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { BUCKETS_SHARD, REMOTE_ROW_PREFIX, remoteRow } from "../metadata/keys.ts";
import { listAll, type ListingDeps } from "../metadata/listing.ts";
import type { SharedCaches } from "../metadata/shared-cache.ts";
import { boundedCache } from "../util/lru.ts";
import type { RemoteBackend } from "./backend.ts";
import { checkRemoteSpec, createBackend, type RemoteSpec } from "./factory.ts";

export type { RemoteSpec };

/** What a remote's name looks like. */
export const REMOTE_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Built backends kept at once, and how long a remote's row is trusted by a peer. */
const BACKENDS_MAX = 256;
const REMOTE_CACHE_MS = 2000;

/** A remote as its row stores it: credentials sealed. */
export interface StoredRemote extends Omit<RemoteSpec, "credentials"> {
  sealedCredentials?: string;
  updatedMs: number;
}

/** A remote as the API shows it: never its secrets. */
export interface ShownRemote extends Omit<RemoteSpec, "credentials"> {
  name: string;
  hasCredentials: boolean;
  updatedMs: number;
}

/** Builds the backend of a remote. */
export type BackendBuilder = (name: string, spec: RemoteSpec) => RemoteBackend;

/** The built-in builder: the adapter of the spec's type (src/remotes/factory.ts). */
export const adapterBuilder: BackendBuilder = (_name, spec) => createBackend(spec, spec.credentials ?? {});

/** The registry of remotes, as the admin routes and the pull-through use it. */
export interface Remotes {
  /** Define or replace remote `name` from a request body; answers it as shown. */
  put(name: string, raw: unknown, opts?: AbortOptions): Promise<ShownRemote>;
  /** The remote as shown, or NoSuchRemote. */
  get(name: string, opts?: AbortOptions): Promise<ShownRemote>;
  /** Every remote, as shown. */
  list(): Promise<ShownRemote[]>;
  /** Remove a remote (NoSuchRemote if there is none). */
  remove(name: string, opts?: AbortOptions): Promise<void>;
  /** True if a remote of that name exists. */
  exists(name: string, opts?: AbortOptions): Promise<boolean>;
  /** The backend of a remote, built once and cached (NoSuchRemote if there is none). */
  backendFor(name: string, opts?: AbortOptions): Promise<RemoteBackend>;
}

/** What the registry needs. */
export interface RemotesDeps {
  index: Pick<IndexClient, "read" | "write">;
  listing: ListingDeps;
  sealer: SecretSealer;
  caches: SharedCaches;
  /** A fresh HLC stamp for a row written. */
  stamp(): string;
  build?: BackendBuilder;
}

/** Throw InvalidArgument unless `name` is a usable remote name. */
export function validateRemoteName(name: string): void {
  if (!REMOTE_NAME_RE.test(name)) throw new BadRequestError(`invalid remote name "${name.slice(0, 80)}": use 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit`, "InvalidArgument");
}


/** A request body checked into a spec, secrets in `credentials` (every bad field a 400 naming it). */
export function validateRemoteSpec(raw: unknown): RemoteSpec {
  const { spec, secrets } = checkRemoteSpec(raw);
  const { credentials: _names, ...rest } = spec;
  return { ...rest, ...(Object.keys(secrets).length && { credentials: secrets }) };
}

/** The associated data a remote's credentials are sealed to. */
const sealedTo = (name: string) => `remote:${name}`;

/** Create the registry. */
export function createRemotes(deps: RemotesDeps): Remotes {
  const build = deps.build ?? adapterBuilder;
  const rows = deps.caches.define<StoredRemote>("remotes", { max: 1000, ttlMs: REMOTE_CACHE_MS, key: Type.String({ minLength: 1, maxLength: 63 }) });
  const backends = boundedCache<string, { updatedMs: number; backend: RemoteBackend }>({ max: BACKENDS_MAX });

  const read = (name: string, opts?: AbortOptions) =>
    rows.get(name, async () => ((await deps.index.read(BUCKETS_SHARD, remoteRow(name), opts))?.value as StoredRemote | null) ?? null);

  async function stored(name: string, opts?: AbortOptions): Promise<StoredRemote> {
    validateRemoteName(name);
    const row = await read(name, opts);
    if (!row) throw new NotFoundError(`no remote named ${name}`, "NoSuchRemote");
    return row;
  }

  const shown = (name: string, r: StoredRemote): ShownRemote => {
    const { sealedCredentials, ...rest } = r;
    return { name, ...rest, hasCredentials: sealedCredentials !== undefined };
  };

  return {
    async put(name, raw, opts) {
      validateRemoteName(name);
      const spec = validateRemoteSpec(raw);
      // Built once now, so a type without an adapter or an endpoint it refuses is answered here, not at the first miss.
      build(name, spec);
      const { credentials, ...rest } = spec;
      const row: StoredRemote = { ...rest, updatedMs: Date.now(), ...(credentials && { sealedCredentials: deps.sealer.seal(sealedTo(name), JSON.stringify(credentials)) }) };
      await deps.index.write(BUCKETS_SHARD, remoteRow(name), { ts: deps.stamp(), value: row }, opts);
      await rows.forget(name);
      rows.remember(name, row);
      return shown(name, row);
    },

    async get(name, opts) {
      return shown(name, await stored(name, opts));
    },

    async list() {
      const listed = await listAll<StoredRemote>(deps.listing, { shards: [BUCKETS_SHARD], rowPrefix: REMOTE_ROW_PREFIX });
      return listed.map((r) => shown(r.key, r.value));
    },

    async remove(name, opts) {
      await stored(name, opts);
      await deps.index.write(BUCKETS_SHARD, remoteRow(name), { ts: deps.stamp(), value: null }, opts);
      backends.delete(name);
      await rows.forget(name);
    },

    async exists(name, opts) {
      validateRemoteName(name);
      return (await read(name, opts)) !== null;
    },

    async backendFor(name, opts) {
      const row = await stored(name, opts);
      const cached = backends.get(name);
      if (cached && cached.updatedMs === row.updatedMs) return cached.backend;
      const { sealedCredentials, updatedMs: _, ...rest } = row;
      let credentials: Record<string, string> | undefined;
      if (sealedCredentials !== undefined) {
        const opened = deps.sealer.open(sealedTo(name), sealedCredentials);
        if (opened === null) throw new MeshError("OriginError", `remote ${name}: its credentials do not open with this mesh's key`);
        credentials = JSON.parse(opened) as Record<string, string>;
      }
      const backend = build(name, { ...rest, ...(credentials && { credentials }) });
      backends.set(name, { updatedMs: row.updatedMs, backend });
      return backend;
    },
  };
}
