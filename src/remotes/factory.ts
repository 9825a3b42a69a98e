// From the body of `PUT /admin/remotes/{name}` to a RemoteBackend: `checkRemoteSpec` validates
// the body (every fault a 400 InvalidArgument naming the field) and splits it into the public
// spec, which may be stored plainly and listed, and the secrets, which are sealed like access
// keys; `createBackend` joins the two again into the adapter of the spec's type.
import { MeshError } from "../errors.ts";
import { REMOTE_TYPES, type RemoteBackend, type RemoteType } from "./backend.ts";
import { createHttpBackend } from "./http-backend.ts";
import { createSwiftBackend } from "./swift-backend.ts";
// The s3, azure and gcs adapters are loaded on first use (see lazyBackend): their SDKs cost
// every peer about 50 MB of memory at start, and most meshes never name such a remote.

/** A remote as `PUT /admin/remotes/{name}` takes it (issue 15). */
export interface RemoteSpec {
  type: RemoteType;
  /** `http(s)://host[:port][/path]`, without user info, query or fragment (secrets go in `credentials`). */
  endpoint: string;
  /** s3 and gcs. */
  bucket?: string;
  /** azure and swift. */
  container?: string;
  /** s3 only (default us-east-1). */
  region?: string;
  /** Longest wait for each call's answer, 100 ms to 2 minutes (default 10 s). */
  timeoutMs?: number;
  /** Secret values by name (per type: see CREDENTIALS); never stored plainly, logged or returned. */
  credentials?: Record<string, string>;
}

/** A spec without its secrets: what may be stored plainly and listed. `credentials` names which secrets it has. */
export type PublicRemoteSpec = Omit<RemoteSpec, "credentials"> & { credentials: string[] };

/** The credential names each type takes, and the sets of them that make a whole (one must be given in full; [] means none needed). */
export const CREDENTIALS: Record<RemoteType, { names: string[]; wholes: string[][] }> = {
  http: { names: [], wholes: [[]] },
  s3: { names: ["accessKeyId", "secretAccessKey", "sessionToken"], wholes: [["accessKeyId", "secretAccessKey"]] },
  azure: { names: ["accountName", "accountKey", "sasToken"], wholes: [["accountName", "accountKey"], ["sasToken"]] },
  gcs: { names: ["clientEmail", "privateKey", "projectId"], wholes: [["clientEmail", "privateKey"], []] },
  swift: { names: ["user", "key", "token"], wholes: [["user", "key"], ["token"]] },
};

const FIELDS = new Set(["type", "endpoint", "bucket", "container", "region", "timeoutMs", "credentials"]);
const MAX_ENDPOINT = 2048;
const MAX_SECRET = 16 << 10;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const REGION = /^[a-z0-9-]{1,64}$/;

const bad = (message: string) => new MeshError("InvalidArgument", message);

