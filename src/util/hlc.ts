/**
 * Hybrid logical clock (Kulkarni et al.) for last-writer-wins ordering of metadata across peers.
 *
 * A timestamp stays close to wall-clock time but is strictly monotonic per node and
 * respects causality: after observe(t), every later now() is greater than t.
 */
import { MeshError } from "../errors.ts";

/** An HLC timestamp: wall-clock ms plus a logical counter, plus a node id tie-breaker. */
export interface Timestamp {
  /** Wall-clock milliseconds since the Unix epoch (integer, 0..MAX_WALL). */
  wall: number;
  /** Counter ordering events within the same wall ms (integer, 0..MAX_LOGICAL). */
  logical: number;
  /** Id of the issuing node; breaks ties between equal (wall, logical). Non-empty. */
  node: string;
}

/** Largest encodable wall value (13 decimal digits, year 2286). */
export const MAX_WALL = 9_999_999_999_999;
/** Largest encodable logical counter (6 hex digits). */
export const MAX_LOGICAL = 0xffffff;

/**
 * How far ahead of a peer's wall clock another peer's timestamp may be: the clock drift
 * allowed between members. Beyond it observe() refuses a timestamp and the index refuses
 * the row (src/metadata/index-client.ts), so neither a bad clock nor a hostile member can
 * stamp a row that outranks every write made for hours, or years, to come.
 */
export const MAX_CLOCK_DRIFT_MS = 60_000;

/** Thrown by observe() when a remote timestamp is too far ahead of the local wall clock. */
export class ClockDriftError extends MeshError {
  /** How far (ms) the remote timestamp is ahead of the local clock. */
  readonly driftMs: number;
  constructor(driftMs: number, maxDriftMs: number) {
    super("ClockDrift", `remote timestamp is ${driftMs} ms ahead of the local clock (max ${maxDriftMs} ms)`);
    this.driftMs = driftMs;
  }
}

/** Throw a TypeError unless t is a well-formed, encodable timestamp. */
export function assertTimestamp(t: Timestamp): void {
  if (
    typeof t !== "object" ||
    t === null ||
    !Number.isInteger(t.wall) ||
    t.wall < 0 ||
    t.wall > MAX_WALL ||
    !Number.isInteger(t.logical) ||
    t.logical < 0 ||
    t.logical > MAX_LOGICAL ||
    typeof t.node !== "string" ||
    t.node.length === 0
  ) {
    throw new TypeError(`invalid HLC timestamp: ${JSON.stringify(t)}`);
  }
}

/** Total order: wall, then logical, then node (UTF-16 code unit order, same as string sort). */
export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return 0;
}

/** Encode as "<13-digit wall>-<6-hex logical>-<node>"; plain string comparison of encodings matches compareTimestamps. */
export function encodeTimestamp(t: Timestamp): string {
  assertTimestamp(t);
  return `${String(t.wall).padStart(13, "0")}-${t.logical.toString(16).padStart(6, "0")}-${t.node}`;
}

// Fixed-width fields first, so the node (which may itself contain '-') is simply the rest.
const ENCODED = /^(\d{13})-([0-9a-f]{6})-([\s\S]+)$/;

/** Decode a string produced by encodeTimestamp (throws TypeError on malformed input). */
export function decodeTimestamp(s: string): Timestamp {
  const m = typeof s === "string" ? ENCODED.exec(s) : null;
  if (!m) throw new TypeError(`invalid encoded HLC timestamp: ${JSON.stringify(s)}`);
  return { wall: Number(m[1]), logical: parseInt(m[2]!, 16), node: m[3]! };
}

/** A hybrid logical clock owned by one node. */
export interface Hlc {
  /** This clock's node id. */
  readonly node: string;
  /** A new timestamp for a local event, strictly greater than every timestamp this clock issued or observed. */
  now(): Timestamp;
  /** Merge a timestamp received from another node; throws ClockDriftError if it is more than maxDriftMs ahead of the local wall clock. */
  observe(remote: Timestamp): void;
}

/** How many ms the encoded timestamp `ts` is ahead of `nowMs` (negative when behind, Infinity when malformed). */
export function msAhead(ts: string, nowMs: number): number {
  const m = typeof ts === "string" ? ENCODED.exec(ts) : null;
  return m ? Number(m[1]) - nowMs : Infinity;
}

/** Create a hybrid logical clock for `node` (clock defaults to Date.now, maxDriftMs to MAX_CLOCK_DRIFT_MS). */
export function createHlc(node: string, opts: { clock?: () => number; maxDriftMs?: number } = {}): Hlc {
  if (typeof node !== "string" || node.length === 0) throw new TypeError("HLC node id must be a non-empty string");
  const clock = opts.clock ?? Date.now;
  const maxDriftMs = opts.maxDriftMs ?? MAX_CLOCK_DRIFT_MS;
  // Highest (wall, logical) issued or observed so far; node ids are irrelevant here because
  // now() always moves past it in (wall, logical), whatever node ids compare as.
  let wall = 0;
  let logical = 0;

  const physical = (): number => Math.floor(clock());

  return {
    node,

    now() {
      const pt = physical();
      if (pt > wall) {
        wall = pt;
        logical = 0;
      } else if (logical < MAX_LOGICAL) {
        logical++;
      } else {
        // Counter exhausted within one ms (16M events): borrow the next ms rather than fail.
        wall++;
        logical = 0;
      }
      if (wall > MAX_WALL) throw new RangeError("HLC wall clock out of range");
      return { wall, logical, node };
    },

    observe(remote) {
      assertTimestamp(remote);
      const drift = remote.wall - physical();
      // Refuse to let one peer's broken clock drag every future timestamp far into the future.
      if (drift > maxDriftMs) throw new ClockDriftError(drift, maxDriftMs);
      if (remote.wall > wall || (remote.wall === wall && remote.logical > logical)) {
        wall = remote.wall;
        logical = remote.logical;
      }
    },
  };
}
