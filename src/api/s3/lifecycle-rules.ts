// A bucket's lifecycle configuration as S3 has it: the `<LifecycleConfiguration>` document of
// PutBucketLifecycleConfiguration checked as S3 checks it (1 to 1000 rules, unique IDs of at
// most 255 characters, Status Enabled or Disabled, a Filter with one of Prefix, Tag,
// ObjectSizeGreaterThan, ObjectSizeLessThan or And, or the older rule-level Prefix; the
// actions Expiration, NoncurrentVersionExpiration and AbortIncompleteMultipartUpload), and
// the document GetBucketLifecycleConfiguration answers with. Transitions answer 501: there
// are no storage classes to move objects to. Unknown elements are MalformedXML, as S3's
// schema makes them. Pure: no I/O. What the rules decide is in src/lifecycle/rules.ts.
import { randomBytes } from "node:crypto";
import { BadRequestError, MeshError } from "../../errors.ts";
import type { FilterForm, LifecycleFilter, LifecycleRule } from "../../lifecycle/rules.ts";
import { checkTags } from "./tags.ts";
import { parseXmlDocument, xmlValue } from "./xml.ts";

/** S3's limit on rules per configuration. */
export const MAX_LIFECYCLE_RULES = 1000;
/** Longest rule ID, in characters. */
export const MAX_RULE_ID_CHARS = 255;
/** Most noncurrent versions a rule may keep (NewerNoncurrentVersions). */
export const MAX_NEWER_NONCURRENT = 100;
/** The most bytes of a configuration document: 1000 rules with a few tags each. */
export const LIFECYCLE_MAX_BYTES = 2 * 1024 * 1024;
/** The largest day count accepted (S3 takes a 32-bit integer). */
const MAX_DAYS = 2 ** 31 - 1;

const malformed = (why: string) => new BadRequestError(`The XML you provided was not well-formed or did not validate against our published schema (${why})`, "MalformedXML");
const invalid = (message: string) => new BadRequestError(message, "InvalidArgument");
const invalidRequest = (message: string) => new BadRequestError(message, "InvalidRequest");

type Element = Record<string, unknown>;

/** An element that holds elements ("" is an empty one: `<Filter/>`); anything repeated or textual is malformed. */
function element(v: unknown, what: string): Element {
  if (v === "") return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw malformed(`${what} must appear once and hold elements`);
  return v as Element;
}

/** The children of `e`, refusing any not in `allowed` (whitespace between elements is no child). */
function children(e: Element, what: string, allowed: readonly string[]): Element {
  for (const [name, value] of Object.entries(e)) {
    if (name === "#text" && typeof value === "string" && value.trim() === "") continue;
    if (!allowed.includes(name)) throw malformed(`${what} may not hold ${name.slice(0, 60)}`);
  }
  return e;
}

/** The text of an element that must appear at most once. */
function text(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw malformed(`${what} must appear at most once`);
  const t = v === "" ? "" : xmlValue(v);
  if (t === undefined) throw malformed(`${what} must hold text`);
  return t.trim();
}

/** A positive whole number of days (S3: InvalidArgument otherwise). */
function days(v: unknown, what: string): number | undefined {
  const t = text(v, what);
  if (t === undefined) return undefined;
  const n = Number(t);
  if (!/^\d{1,10}$/.test(t) || n < 1 || n > MAX_DAYS) throw invalid(`'${what}' must be a positive integer`);
  return n;
}

/** An object size in bytes (a whole number, 0 or more). */
function size(v: unknown, what: string): number | undefined {
  const t = text(v, what);
  if (t === undefined) return undefined;
  const n = Number(t);
  if (!/^\d{1,16}$/.test(t) || !Number.isSafeInteger(n)) throw invalid(`'${what}' must be a non-negative integer`);
  return n;
}

/** A Tag element's key and value. */
function tagPair(v: unknown): [string, string] {
  const t = children(element(v, "Tag"), "Tag", ["Key", "Value"]);
  const key = text(t.Key, "Key");
  if (key === undefined) throw malformed("a Tag needs a Key");
  return [key, text(t.Value, "Value") ?? ""];
}

const CONDITIONS = ["Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"] as const;

/** The conditions of a Filter or an And. */
function conditions(e: Element, what: string, tagsAllowed: number): LifecycleFilter {
  const tagList = e.Tag === undefined ? [] : Array.isArray(e.Tag) ? e.Tag : [e.Tag];
  if (tagList.length > tagsAllowed) throw malformed(`${what} may hold at most ${tagsAllowed} Tag`);
  const pairs = tagList.map(tagPair);
  if (new Set(pairs.map(([k]) => k)).size !== pairs.length) throw invalidRequest("Duplicate Tag Keys are not allowed.");
  const tags = pairs.length ? checkTags(pairs, "object") : undefined;
  const prefix = text(e.Prefix, "Prefix");
  const greater = size(e.ObjectSizeGreaterThan, "ObjectSizeGreaterThan");
  const less = size(e.ObjectSizeLessThan, "ObjectSizeLessThan");
  if (less !== undefined && less < 1) throw invalid("'ObjectSizeLessThan' must be a positive integer");
  if (greater !== undefined && less !== undefined && greater >= less) throw invalidRequest("ObjectSizeGreaterThan must be less than ObjectSizeLessThan");
  return { ...(prefix !== undefined && { prefix }), ...(tags && { tags }), ...(greater !== undefined && { sizeGreaterThan: greater }), ...(less !== undefined && { sizeLessThan: less }) };
}

