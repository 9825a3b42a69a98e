// S3 bucket lifecycle through the AWS SDK against one 3-peer mesh whose lifecycle day is a
// second: configurations written through one peer and read back through another (and
// refused as S3 refuses them), expiration by age under a prefix and under a tag filter and
// by date (objects outside the filters stay), a versioned bucket (a delete marker made,
// noncurrent versions removed beyond NewerNoncurrentVersions, a lone delete marker removed),
// AbortIncompleteMultipartUpload, the LifecycleExpiration events, and an object written
// again between the worker's read and its delete, which the conditional delete keeps.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketLifecycleCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  UploadPartCommand,
  type LifecycleRule,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, json, request } from "../harness/http.ts";
import { bodyBytes, s3Client, s3ErrorOf, sdkFailure, signedFetch, TEST_ADMIN } from "../harness/s3.ts";

const T = 30_000;
/** A lifecycle day, shortened: rules' days count in seconds here. */
const DAY_MS = 1000;
let cluster: Cluster;
let s3: S3Client[] = [];
/** The object the race test writes again from inside the worker, between its read and its delete. */
const RACE = { bucket: "lc-race", key: "r" };
let raced: Promise<unknown> | undefined;

beforeAll(async () => {
  cluster = await startConverged(3, {
    config: {
      // Events are readable once no earlier one can still arrive: sooner than the default 3 s on one machine.
      events: { settleMs: 500 },
      lifecycle: {
        dayMs: DAY_MS,
        intervalMs: 200,
        beforeExpire: async (bucket, key) => {
          if (bucket !== RACE.bucket || key !== RACE.key || raced) return;
          raced = s3[2].send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "written again" }));
          await raced;
        },
      },
    },
  });
  s3 = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, undefined, { maxAttempts: 1 }));
}, T);

afterAll(async () => {
  for (const c of s3) c.destroy();
  await teardownCluster(cluster);
}, T);

