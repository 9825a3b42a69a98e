import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Roster } from "../../src/membership/roster.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "meshstore-roster-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("member roster", () => {
  test("counts every member ever known until removed or drained, across restarts", async () => {
    const file = path.join(dir, "members.json");
    const r = await Roster.open(file, "self", ["boot"]);
    expect(r.memberIds().length + 1).toBe(2); // a peer told to join never counts itself as a mesh of one
    expect(statSync(file).mode & 0o777).toBe(0o600);
    r.note({ id: "a", addrs: ["/ip4/10.0.0.1/tcp/1"], state: "alive", inc: 7 });
    r.note({ id: "b", addrs: [], state: "dead", inc: 3 });
    r.note({ id: "self", addrs: [], state: "alive", inc: 9 });
    expect(r.memberIds().length + 1).toBe(4);
    r.note({ id: "b", addrs: [], state: "removed", inc: 3 });
    r.note({ id: "a", addrs: [], state: "alive", inc: 8, draining: true });
    expect(r.memberIds().length + 1).toBe(2);
    expect(r.memberIds().length).toBe(1);
    await r.close();

    const again = await Roster.open(file, "self", []);
    expect(again.memberIds().length + 1).toBe(2);
    expect(again.memberIds()).toEqual(["boot"]);
    expect(again.removedRecords()).toEqual([{ id: "b", addrs: [], state: "removed", inc: 3 }]);
    expect(again.incarnation("a")).toBe(8);
    await again.close();
  });

  test("a corrupt roster stops the start with the file named, rather than shrinking the mesh", async () => {
    const file = path.join(dir, "bad.json");
    writeFileSync(file, "{not json");
    await expect(Roster.open(file, "self", [])).rejects.toThrow(file);
  });
});
