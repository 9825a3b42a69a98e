// The meshstore client's pure parts and its command line without a peer: argument parsing,
// the alias store's modes, --exclude globs, the mirror plan, JSON lines, the uploads table,
// search's --meta and field arguments and its lines, session pruning, and exit code 2 for
// usage errors.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseCommand, usageMessage } from "../../src/client/args.ts";
import { keyPath } from "../../src/client/http.ts";
import { uploadLine, type UploadRecord } from "../../src/client/commands/uploads.ts";
import { infoLines, infoTotals } from "../../src/client/commands/admin.ts";
import { parseMeta } from "../../src/client/commands/copy.ts";
import { findLine, parseFields, schemaLines } from "../../src/client/commands/search.ts";
import { configDir, loadConfig, normalizeUrl, s3UrlOf, saveConfig } from "../../src/client/config.ts";
import { UsageError } from "../../src/client/errors.ts";
import { runClient } from "../../src/client/main.ts";
import { createOutput } from "../../src/client/output.ts";
import { excluder, planMirror, type Entry } from "../../src/client/plan.ts";
import { wantsBar } from "../../src/client/progress.ts";
import { sessionStore, SESSION_MAX_AGE_MS, type UploadSession } from "../../src/client/sessions.ts";
import { parseTarget } from "../../src/client/target.ts";
import { partSizeFor } from "../../src/client/transfer.ts";
import { parseSize } from "../../src/client/units.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-client-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A printer that keeps what it prints. */
function captured(json: boolean, quiet = false) {
  const out: string[] = [];
  const err: string[] = [];
  return { output: createOutput({ json, quiet, write: (s) => void out.push(s), writeErr: (s) => void err.push(s) }), out, err };
}

describe("argument parsing", () => {
  test("global flags anywhere, a command's own flags, and unknown flags named", () => {
    const { values, positionals } = parseCommand(["a", "--json", "-r", "b", "-q"], { recursive: { type: "boolean", short: "r" } });
    expect([values.json, values.recursive, values.quiet, positionals]).toEqual([true, true, true, ["a", "b"]]);
    expect(() => parseCommand(["--bogus"], {})).toThrow(new UsageError("unknown flag --bogus"));
    expect(() => parseCommand(["--limit"], { limit: { type: "string" } })).toThrow(UsageError);
    expect(usageMessage(new Error("Option '--limit <value>' argument missing"))).toBe("--limit <value> needs a value");
  });

  test("sizes, part sizes and URLs", () => {
    expect([parseSize("16MiB", "--x"), parseSize("16M", "--x"), parseSize("5MB", "--x"), parseSize("1024", "--x")]).toEqual([16 * 2 ** 20, 16 * 2 ** 20, 5_000_000, 1024]);
    expect(() => parseSize("lots", "--part-size")).toThrow('--part-size takes a size such as 16MiB, got "lots"');
    // 10,000 parts at most: a 1 TiB file gets parts above the 16 MiB asked for.
    expect(partSizeFor(2 ** 40, 16 * 2 ** 20)).toBe(Math.ceil(2 ** 40 / 10_000));
    expect(partSizeFor(100 * 2 ** 20, 16 * 2 ** 20)).toBe(16 * 2 ** 20);
    expect([normalizeUrl(":7480"), normalizeUrl("10.0.0.5:7480/"), normalizeUrl("https://mesh.example:443")]).toEqual(["http://127.0.0.1:7480", "http://10.0.0.5:7480", "https://mesh.example"]);
    expect(s3UrlOf({ url: "http://127.0.0.1:7480" })).toBe("http://127.0.0.1:7481");
    expect(s3UrlOf({ url: "http://127.0.0.1:7480", s3: "http://s3.local:9000" })).toBe("http://s3.local:9000");
  });

  test("a path whose first segment is an alias is on the mesh; anything else is local", () => {
    const config = { version: 1 as const, aliases: { m: { url: "http://127.0.0.1:7480" } } };
    expect(parseTarget("m/photos/2026/cat.jpg", config)).toMatchObject({ kind: "remote", aliasName: "m", bucket: "photos", key: "2026/cat.jpg" });
    expect(parseTarget("m", config)).toMatchObject({ kind: "remote", bucket: "", key: "" });
    expect(parseTarget("m/photos", config)).toMatchObject({ kind: "remote", bucket: "photos", key: "" });
    expect(parseTarget("./m/photos", config)).toEqual({ kind: "local", path: "./m/photos" });
    expect(parseTarget("toString/x", config)).toEqual({ kind: "local", path: "toString/x" });
  });
});

