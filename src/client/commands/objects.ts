// Buckets and objects: ls, mb, rb, rm, cat, stat, presign.
import { parseCommand, positionalsOf } from "../args.ts";
import { s3UrlOf } from "../config.ts";
import type { Command, Context } from "../context.ts";
import { ClientError, UsageError } from "../errors.ts";
import { keyPath, objectRoute, peerOf } from "../http.ts";
import { listObjects, listOpenUploads, listPages } from "../listing.ts";
import { presignGet } from "../presign.ts";
import { remoteTarget, showTarget } from "../target.ts";
import { catObject } from "../transfer.ts";
import { humanBytes, humanTime, parseDuration } from "../units.ts";

/** A row of `ls`. */
export function lsLine(e: { key: string; size?: number; lastModified?: string; folder?: boolean }): string {
  if (e.folder) return `${"".padEnd(21)} ${"PRE".padStart(10)}  ${e.key}`;
  return `[${humanTime(Date.parse(e.lastModified ?? ""))}] ${humanBytes(e.size ?? 0).padStart(10)}  ${e.key}`;
}

const ls: Command = {
  name: "ls",
  summary: "list buckets, or objects under a bucket or prefix",
  usage: `usage: meshstore ls [-r] ALIAS[/BUCKET[/PREFIX]]
  -r, --recursive   every object under the prefix (default: one level, folders as PRE)`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, { recursive: { type: "boolean", short: "r" } });
    const [arg] = positionalsOf(positionals, ["ALIAS[/BUCKET[/PREFIX]]"]);
    const t = remoteTarget(arg, ctx.config, "ls's path", "alias");
    const peer = peerOf(t.alias);
    if (!t.bucket) {
      const { buckets } = await peer.json<{ buckets: Array<{ name: string; createdMs: number }> }>("/buckets");
      for (const b of buckets) ctx.out.result({ type: "bucket", name: b.name, createdMs: b.createdMs }, `[${humanTime(b.createdMs)}] ${"".padStart(10)}  ${b.name}/`);
      return;
    }
    for await (const page of listPages(peer, t.bucket, t.key, values.recursive ? "" : "/")) {
      for (const p of page.prefixes) ctx.out.result({ type: "folder", key: p }, lsLine({ key: p, folder: true }));
      for (const o of page.objects) ctx.out.result({ type: "file", key: o.key, size: o.size, etag: o.etag, lastModified: o.lastModified }, lsLine(o));
    }
  },
};

const mb: Command = {
  name: "mb",
  summary: "make a bucket",
  usage: "usage: meshstore mb ALIAS/BUCKET...",
  async run(ctx, argv) {
    const { positionals } = parseCommand(argv, {});
    if (positionals.length === 0) throw new UsageError("missing ALIAS/BUCKET");
    for (const arg of positionals) {
      const t = remoteTarget(arg, ctx.config, "mb's bucket");
      try {
        await peerOf(t.alias).request(`/buckets/${encodeURIComponent(t.bucket)}`, { method: "PUT" });
        ctx.out.result({ op: "mb", bucket: t.bucket, target: showTarget(t) }, `made bucket ${showTarget(t)}`);
      } catch (err) {
        ctx.out.fail({ op: "mb", target: showTarget(t) }, err);
      }
    }
  },
};

/** Delete every object under `prefix`, reporting each; returns how many were deleted. */
async function removeUnder(ctx: Context, t: { alias: { url: string; token?: string }; aliasName: string; bucket: string }, prefix: string, op: string): Promise<number> {
  const peer = peerOf(t.alias);
  let n = 0;
  for (const o of await listObjects(peer, t.bucket, prefix)) {
    const where = `${t.aliasName}/${t.bucket}/${o.key}`;
    try {
      await peer.request(objectRoute(t.bucket, o.key), { method: "DELETE" });
      n++;
      ctx.out.result({ op, target: where, key: o.key }, `removed ${where}`);
    } catch (err) {
      ctx.out.fail({ op, target: where, key: o.key }, err);
    }
  }
  return n;
}

