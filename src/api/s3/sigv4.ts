// AWS Signature Version 4 verification for the S3 API: header auth
// (`Authorization: AWS4-HMAC-SHA256 ...`) and presigned query auth (`X-Amz-*`).
// Pure: no I/O beyond the secret lookup, the clock is injectable.
import crypto from "node:crypto";
import { MeshError, type ErrorCode } from "../../errors.ts";

/** Looks up a secret by access key id; null if unknown or revoked. */
export type SecretLookup = (accessKeyId: string) => Promise<string | null>;

/** The S3 error codes an authentication failure can answer with. */
export type S3AuthErrorCode = Extract<
  ErrorCode,
  | "AccessDenied"
  | "SignatureDoesNotMatch"
  | "InvalidAccessKeyId"
  | "RequestTimeTooSkewed"
  | "AuthorizationQueryParametersError"
  | "AuthorizationHeaderMalformed"
  | "MissingSecurityHeader"
  | "XAmzContentSHA256Mismatch"
  | "InvalidRequest"
  | "ExpiredToken"
>;

/** Why authentication failed, with the S3 error code to answer (each failure is counted against the client's address). */
export class S3AuthError extends MeshError {
  declare readonly code: S3AuthErrorCode;
  constructor(code: S3AuthErrorCode, message: string) {
    super(code, message);
  }
}

/** The result of verifying a request's signature. */
export interface VerifiedRequest {
  accessKeyId: string;
  /** The region the request was signed for (its credential scope). */
  region: string;
  /** How the payload is protected: "UNSIGNED-PAYLOAD", a hex SHA-256 the body must match, or one of the STREAMING-* modes. */
  payload:
    | { kind: "unsigned" }
    | { kind: "sha256"; hex: string }
    | { kind: "streaming-signed"; seedSignature: string; signingKey: Uint8Array; scope: string; amzDate: string; trailer: boolean }
    | { kind: "streaming-unsigned-trailer" };
  presigned: boolean;
}

/** The only signing algorithm accepted (SigV4a's ECDSA variant is not). */
export const ALGORITHM = "AWS4-HMAC-SHA256";
/** SHA-256 of the empty string, hex. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const UNRESERVED = /[A-Za-z0-9\-_.~]/;
const utf8 = new TextEncoder();

// ---------------------------------------------------------------------------
// Encoding and canonical forms

/** Percent-encode bytes the SigV4 way: unreserved A-Z a-z 0-9 - _ . ~ kept, everything else %XX uppercase. */
export function uriEncodeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && UNRESERVED.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Percent-encode a string (as UTF-8) the SigV4 way; '/' is encoded too. */
export function uriEncode(s: string): string {
  return uriEncodeBytes(utf8.encode(s));
}

/** Decode %XX escapes to raw bytes. A stray '%' stays a literal '%', so malformed input cannot throw. */
export function percentDecodeBytes(s: string): Uint8Array {
  const out: number[] = [];
  for (const m of s.matchAll(/%[0-9a-fA-F]{2}|[^%]+|%/g)) {
    const t = m[0];
    if (t.length === 3 && t[0] === "%") out.push(parseInt(t.slice(1), 16));
    else for (const b of utf8.encode(t)) out.push(b);
  }
  return Uint8Array.from(out);
}

/** Re-encode one already-encoded URI component to its canonical SigV4 form. */
function canonicalComponent(raw: string): string {
  // Work on bytes so an escape of invalid UTF-8 survives unchanged.
  return uriEncodeBytes(percentDecodeBytes(raw));
}

/** S3 canonical URI: the raw path, each segment decoded then encoded once ('/' kept; no dot-segment or double-slash normalization). */
export function canonicalUri(rawPath: string): string {
  if (rawPath === "") return "/";
  return rawPath.split("/").map(canonicalComponent).join("/");
}

