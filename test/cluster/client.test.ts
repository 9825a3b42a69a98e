// The `meshstore` command (src/client/) as a user runs it: a real child process
// (`bun run mesh ...`) against 3 peers over TCP. A folder of 200 mixed files goes up with
// `cp -r` and back down identical; `mirror --remove` converges and a second run changes
// nothing; --json lines are checked field by field; `stat` names 3 holders per chunk; exit
// codes 1 and 2; search (schema set, cp --meta, find by a text query, its errors); a 100 MiB multipart upload killed after 3 parts resumes with `cp
// --continue`, sending only the parts the peer lacks (counted by the peer's /metrics); and
// the progress bar reaches 100% on a pseudo-terminal and is absent when piped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { ADMIN_BEARER, TEST_ADMIN } from "../harness/credentials.ts";
import { freePort } from "../harness/ports.ts";
import { mulberry32, seededBytes } from "../harness/random.ts";
import { suiteLeaks } from "../harness/leak-check.ts";

const T = 60_000;
const MiB = 1024 * 1024;
const BUCKET = "client-test";
let cluster: Cluster;
const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-client-"));
const configDir = path.join(root, "config");
const seed = 0x5eed13;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `bun run mesh args` to its end (killed after `ms`); its output goes to the suite's secret check. */
async function mesh(args: string[], env: Record<string, string> = {}, ms = 30_000): Promise<Run> {
  const proc = Bun.spawn([process.execPath, "run", "--silent", "mesh", ...args], {
    env: { ...process.env, MESHSTORE_CONFIG_DIR: configDir, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  for (const [name, text] of [["stdout", stdout], ["stderr", stderr]]) {
    const sink = suiteLeaks.lines(`meshstore ${args[0]} ${name}`);
    sink.write(text);
    sink.end();
  }
  return { code, stdout, stderr };
}

/** The JSON lines of a run's stdout. */
const jsonLines = (r: Run) =>
  r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Insist on exit code `code`, showing the output when it differs. */
function expectCode(r: Run, code: number): void {
  expect(`exit ${r.code}\n${r.stderr.slice(0, 2000)}`).toStartWith(`exit ${code}\n`);
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** A tree of `n` files, seeded: sizes from 0 bytes to 3 MiB (most small), up to 3 folders deep. */
function makeTree(dir: string, n: number): Map<string, number> {
  const rand = mulberry32(seed);
  const made = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const depth = Math.floor(rand() * 4);
    const folders = Array.from({ length: depth }, () => `d${Math.floor(rand() * 4)}`);
    const r = rand();
    const size = i % 25 === 0 ? 0 : r < 0.85 ? Math.floor(rand() * 64 * 1024) : Math.floor(rand() * 3 * MiB);
    const rel = [...folders, `f${i}${rand() < 0.3 ? ".bin" : ".txt"}`].join("/");
    mkdirSync(path.join(dir, ...folders), { recursive: true });
    writeFileSync(path.join(dir, rel), seededBytes(size, seed + i));
    made.set(rel, size);
  }
  return made;
}

/** Every file under `dir`, relative, with its MD5. */
function digestTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const full = path.join(dir, rel);
    if (statSync(full).isFile()) out.set(rel.split(path.sep).join("/"), md5(readFileSync(full)));
  }
  return out;
}

/** The peer's count of part uploads answered 200 (its /metrics). */
async function partPuts(i: number): Promise<number> {
  const text = await (await fetch(`${cluster.peer(i).httpUrl}/metrics`, { headers: { authorization: ADMIN_BEARER } })).text();
  const line = text.split("\n").find((l) => l.startsWith("meshstore_requests_total{") && l.includes('operation="PUT /buckets/:bucket/multipart/:uploadId/parts/:partNumber"') && l.includes('code="200"'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

beforeAll(async () => {
  cluster = await startConverged(3);
  const set = await mesh(["alias", "set", "m", cluster.peer(0).httpUrl, "--access-key", TEST_ADMIN.accessKeyId, "--secret", TEST_ADMIN.secretAccessKey, "--s3", cluster.peer(0).s3Url]);
  expectCode(set, 0);
  expectCode(await mesh(["mb", `m/${BUCKET}`]), 0);
}, T);

afterAll(async () => {
  await teardownCluster(cluster);
  rmSync(root, { recursive: true, force: true });
});

describe("meshstore client", () => {
  test("the alias store is private: folder 0700, file 0600, and alias ls never shows a secret", async () => {
    expect(statSync(configDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(configDir, "config.json")).mode & 0o777).toBe(0o600);
    const ls = await mesh(["alias", "ls", "--json"]);
    expectCode(ls, 0);
    expect(jsonLines(ls)).toEqual([{ status: "success", op: "alias ls", alias: "m", url: cluster.peer(0).httpUrl, auth: "access-key", s3: cluster.peer(0).s3Url }]);
    expect(ls.stdout).not.toContain(TEST_ADMIN.secretAccessKey);
  });

  test("cp -r of 200 mixed files up and back gives identical files; mirror --remove converges, then changes nothing", async () => {
    const src = path.join(root, "tree");
    const made = makeTree(src, 200);
    const started = performance.now();
    const up = await mesh(["cp", "-r", "--json", src, `m/${BUCKET}/tree`]);
    const upMs = performance.now() - started;
    expectCode(up, 0);
    const ups = jsonLines(up);
    expect(ups.length).toBe(200);
    expect(ups.every((l) => l.status === "success" && l.op === "cp")).toBe(true);
    const back = path.join(root, "back");
    const t1 = performance.now();
    const down = await mesh(["cp", "-r", "-q", `m/${BUCKET}/tree`, back]);
    const downMs = performance.now() - t1;
    expectCode(down, 0);
    expect(down.stdout).toBe("");
    const want = digestTree(src);
    expect(want.size).toBe(200);
    expect(digestTree(back)).toEqual(want);
    console.log(`cp -r of 200 files (${(([...made.values()].reduce((a, b) => a + b, 0)) / MiB).toFixed(1)} MiB): up ${upMs.toFixed(0)} ms, down ${downMs.toFixed(0)} ms`);

    // Change the source: 5 files gone, 3 new; --remove deletes the 5, copies the 3.
    const gone = [...made.keys()].slice(10, 15);
    for (const rel of gone) unlinkSync(path.join(src, rel));
    for (const name of ["new-a.txt", "new-b.txt", "d9/new-c.txt"]) {
      mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
      writeFileSync(path.join(src, name), `fresh ${name}`);
    }
    const dry = await mesh(["mirror", "--remove", "--dry-run", "--json", "--exclude", "new-b.txt", src, `m/${BUCKET}/tree`]);
    expectCode(dry, 0);
    expect(jsonLines(dry).at(-1)).toMatchObject({ action: "summary", copy: 2, remove: 5, overwrite: 0, dryRun: true });
    const first = await mesh(["mirror", "--remove", "--json", src, `m/${BUCKET}/tree`]);
    expectCode(first, 0);
    const lines = jsonLines(first);
    expect(lines.at(-1)).toEqual({ status: "success", op: "mirror", action: "summary", source: src, target: `m/${BUCKET}/tree`, copy: 3, overwrite: 0, remove: 5, differ: 0, same: 195, dryRun: false });
    expect(lines.filter((l) => l.action === "remove").map((l) => l.target).sort()).toEqual(gone.map((rel) => `m/${BUCKET}/tree/${rel}`).sort());
    const second = await mesh(["mirror", "--remove", src, `m/${BUCKET}/tree`]);
    expectCode(second, 0);
    expect(second.stdout.trim()).toBe("nothing to do: 198 already the same");
    const listed = jsonLines(await mesh(["ls", "-r", "--json", `m/${BUCKET}/tree/`]));
    expect(listed.length).toBe(198);
  }, T);

  test("--json lines: cp (local to mesh, mesh to mesh, read back with cat), uploads (its record through another peer), admin info, admin drain with its reason and --cancel, ls, stat (3 distinct holders per chunk), presign, rm", async () => {
    const file = path.join(root, "three-mib.bin");
    const bytes = seededBytes(3 * MiB + 123, seed + 1000);
    writeFileSync(file, bytes);
    const cp = await mesh(["--json", "cp", file, `m/${BUCKET}/one/`]);
    expectCode(cp, 0);
    const [line] = jsonLines(cp);
    expect(line).toEqual({ status: "success", op: "cp", source: file, target: `m/${BUCKET}/one/three-mib.bin`, size: bytes.length, etag: md5(bytes), uploadToken: expect.stringMatching(/^up-[0-9a-f]{24}$/) });

    // The upload's progress record, read through another peer by the token cp printed.
    expectCode(await mesh(["alias", "set", "m2", cluster.peer(2).httpUrl, "--access-key", TEST_ADMIN.accessKeyId, "--secret", TEST_ADMIN.secretAccessKey]), 0);
    const record = await mesh(["uploads", "--json", "m2", String(line.uploadToken)]);
    expectCode(record, 0);
    expect(jsonLines(record)).toEqual([
      { status: "success", op: "uploads", token: line.uploadToken, bucket: BUCKET, key: "one/three-mib.bin", state: "success", bytesReceived: bytes.length, size: bytes.length, startedMs: expect.any(Number), finishedMs: expect.any(Number) },
    ]);
    const recent = jsonLines(await mesh(["uploads", "--json", "--limit", "200", "m2"]));
    expect(recent.find((r) => r.token === line.uploadToken)?.state).toBe("success");
    const table = await mesh(["uploads", "m2", String(line.uploadToken)]);
    expect(table.stdout).toContain(`${line.uploadToken}`);
    expect(table.stdout).toContain(`${BUCKET}/one/three-mib.bin`);

    // Mesh to mesh: through another alias (another peer), then read back with cat.
    const copied = await mesh(["cp", "--json", `m/${BUCKET}/one/three-mib.bin`, `m2/${BUCKET}/copied/three.bin`]);
    expectCode(copied, 0);
    expect(jsonLines(copied)[0]).toMatchObject({ status: "success", op: "cp", source: `m/${BUCKET}/one/three-mib.bin`, target: `m2/${BUCKET}/copied/three.bin`, size: bytes.length });
    const catProc = Bun.spawn([process.execPath, "run", "--silent", "mesh", "cat", `m/${BUCKET}/copied/three.bin`], { env: { ...process.env, MESHSTORE_CONFIG_DIR: configDir }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [catBytes, catCode] = await Promise.all([new Response(catProc.stdout).arrayBuffer(), catProc.exited]);
    expect([catCode, md5(new Uint8Array(catBytes))]).toEqual([0, md5(bytes)]);

    // admin info: every peer once, then the totals.
    const info0 = jsonLines(await mesh(["admin", "info", "--json", "m"]));
    expect(info0.filter((l) => typeof l.peer === "string").map((l) => [l.peer, l.state, l.version])).toEqual(
      expect.arrayContaining(cluster.peers.map((p) => [p.id, "alive", expect.any(String)])),
    );
    expect(info0.at(-1)).toMatchObject({ op: "admin info", totals: { members: 3, unanswered: 0 } });

    // admin drain on a mesh of exactly RF peers says why it cannot complete; --cancel ends it.
    const last = cluster.peers[2].id;
    const drain = jsonLines(await mesh(["admin", "drain", "--json", "m", last.slice(-8)]))[0];
    expect(drain).toMatchObject({ op: "admin drain", peer: last, draining: true, safeToStop: false, reason: expect.stringContaining("3 members, RF 3: nowhere to move the data") });
    const cancel = jsonLines(await mesh(["admin", "drain", "--json", "--cancel", "m", last]))[0];
    expect(cancel).toMatchObject({ op: "admin drain cancel", peer: last, draining: false });

    const ls = jsonLines(await mesh(["ls", "--json", `m/${BUCKET}/one/`]));
    expect(ls).toEqual([{ status: "success", type: "file", key: "one/three-mib.bin", size: bytes.length, etag: md5(bytes), lastModified: expect.any(String) }]);

    const st = await mesh(["stat", "--json", `m/${BUCKET}/one/three-mib.bin`]);
    expectCode(st, 0);
    const info = jsonLines(st)[0] as { size: number; etag: string; chunks: Array<{ holders: string[] }>; inline: boolean };
    expect([info.size, info.etag, info.inline]).toEqual([bytes.length, md5(bytes), false]);
    expect(info.chunks.length).toBeGreaterThan(0);
    const ids = new Set(cluster.peers.map((p) => p.id));
    for (const c of info.chunks) {
      expect(new Set(c.holders).size).toBe(3);
      expect(c.holders.every((h) => ids.has(h))).toBe(true);
    }
    const human = await mesh(["stat", `m/${BUCKET}/one/three-mib.bin`]);
    expect(human.stdout).toContain("held by ");

    const pre = jsonLines(await mesh(["presign", "--json", "--expires", "10m", `m/${BUCKET}/one/three-mib.bin`]))[0] as { url: string };
    const got = await fetch(pre.url);
    expect(got.status).toBe(200);
    expect(md5(new Uint8Array(await got.arrayBuffer()))).toBe(md5(bytes));

    const rm = await mesh(["rm", "--json", `m/${BUCKET}/one/three-mib.bin`]);
    expect(jsonLines(rm)).toEqual([{ status: "success", op: "rm", target: `m/${BUCKET}/one/three-mib.bin`, key: "one/three-mib.bin" }]);
  }, T);

  test("search: schema set --wait, cp --meta (a PUT and a multipart upload), find by a text query (lines, --json, pages, --all), a malformed query's error, schema rm", async () => {
    const b = "client-search";
    expectCode(await mesh(["mb", `m/${b}`]), 0);
    const set = await mesh(["schema", "set", "--wait", "--json", `m/${b}`, "year=number", "title=string", "tags=keywords"]);
    expectCode(set, 0);
    expect(jsonLines(set)).toEqual([
      {
        status: "success",
        op: "schema set",
        target: `m/${b}`,
        bucket: b,
        fields: { year: { type: "number", state: "ready" }, title: { type: "string", state: "ready" }, tags: { type: "keywords", state: "ready" } },
        state: "ready",
        progress: { peersReady: 3, peers: 3, objectsIndexed: expect.any(Number) },
      },
    ]);
    // Merged, not replaced: the others stay when draft is added.
    const merged = await mesh(["schema", "set", `m/${b}`, "draft=bool"]);
    expectCode(merged, 0);
    expect(merged.stdout).toMatch(/^schema of m\/client-search: (ready|building)/);
    expect(merged.stdout.split("\n").slice(1).map((l) => l.trim().split(/ +/).slice(0, 2).join(" "))).toEqual(["draft bool", "tags keywords", "title string", "year number", ""]);

    const files = { "a.txt": ["year=2019", "title=Mesh one"], "b.txt": ["year=2021", "title=Mesh two", "tags=x,y"], "c.txt": ["year=2023", "title=Other"], "d.bin": ["year=2022", "title=Mesh big"] };
    for (const [name, meta] of Object.entries(files)) {
      const file = path.join(root, name);
      writeFileSync(file, `body of ${name}`);
      // d.bin goes up as a (one-part) multipart upload: its metadata rides on the upload's start.
      const r = await mesh(["cp", ...meta.flatMap((m) => ["--meta", m]), ...(name === "d.bin" ? ["--multipart-threshold", "1"] : []), "--json", file, `m/${b}/${name}`]);
      expectCode(r, 0);
      if (name === "d.bin") expect(jsonLines(r)[0]).toMatchObject({ multipart: { parts: 1 } });
    }

    const query = 'year>=2020 and title prefix "Mesh"';
    const found = await mesh(["find", `m/${b}`, query]);
    expectCode(found, 0);
    const lines = found.stdout.trim().split("\n");
    expect(lines.map((l) => l.split(/\s+/)[4])).toEqual(["b.txt", "d.bin"]);
    expect(lines[0]).toEndWith(' 13 B  b.txt  tags=x,y  title="Mesh two"  year=2021');
    expect(found.stderr).toBe("");

    // --json, sorted by year descending, a page of one: the object, then the cursor (and a hint on stderr without --json).
    const page = await mesh(["find", "--json", "--sort", "year", "--desc", "--limit", "1", `m/${b}`, "year", ">=", "2020"]);
    expectCode(page, 0);
    const [first, more] = jsonLines(page);
    expect(first).toEqual({ status: "success", op: "find", type: "object", key: "c.txt", size: 13, etag: expect.any(String), lastModified: expect.any(String), contentType: "text/plain", meta: { year: "2023", title: "Other" } });
    expect(more).toEqual({ status: "success", op: "find", type: "more", nextCursor: expect.any(String) });
    const next = await mesh(["find", "--sort", "year", "--desc", "--limit", "1", "--cursor", String(more.nextCursor), `m/${b}`, "year>=2020"]);
    expect(next.stdout).toContain("d.bin");
    expect(next.stderr).toContain("more objects match: add --all");
    const all = await mesh(["find", "--json", "--all", "--limit", "1", "--sort", "year", `m/${b}`]);
    expectCode(all, 0);
    expect(jsonLines(all).map((l) => [l.type, l.key])).toEqual([["object", "a.txt"], ["object", "b.txt"], ["object", "d.bin"], ["object", "c.txt"]]);

    // A malformed query: the peer's code and position, a caret under the fault, exit 1.
    const bad = await mesh(["find", `m/${b}`, "year >= 2020 and title prefix"]);
    expectCode(bad, 1);
    expect(bad.stderr).toContain("InvalidQuery");
    expect(bad.stderr).toMatch(/at position (\d+)/);
    const at = Number(/at position (\d+)/.exec(bad.stderr)![1]);
    expect(bad.stderr).toContain(`  year >= 2020 and title prefix\n  ${" ".repeat(at)}^\n`);

    // schema rm: a field, then the whole schema (after which find by that field is refused).
    const rmField = jsonLines(await mesh(["schema", "rm", "--json", `m/${b}`, "tags"]))[0] as { fields: Record<string, unknown> };
    expect(Object.keys(rmField.fields).sort()).toEqual(["draft", "title", "year"]);
    expectCode(await mesh(["schema", "rm", `m/${b}`]), 0);
    const none = await mesh(["schema", `m/${b}`]);
    expectCode(none, 1);
    expect(none.stderr).toContain("has no search schema");
  }, T);

  test("rb refuses a bucket with objects (exit 1); rb --force removes its objects, aborts its open multipart upload, then the bucket", async () => {
    const peer = cluster.peer(1).httpUrl;
    const auth = { authorization: ADMIN_BEARER };
    expectCode(await mesh(["mb", "m/doomed"]), 0);
    expect((await fetch(`${peer}/buckets/doomed/objects/kept.txt`, { method: "PUT", headers: auth, body: "x" })).status).toBe(200);
    const started = await fetch(`${peer}/buckets/doomed/multipart?key=half/done.bin`, { method: "POST", headers: auth });
    const { uploadId } = (await started.json()) as { uploadId: string };
    const token = started.headers.get("x-upload-token");
    expect((await fetch(`${peer}/buckets/doomed/multipart/${uploadId}/parts/1?key=half/done.bin`, { method: "PUT", headers: auth, body: "part" })).status).toBe(200);

    // rm -r takes a folder: "kept" is no folder, so nothing goes (exit 1), and kept.txt stays.
    const noFolder = await mesh(["rm", "-r", "--force", "m/doomed/kept"]);
    expectCode(noFolder, 1);
    expect(noFolder.stderr).toContain("nothing under kept/");
    const refused = await mesh(["rb", "m/doomed"]);
    expectCode(refused, 1);
    expect(refused.stderr).toContain("BucketNotEmpty");
    const forced = await mesh(["rb", "--force", "--json", "m/doomed"]);
    expectCode(forced, 0);
    expect(jsonLines(forced)).toEqual([
      { status: "success", op: "abort", bucket: "doomed", key: "half/done.bin", uploadId },
      { status: "success", op: "rm", target: "m/doomed/kept.txt", key: "kept.txt" },
      { status: "success", op: "rb", bucket: "doomed", target: "m/doomed" },
    ]);
    // Aborted, not just gone with its bucket: its record says so.
    expect(await (await fetch(`${cluster.peer(2).httpUrl}/uploads/${token}`, { headers: auth })).json()).toMatchObject({ state: "fail", error: "aborted by the client" });
    expect((await fetch(`${peer}/buckets`, { headers: auth }).then((r) => r.json()) as { buckets: Array<{ name: string }> }).buckets.map((b) => b.name)).not.toContain("doomed");
  }, T);

  test("exit codes: a missing object is 1 (the others still go), usage errors are 2 with one line, an unreachable peer is named", async () => {
    const missing = await mesh(["cat", `m/${BUCKET}/no/such/object`]);
    expectCode(missing, 1);
    expect(missing.stderr).toStartWith("meshstore: ");
    expect(missing.stderr).toContain("NoSuchKey");

    const ok = path.join(root, "ok.txt");
    writeFileSync(ok, "ok");
    const partly = await mesh(["cp", "--json", `m/${BUCKET}/no/such/object`, ok, `m/${BUCKET}/partly/`]);
    expectCode(partly, 1);
    expect(jsonLines(partly).map((l) => l.status)).toEqual(["error", "success"]);

    for (const [args, message] of [
      [["cp", "--bogus", ok, `m/${BUCKET}/x`], "meshstore: unknown flag --bogus (see meshstore cp --help)"],
      [["ls"], "meshstore: missing ALIAS[/BUCKET[/PREFIX]] (see meshstore ls --help)"],
      [["frobnicate"], 'meshstore: unknown command "frobnicate" (see meshstore --help)'],
      [[], "meshstore: missing command (see meshstore --help)"],
      [["cp", "--part-size", "1MiB", ok, `m/${BUCKET}/x`], "meshstore: --part-size must be at least 5MiB (S3's rule for every part but the last) (see meshstore cp --help)"],
    ] as Array<[string[], string]>) {
      const r = await mesh(args);
      expect([r.code, r.stderr]).toEqual([2, message + "\n"]);
    }

    const port = await freePort();
    expectCode(await mesh(["alias", "set", "gone", `127.0.0.1:${port}`, "--token", "t"]), 0);
    const unreachable = await mesh(["ls", "gone"]);
    expectCode(unreachable, 1);
    expect(unreachable.stderr).toStartWith(`meshstore: cannot reach the peer at http://127.0.0.1:${port}: `);
  }, T);

  test("a 100 MiB upload killed after 3 parts resumes with cp --continue: only the missing parts are sent", async () => {
    const file = path.join(root, "hundred.bin");
    const hash = createHash("md5");
    const partMd5s: Buffer[] = [];
    // Distinct 4 MiB blocks (no two chunks alike), written without holding 100 MiB at once.
    const fh = Bun.file(file).writer();
    let part = createHash("md5");
    for (let i = 0; i < 25; i++) {
      const block = seededBytes(4 * MiB, seed + 5000 + i);
      fh.write(block);
      hash.update(block);
      part.update(block);
      if ((i + 1) % 4 === 0 || i === 24) {
        partMd5s.push(part.digest());
        part = createHash("md5");
      }
    }
    await fh.end();
    const key = "big/hundred.bin";
    const flags = ["--multipart-threshold", "64MiB", "--part-size", "16MiB"];
    const killed = await mesh(["cp", "--json", "--parallel", "1", ...flags, file, `m/${BUCKET}/${key}`], { MESHSTORE_TEST_EXIT_AFTER_PARTS: "3" });
    expect(killed.code).toBe(75);
    const sessions = readdirSync(path.join(configDir, "sessions"));
    expect(sessions.length).toBe(1);
    const session = JSON.parse(readFileSync(path.join(configDir, "sessions", sessions[0]), "utf8")) as { uploadId: string; parts: unknown[] };
    expect(session.parts.length).toBe(3);
    const listed = (await (await fetch(`${cluster.peer(1).httpUrl}/buckets/${BUCKET}/multipart/${session.uploadId}?key=${encodeURIComponent(key)}`, { headers: { authorization: ADMIN_BEARER } })).json()) as { parts: unknown[] };
    const held = listed.parts.length;
    expect(held).toBeGreaterThanOrEqual(3);

    const before = await partPuts(0);
    const resumed = await mesh(["cp", "--json", "--continue", ...flags, file, `m/${BUCKET}/${key}`]);
    expectCode(resumed, 0);
    const sent = (await partPuts(0)) - before;
    const etag = `${createHash("md5").update(Buffer.concat(partMd5s)).digest("hex")}-7`;
    expect(jsonLines(resumed)[0]).toMatchObject({ status: "success", size: 100 * MiB, etag, multipart: { uploadId: session.uploadId, parts: 7, held, sent: 7 - held } });
    expect(sent).toBe(7 - held);
    expect(readdirSync(path.join(configDir, "sessions"))).toEqual([]);
    console.log(`resume: ${held} parts held after the kill, ${sent} sent by cp --continue (of 7)`);

    const res = await fetch(`${cluster.peer(2).httpUrl}/buckets/${BUCKET}/objects/${key}`, { headers: { authorization: ADMIN_BEARER } });
    expect(res.headers.get("etag")).toBe(`"${etag}"`);
    const got = createHash("md5");
    let n = 0;
    for await (const chunk of res.body!) {
      got.update(chunk);
      n += chunk.byteLength;
    }
    expect([n, got.digest("hex")]).toEqual([100 * MiB, hash.digest("hex")]);
    rmSync(file);
  }, T);

  test("the progress bar reaches 100% on a terminal and is absent when piped", async () => {
    const file = path.join(root, "eight.bin");
    writeFileSync(file, seededBytes(8 * MiB, seed + 9000));
    expect(Bun.which("script"), "script(1) from util-linux (Debian: bsdutils) is needed; .ci/run installs it").not.toBeNull();
    const cmd = [process.execPath, "run", "--silent", "mesh", "cp", file, `m/${BUCKET}/progress/eight.bin`].map((a) => `'${a}'`).join(" ");
    const pty = Bun.spawn(["script", "-qfec", cmd, "/dev/null"], { env: { ...process.env, MESHSTORE_CONFIG_DIR: configDir }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [onTerminal, code] = await Promise.all([new Response(pty.stdout).text(), pty.exited]);
    expect(code).toBe(0);
    expect(onTerminal).toMatch(/100% \| 8\.0 MiB\/8\.0 MiB/);
    expect(onTerminal).toContain("1/1 files");

    const piped = await mesh(["cp", file, `m/${BUCKET}/progress/eight-again.bin`]);
    expectCode(piped, 0);
    expect(piped.stderr).toBe("");
    expect(piped.stdout).toBe(`${file} -> m/${BUCKET}/progress/eight-again.bin\n`);

    // A usage error found after the bar started still ends the command at once (exit 2), its bar stopped.
    const wrong = [process.execPath, "run", "--silent", "mesh", "cp", `m/${BUCKET}`, path.join(root, "nowhere")].map((a) => `'${a}'`).join(" ");
    const started = performance.now();
    const usage = Bun.spawn(["script", "-qfec", wrong, "/dev/null"], { env: { ...process.env, MESHSTORE_CONFIG_DIR: configDir }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => usage.kill("SIGKILL"), 10_000);
    const [usageText, usageCode] = await Promise.all([new Response(usage.stdout).text(), usage.exited]);
    clearTimeout(killer);
    expect([usageCode, usageText.includes("is a bucket: use cp -r")]).toEqual([2, true]);
    expect(performance.now() - started).toBeLessThan(10_000);
  }, T);
});
