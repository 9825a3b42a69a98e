// Where a path argument points: `ALIAS[/BUCKET[/KEY-OR-PREFIX]]` when its first segment is
// a known alias (as MinIO's mc reads it), otherwise a local path (write `./name` for a
// local folder that shares an alias's name).
import type { Alias, ClientConfig } from "./config.ts";
import { UsageError } from "./errors.ts";

/** A path on a mesh: its alias, and a bucket and key (or prefix) when given. */
export interface RemoteTarget {
  kind: "remote";
  aliasName: string;
  alias: Alias;
  bucket: string;
  /** The key or prefix ("" for the whole bucket). */
  key: string;
}

/** A path on this machine. */
export interface LocalTarget {
  kind: "local";
  path: string;
}

export type Target = RemoteTarget | LocalTarget;

/** Read a path argument against the configured aliases. */
export function parseTarget(arg: string, config: ClientConfig): Target {
  const slash = arg.indexOf("/");
  const first = slash < 0 ? arg : arg.slice(0, slash);
  const alias = Object.hasOwn(config.aliases, first) ? config.aliases[first] : undefined;
  if (!alias) return { kind: "local", path: arg };
  const rest = slash < 0 ? "" : arg.slice(slash + 1);
  const cut = rest.indexOf("/");
  return { kind: "remote", aliasName: first, alias, bucket: cut < 0 ? rest : rest.slice(0, cut), key: cut < 0 ? "" : rest.slice(cut + 1) };
}

/** A path argument that must be on a mesh (`what` names it in the error). */
export function remoteTarget(arg: string | undefined, config: ClientConfig, what: string, needs: "alias" | "bucket" | "key" = "bucket"): RemoteTarget {
  if (arg === undefined) throw new UsageError(`missing ${what}`);
  const t = parseTarget(arg, config);
  if (t.kind !== "remote") {
    const known = Object.keys(config.aliases);
    throw new UsageError(`"${arg}" does not start with an alias (${known.length ? `known: ${known.join(", ")}` : "none set yet: meshstore alias set NAME URL --token TOKEN"})`);
  }
  if (needs !== "alias" && !t.bucket) throw new UsageError(`${what} needs a bucket: ${t.aliasName}/BUCKET${needs === "key" ? "/KEY" : ""}`);
  if (needs === "key" && !t.key) throw new UsageError(`${what} needs an object key: ${t.aliasName}/${t.bucket}/KEY`);
  return t;
}

/** How a target is shown in output. */
export function showTarget(t: Target): string {
  return t.kind === "local" ? t.path : [t.aliasName, t.bucket, t.key].filter(Boolean).join("/");
}