/** A rule's filter and the shape it was written in. */
function parseFilter(rule: Element): { filter: LifecycleFilter; form: FilterForm } {
  if (rule.Filter !== undefined && rule.Prefix !== undefined) throw malformed("a Rule holds a Filter or a Prefix, not both");
  if (rule.Filter === undefined) {
    const prefix = text(rule.Prefix, "Prefix");
    if (prefix === undefined) throw malformed("a Rule needs a Filter or a Prefix");
    return { filter: { prefix }, form: "legacy" };
  }
  const f = children(element(rule.Filter, "Filter"), "Filter", [...CONDITIONS, "And"]);
  const present = [...CONDITIONS, "And"].filter((name) => f[name] !== undefined);
  if (present.length === 0) return { filter: {}, form: "empty" };
  if (present.length > 1) throw malformed("a Filter holds one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan or And; combine them with And");
  if (f.And !== undefined) {
    const and = children(element(f.And, "And"), "And", CONDITIONS);
    const filter = conditions(and, "And", Number.MAX_SAFE_INTEGER);
    if (Object.keys(filter).length === 0) throw malformed("an And needs at least one condition");
    return { filter, form: "and" };
  }
  const filter = conditions(f, "Filter", 1);
  const form: FilterForm = f.Prefix !== undefined ? "prefix" : f.Tag !== undefined ? "tag" : f.ObjectSizeGreaterThan !== undefined ? "greater" : "less";
  return { filter, form };
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** An ISO 8601 date or date-time in epoch ms (a time without a zone is UTC, as S3 reads it), or undefined. */
export function isoDateMs(value: string): number | undefined {
  if (!ISO_DATE.test(value)) return undefined;
  const zoned = !value.includes("T") || /(Z|[+-]\d{2}:?\d{2})$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  return Number.isFinite(ms) ? ms : undefined;
}

/** An Expiration action. */
function parseExpiration(v: unknown): NonNullable<LifecycleRule["expiration"]> {
  const e = children(element(v, "Expiration"), "Expiration", ["Days", "Date", "ExpiredObjectDeleteMarker"]);
  const n = days(e.Days, "Days");
  const dateText = text(e.Date, "Date");
  const markerText = text(e.ExpiredObjectDeleteMarker, "ExpiredObjectDeleteMarker");
  if (n === undefined && dateText === undefined && markerText === undefined) throw malformed("an Expiration needs Days, Date or ExpiredObjectDeleteMarker");
  if (n !== undefined && dateText !== undefined) throw malformed("an Expiration holds Days or Date, not both");
  if (markerText !== undefined && markerText !== "true" && markerText !== "false") throw malformed("ExpiredObjectDeleteMarker is true or false");
  if (markerText !== undefined && (n !== undefined || dateText !== undefined)) throw invalid("ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle Expiration Policy.");
  let dateMs: number | undefined;
  if (dateText !== undefined) {
    dateMs = isoDateMs(dateText);
    if (dateMs === undefined) throw invalid(`'Date' must be an ISO 8601 date: ${dateText.slice(0, 40)}`);
    if (dateMs % 86_400_000 !== 0) throw invalid("'Date' must be at midnight GMT");
  }
  return { ...(n !== undefined && { days: n }), ...(dateMs !== undefined && { dateMs }), ...(markerText !== undefined && { expiredObjectDeleteMarker: markerText === "true" }) };
}

/** A fresh rule ID for a rule sent without one (S3 makes one up too). */
const newRuleId = () => randomBytes(24).toString("base64url");

const RULE_ELEMENTS = ["ID", "Filter", "Prefix", "Status", "Expiration", "Transition", "NoncurrentVersionTransition", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"];

/** One Rule, checked. */
function parseRule(raw: unknown): LifecycleRule {
  const r = children(element(raw, "Rule"), "Rule", RULE_ELEMENTS);
  if (r.Transition !== undefined || r.NoncurrentVersionTransition !== undefined) {
    throw new MeshError("NotImplemented", "A header or query you provided implies functionality that is not implemented (lifecycle transitions: this store has one storage class)");
  }
  const id = text(r.ID, "ID") || newRuleId();
  if ([...id].length > MAX_RULE_ID_CHARS) throw invalid(`ID length should not exceed allowed limit of ${MAX_RULE_ID_CHARS}`);
  const status = text(r.Status, "Status");
  if (status !== "Enabled" && status !== "Disabled") throw malformed("Status is Enabled or Disabled");
  const { filter, form } = parseFilter(r);
  const expiration = r.Expiration === undefined ? undefined : parseExpiration(r.Expiration);
  let noncurrentExpiration: LifecycleRule["noncurrentExpiration"];
  if (r.NoncurrentVersionExpiration !== undefined) {
    const n = children(element(r.NoncurrentVersionExpiration, "NoncurrentVersionExpiration"), "NoncurrentVersionExpiration", ["NoncurrentDays", "NewerNoncurrentVersions"]);
    const d = days(n.NoncurrentDays, "NoncurrentDays");
    if (d === undefined) throw invalid("'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer");
    const keepText = text(n.NewerNoncurrentVersions, "NewerNoncurrentVersions");
    const keep = keepText === undefined ? undefined : Number(keepText);
    if (keep !== undefined && (!/^\d{1,3}$/.test(keepText ?? "") || keep < 1 || keep > MAX_NEWER_NONCURRENT)) {
      throw invalid(`'NewerNoncurrentVersions' must be an integer from 1 to ${MAX_NEWER_NONCURRENT}`);
    }
    noncurrentExpiration = { days: d, ...(keep !== undefined && { newerVersions: keep }) };
  }
  let abortIncompleteDays: number | undefined;
  if (r.AbortIncompleteMultipartUpload !== undefined) {
    const a = children(element(r.AbortIncompleteMultipartUpload, "AbortIncompleteMultipartUpload"), "AbortIncompleteMultipartUpload", ["DaysAfterInitiation"]);
    abortIncompleteDays = days(a.DaysAfterInitiation, "DaysAfterInitiation");
    if (abortIncompleteDays === undefined) throw invalid("'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer");
    // An upload has no tags or size yet: S3 refuses the combination.
    if (filter.tags || filter.sizeGreaterThan !== undefined || filter.sizeLessThan !== undefined) {
      throw invalidRequest("AbortIncompleteMultipartUpload cannot be specified with Tags or object size conditions.");
    }
  }
  // A delete marker has no tags: S3 refuses ExpiredObjectDeleteMarker with a tag filter.
  if (expiration?.expiredObjectDeleteMarker && filter.tags) throw invalidRequest("ExpiredObjectDeleteMarker cannot be specified with a Tag filter.");
  if (!expiration && !noncurrentExpiration && abortIncompleteDays === undefined) throw invalidRequest("At least one action needs to be specified in a rule.");
  return {
    id,
    enabled: status === "Enabled",
    filter,
    form,
    ...(expiration && { expiration }),
    ...(noncurrentExpiration && { noncurrentExpiration }),
    ...(abortIncompleteDays !== undefined && { abortIncompleteDays }),
  };
}

/** The rules of a PutBucketLifecycleConfiguration body, checked. */
export function parseLifecycleXml(body: string): LifecycleRule[] {
  const doc = children(parseXmlDocument(body, "LifecycleConfiguration", ["Rule", "Tag"]), "LifecycleConfiguration", ["Rule"]);
  const list = (doc.Rule as unknown[] | undefined) ?? [];
  if (list.length === 0) throw malformed("at least one Rule is required");
  if (list.length > MAX_LIFECYCLE_RULES) throw malformed(`at most ${MAX_LIFECYCLE_RULES} Rule elements are allowed`);
  const rules = list.map(parseRule);
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id)) throw invalid("Rule ID must be unique. Found same ID for more than one rule");
    ids.add(r.id);
  }
  return rules;
}

