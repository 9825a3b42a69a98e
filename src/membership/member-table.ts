// The member view: who is in the mesh and in which state, merged by SWIM's rules.
// Pure state and rules, no I/O: the protocol (swim.ts) feeds it what it hears.
//
// Precedence for one member (inc = the member's incarnation, which only it raises):
//   alive(i)   beats alive/suspect/dead with inc < i
//   suspect(i) beats alive with inc <= i, suspect with inc < i
//   dead(i)    beats alive/suspect with inc <= i
//   removed(i) beats alive/suspect/dead with inc <= i (an operator took a dead member out)
// A member that hears itself suspected, declared dead or removed refutes by raising its inc.
// Incarnations are safe integers no more than a day ahead of the clock (saneIncarnation):
// a record with any other is dropped, so a refutation (inc + 1) is always exact and wins.

/** Liveness states; `removed` is a dead member an operator took out of the mesh for good. */
export type MemberState = "alive" | "suspect" | "dead" | "removed";

/** What peers tell each other about a member. */
export interface MemberRecord {
  id: string;
  addrs: string[];
  /** The member's native HTTP URL, for operators. */
  http?: string;
  state: MemberState;
  inc: number;
  /** The member is handing its data off before it stops; it owns nothing new. */
  draining?: boolean;
  /** On a gossiped suspicion: who suspects (independent suspicions shorten it, see lifeguard.ts). */
  by?: string;
}

/** A member as this peer sees it. */
export interface Member extends MemberRecord {
  /** Wall-clock ms when this peer last heard from or about it being alive. */
  lastSeenMs: number;
  /** Wall-clock ms when it entered its current state. */
  stateSinceMs: number;
}

/** Called when a member's state changes (not on mere refreshes). */
export type MemberChangeListener = (member: Member, previous: MemberState | undefined) => void;
/** Called whenever a member's record changes (state, incarnation, addresses, draining). */
export type MemberRecordListener = (record: MemberRecord) => void;

/**
 * How far ahead of this peer's clock an incarnation may be. A peer's incarnation starts at
 * its boot time in ms (peer.ts) and rises by one per refutation, so an honest one is never
 * more than the clock skew between hosts ahead of now. One beyond a day is forged or
 * broken; accepted, it could lift a member's incarnation out of reach of its own refutation.
 */
export const MAX_INCARNATION_AHEAD_MS = 24 * 3600_000;

/** Is `inc` an incarnation this peer accepts at wall-clock time `nowMs`? */
export function saneIncarnation(inc: number, nowMs: number): boolean {
  return Number.isSafeInteger(inc) && inc >= 0 && inc <= nowMs + MAX_INCARNATION_AHEAD_MS;
}

const RANK: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2, removed: 3 };

/** Does `incoming` take precedence over `current`? */
export function supersedes(incoming: Pick<MemberRecord, "state" | "inc">, current: Pick<MemberRecord, "state" | "inc">): boolean {
  if (incoming.state === "alive") return incoming.inc > current.inc;
  if (incoming.inc !== current.inc) return incoming.inc > current.inc;
  return RANK[incoming.state] > RANK[current.state];
}

/** The member table of one peer, including itself. */
export class MemberTable {
  private readonly members = new Map<string, Member>();
  private readonly listeners: MemberChangeListener[] = [];
  private readonly recordListeners: MemberRecordListener[] = [];

