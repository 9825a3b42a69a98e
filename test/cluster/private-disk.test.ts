// Private on disk and on the wire: a peer's data folder is its owner's alone, access-key
// secrets sit in the index sealed with a key derived from the mesh key (a copied index
// reveals none), a folder left open by an earlier version is tightened and its clear secrets
// sealed at start, and `/cluster/peers` shows p2p addresses only to token holders.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { Level } from "level";
import { nativeToken } from "../../src/auth/access-keys.ts";
import { createSecretSealer, openRecord } from "../../src/auth/sealed-secret.ts";
import { parseMeshKey } from "../../src/net/mesh-key.ts";
import { encodeTimestamp } from "../../src/util/hlc.ts";
import { Cluster, withCluster } from "../harness/cluster.ts";
import { mustCreateBucket, mustPut, objectPath, request, sameBytes } from "../harness/http.ts";
import { spawnPeer, type PeerProcess } from "../harness/process.ts";
import { seededBytes } from "../harness/random.ts";
import { ADMIN_BEARER, TEST_ADMIN, anonymous, bearer, createKey, s3Path, signedFetch, type Creds } from "../harness/s3.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-private-"));
const spawned: PeerProcess[] = [];
afterAll(() => {
  for (const p of spawned) p.proc.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});
const ANY_PORTS = ["--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"];
const BUCKET = "private-bucket";
/** Above the inline limit, so it lands in a chunk file. */
const BODY = seededBytes(64 * 1024, 0x5eed);

async function start(dir: string): Promise<PeerProcess> {
  const p = await spawnPeer(["--data", dir, ...ANY_PORTS]);
  spawned.push(p);
  return p;
}

async function stop(p: PeerProcess): Promise<void> {
  p.proc.kill("SIGTERM");
  expect(await p.proc.exited).toBe(0);
}

/** Every file and folder under `dir` (itself included), with its permission bits. */
function walk(dir: string): Array<{ path: string; mode: number; dir: boolean }> {
  const out = [{ path: dir, mode: lstatSync(dir).mode & 0o7777, dir: true }];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name);
    out.push({ path: full, mode: lstatSync(full).mode & 0o7777, dir: e.isDirectory() });
  }
  return out;
}

/** Entries that group or others can read, write or enter, as "path mode" lines. */
function openToOthers(dir: string): string[] {
  return walk(dir)
    .filter((e) => e.mode & 0o077)
    .map((e) => `${path.relative(dir, e.path) || "."} ${e.mode.toString(8)}`);
}

/** Which of `secrets`, in clear or base64/base64url/hex, appear in the raw bytes of any file under `dir`. */
function secretsIn(dir: string, secrets: string[]): string[] {
  const forms = secrets.flatMap((s) => [s, ...(["base64", "base64url", "hex"] as const).map((enc) => Buffer.from(s).toString(enc))].map((f) => [s, f] as const));
  const found = new Set<string>();
  for (const e of walk(dir)) {
    if (e.dir) continue;
    const bytes = readFileSync(e.path);
    for (const [secret, form] of forms) if (bytes.includes(form)) found.add(`${secret} in ${path.relative(dir, e.path)}`);
  }
  return [...found];
}

/** The keys shard's rows of a LevelDB index folder (shard "k", then 0x01, then the key id). */
async function keyRows(indexDir: string): Promise<Array<{ id: string; ts: string; value: Record<string, unknown> | null }>> {
  const db = new Level<Buffer, { ts: string; value: Record<string, unknown> | null }>(indexDir, { keyEncoding: "buffer", valueEncoding: "json" });
  try {
    const rows = [];
    for await (const [k, v] of db.iterator({ gte: Buffer.from("k\x01"), lt: Buffer.from("k\x02") })) rows.push({ id: k.subarray(2).toString(), ...v });
    return rows;
  } finally {
    await db.close();
  }
}

