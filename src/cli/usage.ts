// Help and version text of the command line: one usage per command (`node --help` shows
// node's, `keys --help` keys'), each flag with the placeholder it takes.
import { NODE_FLAGS } from "../config.ts";
import pkg from "../../package.json" with { type: "json" };

/** How the README runs the commands on a machine with only Node and npm. */
export const RUN = "npx -y bun run";

/** `meshstore 0.1.0`, from package.json. */
export function versionLine(): string {
  return `meshstore ${pkg.version}`;
}

/** True if `argv` asks for the version (`--version` or `-v`). */
export function wantsVersion(argv: string[]): boolean {
  return argv.includes("--version") || argv.includes("-v");
}

type ValueFlag = { [K in keyof typeof NODE_FLAGS]: (typeof NODE_FLAGS)[K]["type"] extends "string" ? K : never }[keyof typeof NODE_FLAGS];

/** What each `node` flag that takes a value takes (a new flag without one fails the type check). */
const PLACEHOLDERS: Record<ValueFlag, string> = {
  data: "DIR",
  p2p: "MULTIADDR",
  http: "HOST:PORT",
  s3: "HOST:PORT",
  bootstrap: "MULTIADDR",
  "mesh-key": "FILE",
  rf: "N",
  "dead-after": "SECONDS",
  "repair-delay": "SECONDS",
  "stop-grace": "SECONDS",
  "multipart-expiry": "AGE",
  "search-backfill-rate": "N",
  "event-retention": "AGE",
  "event-retention-count": "N",
  "max-event-streams": "N",
  "cache-memory": "MIB",
  "cache-disk": "MIB",
  "advertise-http": "URL",
  "advertise-s3": "URL",
  "max-inflight": "N",
  "body-timeout": "SECONDS",
  "upload-memory": "MIB",
  "rate-per-key": "N",
  "rate-per-ip": "N",
  "rate-auth-fail": "N",
};

/** Help text for `node`. */
export function nodeUsage(): string {
  const lines = Object.entries(NODE_FLAGS).map(([flag, f]) => {
    const arg = f.type === "string" ? ` ${PLACEHOLDERS[flag as ValueFlag]}` : "";
    return `  --${(flag + arg).padEnd(26)} ${f.help} (env ${f.env}; default ${f.def})`;
  });
  return [
    `usage: ${RUN} node [flags]`,
    "",
    ...lines,
    `  --${"version, -v".padEnd(26)} print the version`,
    "",
    "Port 0 in --http, --s3 or --p2p picks a free port.",
    "MESH_ADMIN_KEY and MESH_ADMIN_SECRET set the admin key; otherwise a new mesh creates one and prints it once.",
    "The peer stops when its launcher (npx, bun run) does, after at most --stop-grace seconds for requests in flight.",
  ].join("\n");
}

/** The top-level usage: the commands, for `--help` without one or an unknown command. */
export function commandsUsage(): string {
  return [
    `usage: ${RUN} node [flags]        start a peer (${RUN} node --help)`,
    `       ${RUN} keys SUBCOMMAND     manage access keys (${RUN} keys --help)`,
    `       ${RUN} members SUBCOMMAND  list members, remove a dead one (${RUN} members --help)`,
    `       ${RUN} node --version      ${versionLine()}`,
  ].join("\n");
}
