// MinIO's ListenBucketNotification on the S3 API: `GET /{bucket}?events=s3:ObjectCreated:*&
// events=...&prefix=&suffix=&ping=10`, signed like any S3 call, answered with a stream of
// newline-delimited JSON, one `{"Records":[record]}` line per event from now on, as MinIO
// sends it (minio-go and mc read it line by line). Keep-alive as MinIO has it: with `ping`
// (seconds), an empty `{"Records":null}` line after that long idle; without it, a space
// every 500 ms. Records name events as MinIO does ("s3:ObjectCreated:Put"). Like MinIO,
// the stream starts now and does not replay; the native SSE stream resumes with a cursor.
import { checkFilter, toS3Record } from "../../changes/records.ts";
import type { ChangeLog } from "../../changes/log.ts";
import type { EventStreams, StreamFormat } from "../../changes/stream.ts";
import { BadRequestError, MeshError } from "../../errors.ts";
import { requireAccess, type S3Request } from "./context.ts";

/** What ListenBucketNotification needs from the peer. */
export interface S3Streams {
  streams: Pick<EventStreams, "open">;
  changes: Pick<ChangeLog, "now">;
}

/** MinIO's keep-alive without `ping` (its older clients). */
const SPACE_KEEPALIVE_MS = 500;
/** Longest `ping` taken, in seconds. */
const MAX_PING_S = 3600;
/**
 * Events MinIO can report and meshstore never records (reads are not logged): accepted so
 * that a tool asking for them along with the rest still works; they match nothing.
 */
const NEVER_RECORDED = /^(?:s3:)?ObjectAccessed:(?:\*|Get|Head|GetRetention|GetLegalHold|Attributes)$/;

/** The one value of a filter parameter (MinIO refuses a second prefix or suffix rule too). */
function single(q: URLSearchParams, name: "prefix" | "suffix"): string | undefined {
  const values = q.getAll(name);
  if (values.length > 1) throw new BadRequestError(`Cannot specify more than one ${name} rule in a filter.`, "InvalidArgument");
  return values[0];
}

/** The keep-alive interval asked for with `ping`, in ms (undefined: MinIO's space every 500 ms). */
function pingOf(q: URLSearchParams): number | undefined {
  const raw = q.get("ping");
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || n < 1 || n > MAX_PING_S) throw new BadRequestError(`ping must be a whole number of seconds from 1 to ${MAX_PING_S}, got "${raw.slice(0, 40)}"`, "InvalidArgument");
  return n * 1000;
}

/** MinIO's stream format: one JSON document per line. */
function minioFormat(pingMs: number | undefined): StreamFormat {
  const empty = pingMs === undefined ? " " : '{"Records":null}\n';
  return {
    // What MinIO answers with, though the body is JSON lines rather than SSE.
    contentType: "text/event-stream",
    pingMs: pingMs ?? SPACE_KEEPALIVE_MS,
    // Something at once, so that the client has the answer's headers before the first event.
    opening: () => empty,
    events(events) {
      let out = "";
      for (const e of events) {
        const record = toS3Record(e);
        out += JSON.stringify({ Records: [{ ...record, eventName: `s3:${record.eventName}` }] }) + "\n";
      }
      return out;
    },
    ping: () => empty,
  };
}

/** GET /{bucket}?events=...: the bucket's events from now on, as MinIO streams them. */
export async function listenBucketNotification(r: S3Request): Promise<Response> {
  const live = r.services.listen;
  if (!live) throw new MeshError("NotImplemented", "ListenBucketNotification is not served by this peer");
  await requireAccess(r, "read");
  const names = r.query.getAll("events").flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  const recorded = names.filter((n) => !NEVER_RECORDED.test(n));
  const checked = checkFilter({ types: recorded, prefix: single(r.query, "prefix"), suffix: single(r.query, "suffix") });
  const pingMs = pingOf(r.query);
  // Only names of events never recorded: the stream stays open with nothing to send, as MinIO's would.
  const filter = names.length > 0 && recorded.length === 0 ? { ...checked, types: ["ObjectAccessed:*"] } : checked;
  await r.services.objects.requireBucket(r.bucket);
  return live.streams.open({ request: r.request, bucket: r.bucket, cursor: live.changes.now(), filter, format: minioFormat(pingMs) });
}
