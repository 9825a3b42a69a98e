// The first hour of a new user, with real processes: the peer stops with its `npx`
// launcher, a p2p port in use is one line, Ctrl-C during uploads is one line per upload
// cut off, a lone peer says how many copies it keeps, a corrupt index is one line.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { CreateMultipartUploadCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { runNodeExpectingExit, spawnPeer, type PeerProcess } from "../harness/process.ts";
import { s3Client } from "../harness/s3.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-first-hour-"));
const spawned: PeerProcess[] = [];
const strays: number[] = [];
afterAll(() => {
  for (const p of spawned) p.proc.kill("SIGKILL");
  for (const pid of strays) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});
const ANY_PORTS = ["--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"];

/** The pid of the peer process (`src/cli.ts node`) using `dataDir`, from /proc. */
function peerPid(dataDir: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (args.some((a) => a.endsWith("src/cli.ts")) && args.includes(dataDir)) return Number(entry);
    } catch {
      // exited while we looked
    }
  }
  return undefined;
}

/** Running: present in /proc and not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Ms until `pid` is no longer running (throws after `ms`). */
async function goneWithin(pid: number, ms: number): Promise<number> {
  const began = performance.now();
  while (performance.now() - began < ms) {
    if (!running(pid)) return Math.round(performance.now() - began);
    await Bun.sleep(20);
  }
  throw new Error(`process ${pid} still running ${ms} ms later`);
}

/** Lines of a process's stderr that look like stack frames. */
const stackFrames = (text: string) => text.split("\n").filter((l) => /^\s+at /.test(l));

describe("the npx launcher", () => {
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`${signal} of npx -y bun run node stops the peer`, async () => {
      const data = path.join(root, `npx-${signal}`);
      // The first npx run may download Bun.
      const p = await spawnPeer(["--data", data, ...ANY_PORTS], { viaNpx: true, timeoutMs: 90_000 });
      spawned.push(p);
      const pid = peerPid(path.resolve(data));
      expect(pid).toBeNumber();
      strays.push(pid!);
      const status = (await (await fetch(`${p.http}/cluster/status`)).json()) as { process: { pid: number } };
      expect(status.process.pid).toBe(pid!);

      p.proc.kill(signal);
      const ms = await goneWithin(pid!, 5000);
      console.log(`${signal} of npx: peer gone ${ms} ms later`);
      await expect(fetch(`${p.http}/health`)).rejects.toThrow();
    }, 120_000);
  }
});

describe("start-up errors are one line", () => {
  test("a p2p port in use: one line naming the address and the flag, exit 1", async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await runNodeExpectingExit(["--data", path.join(root, "p2p-in-use"), "--p2p", `/ip4/127.0.0.1/tcp/${port}`, "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`meshstore: the p2p address /ip4/127.0.0.1/tcp/${port} is in use (EADDRINUSE); pick another with --p2p`);
    } finally {
      holder.close();
    }
  });
});

/** A PUT through node:http that sends 64 KiB every 50 ms of a `total`-byte body until the connection ends. */
function slowUpload(url: string, headers: Record<string, string>, total: number): { sent: () => number; ended: Promise<string> } {
  let sent = 0;
  const ended = new Promise<string>((resolve) => {
    const req = http.request(url, { method: "PUT", headers: { ...headers, "content-length": String(total) } });
    const piece = new Uint8Array(64 * 1024).fill(7);
    const timer = setInterval(() => {
      if (sent + piece.length > total) return;
      req.write(piece);
      sent += piece.length;
    }, 50);
    req.on("response", (res) => {
      clearInterval(timer);
      res.resume();
      resolve(`answered ${res.statusCode}`);
    });
    req.on("error", (err) => {
      clearInterval(timer);
      resolve(`connection ended (${(err as NodeJS.ErrnoException).code ?? err.message})`);
    });
  });
  return { sent: () => sent, ended };
}

describe("a lone peer, Ctrl-C during uploads, then a corrupt index", () => {
  const data = path.join(root, "lone");

  test("says at start and in /cluster/status how many copies it keeps; SIGINT cuts off two uploads with one line each", async () => {
    const p = await spawnPeer(["--data", data, ...ANY_PORTS, "--stop-grace", "1"]);
    spawned.push(p);
    const warning = "1 member, RF 3: keeping 1 copy of each chunk until more peers join";
    const status = (await (await fetch(`${p.http}/cluster/status`)).json()) as { copies: unknown };
    expect(status.copies).toEqual({ rf: 3, possible: 1, warning });
    expect(p.output.join("").split("\n").filter((l) => l.includes(warning))).toHaveLength(1);

    const auth = { authorization: ADMIN_BEARER };
    expect((await fetch(`${p.http}/buckets/uploads`, { method: "PUT", headers: auth })).ok).toBe(true);
    const s3 = s3Client(p.s3);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "uploads", Key: "big-multipart" }));
    const partUrl = await getSignedUrl(s3, new UploadPartCommand({ Bucket: "uploads", Key: "big-multipart", UploadId, PartNumber: 1 }), { expiresIn: 300 });
    const total = 64 * 1024 * 1024;
    const native = slowUpload(`${p.http}/buckets/uploads/objects/big-native?x=1`, auth, total);
    const part = slowUpload(partUrl, {}, total);
    while (native.sent() < 256 * 1024 || part.sent() < 256 * 1024) await Bun.sleep(20);

    const began = performance.now();
    p.proc.kill("SIGINT");
    const code = await p.proc.exited;
    const exitMs = Math.round(performance.now() - began);
    console.log(`SIGINT with 2 uploads in flight, --stop-grace 1: exited ${exitMs} ms later`);
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(2000);
    expect(await native.ended).toStartWith("connection ended");
    expect(await part.ended).toStartWith("connection ended");

    const stderr = p.output.join("");
    expect(stackFrames(stderr)).toEqual([]);
    const cut = stderr.split("\n").filter((l) => l.includes("cut off"));
    console.log(stderr.split("\n").filter((l) => l.includes("stopping")).join("\n"));
    expect(cut).toHaveLength(2);
    expect(cut.some((l) => / cut off PUT \/buckets\/uploads\/objects\/big-native after \d+ bytes received, 0 bytes sent$/.test(l))).toBe(true);
    expect(cut.some((l) => / cut off PUT \/uploads\/big-multipart after \d+ bytes received, 0 bytes sent$/.test(l))).toBe(true);
    // The query (a presigned URL's signature) is never logged.
    expect(stderr).not.toContain("X-Amz-Signature");
  }, 30_000);

  test("garbage in index/CURRENT: one line naming the index folder and LevelDB's cause, exit 1", async () => {
    const current = path.join(data, "index", "CURRENT");
    expect(existsSync(current)).toBe(true);
    writeFileSync(current, "garbage");
    const r = await runNodeExpectingExit(["--data", data, ...ANY_PORTS]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith(`meshstore: cannot open the index ${path.resolve(data, "index")}: `);
    expect(lines[0]).toMatch(/CURRENT|Corruption/i);
  }, 20_000);
});
