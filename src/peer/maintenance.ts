// An operator's changes to the mesh through this peer: draining it, and removing a dead
// member for good.
import { ConflictError, NotFoundError } from "../errors.ts";
import type { MemberTable } from "../membership/member-table.ts";
import type { Roster } from "../membership/roster.ts";
import type { Swim } from "../membership/swim.ts";
import type { Placement } from "../placement/placement.ts";
import type { QuorumRule } from "../placement/quorum-rule.ts";
import type { RepairService } from "../repair/repair-service.ts";
import type { Logger } from "../util/log.ts";

/** Drain and member removal. */
export interface Maintenance {
  /** Start handing everything to the other peers; reports whether nothing is left here. */
  drain(): Promise<{ draining: boolean; safeToStop: boolean }>;
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
  log: Logger;
}

/** Create the maintenance operations of one peer. */
export function createMaintenance({ table, roster, swim, repair, placement, log }: MaintenanceDeps): Maintenance {
  let drained = false;
  return {
    async drain() {
      if (!table.self.draining) {
        swim.announce(table.startDraining());
        log.info("draining: handing all chunks and index rows to the other peers");
      }
      repair.wake();
      const safeToStop = await repair.empty();
      if (safeToStop && !drained) log.info("drain done: nothing is left here that the mesh lacks; this peer is safe to stop");
      drained = safeToStop;
      return { draining: true, safeToStop };
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