/** Canonical query string from the raw query (no '?'): pairs re-encoded, sorted by name then value; names in `exclude` (decoded, exact) dropped. */
export function canonicalQuery(searchParams: string, exclude: string[] = []): string {
  const skip = new Set(exclude.map(uriEncode));
  const pairs: [string, string][] = [];
  for (const part of searchParams.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    // In a query '+' means a space (form encoding, as Go and Python clients send it).
    const enc = (s: string) => canonicalComponent(s.replaceAll("+", "%20"));
    const name = enc(eq < 0 ? part : part.slice(0, eq));
    if (skip.has(name)) continue;
    pairs.push([name, enc(eq < 0 ? "" : part.slice(eq + 1))]);
  }
  // Encoded forms are pure ASCII, so code-unit order is byte order.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A header value as its client signed it. HTTP servers hand header bytes over one byte per
 * character (latin1), but SigV4 signs the raw bytes, and clients that send a non-ASCII value
 * send it as UTF-8 (the AWS SDK under Bun, curl) and sign those bytes: read such a value
 * back as UTF-8, whose encoding then hashes to exactly the bytes received. Bytes that are
 * not UTF-8 (a Node or Python client writes a string's characters as latin1 bytes but
 * signs their UTF-8) keep the old reading, which is what those clients signed.
 */
export function signedHeaderText(value: string): string {
  // ASCII, or characters that cannot have come off the wire one byte each: nothing to undo.
  if (!/[\x80-\uffff]/.test(value) || /[\u0100-\uffff]/.test(value)) return value;
  try {
    return strictUtf8.decode(Buffer.from(value, "latin1"));
  } catch {
    return value;
  }
}

/** Canonical header value: trimmed, runs of spaces/tabs collapsed to one space. */
export function canonicalHeaderValue(value: string): string {
  return value.replace(/[ \t]+/g, " ").trim();
}

/** The canonical request string for the given parts (signedHeaders: lowercase names, sorted). */
export function canonicalRequest(
  method: string,
  rawPath: string,
  rawQuery: string,
  headers: Headers,
  signedHeaders: string[],
  payloadHash: string,
  excludeQuery: string[] = [],
): string {
  // Headers joins repeated fields with ", "; SigV4 clients in practice never repeat a signed header.
  const lines = signedHeaders.map((h) => `${h}:${canonicalHeaderValue(signedHeaderText(headers.get(h) ?? ""))}\n`).join("");
  return [method, canonicalUri(rawPath), canonicalQuery(rawQuery, excludeQuery), lines, signedHeaders.join(";"), payloadHash].join("\n");
}

// ---------------------------------------------------------------------------
// Crypto primitives

/** Hex SHA-256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

/** HMAC-SHA256 of a string or bytes under `key`. */
export function hmac(key: string | Uint8Array, data: string | Uint8Array): Uint8Array {
  return new Uint8Array(crypto.createHmac("sha256", key).update(data).digest());
}

/** The SigV4 signing key: HMAC chain over "AWS4"+secret, date (YYYYMMDD), region, service, "aws4_request". */
export function signingKey(secret: string, date: string, region: string, service: string): Uint8Array {
  const kDate = hmac("AWS4" + secret, date);
  return hmac(hmac(hmac(kDate, region), service), "aws4_request");
}

/** Hex signature of a canonical request under a signing key. */
export function signCanonicalRequest(key: Uint8Array, amzDate: string, scope: string, canonical: string): string {
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
  return Buffer.from(hmac(key, stringToSign)).toString("hex");
}

/** Compare two hex strings in constant time (case-insensitive); false if either is not hex or lengths differ. */
export function constantTimeEqualHex(a: string, b: string): boolean {
  const isHex = (s: string) => s.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(s);
  if (!isHex(a) || !isHex(b) || a.length !== b.length) return false;
  // Lengths are public (always 64 for signatures); only the contents must not leak.
  return crypto.timingSafeEqual(Buffer.from(a, "hex"), Buffer.from(b, "hex"));
}

// ---------------------------------------------------------------------------
// Request parsing helpers

/** Split a request URL (absolute or origin-form) into its raw path and raw query, untouched. */
export function splitUrl(url: string): { rawPath: string; rawQuery: string } {
  let rest = url;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length);
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf("?");
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  return { rawPath: rawPath === "" ? "/" : rawPath, rawQuery: q < 0 ? "" : rest.slice(q + 1) };
}

/** Decoded query parameters (first value wins); '+' is a space. */
function queryParams(rawQuery: string): Map<string, string> {
  const dec = new TextDecoder();
  const out = new Map<string, string>();
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const d = (s: string) => dec.decode(percentDecodeBytes(s.replaceAll("+", " ")));
    const k = d(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(k)) out.set(k, d(eq < 0 ? "" : part.slice(eq + 1)));
  }
  return out;
}

/** Parse an ISO 8601 basic timestamp (20130524T000000Z) to epoch ms, or NaN. */
export function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  // Reject roll-overs such as month 13 or Feb 30.
  return new Date(t).getUTCDate() === d && mo >= 1 && mo <= 12 && h < 24 && mi < 60 && se < 60 ? t : NaN;
}

/** Format epoch ms as an ISO 8601 basic timestamp. */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  scope: string;
}

/** Parse "AKID/YYYYMMDD/region/s3/aws4_request"; `fail` builds the error for the auth style at hand. */
function parseCredential(value: string, fail: (msg: string) => S3AuthError, region?: string): Credential {
  const parts = value.split("/");
  if (parts.length !== 5 || parts.some((p) => p === "")) throw fail(`malformed credential '${value}'`);
  const [accessKeyId, date, reg, service, terminal] = parts;
  if (!/^\d{8}$/.test(date)) throw fail(`invalid credential date '${date}'`);
  if (terminal !== "aws4_request") throw fail(`credential must end with aws4_request, not '${terminal}'`);
  if (service !== "s3") throw fail(`incorrect service '${service}'; expecting 's3'`);
  if (region !== undefined && reg !== region) throw fail(`the region '${reg}' is wrong; expecting '${region}'`);
  return { accessKeyId, date, region: reg, service, scope: `${date}/${reg}/${service}/aws4_request` };
}

