// Bucket lifecycle without a mesh: the PutBucketLifecycleConfiguration document checked as S3
// checks it (and answered back in the shape it was sent), what rules decide (filters, days
// rounded up to a day boundary, noncurrent ranks, lone delete markers, upload ages), the
// config, and a pass of the lifecycle job over a real LevelDB index store with an injected
// clock and a fake object service: which objects, versions and uploads it acts on, only in
// the shards it leads, a key's versions followed across pages, and its per-pass bound.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { lifecycleBody, parseLifecycleXml, isoDateMs } from "../../src/api/s3/lifecycle-rules.ts";
import { xmlDocument } from "../../src/api/s3/xml.ts";
import { DEFAULT_LIFECYCLE, lifecycleConfig, resolveConfig, type LifecycleConfig } from "../../src/config.ts";
import { MeshError } from "../../src/errors.ts";
import { createLifecycleJob, STEP_ROWS } from "../../src/lifecycle/expiry.ts";
import { abortDue, commonPrefix, dueAfterDays, expirationDue, expiredMarkerDue, filterTakes, noncurrentDue, rowsNeeded, type LifecycleRule } from "../../src/lifecycle/rules.ts";
import { BUCKETS_SHARD, deletesAreFinal, lifecycleRow, objectRow, objectShard, uploadRow, versionRow } from "../../src/metadata/keys.ts";
import type { ObjectManifest, VersionValue } from "../../src/metadata/types.ts";
import type { ObjectService } from "../../src/objects/object-service.ts";
import { versionOrder } from "../../src/objects/version-id.ts";
import { openIndexStore, type IndexStore } from "../../src/store/index-store.ts";
import { encodeTimestamp } from "../../src/util/hlc.ts";
import { createLogger } from "../../src/util/log.ts";

