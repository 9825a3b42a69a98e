// GET /buckets/{b}/events/stream: a bucket's change events as Server-Sent Events. Each event
// is `id: <event id>`, `event: <eventName>`, `data: <the S3 record, one line>`; the id is a
// cursor (every event at or below it has been sent), so a client that reconnects with
// `Last-Event-ID` (EventSource does so by itself) misses nothing and gets nothing twice.
// Frames with only an `id:` move that cursor on without an event: the first one names
// where the stream starts, and a ping carries the position read up to when it has moved
// past the last event sent (a filter that leaves everything out still moves it). Every
// check happens before the stream starts, so bad input is a 4xx JSON answer.
import { checkCursor, type ChangeLog } from "../changes/log.ts";
import { toS3Record, type EventFilter } from "../changes/records.ts";
import type { EventStreams, StreamFormat } from "../changes/stream.ts";
import { BadRequestError, MeshError } from "../errors.ts";
import { filterOf, type EventsQuery } from "./native-events.ts";

/** What the native API needs for live streams. */
export interface NativeStreams extends Pick<EventStreams, "open"> {
  /** The keep-alive interval of an SSE stream (events.streamPingMs). */
  readonly pingMs: number;
}

/** How long an EventSource waits before it reconnects (the SSE `retry:` field). */
const RECONNECT_MS = 2000;

/** Where a stream starts and what it passes; `resumed` when the client named a position (no bucket check then). */
export interface StreamStart {
  cursor: string;
  filter: EventFilter;
  resumed: boolean;
}

/** The start of a stream: `Last-Event-ID` if sent, else `?from=now` (the default), `earliest` or a cursor. */
export function streamStart(changes: Pick<ChangeLog, "now">, request: Request, q: Pick<EventsQuery, "from" | "types" | "prefix" | "suffix">, nowMs = Date.now()): StreamStart {
  const filter = filterOf(q);
  const last = request.headers.get("last-event-id")?.trim();
  if (last) {
    return { cursor: named(last, nowMs, "the Last-Event-ID header is not an event id or cursor this API gave: send back the last id received, exactly"), filter, resumed: true };
  }
  const from = q.from ?? "";
  if (from === "" || from === "now") return { cursor: changes.now(), filter, resumed: false };
  if (from === "earliest") return { cursor: "", filter, resumed: false };
  return { cursor: named(from, nowMs, `from must be now, earliest, or an event id or cursor this API gave; got "${from.slice(0, 80)}"`), filter, resumed: true };
}

/** `position` checked as a cursor, with `message` when it is not one (a cursor from the future keeps its own). */
function named(position: string, nowMs: number, message: string): string {
  try {
    return checkCursor(position, nowMs);
  } catch (err) {
    if (err instanceof MeshError && /future/.test(err.message)) throw err;
    throw new BadRequestError(message, "InvalidArgument");
  }
}

/** One line of text for an SSE field or comment (a line break would end it). */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

/** The SSE format of one stream (it remembers the last id it sent). */
export function sseFormat(pingMs: number): StreamFormat {
  let lastId = "";
  return {
    contentType: "text/event-stream; charset=utf-8",
    pingMs,
    opening(cursor) {
      lastId = cursor;
      return `retry: ${RECONNECT_MS}\nid: ${cursor}\n\n`;
    },
    events(events) {
      let out = "";
      for (const e of events) out += `id: ${e.id}\nevent: ${e.event.name}\ndata: ${JSON.stringify(toS3Record(e))}\n\n`;
      lastId = events[events.length - 1].id;
      return out;
    },
    ping(cursor) {
      if (cursor === lastId) return ": ping\n\n";
      lastId = cursor;
      return `: ping\nid: ${cursor}\n\n`;
    },
    failed: (message) => `: error: ${oneLine(message).slice(0, 300)}; reconnect with Last-Event-ID\n\n`,
  };
}

/** Open the SSE stream of `bucket` for `request` (auth and the bucket name were checked by the route). */
export async function openEventStream(
  streams: NativeStreams,
  changes: Pick<ChangeLog, "now">,
  requireBucket: (bucket: string) => Promise<unknown>,
  request: Request,
  bucket: string,
  query: Pick<EventsQuery, "from" | "types" | "prefix" | "suffix">,
): Promise<Response> {
  const start = streamStart(changes, request, query);
  // A consumer resuming from a position reads on, also past the bucket's removal (as GET /events does).
  if (!start.resumed) await requireBucket(bucket);
  return streams.open({ request, bucket, cursor: start.cursor, filter: start.filter, format: sseFormat(streams.pingMs) });
}
