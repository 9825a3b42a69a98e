// cp and mirror: local to mesh, mesh to local, mesh to mesh, one progress bar for the lot.
// Objects are copied a few at a time; one that fails is reported and the rest go on (exit 1).
import { stat, unlink } from "node:fs/promises";
import path from "node:path";
import { mapLimit } from "../../util/map-limit.ts";
import { parseCommand } from "../args.ts";
import type { Command, Context } from "../context.ts";
import { ClientError, UsageError } from "../errors.ts";
import { keyPath, objectRoute, peerOf } from "../http.ts";
import { listObjects, localEntries, remoteEntries } from "../listing.ts";
import { excluder, planIsEmpty, planMirror, type Entry } from "../plan.ts";
import { startProgress, wantsBar, type Progress } from "../progress.ts";
import { sessionStore } from "../sessions.ts";
import { parseTarget, showTarget, type LocalTarget, type RemoteTarget, type Target } from "../target.ts";
import { copyObject, downloadFile, MIN_PART_SIZE, uploadFile, type UploadOptions, type UploadResult } from "../transfer.ts";
import { parseCount, parseSize } from "../units.ts";

/** Flags of the commands that upload. */
const TRANSFER_OPTIONS = {
  "multipart-threshold": { type: "string" },
  "part-size": { type: "string" },
  parallel: { type: "string" },
} as const;

const TRANSFER_USAGE = `  --multipart-threshold SIZE   files this large or larger go up in parts (default 64MiB)
  --part-size SIZE             bytes per part (default 16MiB, at least 5MiB)
  --parallel N                 parts (and files) in flight at once (default 4)`;

/** Defaults for uploads. */
export const DEFAULT_THRESHOLD = 64 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
export const DEFAULT_PARALLEL = 4;

/** One copy to make. */
interface Job {
  from: Target;
  to: Target;
  size: number;
}

/** Upload settings from the flags. */
function uploadOptions(ctx: Context, values: { "multipart-threshold"?: string; "part-size"?: string; parallel?: string; continue?: boolean }, progress: Progress): UploadOptions {
  const partSize = values["part-size"] === undefined ? DEFAULT_PART_SIZE : parseSize(values["part-size"], "--part-size");
  if (partSize < MIN_PART_SIZE) throw new UsageError("--part-size must be at least 5MiB (S3's rule for every part but the last)");
  const hook = ctx.env.MESHSTORE_TEST_EXIT_AFTER_PARTS;
  return {
    multipartThreshold: values["multipart-threshold"] === undefined ? DEFAULT_THRESHOLD : parseSize(values["multipart-threshold"], "--multipart-threshold"),
    partSize,
    parallel: values.parallel === undefined ? DEFAULT_PARALLEL : parseCount(values.parallel, "--parallel", 1, 64),
    resume: values.continue === true,
    sessions: sessionStore(path.join(ctx.dir, "sessions")),
    progress,
    exitAfterParts: hook ? Number(hook) : undefined,
  };
}

/** A remote path under a prefix: `prefix` + `rel`, with a '/' between when the prefix is a name. */
const under = (prefix: string, rel: string) => (prefix === "" || prefix.endsWith("/") ? prefix + rel : `${prefix}/${rel}`);

const isDir = async (p: string) => (await stat(p).catch(() => undefined))?.isDirectory() === true;

/** Run one job; its record for the output. */
async function runJob(job: Job, opts: UploadOptions): Promise<Record<string, unknown>> {
  const { from, to } = job;
  // A key's '..' segments must never place a download outside its folder (keyPath refuses them too).
  if (from.kind === "remote") keyPath(from.key);
  const base = { op: "cp", source: showTarget(from), target: showTarget(to) };
  let r: UploadResult | { size: number; etag: string };
  if (from.kind === "local" && to.kind === "remote") r = await uploadFile(peerOf(to.alias), from.path, to.bucket, to.key, opts);
  else if (from.kind === "remote" && to.kind === "local") r = await downloadFile(peerOf(from.alias), from.bucket, from.key, to.path, opts.progress);
  else if (from.kind === "remote" && to.kind === "remote") r = await copyObject(peerOf(from.alias), from, peerOf(to.alias), to, opts.progress, opts.meta);
  else throw new UsageError("cp between two local paths is not meshstore's job: use cp");
  return { ...base, ...r };
}

