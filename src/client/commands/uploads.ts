// `uploads ALIAS [TOKEN]`: the peers' upload progress records (GET /uploads, newest first,
// and GET /uploads/{token}), as a table or JSON lines.
import { parseCommand, positionalsOf } from "../args.ts";
import type { Command } from "../context.ts";
import { peerOf } from "../http.ts";
import { remoteTarget } from "../target.ts";
import { humanBytes, humanDuration, humanTime, parseCount } from "../units.ts";

/** An upload progress record, as the peers keep it. */
export interface UploadRecord {
  token: string;
  bucket: string;
  key: string;
  state: "inprogress" | "fail" | "success";
  bytesReceived: number;
  size?: number;
  startedMs: number;
  finishedMs?: number;
  error?: string;
}

/** The table's header. */
export const UPLOADS_HEADER = `${"TOKEN".padEnd(28)} ${"STATE".padEnd(10)} ${"PROGRESS".padEnd(26)} ${"STARTED (UTC)".padEnd(19)} ${"TOOK".padStart(7)}  OBJECT`;

/** One record as a table row; `now` times an upload still running. */
export function uploadLine(r: UploadRecord, now = Date.now()): string {
  const pct = r.size ? ` (${Math.min(100, Math.floor((r.bytesReceived / r.size) * 100))}%)` : "";
  const progress = `${humanBytes(r.bytesReceived)}${r.size !== undefined ? ` of ${humanBytes(r.size)}` : ""}${pct}`;
  const took = humanDuration(((r.finishedMs ?? now) - r.startedMs) / 1000);
  return `${r.token.padEnd(28)} ${r.state.padEnd(10)} ${progress.padEnd(26)} ${humanTime(r.startedMs)} ${took.padStart(7)}  ${r.bucket}/${r.key}${r.error ? `  error: ${r.error}` : ""}`;
}

export const uploadsCommand: Command = {
  name: "uploads",
  summary: "upload progress records: the latest uploads, or one by its token",
  usage: `usage: meshstore uploads ALIAS [TOKEN] [--limit N]
  Without TOKEN: the latest uploads the peer knows of, newest first.
  TOKEN is the x-upload-token of an upload (cp --json prints it as uploadToken).
  --limit N   how many (default 20, at most 200)`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, { limit: { type: "string" } });
    const [alias, token] = positionalsOf(positionals, ["ALIAS", "TOKEN"], 1);
    const t = remoteTarget(alias, ctx.config, "ALIAS", "alias");
    const peer = peerOf(t.alias);
    const limit = values.limit === undefined ? 20 : parseCount(values.limit, "--limit", 1, 200);
    const records = token === undefined ? (await peer.json<{ uploads: UploadRecord[] }>(`/uploads?limit=${limit}`)).uploads : [await peer.json<UploadRecord>(`/uploads/${encodeURIComponent(token)}`)];
    if (!ctx.out.json && !ctx.out.quiet) ctx.out.result({}, records.length ? UPLOADS_HEADER : "no uploads recorded");
    const now = Date.now();
    for (const r of records) ctx.out.result({ op: "uploads", ...r }, uploadLine(r, now));
  },
};
