// The `meshstore` command line. `bun run node [flags]` starts a peer and keeps it
// running until SIGINT/SIGTERM.
import { ADMIN_KEY_FILE, configFromArgs, NODE_FLAGS } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { startPeer, type Peer } from "./peer.ts";
import { keysUsage, runKeys } from "./cli/keys.ts";
import { membersUsage, runMembers } from "./cli/members.ts";
import path from "node:path";

function usage(): string {
  const lines = Object.entries(NODE_FLAGS).map(([flag, f]) => {
    const arg = f.type === "boolean" ? "" : flag === "bootstrap" ? " MULTIADDR" : " VALUE";
    return `  --${(flag + arg).padEnd(26)} ${f.help} (env ${f.env}; default ${f.def})`;
  });
  return [
    "usage: bun run node [flags]",
    "",
    ...lines,
    "",
    "Port 0 in --http, --s3 or --p2p picks a free port.",
    "MESH_ADMIN_KEY and MESH_ADMIN_SECRET set the admin key; otherwise a new mesh creates one and prints it once.",
    "",
    keysUsage(),
    "",
    membersUsage(),
  ].join("\n");
}

async function runNode(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage());
    return;
  }
  const config = configFromArgs(argv);
  // Everything the peer creates is its owner's alone, LevelDB's files included (LevelDB
  // takes its modes from the umask). This process is only the peer, so the umask is ours to
  // set; startPeer alone, for embedding, leaves the host's umask and relies on a 0700 folder.
  process.umask(0o077);
  // Handlers go in before anything starts, so a signal during start-up still stops cleanly.
  let peer: Peer | undefined;
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`meshstore: ${sig}, stopping`);
    await peer?.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  peer = await startPeer(config);
  if (stopping) {
    await peer.stop();
    process.exit(0);
  }
  if (peer.createdMeshKeyFile) {
    console.log(
      [
        "meshstore: this is a new mesh; its key, which every peer needs to connect, is in",
        `  ${peer.createdMeshKeyFile} (readable only by you).`,
        "  Give other peers a private copy and start them with --mesh-key <that copy>.",
      ].join("\n"),
    );
  }
  if (peer.createdAdminKey) {
    const k = peer.createdAdminKey;
    console.log(
      [
        "meshstore: this is a new mesh; its admin key is shown once here and kept in",
        `  ${path.join(peer.config.dataDir, ADMIN_KEY_FILE)} (readable only by you):`,
        `  access key id:     ${k.accessKeyId}`,
        `  secret access key: ${k.secretAccessKey}`,
        `  native API token:  ${k.token}   (send as Authorization: Bearer <token>)`,
      ].join("\n"),
    );
  }
  if (!peer.config.auth) console.error("meshstore: WARNING: --insecure-no-auth is on: both APIs accept requests from anyone who can reach them");
  console.log(`meshstore peer ${peer.peerId} ready p2p=${peer.multiaddrs().join(",")} http=${peer.httpUrl} s3=${peer.s3Url}`);
  dieWithLauncher();
}

/**
 * `bun run node` runs this file as a child and forwards SIGINT/SIGTERM, but a SIGKILL of
 * the launcher cannot be forwarded. So the peer follows its launcher's fate: when the
 * launcher vanishes without a goodbye, the peer dies the same abrupt death.
 */
function dieWithLauncher(): void {
  if (process.env.npm_lifecycle_event !== "node") return;
  const launcher = process.ppid;
  setInterval(() => {
    if (process.ppid !== launcher) process.kill(process.pid, "SIGKILL");
  }, 250).unref();
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case "node":
      return runNode(rest);
    case "keys":
      return runKeys(rest);
    case "members":
      return runMembers(rest);
    default:
      console.error(`meshstore: unknown command "${command ?? ""}"\n\n${usage()}`);
      process.exit(2);
  }
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(`meshstore: ${err.message}\n(see bun run node --help)`);
    process.exit(2);
  }
  console.error(`meshstore: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
