// The admin key as a part of the peer: asserted once the index is served, and if this
// peer has no write quorum yet (joining, or restarted while its partners are down),
// asserted again every second in the background until it has one.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { AccessKeys, CreatedKey } from "../auth/access-keys.ts";
import { ADMIN_KEY_FILE, type PeerConfig } from "../config.ts";
import { QuorumError, StartupError } from "../errors.ts";
import { fileCause } from "../util/file-cause.ts";
import type { Startable } from "../util/lifecycle.ts";
import type { Logger } from "../util/log.ts";
import { writePrivateFile } from "../util/private-file.ts";
import { sleep } from "../util/sleep.ts";

/** The admin-key part; `created` is the key this start made for a new mesh (the CLI prints it once). */
export interface AdminKeyPart extends Startable {
  readonly created: CreatedKey | undefined;
}

/** What admin-key.json holds. */
export interface AdminKeyFile {
  accessKeyId: string;
  secretAccessKey: string;
  token: string;
}

/**
 * Read the admin-key.json a new mesh wrote: undefined if there is none; a StartupError
 * naming the file and the cause if it cannot be read or is not what this peer wrote
 * (checked at start, so a damaged file is found then and not by `keys list` later).
 */
export async function readAdminKeyFile(file: string): Promise<AdminKeyFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StartupError(`cannot read ${file}: ${fileCause(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new StartupError(`${file} is damaged: not valid JSON (${fileCause(err)}); restore it from a backup, or delete it (the admin key it held stays valid)`);
  }
  const k = parsed as Partial<AdminKeyFile> | null;
  if (typeof k?.accessKeyId !== "string" || typeof k.secretAccessKey !== "string" || typeof k.token !== "string") {
    throw new StartupError(`${file} is damaged: it lacks accessKeyId, secretAccessKey or token; restore it from a backup, or delete it (the admin key it held stays valid)`);
  }
  return { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, token: k.token };
}

/** Create the admin-key part; `signal` (the peer's) ends the background retries. */
export function createAdminKeyPart(config: PeerConfig, keys: AccessKeys, log: Logger, signal: AbortSignal): AdminKeyPart {
  let created: CreatedKey | undefined;
  let retrying: Promise<void> | undefined;
  return {
    get created() {
      return created;
    },
    async start() {
      try {
        created = await provisionAdminKey(config, keys);
      } catch (err) {
        if (!(err instanceof QuorumError)) throw err;
        retrying = retryUntilQuorum(() => provisionAdminKey(config, keys), signal, log);
      }
    },
    async stop() {
      await retrying;
    },
  };
}

/**
 * The admin key: MESH_ADMIN_KEY/SECRET are (re)asserted on every start. Otherwise a peer
 * that starts a mesh of its own (no bootstrap) and sees no admin key anywhere creates one
 * and writes it, readable only by the owner, to the data folder. Looking for an admin key
 * rather than at "first start" means a first start that failed half-way, or one made with
 * --insecure-no-auth, still ends with an admin key.
 */
async function provisionAdminKey(config: PeerConfig, keys: AccessKeys): Promise<CreatedKey | undefined> {
  if (config.admin) {
    const existing = await keys.get(config.admin.accessKeyId);
    if (existing?.admin && existing.secretAccessKey === config.admin.secretAccessKey) return undefined;
    await keys.put({ ...config.admin, name: "admin (MESH_ADMIN_KEY)", admin: true, buckets: {}, createdMs: Date.now() });
    return undefined;
  }
  if (!config.auth || config.bootstrap.length > 0) return undefined;
  const file = path.join(config.dataDir, ADMIN_KEY_FILE);
  if (existsSync(file) || (await keys.list()).some((k) => k.admin)) return undefined;
  const key = await keys.create({ name: "admin", admin: true });
  await writePrivateFile(file, JSON.stringify({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, token: key.token }, null, 2) + "\n");
  return key;
}

/** Run `work` again every second while it fails for want of a quorum, until it succeeds or the peer stops. */
async function retryUntilQuorum(work: () => Promise<unknown>, signal: AbortSignal, log: Logger): Promise<void> {
  while (!signal.aborted) {
    await sleep(1000, signal);
    if (signal.aborted) return;
    try {
      await work();
      return;
    } catch (err) {
      if (!(err instanceof QuorumError)) return log.warn(`admin key: ${(err as Error).message}`);
    }
  }
}
