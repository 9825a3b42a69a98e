// A bucket's lifecycle rules as they are stored (a side row of the buckets shard) and what
// they decide: which objects, versions and uploads a rule's filter takes, and when each of
// its actions falls due. Days are counted as S3 counts them, in days of `dayMs` (a day,
// unless a test shortens it): the time the thing began (an object's Last-Modified, the
// moment a version became noncurrent, an upload's initiation) plus the days, rounded up to
// the next day boundary (S3: "the next midnight UTC"). Pure: no I/O, no clock.

/** What a rule's filter asks of an object; an empty filter takes every object of the bucket. */
export interface LifecycleFilter {
  prefix?: string;
  /** Every tag here must be on the object with this value. */
  tags?: Record<string, string>;
  /** Bytes; the object must be strictly larger. */
  sizeGreaterThan?: number;
  /** Bytes; the object must be strictly smaller. */
  sizeLessThan?: number;
}

/**
 * How the filter was written, so that GetBucketLifecycleConfiguration answers it in the same
 * shape: the rule's own (older) `<Prefix>`, an empty `<Filter/>`, or `<Filter>` with one
 * condition or an `<And>` of several.
 */
export type FilterForm = "legacy" | "empty" | "prefix" | "tag" | "greater" | "less" | "and";

/** One rule of a bucket's lifecycle configuration. */
export interface LifecycleRule {
  id: string;
  /** Status Enabled (false: Disabled, kept but never applied). */
  enabled: boolean;
  filter: LifecycleFilter;
  form: FilterForm;
  /** Expire current versions: by age (`days`) or from a date (`dateMs`, midnight UTC), or remove expired delete markers. */
  expiration?: { days?: number; dateMs?: number; expiredObjectDeleteMarker?: boolean };
  /** Remove noncurrent versions `days` after they became noncurrent, beyond the newest `newerVersions` of them. */
  noncurrentExpiration?: { days: number; newerVersions?: number };
  /** Abort multipart uploads this many days after they were initiated. */
  abortIncompleteDays?: number;
}

/** What a filter is matched against: an object, a version, a delete marker (no tags, no size) or an upload (key only). */
export interface LifecycleSubject {
  key: string;
  tags?: Record<string, string>;
  size?: number;
}

/** Does the filter take `s`? A tag or size condition never takes what has no tags or size (a delete marker). */
export function filterTakes(f: LifecycleFilter, s: LifecycleSubject): boolean {
  if (f.prefix !== undefined && !s.key.startsWith(f.prefix)) return false;
  if (f.tags) {
    for (const [k, v] of Object.entries(f.tags)) if (s.tags?.[k] !== v) return false;
  }
  if (f.sizeGreaterThan !== undefined && !(s.size !== undefined && s.size > f.sizeGreaterThan)) return false;
  if (f.sizeLessThan !== undefined && !(s.size !== undefined && s.size < f.sizeLessThan)) return false;
  return true;
}

/** `startMs` plus `days` days, rounded up to the next day boundary (S3 rounds to the next midnight UTC). */
export function dueAfterDays(startMs: number, days: number, dayMs: number): number {
  return Math.ceil((startMs + days * dayMs) / dayMs) * dayMs;
}

/** When the enabled rules in `rules` expire a current object (epoch ms), or undefined if none of them does. */
export function expirationDue(rules: readonly LifecycleRule[], object: LifecycleSubject & { lastModified: number }, dayMs: number): number | undefined {
  let due: number | undefined;
  for (const r of rules) {
    const e = r.expiration;
    if (!r.enabled || !e || (e.days === undefined && e.dateMs === undefined) || !filterTakes(r.filter, object)) continue;
    const at = e.days !== undefined ? dueAfterDays(object.lastModified, e.days, dayMs) : (e.dateMs as number);
    if (due === undefined || at < due) due = at;
  }
  return due;
}

/**
 * Is a delete marker that is the only version left of its key due for removal? Yes under a
 * rule with ExpiredObjectDeleteMarker, or (as S3 does) under a rule that expires objects
 * after some days once the marker is that old.
 */
export function expiredMarkerDue(rules: readonly LifecycleRule[], marker: { key: string; lastModified: number }, nowMs: number, dayMs: number): boolean {
  return rules.some((r) => {
    const e = r.expiration;
    if (!r.enabled || !e || !filterTakes(r.filter, { key: marker.key })) return false;
    if (e.expiredObjectDeleteMarker) return true;
    return e.days !== undefined && dueAfterDays(marker.lastModified, e.days, dayMs) <= nowMs;
  });
}

/**
 * Is a noncurrent version due for removal? `rank` is its place among its key's noncurrent
 * versions (1: the newest of them), `noncurrentSinceMs` when the next newer version was
 * written. A rule keeps the newest `newerVersions` noncurrent versions whatever their age.
 */
export function noncurrentDue(rules: readonly LifecycleRule[], version: LifecycleSubject & { rank: number; noncurrentSinceMs: number }, nowMs: number, dayMs: number): boolean {
  return rules.some((r) => {
    const n = r.noncurrentExpiration;
    if (!r.enabled || !n || !filterTakes(r.filter, version)) return false;
    if (version.rank <= (n.newerVersions ?? 0)) return false;
    return dueAfterDays(version.noncurrentSinceMs, n.days, dayMs) <= nowMs;
  });
}

/** Is a multipart upload of `key` initiated at `initiatedMs` due to be aborted? */
export function abortDue(rules: readonly LifecycleRule[], upload: { key: string; initiatedMs: number }, nowMs: number, dayMs: number): boolean {
  return rules.some((r) => r.enabled && r.abortIncompleteDays !== undefined && filterTakes(r.filter, { key: upload.key }) && dueAfterDays(upload.initiatedMs, r.abortIncompleteDays, dayMs) <= nowMs);
}

/** Which kinds of rows the enabled rules need walked: current objects, version rows, multipart uploads. */
export function rowsNeeded(rules: readonly LifecycleRule[]): { objects: boolean; versions: boolean; uploads: boolean } {
  const on = rules.filter((r) => r.enabled);
  return {
    objects: on.some((r) => r.expiration?.days !== undefined || r.expiration?.dateMs !== undefined),
    versions: on.some((r) => r.noncurrentExpiration !== undefined || r.expiration?.expiredObjectDeleteMarker === true || r.expiration?.days !== undefined),
    uploads: on.some((r) => r.abortIncompleteDays !== undefined),
  };
}

/**
 * The longest key prefix shared by the filters of the enabled rules that `applies` picks
 * (rows outside it need not be read at all): "" when one of them takes any key.
 */
export function commonPrefix(rules: readonly LifecycleRule[], applies: (r: LifecycleRule) => boolean): string {
  const prefixes = rules.filter((r) => r.enabled && applies(r)).map((r) => r.filter.prefix ?? "");
  if (!prefixes.length) return "";
  let common = prefixes[0];
  for (const p of prefixes) {
    let i = 0;
    while (i < common.length && i < p.length && common[i] === p[i]) i++;
    common = common.slice(0, i);
  }
  // Never end inside a UTF-16 surrogate pair: a row prefix must be whole characters.
  const last = common.charCodeAt(common.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? common.slice(0, -1) : common;
}