/** A filter's conditions as elements. */
function conditionElements(f: LifecycleFilter): Element {
  const tags = Object.entries(f.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
  return {
    ...(f.prefix !== undefined && { Prefix: f.prefix }),
    ...(tags.length && { Tag: tags }),
    ...(f.sizeGreaterThan !== undefined && { ObjectSizeGreaterThan: f.sizeGreaterThan }),
    ...(f.sizeLessThan !== undefined && { ObjectSizeLessThan: f.sizeLessThan }),
  };
}

/** The body of a GetBucketLifecycleConfiguration answer: each rule as it was sent (an ID made up for one sent without). */
export function lifecycleBody(rules: LifecycleRule[]): Record<string, unknown> {
  return {
    Rule: rules.map((r) => {
      const e = r.expiration;
      return {
        ID: r.id,
        ...(r.form === "legacy" ? { Prefix: r.filter.prefix ?? "" } : { Filter: r.form === "empty" ? "" : r.form === "and" ? { And: conditionElements(r.filter) } : conditionElements(r.filter) }),
        Status: r.enabled ? "Enabled" : "Disabled",
        ...(e && {
          Expiration: {
            ...(e.days !== undefined && { Days: e.days }),
            ...(e.dateMs !== undefined && { Date: new Date(e.dateMs).toISOString() }),
            ...(e.expiredObjectDeleteMarker !== undefined && { ExpiredObjectDeleteMarker: String(e.expiredObjectDeleteMarker) }),
          },
        }),
        ...(r.noncurrentExpiration && {
          NoncurrentVersionExpiration: { NoncurrentDays: r.noncurrentExpiration.days, ...(r.noncurrentExpiration.newerVersions !== undefined && { NewerNoncurrentVersions: r.noncurrentExpiration.newerVersions }) },
        }),
        ...(r.abortIncompleteDays !== undefined && { AbortIncompleteMultipartUpload: { DaysAfterInitiation: r.abortIncompleteDays } }),
      };
    }),
  };
}
