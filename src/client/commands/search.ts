// `find` and `schema`: search a bucket by its objects' metadata (GET /buckets/{b}/query with
// the text language) and manage the bucket's search schema (which x-meta-* fields are
// indexed, as what type). find prints each page as it arrives, so --all holds one page at
// a time whatever the answer's size.
import { FIELD_TYPES } from "../../search/schema.ts";
import type { FoundObject, SchemaState } from "../../search/search-service.ts";
import { parseCommand } from "../args.ts";
import type { Command, Context } from "../context.ts";
import { ClientError, UsageError } from "../errors.ts";
import { peerOf, type Peer } from "../http.ts";
import { remoteTarget, type RemoteTarget } from "../target.ts";
import { parseCount } from "../units.ts";
import { lsLine } from "./objects.ts";

/** Most pages `find --all` reads (1,000 objects each by default): ten million objects. */
const MAX_PAGES = 10_000;

/** A metadata value as shown on a line: bare when it is one plain word, else quoted. */
const showValue = (v: string) => (/^[^\s"=]+$/.test(v) ? v : JSON.stringify(v));

/** A row of `find`: as `ls` shows an object, then its metadata as name=value. */
export function findLine(o: FoundObject): string {
  const meta = Object.entries(o.meta).map(([k, v]) => `${k}=${showValue(v)}`);
  return [lsLine(o), ...meta].join("  ");
}

/** A bucket path (no key) for a search command. */
function bucketTarget(ctx: Context, arg: string | undefined, what: string): RemoteTarget {
  const t = remoteTarget(arg, ctx.config, what);
  if (t.key) throw new UsageError(`${what} is a bucket, not an object path: ${t.aliasName}/${t.bucket}`);
  return t;
}

const bucketRoute = (t: RemoteTarget, rest: string) => `/buckets/${encodeURIComponent(t.bucket)}${rest}`;

/** Where in the query text the peer found the fault ("... at position N"), if it said. */
const faultPosition = (err: unknown) => (err instanceof ClientError && err.code === "InvalidQuery" ? /at position (\d+)/.exec(err.message)?.[1] : undefined);

const find: Command = {
  name: "find",
  summary: "find objects by their metadata: a query on the bucket's search index",
  usage: `usage: meshstore find ALIAS/BUCKET [QUERY...] [--sort FIELD] [--desc] [--limit N] [--all | --cursor C] [--allow-partial]
  QUERY is conditions joined by "and" (the words are joined with spaces; quote the lot):
    'year>=2020 and title prefix "Mesh" and tags in ("a", "b")'
  ops = != < <= > >= prefix in; strings in double quotes, numbers bare, true/false, dates
  2024-01-01 or "2024-01-01T00:00:00Z". No QUERY: every object. Fields are the schema's
  (meshstore schema) and key, size, lastModified, contentType, etag.
  --sort FIELD      order by FIELD: key (the default), size, lastModified or a schema field
  --desc            descending order (of key, without --sort)
  --limit N         objects per page (1 to 1000; default 100, or 1000 with --all)
  --all             every page, following the cursor (printed as they come)
  --cursor C        the page after the one that printed C
  --allow-partial   answer while a field is still being indexed (some objects may be missing)`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, {
      sort: { type: "string" },
      desc: { type: "boolean" },
      limit: { type: "string" },
      all: { type: "boolean" },
      cursor: { type: "string" },
      "allow-partial": { type: "boolean" },
    });
    const [arg, ...words] = positionals;
    const t = bucketTarget(ctx, arg, "find's bucket");
    if (values.all && values.cursor) throw new UsageError("--all and --cursor do not go together");
    const q = words.join(" ");
    const limit = values.limit === undefined ? (values.all ? 1000 : undefined) : parseCount(values.limit, "--limit", 1, 1000);
    const params: Record<string, string> = { q };
    if (values.sort || values.desc) Object.assign(params, { sort: values.sort ?? "key", order: values.desc ? "desc" : "asc" });
    if (limit !== undefined) params.limit = String(limit);
    if (values["allow-partial"]) params.allowPartial = "true";
    const peer = peerOf(t.alias);
    let cursor = values.cursor ?? null;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const answer = await queryPage(peer, t, { ...params, ...(cursor ? { cursor } : {}) });
        for (const o of answer.objects) ctx.out.result({ op: "find", type: "object", ...o }, findLine(o));
        cursor = answer.nextCursor;
        if (!cursor) return;
        if (!values.all) {
          ctx.out.result({ op: "find", type: "more", nextCursor: cursor });
          ctx.out.note(`more objects match: add --all for every page, or --cursor ${cursor} for the next`);
          return;
        }
      }
      throw new ClientError(`find --all stopped after ${MAX_PAGES} pages`, "TooManyPages");
    } catch (err) {
      const at = faultPosition(err);
      if (at === undefined) throw err;
      // Point at the fault under the query as it was sent.
      ctx.out.fail({ op: "find", bucket: t.bucket, q }, err);
      ctx.out.note(`  ${q}\n  ${" ".repeat(Number(at))}^`);
    }
  },
};

/** One page of a text query. */
function queryPage(peer: Peer, t: RemoteTarget, params: Record<string, string>): Promise<{ objects: FoundObject[]; nextCursor: string | null }> {
  return peer.json(bucketRoute(t, `/query?${new URLSearchParams(params)}`));
}

