// An operator's changes to the mesh through this peer: draining a member (this one, or
// another through the `maintenance.drain` RPC method), cancelling a drain, and removing a
// dead member for good.
import { Type, type Static } from "@sinclair/typebox";
import { ConflictError, MeshError, NotFoundError } from "../errors.ts";
import type { EventFeed } from "../events/feed.ts";
import type { MemberTable } from "../membership/member-table.ts";
import type { Roster } from "../membership/roster.ts";
import type { Swim } from "../membership/swim.ts";
import { defineMethod, type Rpc } from "../net/rpc.ts";
import type { Placement } from "../placement/placement.ts";
import type { QuorumRule } from "../placement/quorum-rule.ts";
import type { RepairService } from "../repair/repair-service.ts";
import type { Startable } from "../util/lifecycle.ts";
import type { Logger } from "../util/log.ts";

/** A member's drain as it answers: `reason` says why it cannot make progress, while that is so. */
export const DrainStateSchema = Type.Object({
  draining: Type.Boolean(),
  safeToStop: Type.Boolean(),
  reason: Type.Optional(Type.String({ maxLength: 500 })),
});
/** A member's drain as it answers. */
export type DrainState = Static<typeof DrainStateSchema>;

/** Start (or cancel) the drain of the member called: what `POST|DELETE /cluster/members/:id/drain` forwards. */
export const DrainMethod = defineMethod("maintenance.drain", { params: Type.Object({ cancel: Type.Boolean() }), result: DrainStateSchema });

/** How long a drain request forwarded to another member may take. */
export const REMOTE_DRAIN_TIMEOUT_MS = 5000;

/** Drain and member removal; `start` serves the drain method to the other members. */
export interface Maintenance extends Startable {
  /** Start handing everything to the other peers; reports whether nothing is left here, or why that cannot happen yet. */
  drain(): Promise<DrainState>;
  /** Stop draining: this peer owns and counts in quorums again (harmless when not draining). */
  cancelDrain(): Promise<DrainState>;
  /** Drain (or cancel the drain of) member `id`: this peer, or another one asked over RPC. */
  drainMember(id: string, cancel: boolean, signal?: AbortSignal): Promise<DrainState>;
  /** Take a dead member out of the mesh for good: quorums and the ring stop counting it. */
  removeMember(id: string): Promise<{ removed: string; quorum: QuorumRule }>;
}

/** What maintenance changes and reads. */
export interface MaintenanceDeps {
  table: MemberTable;
  roster: Roster;
  swim: Swim;
  repair: RepairService;
  placement: Placement;
  rpc: Pick<Rpc, "register" | "unregister" | "call">;
  /** Drain starts, ends and cancellations go to the peer's event feed. */
  events: Pick<EventFeed, "drain">;
  log: Logger;
}

/**
 * Why a drain of this peer cannot complete, or undefined. Copies can move only to alive
 * members that are not draining themselves; with fewer of them than RF, repair has nowhere
 * to put the copies this peer holds, and the drain would wait for ever.
 */
export function drainBlocker(table: Pick<MemberTable, "others">, rf: number): string | undefined {
  const others = table.others();
  const receivers = others.filter((m) => m.state === "alive" && !m.draining).length;
  if (receivers >= rf) return undefined;
  const members = 1 + others.filter((m) => m.state === "alive" || m.state === "suspect").length;
  const room = receivers === 0 ? "no other member can take copies" : `only ${receivers} other member${receivers === 1 ? "" : "s"} can take copies`;
  return `${members} member${members === 1 ? "" : "s"}, RF ${rf}: nowhere to move the data (${room}; add a peer or cancel the drain)`;
}

/** Create the maintenance operations of one peer. */
export function createMaintenance({ table, roster, swim, repair, placement, rpc, events, log }: MaintenanceDeps): Maintenance {
  let drained = false;
  /** The reason last logged, so a stuck drain asked about every few seconds logs it once. */
  let loggedReason: string | undefined;

  async function drain(via?: string): Promise<DrainState> {
    if (!table.self.draining) {
      swim.announce(table.startDraining());
      log.info(`draining${via ? ` (asked through member ${via.slice(-6)})` : ""}: handing all chunks and index rows to the other peers`);
    }
    repair.wake();
    const safeToStop = await repair.empty();
    if (safeToStop && !drained) log.info("drain done: nothing is left here that the mesh lacks; this peer is safe to stop");
    drained = safeToStop;
    const reason = safeToStop ? undefined : drainBlocker(table, placement.rf);
    if (reason && reason !== loggedReason) log.warn(`the drain cannot complete: ${reason}`);
    loggedReason = reason;
    const state: DrainState = { draining: true, safeToStop, ...(reason && { reason }) };
    events.drain(state);
    return state;
  }

  async function cancelDrain(via?: string): Promise<DrainState> {
    const rec = table.stopDraining();
    if (rec) {
      swim.announce(rec);
      drained = false;
      loggedReason = undefined;
      log.info(`drain cancelled${via ? ` (asked through member ${via.slice(-6)})` : ""}: this peer holds data and counts in quorums again`);
      // What was handed off comes back as repair finds this peer among the owners again.
      repair.wake();
    }
    const state: DrainState = { draining: false, safeToStop: false };
    events.drain(state);
    return state;
  }

  return {
    start() {
      rpc.register(DrainMethod, async ({ from, params }) => ({ result: params.cancel ? await cancelDrain(from) : await drain(from) }));
    },
    stop() {
      rpc.unregister(DrainMethod);
    },
    drain: () => drain(),
    cancelDrain: () => cancelDrain(),
    async drainMember(id, cancel, signal) {
      if (id === table.self.id) return cancel ? cancelDrain() : drain();
      const m = table.get(id);
      const what = cancel ? "cancel its drain" : "drain it";
      if (!m || m.state === "removed") {
        if (m || !roster.memberIds().includes(id)) throw new NotFoundError(`no member ${id} in this mesh`, "NoSuchMember");
        throw new MeshError("ServiceUnavailable", `member ${id} has not been heard from since this peer started: cannot ${what} now; try again shortly`);
      }
      if (m.state === "dead") {
        throw new MeshError("ServiceUnavailable", `member ${id} is dead: cannot ${what}; if it is gone for good, remove it (DELETE /admin/members/${id})`);
      }
      try {
        const { result } = await rpc.call(id, DrainMethod, { cancel }, { signal, timeoutMs: REMOTE_DRAIN_TIMEOUT_MS });
        return result;
      } catch (err) {
        // Whatever went wrong over there (no answer, an older version without the method), the client may retry: 503, never 500.
        throw new MeshError("ServiceUnavailable", `member ${id} (${m.state}) did not take the request to ${what}: ${(err as Error).message}`, { cause: err });
      }
    },
    async removeMember(id) {
      const m = table.get(id);
      if (m && (m.state === "alive" || m.state === "suspect")) {
        throw new ConflictError(`member ${id} is ${m.state}: only a dead member can be removed; drain a live one instead`, "MemberNotDead");
      }
      if (!m && !roster.memberIds().includes(id)) throw new NotFoundError(`no member ${id} in this mesh`, "NoSuchMember");
      const rec = m ? table.remove(id) : table.apply({ id, addrs: [], state: "removed", inc: roster.incarnation(id) });
      if (rec) swim.announce(rec);
      await roster.flush();
      log.warn(`member ${id.slice(-6)} removed from the mesh by an operator; quorums now count ${placement.quorum().members} member(s)`);
      repair.wake();
      return { removed: id, quorum: placement.quorum() };
    },
  };
}
