// Upload progress records, the pure part: what a record holds, what a client's token may
// look like, and how a stored record reads at a given time (a silent upload is "stalled",
// an old one is gone). The service that writes and reads them is service.ts.
import crypto from "node:crypto";
import { BadRequestError } from "../errors.ts";

/** The header a client names its upload with, and in which every upload's token comes back. */
export const UPLOAD_TOKEN_HEADER = "x-upload-token";

/** What a token may look like: URL- and row-safe, long enough not to collide by accident. */
const TOKEN_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** The state of an upload as clients see it. */
export type UploadState = "inprogress" | "fail" | "success";

/** An upload's record as stored (under its token and in newest-first order). */
export interface StoredUpload {
  token: string;
  bucket: string;
  key: string;
  state: UploadState;
  bytesReceived: number;
  /** The body's declared length, or the object's size once known. */
  size?: number;
  startedMs: number;
  /** Last time the record was written while the upload ran (a stall is measured from it). */
  updatedMs: number;
  finishedMs?: number;
  error?: string;
  /** A multipart upload's id: its parts report under the token (PartProgress). */
  uploadId?: string;
}

/** A multipart upload's part as it reports under its upload's token. */
export interface PartProgress {
  /** The multipart upload the part belongs to: a token used again for a new upload keeps the old upload's parts out. */
  uploadId?: string;
  bytes: number;
  updatedMs: number;
  done: boolean;
  error?: string;
}

/** A record as `GET /uploads/{token}` answers it. */
export type UploadView = Omit<StoredUpload, "updatedMs">;

/** Timings of the records. */
export interface UploadRecordsConfig {
  /** Write a running upload's bytes at most this often... */
  progressIntervalMs: number;
  /** ...or after this many more bytes, whichever comes first. */
  progressBytes: number;
  /** A running upload with no update for this long reads as failed ("stalled"). */
  stallMs: number;
  /** A record is kept this long after its upload ends (or last moved). */
  ttlMs: number;
  /** Pause between sweeps of expired records. */
  sweepIntervalMs: number;
}

/** Production timings. */
export const DEFAULT_UPLOAD_RECORDS: UploadRecordsConfig = {
  progressIntervalMs: 1000,
  progressBytes: 8 * 1024 * 1024,
  stallMs: 60_000,
  ttlMs: 24 * 60 * 60 * 1000,
  sweepIntervalMs: 10 * 60 * 1000,
};

/** A new token: 128 random bits, base64url (22 characters). */
export function newUploadToken(): string {
  return crypto.randomBytes(16).toString("base64url");
}

/** Throw 400 InvalidArgument unless `token` is a usable token. */
export function validateUploadToken(token: string): string {
  if (!TOKEN_RE.test(token)) {
    throw new BadRequestError(`invalid ${UPLOAD_TOKEN_HEADER} "${token.slice(0, 80)}": use 8 to 64 letters, digits, "_" or "-"`, "InvalidArgument");
  }
  return token;
}

/** The token a request names (validated), or undefined when it names none. */
export function requestedToken(headers: Headers): string | undefined {
  const raw = headers.get(UPLOAD_TOKEN_HEADER);
  return raw === null ? undefined : validateUploadToken(raw);
}

/** When a record stops being kept: `ttlMs` after its upload ended, or last moved. */
export function expiresAtMs(r: StoredUpload, ttlMs: number): number {
  return (r.finishedMs ?? r.updatedMs) + ttlMs;
}

/**
 * A stored record as it reads at `nowMs`: null once expired; a running upload silent for
 * `stallMs` reads as failed (its peer died or lost its client without a word).
 */
export function viewAt(r: StoredUpload, nowMs: number, cfg: Pick<UploadRecordsConfig, "stallMs" | "ttlMs">): UploadView | null {
  if (nowMs >= expiresAtMs(r, cfg.ttlMs)) return null;
  const { updatedMs, ...view } = r;
  // A multipart upload may rest between parts for as long as it stays open (cp --continue
  // the next day): it ends by completion, abort or expiry, never by silence.
  if (r.state === "inprogress" && !r.uploadId && nowMs - updatedMs >= cfg.stallMs) {
    return { ...view, state: "fail", error: `stalled: no progress for ${Math.round((nowMs - updatedMs) / 1000)} s` };
  }
  return view;
}

/** A multipart record with its parts folded in: bytes so far, latest activity, latest part error. */
export function withParts(r: StoredUpload, parts: PartProgress[]): StoredUpload {
  if (r.state !== "inprogress" || parts.length === 0) return r;
  let bytes = 0;
  let updatedMs = r.updatedMs;
  let latestError: { atMs: number; error: string } | undefined;
  for (const p of parts) {
    if (p.uploadId !== undefined && p.uploadId !== r.uploadId) continue;
    bytes += p.bytes;
    updatedMs = Math.max(updatedMs, p.updatedMs);
    if (p.error && (!latestError || p.updatedMs > latestError.atMs)) latestError = { atMs: p.updatedMs, error: p.error };
  }
  return { ...r, bytesReceived: bytes, updatedMs, ...(latestError ? { error: latestError.error } : {}) };
}

/** Why an upload failed, in one line for its record. */
export function failureOf(err: unknown, clientGone: boolean): string {
  if (clientGone) return "the client disconnected before the upload was complete";
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === "string" ? e.message : String(err);
  return (typeof e?.code === "string" ? `${e.code}: ${message}` : message).slice(0, 300);
}
