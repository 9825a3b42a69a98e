// An embedded peer's whole life in a script: startPeer, then stop(), and nothing else. Run
// directly (`bun test/harness/start-stop.ts DIR`), it prints one JSON line once stop() has
// resolved and must then exit by itself: nothing the peer left behind may keep it alive.
// test/cluster/lifecycle.test.ts times that exit (and hands the child's stderr, where its
// log goes, to the secret check).
import { startPeer } from "../../src/peer.ts";
import { stderrSink, type LogSink } from "../../src/util/log.ts";
import { TEST_MEMBERSHIP } from "./cluster.ts";
import { TEST_ADMIN } from "./credentials.ts";
import { suiteLeaks } from "./leak-check.ts";

/** Start a lone peer on loopback (free ports) with its data in `dataDir`, quiet; its few lines go to the secret check. */
export function startLonePeer(dataDir: string, logSink: LogSink = (_level, line) => suiteLeaks.capture("lone peer", line)) {
  return startPeer({
    dataDir,
    p2pListen: ["/ip4/127.0.0.1/tcp/0"],
    http: { host: "127.0.0.1", port: 0 },
    s3: { host: "127.0.0.1", port: 0 },
    membership: TEST_MEMBERSHIP,
    admin: TEST_ADMIN,
    logLevel: "error",
    logSink,
  });
}

if (import.meta.main) {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error("usage: bun test/harness/start-stop.ts DATA_DIR");
  const peer = await startLonePeer(dataDir, stderrSink);
  const health = await fetch(`${peer.httpUrl}/health`);
  const started = performance.now();
  await peer.stop();
  console.log(JSON.stringify({ health: health.status, stopMs: Math.round(performance.now() - started) }));
}
