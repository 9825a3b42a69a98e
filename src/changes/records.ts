// What the event log holds and how it is shown: an event as stored beside the write it
// records, the S3 notification record it is served as ({"Records": [...]}, as S3 and MinIO
// send them), and the filters a reader or a webhook target picks events with.
import { BadRequestError } from "../errors.ts";

/** Every kind of event the log records. */
export const EVENT_NAMES = [
  "ObjectCreated:Put",
  "ObjectCreated:Copy",
  "ObjectCreated:CompleteMultipartUpload",
  /** Made by a bucket's origin: imported by a sync, or its bytes kept by a pull-through fill. */
  "ObjectCreated:Mirror",
  "ObjectRemoved:Delete",
  /** An object's tags set or replaced (PutObjectTagging), or removed (DeleteObjectTagging). */
  "ObjectTagging:Put",
  "ObjectTagging:Delete",
  /** A DELETE without a version id in a versioned bucket: the object's current version is now a delete marker. */
  "ObjectRemoved:DeleteMarkerCreated",
  /** A lifecycle rule removed an object or a version (src/lifecycle/). */
  "LifecycleExpiration:Delete",
  /** A lifecycle rule expired the current version of an object in a versioned bucket: a delete marker is current now. */
  "LifecycleExpiration:DeleteMarkerCreated",
  "BucketCreated",
  "BucketRemoved",
] as const;
/** A kind of event. */
export type EventName = (typeof EVENT_NAMES)[number];

/** An event as its row stores it (the row's name gives bucket and id). */
export interface LoggedEvent {
  name: EventName;
  /** The object (absent for bucket events). */
  key?: string;
  size?: number;
  etag?: string;
  /** The version written or removed, in a versioned bucket. */
  versionId?: string;
  /** The access key id of whoever made the change ("anonymous" without authentication). */
  actor?: string;
}

/** An event as a reader gets it. */
export interface ChangeEvent {
  /** Orders the event within its shard (the write's HLC stamp); also a cursor just after it. */
  id: string;
  bucket: string;
  event: LoggedEvent;
}

/** What a write tells the log about who made it. */
export interface WriteContext {
  /** The access key id behind the request. */
  actor?: string;
  /** The change is a lifecycle rule's (src/lifecycle/): its events are LifecycleExpiration:*, as S3 names them. */
  lifecycle?: boolean;
}

/** The wall-clock time of an event id. */
export const eventTimeMs = (id: string) => Number(id.slice(0, 13));

/** S3's sequencer: hex that orders the events of one key (the id's time and counter). */
export const sequencerOf = (id: string) => Number(id.slice(0, 13)).toString(16).toUpperCase().padStart(12, "0") + id.slice(14, 20).toUpperCase();

/** An object key as S3 puts it in a record: URL-encoded, spaces as "+". */
export const recordKey = (key: string) => encodeURIComponent(key).replace(/%20/g, "+");

/** One S3 event record. */
export type S3EventRecord = ReturnType<typeof toS3Record>;

/** The S3 notification record of an event. */
export function toS3Record(e: ChangeEvent) {
  const { event } = e;
  return {
    eventVersion: "2.1",
    eventSource: "meshstore:s3",
    awsRegion: "",
    eventTime: new Date(eventTimeMs(e.id)).toISOString(),
    eventName: event.name,
    eventId: e.id,
    userIdentity: { principalId: event.actor ?? "anonymous" },
    requestParameters: {},
    responseElements: {},
    s3: {
      s3SchemaVersion: "1.0",
      configurationId: "",
      bucket: { name: e.bucket, ownerIdentity: { principalId: "meshstore" }, arn: `arn:aws:s3:::${e.bucket}` },
      object: {
        key: recordKey(event.key ?? ""),
        ...(event.size !== undefined && { size: event.size }),
        ...(event.etag !== undefined && { eTag: event.etag }),
        ...(event.versionId !== undefined && { versionId: event.versionId }),
        sequencer: sequencerOf(e.id),
      },
    },
  };
}

/** Which events a reader or target wants. */
export interface EventFilter {
  /** Patterns such as "ObjectCreated:*", "s3:ObjectRemoved:Delete" or "*" (none: every kind). */
  types?: string[];
  prefix?: string;
  suffix?: string;
}

/** Most patterns in a filter, and longest prefix or suffix. */
const MAX_TYPES = 20;
const MAX_AFFIX_BYTES = 1024;

/** Check a filter (400 InvalidArgument naming what is wrong); returns it with patterns normalized (no "s3:"). */
export function checkFilter(filter: EventFilter): EventFilter {
  const types = filter.types?.filter((t) => t !== "");
  if (types && types.length > MAX_TYPES) throw new BadRequestError(`at most ${MAX_TYPES} event types may be given; got ${types.length}`, "InvalidArgument");
  const normalized = types?.map((t) => {
    const bare = t.startsWith("s3:") ? t.slice(3) : t;
    if (bare === "*" || EVENT_NAMES.some((n) => n === bare || (bare.endsWith(":*") && n.startsWith(bare.slice(0, -1))))) return bare;
    throw new BadRequestError(`unknown event type "${t.slice(0, 80)}": use one of ${EVENT_NAMES.join(", ")}, or a family such as ObjectCreated:*`, "InvalidArgument");
  });
  for (const [name, value] of [["prefix", filter.prefix], ["suffix", filter.suffix]] as const) {
    if (value !== undefined && Buffer.byteLength(value) > MAX_AFFIX_BYTES) throw new BadRequestError(`the ${name} is longer than ${MAX_AFFIX_BYTES} bytes`, "InvalidArgument");
  }
  return {
    ...(normalized?.length && { types: normalized }),
    ...(filter.prefix && { prefix: filter.prefix }),
    ...(filter.suffix && { suffix: filter.suffix }),
  };
}

/** Does `event` pass a checked filter? Bucket events pass prefix and suffix filters only when those are empty. */
export function matches(filter: EventFilter, event: LoggedEvent): boolean {
  if (filter.types && !filter.types.some((t) => t === "*" || t === event.name || (t.endsWith(":*") && event.name.startsWith(t.slice(0, -1))))) return false;
  const key = event.key ?? "";
  if (filter.prefix && !key.startsWith(filter.prefix)) return false;
  if (filter.suffix && !key.endsWith(filter.suffix)) return false;
  return true;
}
