// The first hour of a new user, without a running mesh: version and help, one-line usage
// and start-up errors, the admin CLIs' connection errors, damaged files in the data
// folder (through the real start-up path, in temp folders), and V2 presigned URLs.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { s3Errors } from "../../src/api/s3/errors.ts";
import { S3AuthError, verifyRequest } from "../../src/api/s3/sigv4.ts";
import { goneLauncher, isLauncherCommand, launcherChain, psInfo } from "../../src/cli/launcher.ts";
import { keysUsage } from "../../src/cli/keys.ts";
import { nodeUsage, versionLine } from "../../src/cli/usage.ts";
import { ADMIN_KEY_FILE } from "../../src/config.ts";
import { StartupError } from "../../src/errors.ts";
import { p2pListenError } from "../../src/net/listen-errors.ts";
import { copiesOf, quorumRule } from "../../src/placement/quorum-rule.ts";
import { startPeer } from "../../src/peer.ts";
import { createLogger } from "../../src/util/log.ts";

// Several tests run the CLI as a process (about 0.2 s each; more on a busy machine).
setDefaultTimeout(20_000);

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-first-hour-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Run `bun src/cli.ts ...args` to its end (killed after 10 s). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, "src/cli.ts", ...args], {
    env: { ...process.env, MESH_TOKEN: "", MESH_HTTP: "", MESH_DATA: "", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A folder under the temp root, made fresh. */
function folder(name: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

const LOOPBACK = { p2pListen: ["/ip4/127.0.0.1/tcp/0"], http: { host: "127.0.0.1", port: 0 }, s3: { host: "127.0.0.1", port: 0 }, logLevel: "error" as const };

describe("version and help", () => {
  test("--version and -v print meshstore and package.json's version", async () => {
    expect(versionLine()).toBe(`meshstore ${pkg.version}`);
    expect(pkg.version).toBe("0.1.0");
    for (const args of [["--version"], ["node", "-v"], ["keys", "--version"]]) {
      const r = await cli(args);
      expect(`${args.join(" ")}: ${r.code} ${r.stdout}`).toBe(`${args.join(" ")}: 0 meshstore 0.1.0\n`);
    }
  });

  test("node's help has a placeholder per flag and only node's usage; keys' help only keys'", async () => {
    const node = nodeUsage();
    for (const flag of ["--p2p MULTIADDR", "--http HOST:PORT", "--s3 HOST:PORT", "--data DIR", "--mesh-key FILE", "--rf N", "--stop-grace SECONDS", "--advertise-http URL", "--upload-memory MIB", "--bootstrap MULTIADDR"]) {
      expect(node).toContain(`  ${flag} `);
    }
    expect(node).not.toContain("VALUE");
    expect(node).toStartWith("usage: npx -y bun run node [flags]");
    const shown = await cli(["node", "--help"]);
    expect(shown.code).toBe(0);
    expect(shown.stdout.trim()).toBe(node);
    expect(shown.stdout).not.toContain("keys");
    const keys = await cli(["keys", "--help"]);
    expect([keys.code, keys.stdout.trim()]).toEqual([0, keysUsage()]);
    expect(keys.stdout).not.toContain("node [flags]");
  });

  test("a bad flag is exactly one line and exit 2; keys and members without a subcommand print their usage and exit 2", async () => {
    const bad = await cli(["node", "--no-such-flag"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("meshstore: Unknown option '--no-such-flag' (see npx -y bun run node --help)\n");
    const badValue = await cli(["node", "--rf", "zero"]);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr.trim().split("\n")).toHaveLength(1);
    const badKeys = await cli(["keys", "--bogus"]);
    expect([badKeys.code, badKeys.stderr]).toEqual([2, "meshstore: Unknown option '--bogus' (see npx -y bun run keys --help)\n"]);
    const unknownSub = await cli(["members", "frobnicate"]);
    expect([unknownSub.code, unknownSub.stderr]).toEqual([2, 'meshstore: unknown members subcommand "frobnicate" (see npx -y bun run members --help)\n']);
    for (const command of ["keys", "members"]) {
      const r = await cli([command]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toStartWith(`usage: npx -y bun run ${command} `);
    }
  });
});

describe("the admin CLIs", () => {
  test("a peer that cannot be reached is named by its URL", async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as net.AddressInfo).port;
    await new Promise<void>((r) => holder.close(() => r()));
    const r = await cli(["keys", "list", "--http", `127.0.0.1:${port}`, "--token", "mst_x"]);
    expect([r.code, r.stderr]).toEqual([1, `meshstore: cannot reach the peer at http://127.0.0.1:${port}: connection refused\n`]);
  });

  test("keys list on a damaged admin-key.json names the file and the cause, exit 1", async () => {
    const dir = folder("cli-damaged-admin-key");
    const file = path.join(dir, ADMIN_KEY_FILE);
    writeFileSync(file, "{ not json", { mode: 0o600 });
    const r = await cli(["keys", "list", "--data", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toStartWith(`meshstore: ${file} is damaged: not valid JSON (`);
    // A missing file is still a usage error, as before.
    const missing = await cli(["keys", "list", "--data", folder("cli-no-admin-key")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no admin token");
  });
});

describe("damaged files in the data folder stop the start with one line", () => {
  test("garbage in admin-key.json: through the CLI, one line and exit 1", async () => {
    const dir = folder("start-admin-key");
    writeFileSync(path.join(dir, ADMIN_KEY_FILE), "\u0000\u0001garbage", { mode: 0o600 });
    const r = await cli(["node", "--data", dir, "--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"], { MESH_ADMIN_KEY: "", MESH_ADMIN_SECRET: "" });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^meshstore: ${path.join(dir, ADMIN_KEY_FILE)} is damaged: not valid JSON \\(.+\\); restore it from a backup`))]);
    expect(r.stdout).not.toContain("ready");
  });

  test("admin-key.json without its fields, garbage members.json, garbage or unreadable peer.key: a StartupError naming the file", async () => {
    const cases: Array<[string, string, string | Uint8Array, RegExp]> = [
      ["fields", ADMIN_KEY_FILE, '{"token": 5}', /admin-key\.json is damaged: it lacks accessKeyId, secretAccessKey or token/],
      ["roster", "members.json", "{{{", /the member roster .*members\.json is not valid JSON/],
      ["identity", "peer.key", new Uint8Array([1, 2, 3, 4, 5]), /the peer's identity key .*peer\.key is damaged \(.+\)/],
    ];
    for (const [name, file, content, message] of cases) {
      const dir = folder(`start-${name}`);
      writeFileSync(path.join(dir, file), content, { mode: 0o600 });
      const err = await startPeer({ dataDir: dir, ...LOOPBACK }).then(
        async (p) => (await p.kill(), undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StartupError);
      expect(`${name}: ${(err as Error).message}`).toMatch(message);
      expect((err as Error).message).toContain(path.join(dir, file));
    }
    // A peer.key that is a folder cannot be read: the cause is the errno's words and code.
    const dir = folder("start-unreadable");
    mkdirSync(path.join(dir, "peer.key"));
    const err = await startPeer({ dataDir: dir, ...LOOPBACK }).then(
      async (p) => (await p.kill(), undefined),
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe(`cannot read the peer's identity key ${path.join(dir, "peer.key")}: a folder where a file should be (EISDIR)`);
  });
});

describe("one line for an address in use", () => {
  test("libp2p's listen error becomes the address, the code and the flag", () => {
    const libp2pMessage =
      "Some configured addresses failed to be listened on, you may need to remove one or more listen addresses from your configuration or set `transportManager.faultTolerance` to NO_FATAL:\n\n  /ip4/127.0.0.1/tcp/7400: Error: listen EADDRINUSE: address already in use 127.0.0.1:7400\n      at listen (unknown)\n";
    const err = p2pListenError(new Error(libp2pMessage));
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe("the p2p address /ip4/127.0.0.1/tcp/7400 is in use (EADDRINUSE); pick another with --p2p");
    const other = new Error("something else");
    expect(p2pListenError(other)).toBe(other);
  });

  test("an HTTP or S3 port in use: one line naming the address and --http or --s3, exit 1", async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await cli(["node", "--data", folder("http-in-use"), "--p2p", "/ip4/127.0.0.1/tcp/0", "--http", `127.0.0.1:${port}`, "--s3", "127.0.0.1:0"], { MESH_ADMIN_KEY: "", MESH_ADMIN_SECRET: "" });
      expect([r.code, r.stderr]).toEqual([1, `meshstore: the HTTP address 127.0.0.1:${port} is in use (EADDRINUSE); pick another with --http\n`]);
      // The S3 port in use, once the native server listens: named with --s3 (and the native server closed again).
      const err = await startPeer({ dataDir: folder("s3-in-use"), ...LOOPBACK, s3: { host: "127.0.0.1", port } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as Error).message).toBe(`the S3 address 127.0.0.1:${port} is in use (EADDRINUSE); pick another with --s3`);
    } finally {
      holder.close();
    }
  });
});

describe("copies", () => {
  test("fewer members than RF is a warning with the numbers; enough members, none", () => {
    expect(copiesOf(quorumRule(3, 1))).toEqual({ rf: 3, possible: 1, warning: "1 member, RF 3: keeping 1 copy of each chunk until more peers join" });
    expect(copiesOf(quorumRule(3, 2))).toEqual({ rf: 3, possible: 2, warning: "2 members, RF 3: keeping 2 copies of each chunk until more peers join" });
    expect(copiesOf(quorumRule(3, 5))).toEqual({ rf: 3, possible: 3 });
  });
});

describe("the launcher chain", () => {
  test("npm, npx, bun run, bunx and script shells are launchers; a login shell or a test runner is not", () => {
    for (const c of ["npm exec bun run node --data x", "/usr/bin/node /usr/lib/node_modules/npm/bin/npx-cli.js -y bun run node", "bun run node", "/home/u/.npm/_npx/1/node_modules/bun/bin/bun.exe run node", "sh -c bun run node", "bunx meshstore"]) {
      expect(`${c}: ${isLauncherCommand(c)}`).toBe(`${c}: true`);
    }
    for (const c of ["bash", "-bash", "bun test test/cluster", "/usr/bin/node server.js", "sh script.sh", "systemd --user"]) {
      expect(`${c}: ${isLauncherCommand(c)}`).toBe(`${c}: false`);
    }
  });
});

describe("the launcher chain, read from a real process", () => {
  test("/proc and ps read the same chain; it breaks when the launcher exits", async () => {
    // A shell that runs two commands stays a process of its own (it cannot exec the last).
    const shell = Bun.spawn(["sh", "-c", "sleep 30; true"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    try {
      // Until it has exec'd, the child is still a copy of this process.
      for (let i = 0; i < 100 && launcherChain(shell.pid).length === 0; i++) await Bun.sleep(20);
      const fromProc = launcherChain(shell.pid);
      expect(fromProc).toEqual([{ pid: shell.pid, ppid: process.pid, command: "sh -c sleep 30; true" }]);
      expect(launcherChain(shell.pid, psInfo)).toEqual(fromProc);
      // Watched from a child of that shell: intact while it runs, broken once it is killed.
      expect(goneLauncher(fromProc, shell.pid)).toBeUndefined();
      // The topmost launcher re-parented (started under nohup from a shell that then exited) is still running.
      expect(goneLauncher([{ ...fromProc[0], ppid: fromProc[0].ppid + 1 }], shell.pid)).toBeUndefined();
      shell.kill("SIGKILL");
      await shell.exited;
      expect(goneLauncher(fromProc, shell.pid)).toEqual(fromProc[0]);
    } finally {
      shell.kill("SIGKILL");
    }
  });
});

describe("S3 V2 presigned URLs", () => {
  test("AWSAccessKeyId + Signature + Expires get 400 InvalidRequest: use AWS4-HMAC-SHA256", async () => {
    const url = "http://127.0.0.1:7481/photos/cat.jpg?AWSAccessKeyId=MKTESTADMIN000000001&Expires=1893456000&Signature=abc%2Bdef%3D";
    const err = await verifyRequest({ method: "GET", url, headers: new Headers() }, async () => "secret").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3AuthError);
    const response = s3Errors(createLogger("t", () => {}, "error")).respond(err, new Request(url));
    expect(response.status).toBe(400);
    const body = await response.text();
    expect(body).toContain("<Code>InvalidRequest</Code>");
    expect(body).toContain("Please use AWS4-HMAC-SHA256.");
    // Without the V2 fields it is still plain anonymous access.
    const anonymous = await verifyRequest({ method: "GET", url: "http://127.0.0.1:7481/photos/cat.jpg", headers: new Headers() }, async () => "secret").catch((e: unknown) => e);
    expect((anonymous as S3AuthError).code).toBe("AccessDenied");
  });
});
