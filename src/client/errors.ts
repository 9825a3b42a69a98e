// The client's two kinds of failure: a usage error (exit 2: a bad command line, told in one
// line with a pointer to --help) and a failed call to a peer (exit 1), which carries the
// peer's machine-readable code when it gave one.

/** A mistake in the command line: unknown command or flag, missing or extra argument. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A call the peer refused (its status and code), or a peer that could not be reached (status 0). */
export class ClientError extends Error {
  override name = "ClientError";
  constructor(
    message: string,
    readonly code: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

/** A failure as one short line and a code, whatever was thrown. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof ClientError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: (err as NodeJS.ErrnoException).code ?? err.name, message: err.message };
  return { code: "Error", message: String(err) };
}
