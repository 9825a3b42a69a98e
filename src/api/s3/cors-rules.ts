// A bucket's CORS configuration as S3 has it: the `<CORSConfiguration>` document of
// PutBucketCors checked as S3 checks it (at most 100 rules, methods GET/PUT/POST/DELETE/HEAD,
// at most one `*` per AllowedOrigin and AllowedHeader), the document GetBucketCors answers,
// and how a request is matched against the rules: the first rule that allows the Origin,
// the method and (for a preflight) every requested header wins, and its headers are sent.
// Pure: no I/O.
import { BadRequestError } from "../../errors.ts";
import type { CorsRule } from "../../metadata/types.ts";
import { parseXmlDocument, xmlValue } from "./xml.ts";

export type { CorsRule };

/** S3's limit on rules per configuration. */
export const MAX_CORS_RULES = 100;
/** The most bytes of a CORS configuration document (S3 allows 64 KB). */
export const CORS_MAX_BYTES = 64 * 1024;
/** The methods a rule may allow. */
export const CORS_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"];

const malformed = (why: string) => new BadRequestError(`The XML you provided was not well-formed or did not validate against our published schema (${why})`, "MalformedXML");

/** The texts of a repeated element. */
function texts(v: unknown): string[] {
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list.map((x) => {
    const t = xmlValue(x);
    if (t === undefined) throw malformed("an element that must hold text holds elements");
    return t.trim();
  });
}

/** Throw unless `pattern` has at most one `*` (S3's rule for AllowedOrigin and AllowedHeader). */
function oneWildcard(pattern: string, what: "AllowedOrigin" | "AllowedHeader"): void {
  if (pattern.split("*").length > 2) throw new BadRequestError(`${what} "${pattern.slice(0, 200)}" can not have more than one wildcard.`, "InvalidRequest");
}

/** The rules of a PutBucketCors body, checked. */
export function parseCorsXml(body: string): CorsRule[] {
  const doc = parseXmlDocument(body, "CORSConfiguration", ["CORSRule", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader"]);
  const list = (doc.CORSRule as unknown[] | undefined) ?? [];
  if (list.length === 0) throw malformed("at least one CORSRule is required");
  if (list.length > MAX_CORS_RULES) throw malformed(`at most ${MAX_CORS_RULES} CORSRule elements are allowed`);
  return list.map((raw) => {
    if (typeof raw !== "object" || raw === null) throw malformed("a CORSRule must hold AllowedOrigin and AllowedMethod");
    const o = raw as Record<string, unknown>;
    const origins = texts(o.AllowedOrigin);
    const methods = texts(o.AllowedMethod);
    const headers = texts(o.AllowedHeader);
    const expose = texts(o.ExposeHeader);
    if (origins.length === 0 || methods.length === 0) throw malformed("each CORSRule needs at least one AllowedOrigin and one AllowedMethod");
    for (const m of methods) {
      if (!CORS_METHODS.includes(m)) throw new BadRequestError(`Found unsupported HTTP method in CORS config. Unsupported method is ${m.slice(0, 40)}`, "InvalidRequest");
    }
    for (const origin of origins) oneWildcard(origin, "AllowedOrigin");
    for (const header of headers) oneWildcard(header, "AllowedHeader");
    const id = o.ID === undefined ? undefined : texts(o.ID)[0];
    if (id !== undefined && id.length > 255) throw malformed("an ID is at most 255 characters");
    const ageText = o.MaxAgeSeconds === undefined ? undefined : texts(o.MaxAgeSeconds)[0];
    const maxAgeSeconds = ageText === undefined ? undefined : Number(ageText);
    if (maxAgeSeconds !== undefined && (!/^\d{1,10}$/.test(ageText ?? "") || maxAgeSeconds > 2 ** 31 - 1)) throw malformed("MaxAgeSeconds must be a whole number of seconds");
    return { ...(id ? { id } : {}), origins, methods, headers, expose, ...(maxAgeSeconds !== undefined ? { maxAgeSeconds } : {}) };
  });
}

/** The body of a GetBucketCors answer. */
export function corsBody(rules: CorsRule[]): Record<string, unknown> {
  return {
    CORSRule: rules.map((r) => ({
      ...(r.id ? { ID: r.id } : {}),
      AllowedHeader: r.headers,
      AllowedMethod: r.methods,
      AllowedOrigin: r.origins,
      ExposeHeader: r.expose,
      ...(r.maxAgeSeconds !== undefined ? { MaxAgeSeconds: r.maxAgeSeconds } : {}),
    })),
  };
}

/** Does `value` match `pattern`, where one `*` stands for any run of characters? */
export function wildcardMatch(pattern: string, value: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern === value;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return value.length >= head.length + tail.length && value.startsWith(head) && value.endsWith(tail);
}

/** What a request asks CORS for: its Origin, its method (a preflight's Access-Control-Request-Method), and a preflight's requested headers. */
export interface CorsAsk {
  origin: string;
  method: string;
  /** Lowercased, from Access-Control-Request-Headers (none for an actual request). */
  headers?: string[];
}

/** The first rule that allows `ask`, or undefined. Origins compare as sent; header names without case. */
export function matchRule(rules: CorsRule[], ask: CorsAsk): CorsRule | undefined {
  return rules.find(
    (r) =>
      r.origins.some((o) => wildcardMatch(o, ask.origin)) &&
      r.methods.includes(ask.method) &&
      (ask.headers ?? []).every((h) => r.headers.some((allowed) => wildcardMatch(allowed.toLowerCase(), h))),
  );
}

/** The requested headers of a preflight (Access-Control-Request-Headers), lowercased; none when absent. */
export function requestedHeaders(value: string | null): string[] {
  if (value === null) return [];
  return value
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
}

/** What S3 varies CORS answers on. */
const VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/** The CORS headers of an answer to `ask` under the rule it matched (a preflight also echoes the requested headers). */
export function corsHeaders(rule: CorsRule, ask: CorsAsk): Record<string, string> {
  // A rule open to every origin answers "*", which browsers never pair with credentials.
  const anyOrigin = rule.origins.includes("*");
  return {
    "access-control-allow-origin": anyOrigin ? "*" : ask.origin,
    ...(anyOrigin ? {} : { "access-control-allow-credentials": "true" }),
    "access-control-allow-methods": rule.methods.join(", "),
    ...(ask.headers && ask.headers.length ? { "access-control-allow-headers": ask.headers.join(", ") } : {}),
    ...(rule.expose.length ? { "access-control-expose-headers": rule.expose.join(", ") } : {}),
    ...(rule.maxAgeSeconds !== undefined ? { "access-control-max-age": String(rule.maxAgeSeconds) } : {}),
    vary: VARY,
  };
}
