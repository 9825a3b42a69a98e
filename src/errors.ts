// The one error family. Every error the code throws on purpose is a MeshError with a code
// from ERROR_STATUS below, the one table of codes and their HTTP statuses: a new code goes
// there, and the type system then accepts it at throw sites (a misspelt code does not
// compile). Each API turns errors into responses in one function (src/api/errors.ts for
// the native JSON API, src/api/s3/errors.ts for S3's XML), using this table.

/** The HTTP status of a code: one number, or one per API where S3's own rules differ. */
type Status = number | { native: number; s3: number };

/**
 * Every error code and the HTTP status it answers with. The names follow S3's where S3 has
 * one; the rest name a failure of this mesh (peers, chunks, RPC).
 */
export const ERROR_STATUS = {
  // ---- 400: the request is wrong ----
  InvalidRequest: 400,
  InvalidArgument: 400,
  InvalidURI: 400,
  InvalidBucketName: 400,
  KeyTooLongError: 400,
  MetadataTooLarge: 400,
  IncompleteBody: 400,
  MalformedXML: 400,
  InvalidDigest: 400,
  /** An SSE-C algorithm other than AES256. */
  InvalidEncryptionAlgorithmError: 400,
  BadDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  EntityTooSmall: 400,
  EntityTooLarge: 400,
  XAmzContentSHA256Mismatch: 400,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  MissingSecurityHeader: 400,
  /** A peer's RPC call broke its method's contract. */
  InvalidParams: 400,
  UnknownMethod: 400,
  /** A timestamp too far ahead of this peer's clock (src/util/hlc.ts). */
  ClockDrift: 400,
  InvalidChunkId: 400,
  /** A bad flag, environment variable or config value (the CLI prints it without a stack). */
  InvalidConfig: 400,
  /** A search query (POST /buckets/{b}/query or its ?q= text) that does not parse or fit the bucket's schema. */
  InvalidQuery: 400,
  /** A tag S3 refuses: a duplicate or system (aws:) key, too long, or bad characters. */
  InvalidTag: 400,
  /** S3's generic refusal (too many object tags; a preflight without Origin or Access-Control-Request-Method). */
  BadRequest: 400,
  /** A browser POST upload's policy that is not base64 JSON of S3's shape. */
  InvalidPolicyDocument: 400,
  /** A browser POST upload body that is not multipart/form-data as it should be. */
  MalformedPOSTRequest: 400,
  /** A browser POST upload whose fields before the file exceed S3's 20 KB. */
  MaxPostPreDataLengthExceeded: 400,
  // ---- 401 / 403: who is asking, and may they ----
  Unauthorized: 401,
  AccessDenied: 403,
  SignatureDoesNotMatch: 403,
  InvalidAccessKeyId: 403,
  RequestTimeTooSkewed: 403,
  ExpiredToken: 403,
  /** A CORS preflight no rule of the bucket allows (S3's AccessForbidden). */
  AccessForbidden: 403,
  // ---- 404: nothing there ----
  NotFound: 404,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NoSuchVersion: 404,
  NoSuchMember: 404,
  NoSuchChunk: 404,
  NoSuchSchema: 404,
  NoSuchField: 404,
  /** No remote store of that name (/admin/remotes, src/remotes/registry.ts). */
  NoSuchRemote: 404,
  /** The bucket has no origin (GET or DELETE /buckets/{b}/origin). */
  NoSuchOrigin: 404,
  /** GetBucketEncryption of a bucket with no default encryption. */
  ServerSideEncryptionConfigurationNotFoundError: 404,
  /** GetBucketTagging of a bucket with no tags. */
  NoSuchTagSet: 404,
  /** GetBucketCors of a bucket with no CORS configuration. */
  NoSuchCORSConfiguration: 404,
  /** GetBucketLifecycleConfiguration of a bucket with no lifecycle rules. */
  NoSuchLifecycleConfiguration: 404,
  // ---- other 4xx ----
  MethodNotAllowed: 405,
  /** A multipart part sent without Content-Length (S3's UploadPart needs it too). */
  MissingContentLength: 411,
  /** A client stopped sending a body it had started: S3 says 400, as AWS does. */
  RequestTimeout: { native: 408, s3: 400 },
  /** S3's answer to a client too slow sending its headers (slowloris): 408, as HTTP has it (the native API says RequestTimeout). */
  RequestHeaderTimeout: 408,
  Conflict: 409,
  BucketNotEmpty: 409,
  BucketAlreadyOwnedByYou: 409,
  /** Creating a bucket another access key owns (src/auth/guard.ts createVerdict). */
  BucketAlreadyExists: 409,
  /** A conditional write lost a race it may retry (src/metadata/consensus.ts). */
  ConditionalRequestConflict: 409,
  KeyRevoked: 409,
  MemberNotDead: 409,
  /** A query names a field whose index is still being built (src/search/). */
  IndexNotReady: 409,
  PreconditionFailed: 412,
  InvalidRange: 416,
  /** GET/HEAD ?partNumber past the object's last part. */
  InvalidPartNumber: 416,
  /** Too many requests: S3 answers 503 (what its SDKs back off on), the native API 429. */
  SlowDown: { native: 429, s3: 503 },
  // ---- 5xx: this side failed ----
  InternalError: 500,
  /** A stored chunk failed verification (it was quarantined). */
  ChunkCorrupt: 500,
  /** The peer cannot start: a port in use, a damaged file in its data folder (the CLI prints it on one line and exits 1). */
  StartupFailed: 500,
  NotImplemented: 501,
  /** A peer's reply broke its method's result schema (a buggy or hostile member). */
  MalformedReply: 502,
  /** A remote store (src/remotes/) failed, timed out or answered something unusable. */
  OriginError: 502,
  ServiceUnavailable: 503,
  PeerUnreachable: 503,
  ChunkUnavailable: 503,
  /** A write reached an index replica after readers of its bucket's change events had moved past its time (src/changes/gate.ts): retry it. */
  EventLate: 503,
  /** A peer serves at most `events.maxStreams` live event streams at once (src/changes/stream.ts). */
  TooManyStreams: 503,
} as const satisfies Record<string, Status>;