describe("alias store", () => {
  test("config folder from the environment; the file is 0600 in a 0700 folder, even if the folder was open", async () => {
    expect(configDir({ MESHSTORE_CONFIG_DIR: "/x/y" })).toBe("/x/y");
    expect(configDir({ XDG_CONFIG_HOME: "/cfg" })).toBe("/cfg/meshstore");
    const dir = path.join(root, "aliases");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    await saveConfig(dir, { version: 1, aliases: { a: { url: "http://127.0.0.1:7480", token: "t" } } });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dir, "config.json")).mode & 0o777).toBe(0o600);
    expect((await loadConfig(dir)).aliases.a.token).toBe("t");
    expect((await loadConfig(path.join(root, "none"))).aliases).toEqual({});
    const badDir = path.join(root, "bad");
    mkdirSync(badDir);
    writeFileSync(path.join(badDir, "config.json"), "{nope");
    await expect(loadConfig(badDir)).rejects.toThrow(`${path.join(badDir, "config.json")} is not a meshstore client config`);
  });

  test("alias set through the command line: --key-file derives the token; two ways at once is a usage error", async () => {
    const dir = path.join(root, "cli-aliases");
    const keyFile = path.join(root, "admin-key.json");
    writeFileSync(keyFile, JSON.stringify({ accessKeyId: "MKUNITTEST0000000001", secretAccessKey: "unit-secret-abcdefghijklmnop", token: "ignored" }));
    const env = { MESHSTORE_CONFIG_DIR: dir };
    const c = captured(true);
    expect(await runClient(["alias", "set", "home", ":7480", "--key-file", keyFile], env, c.output)).toBe(0);
    expect(c.out.map((l) => JSON.parse(l))).toEqual([{ status: "success", op: "alias set", alias: "home", url: "http://127.0.0.1:7480", auth: "access-key" }]);
    const saved = (await loadConfig(dir)).aliases.home;
    expect(saved.token).toMatch(/^mst_MKUNITTEST0000000001_[A-Za-z0-9_-]{43}$/);
    expect(statSync(path.join(dir, "config.json")).mode & 0o777).toBe(0o600);
    expect(await runClient(["alias", "set", "x", ":1", "--token", "t", "--key-file", keyFile], env, captured(false).output)).toBe(2);
  });
});

describe("exclude and mirror plan", () => {
  test("a glob matches the relative path or its last segment", () => {
    const ex = excluder(["*.tmp", "cache/**", "d?/keep"]);
    expect(["a.tmp", "deep/er/b.tmp", "cache/x/y", "d1/keep"].every(ex)).toBe(true);
    expect(["a.txt", "tmp/a", "cachex/y", "d10/keep"].some(ex)).toBe(false);
  });

  test("copies what is missing, overwrites only with --overwrite, removes only with --remove, leaves excluded paths alone", () => {
    const e = (rel: string, size: number, mtimeMs = 1000): Entry => ({ rel, size, mtimeMs });
    const src = [e("same", 1), e("new", 2), e("bigger", 5), e("newer", 3, 5000), e("skip.tmp", 1)];
    const dst = [e("same", 1, 2000), e("bigger", 4, 2000), e("newer", 3, 2000), e("old", 9), e("old.tmp", 1)];
    const plain = planMirror(src, dst, { remove: false, overwrite: false, exclude: ["*.tmp"] });
    expect([plain.copy.map((x) => x.rel), plain.differ.map((x) => x.rel), plain.overwrite, plain.remove, plain.same]).toEqual([["new"], ["bigger", "newer"], [], [], 1]);
    const full = planMirror(src, dst, { remove: true, overwrite: true, exclude: ["*.tmp"] });
    expect([full.copy.map((x) => x.rel), full.overwrite.map((x) => x.rel), full.remove.map((x) => x.rel)]).toEqual([["new"], ["bigger", "newer"], ["old"]]);
    // After the copy, the destination is newer: a second plan has nothing to do.
    const after = planMirror(src, [...src.map((x) => ({ ...x, mtimeMs: 9000 }))], { remove: true, overwrite: true, exclude: [] });
    expect([after.copy, after.overwrite, after.remove, after.same]).toEqual([[], [], [], 5]);
  });
});

