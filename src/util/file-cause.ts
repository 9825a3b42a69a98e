// Why a file could not be used, in a few words for a one-line startup error: the errno
// code people search for, without the path Node repeats in its own message.

const WORDS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "a folder where a file should be",
  ENOTDIR: "a file where a folder should be",
  EIO: "input/output error",
  ENOSPC: "no space left on the device",
  EROFS: "read-only file system",
};

/** "permission denied (EACCES)" for an errno error; otherwise the error's first message line. */
export function fileCause(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && WORDS[code]) return `${WORDS[code]} (${code})`;
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0];
}
