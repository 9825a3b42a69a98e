#!/usr/bin/env node
// The installed `meshstore` command (package.json "bin"). The client is TypeScript run by
// Bun, but a machine with only Node and npm has no `bun` on its PATH: this launcher runs the
// client with the `bun` it finds there, else through `npx -y bun` (fetched from npm once),
// passing the arguments, the terminal and the exit code through unchanged.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const client = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "client", "main.ts");

/** `bun` on the PATH, if there is one. */
function bunOnPath() {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "bun");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

const bun = bunOnPath();
const [command, args] = bun ? [bun, [client]] : ["npx", ["-y", "bun", client]];
const child = spawn(command, [...args, ...process.argv.slice(2)], { stdio: "inherit" });
// A signal to this launcher is passed on, and it exits as the client does (Ctrl-C reaches
// both through the terminal: the launcher waits for the client to finish).
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("error", (err) => {
  console.error(`meshstore: cannot start ${command}: ${err.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => process.exit(code ?? 128 + (os.constants.signals[signal] ?? 0)));