/** An S3 GetObject signed with `creds`, and a native GET with `token`: both must return BODY. */
async function expectBothApisServe(p: PeerProcess, creds: Creds, token: string, key: string): Promise<void> {
  const s3 = await signedFetch(p.s3, { method: "GET", path: s3Path(BUCKET, key), creds });
  expect(`${creds.accessKeyId} S3 ${s3.status}`).toBe(`${creds.accessKeyId} S3 200`);
  const native = await request(p.http, "GET", objectPath(BUCKET, key), { headers: { authorization: bearer(token) } });
  expect(`${creds.accessKeyId} native ${native.status}`).toBe(`${creds.accessKeyId} native 200`);
  expect(sameBytes(native.body, BODY)).toBe(true);
}

describe("bun run node keeps its folder private", () => {
  test("modes 0700/0600 throughout; a copied index reveals no secret; an old open folder with clear secrets is tightened and sealed at start; keys still work after restarts", async () => {
    const dir = path.join(root, "peer");
    let p = await start(dir);

    // An access key and objects, through both APIs.
    const key = await createKey(p.http, { name: "reader", buckets: { [BUCKET]: "write" } });
    await mustCreateBucket(p.http, BUCKET);
    await mustPut(p.http, BUCKET, "native-object", BODY);
    const s3put = await signedFetch(p.s3, { method: "PUT", path: s3Path(BUCKET, "s3-object"), body: BODY, creds: key });
    expect(s3put.status).toBe(200);
    await stop(p);

    // Modes: the folder 0700, nothing inside open to group or others (LevelDB's own files included).
    const entries = walk(dir);
    expect(entries[0].mode).toBe(0o700);
    expect(openToOthers(dir)).toEqual([]);
    const files = entries.filter((e) => !e.dir).map((e) => path.relative(dir, e.path));
    // The walk saw what matters: LevelDB tables or logs, a chunk, the identity, the mesh key and the roster.
    expect(files.some((f) => /^index\/.*\.(log|ldb)$/.test(f))).toBe(true);
    expect(files.some((f) => /^chunks\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f))).toBe(true);
    for (const f of ["peer.key", "mesh.key", "members.json"]) expect(files).toContain(f);

    // A copy of the index, without the mesh key: no secret in any byte, and the rows hold sealed ones.
    const copy = path.join(root, "copied-index");
    cpSync(path.join(dir, "index"), copy, { recursive: true });
    expect(secretsIn(copy, [key.secretAccessKey, TEST_ADMIN.secretAccessKey])).toEqual([]);
    const rows = await keyRows(copy);
    expect(rows.map((r) => r.id).sort()).toEqual([TEST_ADMIN.accessKeyId, key.accessKeyId].sort());
    for (const r of rows) {
      expect(Object.keys(r.value ?? {})).not.toContain("secretAccessKey");
      expect(openRecord(r.value, createSecretSealer(randomBytes(32)))).toBeNull();
    }
    // ... while the mesh key opens them (the secret is sealed, not lost).
    const sealer = createSecretSealer(parseMeshKey(readFileSync(path.join(dir, "mesh.key"), "utf8"), "mesh.key"));
    expect(openRecord<Creds>(rows.find((r) => r.id === key.accessKeyId)!.value, sealer)?.secretAccessKey).toBe(key.secretAccessKey);

    // An earlier version's folder: a key row with its secret in clear, everything 755/644.
    const legacy = { accessKeyId: "MKLEGACYKEY000000001", secretAccessKey: "legacy-secret-0123456789-abcdefghijklmnop", name: "old", admin: false, buckets: { [BUCKET]: "read" }, createdMs: Date.now() };
    const db = new Level<Buffer, unknown>(path.join(dir, "index"), { keyEncoding: "buffer", valueEncoding: "json" });
    const legacyTs = encodeTimestamp({ wall: Date.now(), logical: 0, node: "legacy" });
    await db.put(Buffer.from(`k\x01${legacy.accessKeyId}`), { ts: legacyTs, value: legacy });
    await db.close();
    for (const e of walk(dir)) chmodSync(e.path, e.dir ? 0o755 : 0o644);
    expect(secretsIn(path.join(dir, "index"), [legacy.secretAccessKey])).not.toEqual([]); // the control: a clear secret is found

    p = await start(dir);
    expect(openToOthers(dir)).toEqual([]);
    // Keys made before either restart, and the clear one, authenticate through S3 and natively.
    await expectBothApisServe(p, key, key.token, "s3-object");
    await expectBothApisServe(p, legacy, nativeToken(legacy.accessKeyId, legacy.secretAccessKey), "native-object");
    await expectBothApisServe(p, TEST_ADMIN, ADMIN_BEARER.slice("Bearer ".length), "native-object");

    // /cluster/peers: no addresses without a token, all of them with one, 401 for a wrong one.
    const open = await anonymous(p.http, "GET", "/cluster/peers");
    expect(open.status).toBe(200);
    const openText = new TextDecoder().decode(open.body);
    expect(JSON.parse(openText).self.id).toBe(p.peerId);
    expect(openText).not.toContain("addrs");
    for (const a of p.p2p) expect(openText).not.toContain(a.split("/p2p/")[0]);
    const held = await request(p.http, "GET", "/cluster/peers", { headers: { authorization: bearer(key.token) } });
    expect(JSON.parse(new TextDecoder().decode(held.body)).self.addrs).toEqual(p.p2p);
    expect((await anonymous(p.http, "GET", "/cluster/peers", { headers: { authorization: bearer(key.token.slice(0, -3) + "AAA") } })).status).toBe(401);
    await stop(p);

    // The start sealed the clear row in place and compacted: no secret is left on disk.
    expect(openToOthers(dir)).toEqual([]);
    expect(secretsIn(dir, [key.secretAccessKey, TEST_ADMIN.secretAccessKey, legacy.secretAccessKey])).toEqual([]);
    const after = (await keyRows(path.join(dir, "index"))).find((r) => r.id === legacy.accessKeyId)!;
    expect(Object.keys(after.value ?? {})).not.toContain("secretAccessKey");
    // Same timestamp: to every replica it is the same write, so a later revocation still wins.
    expect(after.ts).toBe(legacyTs);
    expect(openRecord<Creds>(after.value, sealer)?.secretAccessKey).toBe(legacy.secretAccessKey);
  }, 40_000);
});

