// S3's XML: response documents built with fast-xml-parser (which escapes text), and the
// two request bodies clients send (DeleteObjects, CompleteMultipartUpload) parsed strictly.
// A request document is refused as MalformedXML before any parser sees it if it is too big
// (each has a size bound: see smallBody), declares a DOCTYPE or entities (billion laughs,
// external entities), or nests deeper than any S3 document does (the validator and parser
// recurse: 20,000 levels overflowed the stack, a 500).
import { XMLBuilder, XMLParser, XMLValidator } from "fast-xml-parser";
import { BadRequestError } from "../../errors.ts";
import { MAX_PART_NUMBER } from "../../objects/multipart.ts";
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from "../../objects/checksums.ts";

/** The S3 document namespace (a protocol constant; nothing is fetched from it). */
const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", suppressEmptyNode: false, processEntities: true });
// Entities are decoded by `unescapeXml` below: the parser's own decoding skips character
// references (&#34;), which Go's encoding/xml writes for every quote.
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, processEntities: false, isArray: (name) => name === "Object" || name === "Part" });

const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** XML's five named entities and decimal / hex character references, in one pass (so "&amp;#34;" stays "&#34;"). */
export function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);/g, (whole, ref: string) => {
    if (ref[0] !== "#") return NAMED[ref];
    const code = ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || code === 0) throw malformed();
    return String.fromCodePoint(code);
  });
}

/** A complete XML document with `root` in the S3 namespace. */
export function xmlDocument(root: string, body: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n` + builder.build({ [root]: { "@_xmlns": S3_NS, ...body } });
}

/** An XML response. */
export function xmlResponse(root: string, body: Record<string, unknown>, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(xmlDocument(root, body), { status, headers: { "content-type": "application/xml", ...headers } });
}

/** An XML document without a namespace (S3's error documents have none). */
export function xmlText(doc: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n` + builder.build(doc);
}

const malformed = () => new BadRequestError("The XML you provided was not well-formed or did not validate against our published schema", "MalformedXML");

/** The most bytes of a DeleteObjects body: 1,000 keys of up to 1,024 bytes each, with room to escape some. */
export const DELETE_MAX_BYTES = 2 * 1024 * 1024;
/** The most bytes of a CompleteMultipartUpload body: 10,000 parts, each with its ETag and checksums. */
export const COMPLETE_MAX_BYTES = 4 * 1024 * 1024;
/** S3's request documents nest 3 levels deep; anything far deeper is hostile. */
const MAX_DEPTH = 32;

/** True if elements nest deeper than MAX_DEPTH: one linear pass (the real parsers recurse, and a regex backtracks on "<<<<..."). */
function tooDeep(text: string): boolean {
  let depth = 0;
  let tagStart = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "<") tagStart = i;
    else if (ch === ">" && tagStart >= 0) {
      const kind = text[tagStart + 1];
      if (kind === "/") depth--;
      else if (kind !== "?" && kind !== "!" && text[i - 1] !== "/" && ++depth > MAX_DEPTH) return true;
      tagStart = -1;
    }
  }
  return false;
}

function parse(text: string, root: string): Record<string, unknown> {
  if (!text.trim() || /<!(DOCTYPE|ENTITY)/i.test(text) || tooDeep(text) || XMLValidator.validate(text) !== true) throw malformed();
  const doc = parser.parse(text) as Record<string, unknown>;
  const body = doc[root];
  if (typeof body !== "object" || body === null) throw malformed();
  return body as Record<string, unknown>;
}

/**
 * Parse a small request document (checked as `parse` checks it: size bounded by the caller,
 * no DOCTYPE, no deep nesting) whose root is `root`; elements named in `arrays` always
 * parse as lists. Text values are raw: read them with `xmlValue`.
 */
export function parseXmlDocument(body: string, root: string, arrays: string[]): Record<string, unknown> {
  if (!body.trim() || /<!(DOCTYPE|ENTITY)/i.test(body) || tooDeep(body) || XMLValidator.validate(body) !== true) throw malformed();
  const listed = new Set(arrays);
  const doc = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, processEntities: false, isArray: (name) => listed.has(name) }).parse(body) as Record<string, unknown>;
  const found = doc[root];
  // An empty root (<Tagging/>) parses as "": a document with nothing in it.
  if (found === "") return {};
  if (typeof found !== "object" || found === null) throw malformed();
  return found as Record<string, unknown>;
}

/** The text of an element parsed by `parseXmlDocument` (entities decoded), or undefined if it is not text. */
export function xmlValue(v: unknown): string | undefined {
  return text(v);
}

