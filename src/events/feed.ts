// The feed of recent cluster events of one peer: members joining, becoming suspect, dying
// and coming back, repair passes that did work, drains (and their cancelling), access keys created and revoked.
// A bounded ring in memory (the oldest event falls off), served at GET /cluster/events
// and shown by the dashboard. Each event has a sequence number that only grows, so a
// client asks for what is newer than the last one it saw (`after`).
import type { Member, MemberState } from "../membership/member-table.ts";

/** What happened. */
export type ClusterEventType =
  | "peer.joined"
  | "peer.suspect"
  | "peer.dead"
  | "peer.alive"
  | "peer.removed"
  | "repair.started"
  | "repair.finished"
  | "drain.started"
  | "drain.finished"
  | "drain.cancelled"
  | "key.created"
  | "key.revoked";

/** One event of the feed. */
export interface ClusterEvent {
  /** 1, 2, 3... on this peer, since it started. */
  seq: number;
  timeMs: number;
  type: ClusterEventType;
  /** The member it is about, if any. */
  peer?: string;
  detail: string;
}

/** Most events a feed keeps unless told otherwise. */
export const FEED_CAPACITY = 1000;
/** Most events one read returns. */
export const FEED_MAX_READ = 1000;

/** The feed of one peer. */
export interface EventFeed {
  /** Add an event (the oldest is dropped once the feed is full). */
  add(type: ClusterEventType, detail: string, peer?: string): ClusterEvent;
  /** Events with a seq above `after` (oldest first), at most `limit` of them (the newest ones). */
  read(after?: number, limit?: number): { events: ClusterEvent[]; lastSeq: number; capacity: number };
  /** A member table change, as an event (a change that is not news adds nothing). */
  member(member: Pick<Member, "id" | "state">, previous: MemberState | undefined): void;
  /** A drain's answer: an event when it starts, when it is safe to stop, and when it is cancelled (a later drain starts afresh). */
  drain(state: { draining: boolean; safeToStop: boolean }): void;
}

/** Create a feed keeping the last `capacity` events; `self` is this peer's id (its own changes are left out). */
export function createEventFeed(self: string, capacity = FEED_CAPACITY, clock: () => number = Date.now): EventFeed {
  const size = Math.max(1, Math.floor(capacity));
  const ring: Array<ClusterEvent | undefined> = new Array(size);
  let seq = 0;
  let drainReported: "none" | "started" | "finished" = "none";

  const feed: EventFeed = {
    add(type, detail, peer) {
      const event: ClusterEvent = { seq: ++seq, timeMs: clock(), type, ...(peer !== undefined && { peer }), detail };
      ring[(event.seq - 1) % size] = event;
      return event;
    },
    read(after = 0, limit = FEED_MAX_READ) {
      const oldest = Math.max(1, seq - size + 1);
      const take = Math.max(0, Math.min(FEED_MAX_READ, Math.floor(limit)));
      const from = Math.max(oldest, Math.floor(after) + 1, seq - take + 1);
      const events: ClusterEvent[] = [];
      for (let s = from; s <= seq; s++) events.push(ring[(s - 1) % size]!);
      return { events, lastSeq: seq, capacity: size };
    },
    member(m, previous) {
      if (m.id === self || m.state === previous) return;
      const short = m.id.slice(-6);
      switch (m.state) {
        case "alive":
          if (previous === undefined) feed.add("peer.joined", `member ${short} joined`, m.id);
          else feed.add("peer.alive", `member ${short} is alive again (was ${previous})`, m.id);
          return;
        case "suspect":
          feed.add("peer.suspect", `member ${short} is suspect (no answer to probes)`, m.id);
          return;
        case "dead":
          feed.add("peer.dead", `member ${short} is dead${previous === undefined ? " (learned from a peer)" : ""}`, m.id);
          return;
        case "removed":
          // A removal this peer only reads back from its roster at start is old news.
          if (previous !== undefined) feed.add("peer.removed", `member ${short} was removed from the mesh`, m.id);
      }
    },
    drain(state) {
      if (!state.draining) {
        if (drainReported === "none") return;
        drainReported = "none";
        feed.add("drain.cancelled", "the drain was cancelled: this peer holds and counts like any member again", self);
        return;
      }
      if (drainReported === "none") {
        drainReported = "started";
        feed.add("drain.started", "this peer started handing its data to the others", self);
      }
      if (state.safeToStop && drainReported !== "finished") {
        drainReported = "finished";
        feed.add("drain.finished", "this peer holds nothing any more: it is safe to stop", self);
      }
    },
  };
  return feed;
}