/** Parse "a;b;c" into header names; every name lowercase, non-empty, and `host` included. */
function parseSignedHeaders(value: string, fail: (msg: string) => S3AuthError): string[] {
  const names = value.split(";");
  if (names.some((n) => n === "" || n !== n.toLowerCase())) throw fail(`malformed SignedHeaders '${value}'`);
  if (!names.includes("host")) throw fail("the host header must be signed");
  return [...names].sort();
}

/** Map an x-amz-content-sha256 value to a payload mode; the streaming-signed details are filled in later. */
function payloadMode(value: string, presigned: boolean): VerifiedRequest["payload"]["kind"] {
  if (value === "UNSIGNED-PAYLOAD") return "unsigned";
  if (HEX64.test(value)) return "sha256";
  if (!presigned) {
    if (value === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" || value === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") return "streaming-signed";
    if (value === "STREAMING-UNSIGNED-PAYLOAD-TRAILER") return "streaming-unsigned-trailer";
  }
  throw new S3AuthError("InvalidRequest", `unsupported x-amz-content-sha256 value '${value}'`);
}

// ---------------------------------------------------------------------------
// Verification

interface Parsed {
  cred: Credential;
  amzDate: string;
  signedHeaders: string[];
  signature: string;
  payloadHash: string;
  excludeQuery: string[];
}