describe("an embedded peer (startPeer, the host's umask untouched)", () => {
  test("its folder is 0700 and its own files 0600; /cluster/peers hides every member's p2p addresses without a token, and shows them with auth off", async () => {
    await withCluster(2, {}, async (c) => {
      await c.waitFor("both alive", () => c.allSee([0, 1], [0, 1], "alive"));
      await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
      await mustPut(c.peer(0).httpUrl, BUCKET, "chunked", BODY);
      for (const slot of c.peers) {
        const entries = walk(slot.dataDir);
        expect(entries[0].mode).toBe(0o700);
        // LevelDB's files follow the host's umask here; the 0700 folder keeps others out of them.
        const ours = entries.filter((e) => !e.path.includes(`${path.sep}index`)).filter((e) => e.mode & 0o077);
        expect(ours.map((e) => `${path.relative(slot.dataDir, e.path)} ${e.mode.toString(8)}`)).toEqual([]);
      }
      expect(walk(c.peers[0].dataDir).some((e) => /chunks\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(e.path))).toBe(true);

      const anon = JSON.parse(new TextDecoder().decode((await anonymous(c.peer(0).httpUrl, "GET", "/cluster/peers")).body));
      expect(anon.peers.map((m: { id: string }) => m.id)).toEqual([c.peers[1].id]);
      for (const m of [anon.self, ...anon.peers]) expect(Object.keys(m).sort()).toEqual(["draining", "http", "id", "incarnation", "lastSeenMs", "state"]);
      const admin = JSON.parse(new TextDecoder().decode((await request(c.peer(0).httpUrl, "GET", "/cluster/peers")).body));
      expect(admin.self.addrs).toEqual(c.peer(0).multiaddrs());
      expect(admin.peers[0].addrs.length).toBeGreaterThan(0);
    });
    const open = await new Cluster({ config: { auth: false } }).start(1);
    try {
      const anon = JSON.parse(new TextDecoder().decode((await anonymous(open.peer(0).httpUrl, "GET", "/cluster/peers")).body));
      expect(anon.self.addrs).toEqual(open.peer(0).multiaddrs());
    } finally {
      await open.teardown();
    }
  }, 30_000);
});
