// `bun run node` as a user runs it: separate processes, real ports, SIGTERM and SIGKILL.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { freePort } from "../harness/ports.ts";
import { runCli, runNodeExpectingExit, spawnPeer, type PeerProcess } from "../harness/process.ts";

/** No MESH_ADMIN_KEY/SECRET: the peer must make its own admin key. */
const NO_ADMIN_ENV = { MESH_ADMIN_KEY: "", MESH_ADMIN_SECRET: "" };

const keysCli = (args: string[]) => runCli("keys", args, { MESH_TOKEN: "" });

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-cli-"));
const spawned: PeerProcess[] = [];
afterAll(() => {
  for (const p of spawned) p.proc.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});
const ANY_PORTS = ["--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"];

async function start(name: string, extra: string[] = [], env?: Record<string, string>) {
  const p = await spawnPeer(["--data", path.join(root, name), ...ANY_PORTS, ...extra], { env });
  spawned.push(p);
  return p;
}

const membersCli = (args: string[]) => runCli("members", args, { MESH_TOKEN: ADMIN_BEARER.slice("Bearer ".length) });

async function views(p: PeerProcess): Promise<Map<string, string>> {
  const body = (await (await fetch(`${p.http}/cluster/peers`)).json()) as { peers: Array<{ id: string; state: string }> };
  return new Map(body.peers.map((m) => [m.id, m.state]));
}

