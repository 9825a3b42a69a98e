// Who sent an S3 request (SigV4, via sigv4.ts) and its body, decoded and verified: the
// aws-chunked framing is undone (chunk signatures and trailing checksums checked by
// aws-chunked.ts), and a signed payload hash, Content-MD5 or x-amz-checksum-* header is
// checked as the bytes stream past. A mismatch errors the stream before its end is
// consumed, so the object is never written.
import crypto from "node:crypto";
import type { AccessKeys, Principal } from "../../auth/access-keys.ts";
import { ANONYMOUS_ADMIN } from "../../auth/guard.ts";
import { BadDigestError, BadRequestError } from "../../errors.ts";
import type { AuthLimiter } from "../client-limits.ts";
import { measure, parseAlgorithm, type ChecksumAlgorithm } from "../../objects/checksums.ts";
import { CHECKSUMS, decodeAwsChunked } from "./aws-chunked.ts";
import { S3AuthError, verifyRequest, type VerifiedRequest } from "./sigv4.ts";

/** An authenticated S3 caller and how its payload is protected. */
export interface S3Caller {
  principal: Principal;
  /** null when auth is off and the request was not verified. */
  payload: VerifiedRequest["payload"] | null;
  /** The region the request was signed for; us-east-1 when auth is off (nothing was signed). */
  region: string;
}

/** The region S3 clients default to, and the one this mesh reports (GetBucketLocation, HeadBucket). */
export const DEFAULT_REGION = "us-east-1";

/** Verify the request's signature; with auth off, everyone is admin. Failures and each key's use go to `limiter`. */
export async function authenticate(request: Request, keys: AccessKeys, enabled: boolean, limiter?: AuthLimiter): Promise<S3Caller> {
  if (!enabled) return { principal: ANONYMOUS_ADMIN, payload: null, region: DEFAULT_REGION };
  const looked: { key: Principal | null } = { key: null };
  let verified: VerifiedRequest;
  try {
    verified = await verifyRequest(request, async (id) => {
      const found = await keys.get(id);
      looked.key = found;
      return found?.secretAccessKey ?? null;
    });
    if (!looked.key) throw new S3AuthError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  } catch (err) {
    if (err instanceof S3AuthError) limiter?.authFailed(request);
    throw err;
  }
  const key = looked.key;
  limiter?.keyUsed(request, key.accessKeyId);
  return { principal: key, payload: verified.payload, region: verified.region };
}

/** A verified request body and its length in bytes once decoded (when known). */
export interface S3Body {
  stream: ReadableStream<Uint8Array> | null;
  contentLength?: number;
  /** Checksums the client sent in headers and that were verified, to echo back. */
  checksums: Record<string, string>;
  /** The algorithm named up front (x-amz-checksum-<alg>, x-amz-trailer or x-amz-sdk-checksum-algorithm), if any. */
  declared?: ChecksumAlgorithm;
  /** The upload's checksum to keep, verified: readable once the whole body has been read. */
  checksum(): KeptChecksum | undefined;
}

/** A checksum an upload carried (or named and the server computed), base64. */
export interface KeptChecksum {
  algorithm: ChecksumAlgorithm;
  value: string;
}

interface Check {
  update(data: Uint8Array): void;
  /** Throws (or rejects) if the bytes seen do not match. */
  finish(): void | Promise<void>;
}

function digestCheck(alg: string, expected: string, encoding: "hex" | "base64", fail: () => Error): Check {
  const h = crypto.createHash(alg);
  return {
    update: (d) => void h.update(d),
    finish: () => {
      if (h.digest(encoding) !== expected) throw fail();
    },
  };
}

function checksumCheck(name: string, expected: string): Check {
  const sum = CHECKSUMS[name]();
  return {
    update: (d) => sum.update(d),
    finish: async () => {
      if (Buffer.from(await sum.digest()).toString("base64") !== expected) {
        throw new BadDigestError(`The ${name.toUpperCase()} you specified did not match the calculated checksum.`);
      }
    },
  };
}

function verifying(source: ReadableStream<Uint8Array>, checks: Check[]): ReadableStream<Uint8Array> {
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        for (const c of checks) c.update(chunk);
        controller.enqueue(chunk);
      },
      async flush() {
        for (const c of checks) await c.finish();
      },
    }),
  );
}

function lengthHeader(headers: Headers, name: string): number | undefined {
  const v = headers.get(name);
  if (v === null) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BadRequestError(`invalid ${name}`, "InvalidArgument");
  return n;
}

