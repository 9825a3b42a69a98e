// A bucket's webhook targets: the body of PUT /buckets/{b}/notifications checked into
// targets (each fault a 400 InvalidArgument naming the target and field), the row they are
// stored as in BUCKETS_SHARD (secrets sealed with the mesh's sealing key, as access-key
// secrets are), the targets as GET shows them (no secret), and the progress row a target
// keeps in each shard it reads (src/changes/delivery.ts).
import { BadRequestError } from "../errors.ts";
import type { SecretSealer } from "../auth/sealed-secret.ts";
import { positionAt } from "./gate.ts";
import { checkFilter, type EventFilter } from "./records.ts";

/** Most targets one bucket may have. */
export const MAX_TARGETS = 10;
/** Events per POST unless the target says otherwise, and the most it may say. */
export const DEFAULT_MAX_BATCH = 10;
export const MAX_BATCH_LIMIT = 100;
/** Longest target URL, and longest secret. */
export const MAX_URL_CHARS = 2048;
export const MAX_SECRET_CHARS = 256;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A position in id space, as the change log reads from (src/changes/log.ts). */
const POSITION_RE = /^(?:|[0-9]{13}-[0-9a-f]{6}(?:-[A-Za-z0-9]{1,128})?)$/;
const TARGET_FIELDS = new Set(["id", "url", "events", "prefix", "suffix", "secret", "maxBatch"]);

/** A target as the owner sets it. */
export interface TargetSpec {
  id: string;
  url: string;
  /** Event type patterns, normalized ("ObjectCreated:*", "ObjectRemoved:Delete", "*"). */
  events: string[];
  prefix?: string;
  suffix?: string;
  secret: string;
  maxBatch: number;
}

/** A target as GET shows it: everything but the secret, and since when it receives events. */
export type ShownTarget = Omit<TargetSpec, "secret"> & { createdMs: number };

/** A target as its row stores it: the secret sealed to the bucket and target id. */
export type StoredTarget = ShownTarget & { sealedSecret: string };

/** The value of a bucket's notifications row (null once removed). */
export interface NotificationsValue {
  targets: StoredTarget[];
}

/** A target's progress through one shard: the value of deliveryRow(bucket, targetId) in that shard. */
export interface DeliveryProgress {
  /** Every matching event of the shard at or below this position has been acknowledged. */
  position: string;
  /** The target's createdMs: progress of an earlier target with the same id does not count. */
  since: number;
  /** When the target last acknowledged a POST (0: never), as its deliverer knew it. */
  lastSuccessMs: number;
  /** The latest failed POST, kept after a success (compare atMs with lastSuccessMs). */
  lastError?: { message: string; atMs: number };
}

/** The associated data a target's secret is sealed to: copied onto another target, it does not open. */
export const secretContext = (bucket: string, targetId: string) => `notify:${bucket}/${targetId}`;

/** Where a target starts reading each shard: just before the events stamped from its creation on. */
export const startPosition = (createdMs: number) => positionAt(createdMs);

/** The filter a target reads the log with. */
export const filterOfTarget = (t: Pick<TargetSpec, "events" | "prefix" | "suffix">): EventFilter => checkFilter({ types: t.events, prefix: t.prefix, suffix: t.suffix });

const bad = (where: string, message: string) => new BadRequestError(`${where}: ${message}`, "InvalidArgument");
const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v);

