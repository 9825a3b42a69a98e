// `admin info|drain|keys`: the mesh as an operator sees it, drains, and access keys.
import type { AdminCall } from "../../cli/admin-client.ts";
import { connectionCause } from "../../cli/admin-client.ts";
import { KEY_OPTIONS, keySubcommand, keysUsage } from "../../cli/keys.ts";
import { ConfigError } from "../../errors.ts";
import { parseCommand, positionalsOf } from "../args.ts";
import type { Command, Context } from "../context.ts";
import { ClientError, UsageError } from "../errors.ts";
import { peerOf } from "../http.ts";
import { remoteTarget } from "../target.ts";
import { humanBytes, humanDuration } from "../units.ts";
import { shortId } from "./objects.ts";

/** A member as `/cluster/peers` lists it. */
interface Member {
  id: string;
  http?: string;
  state: string;
  draining?: boolean;
}

/** The part of `/cluster/status` that `admin info` shows. */
interface PeerStatus {
  version: string;
  uptimeSeconds: number;
  storage: { chunks: number; bytes: number; diskTotalBytes: number; diskFreeBytes: number };
}

/** One row of `admin info`: a member, and its status when it answered. */
export interface InfoRow {
  id: string;
  state: string;
  draining: boolean;
  http?: string;
  status?: PeerStatus;
  error?: string;
}

/** `admin info`'s table: a line per member, then the totals. */
export function infoLines(rows: InfoRow[]): string[] {
  const head = `${"PEER".padEnd(10)} ${"STATE".padEnd(14)} ${"UPTIME".padStart(8)} ${"VERSION".padEnd(8)} ${"CHUNKS".padStart(8)} ${"BYTES".padStart(10)}  DISK USED/TOTAL`;
  const lines = [head];
  for (const r of rows) {
    const state = r.draining ? `${r.state},draining` : r.state;
    const s = r.status;
    if (!s) {
      lines.push(`${shortId(r.id).padEnd(10)} ${state.padEnd(14)} ${"-".padStart(8)} ${"-".padEnd(8)} ${"-".padStart(8)} ${"-".padStart(10)}  -${r.error ? `   (${r.error})` : ""}`);
      continue;
    }
    const used = s.storage.diskTotalBytes - s.storage.diskFreeBytes;
    lines.push(
      `${shortId(r.id).padEnd(10)} ${state.padEnd(14)} ${humanDuration(s.uptimeSeconds).padStart(8)} ${s.version.padEnd(8)} ${String(s.storage.chunks).padStart(8)} ${humanBytes(s.storage.bytes).padStart(10)}  ${humanBytes(used)}/${humanBytes(s.storage.diskTotalBytes)}`,
    );
  }
  const t = infoTotals(rows);
  lines.push(`${t.members} member(s): ${Object.entries(t.states).map(([k, v]) => `${v} ${k}`).join(", ")}; ${t.chunks} chunks, ${humanBytes(t.bytes)} stored (every copy counted)${t.unanswered ? `; ${t.unanswered} did not answer` : ""}`);
  return lines;
}

/** The totals of `admin info`. */
export function infoTotals(rows: InfoRow[]) {
  const states: Record<string, number> = {};
  for (const r of rows) states[r.state] = (states[r.state] ?? 0) + 1;
  const answered = rows.filter((r) => r.status);
  return {
    members: rows.length,
    states,
    chunks: answered.reduce((s, r) => s + (r.status?.storage.chunks ?? 0), 0),
    bytes: answered.reduce((s, r) => s + (r.status?.storage.bytes ?? 0), 0),
    unanswered: rows.length - answered.length,
  };
}

/** Every member, each asked for its own status (open route) with a short timeout. */
async function gatherInfo(ctx: Context, aliasArg: string | undefined): Promise<InfoRow[]> {
  const t = remoteTarget(aliasArg, ctx.config, "ALIAS", "alias");
  const peer = peerOf(t.alias);
  const view = await peer.json<{ self: Member; peers: Member[] }>("/cluster/peers");
  const members = [view.self, ...view.peers];
  return Promise.all(
    members.map(async (m): Promise<InfoRow> => {
      const row: InfoRow = { id: m.id, state: m.state, draining: m.draining === true, http: m.http };
      const url = m.id === view.self.id ? peer.url : m.http;
      if (!url) return { ...row, error: "no HTTP address known" };
      if (m.state === "dead" || m.state === "removed") return row;
      try {
        const res = await fetch(`${url}/cluster/status`, { signal: AbortSignal.timeout(3000) });
        if (!res.ok) return { ...row, error: `status ${res.status}` };
        return { ...row, status: (await res.json()) as PeerStatus };
      } catch (err) {
        return { ...row, error: `cannot reach ${url}: ${connectionCause(err)}` };
      }
    }),
  );
}

