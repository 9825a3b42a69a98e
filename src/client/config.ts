// The client's own folder: aliases (a name for a peer's URL and its credentials) in
// config.json, and upload session files (sessions/) for `cp --continue`. The folder is
// $MESHSTORE_CONFIG_DIR, else $XDG_CONFIG_HOME/meshstore, else ~/.config/meshstore; it is
// 0700 and every file in it 0600, since it holds secrets.
import { chmod, mkdir, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writePrivateFile } from "../util/private-file.ts";
import { ClientError, UsageError } from "./errors.ts";

/** A named peer and how to sign in to it. */
export interface Alias {
  url: string;
  /** The native API's bearer token (derived from the key when one is given). */
  token?: string;
  /** An access key, for S3 presigned URLs. */
  accessKey?: string;
  secretKey?: string;
  /** The peer's S3 endpoint (for presign); default: the native port + 1. */
  s3?: string;
}

/** What config.json holds. */
export interface ClientConfig {
  version: 1;
  aliases: Record<string, Alias>;
}

/** Alias names: a letter or digit first, then letters, digits, '-', '_' and '.'. */
const ALIAS_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The client's config folder, from the environment. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MESHSTORE_CONFIG_DIR) return path.resolve(env.MESHSTORE_CONFIG_DIR);
  const base = env.XDG_CONFIG_HOME ? path.resolve(env.XDG_CONFIG_HOME) : path.join(os.homedir(), ".config");
  return path.join(base, "meshstore");
}

/** Create the folder (0700) if missing, and tighten it if it was open. */
export async function ensureConfigDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Read the aliases (none yet: an empty config). */
export async function loadConfig(dir: string): Promise<ClientConfig> {
  const file = path.join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, aliases: {} };
    throw new ClientError(`cannot read ${file}: ${(err as Error).message}`, "ConfigUnreadable");
  }
  try {
    const parsed = JSON.parse(text) as ClientConfig;
    if (typeof parsed !== "object" || parsed === null || typeof parsed.aliases !== "object") throw new Error("no aliases object");
    return { version: 1, aliases: parsed.aliases };
  } catch (err) {
    throw new ClientError(`${file} is not a meshstore client config: ${(err as Error).message}`, "ConfigUnreadable");
  }
}

/** Write the aliases, 0600, in a 0700 folder. */
export async function saveConfig(dir: string, config: ClientConfig): Promise<void> {
  await ensureConfigDir(dir);
  await writePrivateFile(path.join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
}

/** Check an alias name (a usage error if it cannot be one). */
export function checkAliasName(name: string): string {
  if (!ALIAS_NAME.test(name)) throw new UsageError(`"${name}" cannot be an alias name: use letters, digits, '.', '-' and '_'`);
  return name;
}

/** A peer URL as given (`HOST:PORT`, `:PORT` or a URL), as a URL without a trailing slash. */
export function normalizeUrl(given: string): string {
  let url = given.trim();
  if (url.startsWith(":")) url = "127.0.0.1" + url;
  if (!/^https?:\/\//.test(url)) url = "http://" + url;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
  } catch {
    throw new UsageError(`"${given}" is not a URL or HOST:PORT`);
  }
}

/** The S3 endpoint of an alias: the one given, else the native URL's port + 1 (the default layout, 7480 and 7481). */
export function s3UrlOf(alias: Alias): string {
  if (alias.s3) return alias.s3;
  const u = new URL(alias.url);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  u.port = String(port + 1);
  return `${u.protocol}//${u.host}`;
}
