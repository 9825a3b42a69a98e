// What the admin commands (`bun run keys`, `bun run members`) share: which peer to ask,
// the admin token (--token, MESH_TOKEN, or the admin-key.json a new mesh wrote into its
// data folder), and one call that prints the peer's error and exits 1 on failure.
import path from "node:path";
import { ADMIN_KEY_FILE } from "../config.ts";
import { ConfigError } from "../errors.ts";
import { readAdminKeyFile } from "../peer/admin-key.ts";
import { versionLine, wantsVersion } from "./usage.ts";

/** The parseArgs options every admin command takes. */
export const ADMIN_CLIENT_OPTIONS = {
  http: { type: "string" },
  token: { type: "string" },
  data: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

/**
 * What an admin command does before its subcommand: `--help` prints `usage` (exit 0),
 * `--version` the version; no subcommand prints `usage` on stderr and exits 2. Returns
 * true if the command is done.
 */
export function handledWithoutSubcommand(values: { help?: boolean; version?: boolean }, sub: string | undefined, usage: string, argv: string[]): boolean {
  if (values.help) {
    console.log(usage);
    return true;
  }
  if (values.version || wantsVersion(argv)) {
    console.log(versionLine());
    return true;
  }
  if (sub) return false;
  console.error(usage);
  process.exit(2);
}

/** Help lines for those options. */
export const ADMIN_CLIENT_USAGE = [
  "  --http HOST:PORT or URL   the peer to ask (env MESH_HTTP; default 127.0.0.1:7480)",
  "  --token TOKEN             an admin token (env MESH_TOKEN; default: admin-key.json in --data)",
  "  --data DIR                data folder holding admin-key.json (env MESH_DATA; default ./meshstore-data)",
];

async function adminToken(explicit: string | undefined, dataDir: string): Promise<string> {
  if (explicit) return explicit;
  if (process.env.MESH_TOKEN) return process.env.MESH_TOKEN;
  const file = path.join(dataDir, ADMIN_KEY_FILE);
  // A damaged file is named with its cause (a StartupError, exit 1), not taken for a missing one.
  const key = await readAdminKeyFile(file);
  if (!key) throw new ConfigError(`no admin token: pass --token, set MESH_TOKEN, or run where ${file} exists`);
  return key.token;
}

/** "connection refused" and the like, from a failed fetch. */
export function connectionCause(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const words: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ENOTFOUND: "no such host",
    ECONNRESET: "connection reset",
    ETIMEDOUT: "timed out",
    EHOSTUNREACH: "host unreachable",
  };
  if (typeof code === "string") return words[code] ?? code;
  return err instanceof Error ? err.message.split("\n")[0] : String(err);
}

/** The peer's base URL from --http (HOST:PORT, :PORT or a URL). */
export function baseUrl(http: string): string {
  if (/^https?:\/\//.test(http)) return http.replace(/\/$/, "");
  return `http://${http.startsWith(":") ? "127.0.0.1" + http : http}`;
}

/** A call to the peer's admin routes: resolves with the body text; on an error status prints it and exits 1. */
export type AdminCall = (method: string, route: string, body?: unknown) => Promise<string>;

/** Resolve the peer and token from parsed options and the environment. */
export async function adminClient(values: { http?: string; token?: string; data?: string }): Promise<AdminCall> {
  const base = baseUrl(values.http || process.env.MESH_HTTP || "127.0.0.1:7480");
  const token = await adminToken(values.token, values.data || process.env.MESH_DATA || "./meshstore-data");
  return async (method, route, body) => {
    let res: Response;
    try {
      res = await fetch(base + route, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      console.error(`meshstore: cannot reach the peer at ${base}: ${connectionCause(err)}`);
      process.exit(1);
    }
    const text = await res.text();
    if (!res.ok) {
      console.error(`meshstore: ${method} ${route}: ${res.status} ${text}`);
      process.exit(1);
    }
    return text;
  };
}