/** The body of a PUT or POST, decoded and wrapped in every check the request asks for. */
export function requestBody(request: Request, caller: S3Caller, opts: { checksumHeaders?: boolean } = {}): S3Body {
  const h = request.headers;
  const declaredHash = h.get("x-amz-content-sha256") ?? "";
  // The payload mode decides the framing: a body whose declared hash is a plain SHA-256 (or
  // UNSIGNED-PAYLOAD) is not framed, whatever Content-Encoding says ("gzip, aws-chunked" from
  // some clients: S3 stores it and keeps gzip). Only with no declared hash at all (auth off)
  // does the header alone say the body is framed.
  const chunked = declaredHash.startsWith("STREAMING-") || (declaredHash === "" && /(^|,)\s*aws-chunked\s*(,|$)/i.test(h.get("content-encoding") ?? ""));
  let stream = request.body;
  let contentLength: number | undefined;
  const checks: Check[] = [];
  const checksums: Record<string, string> = {};
  let kept: KeptChecksum | undefined;
  const trailerAlg = /^\s*x-amz-checksum-([a-z0-9]+)\s*$/i.exec(h.get("x-amz-trailer") ?? "")?.[1];
  let declared = trailerAlg === undefined ? undefined : parseAlgorithm(trailerAlg);

  if (chunked) {
    // With auth off the chunk signatures cannot be checked (no verified key); the framing still can.
    const payload = caller.payload ?? { kind: "streaming-unsigned-trailer" as const };
    contentLength = lengthHeader(h, "x-amz-decoded-content-length");
    const onChecksum = (name: string, value: string) => {
      const algorithm = parseAlgorithm(name.slice("x-amz-checksum-".length));
      if (algorithm) kept = { algorithm, value };
    };
    if (stream) stream = decodeAwsChunked(stream, payload, { decodedLength: contentLength, trailer: h.get("x-amz-trailer") ?? undefined, onChecksum });
  } else {
    contentLength = lengthHeader(h, "content-length");
    if (caller.payload?.kind === "sha256") {
      checks.push(digestCheck("sha256", caller.payload.hex, "hex", () => new BadRequestError("The provided 'x-amz-content-sha256' header does not match what was computed.", "XAmzContentSHA256Mismatch")));
    }
  }

  const md5 = h.get("content-md5");
  if (md5 !== null) {
    if (!/^[A-Za-z0-9+/]{22}==$/.test(md5)) throw new BadRequestError("The Content-MD5 you specified was invalid.", "InvalidDigest");
    checks.push(digestCheck("md5", md5, "base64", () => new BadDigestError("The Content-MD5 you specified did not match what we received.")));
  }
  // CompleteMultipartUpload's x-amz-checksum-* headers are the object's, not its XML body's.
  for (const name of opts.checksumHeaders === false ? [] : Object.keys(CHECKSUMS)) {
    const value = h.get(`x-amz-checksum-${name}`);
    if (value === null) continue;
    if (kept) throw new BadRequestError("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.", "InvalidRequest");
    checks.push(checksumCheck(name, value));
    checksums[`x-amz-checksum-${name}`] = value;
    kept = { algorithm: parseAlgorithm(name)!, value };
    declared = kept.algorithm;
  }
  const sdk = h.get("x-amz-sdk-checksum-algorithm");
  const sdkAlg = sdk === null ? undefined : parseAlgorithm(sdk);
  if (sdk !== null && !sdkAlg) throw new BadRequestError("Value for x-amz-sdk-checksum-algorithm header is invalid.", "InvalidRequest");
  if (sdkAlg && declared && sdkAlg !== declared) throw new BadRequestError(`x-amz-sdk-checksum-algorithm ${sdkAlg} does not match the checksum sent (${declared})`, "InvalidRequest");
  let measured: ReturnType<typeof measure> | undefined;
  if (sdkAlg && !declared && opts.checksumHeaders !== false) {
    // Named but not sent up front: the server computes it (an empty body, too); a trailer that still brings it wins.
    measured = measure(stream ?? new ReadableStream({ start: (c) => c.close() }), sdkAlg);
    stream = measured.stream;
    declared = sdkAlg;
  }
  // Checksums finish asynchronously: an empty body is checked as the stream it then becomes.
  if (checks.length) stream = verifying(stream ?? new ReadableStream({ start: (c) => c.close() }), checks);
  const checksum = (): KeptChecksum | undefined => {
    const value = measured?.value();
    return kept ?? (declared && value !== undefined ? { algorithm: declared, value } : undefined);
  };
  return { stream, contentLength, checksums, declared, checksum };
}

/**
 * Read a small XML body (DeleteObjects, CompleteMultipartUpload) as text, refusing one over
 * `limit` bytes as MalformedXML: at once if it declares more, else as soon as more arrived.
 */
export async function smallBody(body: S3Body, limit: number): Promise<string> {
  const tooBig = () => new BadRequestError(`the request body is larger than ${limit} bytes`, "MalformedXML");
  if (body.contentLength !== undefined && body.contentLength > limit) throw tooBig();
  if (!body.stream) return "";
  const pieces: Uint8Array[] = [];
  let size = 0;
  for await (const piece of body.stream) {
    size += piece.byteLength;
    if (size > limit) throw tooBig();
    pieces.push(piece);
  }
  return Buffer.concat(pieces).toString("utf8");
}
