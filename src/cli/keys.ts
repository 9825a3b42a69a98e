// `bun run keys create|list|revoke`: manage access keys through a running peer's admin
// routes (peer and token as admin-client.ts finds them).
import { parseArgs } from "node:util";
import { PERMISSIONS, type Permission } from "../auth/access-keys.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { createMeshKeyFile } from "../net/mesh-key.ts";
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, adminClient, handledWithoutSubcommand, type AdminCall } from "./admin-client.ts";
import { RUN } from "./usage.ts";

/** Help text for the keys command. */
export function keysUsage(): string {
  return [
    `usage: ${RUN} keys create [--name NAME] [--bucket BUCKET=read|write|owner]... [--create] [--admin]`,
    `       ${RUN} keys list`,
    `       ${RUN} keys revoke ACCESS_KEY_ID`,
    `       ${RUN} keys mesh-key --out FILE     (a fresh mesh key, mode 0600, for a new mesh)`,
    ...ADMIN_CLIENT_USAGE,
    "  --bucket '*'=read         grants on every bucket",
    "  --create                  may create buckets, and owns (full rights on) each one it creates",
  ].join("\n");
}

function parseGrant(spec: string): [string, Permission] {
  const eq = spec.lastIndexOf("=");
  const perm = spec.slice(eq + 1) as Permission;
  if (eq <= 0 || !PERMISSIONS.includes(perm)) throw new ConfigError(`--bucket takes BUCKET=read|write|owner, got "${spec}"`);
  return [spec.slice(0, eq), perm];
}

/** The options of the key subcommands (beside how to reach the peer). */
export const KEY_OPTIONS = {
  name: { type: "string" },
  bucket: { type: "string", multiple: true },
  admin: { type: "boolean" },
  create: { type: "boolean" },
  out: { type: "string" },
} as const;

/** Parsed key options. */
export interface KeyValues {
  name?: string;
  bucket?: string[];
  admin?: boolean;
  create?: boolean;
  out?: string;
}

/**
 * One key subcommand (create, list, revoke, mesh-key), shared by `bun run keys` and
 * `meshstore admin keys`: `call` reaches the peer (asked for only when the subcommand needs
 * one); resolves with what to print (JSON answers as the peer gave them).
 */
export async function keySubcommand(sub: string, rest: string[], values: KeyValues, call: () => Promise<AdminCall>): Promise<string> {
  if (sub === "mesh-key") {
    if (!values.out) throw new ConfigError("keys mesh-key needs --out FILE");
    const key = await createMeshKeyFile(values.out);
    return `wrote a new mesh key to ${key.file} (fingerprint ${key.fingerprint}); start the mesh's peers with --mesh-key pointing at private copies of it`;
  }
  switch (sub) {
    case "create": {
      const buckets = Object.fromEntries((values.bucket ?? []).map(parseGrant));
      return (await call())("POST", "/admin/keys", { name: values.name, admin: values.admin ?? false, buckets, ...(values.create ? { create: true } : {}) });
    }
    case "list":
      return (await call())("GET", "/admin/keys");
    case "revoke":
      if (rest.length !== 1) throw new ConfigError("keys revoke takes one ACCESS_KEY_ID");
      await (await call())("DELETE", `/admin/keys/${encodeURIComponent(rest[0])}`);
      return `revoked ${rest[0]}`;
    default:
      throw new UsageError(`unknown keys subcommand "${sub}"`);
  }
}

/** Run `keys <subcommand>`; prints JSON answers, exits non-zero on errors. */
export async function runKeys(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { ...ADMIN_CLIENT_OPTIONS, ...KEY_OPTIONS } });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (handledWithoutSubcommand(values, sub, keysUsage(), argv)) return;
  console.log(await keySubcommand(sub!, rest, values, () => adminClient(values)));
}