/** Abort every multipart upload in progress in `bucket` (for rb --force): one line each. */
async function abortOpenUploads(ctx: Context, alias: Parameters<typeof peerOf>[0], bucket: string): Promise<void> {
  const peer = peerOf(alias);
  for (const u of await listOpenUploads(peer, bucket)) {
    const route = `/buckets/${encodeURIComponent(bucket)}/multipart/${encodeURIComponent(u.uploadId)}?key=${encodeURIComponent(u.key)}`;
    try {
      // Ended meanwhile (completed, or expired by the peers): nothing left to abort.
      const res = await peer.request(route, { method: "DELETE", accept: [404] });
      if (res.status === 404) continue;
      ctx.out.result({ op: "abort", bucket, key: u.key, uploadId: u.uploadId }, `aborted the upload of ${bucket}/${u.key} started ${u.initiated}`);
    } catch (err) {
      ctx.out.fail({ op: "abort", bucket, key: u.key, uploadId: u.uploadId }, err);
    }
  }
}

const rb: Command = {
  name: "rb",
  summary: "remove a bucket (--force: with everything in it)",
  usage: `usage: meshstore rb [--force] ALIAS/BUCKET
  --force   delete every object and abort every open multipart upload first`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, { force: { type: "boolean" } });
    const [arg] = positionalsOf(positionals, ["ALIAS/BUCKET"]);
    const t = remoteTarget(arg, ctx.config, "rb's bucket");
    if (t.key) throw new UsageError(`rb takes a bucket, not an object path: ${t.aliasName}/${t.bucket}`);
    if (values.force) {
      // Uploads first: one completed meanwhile would put an object back.
      await abortOpenUploads(ctx, t.alias, t.bucket);
      await removeUnder(ctx, t, "", "rm");
    }
    if (ctx.out.failures > 0) return;
    await peerOf(t.alias).request(`/buckets/${encodeURIComponent(t.bucket)}`, { method: "DELETE" });
    ctx.out.result({ op: "rb", bucket: t.bucket, target: showTarget(t) }, `removed bucket ${showTarget(t)}`);
  },
};

const rm: Command = {
  name: "rm",
  summary: "remove objects",
  usage: `usage: meshstore rm ALIAS/BUCKET/KEY...
       meshstore rm -r --force ALIAS/BUCKET[/FOLDER]
  -r, --recursive   every object under FOLDER/ (or the whole bucket; needs --force, as a guard)
  --force           allow a recursive remove`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, { recursive: { type: "boolean", short: "r" }, force: { type: "boolean" } });
    if (positionals.length === 0) throw new UsageError("missing ALIAS/BUCKET/KEY");
    if (values.recursive && !values.force) throw new UsageError("rm -r removes everything under the path: add --force to confirm");
    for (const arg of positionals) {
      const t = remoteTarget(arg, ctx.config, "rm's path", values.recursive ? "bucket" : "key");
      if (values.recursive) {
        // A folder, as cp -r reads it: rm -r b/dir must not take b/dir2 or b/dirt.txt with it.
        const folder = t.key === "" || t.key.endsWith("/") ? t.key : `${t.key}/`;
        if ((await removeUnder(ctx, t, folder, "rm")) === 0 && folder !== "") ctx.out.fail({ op: "rm", target: showTarget(t) }, new ClientError(`${showTarget(t)}: nothing under ${folder}`, "NoSuchKey", 404));
        continue;
      }
      const peer = peerOf(t.alias);
      try {
        // DELETE of a missing key succeeds; say so rather than claim a removal.
        const head = await peer.request(objectRoute(t.bucket, t.key), { method: "HEAD", accept: [404] });
        if (head.status === 404) throw new ClientError(`${showTarget(t)}: no such object`, "NoSuchKey", 404);
        await peer.request(objectRoute(t.bucket, t.key), { method: "DELETE" });
        ctx.out.result({ op: "rm", target: showTarget(t), key: t.key }, `removed ${showTarget(t)}`);
      } catch (err) {
        ctx.out.fail({ op: "rm", target: showTarget(t), key: t.key }, err);
      }
    }
  },
};

const cat: Command = {
  name: "cat",
  summary: "write objects to standard output",
  usage: "usage: meshstore cat ALIAS/BUCKET/KEY...",
  async run(ctx, argv) {
    const { positionals } = parseCommand(argv, {});
    if (positionals.length === 0) throw new UsageError("missing ALIAS/BUCKET/KEY");
    for (const arg of positionals) {
      const t = remoteTarget(arg, ctx.config, "cat's object", "key");
      try {
        await catObject(peerOf(t.alias), t.bucket, t.key);
      } catch (err) {
        ctx.out.fail({ op: "cat", target: showTarget(t) }, err);
      }
    }
  },
};

/** What `/cluster/locate` answers. */
interface Location {
  size: number;
  etag: string;
  inline: boolean;
  chunks: Array<{ id: string; size: number; expected: string[]; holders: string[] }>;
  shard: { id: string; replicas: string[]; holders: string[] };
}

