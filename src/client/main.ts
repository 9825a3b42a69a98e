#!/usr/bin/env bun
// The `meshstore` command: a client for a mesh's native HTTP API in the spirit of MinIO's
// mc (aliases, ls, cp, mirror, ...). Exit codes: 0 ok, 1 if anything failed (the other
// objects still go), 2 for a usage error (one line naming it, and where help is).
import pkg from "../../package.json" with { type: "json" };
import { adminCommand } from "./commands/admin.ts";
import { aliasCommand } from "./commands/alias.ts";
import { copyCommands } from "./commands/copy.ts";
import { objectCommands } from "./commands/objects.ts";
import { searchCommands } from "./commands/search.ts";
import { uploadsCommand } from "./commands/uploads.ts";
import { configDir, loadConfig } from "./config.ts";
import type { Command, Context } from "./context.ts";
import { describeError, UsageError } from "./errors.ts";
import { createOutput, type Output } from "./output.ts";

/** Every command, in the order the overview lists them. */
export const COMMANDS: Command[] = [aliasCommand, ...objectCommands.slice(0, 1), ...copyCommands, ...objectCommands.slice(1), ...searchCommands, uploadsCommand, adminCommand];

/** The overview `meshstore --help` prints. */
export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: meshstore COMMAND [FLAGS] [ARGS]",
    "       (from a checkout: npx -y bun run mesh COMMAND ...)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Paths are ALIAS/BUCKET/KEY on a mesh (an alias names a peer: meshstore alias set) or local paths.",
    "Every command takes --json (one JSON object per line on stdout), -q/--quiet and -h/--help.",
    "Exit codes: 0 ok, 1 if anything failed (an object, or a request the peer refused), 2 for a usage error.",
    `Config folder: ${configDir()} (MESHSTORE_CONFIG_DIR overrides; XDG_CONFIG_HOME is honoured).`,
    "Run meshstore COMMAND --help for a command's flags.",
  ].join("\n");
}

/** The global flags that may also come before the command. */
const GLOBAL_FLAGS = new Set(["--json", "-q", "--quiet"]);

/** The flags before a `--` (after it, everything is a positional argument). */
const flagsOf = (argv: string[]) => (argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv);

/** Run the client with `argv` (the arguments after the program name); resolves with the exit code. */
export async function runClient(argv: string[], env: NodeJS.ProcessEnv = process.env, output?: Output): Promise<number> {
  // Global flags may come before the command too (`meshstore --json ls ...`).
  const leading = argv.slice(0, argv.findIndex((a) => !GLOBAL_FLAGS.has(a)) >>> 0);
  const [name, ...after] = argv.slice(leading.length);
  const rest = [...leading, ...after];
  const flags = flagsOf(argv);
  const out = output ?? createOutput({ json: flags.includes("--json"), quiet: flags.includes("-q") || flags.includes("--quiet") });
  const usageError = (message: string, cmd?: string) => {
    process.stderr.write(`meshstore: ${message} (see meshstore ${cmd ? `${cmd} ` : ""}--help)\n`);
    return 2;
  };
  if (name === "--version" || name === "-V") {
    process.stdout.write(`meshstore ${pkg.version}\n`);
    return 0;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    const cmd = COMMANDS.find((c) => c.name === rest[0]);
    process.stdout.write((cmd ? cmd.usage : overview()) + "\n");
    return 0;
  }
  if (name === undefined) return usageError("missing command");
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) return usageError(name.startsWith("-") ? `unknown flag ${name} before the command` : `unknown command "${name}"`);
  if (flagsOf(rest).some((a) => a === "--help" || a === "-h")) {
    process.stdout.write(command.usage + "\n");
    return 0;
  }
  try {
    const dir = configDir(env);
    const ctx: Context = { dir, config: await loadConfig(dir), out, env };
    await command.run(ctx, rest);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, command.name);
    out.fail({ op: command.name }, err);
    return 1;
  }
  return out.failures > 0 ? 1 : 0;
}

if (import.meta.main) {
  const code = await runClient(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`meshstore: ${describeError(err).message}\n`);
    return 1;
  });
  process.exitCode = code;
}
