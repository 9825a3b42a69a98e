// `bun run members list|remove`: see the mesh's members and take a dead one out for good.
// Quorums count every member until an operator removes it (README: "Durability and
// quorums"), so a member that will never come back must be removed for writes to count
// without it.
import { parseArgs } from "node:util";
import { ConfigError, UsageError } from "../errors.ts";
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, adminClient, handledWithoutSubcommand } from "./admin-client.ts";
import { RUN } from "./usage.ts";

/** Help text for the members command. */
export function membersUsage(): string {
  return [
    `usage: ${RUN} members list`,
    `       ${RUN} members remove PEER_ID     (a dead member only; drain a live one instead)`,
    ...ADMIN_CLIENT_USAGE,
  ].join("\n");
}

/** Run `members <subcommand>`. */
export async function runMembers(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: ADMIN_CLIENT_OPTIONS });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (handledWithoutSubcommand(values, sub, membersUsage(), argv)) return;
  if (!["list", "remove"].includes(sub)) throw new UsageError(`unknown members subcommand "${sub}"`);
  const call = await adminClient(values);
  switch (sub) {
    case "list": {
      const peers = JSON.parse(await call("GET", "/cluster/peers")) as { self: { id: string }; peers: Array<{ id: string; state: string }> };
      const status = JSON.parse(await call("GET", "/cluster/status")) as { quorum: { members: number; r: number; w: number } };
      console.log(`${peers.self.id}  alive (this peer)`);
      for (const p of peers.peers) console.log(`${p.id}  ${p.state}`);
      console.log(`members counted for quorums: ${status.quorum.members}; copies kept r=${status.quorum.r}; write quorum W=${status.quorum.w}`);
      return;
    }
    case "remove": {
      if (rest.length !== 1) throw new ConfigError("members remove takes one PEER_ID");
      const answer = JSON.parse(await call("DELETE", `/admin/members/${encodeURIComponent(rest[0])}`)) as { quorum: { members: number; r: number; w: number } };
      console.log(`removed ${rest[0]}; quorums now count ${answer.quorum.members} member(s): r=${answer.quorum.r}, W=${answer.quorum.w}`);
      return;
    }
    default:
      throw new UsageError(`unknown members subcommand "${sub}"`);
  }
}
