// Version ids of a versioned bucket (S3 ids are opaque strings). An id is the write's HLC
// stamp turned upside down: 13 digits of MAX_WALL - wall, 6 hex digits of MAX_LOGICAL -
// logical, then the node with each character mirrored in a 64-character alphabet, and "~".
// Plain string order of ids is then the reverse of stamp order, so a key's version rows
// ("...\0<id>", src/metadata/keys.ts) list newest first, and two writes that last-writer-wins
// orders one way are listed the other way round, tie-breaking node included. The closing
// "~" sorts above every alphabet character, so a node id that is a prefix of another still
// orders as its stamp does. Every character is unreserved in URLs.
import { BadRequestError } from "../errors.ts";
import { decodeTimestamp, MAX_LOGICAL, MAX_WALL } from "../util/hlc.ts";

/** The alphabet nodes are mirrored in, in ASCII order. */
const ALPHABET = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
const MIRROR = new Map([...ALPHABET].map((c, i) => [c, ALPHABET[ALPHABET.length - 1 - i]]));

/** The version id of the version S3 calls "null" (written while versioning is suspended, or before it was ever enabled). */
export const NULL_VERSION = "null";

/** What a version id looks like (NULL_VERSION aside); longest accepted: a 13+6 prefix and a node of up to 160 characters. */
const VERSION_ID_RE = /^[0-9]{13}[0-9a-f]{6}[-.0-9A-Z_a-z]{1,160}~$/;

/**
 * The order of a write stamped `ts` among its key's versions: its version id when
 * versioning is enabled, the place of a "null" version otherwise. Newest sorts first.
 */
export function versionOrder(ts: string): string {
  const t = decodeTimestamp(ts);
  let node = "";
  for (const c of t.node) {
    const m = MIRROR.get(c);
    // Peer ids are base58; a node outside the alphabet (none in a real mesh) is hexed first, which keeps ids unique.
    if (m === undefined) return versionOrder(`${ts.slice(0, 21)}${Buffer.from(t.node).toString("hex")}`);
    node += m;
  }
  return `${String(MAX_WALL - t.wall).padStart(13, "0")}${(MAX_LOGICAL - t.logical).toString(16).padStart(6, "0")}${node}~`;
}

/** Is `id` a version id this store could have made (or "null")? */
export const isVersionId = (id: string): boolean => id === NULL_VERSION || VERSION_ID_RE.test(id);

/** Throw S3's InvalidArgument unless `id` is a well-formed version id. */
export function checkVersionId(id: string): void {
  if (!isVersionId(id)) throw new BadRequestError("Invalid version id specified", "InvalidArgument");
}

/** When a version (not "null") was written, in epoch ms, from its id. */
export const versionTimeMs = (id: string): number => MAX_WALL - Number(id.slice(0, 13));
