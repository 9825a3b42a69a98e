// Command-line parsing for every client command, on node:util's parseArgs: the global flags
// (--json, -q, -h) are accepted by every command, anything unknown is a UsageError naming
// it (exit 2), and a command's own help comes from its usage text.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UsageError } from "./errors.ts";

/** Flags every command takes. */
export const GLOBAL_OPTIONS = {
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/** Parse a command's arguments with its own options and the global ones. */
export function parseCommand<O extends ParseArgsOptionsConfig>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(usageMessage(err));
  }
}

/** parseArgs's message, shortened to the problem itself ("unknown option --bogus"). */
export function usageMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(msg);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = /^Option '([^']+)' argument missing/.exec(msg);
  if (missing) return `${missing[1].replace(/^-\w, /, "")} needs a value`;
  return msg.replace(/\. To specify.*$/s, "").replace(/\.$/, "");
}

/** Exactly `n` positional arguments, named in `names` for the message when some are missing or extra. */
export function positionalsOf(positionals: string[], names: string[], optional = 0): string[] {
  const needed = names.length - optional;
  if (positionals.length < needed) throw new UsageError(`missing ${names.slice(positionals.length, needed).join(" ")}`);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument "${positionals[names.length]}"`);
  return positionals;
}
