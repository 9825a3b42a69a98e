// `bun run keys create|list|revoke`: manage access keys through a running peer's admin
// routes. The admin token comes from --token, MESH_TOKEN, or the admin key file a new
// mesh wrote into its data folder.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { PERMISSIONS, type Permission } from "../auth/access-keys.ts";
import { ConfigError } from "../errors.ts";
import { ADMIN_KEY_FILE } from "../config.ts";

/** Help text for the keys command. */
export function keysUsage(): string {
  return [
    "usage: bun run keys create [--name NAME] [--bucket BUCKET=read|write|owner]... [--admin]",
    "       bun run keys list",
    "       bun run keys revoke ACCESS_KEY_ID",
    "  --http HOST:PORT or URL   the peer to ask (env MESH_HTTP; default 127.0.0.1:7480)",
    "  --token TOKEN             an admin token (env MESH_TOKEN; default: admin-key.json in --data)",
    "  --data DIR                data folder holding admin-key.json (env MESH_DATA; default ./meshstore-data)",
    "  --bucket '*'=read         grants on every bucket",
  ].join("\n");
}

async function adminToken(explicit: string | undefined, dataDir: string): Promise<string> {
  if (explicit) return explicit;
  if (process.env.MESH_TOKEN) return process.env.MESH_TOKEN;
  const file = path.join(dataDir, ADMIN_KEY_FILE);
  try {
    return (JSON.parse(await readFile(file, "utf8")) as { token: string }).token;
  } catch {
    throw new ConfigError(`no admin token: pass --token, set MESH_TOKEN, or run where ${file} exists`);
  }
}

function baseUrl(http: string): string {
  if (/^https?:\/\//.test(http)) return http.replace(/\/$/, "");
  return `http://${http.startsWith(":") ? "127.0.0.1" + http : http}`;
}

function parseGrant(spec: string): [string, Permission] {
  const eq = spec.lastIndexOf("=");
  const perm = spec.slice(eq + 1) as Permission;
  if (eq <= 0 || !PERMISSIONS.includes(perm)) throw new ConfigError(`--bucket takes BUCKET=read|write|owner, got "${spec}"`);
  return [spec.slice(0, eq), perm];
}

/** Run `keys <subcommand>`; prints JSON answers, exits non-zero on errors. */
export async function runKeys(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        http: { type: "string" },
        token: { type: "string" },
        data: { type: "string" },
        name: { type: "string" },
        bucket: { type: "string", multiple: true },
        admin: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(keysUsage());
    return;
  }
  const base = baseUrl(values.http ?? process.env.MESH_HTTP ?? "127.0.0.1:7480");
  const token = await adminToken(values.token, values.data ?? process.env.MESH_DATA ?? "./meshstore-data");
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(base + route, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) {
      console.error(`meshstore: ${method} ${route}: ${res.status} ${text}`);
      process.exit(1);
    }
    return text;
  };
  switch (sub) {
    case "create": {
      const buckets = Object.fromEntries((values.bucket ?? []).map(parseGrant));
      console.log(await call("POST", "/admin/keys", { name: values.name, admin: values.admin ?? false, buckets }));
      return;
    }
    case "list":
      console.log(await call("GET", "/admin/keys"));
      return;
    case "revoke":
      if (rest.length !== 1) throw new ConfigError("keys revoke takes one ACCESS_KEY_ID");
      await call("DELETE", `/admin/keys/${encodeURIComponent(rest[0])}`);
      console.log(`revoked ${rest[0]}`);
      return;
    default:
      throw new ConfigError(`unknown keys subcommand "${sub}"\n${keysUsage()}`);
  }
}
