// The policy of a browser POST upload (S3's "POST Object" with a SigV4-signed policy): its
// signature (HMAC of the base64 policy under the credential's signing key), its expiration,
// and its conditions, checked as S3 checks them: every form field but x-amz-signature, file,
// policy and x-ignore-* must be named by a condition; exact matches (`{"field": "v"}` or
// `["eq", "$field", "v"]`) and prefixes (`["starts-with", "$field", "p"]`) compare the
// field's value, field names without case; `["content-length-range", min, max]` bounds the
// file's size (checked as it streams in, post-upload.ts). Pure: no I/O; the clock is passed in.
import { BadRequestError, MeshError } from "../../errors.ts";
import { ALGORITHM, constantTimeEqualHex, hmac, parseAmzDate, signingKey } from "./sigv4.ts";

/** One condition of a policy. */
export type PolicyCondition =
  | { kind: "eq"; field: string; value: string }
  | { kind: "starts-with"; field: string; value: string }
  | { kind: "content-length-range"; min: number; max: number };

/** A decoded policy. */
export interface PostPolicy {
  expirationMs: number;
  conditions: PolicyCondition[];
}

/** Fields no condition needs to name (S3's list), besides those starting with x-ignore-. */
const EXEMPT = new Set(["x-amz-signature", "file", "policy"]);

const invalidPolicy = (why: string) => new BadRequestError(`Invalid Policy: ${why}`, "InvalidPolicyDocument");
/** S3's answer to a policy the request does not satisfy. */
export const policyRefusal = (why: string) => new MeshError("AccessDenied", `Invalid according to Policy: ${why}`);

/** A whole number of bytes as a condition may give it (a number or a decimal string). */
function byteCount(v: unknown): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,16}$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw invalidPolicy("content-length-range bounds must be whole numbers of bytes");
  return n;
}

/** The field a "$name" condition operand names, lowercased. */
function fieldOf(v: unknown): string {
  if (typeof v !== "string" || !v.startsWith("$") || v.length < 2) throw invalidPolicy(`a condition must name a field as "$name", not ${JSON.stringify(v)?.slice(0, 80)}`);
  return v.slice(1).toLowerCase();
}

