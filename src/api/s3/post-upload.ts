// Browser POST uploads (S3's "POST Object"): `POST /{bucket}` with a multipart/form-data body
// whose fields (key, policy, x-amz-algorithm / -credential / -date / -signature, Content-Type,
// x-amz-meta-*, tagging, success_action_status / _redirect, ...) come before the file, which
// is last. The body is parsed as it streams by @fastify/busboy (maintained, no dependencies,
// bounded buffers; fields past 20 KB before the file are refused, as S3 does): every check
// (signature, policy expiration and conditions, the key's grants) is made when the file part
// begins, before a byte of it is read, and the file then streams into the object with the
// content-length-range enforced as it passes, so memory stays bounded whatever its size.
// Fields after the file are ignored, as S3 ignores them.
import { Busboy, type BusboyFileStream, type BusboyInstance } from "@fastify/busboy";
import type { AccessKeys, Principal } from "../../auth/access-keys.ts";
import { ANONYMOUS_ADMIN } from "../../auth/guard.ts";
import { BadRequestError, MeshError } from "../../errors.ts";
import type { AuthLimiter } from "../client-limits.ts";
import { MAX_META_BYTES, STORED_HEADERS } from "../object-headers.ts";
import { requireAccess, S3_META_PREFIX, type S3Request, type S3Services } from "./context.ts";
import { checkPolicy, lengthRange, parsePolicy, policySignatureValid, postCredential } from "./post-policy.ts";
import { DEFAULT_REGION } from "./request.ts";
import { S3AuthError } from "./sigv4.ts";
import { requestedSse, sseHeaders } from "./sse.ts";
import { parseTaggingXml, type TagSet } from "./tags.ts";
import { xmlResponse } from "./xml.ts";

/** S3's limit on the form fields before the file (names and values). */
export const MAX_PRE_DATA_BYTES = 20 * 1024;
/** Bytes the parser and the file stream each buffer before they push back (a few chunk-sized pieces at most in flight). */
const PARSE_HWM = 256 * 1024;
/** Most fields taken before the file (each is at least a name; S3 documents no number, 20 KB bounds it anyway). */
const MAX_FIELDS = 1000;

/** What a POST upload needs from the S3 API. */
export interface PostUploadDeps {
  services: S3Services;
  keys: Pick<AccessKeys, "get">;
  authEnabled: boolean;
  limiter?: AuthLimiter;
  /** Epoch ms (tests pass a clock to expire policies). */
  now?: () => number;
}

const malformedPost = () => new BadRequestError("The body of your POST request is not well-formed multipart/form-data.", "MalformedPOSTRequest");
const missingField = (name: string) => new BadRequestError(`Bucket POST must contain a field named '${name}'. If it is specified, please check the order of the fields.`, "InvalidArgument");

/** The form fields before the file, names lowercased (S3 compares them without case). */
type Fields = Map<string, string>;

/** Who signed the form: its key after checking the signature, or the anonymous admin with auth off. */
async function signer(deps: PostUploadDeps, request: Request, fields: Fields): Promise<{ principal: Principal; region: string }> {
  const policy = fields.get("policy");
  const signature = fields.get("x-amz-signature");
  if (!deps.authEnabled) return { principal: ANONYMOUS_ADMIN, region: DEFAULT_REGION };
  if (fields.has("awsaccesskeyid") || (fields.has("signature") && !signature)) {
    throw new BadRequestError("POST uploads signed with AWS signature version 2 are not supported: use x-amz-algorithm AWS4-HMAC-SHA256", "InvalidArgument");
  }
  if (policy === undefined && signature === undefined) throw new MeshError("AccessDenied", "Anonymous access is not allowed: a POST upload must carry a signed policy");
  if (policy === undefined) throw missingField("policy");
  if (signature === undefined) throw missingField("x-amz-signature");
  const cred = postCredential(fields);
  const key = await deps.keys.get(cred.accessKeyId);
  try {
    if (!key) throw new S3AuthError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    if (!policySignatureValid(policy, signature, key.secretAccessKey, cred)) {
      throw new S3AuthError("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
    }
  } catch (err) {
    deps.limiter?.authFailed(request);
    throw err;
  }
  deps.limiter?.keyUsed(request, key.accessKeyId);
  return { principal: key, region: cred.region };
}

/** User metadata and stored headers from the form, with S3's limit on metadata. */
function objectFields(fields: Fields): { meta: Record<string, string>; headers: Record<string, string> } {
  const meta: Record<string, string> = {};
  const headers: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of fields) {
    if (name.startsWith(S3_META_PREFIX) && name.length > S3_META_PREFIX.length) {
      const k = name.slice(S3_META_PREFIX.length);
      meta[k] = value;
      bytes += k.length + value.length;
    } else if ((STORED_HEADERS as readonly string[]).includes(name) && value !== "") {
      headers[name] = value;
    }
  }
  if (bytes > MAX_META_BYTES) throw new BadRequestError(`user metadata is ${bytes} bytes; the limit is ${MAX_META_BYTES}`, "MetadataTooLarge");
  return { meta, headers };
}

