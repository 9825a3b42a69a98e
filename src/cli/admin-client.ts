// What the admin commands (`bun run keys`, `bun run members`) share: which peer to ask,
// the admin token (--token, MESH_TOKEN, or the admin-key.json a new mesh wrote into its
// data folder), and one call that prints the peer's error and exits 1 on failure.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ADMIN_KEY_FILE } from "../config.ts";
import { ConfigError } from "../errors.ts";

/** The parseArgs options every admin command takes. */
export const ADMIN_CLIENT_OPTIONS = {
  http: { type: "string" },
  token: { type: "string" },
  data: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

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

/** A call to the peer's admin routes: resolves with the body text; on an error status prints it and exits 1. */
export type AdminCall = (method: string, route: string, body?: unknown) => Promise<string>;

/** Resolve the peer and token from parsed options and the environment. */
export async function adminClient(values: { http?: string; token?: string; data?: string }): Promise<AdminCall> {
  const base = baseUrl(values.http ?? process.env.MESH_HTTP ?? "127.0.0.1:7480");
  const token = await adminToken(values.token, values.data ?? process.env.MESH_DATA ?? "./meshstore-data");
  return async (method, route, body) => {
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
}