const USAGE = `usage: meshstore admin info ALIAS
       meshstore admin drain ALIAS PEER [--cancel]
       meshstore admin keys create ALIAS [--name NAME] [--bucket BUCKET=read|write|owner]... [--admin]
       meshstore admin keys list ALIAS
       meshstore admin keys revoke ALIAS ACCESS_KEY_ID
       meshstore admin keys mesh-key --out FILE
  info     each member: state, uptime, version, chunks, bytes and disk; then totals
  drain    hand PEER's data to the others (PEER: its id, or the end of it); --cancel stops it
  keys     access keys (needs an admin token); mesh-key writes a new mesh key file`;

async function info(ctx: Context, argv: string[]): Promise<void> {
  const { positionals } = parseCommand(argv, {});
  const [alias] = positionalsOf(positionals, ["ALIAS"]);
  const rows = await gatherInfo(ctx, alias);
  if (ctx.out.json) {
    for (const r of rows) {
      const s = r.status;
      ctx.out.result({ op: "admin info", peer: r.id, state: r.state, draining: r.draining, http: r.http, ...(s ? { version: s.version, uptimeSeconds: s.uptimeSeconds, chunks: s.storage.chunks, bytes: s.storage.bytes, diskTotalBytes: s.storage.diskTotalBytes, diskFreeBytes: s.storage.diskFreeBytes } : {}), ...(r.error ? { error: r.error } : {}) });
    }
    ctx.out.result({ op: "admin info", totals: infoTotals(rows) });
    return;
  }
  ctx.out.result({}, infoLines(rows));
}

async function drain(ctx: Context, argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand(argv, { cancel: { type: "boolean" } });
  const [alias, which] = positionalsOf(positionals, ["ALIAS", "PEER"]);
  const t = remoteTarget(alias, ctx.config, "ALIAS", "alias");
  const peer = peerOf(t.alias);
  const view = await peer.json<{ self: Member; peers: Member[] }>("/cluster/peers");
  const ids = [view.self, ...view.peers].map((m) => m.id);
  const matches = ids.filter((id) => id === which || id.endsWith(which));
  if (matches.length !== 1) throw new ClientError(matches.length ? `"${which}" matches ${matches.length} members: give more of the id` : `no member "${which}" (members: ${ids.map(shortId).join(", ")})`, "NoSuchMember");
  const id = matches[0];
  const state = await peer.json<{ draining: boolean; safeToStop: boolean; reason?: string }>(`/cluster/members/${encodeURIComponent(id)}/drain`, { method: values.cancel ? "DELETE" : "POST" });
  const text = values.cancel ? `drain of ${shortId(id)} cancelled: it holds data and counts in quorums again` : `${shortId(id)} is draining; ${state.safeToStop ? "safe to stop now" : `not safe to stop yet${state.reason ? `: ${state.reason}` : " (run this again to poll)"}`}`;
  ctx.out.result({ op: values.cancel ? "admin drain cancel" : "admin drain", peer: id, ...state }, text);
}

async function keys(ctx: Context, argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand(argv, KEY_OPTIONS);
  const [sub, ...rest] = positionals;
  if (!sub) throw new UsageError("admin keys needs a subcommand: create, list, revoke or mesh-key");
  let args = rest;
  let call = async (): Promise<AdminCall> => {
    throw new UsageError(`admin keys ${sub} needs ALIAS`);
  };
  if (sub !== "mesh-key" && rest.length > 0) {
    const peer = peerOf(remoteTarget(rest[0], ctx.config, "ALIAS", "alias").alias);
    args = rest.slice(1);
    call = async () => async (method, route, body) => (await peer.request(route, { method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined })).text();
  }
  let text: string;
  try {
    text = await keySubcommand(sub, args, values, call);
  } catch (err) {
    // The shared key code calls a bad command line a ConfigError; here that is a usage error.
    if (err instanceof ConfigError) throw new UsageError(err.message.split("\n")[0]);
    throw err;
  }
  if (ctx.out.json && (sub === "create" || sub === "list")) ctx.out.result({ op: `admin keys ${sub}`, ...(JSON.parse(text) as Record<string, unknown>) });
  else ctx.out.result({ op: `admin keys ${sub}`, message: text }, text);
}

export const adminCommand: Command = {
  name: "admin",
  summary: "the mesh: members and their figures, drains, access keys",
  usage: `${USAGE}\n\n${keysUsage()
    .split("\n")
    .filter((l) => l.includes("--bucket '*'"))
    .join("\n")}`,
  async run(ctx, argv) {
    const [sub, ...rest] = argv;
    if (sub === undefined) throw new UsageError("admin needs a subcommand: info, drain or keys");
    if (sub === "info") return info(ctx, rest);
    if (sub === "drain") return drain(ctx, rest);
    if (sub === "keys") return keys(ctx, rest);
    throw new UsageError(`unknown admin subcommand "${sub}"`);
  },
};