  constructor(
    private selfRecord: MemberRecord,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The table's clock (injected in tests). */
  now(): number {
    return this.clock();
  }

  /** This peer's own record (always alive). */
  get self(): MemberRecord {
    return this.selfRecord;
  }

  /** Update fields of our own record that are known only after start-up (e.g. the HTTP URL). */
  refreshSelf(fields: Partial<Pick<MemberRecord, "addrs" | "http">>): void {
    this.selfRecord = { ...this.selfRecord, ...fields };
  }

  /** Mark ourselves draining; the raised incarnation makes the change spread. Returns the record to gossip. */
  startDraining(): MemberRecord {
    return this.changeSelf({ ...this.selfRecord, draining: true });
  }

  /** Stop draining (a cancelled drain): we count and own again. Returns the record to gossip, or undefined if we were not draining. */
  stopDraining(): MemberRecord | undefined {
    if (!this.selfRecord.draining) return undefined;
    const { draining: _, ...rest } = this.selfRecord;
    return this.changeSelf(rest);
  }

  /** Subscribe to state changes. */
  onChange(listener: MemberChangeListener): void {
    this.listeners.push(listener);
  }

  /** Subscribe to every change of a member's record. */
  onRecord(listener: MemberRecordListener): void {
    this.recordListeners.push(listener);
  }

  /** Every known member except this peer and those removed for good. */
  others(): Member[] {
    return [...this.members.values()].filter((m) => m.state !== "removed");
  }

  /** One member, or undefined. */
  get(id: string): Member | undefined {
    return this.members.get(id);
  }

  /** What peers tell each other about one member, or undefined. */
  record(id: string): MemberRecord | undefined {
    const m = this.members.get(id);
    return m && strip(m);
  }

    /** Ids of members in one of the given states. */
  idsIn(...states: MemberState[]): string[] {
    return this.others()
      .filter((m) => states.includes(m.state))
      .map((m) => m.id);
  }

  /** Raise our incarnation above `inc` so that our alive record wins; returns the new self record. */
  refute(inc: number): MemberRecord {
    this.selfRecord = { ...this.selfRecord, inc: Math.max(this.selfRecord.inc, inc) + 1 };
    return this.selfRecord;
  }

  /**
   * Merge what we heard about a member. Returns the record to spread further when it
   * changed our view (or our own refutation), otherwise undefined. A record whose
   * incarnation is not sane (saneIncarnation) is dropped.
   */
  apply(rec: MemberRecord): MemberRecord | undefined {
    if (!saneIncarnation(rec.inc, this.clock())) return undefined;
    if (rec.id === this.selfRecord.id) {
      if (rec.state !== "alive" && rec.inc >= this.selfRecord.inc) return this.refute(rec.inc);
      return undefined;
    }
    const now = this.clock();
    const cur = this.members.get(rec.id);
    if (!cur) {
      this.set({ ...rec, lastSeenMs: rec.state === "alive" ? now : 0, stateSinceMs: now }, undefined);
      return rec;
    }
    if (!supersedes(rec, cur)) {
      if (rec.state === "alive" && rec.inc === cur.inc && cur.state === "alive") cur.lastSeenMs = now;
      return undefined;
    }
    const addrs = rec.addrs.length ? rec.addrs : cur.addrs;
    const next: Member = { ...cur, ...rec, addrs, draining: rec.draining, stateSinceMs: rec.state === cur.state ? cur.stateSinceMs : now };
    if (rec.state === "alive") next.lastSeenMs = now;
    this.set(next, cur.state);
    return strip(next);
  }

  /** Record direct contact with a member (it answered or called us). */
  touch(id: string): void {
    const m = this.members.get(id);
    if (m && m.state === "alive") m.lastSeenMs = this.clock();
  }

  /** Suspect a member at its current incarnation; returns the record to spread, if it changed. */
  suspect(id: string): MemberRecord | undefined {
    const m = this.members.get(id);
    if (!m || m.state !== "alive") return undefined;
    return this.apply({ ...strip(m), state: "suspect" });
  }

  /** Declare a member dead at its current incarnation; returns the record to spread, if it changed. */
  declareDead(id: string): MemberRecord | undefined {
    const m = this.members.get(id);
    if (!m || m.state === "dead") return undefined;
    return this.apply({ ...strip(m), state: "dead" });
  }

  /** Take a dead member out of the mesh for good; returns the record to spread, if it changed. */
  remove(id: string): MemberRecord | undefined {
    const m = this.members.get(id);
    if (!m || m.state !== "dead") return undefined;
    return this.apply({ ...strip(m), state: "removed" });
  }

  /** Members suspect for longer than `graceMs`. */
  expiredSuspects(graceMs: number): string[] {
    const now = this.clock();
    return this.others()
      .filter((m) => m.state === "suspect" && now - m.stateSinceMs >= graceMs)
      .map((m) => m.id);
  }

  /** Every record, ourselves and removed members included, for a full-state exchange. */
  records(): MemberRecord[] {
    return [this.selfRecord, ...[...this.members.values()].map(strip)];
  }

  /** Replace our record at a raised incarnation (so it wins everywhere) and tell the listeners, whose views may depend on it. */
  private changeSelf(next: MemberRecord): MemberRecord {
    this.selfRecord = { ...next, inc: this.selfRecord.inc + 1 };
    for (const l of this.listeners) l({ ...this.selfRecord, lastSeenMs: this.clock(), stateSinceMs: this.clock() }, "alive");
    return this.selfRecord;
  }

  private set(m: Member, previous: MemberState | undefined): void {
    this.members.set(m.id, m);
    if (previous !== m.state) for (const l of this.listeners) l(m, previous);
    for (const l of this.recordListeners) l(strip(m));
  }
}

function strip(m: Member | MemberRecord): MemberRecord {
  return { id: m.id, addrs: m.addrs, http: m.http, state: m.state, inc: m.inc, ...(m.draining ? { draining: true } : {}) };
}
