// Upload progress records: every upload (a PUT, or a multipart upload as a whole) gets a
// record under its token in the uploads shard, replicated like any index row, so every
// peer can answer `GET /uploads/{token}`. What it costs a PUT: nothing while its body is
// short (the first progress write waits for `progressIntervalMs` or `progressBytes`), then
// one awaited write of the final record (two rows of one shard: one batched round trip,
// awaited for at most RECORD_WAIT_MS), so a GET after the PUT's answer sees "success". Progress writes while a body streams are
// never awaited, and at most one is in flight; the final record is stamped after them, so
// it wins wherever they land. Expired records are swept by a small worker (src/repair/worker.ts).
import type { Logger } from "../util/log.ts";
import { mapLimit } from "../util/map-limit.ts";
import { createWorker, type Worker, type WorkerStatus } from "../repair/worker.ts";
import { uploadAgeRow, uploadTokenPartRow, uploadTokenPartsPrefix, uploadTokenRow, UPLOADS_BY_AGE_PREFIX } from "../metadata/keys.ts";
import { DEFAULT_UPLOAD_RECORDS, expiresAtMs, failureOf, viewAt, withParts, type PartProgress, type StoredUpload, type UploadRecordsConfig, type UploadView } from "./records.ts";

/** The rows the records live in (rows.ts: the replicated index, or one local store in tests). */
export interface RecordRows {
  /** Write rows of the uploads shard together (null deletes); resolves once each is acknowledged. */
  write(rows: Array<[row: string, value: StoredUpload | PartProgress | null]>): Promise<void>;
  /** The newest value of a row, or null. */
  read(row: string): Promise<unknown>;
  /** Live rows starting with `prefix`, after row `after`, in row order, at most `limit`. */
  list(prefix: string, limit: number, after?: string): Promise<Array<[row: string, value: unknown]>>;
  /** This peer's own copies of such rows, deleted ones included (the sweep). */
  local(prefix: string, limit: number, after?: string): Promise<Array<[row: string, value: unknown]>>;
}

/** One upload being received: counts its bytes, reports them now and then, and records how it ends. */
export interface UploadSession {
  readonly token: string;
  /** The body, counted as it is read (null stays null). */
  watch(body: ReadableStream<Uint8Array> | null): ReadableStream<Uint8Array> | null;
  /** The upload was acknowledged with `size` bytes: resolves once the record says so (or after RECORD_WAIT_MS). */
  succeed(size: number): Promise<void>;
  /** The upload failed (`clientGone`: its client disconnected); also after `succeed` was written beside a write that then failed. */
  fail(err: unknown, clientGone: boolean): Promise<void>;
}

/** Upload records as one peer keeps them. */
export interface UploadRecords {
  /** Track a single-body upload (nothing is written until it has run a while, or ends). */
  begin(token: string, bucket: string, key: string, size?: number): UploadSession;
  /** A multipart upload started: its record is written before this resolves. */
  beginMultipart(token: string, bucket: string, key: string, uploadId: string): Promise<void>;
  /** Track one part of multipart upload `uploadId`, whose record is `token`. */
  beginPart(token: string, uploadId: string, partNumber: number): UploadSession;
  /** Multipart upload `uploadId` ended: completed with `size` bytes, or failed (aborted, expired); never throws. */
  endMultipart(token: string, uploadId: string, outcome: { size: number } | { error: string }): Promise<void>;
  /** The record of `token` as it reads now, or null (none, or expired). */
  get(token: string): Promise<UploadView | null>;
  /** The newest records whose bucket `visible` accepts, newest first (at most `limit`; MAX_LIST_SCAN rows read). */
  list(limit: number, visible: (bucket: string) => boolean): Promise<UploadView[]>;
  /** The sweep worker's figures. */
  sweepStatus(): WorkerStatus;
  start(): void;
  stop(): Promise<void>;
}

/** Dependencies of the records. */
export interface UploadRecordsDeps {
  rows: RecordRows;
  log: Logger;
  config?: Partial<UploadRecordsConfig>;
  /** Wall clock in ms (tests inject one). */
  clock?: () => number;
  /** The peer's signal: the sweep stops with it. */
  signal?: AbortSignal;
  /**
   * Is multipart upload `uploadId` still open (objects/multipart.ts)? An upload can end
   * without its record hearing of it (its bucket deleted, an end record that could not be
   * written): a resting record whose upload is gone reads as failed, and an open one is
   * never swept.
   */
  uploadOpen?(bucket: string, key: string, uploadId: string): Promise<boolean>;
}

/**
 * Longest an upload's answer waits for a record write (the write goes on after): all
 * records share one shard, and a slow replica of it must not hold uploads up longer.
 */
export const RECORD_WAIT_MS = 1000;