/** A peer id as shown in tables: its last 8 characters. */
export const shortId = (id: string) => id.slice(-8);

const stat: Command = {
  name: "stat",
  summary: "an object's details: size, ETag, type, metadata, and which peers hold each chunk",
  usage: "usage: meshstore stat ALIAS/BUCKET/KEY...",
  async run(ctx, argv) {
    const { positionals } = parseCommand(argv, {});
    if (positionals.length === 0) throw new UsageError("missing ALIAS/BUCKET/KEY");
    for (const arg of positionals) {
      const t = remoteTarget(arg, ctx.config, "stat's object", "key");
      const peer = peerOf(t.alias);
      try {
        const head = await peer.request(objectRoute(t.bucket, t.key), { method: "HEAD", accept: [404] });
        if (head.status === 404) throw new ClientError(`${showTarget(t)}: no such object`, "NoSuchKey", 404);
        const loc = await peer.json<Location>(`/cluster/locate/${encodeURIComponent(t.bucket)}/${keyPath(t.key)}`);
        const meta: Record<string, string> = {};
        for (const [k, v] of head.headers) if (k.startsWith("x-meta-")) meta[k.slice(7)] = v;
        const record = {
          op: "stat",
          target: showTarget(t),
          bucket: t.bucket,
          key: t.key,
          size: loc.size,
          etag: loc.etag,
          contentType: head.headers.get("content-type") ?? "",
          lastModified: head.headers.get("last-modified") ?? "",
          meta,
          inline: loc.inline,
          chunks: loc.chunks.map((c) => ({ id: c.id, size: c.size, holders: c.holders, expected: c.expected })),
          shard: loc.shard,
        };
        const lines = [
          `Name      : ${t.key}`,
          `Size      : ${humanBytes(loc.size)} (${loc.size} bytes)`,
          `ETag      : ${loc.etag}`,
          `Type      : ${record.contentType}`,
          `Modified  : ${record.lastModified}`,
          ...Object.entries(meta).map(([k, v]) => `Meta      : ${k}=${v}`),
          loc.inline ? "Chunks    : none (stored inline in the index)" : `Chunks    : ${loc.chunks.length}`,
          ...loc.chunks.map((c, i) => `  ${String(i + 1).padStart(4)} ${c.id.slice(0, 16)} ${humanBytes(c.size).padStart(10)}  held by ${c.holders.map(shortId).join(", ") || "nobody that answered"}${c.holders.length < c.expected.length ? ` (of ${c.expected.length} expected)` : ""}`),
          `Index     : shard ${loc.shard.id}, on ${loc.shard.holders.map(shortId).join(", ")}`,
        ];
        ctx.out.result(record, lines);
      } catch (err) {
        ctx.out.fail({ op: "stat", target: showTarget(t) }, err);
      }
    }
  },
};

const presign: Command = {
  name: "presign",
  summary: "an S3 presigned URL to download an object without credentials",
  usage: `usage: meshstore presign [--expires DURATION] ALIAS/BUCKET/KEY
  --expires DURATION   how long the URL works: 90s, 15m, 12h, 7d (default 7d, at most 7d)
  Needs an alias set with --access-key and --secret (or --key-file): a token cannot sign.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommand(argv, { expires: { type: "string" } });
    const [arg] = positionalsOf(positionals, ["ALIAS/BUCKET/KEY"]);
    const t = remoteTarget(arg, ctx.config, "presign's object", "key");
    const expires = values.expires === undefined ? 7 * 86400 : parseDuration(values.expires, "--expires");
    if (expires < 1 || expires > 7 * 86400) throw new UsageError("--expires must be between 1 second and 7 days");
    if (!t.alias.accessKey || !t.alias.secretKey) {
      throw new ClientError(`alias ${t.aliasName} has only a token, and presigned URLs need an access key and its secret: meshstore alias set ${t.aliasName} ${t.alias.url} --access-key ID --secret SECRET (or --key-file)`, "NoAccessKey");
    }
    const url = await presignGet(s3UrlOf(t.alias), { accessKeyId: t.alias.accessKey, secretAccessKey: t.alias.secretKey }, t.bucket, t.key, expires);
    ctx.out.result({ op: "presign", target: showTarget(t), url, expiresSeconds: expires }, url);
  },
};

export const objectCommands: Command[] = [ls, mb, rb, rm, cat, stat, presign];

