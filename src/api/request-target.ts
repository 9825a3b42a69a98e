// The URL a raw HTTP/1.1 request is served as, checked before any router sees it. The
// request target and Host arrive as the client wrote them, and building a web Request
// from a bad one throws (a 500 before any handler ran): a Host of `a:b`, `%00` or port
// 99999, an absolute-form target (`GET http://x/y HTTP/1.1`, which a server must accept)
// or an authority-form one. A bad, missing or repeated Host is a 400, as RFC 9112 3.2 asks
// (node:http's own check answers that with an empty body, so it is turned off and done here).

/** The origin every request URL is built on; the routes read only the path and query. */
const ORIGIN = "http://localhost";

/** host (a name or IPv4 address, or a bracketed IPv6 address) and an optional port. */
const HOST = /^(?:[A-Za-z0-9._~-]*|\[[0-9A-Fa-f:.]+\])(?::(\d{0,5}))?$/;

/** A URL to serve the request as, or why the request cannot be served. */
export type Target = { url: string; problem?: undefined } | { url?: undefined; problem: string };

/** Check a request's Host header(s) and target (`rawHeaders` as node:http gives them). */
export function requestTarget(rawTarget: string | undefined, rawHeaders: string[], httpVersion: string): Target {
  const hosts: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === "host") hosts.push(rawHeaders[i + 1]);
  if (hosts.length > 1) return { problem: "more than one Host header" };
  if (hosts.length === 0 && httpVersion !== "1.0") return { problem: "an HTTP/1.1 request needs a Host header" };
  if (hosts.length === 1) {
    const m = HOST.exec(hosts[0].trim());
    if (!m || (m[1] !== undefined && m[1] !== "" && Number(m[1]) > 65535)) return { problem: "the Host header is not a valid host[:port]" };
  }
  const target = rawTarget ?? "";
  let path: string;
  if (target.startsWith("/")) path = target;
  else {
    // absolute-form: the path and query are what is served; the authority is not ours to check.
    const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
    if (!absolute) return { problem: "the request target must be a path (origin-form) or an absolute http URL" };
    path = target.slice(absolute[0].length);
    if (!path.startsWith("/")) path = "/" + path;
  }
  try {
    new URL(ORIGIN + path);
    return { url: ORIGIN + path };
  } catch {
    return { problem: "the request target is not a valid URL path" };
  }
}

/** The path of a request URL as received (still percent-encoded, never the query). */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return url.slice(start, q < 0 ? undefined : q);
}