/** Settles when `p` does or after `ms`, whichever is first; the timer never keeps the process up. */
function atMost(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void p.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Most record rows one listing reads, however few of them the caller may see. */
export const MAX_LIST_SCAN = 1000;
/** Rows per listing round, and per sweep step. */
const PAGE = 100;
/** Most parts a multipart record folds in (S3's limit on parts). */
const MAX_PARTS = 10_000;
/** Multipart records whose parts one listing reads at once. */
const PARTS_CONCURRENCY = 4;

/** Create the upload records of one peer. */
export function createUploadRecords(deps: UploadRecordsDeps): UploadRecords {
  const cfg: UploadRecordsConfig = { ...DEFAULT_UPLOAD_RECORDS, ...deps.config };
  const clock = deps.clock ?? Date.now;
  const { rows, log } = deps;

  /** Write a record under its token and in age order. */
  const put = (r: StoredUpload) => rows.write([[uploadTokenRow(r.token), r], [uploadAgeRow(r.startedMs, r.token), r]]);
  /** Writes whose failure must not fail the upload: logged, not thrown. */
  const quietly = (what: string, p: Promise<void>) => p.catch((err: unknown) => log.debug(`upload record ${what}: ${(err as Error).message}`));
  /** A write an upload's answer waits for: never failing it, and never holding it up past RECORD_WAIT_MS. */
  const awaited = (what: string, p: Promise<void>) => atMost(quietly(what, p), RECORD_WAIT_MS);

  /**
   * A session that counts bytes and writes `report(bytes)` at most every interval or every
   * `progressBytes`, never awaited, one at a time; `finish` writes the final row, awaited.
   */
  function session(token: string, report: (bytes: number) => Promise<void>, finish: (bytes: number, outcome: { size: number } | { error: string }) => Promise<void>): UploadSession {
    let bytes = 0;
    let lastMs = clock();
    let lastBytes = 0;
    let inFlight = false;
    let ended: "success" | "fail" | undefined;
    const tick = () => {
      if (inFlight || ended) return;
      const now = clock();
      if (now - lastMs < cfg.progressIntervalMs && bytes - lastBytes < cfg.progressBytes) return;
      lastMs = now;
      lastBytes = bytes;
      inFlight = true;
      void quietly("progress", report(bytes)).finally(() => (inFlight = false));
    };
    const end = (outcome: { size: number } | { error: string }) => {
      const to = "size" in outcome ? "success" : "fail";
      // Only a failure may follow a success (written beside a write that then failed); it is stamped later, so it wins.
      if (ended === "fail" || (ended === "success" && to === "success")) return Promise.resolve();
      ended = to;
      return awaited("end", finish(bytes, outcome));
    };
    return {
      token,
      watch(body) {
        if (!body) return body;
        return body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(piece, out) {
              bytes += piece.byteLength;
              tick();
              out.enqueue(piece);
            },
          }),
        );
      },
      succeed: (size) => end({ size }),
      fail: (err, clientGone) => end({ error: failureOf(err, clientGone) }),
    };
  }

  /** A multipart record with its parts folded in. */
  async function resolveParts(r: StoredUpload): Promise<StoredUpload> {
    if (!r.uploadId || r.state !== "inprogress") return r;
    const parts = await rows.list(uploadTokenPartsPrefix(r.token), MAX_PARTS);
    return withParts(r, parts.map(([, v]) => v as PartProgress));
  }

  /**
   * A stored record with its parts, as it reads now. A multipart record idle for stallMs
   * asks whether its upload is still open: open, it is in progress however long it rests;
   * gone without the record hearing (its bucket deleted, an end that could not be
   * recorded), it reads as failed.
   */
  async function settled(stored: StoredUpload): Promise<UploadView | null> {
    const r = await resolveParts(stored);
    if (!r.uploadId || r.state !== "inprogress" || !deps.uploadOpen || clock() - r.updatedMs < cfg.stallMs) return viewAt(r, clock(), cfg);
    if (await deps.uploadOpen(r.bucket, r.key, r.uploadId).catch(() => true)) {
      const { updatedMs: _, ...open } = r;
      return open;
    }
    return viewAt({ ...r, state: "fail", finishedMs: r.updatedMs, error: "the upload ended unrecorded (its bucket was deleted, or its end could not be recorded)" }, clock(), cfg);
  }

  // ---- The sweep: records past their time, oldest first, a page per step ----
  async function* sweep(signal: AbortSignal): AsyncGenerator<number> {
    const now = clock();
    // Records started before now - ttl sort after this row; only they can have expired.
    let after = uploadAgeRow(now - cfg.ttlMs, "");
    for (;;) {
      signal.throwIfAborted();
      const page = await rows.local(UPLOADS_BY_AGE_PREFIX, PAGE, after);
      for (const [row, value] of page) {
        let r = value as StoredUpload | null;
        if (!r || expiresAtMs(r, cfg.ttlMs) > now) continue;
        // A multipart upload's latest activity is in its part rows, and one still open keeps its record.
        if (r.uploadId && r.state === "inprogress") {
          r = await resolveParts(r);
          if (expiresAtMs(r, cfg.ttlMs) > now) continue;
          if (r.uploadId && deps.uploadOpen && (await deps.uploadOpen(r.bucket, r.key, r.uploadId).catch(() => true))) continue;
        }
        const gone: Array<[string, null]> = [[row, null]];
        // The token's row, unless the token was used again since.
        const current = (await rows.read(uploadTokenRow(r.token))) as StoredUpload | null;
        if (current && current.startedMs === r.startedMs) gone.push([uploadTokenRow(r.token), null]);
        if (r.uploadId) {
          for (const [partRow, v] of await rows.local(uploadTokenPartsPrefix(r.token), MAX_PARTS)) {
            const part = v as PartProgress | null;
            // Not the parts of a newer upload under the same token.
            if (part !== null && (part.uploadId === undefined || part.uploadId === r.uploadId)) gone.push([partRow, null]);
          }
        }
        await rows.write(gone);
      }
      yield page.length;
      if (page.length < PAGE) return;
      after = page[page.length - 1][0];
    }
  }
  const worker: Worker = createWorker("upload-records", { pass: sweep }, { intervalMs: cfg.sweepIntervalMs, log, signal: deps.signal });

  return {
    begin(token, bucket, key, size) {
      const startedMs = clock();
      const record = (state: StoredUpload["state"], bytes: number): StoredUpload => ({ token, bucket, key, state, bytesReceived: bytes, ...(size !== undefined ? { size } : {}), startedMs, updatedMs: clock() });
      return session(
        token,
        (bytes) => put(record("inprogress", bytes)),
        (bytes, outcome) => {
          const at = clock();
          if ("size" in outcome) return put({ ...record("success", outcome.size), size: outcome.size, finishedMs: at });
          return put({ ...record("fail", bytes), finishedMs: at, error: outcome.error });
        },
      );
    },

    async beginMultipart(token, bucket, key, uploadId) {
      const now = clock();
      await awaited("start", put({ token, bucket, key, state: "inprogress", bytesReceived: 0, startedMs: now, updatedMs: now, uploadId }));
    },

    beginPart(token, uploadId, partNumber) {
      const row = uploadTokenPartRow(token, partNumber);
      const part = (bytes: number, done: boolean, error?: string): PartProgress => ({ uploadId, bytes, updatedMs: clock(), done, ...(error ? { error: `part ${partNumber}: ${error}` } : {}) });
      return session(
        token,
        (bytes) => rows.write([[row, part(bytes, false)]]),
        // A failed part counts for nothing: the client may send it again.
        (_bytes, outcome) => rows.write([[row, "size" in outcome ? part(outcome.size, true) : part(0, false, outcome.error)]]),
      );
    },

    // The upload itself has ended by now: a record that cannot be read or written must not fail it.
    endMultipart: (token, uploadId, outcome) =>
      awaited(
        "end",
        (async () => {
          const r = (await rows.read(uploadTokenRow(token))) as StoredUpload | null;
          if (!r || r.state !== "inprogress" || r.uploadId !== uploadId) return;
          const at = clock();
          if ("size" in outcome) await put({ ...r, state: "success", bytesReceived: outcome.size, size: outcome.size, updatedMs: at, finishedMs: at });
          else await put({ ...(await resolveParts(r)), state: "fail", updatedMs: at, finishedMs: at, error: outcome.error });
        })(),
      ),

    async get(token) {
      const r = (await rows.read(uploadTokenRow(token))) as StoredUpload | null;
      return r ? settled(r) : null;
    },

    async list(limit, visible) {
      const found: StoredUpload[] = [];
      let after: string | undefined;
      for (let scanned = 0; found.length < limit && scanned < MAX_LIST_SCAN; ) {
        const page = await rows.list(UPLOADS_BY_AGE_PREFIX, Math.min(PAGE, MAX_LIST_SCAN - scanned), after);
        scanned += page.length;
        for (const [, value] of page) {
          const r = value as StoredUpload;
          if (found.length < limit && visible(r.bucket)) found.push(r);
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1][0];
      }
      const views = await mapLimit(found, PARTS_CONCURRENCY, settled);
      return views.filter((v): v is UploadView => v !== null);
    },

    sweepStatus: () => worker.status(),
    start: () => worker.start(),
    stop: () => worker.stop(),
  };
}
