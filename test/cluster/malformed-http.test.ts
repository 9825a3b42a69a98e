// Malformed HTTP requests, written byte for byte over TCP (fetch would normalise or refuse
// them), against both APIs of one peer: each answers 4xx with an error code and a message
// in the API's own format, never a 500, and never a reset without a status line.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Cluster, teardownCluster } from "../harness/cluster.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { errorCodeOf, portOf, replyText, sendWire, signedWire, type WireReply, type WireRequest } from "../fuzz/wire.ts";

let cluster: Cluster | undefined;
let native = 0;
let s3 = 0;
const BUCKET = "malformed";

beforeAll(async () => {
  cluster = await new Cluster({ rf: 1 }).start(1);
  native = portOf(cluster.peer(0).httpUrl);
  s3 = portOf(cluster.peer(0).s3Url);
  expect((await sendWire(s3, await signedWire(s3, { method: "PUT", path: `/${BUCKET}` }))).status).toBe(200);
});
afterAll(() => teardownCluster(cluster));

/** "400 InvalidRequest"-style summary; a reply without an error body says so. */
function summary(r: WireReply): string {
  if (r.status === undefined) return `no status line (reset ${r.reset}, timed out ${r.timedOut})`;
  const err = errorCodeOf(r);
  return err ? `${r.status} ${err.code}` : `${r.status} (no error code: ${replyText(r).slice(0, 80)})`;
}

const raw = (head: string, body: Uint8Array = new Uint8Array(0)): WireRequest => ({ head: `${head}\r\nconnection: close`, body });
const native_ = (line: string, headers = "Host: x") => raw(`${line} HTTP/1.1\r\n${headers}\r\nauthorization: ${ADMIN_BEARER}\r\ncontent-length: 0`);
const s3_ = (line: string, headers = "Host: x") => raw(`${line} HTTP/1.1\r\n${headers}\r\ncontent-length: 0`);

