// Live streams of a bucket's change events: the one loop behind both the native API's
// Server-Sent Events and the S3 API's ListenBucketNotification (MinIO's form). A stream
// reads the log from a cursor a page at a time (log.ts: every event at or below the
// cursor has been served) and writes each page as its format has it; once it has caught
// up it reads again every `pollMs`, and after `pingMs` without writing anything it writes
// its format's keep-alive. The cursor only moves past what was written, so a consumer that
// reconnects from the last position it was told misses nothing.
//
// Bounds: one page is in memory per stream, and the next is read only once the client has
// taken the last (the body is pulled); a peer serves at most `maxStreams` at once. A stream
// lives for hours, so it leaves the peer's in-flight request count (`detach`) and is
// counted here instead. It ends when the client goes away, when reads have failed for
// FAILING_MS (the client reconnects, perhaps through another peer), or when the peer stops.
import { MeshError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import type { ChangeLog } from "./log.ts";
import type { ChangeEvent, EventFilter } from "./records.ts";

/** Events one read of a stream asks for. */
const PAGE = 200;
/** How long reads may keep failing before the stream ends (its client reconnects). */
const FAILING_MS = 30_000;
/** Longest wait between two failed reads. */
const MAX_BACKOFF_MS = 5000;
/** What a refused client is told to wait before trying again. */
const RETRY_AFTER_S = 5;

/** How a stream writes what it reads. */
export interface StreamFormat {
  /** The Content-Type of the stream. */
  contentType: string;
  /** Write a keep-alive after this long without writing. */
  pingMs: number;
  /** Written first, before anything is read (the start position, say). */
  opening(cursor: string): string;
  /** A page of events; `cursor` is where the stream has read up to after it. */
  events(events: ChangeEvent[], cursor: string): string;
  /** The keep-alive; `cursor` is where the stream has read up to. */
  ping(cursor: string): string;
  /** The last words of a stream that ends because its reads keep failing. */
  failed?(message: string): string;
}

/** What one stream follows. */
export interface StreamRequest {
  /** The HTTP request the stream answers (its signal tells when the client went away). */
  request: Request;
  bucket: string;
  /** Where reading starts: every event at or below it is left out. */
  cursor: string;
  filter: EventFilter;
  format: StreamFormat;
}

/** A peer's live streams, as /cluster/status shows them. */
export interface StreamsStatus {
  open: number;
  max: number;
  /** Since the peer started. */
  opened: number;
  /** Refused because `max` were open. */
  refused: number;
}

/** The live streams of one peer. */
export interface EventStreams {
  /** Start a stream: its Response (throws TooManyStreams when `maxStreams` are open). */
  open(req: StreamRequest): Response;
  status(): StreamsStatus;
  /** End every stream and refuse new ones (the peer is stopping: its clients reconnect elsewhere). */
  close(): void;
}

/** What the streams need. */
export interface EventStreamsDeps {
  changes: Pick<ChangeLog, "read">;
  maxStreams: number;
  /** How often a stream that has caught up reads again. */
  pollMs: number;
  /** Take a request out of the peer's in-flight count (ClientLimits.detach). */
  detach?(request: Request): void;
  log?: Logger;
  clock?: () => number;
}

/** Create the live streams part of one peer. */
export function createEventStreams(deps: EventStreamsDeps): EventStreams {
  const clock = deps.clock ?? Date.now;
  /** The end of each open stream. */
  const live = new Set<() => void>();
  let opened = 0;
  let refused = 0;
  let closed = false;
  const encoder = new TextEncoder();

  function open({ request, bucket, cursor: start, filter, format }: StreamRequest): Response {
    if (closed) throw new MeshError("ServiceUnavailable", "this peer is stopping; connect to another one");
    if (live.size >= deps.maxStreams) {
      refused++;
      throw new MeshError("TooManyStreams", `this peer serves ${deps.maxStreams} event streams already; retry later or through another peer`, { headers: { "retry-after": String(RETRY_AFTER_S) } });
    }
    const stop = new AbortController();
    opened++;
    deps.detach?.(request);
    let cursor = start;
    let lastWrite = clock();
    let nextRead = 0;
    let failingSince: number | undefined;
    let backoff = deps.pollMs;
    let ended = false;
    let controller!: ReadableStreamDefaultController<Uint8Array>;

    /** End the stream once: the client gets the end of the body (or has gone already). */
    const end = () => {
      if (ended) return;
      ended = true;
      live.delete(end);
      request.signal.removeEventListener("abort", onGone);
      stop.abort();
      try {
        controller.close();
      } catch {
        // cancelled by the reader already
      }
    };
    const onGone = () => end();
    live.add(end);
    request.signal.addEventListener("abort", onGone, { once: true });
    const write = (text: string) => {
      if (ended) return;
      controller.enqueue(encoder.encode(text));
      lastWrite = clock();
    };

    /** One step: write something (events, a ping, the last words) or end; waits in between. */
    async function step(): Promise<void> {
      while (!ended) {
        const now = clock();
        if (now - lastWrite >= format.pingMs) return write(format.ping(cursor));
        if (now < nextRead) {
          await sleep(Math.min(nextRead, lastWrite + format.pingMs) - now, stop.signal);
          continue;
        }
        let page: { events: ChangeEvent[]; cursor: string };
        try {
          page = await deps.changes.read(bucket, { cursor, limit: PAGE, filter });
        } catch (err) {
          if (ended) return;
          failingSince ??= now;
          const message = err instanceof Error ? err.message : String(err);
          if (clock() - failingSince >= FAILING_MS) {
            deps.log?.warn(`an event stream of bucket ${bucket} ends: its reads have failed for ${Math.round(FAILING_MS / 1000)} s (${message})`);
            if (format.failed) write(format.failed(message));
            return end();
          }
          deps.log?.debug(`an event stream of bucket ${bucket} could not read: ${message}`);
          nextRead = clock() + backoff;
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
          continue;
        }
        if (ended) return;
        failingSince = undefined;
        backoff = deps.pollMs;
        cursor = page.cursor;
        // A page short of full has reached the log's settled end: wait before reading on.
        if (page.events.length < PAGE) nextRead = clock() + deps.pollMs;
        if (page.events.length) return write(format.events(page.events, cursor));
      }
    }

    const body = new ReadableStream<Uint8Array>(
      {
        start(c) {
          controller = c;
          write(format.opening(cursor));
        },
        async pull() {
          try {
            await step();
          } catch (err) {
            // A bug of ours, not the client's: end the stream rather than leave it hanging.
            deps.log?.warn(`an event stream of bucket ${bucket} failed: ${(err as Error).message}`);
            end();
          }
        },
        cancel() {
          end();
        },
      },
      // One chunk queued at most: the next page is read once the client has taken the last.
      { highWaterMark: 1 },
    );
    // The client may have left while the request was being checked.
    if (request.signal.aborted) end();
    return new Response(body, {
      status: 200,
      headers: { "content-type": format.contentType, "cache-control": "no-cache, no-store", "x-accel-buffering": "no" },
    });
  }

  return {
    open,
    status: () => ({ open: live.size, max: deps.maxStreams, opened, refused }),
    close() {
      closed = true;
      for (const end of [...live]) end();
    },
  };
}
