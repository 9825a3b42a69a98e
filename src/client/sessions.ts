// Upload session files for `cp --continue`: one small JSON file per multipart upload in
// progress, named by a hash of what makes it the same upload (the source's path, size and
// modification time, and the destination), so a changed file never resumes an old upload.
// A file is written when the upload starts and after every acknowledged part, removed when
// the upload completes; files older than a week are deleted whenever a new one is written.
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { writePrivateFile } from "../util/private-file.ts";
import { ensureConfigDir } from "./config.ts";

/** A part the server acknowledged. */
export interface SessionPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** One multipart upload in progress. */
export interface UploadSession {
  version: 1;
  source: string;
  size: number;
  mtimeMs: number;
  url: string;
  bucket: string;
  key: string;
  uploadId: string;
  uploadToken: string;
  partSize: number;
  createdMs: number;
  parts: SessionPart[];
}

/** Session files older than this are deleted when a new one is written. */
export const SESSION_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** At most this many session files are kept (the oldest go first). */
export const SESSION_MAX_FILES = 200;

/** The id of the session for this source and destination. */
export function sessionId(src: { source: string; size: number; mtimeMs: number }, dst: { url: string; bucket: string; key: string }): string {
  return createHash("sha256")
    .update(JSON.stringify([path.resolve(src.source), src.size, Math.floor(src.mtimeMs), dst.url, dst.bucket, dst.key]))
    .digest("hex")
    .slice(0, 32);
}

/** The session store in `dir` (the config folder's sessions/). */
export function sessionStore(dir: string, now: () => number = Date.now) {
  const file = (id: string) => path.join(dir, `${id}.json`);
  return {
    dir,
    /** The session with this id, or undefined (a file that is not a session counts as none). */
    async load(id: string): Promise<UploadSession | undefined> {
      try {
        const s = JSON.parse(await readFile(file(id), "utf8")) as UploadSession;
        return s.version === 1 && typeof s.uploadId === "string" && Array.isArray(s.parts) ? s : undefined;
      } catch {
        return undefined;
      }
    },
    /** Write a session (0600, whole or not at all). A new one first prunes old files. */
    async save(id: string, session: UploadSession, isNew = false): Promise<void> {
      await ensureConfigDir(dir);
      if (isNew) await this.prune();
      await writePrivateFile(file(id), JSON.stringify(session) + "\n");
    },
    async remove(id: string): Promise<void> {
      await rm(file(id), { force: true });
    },
    /** Delete sessions older than SESSION_MAX_AGE_MS, and the oldest past SESSION_MAX_FILES. */
    async prune(): Promise<number> {
      let names: string[];
      try {
        names = (await readdir(dir)).filter((n) => n.endsWith(".json"));
      } catch {
        return 0;
      }
      const aged = await Promise.all(names.map(async (n) => ({ n, mtime: (await stat(path.join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
      aged.sort((a, b) => b.mtime - a.mtime);
      const doomed = aged.filter((f, i) => now() - f.mtime > SESSION_MAX_AGE_MS || i >= SESSION_MAX_FILES - 1);
      await Promise.all(doomed.map((f) => rm(path.join(dir, f.n), { force: true })));
      return doomed.length;
    },
  };
}

export type SessionStore = ReturnType<typeof sessionStore>;
