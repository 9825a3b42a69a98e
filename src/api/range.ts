// HTTP Range for a single byte range (RFC 9110): `bytes=a-b`, `bytes=a-`, `bytes=-n`.

/**
 * The half-open span [start, end) a Range header asks for, undefined to serve the whole
 * object (no header, or a form we do not serve such as several ranges), or
 * "unsatisfiable" (416).
 */
export function parseRange(header: string | null, size: number): [number, number] | undefined | "unsatisfiable" {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return [Math.max(0, size - suffix), size];
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return "unsatisfiable";
  if (last < start) return undefined; // a-b with b < a is invalid syntax: ignore the header
  return [start, last + 1];
}