/** `--meta NAME=VALUE` flags as user metadata (names lowercased, as HTTP headers carry them). */
export function parseMeta(flags: string[] | undefined): Record<string, string> | undefined {
  if (!flags?.length) return undefined;
  const meta: Record<string, string> = {};
  for (const f of flags) {
    const eq = f.indexOf("=");
    const name = f.slice(0, Math.max(0, eq)).toLowerCase();
    if (!/^[a-z0-9_-]{1,64}$/.test(name)) throw new UsageError(`--meta takes NAME=VALUE (NAME of a-z 0-9 _ -), got "${f}"`);
    // The value travels as an HTTP header: printable ASCII, no line breaks.
    const value = f.slice(eq + 1);
    if (!/^[\x20-\x7e]*$/.test(value)) throw new UsageError(`--meta ${name}: a value must be printable ASCII (it goes as an HTTP header)`);
    meta[name] = value;
  }
  return meta;
}

/** Run jobs a few at a time under one bar; each result or failure is printed. */
async function runJobs(ctx: Context, jobs: Job[], opts: UploadOptions, op: string): Promise<void> {
  opts.progress.grow(
    jobs.reduce((s, j) => s + j.size, 0),
    jobs.length,
  );
  try {
    await mapLimit(jobs, opts.parallel, async (job) => {
      try {
        const record = await runJob(job, opts);
        ctx.out.result({ ...record, op }, `${showTarget(job.from)} -> ${showTarget(job.to)}`);
      } catch (err) {
        ctx.out.fail({ op, source: showTarget(job.from), target: showTarget(job.to) }, err);
      } finally {
        opts.progress.fileDone();
      }
    });
  } finally {
    opts.progress.stop();
  }
}

/** The jobs of one cp source. */
async function jobsFor(src: Target, dst: Target, recursive: boolean, many: boolean): Promise<Job[]> {
  const dstIsFolder = many || (dst.kind === "local" ? dst.path.endsWith("/") || (await isDir(dst.path)) : dst.key === "" || dst.key.endsWith("/"));
  const into = (name: string): Target => (dst.kind === "local" ? { kind: "local", path: path.join(dst.path, ...name.split("/")) } : { ...dst, key: under(dst.key, name) });
  if (src.kind === "local") {
    const s = await stat(src.path).catch(() => undefined);
    if (!s) throw new ClientError(`${src.path}: no such file or folder`, "ENOENT");
    if (s.isDirectory()) {
      if (!recursive) throw new ClientError(`${src.path} is a folder: use cp -r`, "IsAFolder");
      return (await localEntries(src.path)).map((e) => ({ from: { kind: "local", path: path.join(src.path, ...e.rel.split("/")) } satisfies LocalTarget, to: into(e.rel), size: e.size }));
    }
    return [{ from: src, to: dstIsFolder ? into(path.basename(src.path)) : dst, size: s.size }];
  }
  if (!src.bucket) throw new UsageError(`${showTarget(src)} needs a bucket`);
  const peer = peerOf(src.alias);
  if (recursive) {
    const prefix = src.key === "" || src.key.endsWith("/") ? src.key : src.key + "/";
    const objects = await listObjects(peer, src.bucket, prefix);
    return objects.map((o) => ({ from: { ...src, key: o.key } satisfies RemoteTarget, to: into(o.key.slice(prefix.length)), size: o.size }));
  }
  if (!src.key) throw new UsageError(`${showTarget(src)} is a bucket: use cp -r`);
  const head = await peer.request(objectRoute(src.bucket, src.key), { method: "HEAD", accept: [404] });
  if (head.status === 404) throw new ClientError(`${showTarget(src)}: no such object`, "NoSuchKey", 404);
  return [{ from: src, to: dstIsFolder ? into(path.posix.basename(src.key)) : dst, size: Number(head.headers.get("content-length") ?? 0) }];
}

