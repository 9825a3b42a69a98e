// The native API's reading of a bucket's change events (src/changes/): the query of
// GET /buckets/{b}/events checked into a read of the log, and the page as S3 records.
import { BadRequestError } from "../errors.ts";
import { checkCursor, DEFAULT_PAGE, MAX_PAGE, type ChangeLog } from "../changes/log.ts";
import { checkFilter, toS3Record, type EventFilter } from "../changes/records.ts";

/** What the native API needs from the change log. */
export type NativeChanges = Pick<ChangeLog, "read" | "now">;

/** The query of an events read, as it arrives. */
export interface EventsQuery {
  cursor?: string;
  from?: string;
  limit?: string;
  types?: string;
  prefix?: string;
  suffix?: string;
}

/** A page's size from `?limit=` (1 to MAX_PAGE). */
export function pageLimit(raw: string | undefined): number {
  if (raw === undefined || raw === "") return DEFAULT_PAGE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new BadRequestError(`limit must be a whole number from 1 to ${MAX_PAGE}, got "${raw.slice(0, 40)}"`, "InvalidArgument");
  return n;
}

/** The filter of `?types=a,b&prefix=&suffix=`. */
export function filterOf(q: Pick<EventsQuery, "types" | "prefix" | "suffix">): EventFilter {
  return checkFilter({ types: q.types ? q.types.split(",").map((t) => t.trim()) : undefined, prefix: q.prefix, suffix: q.suffix });
}

/** Where a read starts: a cursor (or event id), else `from` = earliest (the default) or now. */
export function startOf(changes: NativeChanges, cursor: string | undefined, from: string | undefined, nowMs = Date.now()): string {
  if (cursor !== undefined && cursor !== "") return checkCursor(cursor, nowMs);
  if (from === undefined || from === "" || from === "earliest") return "";
  if (from === "now") return changes.now();
  return checkCursor(from, nowMs);
}

/** One page of a bucket's events as the API answers it: S3 records and the cursor to go on from. */
export async function eventsPage(changes: NativeChanges, bucket: string, q: EventsQuery) {
  const limit = pageLimit(q.limit);
  const filter = filterOf(q);
  const cursor = startOf(changes, q.cursor, q.from);
  const page = await changes.read(bucket, { cursor, limit, filter });
  return { events: page.events.map(toS3Record), cursor: page.cursor };
}
