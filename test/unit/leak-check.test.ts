// The suite-wide secret check itself (test/harness/leak-check.ts), on its own instance so
// that nothing here reaches the suite's: a line holding a registered secret is reported
// with the secret masked, a clean line is not, a native token is caught by its shape alone,
// a secret cut across two chunks of a child's output is still found, and the admin key
// banner a new mesh prints once is the only thing left out.
import { describe, expect, test } from "bun:test";
import { nativeToken, newAccessKeyId, newSecret } from "../../src/auth/access-keys.ts";
import { LeakChecker, mask } from "../harness/leak-check.ts";

const ID = newAccessKeyId();
const SECRET = newSecret();
const TOKEN = nativeToken(ID, SECRET);

function checker(): LeakChecker {
  const c = new LeakChecker();
  c.registerKey({ accessKeyId: ID, secretAccessKey: SECRET });
  return c;
}

describe("LeakChecker", () => {
  test("a line with a registered secret is reported with its kind and source, the secret masked", () => {
    const c = checker();
    c.capture("p1", `INFO [p1] made key ${ID} with ${SECRET} for you`);
    const { leaks } = c.takeLeaks();
    expect(leaks.length).toBe(1);
    expect(leaks[0].kind).toBe("secret access key");
    expect(leaks[0].source).toBe("p1");
    expect(leaks[0].masked).toBe(`INFO [p1] made key ${ID} with <secret access key ${mask(SECRET)}> for you`);
    expect(leaks[0].masked).not.toContain(SECRET);
    expect(() => (c.capture("p1", `again ${SECRET}`), c.assertNoLeaks("now"))).toThrow(/secret access key in p1: again <secret access key/);
  });

  test("a line without a secret is not reported, and checked lines are dropped", () => {
    const c = checker();
    c.capture("p1", `INFO [p1] member ${ID.slice(0, 6)}: alive -> dead; key ${ID} revoked`);
    c.capture("p2", SECRET.slice(0, -1));
    expect(c.sizes()).toEqual({ secrets: 2, pending: 2 });
    expect(c.takeLeaks().leaks).toEqual([]);
    expect(c.sizes().pending).toBe(0);
    expect(() => c.assertNoLeaks("now")).not.toThrow();
  });

  test("the token derived from a registered secret is known, and any token is caught by its shape", () => {
    const c = checker();
    c.capture("p1", `auth ${TOKEN}`);
    const other = nativeToken(newAccessKeyId(), newSecret());
    c.capture("p2", `Bearer ${other}, truncated mst_${ID}_abc`);
    const { leaks } = c.takeLeaks();
    expect(leaks.map((l) => [l.kind, l.source])).toEqual([
      ["native token", "p1"],
      ["native token (by its shape)", "p2"],
    ]);
    expect(leaks[1].masked).toBe(`Bearer <native token ${mask(other)}>, truncated mst_${ID}_abc`);
  });

  test("secrets in a JSON answer and a mesh key file are registered; short values are not secrets", () => {
    const c = new LeakChecker();
    const secret = newSecret();
    c.registerFromJson(JSON.stringify({ accessKeyId: newAccessKeyId(), secretAccessKey: secret, token: "short" }));
    const hex = "ab".repeat(32);
    c.registerMeshKey(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}\n`);
    expect(c.sizes().secrets).toBe(2);
    c.capture("cli", `got ${secret} and short`);
    c.capture("p0", `psk ${hex}`);
    expect(c.takeLeaks().leaks.map((l) => l.kind)).toEqual(["secret access key", "mesh key"]);
  });

  test("a child's output is cut into lines across chunks; a skipped line is not checked", () => {
    const c = checker();
    const out = c.lines("child stdout", (line) => line.startsWith("  secret access key: "));
    out.write(`  secret access key: ${SECRET}\nfirst half ${SECRET.slice(0, 10)}`);
    out.write(`${SECRET.slice(10)} second half\nunfinished ${TOKEN.slice(0, 20)}`);
    out.write(TOKEN.slice(20));
    out.end();
    const { leaks } = c.takeLeaks();
    expect(leaks.map((l) => l.masked)).toEqual([`first half <secret access key ${mask(SECRET)}> second half`, `unfinished <native token ${mask(TOKEN)}>`]);
  });

  test("many leaking lines give a bounded report", () => {
    const c = checker();
    for (let i = 0; i < 1000; i++) c.capture("p1", `${i} ${SECRET}`);
    const { leaks, more } = c.takeLeaks();
    expect(leaks.length).toBe(20);
    expect(more).toBe(980);
  });
});
