// How many copies make a write durable. The rule counts the mesh's members, not the peers
// that answer: a member that is dead but was never removed still counts, so a peer or a
// minority that is cut off cannot shrink the quorum down to what it can reach.
//
//   r = min(RF, members)      the copies the mesh can keep of anything
//   W = floor(r / 2) + 1      copies fsynced before a write is acknowledged
//
// With RF 3 and at least 3 members, W is 2: losing any one peer loses no acknowledged
// write. A mesh that has only ever had one member has r = W = 1 and says so.

/** The quorum in force for a mesh of `members` members. */
export interface QuorumRule {
  /** Members counted: alive, suspect or dead, but not removed or drained. */
  members: number;
  rf: number;
  /** Copies the mesh can keep of anything: min(RF, members). */
  r: number;
  /** Copies a write needs on disk before it is acknowledged (also the read quorum). */
  w: number;
}

/** A majority of `n` voters: any two majorities share one. */
export function majority(n: number): number {
  return Math.floor(Math.max(1, n) / 2) + 1;
}

/** The quorum rule for replication factor `rf` over `members` members. */
export function quorumRule(rf: number, members: number): QuorumRule {
  const r = Math.max(1, Math.min(rf, members));
  return { members, rf, r, w: majority(r) };
}

/** How many copies of each chunk the mesh can keep (`/cluster/status` `copies`), and a warning while that is fewer than RF. */
export interface Copies {
  rf: number;
  /** min(RF, members). */
  possible: number;
  /** Set while `possible` < `rf`, e.g. "1 member, RF 3: keeping 1 copy of each chunk until more peers join". */
  warning?: string;
}

/** The copies a mesh under `rule` can keep, with the warning a peer logs at start. */
export function copiesOf(rule: QuorumRule): Copies {
  if (rule.r >= rule.rf) return { rf: rule.rf, possible: rule.r };
  const members = `${rule.members} member${rule.members === 1 ? "" : "s"}`;
  const copies = `${rule.r} cop${rule.r === 1 ? "y" : "ies"}`;
  return { rf: rule.rf, possible: rule.r, warning: `${members}, RF ${rule.rf}: keeping ${copies} of each chunk until more peers join` };
}