/** Throw InvalidArgument unless `raw` is a URL a target may have: http or https, with a host, no user or password in it. */
export function checkTargetUrl(raw: unknown, where = "url"): string {
  if (typeof raw !== "string") throw bad(where, `must be a string (an http:// or https:// URL), got ${describe(raw)}`);
  if (raw.length > MAX_URL_CHARS) throw bad(where, `is longer than ${MAX_URL_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(where, `"${raw.slice(0, 80)}" is not a URL: give an absolute http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw bad(where, `a target must be an http:// or https:// URL, not ${url.protocol.slice(0, 20)}`);
  if (!url.hostname) throw bad(where, "the URL names no host");
  // A password in the URL would be shown by GET and kept in clear: receivers check the signature instead.
  if (url.username || url.password) throw bad(where, "the URL may not carry a user name or password: the receiver checks X-Meshstore-Signature instead");
  return raw;
}

/** One target of the body, checked. */
function checkTarget(raw: unknown, i: number): TargetSpec {
  const at = `targets[${i}]`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad(at, `must be an object {id, url, events, secret, ...}, got ${describe(raw)}`);
  const t = raw as Record<string, unknown>;
  for (const field of Object.keys(t)) if (!TARGET_FIELDS.has(field)) throw bad(at, `unknown field "${field.slice(0, 40)}": a target has ${[...TARGET_FIELDS].join(", ")}`);
  if (typeof t.id !== "string" || !ID_RE.test(t.id)) throw bad(`${at}.id`, `must be 1 to 64 letters, digits, "_" or "-", got ${typeof t.id === "string" ? JSON.stringify(t.id.slice(0, 80)) : describe(t.id)}`);
  const url = checkTargetUrl(t.url, `${at}.url`);
  if (!Array.isArray(t.events) || t.events.length === 0 || !t.events.every((e) => typeof e === "string")) {
    throw bad(`${at}.events`, 'must be a non-empty array of event types, such as ["ObjectCreated:*", "ObjectRemoved:*"] or ["*"]');
  }
  for (const f of ["prefix", "suffix"] as const) if (t[f] !== undefined && typeof t[f] !== "string") throw bad(`${at}.${f}`, `must be a string, got ${describe(t[f])}`);
  let filter: EventFilter;
  try {
    filter = checkFilter({ types: t.events as string[], prefix: t.prefix as string | undefined, suffix: t.suffix as string | undefined });
  } catch (err) {
    throw bad(at, (err as Error).message);
  }
  if (!filter.types) throw bad(`${at}.events`, "names no event type");
  if (typeof t.secret !== "string" || t.secret.length < 1 || t.secret.length > MAX_SECRET_CHARS) {
    throw bad(`${at}.secret`, `is required: a string of 1 to ${MAX_SECRET_CHARS} characters that signs every delivery (X-Meshstore-Signature)`);
  }
  const maxBatch = t.maxBatch ?? DEFAULT_MAX_BATCH;
  if (typeof maxBatch !== "number" || !Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH_LIMIT) {
    throw bad(`${at}.maxBatch`, `must be a whole number from 1 to ${MAX_BATCH_LIMIT} (events per POST), got ${JSON.stringify(maxBatch).slice(0, 40)}`);
  }
  return { id: t.id, url, events: filter.types, ...(filter.prefix && { prefix: filter.prefix }), ...(filter.suffix && { suffix: filter.suffix }), secret: t.secret, maxBatch };
}

/** The body of PUT /buckets/{b}/notifications, `{"targets": [...]}`, checked (400 InvalidArgument naming the fault). */
export function validateTargets(raw: unknown): TargetSpec[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new BadRequestError('the body must be {"targets": [{"id", "url", "events", "secret", ...}]}', "InvalidArgument");
  const body = raw as Record<string, unknown>;
  for (const field of Object.keys(body)) if (field !== "targets") throw new BadRequestError(`unknown field "${field.slice(0, 40)}": the body is {"targets": [...]}`, "InvalidArgument");
  if (!Array.isArray(body.targets)) throw new BadRequestError('targets must be an array: {"targets": [{"id", "url", "events", "secret", ...}]}', "InvalidArgument");
  if (body.targets.length > MAX_TARGETS) throw new BadRequestError(`a bucket may have at most ${MAX_TARGETS} targets; got ${body.targets.length}`, "InvalidArgument");
  const targets = body.targets.map(checkTarget);
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.id)) throw new BadRequestError(`two targets have the id "${t.id}": ids must be unique within the bucket`, "InvalidArgument");
    seen.add(t.id);
  }
  return targets;
}

/** The row value for `targets`: a target that already existed keeps its createdMs (and so its place in the log). */
export function storeTargets(bucket: string, targets: TargetSpec[], previous: NotificationsValue | null, nowMs: number, sealer: SecretSealer): NotificationsValue {
  const before = new Map((previous?.targets ?? []).map((t) => [t.id, t]));
  return {
    targets: targets.map(({ secret, ...shown }) => ({
      ...shown,
      createdMs: before.get(shown.id)?.createdMs ?? nowMs,
      sealedSecret: sealer.seal(secretContext(bucket, shown.id), secret),
    })),
  };
}

/** A stored target as GET shows it. */
export const shownTarget = ({ sealedSecret: _, ...shown }: StoredTarget): ShownTarget => shown;

/** The stored targets of a row's value, leaving out anything malformed (a row from a newer or damaged peer). */
export function storedTargets(value: unknown): StoredTarget[] {
  const targets = (value as Partial<NotificationsValue> | null)?.targets;
  if (!Array.isArray(targets)) return [];
  return targets
    .filter(
      (t): t is StoredTarget =>
        typeof t === "object" && t !== null && typeof t.id === "string" && ID_RE.test(t.id) && typeof t.url === "string" && Array.isArray(t.events) && typeof t.sealedSecret === "string" && Number.isInteger(t.maxBatch) && typeof t.createdMs === "number",
    )
    .slice(0, MAX_TARGETS);
}

/** A progress row's value if it belongs to the target created at `since` (else the target starts afresh). */
export function progressOf(value: unknown, since: number): DeliveryProgress | null {
  const p = value as Partial<DeliveryProgress> | null;
  if (!p || typeof p.position !== "string" || !POSITION_RE.test(p.position) || p.since !== since) return null;
  return { position: p.position, since, lastSuccessMs: typeof p.lastSuccessMs === "number" ? p.lastSuccessMs : 0, ...(typeof p.lastError?.message === "string" && typeof p.lastError.atMs === "number" && { lastError: { message: p.lastError.message.slice(0, 300), atMs: p.lastError.atMs } }) };
}
