// Membership updates waiting to ride on outgoing messages (SWIM's piggyback
// dissemination). Each update goes out a bounded number of times, least-sent first,
// and a newer update about a member replaces the older one.
import type { MemberRecord } from "./member-table.ts";

interface Pending {
  record: MemberRecord;
  sent: number;
}

/** The piggyback queue of one peer. */
export class GossipQueue {
  private readonly pending = new Map<string, Pending>();

  /** Queue an update (replacing any older one about the same member). */
  push(record: MemberRecord): void {
    this.pending.set(record.id, { record, sent: 0 });
  }

  /** Take up to `max` updates for one message; each is dropped after `limit` sends. */
  take(max: number, limit: number): MemberRecord[] {
    const picked = [...this.pending.values()].sort((a, b) => a.sent - b.sent).slice(0, max);
    for (const p of picked) {
      p.sent++;
      if (p.sent >= limit) this.pending.delete(p.record.id);
    }
    return picked.map((p) => p.record);
  }

  /** How many updates are waiting. */
  get size(): number {
    return this.pending.size;
  }
}