function text(v: unknown): string | undefined {
  if (typeof v === "string") return unescapeXml(v);
  if (typeof v === "object" && v !== null && "#text" in v) return unescapeXml(String((v as Record<string, unknown>)["#text"]));
  return undefined;
}

/** The body of DeleteObjects: keys (each with an optional version id and conditions) and the quiet flag. */
export function parseDeleteRequest(body: string): { quiet: boolean; objects: Array<{ key: string; versionId?: string; etag?: string; size?: string; lastModified?: string }> } {
  const doc = parse(body, "Delete");
  const list = (doc.Object as unknown[] | undefined) ?? [];
  if (list.length === 0 || list.length > 1000) throw malformed();
  const objects = list.map((o) => {
    if (typeof o !== "object" || o === null) throw malformed();
    const key = text((o as Record<string, unknown>).Key);
    if (key === undefined || key === "") throw malformed();
    const field = (name: string) => text((o as Record<string, unknown>)[name])?.trim();
    // ETag, Size and LastModifiedTime make the delete of this key conditional (as If-Match and its kin do for DeleteObject).
    return { key, versionId: field("VersionId"), etag: field("ETag"), size: field("Size"), lastModified: field("LastModifiedTime") };
  });
  return { quiet: text(doc.Quiet)?.trim().toLowerCase() === "true", objects };
}

/** The body of CompleteMultipartUpload: part numbers, ETags and any Checksum<ALG> fields, in the order sent. */
export function parseCompleteRequest(body: string): Array<{ partNumber: number; etag: string; checksums: Partial<Record<ChecksumAlgorithm, string>> }> {
  const doc = parse(body, "CompleteMultipartUpload");
  const list = (doc.Part as unknown[] | undefined) ?? [];
  if (list.length === 0 || list.length > MAX_PART_NUMBER) throw malformed();
  return list.map((p) => {
    if (typeof p !== "object" || p === null) throw malformed();
    const n = Number(text((p as Record<string, unknown>).PartNumber)?.trim());
    const etag = text((p as Record<string, unknown>).ETag)?.trim();
    if (!Number.isInteger(n) || !etag) throw malformed();
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const alg of CHECKSUM_ALGORITHMS) {
      const v = text((p as Record<string, unknown>)[`Checksum${alg}`])?.trim();
      if (v) checksums[alg] = v;
    }
    return { partNumber: n, etag, checksums };
  });
}

/** The most bytes of a PutBucketVersioning body (a few dozen). */
export const VERSIONING_MAX_BYTES = 64 * 1024;

/** The body of PutBucketVersioning: Status (Enabled or Suspended) and MfaDelete as sent. */
export function parseVersioningRequest(body: string): { status: "Enabled" | "Suspended"; mfaDelete?: string } {
  const doc = parse(body, "VersioningConfiguration");
  const status = text(doc.Status)?.trim();
  if (status !== "Enabled" && status !== "Suspended") throw malformed();
  const mfaDelete = text(doc.MfaDelete)?.trim();
  if (mfaDelete !== undefined && mfaDelete !== "Enabled" && mfaDelete !== "Disabled") throw malformed();
  return { status, ...(mfaDelete !== undefined && { mfaDelete }) };
}

/** The most bytes of a PutBucketEncryption body (one rule is a few hundred). */
export const ENCRYPTION_MAX_BYTES = 64 * 1024;

/** The default-encryption rule of a PutBucketEncryption body: its SSEAlgorithm, KMS key id and BucketKeyEnabled. */
export function parseEncryptionRequest(body: string): { algorithm: string; kmsKeyId?: string; bucketKey?: boolean } {
  const doc = parse(body, "ServerSideEncryptionConfiguration");
  const rules = Array.isArray(doc.Rule) ? (doc.Rule as unknown[]) : doc.Rule === undefined ? [] : [doc.Rule];
  if (rules.length !== 1 || typeof rules[0] !== "object" || rules[0] === null) throw malformed();
  const rule = rules[0] as Record<string, unknown>;
  const apply = rule.ApplyServerSideEncryptionByDefault;
  if (typeof apply !== "object" || apply === null) throw malformed();
  const by = apply as Record<string, unknown>;
  const algorithm = text(by.SSEAlgorithm)?.trim();
  if (!algorithm) throw malformed();
  const kmsKeyId = text(by.KMSMasterKeyID)?.trim();
  const bucketKey = text(rule.BucketKeyEnabled)?.trim();
  if (bucketKey !== undefined && bucketKey !== "true" && bucketKey !== "false") throw malformed();
  return { algorithm, ...(kmsKeyId ? { kmsKeyId } : {}), ...(bucketKey !== undefined ? { bucketKey: bucketKey === "true" } : {}) };
}
