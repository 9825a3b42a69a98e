// The mesh's roster: every member this peer has ever known, kept on disk. Write quorums
// are counted against it, not against who answers right now, so a peer that is cut off
// (or restarted alone) still knows the mesh is bigger than itself and refuses to
// acknowledge writes it cannot place on enough peers. A member leaves the roster only
// when an operator removes it, or when it drains its data away.
import { StartupError } from "../errors.ts";
import { fileCause } from "../util/file-cause.ts";
import { readFile } from "node:fs/promises";
import { writePrivateFile } from "../util/private-file.ts";
import type { MemberRecord } from "./member-table.ts";

/** What the roster keeps of a member. */
interface RosterEntry {
  id: string;
  addrs: string[];
  inc: number;
  draining?: boolean;
  removed?: boolean;
}

/** A member only counts while it is neither removed nor handing its data off. */
const counts = (e: RosterEntry) => !e.removed && !e.draining;

/** Longest wait before a change reaches the disk (changes in between share one write). */
const FLUSH_DELAY_MS = 20;

/** The persistent member roster of one peer. */
export class Roster {
  private readonly entries = new Map<string, RosterEntry>();
  private dirty = false;
  private flushing: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    private readonly file: string,
    private readonly selfId: string,
  ) {}

  /**
   * Load the roster from `file` (a missing file is an empty roster). The bootstrap peers
   * are members too: a peer that was told to join a mesh never counts itself as a mesh of one.
   */
  static async open(file: string, selfId: string, bootstrapIds: string[]): Promise<Roster> {
    const roster = new Roster(file, selfId);
    let text: string | undefined;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new StartupError(`cannot read the member roster ${file}: ${fileCause(err)}`);
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new StartupError(`the member roster ${file} is not valid JSON; restore it from a backup, or delete it only if this peer's mesh really has no other members`);
      }
      for (const e of Array.isArray((parsed as { members?: unknown } | null)?.members) ? (parsed as { members: unknown[] }).members : []) {
        const entry = e as RosterEntry;
        if (typeof entry?.id === "string" && entry.id !== selfId) roster.entries.set(entry.id, { id: entry.id, addrs: Array.isArray(entry.addrs) ? entry.addrs.filter((a) => typeof a === "string") : [], inc: Number.isSafeInteger(entry.inc) ? entry.inc : 0, draining: entry.draining === true || undefined, removed: entry.removed === true || undefined });
      }
    }
    for (const id of bootstrapIds) if (id !== selfId && !roster.entries.has(id)) roster.note({ id, addrs: [], state: "alive", inc: 0 });
    if (text === undefined) roster.dirty = true;
    await roster.flush();
    return roster;
  }

  /** Ids of the counted members other than this peer. */
  memberIds(): string[] {
    return [...this.entries.values()].filter(counts).map((e) => e.id);
  }

  /** The highest incarnation known of a member (0 if unknown). */
  incarnation(id: string): number {
    return this.entries.get(id)?.inc ?? 0;
  }

  /** Members removed for good, as records to seed the member table with (so old gossip cannot bring them back). */
  removedRecords(): MemberRecord[] {
    return [...this.entries.values()].filter((e) => e.removed).map((e) => ({ id: e.id, addrs: e.addrs, state: "removed", inc: e.inc }));
  }

  /** Take in a member's current record (from the member table). */
  note(rec: MemberRecord): void {
    if (rec.id === this.selfId) return;
    const prev = this.entries.get(rec.id);
    const next: RosterEntry = {
      id: rec.id,
      addrs: rec.addrs.length ? rec.addrs : (prev?.addrs ?? []),
      inc: Math.max(rec.inc, prev?.inc ?? 0),
      draining: rec.draining === true || undefined,
      removed: rec.state === "removed" || undefined,
    };
    if (prev && prev.inc === next.inc && prev.draining === next.draining && prev.removed === next.removed && prev.addrs.join() === next.addrs.join()) return;
    this.entries.set(rec.id, next);
    this.dirty = true;
    this.schedule(FLUSH_DELAY_MS);
  }

  /** Write pending changes after `ms`; a failed write is tried again a second later. */
  private schedule(ms: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => this.schedule(1000));
    }, ms);
  }

  /** Write pending changes (whole file, fsynced, renamed into place). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => {});
    if (!this.dirty) return;
    this.dirty = false;
    const body = JSON.stringify({ members: [...this.entries.values()] }, null, 1) + "\n";
    this.flushing = writePrivateFile(this.file, body)
      .catch((err) => {
        this.dirty = true;
        throw new Error(`cannot write the member roster ${this.file}: ${(err as Error).message}`);
      })
      .finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /** Stop the delayed write and write what is pending. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