/** The SSE a form asks for, read by the same rules as a PUT's headers (KMS refused, SSE-C checked). */
function formSse(fields: Fields) {
  const h = new Headers();
  for (const [name, value] of fields) {
    if (!name.startsWith("x-amz-server-side-encryption")) continue;
    if (!/^[\x20-\x7e]*$/.test(value)) throw new BadRequestError(`${name} must be printable ASCII`, "InvalidArgument");
    h.set(name, value);
  }
  return requestedSse(h);
}

/** Count the file's bytes as they pass: past `max` fails at once, under `min` at the end (before the object is written). */
function bounded(stream: ReadableStream<Uint8Array>, range: { min: number; max: number } | undefined, counted: { bytes: number }): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        counted.bytes += chunk.byteLength;
        if (range && counted.bytes > range.max) throw new BadRequestError("Your proposed upload exceeds the maximum allowed size", "EntityTooLarge");
        controller.enqueue(chunk);
      },
      flush() {
        if (range && counted.bytes < range.min) throw new BadRequestError("Your proposed upload is smaller than the minimum allowed size", "EntityTooSmall");
      },
    }),
  );
}

/**
 * The file part as a web stream that pulls from busboy (which pauses parsing while it is not
 * read). A body that breaks off inside the file is the client's malformed form, not a 500.
 */
function webStream(file: BusboyFileStream): ReadableStream<Uint8Array> {
  const pieces = file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: IteratorResult<Buffer>;
      try {
        next = await pieces.next();
      } catch {
        throw malformedPost();
      }
      if (next.done) controller.close();
      else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
    },
    cancel() {
      file.destroy();
    },
  });
}

/** How a successful POST answers: a redirect, 200, 201 with the PostResponse document, or 204 (S3's default). */
function answer(fields: Fields, location: string, bucket: string, key: string, etag: string, extra: Record<string, string>): Response {
  const headers = { etag: `"${etag}"`, location, ...extra };
  const redirect = fields.get("success_action_redirect") ?? fields.get("redirect");
  if (redirect) {
    let target: URL | undefined;
    try {
      target = new URL(redirect);
    } catch {
      target = undefined;
    }
    // S3 ignores a redirect that is not a URL, and answers as success_action_status says.
    if (target && (target.protocol === "http:" || target.protocol === "https:")) {
      target.searchParams.set("bucket", bucket);
      target.searchParams.set("key", key);
      target.searchParams.set("etag", `"${etag}"`);
      return new Response(null, { status: 303, headers: { ...headers, location: target.toString() } });
    }
  }
  const status = fields.get("success_action_status");
  if (status === "200") return new Response(null, { status: 200, headers });
  if (status === "201") return xmlResponse("PostResponse", { Location: location, Bucket: bucket, Key: key, ETag: `"${etag}"` }, 201, headers);
  return new Response(null, { status: 204, headers });
}

/** Set once the answer is decided: the pump stops feeding the parser (the server drains or drops the rest of the body). */
interface Stop {
  now: boolean;
  /** Resolves when `now` is set. */
  stopped: Promise<void>;
  set(): void;
}

function stopSignal(): Stop {
  let resolve = () => {};
  const stop: Stop = {
    now: false,
    stopped: new Promise<void>((r) => (resolve = r)),
    set() {
      stop.now = true;
      resolve();
    },
  };
  return stop;
}

/** Feed the request body to busboy with backpressure, until it ends or `stop` is set. */
async function pump(body: ReadableStream<Uint8Array>, bb: BusboyInstance, stop: Stop): Promise<void> {
  const reader = body.getReader();
  try {
    while (!stop.now) {
      const { value, done } = await reader.read();
      if (done) break;
      // A parser waiting on a file nobody reads any more never drains: the stop ends the wait.
      if (!bb.write(value)) await Promise.race([new Promise<void>((resolve) => bb.once("drain", resolve)), stop.stopped]);
    }
    if (!stop.now) bb.end();
  } finally {
    reader.releaseLock();
  }
}