describe("output", () => {
  test("--json prints one object per line with status; failures count and go to stderr too", () => {
    const c = captured(true);
    c.output.result({ op: "cp", size: 3 }, "human text");
    c.output.fail({ op: "cp", target: "m/b/k" }, new UsageError("nope"));
    expect(c.out).toEqual(['{"status":"success","op":"cp","size":3}\n', '{"status":"error","op":"cp","target":"m/b/k","error":{"code":"UsageError","message":"nope"}}\n']);
    expect(c.err).toEqual(["meshstore: nope\n"]);
    expect(c.output.failures).toBe(1);
    const q = captured(false, true);
    q.output.result({}, "hidden");
    q.output.note("hidden too");
    expect([q.out, q.err]).toEqual([[], []]);
  });

  test("a bar only on a terminal, and never with --json or -q", () => {
    expect(wantsBar({ json: false, quiet: false }, true)).toBe(true);
    expect(wantsBar({ json: false, quiet: false }, false)).toBe(false);
    expect(wantsBar({ json: true, quiet: false }, true)).toBe(false);
    expect(wantsBar({ json: false, quiet: true }, true)).toBe(false);
  });

  test("upload records: progress, percentage, duration, error", () => {
    const base: UploadRecord = { token: "up-1", bucket: "b", key: "k/x.bin", state: "inprogress", bytesReceived: 8 * 2 ** 20, size: 32 * 2 ** 20, startedMs: Date.UTC(2026, 0, 2, 3, 4, 5) };
    expect(uploadLine(base, base.startedMs + 65_000)).toBe(`${"up-1".padEnd(28)} ${"inprogress".padEnd(10)} ${"8.0 MiB of 32.0 MiB (25%)".padEnd(26)} 2026-01-02 03:04:05 ${"1m 5s".padStart(7)}  b/k/x.bin`);
    const failed = uploadLine({ ...base, state: "fail", size: undefined, bytesReceived: 100, finishedMs: base.startedMs + 2000, error: "client went away" });
    expect(failed).toContain("fail       100 B ");
    expect(failed).toContain("     2s  b/k/x.bin  error: client went away");
    expect(uploadLine({ ...base, state: "success", bytesReceived: 32 * 2 ** 20, finishedMs: base.startedMs + 1000 })).toContain("32.0 MiB of 32.0 MiB (100%)");
  });

  test("admin info: a row per member, unanswered ones marked, totals", () => {
    const status = (chunks: number, bytes: number) => ({ version: "0.1.0", uptimeSeconds: 3700, storage: { chunks, bytes, diskTotalBytes: 100 * 2 ** 30, diskFreeBytes: 40 * 2 ** 30 } });
    const rows = [
      { id: "12D3KooWaaaaaaaa11111111", state: "alive", draining: false, status: status(10, 2 ** 20) },
      { id: "12D3KooWbbbbbbbb22222222", state: "alive", draining: true, status: status(5, 2 ** 20) },
      { id: "12D3KooWcccccccc33333333", state: "dead", draining: false },
    ];
    const lines = infoLines(rows);
    expect(lines[1]).toMatch(/^11111111\s+alive\s+1h 1m 0\.1\.0\s+10\s+1\.0 MiB {2}60\.0 GiB\/100\.0 GiB$/);
    expect(lines[2]).toContain("alive,draining");
    expect(lines[3]).toMatch(/^33333333\s+dead\s+-/);
    expect(infoTotals(rows)).toEqual({ members: 3, states: { alive: 2, dead: 1 }, chunks: 15, bytes: 2 * 2 ** 20, unanswered: 1 });
    expect(lines.at(-1)).toBe("3 member(s): 2 alive, 1 dead; 15 chunks, 2.0 MiB stored (every copy counted); 1 did not answer");
  });
});

describe("search", () => {
  test("--meta NAME=VALUE, schema NAME=TYPE, a find row and the schema's lines", () => {
    expect(parseMeta(["Year=2026", "title=Mesh two", "empty=", "eq=a=b"])).toEqual({ year: "2026", title: "Mesh two", empty: "", eq: "a=b" });
    expect(parseMeta(undefined)).toBeUndefined();
    for (const bad of ["novalue", "=x", "sp ace=1", "line=a\nb", "accent=caf\u00e9"]) expect(() => parseMeta([bad])).toThrow(UsageError);
    expect(parseFields(["year=number", "tags=keywords"])).toEqual({ year: "number", tags: "keywords" });
    expect(() => parseFields(["year=int"])).toThrow('"year=int" is not NAME=TYPE (TYPE one of number, date, string, bool, keywords)');
    const o = { key: "b.txt", size: 13, etag: "e", lastModified: "2026-01-02T03:04:05.000Z", contentType: "text/plain", meta: { tags: "x,y", title: "Mesh two", year: "2021" } };
    expect(findLine(o)).toBe('[2026-01-02 03:04:05]       13 B  b.txt  tags=x,y  title="Mesh two"  year=2021');
    const building = { bucket: "b", fields: { year: { type: "number" as const, state: "building" as const } }, state: "building" as const, progress: { peersReady: 1, peers: 3, objectsIndexed: 40 } };
    expect(schemaLines("m/b", building)).toEqual(["schema of m/b: building (1 of 3 peers ready, 40 objects indexed)", "  year   number    building"]);
  });
});