/** Validate a `PUT /admin/remotes/{name}` body; the public spec and the secrets, apart. Throws a 400 InvalidArgument. */
export function checkRemoteSpec(body: unknown): { spec: PublicRemoteSpec; secrets: Record<string, string> } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("a remote is a JSON object");
  const b = body as Record<string, unknown>;
  for (const field of Object.keys(b)) if (!FIELDS.has(field)) throw bad(`a remote has no field "${field.slice(0, 64)}"`);
  const type = b.type;
  if (typeof type !== "string" || !(REMOTE_TYPES as readonly string[]).includes(type)) throw bad(`type is one of ${REMOTE_TYPES.join(", ")}`);
  const t = type as RemoteType;

  if (typeof b.endpoint !== "string" || b.endpoint.length > MAX_ENDPOINT) throw bad(`endpoint is an http(s) URL of at most ${MAX_ENDPOINT} characters`);
  let url: URL;
  try {
    url = new URL(b.endpoint);
  } catch {
    throw bad("endpoint is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw bad("endpoint is an http(s) URL");
  // The endpoint is listed by GET /admin/remotes: a secret in it would be returned.
  if (url.username || url.password) throw bad("endpoint must not carry a user or password: put secrets in credentials");
  if (url.search || url.hash) throw bad("endpoint must not carry a query or fragment: put a SAS token in credentials.sasToken");

  const wantsBucket = t === "s3" || t === "gcs";
  const wantsContainer = t === "azure" || t === "swift";
  for (const [field, wanted] of [["bucket", wantsBucket], ["container", wantsContainer]] as const) {
    const v = b[field];
    if (v === undefined) {
      if (wanted) throw bad(`a ${t} remote needs ${field}`);
      continue;
    }
    if (!wanted) throw bad(`a ${t} remote takes no ${field}`);
    if (typeof v !== "string" || !NAME.test(v)) throw bad(`${field} is 1 to 255 letters, digits, ".", "_" or "-"`);
  }
  if (b.region !== undefined) {
    if (t !== "s3") throw bad(`a ${t} remote takes no region`);
    if (typeof b.region !== "string" || !REGION.test(b.region)) throw bad("region is 1 to 64 lowercase letters, digits or dashes");
  }
  if (b.timeoutMs !== undefined && (typeof b.timeoutMs !== "number" || !Number.isInteger(b.timeoutMs) || b.timeoutMs < 100 || b.timeoutMs > 120_000)) {
    throw bad("timeoutMs is a whole number from 100 to 120000");
  }

  const given = b.credentials ?? {};
  if (typeof given !== "object" || given === null || Array.isArray(given)) throw bad("credentials is an object of names to strings");
  const secrets: Record<string, string> = {};
  const { names, wholes } = CREDENTIALS[t];
  for (const [name, value] of Object.entries(given as Record<string, unknown>)) {
    if (!names.includes(name)) throw bad(`a ${t} remote takes no credential "${name.slice(0, 64)}"${names.length ? ` (it takes ${names.join(", ")})` : ""}`);
    if (typeof value !== "string" || value.length === 0 || value.length > MAX_SECRET) throw bad(`credentials.${name} is a string of 1 to ${MAX_SECRET} characters`);
    secrets[name] = value;
  }
  if (!wholes.some((whole) => whole.every((n) => n in secrets))) {
    throw bad(`a ${t} remote needs credentials ${wholes.map((w) => w.join(" and ")).join(", or ")}`);
  }

  const spec: PublicRemoteSpec = { type: t, endpoint: b.endpoint, credentials: Object.keys(secrets).sort() };
  if (b.bucket !== undefined) spec.bucket = b.bucket as string;
  if (b.container !== undefined) spec.container = b.container as string;
  if (b.region !== undefined) spec.region = b.region as string;
  if (b.timeoutMs !== undefined) spec.timeoutMs = b.timeoutMs as number;
  return { spec, secrets };
}

/** The adapter for a checked spec and its (opened) secrets. */
export function createBackend(spec: RemoteSpec | PublicRemoteSpec, secrets: Record<string, string>): RemoteBackend {
  const { endpoint, timeoutMs } = spec;
  switch (spec.type) {
    case "http":
      return createHttpBackend({ endpoint, timeoutMs });
    case "s3":
      return lazyBackend("s3", async () =>
        (await import("./s3-backend.ts")).createS3Backend({ endpoint, bucket: spec.bucket!, region: spec.region, accessKeyId: secrets.accessKeyId!, secretAccessKey: secrets.secretAccessKey!, sessionToken: secrets.sessionToken, timeoutMs }),
      );
    case "azure":
      return lazyBackend("azure", async () =>
        (await import("./azure-backend.ts")).createAzureBackend({ endpoint, container: spec.container!, accountName: secrets.accountName, accountKey: secrets.accountKey, sasToken: secrets.sasToken, timeoutMs }),
      );
    case "gcs":
      return lazyBackend("gcs", async () =>
        (await import("./gcs-backend.ts")).createGcsBackend({
          endpoint,
          bucket: spec.bucket!,
          projectId: secrets.projectId,
          credentials: secrets.clientEmail && secrets.privateKey ? { client_email: secrets.clientEmail, private_key: secrets.privateKey } : undefined,
          timeoutMs,
        }),
      );
    case "swift":
      return createSwiftBackend({ endpoint, container: spec.container!, user: secrets.user, key: secrets.key, token: secrets.token, timeoutMs });
  }
}

/**
 * An adapter of a writable, listable type whose module (and SDK) is imported at its first
 * call; every call after that goes straight to it.
 */
function lazyBackend(type: RemoteType, load: () => Promise<RemoteBackend>): RemoteBackend {
  let loaded: Promise<RemoteBackend> | undefined;
  const ready = () => (loaded ??= load());
  return {
    type,
    capabilities: { write: true, list: true },
    head: async (key, opts) => (await ready()).head(key, opts),
    get: async (key, opts) => (await ready()).get(key, opts),
    put: async (key, body, info, opts) => (await ready()).put!(key, body, info, opts),
    delete: async (key, opts) => (await ready()).delete!(key, opts),
    list: async (prefix, cursor, opts) => (await ready()).list!(prefix, cursor, opts),
  };
}
