// One line for an address the peer cannot listen on, for the p2p (libp2p) and the HTTP
// listeners alike: which address, the errno code, and the flag that picks another.
// libp2p reports failed listen addresses only inside its error's message
// ("  /ip4/127.0.0.1/tcp/7400: Error: listen EADDRINUSE: ..."), so that text is read.
import { StartupError } from "../errors.ts";

const WHY: Record<string, string> = {
  EADDRINUSE: "is in use",
  EADDRNOTAVAIL: "is not an address of this host",
  EACCES: "needs more privileges than this user has",
};

function oneLine(what: string, address: string, code: string, flag: string): StartupError {
  return new StartupError(`the ${what} address ${address} ${WHY[code] ?? "cannot be listened on"} (${code}); pick another with ${flag}`);
}

/** The errno code in `text` (EADDRINUSE, ...), if any. */
function errnoIn(text: string): string | undefined {
  return /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES|E[A-Z]{3,})\b/.exec(text)?.[1];
}

/** A libp2p start failure as one StartupError per the first failed listen address; other errors unchanged. */
export function p2pListenError(err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  for (const line of message.split("\n")) {
    const m = /^\s*(\/\S+): (.*)$/.exec(line);
    const code = m && errnoIn(m[2]);
    if (m && code) return oneLine("p2p", m[1], code, "--p2p");
  }
  return err;
}

/** A failed HTTP listen on `address` (HOST:PORT) as a StartupError; `flag` is --http or --s3. */
export function httpListenError(err: unknown, address: string, flag: string): unknown {
  const e = err as NodeJS.ErrnoException | undefined;
  const message = err instanceof Error ? err.message : String(err);
  // Bun's node:http says "Failed to start server. Is port N in use?" with code EADDRINUSE.
  const code = typeof e?.code === "string" ? e.code : errnoIn(message) ?? (/in use/i.test(message) ? "EADDRINUSE" : undefined);
  return code ? oneLine(flag === "--s3" ? "S3" : "HTTP", address, code, flag) : err;
}