/** The schema's state as lines: a summary, then a line per field. */
export function schemaLines(where: string, s: SchemaState): string[] {
  const p = s.progress;
  const names = Object.keys(s.fields).sort();
  const width = Math.max(5, ...names.map((n) => n.length));
  return [
    `schema of ${where}: ${s.state}${s.state === "building" ? ` (${p.peersReady} of ${p.peers} peers ready, ${p.objectsIndexed} objects indexed)` : ` on ${p.peers} peer(s)`}`,
    ...(names.length ? names.map((n) => `  ${n.padEnd(width)}  ${s.fields[n].type.padEnd(8)}  ${s.fields[n].state}`) : ["  (no fields: the system fields key, size, lastModified, contentType, etag only)"]),
  ];
}

/** `name=type` arguments as a schema's fields. */
export function parseFields(args: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf("=");
    const [name, type] = eq < 0 ? [a, ""] : [a.slice(0, eq), a.slice(eq + 1)];
    if (!name || !(FIELD_TYPES as readonly string[]).includes(type)) throw new UsageError(`"${a}" is not NAME=TYPE (TYPE one of ${FIELD_TYPES.join(", ")})`);
    fields[name] = type;
  }
  return fields;
}

/** The bucket's schema, or undefined when it has none. */
async function currentSchema(peer: Peer, t: RemoteTarget): Promise<SchemaState | undefined> {
  const res = await peer.request(bucketRoute(t, "/schema"), { accept: [404] });
  if (res.status !== 404) return (await res.json()) as SchemaState;
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  // 404 is also how a missing bucket answers: that one is an error.
  if (body.error?.code === "NoSuchSchema") return undefined;
  throw new ClientError(`GET ${bucketRoute(t, "/schema")}: ${body.error?.code ?? "NotFound"}: ${body.error?.message ?? ""}`.trim(), body.error?.code ?? "NotFound", 404);
}

const show = (t: RemoteTarget) => `${t.aliasName}/${t.bucket}`;

/** Print a schema's state. */
function printSchema(ctx: Context, op: string, t: RemoteTarget, s: SchemaState): void {
  ctx.out.result({ op, target: show(t), ...s }, schemaLines(show(t), s));
}

/** Poll the schema until every field is ready on every live peer. */
async function waitReady(ctx: Context, peer: Peer, t: RemoteTarget, s: SchemaState): Promise<SchemaState> {
  let last = "";
  while (s.state !== "ready") {
    const line = `indexing: ${s.progress.peersReady} of ${s.progress.peers} peers ready, ${s.progress.objectsIndexed} objects indexed`;
    if (line !== last) ctx.out.note((last = line));
    await Bun.sleep(250);
    s = (await currentSchema(peer, t)) ?? s;
  }
  return s;
}

const USAGE = `usage: meshstore schema ALIAS/BUCKET
       meshstore schema set [--replace] [--wait] ALIAS/BUCKET [NAME=TYPE...]
       meshstore schema rm ALIAS/BUCKET [NAME]
  A bucket's search schema: which x-meta-NAME values are indexed for find, as what TYPE
  (${FIELD_TYPES.join(", ")}). Shows each field's state: building while the peers index
  the objects they hold, then ready.
  set         add or retype fields, keeping the others (with no fields: a schema with none,
              enough to sort by size or lastModified)
  --replace   the schema becomes exactly these fields
  --wait      wait until every field is ready (Ctrl-C stops the waiting, not the indexing)
  rm          remove one field, or without NAME the whole schema and its index`;

export const schemaCommand: Command = {
  name: "schema",
  summary: "a bucket's search schema: show, set or remove the indexed metadata fields",
  usage: USAGE,
  async run(ctx, argv) {
    const sub = argv[0] === "set" || argv[0] === "rm" || argv[0] === "show" ? argv[0] : undefined;
    const { values, positionals } = parseCommand(sub ? argv.slice(1) : argv, sub === "set" ? { replace: { type: "boolean" }, wait: { type: "boolean" } } : {});
    const [arg, ...rest] = positionals;
    const t = bucketTarget(ctx, arg, "schema's bucket");
    const peer = peerOf(t.alias);
    if (sub === undefined || sub === "show") {
      if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}" (to change the schema: meshstore schema set ${show(t)} NAME=TYPE)`);
      const s = await currentSchema(peer, t);
      if (!s) throw new ClientError(`${show(t)} has no search schema (meshstore schema set ${show(t)} NAME=TYPE...)`, "NoSuchSchema", 404);
      return printSchema(ctx, "schema", t, s);
    }
    if (sub === "set") {
      const wanted = parseFields(rest);
      const kept = values.replace ? {} : Object.fromEntries(Object.entries((await currentSchema(peer, t))?.fields ?? {}).map(([n, f]) => [n, f.type]));
      const body = JSON.stringify({ fields: { ...kept, ...wanted } });
      let s = await peer.json<SchemaState>(bucketRoute(t, "/schema"), { method: "PUT", headers: { "content-type": "application/json" }, body });
      if (values.wait) s = await waitReady(ctx, peer, t, s);
      return printSchema(ctx, "schema set", t, s);
    }
    if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}"`);
    if (rest[0] !== undefined) return printSchema(ctx, "schema rm", t, await peer.json<SchemaState>(bucketRoute(t, `/schema/${encodeURIComponent(rest[0])}`), { method: "DELETE" }));
    await peer.request(bucketRoute(t, "/schema"), { method: "DELETE" });
    ctx.out.result({ op: "schema rm", target: show(t), bucket: t.bucket }, `removed the search schema of ${show(t)} and its index`);
  },
};

export const searchCommands: Command[] = [find, schemaCommand];