/** A machine-readable error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** Which API an error is answered on (their statuses differ for a few codes). */
export type Api = "native" | "s3";

type NativeStatusOf<C extends ErrorCode> = (typeof ERROR_STATUS)[C] extends { native: infer N } ? N : (typeof ERROR_STATUS)[C];
/** The codes whose (native) status is `S`: what each narrow class below may carry. */
export type CodeWithStatus<S extends number> = { [C in ErrorCode]: NativeStatusOf<C> extends S ? C : never }[ErrorCode];

/** True if `code` is one of ours (a code from a peer's reply is checked with this). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_STATUS, code);
}

/** The HTTP status `code` answers with on `api`. */
export function httpStatus(code: ErrorCode, api: Api = "native"): number {
  const s: Status = ERROR_STATUS[code];
  return typeof s === "number" ? s : s[api];
}

/** Options of any MeshError. */
export interface MeshErrorOptions {
  /** Response headers the error asks for (Content-Range on a 416, Retry-After on a 429/503). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** Base class: a failure a client or peer can be told about in plain words. */
export class MeshError extends Error {
  /** The (native API's) HTTP status, from ERROR_STATUS. */
  readonly status: number;
  /** Headers to send with the error response. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: MeshErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = code;
    this.status = httpStatus(code);
    this.headers = options.headers ?? {};
  }
}

/** The request was malformed (400). */
export class BadRequestError extends MeshError {
  constructor(message: string, code: CodeWithStatus<400> = "InvalidRequest") {
    super(code, message);
  }
}

/** No valid credentials came with the request (401). */
export class UnauthorizedError extends MeshError {
  constructor(message: string) {
    super("Unauthorized", message);
  }
}

/** The credentials are valid but do not allow this (403). */
export class ForbiddenError extends MeshError {
  constructor(message: string, code: CodeWithStatus<403> = "AccessDenied") {
    super(code, message);
  }
}

/** Something asked for does not exist (404). */
export class NotFoundError extends MeshError {
  constructor(message: string, code: CodeWithStatus<404> = "NotFound") {
    super(code, message);
  }
}

/** The request conflicts with the current state (409). */
export class ConflictError extends MeshError {
  constructor(message: string, code: CodeWithStatus<409> = "Conflict") {
    super(code, message);
  }
}

/** Not enough peers answered to meet a quorum (503): the client may retry. */
export class QuorumError extends MeshError {
  constructor(message: string) {
    super("ServiceUnavailable", message);
  }
}

/** A bad flag, environment variable or config value; the CLI prints it without a stack. */
export class ConfigError extends MeshError {
  constructor(message: string) {
    super("InvalidConfig", message);
  }
}

/** A command line that does not parse (an unknown flag or subcommand): the CLI adds where the help is. */
export class UsageError extends ConfigError {}

/**
 * The peer cannot start for a reason its operator must fix: a port in use, a corrupt or
 * unreadable file in the data folder. The message names the address or file and the
 * cause; the CLI prints it as one line and exits 1.
 */
export class StartupError extends MeshError {
  constructor(message: string) {
    super("StartupFailed", message);
  }
}

/**
 * An error returned by a remote peer over RPC. Its code comes off the wire: one this
 * peer does not know (a newer or a hostile peer) becomes InternalError, and the status
 * is always this peer's own for the code, whatever the reply claimed.
 */
export class RemoteError extends MeshError {
  constructor(code: string, message: string) {
    super(isErrorCode(code) ? code : "InternalError", isErrorCode(code) ? message : `${code.slice(0, 60)}: ${message}`);
  }
}

/**
 * Too many requests: a rate limit, the cap on requests in flight or the upload memory
 * budget. S3 answers 503 SlowDown (what its SDKs back off on), the native API 429; both
 * say in Retry-After when to come back.
 */
export class SlowDownError extends MeshError {
  constructor(
    message: string,
    /** Whole seconds the client should wait (at least 1). */
    readonly retryAfterSeconds = 1,
  ) {
    super("SlowDown", message, { headers: { "retry-after": String(retryAfterSeconds) } });
  }
}

/** The client stopped sending a request body it had started (S3: 400 RequestTimeout; native: 408). */
export class RequestTimeoutError extends MeshError {
  constructor(message: string) {
    super("RequestTimeout", message);
  }
}

/**
 * Bytes did not hash to what they were said to hash to: a chunk put under the wrong id
 * (`expected`/`actual` are then the two SHA-256s), or an upload whose Content-MD5 or
 * x-amz-checksum-* does not match.
 */
export class BadDigestError extends MeshError {
  readonly expected?: string;
  readonly actual?: string;
  constructor(message: string, digests?: { expected: string; actual: string }) {
    super("BadDigest", message);
    this.expected = digests?.expected;
    this.actual = digests?.actual;
  }
}
