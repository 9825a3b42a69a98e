// The "software ceiling": a minimal single-process Bun HTTP server, no replication, that
// writes each uploaded body to its own file (then fsyncs it) and serves it back. It answers
// the same paths as the native API, so the same load drives both.
//   bun bench/ceiling-server.ts DIR        (prints "ceiling ready http://127.0.0.1:PORT")
import { mkdtempSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

const READY = /^ceiling ready (\S+)$/m;

/** A running ceiling server child process. */
export interface Ceiling {
  url: string;
  close(): void;
}

/** Start the ceiling server in a child process with a fresh folder. */
export async function startCeiling(): Promise<Ceiling> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "meshstore-ceiling-"));
  const proc = Bun.spawn([process.execPath, import.meta.path, dir], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const close = () => {
    proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const next = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => undefined)]);
    if (!next || next.done) break;
    text += new TextDecoder().decode(next.value);
    const m = READY.exec(text);
    if (m) {
      reader.releaseLock();
      return { url: m[1], close };
    }
  }
  close();
  throw new Error(`ceiling server did not start: ${text}`);
}

function serve(dir: string) {
  const fileOf = (p: string) => path.join(dir, Bun.hash(p).toString(16));
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 2 ** 34,
    idleTimeout: 120,
    async fetch(req) {
      const p = new URL(req.url).pathname;
      if (!p.includes("/objects/")) return Response.json({}); // bucket create etc.
      const file = fileOf(p);
      if (req.method === "PUT") {
        const fh = await open(file, "w");
        let size = 0;
        try {
          if (req.body) {
            for await (const chunk of req.body) {
              writeSync(fh.fd, chunk);
              size += chunk.byteLength;
            }
          }
          await fh.sync();
        } finally {
          await fh.close();
        }
        return Response.json({ size });
      }
      const f = Bun.file(file);
      if (!(await f.exists())) return new Response("not found", { status: 404 });
      return new Response(f);
    },
  });
  console.log(`ceiling ready http://127.0.0.1:${server.port}`);
}

if (import.meta.main) serve(process.argv[2] ?? mkdtempSync(path.join(os.tmpdir(), "meshstore-ceiling-")));
