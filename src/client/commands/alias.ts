// `alias set|ls|rm`: names for peers and how to sign in to them, kept in the client's
// config folder (0600).
import { readFile } from "node:fs/promises";
import { nativeToken } from "../../auth/access-keys.ts";
import { parseCommand, positionalsOf } from "../args.ts";
import { checkAliasName, normalizeUrl, saveConfig, type Alias } from "../config.ts";
import type { Command, Context } from "../context.ts";
import { ClientError, UsageError } from "../errors.ts";

const USAGE = `usage: meshstore alias set NAME URL (--token TOKEN | --access-key ID --secret SECRET | --key-file FILE) [--s3 URL]
       meshstore alias ls
       meshstore alias rm NAME
  URL                   a peer's native API, e.g. http://127.0.0.1:7480 or 127.0.0.1:7480
  --token TOKEN         a native API token (mst_...)
  --access-key ID       an access key id, with --secret: the token is derived, and presign works
  --secret SECRET       its secret access key
  --key-file FILE       a data folder's admin-key.json (a new mesh writes one)
  --s3 URL              the peer's S3 endpoint, for presign (default: the URL's port + 1)`;

/** How an alias signs in, as shown (never the secret). */
export function authKind(a: Alias): "access-key" | "token" | "none" {
  return a.accessKey && a.secretKey ? "access-key" : a.token ? "token" : "none";
}

async function keyFile(file: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  let parsed: { accessKeyId?: unknown; secretAccessKey?: unknown };
  try {
    parsed = JSON.parse(await readFile(file, "utf8")) as typeof parsed;
  } catch (err) {
    throw new ClientError(`cannot read the key file ${file}: ${(err as Error).message}`, "KeyFileUnreadable");
  }
  if (typeof parsed.accessKeyId !== "string" || typeof parsed.secretAccessKey !== "string") throw new ClientError(`${file} holds no accessKeyId and secretAccessKey`, "KeyFileUnreadable");
  return { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey };
}

async function set(ctx: Context, argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand(argv, {
    token: { type: "string" },
    "access-key": { type: "string" },
    secret: { type: "string" },
    "key-file": { type: "string" },
    s3: { type: "string" },
  });
  const [name, url] = positionalsOf(positionals, ["NAME", "URL"]);
  checkAliasName(name);
  const ways = [values.token !== undefined, values["access-key"] !== undefined || values.secret !== undefined, values["key-file"] !== undefined].filter(Boolean).length;
  if (ways > 1) throw new UsageError("give one of --token, --access-key with --secret, or --key-file");
  const alias: Alias = { url: normalizeUrl(url) };
  if (values.s3) alias.s3 = normalizeUrl(values.s3);
  if (values.token) alias.token = values.token;
  let key: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (values["access-key"] !== undefined || values.secret !== undefined) {
    if (!values["access-key"] || !values.secret) throw new UsageError("--access-key and --secret go together");
    key = { accessKeyId: values["access-key"], secretAccessKey: values.secret };
  }
  if (values["key-file"]) key = await keyFile(values["key-file"]);
  if (key) Object.assign(alias, { accessKey: key.accessKeyId, secretKey: key.secretAccessKey, token: nativeToken(key.accessKeyId, key.secretAccessKey) });
  ctx.config.aliases[name] = alias;
  await saveConfig(ctx.dir, ctx.config);
  ctx.out.result({ op: "alias set", alias: name, url: alias.url, auth: authKind(alias) }, `alias ${name} -> ${alias.url} (${authKind(alias)})`);
}

async function ls(ctx: Context, argv: string[]): Promise<void> {
  const { positionals } = parseCommand(argv, {});
  positionalsOf(positionals, []);
  const names = Object.keys(ctx.config.aliases).sort();
  if (names.length === 0) ctx.out.note("no aliases yet: meshstore alias set NAME URL --token TOKEN");
  for (const name of names) {
    const a = ctx.config.aliases[name];
    ctx.out.result({ op: "alias ls", alias: name, url: a.url, auth: authKind(a), ...(a.s3 ? { s3: a.s3 } : {}) }, `${name.padEnd(12)} ${a.url.padEnd(28)} ${authKind(a)}`);
  }
}

async function rm(ctx: Context, argv: string[]): Promise<void> {
  const { positionals } = parseCommand(argv, {});
  const [name] = positionalsOf(positionals, ["NAME"]);
  if (!Object.hasOwn(ctx.config.aliases, name)) throw new UsageError(`no alias "${name}"`);
  delete ctx.config.aliases[name];
  await saveConfig(ctx.dir, ctx.config);
  ctx.out.result({ op: "alias rm", alias: name }, `removed alias ${name}`);
}

export const aliasCommand: Command = {
  name: "alias",
  summary: "set, list and remove aliases (a peer's URL and credentials)",
  usage: USAGE,
  async run(ctx, argv) {
    const [sub, ...rest] = argv;
    if (sub === undefined) throw new UsageError("alias needs a subcommand: set, ls or rm");
    if (sub === "set") return set(ctx, rest);
    if (sub === "ls" || sub === "list") return ls(ctx, rest);
    if (sub === "rm" || sub === "remove") return rm(ctx, rest);
    throw new UsageError(`unknown alias subcommand "${sub}"`);
  },
};