describe("sessions", () => {
  test("a new session prunes files older than a week", async () => {
    const dir = path.join(root, "sessions");
    const store = sessionStore(dir);
    const s: UploadSession = { version: 1, source: "/f", size: 1, mtimeMs: 1, url: "u", bucket: "b", key: "k", uploadId: "id", uploadToken: "up-x", partSize: 5 << 20, createdMs: 1, parts: [] };
    await store.save("old", s);
    const old = (Date.now() - SESSION_MAX_AGE_MS - 60_000) / 1000;
    utimesSync(path.join(dir, "old.json"), old, old);
    await store.save("recent", s);
    await store.save("new", s, true);
    expect(readdirSync(dir).sort()).toEqual(["new.json", "recent.json"]);
    expect(statSync(path.join(dir, "new.json")).mode & 0o777).toBe(0o600);
    expect((await store.load("new"))?.uploadId).toBe("id");
    expect(await store.load("missing")).toBeUndefined();
  });
});

describe("exit codes for usage errors", () => {
  const env = { MESHSTORE_CONFIG_DIR: path.join(root, "exit-codes") };
  for (const args of [[], ["nope"], ["ls"], ["ls", "--bogus", "x"], ["cp", "only-one"], ["rm", "-r", "x"], ["alias"], ["alias", "set", "bad name!", ":1"], ["admin", "frob"], ["uploads"], ["mirror", "a"], ["presign", "x", "--expires", "9d"], ["find"], ["schema", "set"], ["cp", "--meta", "bad", "x", "y"]]) {
    test(`meshstore ${args.join(" ")} exits 2`, async () => {
      expect(await runClient(args, env, captured(false).output)).toBe(2);
    });
  }
  test("--help and --version exit 0", async () => {
    expect(await runClient(["--version"], env, captured(false).output)).toBe(0);
    expect(await runClient(["cp", "--help"], env, captured(false).output)).toBe(0);
  });
});

describe("the installed launcher (bin/meshstore.mjs, run by Node)", () => {
  const launcher = path.join(import.meta.dir, "..", "..", "bin", "meshstore.mjs");
  // A PATH holding only `node` and `bun`: the launcher must find Bun there, not through npx.
  const onlyNodeAndBun = mkdtempSync(path.join(root, "path-"));
  for (const [name, target] of [["node", Bun.which("node")], ["bun", process.execPath]] as const) {
    if (!target) throw new Error(`the launcher test needs ${name} on the PATH`);
    symlinkSync(target, path.join(onlyNodeAndBun, name));
  }
  const run = (args: string[]) => Bun.spawnSync([path.join(onlyNodeAndBun, "node"), launcher, ...args], { env: { PATH: onlyNodeAndBun, HOME: root }, stdout: "pipe", stderr: "pipe" });

  test("passes the arguments, the output and the exit code through", () => {
    const version = run(["--version"]);
    expect([version.exitCode, version.stdout.toString()]).toEqual([0, "meshstore 0.1.0\n"]);
    const usage = run(["cat"]);
    expect([usage.exitCode, usage.stderr.toString()]).toEqual([2, "meshstore: missing ALIAS/BUCKET/KEY (see meshstore cat --help)\n"]);
  });
});

describe("object keys in paths", () => {
  test("a key with a '.' or '..' segment is refused (a URL would resolve it to another object, a download could leave its folder)", () => {
    expect(keyPath("a b/c+d🦄")).toBe("a%20b/c%2Bd%F0%9F%A6%84");
    expect(keyPath("a..b/.c/d.")).toBe("a..b/.c/d.");
    for (const key of ["../../etc/passwd", "a/../b", "./a", "a/."]) expect(() => keyPath(key)).toThrow("'.' or '..' segment");
  });
});
