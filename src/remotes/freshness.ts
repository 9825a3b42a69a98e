// How long a copy fetched from an origin stays fresh, from the origin's own headers as a
// shared cache reads them (RFC 9111): `no-store` and `private` are served but never kept;
// `s-maxage` wins over `max-age`, which wins over `Expires`; `no-cache` keeps the copy but
// makes every read revalidate it; without any of them, the bucket's default TTL.

/** What to do with a response. */
export interface Freshness {
  /** False: serve it, keep nothing. */
  store: boolean;
  /** How long the kept copy is fresh. */
  ttlMs: number;
}

/** Directives of a Cache-Control value, names lowercased (`max-age` -> "60", `no-store` -> ""). */
function directives(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (value ?? "").split(",")) {
    const [name, ...rest] = part.trim().split("=");
    if (name) out.set(name.toLowerCase(), rest.join("=").trim().replace(/^"|"$/g, ""));
  }
  return out;
}

/** Seconds of a delta-seconds directive, or undefined if absent or not a number. */
function seconds(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** The freshness of a response with these headers, fetched at `nowMs`. */
export function freshnessOf(cacheControl: string | undefined, expires: string | undefined, defaultTtlSeconds: number, nowMs: number): Freshness {
  const cc = directives(cacheControl);
  if (cc.has("no-store") || cc.has("private")) return { store: false, ttlMs: 0 };
  if (cc.has("no-cache")) return { store: true, ttlMs: 0 };
  const age = seconds(cc.get("s-maxage")) ?? seconds(cc.get("max-age"));
  if (age !== undefined) return { store: true, ttlMs: age * 1000 };
  if (expires !== undefined) {
    const at = Date.parse(expires);
    // An invalid date ("0") means already expired, as RFC 9111 says.
    return { store: true, ttlMs: Number.isFinite(at) ? Math.max(0, at - nowMs) : 0 };
  }
  return { store: true, ttlMs: defaultTtlSeconds * 1000 };
}