const DAY = 86_400_000;
const doc = (rules: string) => `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules}</LifecycleConfiguration>`;
const rule = (inner: string) => `<Rule>${inner}</Rule>`;
/** The S3 error code `fn` throws ("ok" if it does not). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    return err instanceof MeshError ? err.code : `not a MeshError: ${String(err)}`;
  }
}

describe("the lifecycle document", () => {
  test("every filter form and action parses, and the answer body parses back to the same rules", () => {
    const rules = parseLifecycleXml(
      doc(
        rule("<ID>legacy</ID><Prefix>old/</Prefix><Status>Enabled</Status><Expiration><Days>30</Days></Expiration>") +
          rule("<ID>empty</ID><Filter></Filter><Status>Disabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>") +
          rule("<ID>prefix</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>") +
          rule("<ID>tag</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>") +
          rule("<ID>gt</ID><Filter><ObjectSizeGreaterThan>100</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays><NewerNoncurrentVersions>5</NewerNoncurrentVersions></NoncurrentVersionExpiration>") +
          rule("<ID>lt</ID><Filter><ObjectSizeLessThan>10</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>") +
          rule("<ID>and</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>x</Key><Value>1</Value></Tag><Tag><Key>y</Key><Value></Value></Tag><ObjectSizeGreaterThan>0</ObjectSizeGreaterThan><ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration>"),
      ),
    );
    expect(rules).toEqual([
      { id: "legacy", enabled: true, filter: { prefix: "old/" }, form: "legacy", expiration: { days: 30 } },
      { id: "empty", enabled: false, filter: {}, form: "empty", expiration: { expiredObjectDeleteMarker: true } },
      { id: "prefix", enabled: true, filter: { prefix: "logs/" }, form: "prefix", abortIncompleteDays: 2 },
      { id: "tag", enabled: true, filter: { tags: { k: "v" } }, form: "tag", expiration: { dateMs: Date.UTC(2030, 0, 1) } },
      { id: "gt", enabled: true, filter: { sizeGreaterThan: 100 }, form: "greater", noncurrentExpiration: { days: 3, newerVersions: 5 } },
      { id: "lt", enabled: true, filter: { sizeLessThan: 10 }, form: "less", expiration: { days: 1 } },
      { id: "and", enabled: true, filter: { prefix: "a/", tags: { x: "1", y: "" }, sizeGreaterThan: 0, sizeLessThan: 9 }, form: "and", expiration: { days: 2 } },
    ]);
    expect(parseLifecycleXml(xmlDocument("LifecycleConfiguration", lifecycleBody(rules)))).toEqual(rules);
  });

  test("a rule without an ID gets one of its own; entities and whitespace are read as S3 reads them", () => {
    const [a, b] = parseLifecycleXml(doc(rule("<Filter><Prefix> a&amp;b </Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>").repeat(2)));
    expect(a.id.length).toBeGreaterThanOrEqual(16);
    expect(a.id).not.toBe(b.id);
    expect(a.filter.prefix).toBe("a&b");
  });

  test("dates: ISO 8601 at midnight UTC (a time without a zone is UTC)", () => {
    expect(isoDateMs("2030-01-01")).toBe(Date.UTC(2030, 0, 1));
    expect(isoDateMs("2030-01-01T00:00:00")).toBe(Date.UTC(2030, 0, 1));
    expect(isoDateMs("2030-01-01T02:00:00+02:00")).toBe(Date.UTC(2030, 0, 1));
    expect(isoDateMs("tomorrow")).toBeUndefined();
    expect(isoDateMs("2030-13-45")).toBeUndefined();
    const date = (d: string) => codeOf(() => parseLifecycleXml(doc(rule(`<ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Date>${d}</Date></Expiration>`))));
    expect(date("2030-01-01T00:00:00Z")).toBe("ok");
    expect(date("2030-01-01T00:00:01Z")).toBe("InvalidArgument");
    expect(date("soon")).toBe("InvalidArgument");
  });

  test("what S3 refuses, with S3's codes", () => {
    const ok = "<ID>r</ID><Filter><Prefix>p</Prefix></Filter><Status>Enabled</Status>";
    const cases: Array<[string, string, string]> = [
      ["not XML", "<LifecycleConfiguration><Rule>", "MalformedXML"],
      ["no rules", doc(""), "MalformedXML"],
      ["1001 rules", doc(Array.from({ length: 1001 }, (_, i) => rule(`<ID>r${i}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`)).join("")), "MalformedXML"],
      ["an unknown element", doc(rule(`${ok}<Expiration><Days>1</Days></Expiration><Colour/>`)), "MalformedXML"],
      ["an unknown element at the top", doc(`${rule(`${ok}<Expiration><Days>1</Days></Expiration>`)}<Owner/>`), "MalformedXML"],
      ["a Status of another kind", doc(rule("<ID>r</ID><Filter/><Status>enabled</Status><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["no Status", doc(rule("<ID>r</ID><Filter/><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["duplicate IDs", doc(rule(`${ok}<Expiration><Days>1</Days></Expiration>`).repeat(2)), "InvalidArgument"],
      ["an ID of 256 characters", doc(rule(`<ID>${"é".repeat(256)}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`)), "InvalidArgument"],
      ["Filter and Prefix", doc(rule("<ID>r</ID><Prefix>a</Prefix><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["neither Filter nor Prefix", doc(rule("<ID>r</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["two conditions without And", doc(rule("<ID>r</ID><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["two Tags without And", doc(rule("<ID>r</ID><Filter><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value>1</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["an empty And", doc(rule("<ID>r</ID><Filter><And></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "MalformedXML"],
      ["a duplicate tag key in And", doc(rule("<ID>r</ID><Filter><And><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "InvalidRequest"],
      ["an aws: tag", doc(rule("<ID>r</ID><Filter><Tag><Key>aws:x</Key><Value>1</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "InvalidTag"],
      ["size bounds crossed", doc(rule("<ID>r</ID><Filter><And><ObjectSizeGreaterThan>9</ObjectSizeGreaterThan><ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "InvalidRequest"],
      ["a negative size", doc(rule("<ID>r</ID><Filter><ObjectSizeGreaterThan>-1</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), "InvalidArgument"],
      ["no action", doc(rule(ok)), "InvalidRequest"],
      ["an empty Expiration", doc(rule(`${ok}<Expiration/>`)), "MalformedXML"],
      ["Days 0", doc(rule(`${ok}<Expiration><Days>0</Days></Expiration>`)), "InvalidArgument"],
      ["Days 1.5", doc(rule(`${ok}<Expiration><Days>1.5</Days></Expiration>`)), "InvalidArgument"],
      ["Days twice", doc(rule(`${ok}<Expiration><Days>1</Days><Days>2</Days></Expiration>`)), "MalformedXML"],
      ["Days and Date", doc(rule(`${ok}<Expiration><Days>1</Days><Date>2030-01-01</Date></Expiration>`)), "MalformedXML"],
      ["ExpiredObjectDeleteMarker with Days", doc(rule(`${ok}<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`)), "InvalidArgument"],
      ["ExpiredObjectDeleteMarker yes", doc(rule(`${ok}<Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker></Expiration>`)), "MalformedXML"],
      ["ExpiredObjectDeleteMarker with a tag filter", doc(rule("<ID>r</ID><Filter><Tag><Key>a</Key><Value>1</Value></Tag></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>")), "InvalidRequest"],
      ["NoncurrentDays missing", doc(rule(`${ok}<NoncurrentVersionExpiration><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration>`)), "InvalidArgument"],
      ["NewerNoncurrentVersions 0", doc(rule(`${ok}<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>0</NewerNoncurrentVersions></NoncurrentVersionExpiration>`)), "InvalidArgument"],
      ["NewerNoncurrentVersions 101", doc(rule(`${ok}<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>`)), "InvalidArgument"],
      ["DaysAfterInitiation missing", doc(rule(`${ok}<AbortIncompleteMultipartUpload/>`)), "InvalidArgument"],
      ["an upload abort with a size filter", doc(rule("<ID>r</ID><Filter><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>")), "InvalidRequest"],
      ["a Transition", doc(rule(`${ok}<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>`)), "NotImplemented"],
      ["a NoncurrentVersionTransition", doc(rule(`${ok}<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays><StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>`)), "NotImplemented"],
      ["a DOCTYPE", `<!DOCTYPE x [<!ENTITY a "b">]>${doc(rule(`${ok}<Expiration><Days>1</Days></Expiration>`))}`, "MalformedXML"],
    ];
    for (const [what, body, code] of cases) expect(`${what}: ${codeOf(() => parseLifecycleXml(body))}`).toBe(`${what}: ${code}`);
  });
});

describe("what rules decide", () => {
  const r = (over: Partial<LifecycleRule>): LifecycleRule => ({ id: "r", enabled: true, filter: {}, form: "empty", ...over });

  test("filters: prefix, every tag, strict size bounds; a delete marker (no tags, no size) only by prefix", () => {
    const f = { prefix: "a/", tags: { x: "1", y: "2" }, sizeGreaterThan: 10, sizeLessThan: 20 };
    expect(filterTakes(f, { key: "a/k", tags: { x: "1", y: "2", z: "3" }, size: 15 })).toBe(true);
    expect(filterTakes(f, { key: "b/k", tags: { x: "1", y: "2" }, size: 15 })).toBe(false);
    expect(filterTakes(f, { key: "a/k", tags: { x: "1" }, size: 15 })).toBe(false);
    expect(filterTakes(f, { key: "a/k", tags: { x: "1", y: "3" }, size: 15 })).toBe(false);
    expect(filterTakes(f, { key: "a/k", tags: { x: "1", y: "2" }, size: 10 })).toBe(false);
    expect(filterTakes(f, { key: "a/k", tags: { x: "1", y: "2" }, size: 20 })).toBe(false);
    expect(filterTakes({ prefix: "a/" }, { key: "a/marker" })).toBe(true);
    expect(filterTakes({ sizeLessThan: 5 }, { key: "a/marker" })).toBe(false);
    expect(filterTakes({}, { key: "" })).toBe(true);
  });

  test("days are added, then rounded up to the next day boundary (S3: the next midnight UTC)", () => {
    const noon = Date.UTC(2030, 0, 1, 12);
    expect(dueAfterDays(noon, 1, DAY)).toBe(Date.UTC(2030, 0, 3));
    expect(dueAfterDays(Date.UTC(2030, 0, 1), 1, DAY)).toBe(Date.UTC(2030, 0, 2));
    expect(dueAfterDays(1500, 2, 1000)).toBe(4000);
  });

  test("expiration: the earliest of the enabled rules that take the object; disabled and other rules count for nothing", () => {
    const o = { key: "logs/a", tags: { t: "1" }, size: 5, lastModified: Date.UTC(2030, 0, 1, 12) };
    const rules = [
      r({ filter: { prefix: "logs/" }, expiration: { days: 10 } }),
      r({ filter: { tags: { t: "1" } }, expiration: { days: 3 } }),
      r({ enabled: false, expiration: { days: 1 } }),
      r({ filter: { prefix: "other/" }, expiration: { dateMs: 0 } }),
      r({ noncurrentExpiration: { days: 1 } }),
    ];
    expect(expirationDue(rules, o, DAY)).toBe(Date.UTC(2030, 0, 5));
    expect(expirationDue([...rules, r({ expiration: { dateMs: Date.UTC(2029, 0, 1) } })], o, DAY)).toBe(Date.UTC(2029, 0, 1));
    expect(expirationDue([r({ expiration: { expiredObjectDeleteMarker: true } })], o, DAY)).toBeUndefined();
  });

  test("noncurrent versions: counted from when they became noncurrent, the newest NewerNoncurrentVersions kept", () => {
    const rules = [r({ filter: { prefix: "k" }, noncurrentExpiration: { days: 2, newerVersions: 2 } })];
    const since = Date.UTC(2030, 0, 1);
    const at = (rank: number, now: number) => noncurrentDue(rules, { key: "k", rank, noncurrentSinceMs: since }, now, DAY);
    expect(at(3, since + 2 * DAY)).toBe(true);
    expect(at(3, since + 2 * DAY - 1)).toBe(false);
    expect(at(2, since + 100 * DAY)).toBe(false);
    expect(noncurrentDue(rules, { key: "x", rank: 9, noncurrentSinceMs: since }, since + 100 * DAY, DAY)).toBe(false);
  });

  test("a lone delete marker: under ExpiredObjectDeleteMarker at once, under an Expiration in days once that old", () => {
    const m = { key: "a/k", lastModified: Date.UTC(2030, 0, 1) };
    expect(expiredMarkerDue([r({ expiration: { expiredObjectDeleteMarker: true } })], m, m.lastModified, DAY)).toBe(true);
    expect(expiredMarkerDue([r({ expiration: { expiredObjectDeleteMarker: false } })], m, m.lastModified + 100 * DAY, DAY)).toBe(false);
    expect(expiredMarkerDue([r({ expiration: { days: 3 } })], m, m.lastModified + 3 * DAY - 1, DAY)).toBe(false);
    expect(expiredMarkerDue([r({ expiration: { days: 3 } })], m, m.lastModified + 3 * DAY, DAY)).toBe(true);
    // A date rule expires objects, not markers.
    expect(expiredMarkerDue([r({ expiration: { dateMs: 0 } })], m, m.lastModified + 100 * DAY, DAY)).toBe(false);
  });

  test("uploads by initiation; which rows a pass reads, and the longest prefix the rules share", () => {
    const rules = [r({ filter: { prefix: "up/" }, abortIncompleteDays: 1 })];
    expect(abortDue(rules, { key: "up/a", initiatedMs: 0 }, DAY, DAY)).toBe(true);
    expect(abortDue(rules, { key: "up/a", initiatedMs: 1 }, DAY, DAY)).toBe(false);
    expect(abortDue(rules, { key: "down/a", initiatedMs: 0 }, 9 * DAY, DAY)).toBe(false);
    expect(rowsNeeded(rules)).toEqual({ objects: false, versions: false, uploads: true });
    expect(rowsNeeded([r({ expiration: { dateMs: 0 } })])).toEqual({ objects: true, versions: false, uploads: false });
    expect(rowsNeeded([r({ expiration: { days: 1 } })])).toEqual({ objects: true, versions: true, uploads: false });
    expect(rowsNeeded([r({ enabled: false, expiration: { days: 1 } })])).toEqual({ objects: false, versions: false, uploads: false });
    const any = () => true;
    expect(commonPrefix([r({ filter: { prefix: "logs/2024" } }), r({ filter: { prefix: "logs/2025" } })], any)).toBe("logs/202");
    expect(commonPrefix([r({ filter: { prefix: "logs/" } }), r({ filter: { tags: { a: "b" } } })], any)).toBe("");
    expect(commonPrefix([r({ filter: { prefix: "logs/" } }), r({ enabled: false, filter: { prefix: "x" } })], any)).toBe("logs/");
    // Never half a surrogate pair.
    expect(commonPrefix([r({ filter: { prefix: "a\u{1F600}" } }), r({ filter: { prefix: "a\u{1F601}" } })], any)).toBe("a");
  });

  test("config: a real day and a pass every 5 minutes by default; a shortened day for tests; nonsense refused", () => {
    expect(DEFAULT_LIFECYCLE).toEqual({ dayMs: DAY, intervalMs: 300_000, maxActionsPerPass: 1000 });
    expect(lifecycleConfig(resolveConfig({ lifecycle: { dayMs: 1000 } }))).toEqual({ ...DEFAULT_LIFECYCLE, dayMs: 1000 });
    expect(() => resolveConfig({ lifecycle: { dayMs: 0 } })).toThrow(/lifecycle day/);
    expect(() => resolveConfig({ lifecycle: { maxActionsPerPass: 0 } })).toThrow(/actions per pass/);
  });
});

describe("a lifecycle pass over a real index store", () => {
  const SHARDS = 4;
  const B = "bkt";
  const NOW = Date.UTC(2030, 5, 1);
  let root: string;
  let store: IndexStore;
  let n = 0;
  const stamp = () => encodeTimestamp({ wall: NOW - 1_000_000 + ++n, logical: 0, node: "n" });
  const manifest = (lastModified: number, extra: Partial<ObjectManifest> = {}): ObjectManifest => ({ size: 5, etag: `e${lastModified}`, contentType: "x", meta: {}, lastModified, chunkSize: 1, chunks: [], ...extra });

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-lifecycle-"));
    store = await openIndexStore(path.join(root, "index"), { deletesAreFinal });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** A key whose shard this peer leads (o0 and o2 in these tests), found by trying suffixes. */
  const keyIn = (prefix: string, lead: boolean, from = 0): string => {
    for (let i = from; ; i++) {
      const k = `${prefix}${i}`;
      if (["o0", "o2"].includes(objectShard(B, k, SHARDS)) === lead) return k;
    }
  };

  test("acts on due objects, noncurrent versions past the kept ones (across pages), lone markers and old uploads, only where it leads; a changed object is skipped", async () => {
    const rules: LifecycleRule[] = [
      { id: "exp", enabled: true, filter: { prefix: "exp/" }, form: "prefix", expiration: { days: 2 } },
      { id: "nc", enabled: true, filter: { prefix: "nc/" }, form: "prefix", noncurrentExpiration: { days: 1, newerVersions: 100 } },
      { id: "dm", enabled: true, filter: { prefix: "dm/" }, form: "prefix", expiration: { expiredObjectDeleteMarker: true } },
      { id: "up", enabled: true, filter: { prefix: "up/" }, form: "prefix", abortIncompleteDays: 1 },
    ];
    await store.apply(BUCKETS_SHARD, lifecycleRow(B), { ts: stamp(), value: rules });
    const putObject = (key: string, m: ObjectManifest | null) => store.apply(objectShard(B, key, SHARDS), objectRow(B, key), { ts: stamp(), value: m });
    const old = NOW - 5 * DAY;
    const due = keyIn("exp/", true);
    const changed = keyIn("exp/", true, Number(due.slice(4)) + 1);
    const young = keyIn("exp/y", true);
    const elsewhere = keyIn("exp/", false);
    const outside = keyIn("keep/", true);
    await putObject(due, manifest(old));
    await putObject(changed, manifest(old));
    await putObject(young, manifest(NOW - DAY));
    await putObject(elsewhere, manifest(old));
    await putObject(outside, manifest(old));

    // nc/: one key with 150 versions a day apart (more than a page of rows), newest first in row order.
    const ncKey = keyIn("nc/", true);
    const versions: Array<{ id: string; value: VersionValue }> = [];
    for (let i = 0; i < 150; i++) {
      const ts = encodeTimestamp({ wall: NOW - (200 - i) * DAY, logical: 0, node: "n" });
      const id = versionOrder(ts);
      const value = { ...manifest(NOW - (200 - i) * DAY), versionId: id };
      versions.unshift({ id, value });
      await store.apply(objectShard(B, ncKey, SHARDS), versionRow(B, ncKey, id), { ts, value });
    }
    // dm/: a key with a lone delete marker, and one whose marker has a version under it.
    const lone = keyIn("dm/", true);
    const covered = keyIn("dm/", true, Number(lone.slice(3)) + 1);
    const marker = (key: string, wall: number) => {
      const ts = encodeTimestamp({ wall, logical: 0, node: "n" });
      return store.apply(objectShard(B, key, SHARDS), versionRow(B, key, versionOrder(ts)), { ts, value: { deleteMarker: true, versionId: versionOrder(ts), lastModified: wall } });
    };
    const loneId = versionOrder(encodeTimestamp({ wall: old, logical: 0, node: "n" }));
    await marker(lone, old);
    await marker(covered, old);
    const coveredTs = encodeTimestamp({ wall: old - DAY, logical: 0, node: "n" });
    await store.apply(objectShard(B, covered, SHARDS), versionRow(B, covered, versionOrder(coveredTs)), { ts: coveredTs, value: { ...manifest(old - DAY), versionId: versionOrder(coveredTs) } });
    // up/: an old upload and a young one.
    const upOld = keyIn("up/", true);
    const upYoung = keyIn("up/", true, Number(upOld.slice(3)) + 1);
    for (const [key, initiated] of [[upOld, old], [upYoung, NOW - 1000]] as const) {
      await store.apply(objectShard(B, key, SHARDS), uploadRow(B, key, `id-${key}`), { ts: stamp(), value: { uploadId: `id-${key}`, key, initiated, contentType: "x", meta: {} } });
    }

    const replicas: Record<string, string[]> = { o0: ["me", "p"], o1: ["p", "me"], o2: ["x", "me"], o3: ["p", "x", "me"] };
    const deletes: string[] = [];
    const aborts: string[] = [];
    /** Deletes tried, refused ones too. */
    let attempts = 0;
    const objects: Pick<ObjectService, "deleteObject" | "listVersions"> = {
      async deleteObject(bucket, key, ctx = {}) {
        attempts++;
        expect(bucket).toBe(B);
        expect(ctx.lifecycle).toBe(true);
        if (ctx.versionId === undefined) {
          // An expiration is conditional on the very object read.
          expect(ctx.condition).toEqual({ ifMatch: `e${old}`, ifLastModifiedMs: old, ifTags: {} });
          if (key === changed) throw new MeshError("PreconditionFailed", "written again");
        }
        deletes.push(ctx.versionId === undefined ? key : `${key}@${ctx.versionId === versions.at(-1)?.id ? "oldest" : ctx.versionId}`);
        return {};
      },
      async listVersions(_bucket, q) {
        // The quorum view agrees with the replica: a key's versions newest first.
        const of = (key: string) => (key === ncKey ? versions.map((v) => ({ key, versionId: v.id, isLatest: false, value: v.value })) : []);
        if (q.prefix === lone) return { versions: [{ key: lone, versionId: loneId, isLatest: true, value: { deleteMarker: true, versionId: loneId, lastModified: old } }], prefixes: [] };
        return { versions: of(q.prefix ?? "").slice(0, q.limit), prefixes: [] };
      },
    };
    const settings: LifecycleConfig = { ...DEFAULT_LIFECYCLE };
    const job = createLifecycleJob({
      self: "me",
      indexStore: store,
      placement: { shardReplicas: (s) => replicas[s] ?? [] },
      isAlive: (p) => p !== "x",
      objects,
      abortUpload: async (bucket, key, uploadId) => {
        aborts.push(`${bucket}/${key} ${uploadId}`);
        return "aborted";
      },
      config: settings,
      log: createLogger("t", () => {}, "error"),
      clock: () => NOW,
    });
    let steps = 0;
    for await (const _ of job.pass(new AbortController().signal)) steps++;
    expect(steps).toBeGreaterThan(1);
    // Versions of nc/ ranked 101..149 among the noncurrent ones go: the 49 oldest.
    const ncGone = deletes.filter((d) => d.startsWith(`${ncKey}@`));
    expect(ncGone.length).toBe(150 - 1 - 100);
    expect(150 - 1 - 100).toBeLessThan(STEP_ROWS);
    expect(new Set(ncGone).size).toBe(ncGone.length);
    expect(ncGone).toContain(`${ncKey}@oldest`);
    expect(ncGone).not.toContain(`${ncKey}@${versions[100].id}`);
    expect(ncGone).toContain(`${ncKey}@${versions[101].id}`);
    expect(deletes.filter((d) => !d.startsWith(`${ncKey}@`)).sort()).toEqual([due, `${lone}@${loneId}`].sort());
    expect(aborts).toEqual([`${B}/${upOld} id-${upOld}`]);
    expect(job.stats).toMatchObject({ dayMs: DAY, lastPassAtMs: NOW, objectsExpired: 1, versionsRemoved: 50, uploadsAborted: 1, skippedChanged: 1 });

    expect(attempts).toBe(1 + 1 + 49 + 1);

    // Bounded: a pass with room for 3 actions (a refused delete counts) tries 3 and stops.
    attempts = 0;
    let aborted = 0;
    settings.maxActionsPerPass = 3;
    const bounded = createLifecycleJob({ self: "me", indexStore: store, placement: { shardReplicas: (s) => replicas[s] ?? [] }, isAlive: (p) => p !== "x", objects, abortUpload: async () => (aborted++, "aborted"), config: settings, log: createLogger("t", () => {}, "error"), clock: () => NOW });
    for await (const _ of bounded.pass(new AbortController().signal));
    expect(attempts + aborted).toBe(3);
  });
});