/** POST /{bucket} with a multipart/form-data body: a browser upload with a signed policy. */
export async function postObject(deps: PostUploadDeps, request: Request, bucket: string): Promise<Response> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\s*;/i.test(type)) throw new MeshError("PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data");
  if (!request.body) throw malformedPost();
  let bb: BusboyInstance;
  try {
    bb = Busboy({
      headers: { "content-type": type },
      highWaterMark: PARSE_HWM,
      fileHwm: PARSE_HWM,
      limits: { fieldNameSize: MAX_PRE_DATA_BYTES, fieldSize: MAX_PRE_DATA_BYTES, fields: MAX_FIELDS, files: 1 },
      // S3 takes the field named "file" as the file, whatever its part says (a filename or none).
      isPartAFile: (name) => name?.toLowerCase() === "file",
    });
  } catch {
    throw malformedPost();
  }
  const fields: Fields = new Map();
  let preData = 0;
  let fileSeen = false;
  const stop = stopSignal();
  const outcome = new Promise<Response>((resolve, reject) => {
    const fail = (err: unknown) => {
      stop.set();
      reject(err);
    };
    bb.on("field", (name, value, _nameTruncated, valueTruncated) => {
      // Fields after the file are ignored, as S3 ignores them.
      if (fileSeen) return;
      preData += Buffer.byteLength(name) + Buffer.byteLength(value);
      if (valueTruncated || preData > MAX_PRE_DATA_BYTES) return fail(new BadRequestError("Your POST request fields preceding the upload file were too large.", "MaxPostPreDataLengthExceeded"));
      fields.set(name.toLowerCase(), value);
    });
    bb.on("fieldsLimit", () => fail(new BadRequestError("Your POST request fields preceding the upload file were too large.", "MaxPostPreDataLengthExceeded")));
    bb.on("file", (_name, file, filename) => {
      if (fileSeen) return void file.resume();
      fileSeen = true;
      store(deps, request, bucket, fields, file, filename ?? "").then(resolve, (err: unknown) => {
        // The rest of the file is not read: the server drains (or drops) what the client still sends.
        file.destroy();
        fail(err);
      });
    });
    bb.on("finish", () => {
      if (!fileSeen) fail(new BadRequestError("POST requires exactly one file upload per request.", "InvalidArgument"));
    });
    bb.on("error", () => fail(malformedPost()));
  });
  // A body that fails (the client went away, or stalled past the idle timeout) ends the parse with it.
  void pump(request.body, bb, stop).catch((err: unknown) => {
    stop.set();
    bb.destroy(err instanceof Error ? err : undefined);
  });
  try {
    return await outcome;
  } finally {
    stop.set();
  }
}

/** Check the form and store its file: all checks before the first byte is read. */
async function store(deps: PostUploadDeps, request: Request, bucket: string, fields: Fields, file: BusboyFileStream, filename: string): Promise<Response> {
  const rawKey = fields.get("key");
  if (rawKey === undefined) throw missingField("key");
  const who = await signer(deps, request, fields);
  // The bucket is a field the policy may name: the one in the URL.
  const checked = new Map(fields);
  checked.set("bucket", bucket);
  const policyText = fields.get("policy");
  const policy = policyText === undefined ? undefined : parsePolicy(policyText);
  if (policy) checkPolicy(policy, checked, (deps.now ?? Date.now)());
  const r: S3Request = {
    request,
    method: "POST",
    bucket,
    key: rawKey,
    query: new URLSearchParams(),
    caller: { principal: who.principal, payload: null, region: who.region },
    who: who.principal,
    services: deps.services,
  };
  await requireAccess(r, "write");
  const acl = fields.get("acl");
  if (acl !== undefined && acl.trim().toLowerCase() !== "private") throw new MeshError("NotImplemented", `A field you provided implies functionality that is not implemented (acl: ${acl.slice(0, 40)}; only private is supported)`);
  const key = rawKey.replaceAll("${filename}", filename);
  const { meta, headers } = objectFields(fields);
  const tagging = fields.get("tagging");
  const tags: TagSet | undefined = tagging === undefined ? undefined : parseTaggingXml(tagging, "object");
  const wanted = formSse(fields);
  const objects = deps.services.objects;
  const seal = wanted?.kind === "C" ? objects.newKey("C", wanted.customer.key) : wanted?.kind === "S3" ? objects.newKey("S3") : undefined;
  const counted = { bytes: 0 };
  const body = bounded(webStream(file), policy && lengthRange(policy), counted);
  const put = await objects.putObject(bucket, key, body, {
    contentType: fields.get("content-type") || undefined,
    meta,
    headers,
    signal: request.signal,
    actor: who.principal.accessKeyId,
    seal,
    tags,
  });
  const location = `${new URL(request.url).origin}/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  return answer(fields, location, bucket, key, put.etag, sseHeaders(put.sse, wanted?.kind === "C" ? wanted.customer : null));
}
