// What every command gets: the config folder and its aliases, and the printer.
import type { ClientConfig } from "./config.ts";
import type { Output } from "./output.ts";

/** A command's run-time context. */
export interface Context {
  /** The client's config folder. */
  dir: string;
  config: ClientConfig;
  out: Output;
  env: NodeJS.ProcessEnv;
}

/** One command (or a group with subcommands). */
export interface Command {
  name: string;
  /** One line for the overview. */
  summary: string;
  /** Its help text (usage lines, then flags). */
  usage: string;
  run(ctx: Context, argv: string[]): Promise<void>;
}