const cp: Command = {
  name: "cp",
  summary: "copy files and objects: local to mesh, mesh to local, mesh to mesh",
  usage: `usage: meshstore cp [-r] [--continue] SOURCE... TARGET
  SOURCE and TARGET are local paths or ALIAS/BUCKET/KEY. With -r, a folder's files (or the
  objects under a prefix) go under TARGET by their relative paths; a TARGET ending in '/',
  an existing folder, or several sources take each source's name.
  -r, --recursive              copy folders and prefixes
  --continue                   resume an interrupted multipart upload: only the parts the peer lacks are sent
  --meta NAME=VALUE            user metadata (x-meta-NAME) on every object written; repeatable. A
                               mesh-to-mesh copy keeps the source's and adds (or replaces) these.
${TRANSFER_USAGE}`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, { recursive: { type: "boolean", short: "r" }, continue: { type: "boolean" }, meta: { type: "string", multiple: true }, ...TRANSFER_OPTIONS });
    if (positionals.length < 2) throw new UsageError(positionals.length === 0 ? "missing SOURCE and TARGET" : "missing TARGET");
    const dst = parseTarget(positionals.at(-1) ?? "", ctx.config);
    const sources = positionals.slice(0, -1).map((a) => parseTarget(a, ctx.config));
    if (dst.kind === "remote" && !dst.bucket) throw new UsageError(`${showTarget(dst)} needs a bucket`);
    if (dst.kind === "local" && sources.every((s) => s.kind === "local")) throw new UsageError("cp needs an ALIAS/BUCKET path on one side (no alias matches; see meshstore alias ls)");
    const meta = parseMeta(values.meta);
    if (meta && dst.kind === "local") throw new UsageError("--meta sets metadata on objects written to a mesh; this TARGET is local");
    const progress = startProgress(wantsBar(ctx.out), "cp", (sink) => ctx.out.setLineSink(sink));
    try {
      const opts = { ...uploadOptions(ctx, values, progress), meta };
      const jobs: Job[] = [];
      for (const src of sources) {
        try {
          jobs.push(...(await jobsFor(src, dst, values.recursive === true, sources.length > 1)));
        } catch (err) {
          if (err instanceof UsageError) throw err;
          ctx.out.fail({ op: "cp", source: showTarget(src), target: showTarget(dst) }, err);
        }
      }
      await runJobs(ctx, jobs, opts, "cp");
    } finally {
      // A usage error after the bar started must not leave its redraw timer (and a hidden cursor) behind.
      progress.stop();
    }
  },
};

/** One side of a mirror, listed as entries relative to its root. */
async function sideEntries(t: Target): Promise<Entry[]> {
  if (t.kind === "local") return localEntries(t.path);
  return remoteEntries(peerOf(t.alias), t.bucket, t.key);
}

/** The target of relative path `rel` under a mirror root. */
function child(t: Target, rel: string): Target {
  return t.kind === "local" ? { kind: "local", path: path.join(t.path, ...rel.split("/")) } : { ...t, key: under(t.key, rel) };
}