/** Parse header auth and check everything that does not need the secret. */
function parseHeaderAuth(auth: string, headers: Headers, opts: { region?: string }): Parsed {
  const fail = (msg: string) => new S3AuthError("AuthorizationHeaderMalformed", `The authorization header is malformed; ${msg}`);
  const sp = auth.indexOf(" ");
  const algorithm = sp < 0 ? auth : auth.slice(0, sp);
  if (algorithm !== ALGORITHM) {
    throw new S3AuthError("InvalidRequest", `The authorization mechanism you have provided is not supported. Please use ${ALGORITHM}.`);
  }
  const fields = new Map<string, string>();
  for (const f of auth.slice(sp + 1).split(",")) {
    const eq = f.indexOf("=");
    if (eq > 0) fields.set(f.slice(0, eq).trim(), f.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signed = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signed || !signature) throw fail("Credential, SignedHeaders and Signature are all required");
  const cred = parseCredential(credential, fail, opts.region);
  const signedHeaders = parseSignedHeaders(signed, fail);

  // The timestamp comes from x-amz-date, else Date; whichever is used must be signed so it cannot be replayed with a new one.
  const xAmzDate = headers.get("x-amz-date");
  const dateHeader = headers.get("date");
  let amzDate: string;
  if (xAmzDate !== null) {
    amzDate = xAmzDate.trim();
    if (Number.isNaN(parseAmzDate(amzDate))) throw new S3AuthError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
    if (!signedHeaders.includes("x-amz-date")) throw new S3AuthError("AccessDenied", "the x-amz-date header must be signed");
  } else if (dateHeader !== null) {
    const t = Date.parse(dateHeader);
    if (Number.isNaN(t)) throw new S3AuthError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
    if (!signedHeaders.includes("date")) throw new S3AuthError("AccessDenied", "the Date header must be signed");
    amzDate = formatAmzDate(t);
  } else {
    throw new S3AuthError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
  }
  if (cred.date !== amzDate.slice(0, 8)) throw fail(`credential date '${cred.date}' is not the date of the request '${amzDate.slice(0, 8)}'`);

  const payloadHash = headers.get("x-amz-content-sha256")?.trim();
  if (!payloadHash) throw new S3AuthError("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
  return { cred, amzDate, signedHeaders, signature, payloadHash, excludeQuery: [] };
}

/** Parse presigned query auth and check everything that does not need the secret (expiry included). */
function parseQueryAuth(q: Map<string, string>, headers: Headers, now: number, maxSkewMs: number, opts: { region?: string }): Parsed {
  const fail = (msg: string) => new S3AuthError("AuthorizationQueryParametersError", msg);
  const get = (name: string) => {
    const v = q.get(name);
    if (v === undefined || v === "") throw fail(`Query-string authentication requires the ${name} parameter`);
    return v;
  };
  if (get("X-Amz-Algorithm") !== ALGORITHM) throw fail(`X-Amz-Algorithm only supports "${ALGORITHM}"`);
  const cred = parseCredential(get("X-Amz-Credential"), fail, opts.region);
  const amzDate = get("X-Amz-Date");
  const t = parseAmzDate(amzDate);
  if (Number.isNaN(t)) throw fail("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  if (cred.date !== amzDate.slice(0, 8)) throw fail(`credential date '${cred.date}' is not the date of X-Amz-Date '${amzDate.slice(0, 8)}'`);
  const expiresRaw = get("X-Amz-Expires");
  const expires = /^\d{1,7}$/.test(expiresRaw) ? Number(expiresRaw) : NaN;
  if (!(expires >= 1 && expires <= MAX_PRESIGN_EXPIRES_S)) throw fail(`X-Amz-Expires must be between 1 and ${MAX_PRESIGN_EXPIRES_S} seconds`);
  const signedHeaders = parseSignedHeaders(get("X-Amz-SignedHeaders"), fail);
  const signature = get("X-Amz-Signature");

  if (t - now > maxSkewMs) throw new S3AuthError("RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.");
  if (now > t + expires * 1000) throw new S3AuthError("AccessDenied", "Request has expired");
  // As S3 does: every x-amz-* header sent with a presigned URL must have been signed.
  for (const [name] of headers) {
    if (name.startsWith("x-amz-") && !signedHeaders.includes(name)) {
      throw new S3AuthError("AccessDenied", "There were headers present in the request which were not signed");
    }
  }
  // The AWS SDK hoists its x-amz-content-sha256 header into the query, keeping the header's spelling.
  const hashParam = [...q.keys()].find((k) => k.toLowerCase() === "x-amz-content-sha256");
  const payloadHash = hashParam !== undefined ? q.get(hashParam)! : "UNSIGNED-PAYLOAD";
  return { cred, amzDate, signedHeaders, signature, payloadHash, excludeQuery: ["X-Amz-Signature"] };
}

/** Verify a request (header auth or presigned query auth). `url` is the full request URL exactly as received (raw path, not normalized); `now` is injectable for tests. Throws S3AuthError. */
export async function verifyRequest(
  req: { method: string; url: string; headers: Headers },
  lookup: SecretLookup,
  opts: { now?: Date; maxSkewMs?: number; region?: string } = {},
): Promise<VerifiedRequest> {
  const now = (opts.now ?? new Date()).getTime();
  const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const { rawPath, rawQuery } = splitUrl(req.url);
  const q = queryParams(rawQuery);
  const auth = req.headers.get("authorization");
  const presigned = q.has("X-Amz-Algorithm") || q.has("X-Amz-Credential") || q.has("X-Amz-Signature");
  if (auth !== null && presigned) throw new S3AuthError("InvalidRequest", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified");
  // A V2 presigned URL (`s3cmd signurl`, old SDKs) gets the same answer as a V2 header, not "anonymous".
  if (auth === null && !presigned && q.has("AWSAccessKeyId") && q.has("Signature")) {
    throw new S3AuthError("InvalidRequest", `The authorization mechanism you have provided is not supported. Please use ${ALGORITHM}.`);
  }
  if (auth === null && !presigned) throw new S3AuthError("AccessDenied", "Anonymous access is not allowed");

  const p = presigned ? parseQueryAuth(q, req.headers, now, maxSkewMs, opts) : parseHeaderAuth(auth!, req.headers, opts);
  const mode = payloadMode(p.payloadHash, presigned);
  if (!presigned && Math.abs(parseAmzDate(p.amzDate) - now) > maxSkewMs) {
    throw new S3AuthError("RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
  }

  const secret = await lookup(p.cred.accessKeyId);
  if (secret === null) throw new S3AuthError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  const key = signingKey(secret, p.cred.date, p.cred.region, p.cred.service);
  const canonical = canonicalRequest(req.method, rawPath, rawQuery, req.headers, p.signedHeaders, p.payloadHash, p.excludeQuery);
  const expected = signCanonicalRequest(key, p.amzDate, p.cred.scope, canonical);
  if (!constantTimeEqualHex(expected, p.signature)) {
    throw new S3AuthError("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
  }

  const accessKeyId = p.cred.accessKeyId;
  const region = p.cred.region;
  switch (mode) {
    case "unsigned":
      return { accessKeyId, region, payload: { kind: "unsigned" }, presigned };
    case "sha256":
      return { accessKeyId, region, payload: { kind: "sha256", hex: p.payloadHash.toLowerCase() }, presigned };
    case "streaming-unsigned-trailer":
      return { accessKeyId, region, payload: { kind: "streaming-unsigned-trailer" }, presigned };
    case "streaming-signed":
      return {
        accessKeyId,
        region,
        presigned,
        payload: {
          kind: "streaming-signed",
          seedSignature: expected,
          signingKey: key,
          scope: p.cred.scope,
          amzDate: p.amzDate,
          trailer: p.payloadHash.endsWith("-TRAILER"),
        },
      };
  }
}
