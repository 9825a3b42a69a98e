// Joining the mesh as a part of the peer: through the bootstrap addresses, retrying until
// one answers, and again whenever this peer finds itself alone (its partners restarted).
import { multiaddr } from "@multiformats/multiaddr";
import type { PeerConfig } from "../config.ts";
import type { Discovery } from "../membership/discovery.ts";
import type { MemberTable } from "../membership/member-table.ts";
import type { Swim } from "../membership/swim.ts";
import type { MeshLibp2p } from "../net/libp2p.ts";
import type { Startable } from "../util/lifecycle.ts";
import type { Logger } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";

/** What the join loop uses. */
export interface JoinerDeps {
  config: PeerConfig;
  libp2p: MeshLibp2p;
  swim: Swim;
  table: MemberTable;
  discovery: Discovery;
  log: Logger;
  /** The peer's: the loop ends when it aborts. */
  signal: AbortSignal;
}

/** Longest wait for one bootstrap dial. */
const DIAL_TIMEOUT_MS = 5000;

/** Create the join loop; a graceful stop waits for the loop to notice the peer's signal. */
export function createJoiner(deps: JoinerDeps): Startable {
  let loop: Promise<void> | undefined;
  return {
    start() {
      loop = joinLoop(deps).catch((err) => deps.log.warn(`join loop failed: ${(err as Error).message}`));
    },
    async stop(abrupt) {
      if (!abrupt) await loop;
    },
  };
}

async function joinLoop({ config, libp2p, swim, table, discovery, log, signal }: JoinerDeps): Promise<void> {
  const retryMs = Math.max(200, config.membership.probeIntervalMs * 2);
  let joined = config.bootstrap.length === 0;
  while (!signal.aborted) {
    const alone = table.idsIn("alive", "suspect").length === 0;
    if (!joined || (alone && config.bootstrap.length)) {
      for (const addr of config.bootstrap) {
        try {
          const ma = multiaddr(addr);
          const id = ma.getComponents().find((c) => c.name === "p2p")?.value;
          if (!id) continue;
          await libp2p.dial(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]) });
          if (await swim.sync(id)) {
            if (!joined) log.info(`joined the mesh through ${id.slice(-6)}`);
            joined = true;
            void discovery.runOnce();
            break;
          }
        } catch (err) {
          log.debug(`bootstrap ${addr} failed: ${(err as Error).message}`);
        }
      }
    }
    await sleep(joined ? retryMs * 5 : retryMs, signal);
  }
}
