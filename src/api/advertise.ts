// The URLs a peer tells others (its ready line, /cluster/peers) for its HTTP and S3 APIs.
import { reachableAddrs } from "../net/addresses.ts";

/**
 * The URL other hosts reach a server on: the one given with --advertise-*, else its bound
 * address; a wildcard bind (0.0.0.0 or ::) takes the host of this peer's first p2p address
 * that other hosts can reach, since that is how its partners reach it already.
 */
export function advertisedUrl(explicit: string | undefined, host: string, port: number, p2pAddrs: string[]): string {
  if (explicit) return explicit.replace(/\/$/, "");
  let h = host;
  if (host === "0.0.0.0" || host === "::") {
    const ip = reachableAddrs(p2pAddrs).map((a) => /^\/ip[46]\/([^/]+)\//.exec(a)?.[1]).find((x) => x !== undefined);
    h = ip ?? "127.0.0.1";
  }
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`;
}