describe("malformed requests", () => {
  test("bad Host headers: 400 InvalidRequest on both APIs", async () => {
    for (const [api, port] of [["native", native], ["s3", s3]] as const) {
      for (const host of ["Host: a:b", "Host: %00", "Host: x:99999", "Host: a\r\nHost: b", "X-No-Host: 1"]) {
        const r = await sendWire(port, api === "native" ? native_("GET /health", host) : s3_("GET /", host));
        expect(`${api} ${JSON.stringify(host)}: ${summary(r)}`).toBe(`${api} ${JSON.stringify(host)}: 400 InvalidRequest`);
      }
      // An empty Host is legal (RFC 9112 3.2): the request is served.
      const empty = await sendWire(port, api === "native" ? native_("GET /health", "Host: ") : s3_("GET /", "Host: "));
      expect(`${api} empty Host: ${summary(empty)}`).toBe(api === "native" ? "native empty Host: 200 (no error code: " + replyText(empty).slice(0, 80) + ")" : "s3 empty Host: 403 AccessDenied");
    }
  });

  test("absolute-form targets are served by their path; other targets are refused", async () => {
    expect((await sendWire(native, native_("GET http://x/health"))).status).toBe(200);
    expect(summary(await sendWire(native, native_("GET http://x/y")))).toBe("404 NotFound");
    const signed = await signedWire(s3, { method: "GET", path: `/${BUCKET}`, rawQuery: "list-type=2" });
    signed.head = signed.head.replace(`GET /${BUCKET}`, `GET http://127.0.0.1:${s3}/${BUCKET}`);
    expect((await sendWire(s3, signed)).status).toBe(200);
    expect(summary(await sendWire(native, native_("GET x:80")))).toBe("400 InvalidRequest");
    expect(summary(await sendWire(s3, s3_("GET ftp://x/y")))).toBe("400 InvalidRequest");
  });

  test("bucket names and keys of invalid percent-encoding: 400 InvalidURI", async () => {
    for (const path of ["/buckets/%FF%FF%FF", "/buckets/%zz/objects", "/buckets/%FF/objects/k", `/buckets/${BUCKET}/objects/%FF%FE`, "/cluster/locate/%FF/k", "/admin/keys/%E0%A4%A"]) {
      for (const method of ["GET", "PUT", "DELETE"]) {
        const r = await sendWire(native, native_(`${method} ${path}`));
        expect(`${method} ${path}: ${summary(r)}`).toBe(`${method} ${path}: 400 InvalidURI`);
      }
    }
    for (const path of ["/%FF%FF%FF", "/%zz", `/${BUCKET}/%FF%FE`, `/${BUCKET}/a%zzb`]) {
      const r = await sendWire(s3, await signedWire(s3, { method: "GET", path }));
      expect(`GET ${path}: ${summary(r)}`).toBe(`GET ${path}: 400 InvalidURI`);
    }
  });

  test("XML with a DOCTYPE or entities, nested 20,000 deep, or too big: 400 MalformedXML with a status line", async () => {
    const deep = (root: string) => `<${root}>` + "<a>".repeat(20_000) + "</a>".repeat(20_000) + `</${root}>`;
    const laughs = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>`;
    const external = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>`;
    const cases: Array<[string, string, string, Uint8Array, string?]> = [
      ["deep delete", `/${BUCKET}`, "delete", Buffer.from(deep("Delete"))],
      ["deep complete", `/${BUCKET}/k`, "uploadId=nope", Buffer.from(deep("CompleteMultipartUpload"))],
      ["entities", `/${BUCKET}`, "delete", Buffer.from(laughs)],
      ["external entity", `/${BUCKET}`, "delete", Buffer.from(external)],
      ["3 MiB delete", `/${BUCKET}`, "delete", Buffer.alloc(3 << 20, "<Delete>")],
      ["3 MiB delete, unsigned payload", `/${BUCKET}`, "delete", Buffer.alloc(3 << 20, "<Delete>"), "UNSIGNED-PAYLOAD"],
      ["5 MiB complete", `/${BUCKET}/k`, "uploadId=nope", Buffer.alloc(5 << 20, "<Part>"), "UNSIGNED-PAYLOAD"],
      ["2 MiB of '<' (a backtracking check took 70 s on this)", `/${BUCKET}`, "delete", Buffer.alloc(2 << 20, "<")],
      ["70 MiB delete (beyond what is drained before answering)", `/${BUCKET}`, "delete", Buffer.alloc(70 << 20, "<Delete>"), "UNSIGNED-PAYLOAD"],
    ];
    for (const [what, path, rawQuery, body, payloadHash] of cases) {
      const r = await sendWire(s3, await signedWire(s3, { method: "POST", path, rawQuery, body, payloadHash }));
      expect(`${what}: ${summary(r)}`).toBe(`${what}: 400 MalformedXML`);
    }
  }, 60_000);

  test("CONNECT, and a response-* override that cannot be a header value, are 4xx (found by the fuzzer: no answer, and 500)", async () => {
    for (const [api, port] of [["native", native], ["s3", s3]] as const) {
      expect(`${api}: ${summary(await sendWire(port, s3_("CONNECT 127.0.0.1:80", "Host: 127.0.0.1:80")))}`).toBe(`${api}: 405 MethodNotAllowed`);
    }
    expect((await sendWire(s3, await signedWire(s3, { method: "PUT", path: `/${BUCKET}/obj`, body: Buffer.from("x") }))).status).toBe(200);
    const r = await sendWire(s3, await signedWire(s3, { method: "GET", path: `/${BUCKET}/obj`, rawQuery: "response-content-disposition=%E6%81%83" }));
    expect(summary(r)).toBe("400 InvalidArgument");
  });

  test("an oversized XML body never ends in a reset without a status line (repeated, as it was a race)", async () => {
    const body = Buffer.alloc(10 << 20, "<Delete>");
    const huge = Buffer.alloc(70 << 20, "<Delete>");
    const seen = new Map<string, number>();
    for (let i = 0; i < 12; i++) {
      const big = i % 3 === 2 ? huge : body;
      const r = await sendWire(s3, await signedWire(s3, { method: "POST", path: `/${BUCKET}`, rawQuery: "delete", body: big, payloadHash: "UNSIGNED-PAYLOAD" }));
      seen.set(summary(r), (seen.get(summary(r)) ?? 0) + 1);
    }
    expect([...seen]).toEqual([["400 MalformedXML", 12]]);
  }, 60_000);
});
