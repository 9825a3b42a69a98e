// S3 tags: the two forms a client sends them in (the `x-amz-tagging` header, URL query form,
// on PutObject, CopyObject and CreateMultipartUpload; the `<Tagging>` XML document of
// Put{Object,Bucket}Tagging and of a browser POST's `tagging` field), S3's limits on them,
// and the document GetObjectTagging / GetBucketTagging answer with. Pure: no I/O.
import { BadRequestError } from "../../errors.ts";
import { parseXmlDocument, xmlValue } from "./xml.ts";

/** A tag set: key to value, in the order sent. */
export type TagSet = Record<string, string>;

/** S3's limits: tags per object and per bucket, and lengths in Unicode characters (code points). */
export const MAX_OBJECT_TAGS = 10;
export const MAX_BUCKET_TAGS = 50;
export const MAX_TAG_KEY_CHARS = 128;
export const MAX_TAG_VALUE_CHARS = 256;
/** The most bytes of a Tagging document (50 tags of 128 + 256 characters, 4 bytes each, with markup). */
export const TAGGING_MAX_BYTES = 128 * 1024;

/** The characters AWS allows in tags: letters, digits, white space and + - = . _ : / @. */
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

const invalidTag = (message: string) => new BadRequestError(message, "InvalidTag");

/** Throw S3's error unless `tags` is within the limits for an object ("object") or a bucket ("bucket"). */
export function checkTags(pairs: Array<[string, string]>, scope: "object" | "bucket"): TagSet {
  const max = scope === "object" ? MAX_OBJECT_TAGS : MAX_BUCKET_TAGS;
  // S3 says BadRequest for too many object tags and InvalidTag for too many bucket tags.
  if (pairs.length > max) {
    if (scope === "object") throw new BadRequestError(`Object tags cannot be greater than ${max}`, "BadRequest");
    throw invalidTag(`Bucket tag count cannot be greater than ${max}`);
  }
  const out: TagSet = {};
  for (const [key, value] of pairs) {
    if (Object.hasOwn(out, key)) throw invalidTag("Cannot provide multiple Tags with the same key");
    if ([...key].length === 0) throw invalidTag("The TagKey you have provided is invalid");
    if ([...key].length > MAX_TAG_KEY_CHARS) throw invalidTag(`The TagKey you have provided is too long, max ${MAX_TAG_KEY_CHARS}`);
    if ([...value].length > MAX_TAG_VALUE_CHARS) throw invalidTag(`The TagValue you have provided is too long, max ${MAX_TAG_VALUE_CHARS}`);
    if (key.toLowerCase().startsWith("aws:")) throw invalidTag("System tags cannot be added/updated by requester");
    if (!TAG_CHARS.test(key)) throw invalidTag("The TagKey you have provided is invalid");
    if (!TAG_CHARS.test(value)) throw invalidTag("The TagValue you have provided is invalid");
    out[key] = value;
  }
  return out;
}

/** The tags of an `x-amz-tagging` header ("k1=v1&k2=v2", URL-encoded; "+" is a space), checked for an object. */
export function parseTaggingHeader(value: string): TagSet {
  if (value.trim() === "") return {};
  const pairs: Array<[string, string]> = [];
  for (const part of value.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replaceAll("+", " "));
      } catch {
        throw invalidTag("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.");
      }
    };
    pairs.push([decode(eq < 0 ? part : part.slice(0, eq)), decode(eq < 0 ? "" : part.slice(eq + 1))]);
  }
  return checkTags(pairs, "object");
}

/** The tags of a `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>` document, checked for `scope`. */
export function parseTaggingXml(body: string, scope: "object" | "bucket"): TagSet {
  const doc = parseXmlDocument(body, "Tagging", ["Tag"]);
  const set = doc.TagSet;
  // <TagSet/> (no tags) parses as an empty string.
  if (set === "" || set === undefined) return checkTags([], scope);
  if (typeof set !== "object" || set === null) throw malformedTagging();
  const list = ((set as Record<string, unknown>).Tag as unknown[] | undefined) ?? [];
  const pairs = list.map((t): [string, string] => {
    if (typeof t !== "object" || t === null) throw malformedTagging();
    const o = t as Record<string, unknown>;
    const key = xmlValue(o.Key);
    const value = xmlValue(o.Value);
    if (key === undefined || value === undefined) throw malformedTagging();
    return [key, value];
  });
  return checkTags(pairs, scope);
}

const malformedTagging = () => new BadRequestError("The XML you provided was not well-formed or did not validate against our published schema", "MalformedXML");

/** The `x-amz-tagging` header form of a tag set (CopyObject and tests). */
export function taggingHeader(tags: TagSet): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

/** The body of a `<Tagging>` answer. */
export function taggingBody(tags: TagSet | undefined): Record<string, unknown> {
  return { TagSet: { Tag: Object.entries(tags ?? {}).map(([Key, Value]) => ({ Key, Value })) } };
}

/** How many tags an object has, as `x-amz-tagging-count` says it (no header when none). */
export function taggingCountHeader(tags: TagSet | undefined): Record<string, string> {
  const n = tags ? Object.keys(tags).length : 0;
  return n > 0 ? { "x-amz-tagging-count": String(n) } : {};
}
