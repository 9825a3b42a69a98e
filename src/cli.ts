// The `meshstore` command line. `npx -y bun run node [flags]` starts a peer and keeps it
// running until SIGINT/SIGTERM, or until its launcher exits (src/cli/launcher.ts).
import { ADMIN_KEY_FILE, configFromArgs, DEFAULTS, P2P_ADDRESS_FILE } from "./config.ts";
import { ConfigError, MeshError, UsageError } from "./errors.ts";
import type { Peer } from "./peer.ts";
import { keysUsage, runKeys } from "./cli/keys.ts";
import { watchLauncher } from "./cli/launcher.ts";
import { membersUsage, runMembers } from "./cli/members.ts";
import { commandsUsage, nodeUsage, RUN, versionLine, wantsVersion } from "./cli/usage.ts";
import { rm } from "node:fs/promises";
import path from "node:path";
import { writePrivateFile } from "./util/private-file.ts";

async function runNode(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(nodeUsage());
    return;
  }
  if (wantsVersion(argv)) {
    console.log(versionLine());
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
  watchLauncher((why, abrupt) => {
    // A SIGKILL of `bun run` itself: the same abrupt death for the peer (a graceful stop already under way finishes).
    if (abrupt && !stopping) process.kill(process.pid, "SIGKILL");
    void stop(why);
  });
  // Loaded here, so help, version and the admin commands start without libp2p and LevelDB.
  const { startPeer } = await import("./peer.ts");
  // An address file from an earlier run would point scripts at a peer not yet listening.
  const addressFile = path.join(config.dataDir ?? DEFAULTS.dataDir, P2P_ADDRESS_FILE);
  await rm(addressFile, { force: true });
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
  // The addresses other peers join through, for scripts: --bootstrap "$(head -n1 DIR/p2p-address)".
  // A peer that cannot write it still serves; the ready line has the same addresses.
  await writePrivateFile(addressFile, peer.multiaddrs().map((a) => `${a}\n`).join("")).catch((err: Error) => console.error(`meshstore: could not write ${addressFile}: ${err.message}`));
  console.log(`meshstore peer ${peer.peerId} ready p2p=${peer.multiaddrs().join(",")} http=${peer.httpUrl} s3=${peer.s3Url}`);
}

/** The usage of `command`, for the hint after a usage error. */
const USAGES: Record<string, () => string> = { node: nodeUsage, keys: keysUsage, members: membersUsage };

async function main(command: string | undefined, rest: string[]): Promise<void> {
  switch (command) {
    case "node":
      return runNode(rest);
    case "keys":
      return runKeys(rest);
    case "members":
      return runMembers(rest);
    case "--version":
    case "-v":
      console.log(versionLine());
      return;
    case "--help":
    case "-h":
      console.log(commandsUsage());
      return;
    default:
      console.error(`meshstore: unknown command "${command ?? ""}"\n\n${commandsUsage()}`);
      process.exit(2);
  }
}

const [command, ...rest] = process.argv.slice(2);
main(command, rest).catch((err) => {
  // Usage errors are one line (exit 2); a peer that cannot start says why in one line (exit 1).
  if (err instanceof ConfigError) {
    const hint = err instanceof UsageError ? ` (see ${RUN} ${command && USAGES[command] ? command : "node"} --help)` : "";
    console.error(`meshstore: ${err.message}${hint}`);
    process.exit(2);
  }
  const message = err instanceof Error ? err.message : String(err);
  console.error(`meshstore: ${err instanceof MeshError ? message : message.split("\n")[0]}`);
  process.exit(1);
});