async function until(what: string, check: () => Promise<boolean>, ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await Bun.sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("bun run node", () => {
  test("prints one ready line, answers /health, keeps its identity, and stops on SIGTERM", async () => {
    const p = await start("single");
    const health = await fetch(`${p.http}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", peerId: p.peerId });
    expect(statSync(path.join(root, "single", "peer.key")).mode & 0o777).toBe(0o600);

    const missing = await fetch(`${p.http}/no/such/route`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "NotFound", message: "no such route" } });

    p.proc.kill("SIGTERM");
    expect(await p.proc.exited).toBe(0);
    const again = await start("single");
    expect(again.peerId).toBe(p.peerId);
    again.proc.kill("SIGTERM");
    expect(await again.proc.exited).toBe(0);
  }, 30_000);

  test("a new mesh prints its admin key once and keeps it 0600; the keys command creates, lists and revokes keys", async () => {
    const dir = path.join(root, "fresh");
    const p = await start("fresh", [], NO_ADMIN_ENV);
    const printed = p.output.join("");
    const file = path.join(dir, "admin-key.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const admin = JSON.parse(readFileSync(file, "utf8")) as { accessKeyId: string; secretAccessKey: string; token: string };
    expect(printed).toContain(admin.accessKeyId);
    expect(printed).toContain(admin.secretAccessKey);
    expect(printed).toContain(admin.token);

    const auth = { authorization: `Bearer ${admin.token}` };
    expect((await fetch(`${p.http}/buckets`)).status).toBe(401);
    expect((await fetch(`${p.http}/buckets/fresh-bucket`, { method: "PUT", headers: auth })).status).toBe(200);

    const common = ["--http", p.http, "--data", dir];
    const created = await keysCli(["create", ...common, "--name", "reader", "--bucket", "fresh-bucket=read"]);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { accessKeyId: string; token: string; buckets: Record<string, string> };
    expect(key.buckets).toEqual({ "fresh-bucket": "read" });
    const reader = { authorization: `Bearer ${key.token}` };
    expect((await fetch(`${p.http}/buckets/fresh-bucket/objects`, { headers: reader })).status).toBe(200);
    expect((await fetch(`${p.http}/buckets/fresh-bucket/objects/x`, { method: "PUT", body: "x", headers: reader })).status).toBe(403);
    const listed = await keysCli(["list", ...common]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(key.accessKeyId);
    expect(listed.stdout).not.toContain(admin.secretAccessKey);
    expect((await keysCli(["revoke", ...common, key.accessKeyId])).code).toBe(0);
    expect((await fetch(`${p.http}/buckets/fresh-bucket/objects`, { headers: reader })).status).toBe(401);
    const bad = await keysCli(["create", ...common, "--bucket", "fresh-bucket=everything"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith("meshstore: ");

    p.proc.kill("SIGTERM");
    expect(await p.proc.exited).toBe(0);
    const again = await start("fresh", [], NO_ADMIN_ENV);
    expect(again.output.join("")).not.toContain(admin.secretAccessKey);
    expect((await fetch(`${again.http}/buckets`, { headers: auth })).status).toBe(200);
    again.proc.kill("SIGTERM");
    expect(await again.proc.exited).toBe(0);
  }, 60_000);

  test("--insecure-no-auth warns loudly and serves without credentials", async () => {
    const p = await start("open", ["--insecure-no-auth"], NO_ADMIN_ENV);
    await Bun.sleep(100);
    expect(p.output.join("")).toMatch(/WARNING: --insecure-no-auth/);
    expect((await fetch(`${p.http}/buckets/open-bucket`, { method: "PUT" })).status).toBe(200);
    expect((await fetch(`${p.http}/buckets/open-bucket/objects/k`, { method: "PUT", body: "hello" })).status).toBe(200);
    expect(await (await fetch(`${p.http}/buckets/open-bucket/objects/k`)).text()).toBe("hello");
    p.proc.kill("SIGTERM");
    expect(await p.proc.exited).toBe(0);
  }, 30_000);

  test("bad flags give a clear message and a non-zero exit, never a stack trace", async () => {
    for (const args of [["--bogus"], ["--rf", "many"], ["--http", "localhost:http"], ["--bootstrap", "/ip4/127.0.0.1/tcp/1"]]) {
      const r = await runNodeExpectingExit(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toStartWith("meshstore: ");
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 30_000);

  test("three processes form a mesh, notice a kill -9, and welcome the peer back", async () => {
    const fast = ["--dead-after", "2"];
    const a = await start("a", fast);
    const keyFile = path.join(root, "a", "mesh.key");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(a.output.join("")).toContain(`its key, which every peer needs to connect, is in\n  ${keyFile}`);
    // Joining needs the key; a malformed or group-readable key file is refused, naming the file.
    const noKey = await runNodeExpectingExit(["--data", path.join(root, "nokey"), ...ANY_PORTS, "--bootstrap", a.p2p[0]]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("joining a mesh needs its key: pass --mesh-key FILE");
    const garbage = path.join(root, "garbage.key");
    writeFileSync(garbage, "not a key", { mode: 0o600 });
    const badKey = await runNodeExpectingExit(["--data", path.join(root, "badkey"), ...ANY_PORTS, "--mesh-key", garbage]);
    expect([badKey.code, badKey.stderr.split("\n")[0]]).toEqual([2, `meshstore: ${garbage} is not a mesh key: expected the lines "/key/swarm/psk/1.0.0/", "/base16/" and 64 hex digits`]);
    const shared = path.join(root, "shared.key");
    expect((await keysCli(["mesh-key", "--out", shared])).code).toBe(0);
    expect(statSync(shared).mode & 0o777).toBe(0o600);
    chmodSync(shared, 0o644);
    const open = await runNodeExpectingExit(["--data", path.join(root, "openkey"), ...ANY_PORTS, "--mesh-key", shared]);
    expect(open.code).toBe(2);
    expect(open.stderr).toContain(`the mesh key ${shared} is readable by other users`);
    const key = ["--mesh-key", keyFile];
    // A peer writes the addresses it is joined through to DIR/p2p-address (what the README's 3-peer mesh reads).
    const addressFile = path.join(root, "a", "p2p-address");
    expect(statSync(addressFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(addressFile, "utf8")).toBe(a.p2p.map((addr) => `${addr}\n`).join(""));
    const b = await start("b", [...fast, ...key, "--bootstrap", readFileSync(addressFile, "utf8").split("\n")[0]]);
    const c = await start("c", [...fast, ...key, "--bootstrap", b.p2p[0]]);
    const all = [a, b, c];
    const seesAll = async (p: PeerProcess, state: string, ids: string[]) => {
      const v = await views(p);
      return ids.every((id) => v.get(id) === state);
    };
    await until("all alive", async () => (await Promise.all(all.map((p) => seesAll(p, "alive", all.filter((q) => q !== p).map((q) => q.peerId))))).every(Boolean), 15_000);

    b.proc.kill("SIGKILL");
    await b.proc.exited;
    await until("b dead on a and c", async () => (await seesAll(a, "dead", [b.peerId])) && (await seesAll(c, "dead", [b.peerId])), 20_000);

    const b2 = await start("b", [...fast, ...key, "--bootstrap", c.p2p[0]]);
    expect(b2.peerId).toBe(b.peerId);
    await until("b alive again on a and c", async () => (await seesAll(a, "alive", [b.peerId])) && (await seesAll(c, "alive", [b.peerId])), 15_000);

    // `bun run members`: list, refuse to remove a live member, remove a dead one for good.
    const listed = await membersCli(["list", "--http", a.http]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${b.peerId}  alive`);
    expect(listed.stdout).toContain("members counted for quorums: 3; copies kept r=3; write quorum W=2");
    const live = await membersCli(["remove", "--http", a.http, c.peerId]);
    expect(live.code).toBe(1);
    expect(live.stderr).toContain("MemberNotDead");
    c.proc.kill("SIGKILL");
    await c.proc.exited;
    await until("c dead on a", () => seesAll(a, "dead", [c.peerId]), 20_000);
    const removed = await membersCli(["remove", "--http", a.http, c.peerId]);
    expect(removed.stdout).toContain("quorums now count 2 member(s): r=2, W=2");
    expect(removed.code).toBe(0);
  }, 90_000);

  test("while starting, every route answers 503 with Retry-After or works, never 500", async () => {
    const seen = new Map<string, number>();
    for (let run = 0; run < 3; run++) {
      const [http, s3] = [await freePort(), await freePort()];
      const polling = { on: true };
      const poll = async (url: string, headers: Record<string, string> = {}) => {
        while (polling.on) {
          const res = await fetch(url, { headers }).catch(() => undefined);
          if (res) {
            seen.set(`${res.status}`, (seen.get(`${res.status}`) ?? 0) + 1);
            if (res.status === 503) expect(res.headers.get("retry-after")).toBe("1");
            expect(res.status).not.toBe(500);
            await res.arrayBuffer();
          } else await Bun.sleep(2);
        }
      };
      const pollers = [poll(`http://127.0.0.1:${http}/cluster/status`), poll(`http://127.0.0.1:${http}/buckets`, { authorization: ADMIN_BEARER }), poll(`http://127.0.0.1:${s3}/`)];
      const p = await start(`starting-${run}`, ["--http", `127.0.0.1:${http}`, "--s3", `127.0.0.1:${s3}`]);
      polling.on = false;
      await Promise.all(pollers);
      p.proc.kill("SIGTERM");
      await p.proc.exited;
    }
    console.log(`responses while starting: ${JSON.stringify(Object.fromEntries(seen))}`);
    expect(seen.get("500")).toBeUndefined();
  }, 60_000);
});