const mirror: Command = {
  name: "mirror",
  summary: "make TARGET hold what SOURCE holds (folders or prefixes)",
  usage: `usage: meshstore mirror [--remove] [--overwrite] [--dry-run] [--exclude GLOB]... SOURCE TARGET
  Copies what is missing on TARGET. A file that differs (size, or SOURCE newer) is left alone
  unless --overwrite.
  --remove          delete what TARGET holds and SOURCE does not
  --overwrite       copy files that differ
  --dry-run         print what would be done, do nothing
  --exclude GLOB    skip paths matching GLOB (a relative path or its last segment; * ** ? [..])
${TRANSFER_USAGE}`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, {
      remove: { type: "boolean" },
      overwrite: { type: "boolean" },
      "dry-run": { type: "boolean" },
      exclude: { type: "string", multiple: true },
      ...TRANSFER_OPTIONS,
    });
    if (positionals.length !== 2) throw new UsageError(positionals.length < 2 ? "mirror needs SOURCE and TARGET" : `unexpected argument "${positionals[2]}"`);
    const [src, dst] = positionals.map((a) => parseTarget(a, ctx.config));
    if (src.kind === "local" && dst.kind === "local") throw new UsageError("mirror needs an ALIAS/BUCKET path on one side (no alias matches; see meshstore alias ls)");
    for (const t of [src, dst]) if (t.kind === "remote" && !t.bucket) throw new UsageError(`${showTarget(t)} needs a bucket`);
    if (src.kind === "local" && !(await isDir(src.path))) throw new ClientError(`${src.path} is not a folder`, "ENOENT");
    const exclude = values.exclude ?? [];
    excluder(exclude); // a bad glob is a usage error before anything moves
    const plan = planMirror(await sideEntries(src), await sideEntries(dst), { remove: values.remove === true, overwrite: values.overwrite === true, exclude });
    const summary = { op: "mirror", source: showTarget(src), target: showTarget(dst), copy: plan.copy.length, overwrite: plan.overwrite.length, remove: plan.remove.length, differ: plan.differ.length, same: plan.same, dryRun: values["dry-run"] === true };
    if (values["dry-run"]) {
      for (const e of plan.copy) ctx.out.result({ op: "mirror", action: "copy", rel: e.rel, size: e.size, dryRun: true }, `would copy ${e.rel}`);
      for (const e of plan.overwrite) ctx.out.result({ op: "mirror", action: "overwrite", rel: e.rel, size: e.size, dryRun: true }, `would overwrite ${e.rel}`);
      for (const e of plan.remove) ctx.out.result({ op: "mirror", action: "remove", rel: e.rel, dryRun: true }, `would remove ${e.rel}`);
    } else {
      const progress = startProgress(wantsBar(ctx.out), "mirror", (sink) => ctx.out.setLineSink(sink));
      try {
        const opts = uploadOptions(ctx, values, progress);
        const jobs = [...plan.copy, ...plan.overwrite].map((e) => ({ from: child(src, e.rel), to: child(dst, e.rel), size: e.size }));
        await runJobs(ctx, jobs, opts, "mirror");
      } finally {
        progress.stop();
      }
      for (const e of plan.remove) {
        const t = child(dst, e.rel);
        try {
          if (t.kind === "local") await unlink(t.path);
          else await peerOf(t.alias).request(objectRoute(t.bucket, t.key), { method: "DELETE" });
          ctx.out.result({ op: "mirror", action: "remove", target: showTarget(t) }, `removed ${showTarget(t)}`);
        } catch (err) {
          ctx.out.fail({ op: "mirror", action: "remove", target: showTarget(t) }, err);
        }
      }
    }
    for (const e of plan.differ) ctx.out.note(`${e.rel} differs on ${showTarget(dst)}: left alone (use --overwrite)`);
    const changes = plan.copy.length + plan.overwrite.length + plan.remove.length;
    ctx.out.result(
      { ...summary, action: "summary" },
      planIsEmpty(plan) ? `nothing to do: ${plan.same} already the same${plan.differ.length ? `, ${plan.differ.length} differ` : ""}` : `${values["dry-run"] ? "would make" : "made"} ${changes} change(s): ${plan.copy.length} copied, ${plan.overwrite.length} overwritten, ${plan.remove.length} removed; ${plan.same} already the same`,
    );
  },
};

export const copyCommands: Command[] = [cp, mirror];