const put = (i: number, Bucket: string, Key: string, body: string, Tagging?: string) => s3[i].send(new PutObjectCommand({ Bucket, Key, Body: body, Tagging }));
const setRules = (i: number, Bucket: string, Rules: LifecycleRule[]) => s3[i].send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules } }));
/** Does the key have a current object, asked through peer i? */
async function exists(i: number, Bucket: string, Key: string): Promise<boolean> {
  try {
    await s3[i].send(new HeadObjectCommand({ Bucket, Key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}
/** Every version and delete marker of a key prefix: "key id M" for markers, "key id" for versions, newest first per key. */
async function versionsOf(i: number, Bucket: string, Prefix: string) {
  const out = await s3[i].send(new ListObjectVersionsCommand({ Bucket, Prefix }));
  return [...(out.Versions ?? []).map((v) => ({ key: v.Key!, id: v.VersionId!, marker: false, latest: v.IsLatest! })), ...(out.DeleteMarkers ?? []).map((m) => ({ key: m.Key!, id: m.VersionId!, marker: true, latest: m.IsLatest! }))];
}
/** A lifecycle figure summed over the three peers. */
async function total(field: "objectsExpired" | "versionsRemoved" | "uploadsAborted" | "skippedChanged"): Promise<number> {
  let n = 0;
  for (const i of [0, 1, 2]) n += (await clusterStatus(cluster.peer(i).httpUrl)).workers.lifecycle?.[field] ?? 0;
  return n;
}
/** The bucket's change events of `types`, as "name key". */
async function events(Bucket: string, types: string): Promise<string[]> {
  type Rec = { eventName: string; s3: { object: { key: string } } };
  return json<{ events: Rec[] }>(await request(cluster.peer(0).httpUrl, "GET", `/buckets/${Bucket}/events?limit=100&types=${types}`)).events.map((e) => `${e.eventName} ${decodeURIComponent(e.s3.object.key.replaceAll("+", " "))}`);
}

describe("S3 lifecycle", () => {
  test(
    "Put/Get/DeleteBucketLifecycleConfiguration round trip through different peers",
    async () => {
      const B = "lc-config";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      const none = await sdkFailure("no configuration yet", s3[1].send(new GetBucketLifecycleConfigurationCommand({ Bucket: B })));
      expect([none.status, none.name]).toEqual([404, "NoSuchLifecycleConfiguration"]);
      const rules: LifecycleRule[] = [
        { ID: "logs", Status: "Enabled", Filter: { Prefix: "logs/" }, Expiration: { Days: 7 } },
        { ID: "tagged", Status: "Disabled", Filter: { Tag: { Key: "tier", Value: "tmp" } }, Expiration: { Date: new Date("2030-01-01T00:00:00Z") } },
        {
          ID: "and",
          Status: "Enabled",
          Filter: { And: { Prefix: "a/", Tags: [{ Key: "k", Value: "v" }], ObjectSizeGreaterThan: 10, ObjectSizeLessThan: 1000 } },
          NoncurrentVersionExpiration: { NoncurrentDays: 3, NewerNoncurrentVersions: 2 },
        },
        { ID: "markers", Status: "Enabled", Filter: {}, Expiration: { ExpiredObjectDeleteMarker: true }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 } },
        { ID: "legacy", Status: "Enabled", Prefix: "old/", Expiration: { Days: 1 } },
      ];
      await setRules(0, B, rules);
      const got = (await s3[1].send(new GetBucketLifecycleConfigurationCommand({ Bucket: B }))).Rules ?? [];
      const shape = (r: LifecycleRule) => JSON.parse(JSON.stringify(r, (_k, v) => (v instanceof Date ? v.toISOString() : v)));
      expect(got.map(shape)).toEqual(rules.map(shape));
      // A rule sent without an ID gets one.
      await setRules(2, B, [{ Status: "Enabled", Filter: { Prefix: "x/" }, Expiration: { Days: 1 } }]);
      const made = (await s3[0].send(new GetBucketLifecycleConfigurationCommand({ Bucket: B }))).Rules ?? [];
      expect(made.length).toBe(1);
      expect(made[0].ID?.length).toBeGreaterThan(0);
      await s3[2].send(new DeleteBucketLifecycleCommand({ Bucket: B }));
      const gone = await sdkFailure("deleted configuration", s3[0].send(new GetBucketLifecycleConfigurationCommand({ Bucket: B })));
      expect([gone.status, gone.name]).toEqual([404, "NoSuchLifecycleConfiguration"]);
    },
    T,
  );

  test(
    "bad configurations are refused as S3 refuses them; transitions are 501 NotImplemented",
    async () => {
      const B = "lc-bad";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      const base: LifecycleRule = { ID: "r", Status: "Enabled", Filter: { Prefix: "p/" }, Expiration: { Days: 1 } };
      const cases: Array<[string, LifecycleRule[], string]> = [
        ["duplicate IDs", [base, { ...base }], "400 InvalidArgument"],
        ["ID of 256 characters", [{ ...base, ID: "x".repeat(256) }], "400 InvalidArgument"],
        ["Status neither Enabled nor Disabled", [{ ...base, Status: "On" as "Enabled" }], "400 MalformedXML"],
        ["no action", [{ ID: "r", Status: "Enabled", Filter: { Prefix: "p/" } }], "400 InvalidRequest"],
        ["Days 0", [{ ...base, Expiration: { Days: 0 } }], "400 InvalidArgument"],
        ["Days and Date", [{ ...base, Expiration: { Days: 1, Date: new Date("2030-01-01T00:00:00Z") } }], "400 MalformedXML"],
        ["a Date not at midnight", [{ ...base, Expiration: { Date: new Date("2030-01-01T12:00:00Z") } }], "400 InvalidArgument"],
        ["ExpiredObjectDeleteMarker with Days", [{ ...base, Expiration: { Days: 1, ExpiredObjectDeleteMarker: true } }], "400 InvalidArgument"],
        ["two conditions in a Filter without And", [{ ...base, Filter: { Prefix: "p/", Tag: { Key: "k", Value: "v" } } }], "400 MalformedXML"],
        ["NoncurrentDays missing", [{ ...base, Expiration: undefined, NoncurrentVersionExpiration: { NewerNoncurrentVersions: 1 } }], "400 InvalidArgument"],
        ["101 newer noncurrent versions", [{ ...base, NoncurrentVersionExpiration: { NoncurrentDays: 1, NewerNoncurrentVersions: 101 } }], "400 InvalidArgument"],
        ["upload abort with a tag filter", [{ ...base, Filter: { Tag: { Key: "k", Value: "v" } }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }], "400 InvalidRequest"],
        ["size bounds crossed", [{ ...base, Filter: { And: { ObjectSizeGreaterThan: 100, ObjectSizeLessThan: 50 } } }], "400 InvalidRequest"],
        ["1001 rules", Array.from({ length: 1001 }, (_, i) => ({ ...base, ID: `r${i}` })), "400 MalformedXML"],
        ["a Transition", [{ ...base, Transitions: [{ Days: 30, StorageClass: "GLACIER" }] }], "501 NotImplemented"],
        ["a NoncurrentVersionTransition", [{ ...base, NoncurrentVersionTransitions: [{ NoncurrentDays: 30, StorageClass: "GLACIER" }] }], "501 NotImplemented"],
      ];
      for (const [what, rules, expected] of cases) {
        const f = await sdkFailure(what, setRules(1, B, rules));
        expect(`${what}: ${f.status} ${f.name}`).toBe(`${what}: ${expected}`);
      }
      // What the SDK cannot send: an element S3's schema does not have, a Filter beside a Prefix.
      const raw = async (body: string) => {
        const r = await signedFetch(cluster.peer(2).s3Url, { method: "PUT", path: `/${B}`, query: { lifecycle: "" }, body, creds: TEST_ADMIN });
        return `${r.status} ${s3ErrorOf(r.text).code}`;
      };
      expect(await raw("<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration><Colour>red</Colour></Rule></LifecycleConfiguration>")).toBe("400 MalformedXML");
      expect(await raw("<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status><Prefix>a</Prefix><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>")).toBe("400 MalformedXML");
      expect(await raw("<LifecycleConfiguration></LifecycleConfiguration>")).toBe("400 MalformedXML");
      expect(await raw("<LifecycleConfiguration><Rule>")).toBe("400 MalformedXML");
      // Nothing was stored by any of them.
      const none = await sdkFailure("after refusals", s3[0].send(new GetBucketLifecycleConfigurationCommand({ Bucket: B })));
      expect(none.name).toBe("NoSuchLifecycleConfiguration");
    },
    T,
  );

  test(
    "expiration by age under a prefix and a tag filter, and by date; objects outside the filters stay; LifecycleExpiration:Delete events",
    async () => {
      const B = "lc-expire";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      await Promise.all([
        put(0, B, "logs/a", "a"),
        put(1, B, "logs/b", "b"),
        put(2, B, "keep/a", "keep"),
        put(0, B, "tagged-yes", "t", "expire=yes"),
        put(1, B, "tagged-no", "t", "expire=no"),
        put(2, B, "old/x", "x"),
        put(0, B, "big/x", "x".repeat(2000)),
        put(1, B, "big/small", "x"),
      ]);
      await setRules(1, B, [
        { ID: "logs", Status: "Enabled", Filter: { Prefix: "logs/" }, Expiration: { Days: 1 } },
        { ID: "tag", Status: "Enabled", Filter: { Tag: { Key: "expire", Value: "yes" } }, Expiration: { Days: 1 } },
        { ID: "date", Status: "Enabled", Filter: { Prefix: "old/" }, Expiration: { Date: new Date("2020-01-01T00:00:00Z") } },
        { ID: "big", Status: "Enabled", Filter: { And: { Prefix: "big/", ObjectSizeGreaterThan: 1000 } }, Expiration: { Days: 1 } },
        { ID: "off", Status: "Disabled", Filter: { Prefix: "keep/" }, Expiration: { Days: 1 } },
      ]);
      const expired = ["logs/a", "logs/b", "tagged-yes", "old/x", "big/x"];
      await cluster.waitFor("expired objects gone", async () => (await Promise.all(expired.map((k, i) => exists(i % 3, B, k)))).every((e) => !e), 10_000, 200);
      // Written at the same moment as the expired ones: only the filters kept them.
      for (const [i, k] of ["keep/a", "tagged-no", "big/small"].entries()) expect(`${k}: ${await exists(i, B, k)}`).toBe(`${k}: true`);
      expect(await total("objectsExpired")).toBeGreaterThanOrEqual(expired.length);
      let seen: string[] = [];
      await cluster.waitFor("lifecycle events", async () => (seen = await events(B, "LifecycleExpiration:*")).length >= expired.length);
      expect(seen.sort()).toEqual(expired.map((k) => `LifecycleExpiration:Delete ${k}`).sort());
    },
    T,
  );

  test(
    "an object written again between the worker's read and its delete is not deleted (the delete is conditional)",
    async () => {
      await s3[0].send(new CreateBucketCommand({ Bucket: RACE.bucket }));
      await put(0, RACE.bucket, RACE.key, "first");
      const skippedBefore = await total("skippedChanged");
      await setRules(0, RACE.bucket, [{ ID: "all", Status: "Enabled", Filter: {}, Expiration: { Days: 1 } }]);
      await cluster.waitFor("the worker wrote the object again before deleting it", () => raced !== undefined, 10_000, 50);
      await raced;
      await cluster.waitFor("the conditional delete refused", async () => (await total("skippedChanged")) > skippedBefore, 10_000, 50);
      // Read at once: the new object is young (its own day has not passed) and the old one's delete did not take it.
      const out = await s3[1].send(new GetObjectCommand({ Bucket: RACE.bucket, Key: RACE.key }));
      expect(new TextDecoder().decode(await bodyBytes(out.Body))).toBe("written again");
    },
    T,
  );

  test(
    "versioned bucket: expiration makes a delete marker, noncurrent versions go beyond NewerNoncurrentVersions, a lone delete marker goes",
    async () => {
      const B = "lc-versions";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      await s3[1].send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Enabled" } }));
      const cur = (await put(0, B, "cur/a", "current")).VersionId!;
      const nc: string[] = [];
      for (const [i, body] of ["one", "two", "three", "four"].entries()) nc.push((await put(i % 3, B, "nc/k", body)).VersionId!);
      // A key left with a delete marker alone, and one whose marker still has a version under it.
      const lone = (await put(2, B, "dm/lone", "x")).VersionId!;
      const loneMarker = (await s3[0].send(new DeleteObjectCommand({ Bucket: B, Key: "dm/lone" }))).VersionId!;
      await s3[1].send(new DeleteObjectCommand({ Bucket: B, Key: "dm/lone", VersionId: lone }));
      const kept = (await put(2, B, "dm/kept", "y")).VersionId!;
      const keptMarker = (await s3[0].send(new DeleteObjectCommand({ Bucket: B, Key: "dm/kept" }))).VersionId!;
      await setRules(2, B, [
        { ID: "cur", Status: "Enabled", Filter: { Prefix: "cur/" }, Expiration: { Days: 1 } },
        { ID: "nc", Status: "Enabled", Filter: { Prefix: "nc/" }, NoncurrentVersionExpiration: { NoncurrentDays: 1, NewerNoncurrentVersions: 1 } },
        { ID: "dm", Status: "Enabled", Filter: { Prefix: "dm/" }, Expiration: { ExpiredObjectDeleteMarker: true } },
      ]);
      await cluster.waitFor(
        "versions expired",
        async () => {
          const [c, n, d] = await Promise.all([versionsOf(0, B, "cur/"), versionsOf(1, B, "nc/"), versionsOf(2, B, "dm/")]);
          return c.length === 2 && n.length === 2 && d.length === 2;
        },
        10_000,
        200,
      );
      // The current version expired into a delete marker; the version stays, noncurrent.
      const c = await versionsOf(1, B, "cur/");
      expect(c.filter((v) => !v.marker).map((v) => [v.id, v.latest])).toEqual([[cur, false]]);
      expect(c.filter((v) => v.marker).map((v) => v.latest)).toEqual([true]);
      expect(await exists(2, B, "cur/a")).toBe(false);
      // nc/k: the current version and the newest noncurrent one stay.
      expect((await versionsOf(2, B, "nc/")).map((v) => v.id).sort()).toEqual([nc[3], nc[2]].sort());
      const body = await s3[0].send(new GetObjectCommand({ Bucket: B, Key: "nc/k" }));
      expect(new TextDecoder().decode(await bodyBytes(body.Body))).toBe("four");
      // dm/lone's marker went; dm/kept's stays over its version.
      expect((await versionsOf(0, B, "dm/")).map((v) => `${v.key} ${v.id} ${v.marker}`).sort()).toEqual([`dm/kept ${kept} false`, `dm/kept ${keptMarker} true`].sort());
      expect(loneMarker).not.toBe(keptMarker);
      expect(await total("versionsRemoved")).toBeGreaterThanOrEqual(3);
      let seen: string[] = [];
      await cluster.waitFor("lifecycle events", async () => (seen = await events(B, "LifecycleExpiration:*")).length >= 4);
      expect(seen.sort()).toEqual(["LifecycleExpiration:Delete dm/lone", "LifecycleExpiration:Delete nc/k", "LifecycleExpiration:Delete nc/k", "LifecycleExpiration:DeleteMarkerCreated cur/a"]);
    },
    T,
  );

  test(
    "AbortIncompleteMultipartUpload aborts uploads under its prefix once their days have passed",
    async () => {
      const B = "lc-uploads";
      await s3[0].send(new CreateBucketCommand({ Bucket: B }));
      const start = async (i: number, Key: string) => {
        const { UploadId } = await s3[i].send(new CreateMultipartUploadCommand({ Bucket: B, Key }));
        await s3[i].send(new UploadPartCommand({ Bucket: B, Key, UploadId, PartNumber: 1, Body: "part" }));
        return UploadId!;
      };
      const [, , other] = await Promise.all([start(0, "up/a"), start(1, "up/b"), start(2, "other/c")]);
      await setRules(0, B, [{ ID: "mpu", Status: "Enabled", Filter: { Prefix: "up/" }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }]);
      const left = async () => ((await s3[1].send(new ListMultipartUploadsCommand({ Bucket: B }))).Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
      await cluster.waitFor("uploads under up/ aborted", async () => (await left()).length === 1, 10_000, 200);
      expect(await left()).toEqual([`other/c ${other}`]);
      expect(await total("uploadsAborted")).toBeGreaterThanOrEqual(2);
    },
    T,
  );
});