/** Decode and check the shape of a base64 policy document. */
export function parsePolicy(base64: string): PostPolicy {
  let doc: unknown;
  try {
    if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(base64)) throw new Error("not base64");
    doc = JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
  } catch {
    throw invalidPolicy("the policy is not base64-encoded JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalidPolicy("the policy must be a JSON object");
  const { expiration, conditions } = doc as Record<string, unknown>;
  const expirationMs = typeof expiration === "string" ? Date.parse(expiration) : NaN;
  if (Number.isNaN(expirationMs)) throw invalidPolicy("Invalid 'expiration' value");
  if (!Array.isArray(conditions)) throw invalidPolicy("the policy must have a 'conditions' list");
  const out: PolicyCondition[] = [];
  for (const c of conditions as unknown[]) {
    if (Array.isArray(c)) {
      const [op, a, b] = c as unknown[];
      const name = typeof op === "string" ? op.toLowerCase() : "";
      if (c.length !== 3) throw invalidPolicy(`a condition list has 3 elements: ${JSON.stringify(c).slice(0, 200)}`);
      if (name === "content-length-range") {
        const [min, max] = [byteCount(a), byteCount(b)];
        if (min > max) throw invalidPolicy("content-length-range's minimum is above its maximum");
        out.push({ kind: "content-length-range", min, max });
      } else if (name === "eq" || name === "starts-with") {
        if (typeof b !== "string") throw invalidPolicy(`the value of a condition must be a string: ${JSON.stringify(c).slice(0, 200)}`);
        out.push({ kind: name, field: fieldOf(a), value: b });
      } else {
        throw invalidPolicy(`unknown condition operator ${JSON.stringify(op)?.slice(0, 40)}`);
      }
    } else if (typeof c === "object" && c !== null) {
      for (const [field, value] of Object.entries(c as Record<string, unknown>)) {
        if (typeof value !== "string") throw invalidPolicy(`the value of a condition must be a string: ${JSON.stringify(c).slice(0, 200)}`);
        out.push({ kind: "eq", field: field.toLowerCase(), value });
      }
    } else {
      throw invalidPolicy("each condition is an object or a list");
    }
  }
  return { expirationMs, conditions: out };
}

/** The condition as S3 quotes it in a refusal. */
function quoted(c: PolicyCondition): string {
  if (c.kind === "content-length-range") return `["content-length-range", ${c.min}, ${c.max}]`;
  return `["${c.kind}", "$${c.field}", ${JSON.stringify(c.value)}]`;
}

/**
 * Throw S3's AccessDenied ("Invalid according to Policy: ...") unless the policy has not
 * expired at `nowMs`, every condition holds for `fields` (names lowercased; the bucket is
 * a field too) and every field is named by some condition.
 */
export function checkPolicy(policy: PostPolicy, fields: ReadonlyMap<string, string>, nowMs: number): void {
  if (nowMs >= policy.expirationMs) throw policyRefusal("Policy expired.");
  const named = new Set<string>();
  for (const c of policy.conditions) {
    if (c.kind === "content-length-range") continue;
    named.add(c.field);
    const value = fields.get(c.field) ?? "";
    const holds = c.kind === "eq" ? value === c.value : value.startsWith(c.value);
    if (!holds) throw policyRefusal(`Policy Condition failed: ${quoted(c)}`);
  }
  const extra = [...fields.keys()].filter((f) => !EXEMPT.has(f) && !f.startsWith("x-ignore-") && !named.has(f));
  if (extra.length) throw policyRefusal(`Extra input fields: ${extra.join(", ").slice(0, 300)}`);
}

/** The file size bounds of a policy (the tightest of its content-length-range conditions), if any. */
export function lengthRange(policy: PostPolicy): { min: number; max: number } | undefined {
  const ranges = policy.conditions.filter((c) => c.kind === "content-length-range");
  if (ranges.length === 0) return undefined;
  return { min: Math.max(...ranges.map((r) => r.min)), max: Math.min(...ranges.map((r) => r.max)) };
}

/** A POST form's SigV4 credential ("AKID/YYYYMMDD/region/s3/aws4_request"), parsed. */
export interface PostCredential {
  accessKeyId: string;
  date: string;
  region: string;
}

const badField = (message: string) => new BadRequestError(message, "InvalidArgument");

/** The credential of a POST form, after checking x-amz-algorithm and that x-amz-date is of the credential's day. */
export function postCredential(fields: ReadonlyMap<string, string>): PostCredential {
  const algorithm = fields.get("x-amz-algorithm");
  if (algorithm === undefined) throw badField("Bucket POST must contain a field named 'x-amz-algorithm'. If it is specified, please check the order of the fields.");
  if (algorithm !== ALGORITHM) throw badField(`Bucket POST only supports the x-amz-algorithm ${ALGORITHM}`);
  const credential = fields.get("x-amz-credential");
  if (credential === undefined) throw badField("Bucket POST must contain a field named 'x-amz-credential'. If it is specified, please check the order of the fields.");
  const amzDate = fields.get("x-amz-date");
  if (amzDate === undefined) throw badField("Bucket POST must contain a field named 'x-amz-date'. If it is specified, please check the order of the fields.");
  const parts = credential.split("/");
  if (parts.length !== 5 || parts.some((p) => p === "") || !/^\d{8}$/.test(parts[1]) || parts[3] !== "s3" || parts[4] !== "aws4_request") {
    throw badField(`Invalid x-amz-credential: expected <key id>/<YYYYMMDD>/<region>/s3/aws4_request`);
  }
  if (Number.isNaN(parseAmzDate(amzDate)) || amzDate.slice(0, 8) !== parts[1]) throw badField("x-amz-date must be an ISO 8601 basic time of the credential's date");
  return { accessKeyId: parts[0], date: parts[1], region: parts[2] };
}

/** Is `signature` (hex) the SigV4 signature of the base64 `policy` under `secret` and the credential's scope? */
export function policySignatureValid(policy: string, signature: string, secret: string, cred: PostCredential): boolean {
  const key = signingKey(secret, cred.date, cred.region, "s3");
  return constantTimeEqualHex(Buffer.from(hmac(key, policy)).toString("hex"), signature);
}
