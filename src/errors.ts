// Named errors. Each carries an S3-style machine-readable code and the HTTP status the
// API maps it to (src/api/errors.ts does the mapping, in one place).

/** Base class: a failure a client or peer can be told about in plain words. */
export class MeshError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 500,
  ) {
    super(message);
    this.name = code;
  }
}

/** The request was malformed (400). */
export class BadRequestError extends MeshError {
  constructor(message: string, code = "InvalidRequest") {
    super(code, message, 400);
  }
}

/** No valid credentials came with the request (401). */
export class UnauthorizedError extends MeshError {
  constructor(message: string, code = "Unauthorized") {
    super(code, message, 401);
  }
}

/** The credentials are valid but do not allow this (403). */
export class ForbiddenError extends MeshError {
  constructor(message: string, code = "AccessDenied") {
    super(code, message, 403);
  }
}

/** Something asked for does not exist (404). */
export class NotFoundError extends MeshError {
  constructor(message: string, code = "NotFound") {
    super(code, message, 404);
  }
}

/** The request conflicts with the current state (409). */
export class ConflictError extends MeshError {
  constructor(message: string, code = "Conflict") {
    super(code, message, 409);
  }
}

/** Not enough peers answered to meet a quorum (503): the client may retry. */
export class QuorumError extends MeshError {
  constructor(message: string) {
    super("ServiceUnavailable", message, 503);
  }
}

/** A bad flag, environment variable or config value; the CLI prints it without a stack. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** An error returned by a remote peer over RPC. */
export class RemoteError extends MeshError {
  constructor(code: string, message: string, status = 502) {
    super(code, message, status);
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
    super("SlowDown", message, 503);
  }
}

/** The client stopped sending a request body it had started (S3: 400 RequestTimeout; native: 408). */
export class RequestTimeoutError extends MeshError {
  constructor(message: string) {
    super("RequestTimeout", message, 400);
  }
}
