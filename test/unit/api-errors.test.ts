// The error family and each API's one error function: every code has one status (S3's own
// for the few where it differs), errors carry their headers, the native API answers JSON
// and S3 XML, both with the request id in a header (and S3 in the body too), HEAD answers
// have no body, and a 5xx is logged under its request id.
import { describe, expect, test } from "bun:test";
import { nativeErrors } from "../../src/api/errors.ts";
import { requestIdOf } from "../../src/api/request-id.ts";
import { s3Errors } from "../../src/api/s3/errors.ts";
import { S3AuthError } from "../../src/api/s3/sigv4.ts";
import { BadDigestError, ConfigError, ERROR_STATUS, MeshError, QuorumError, RemoteError, RequestTimeoutError, SlowDownError, httpStatus, isErrorCode, type ErrorCode } from "../../src/errors.ts";
import { ChunkCorruptError, InvalidChunkIdError } from "../../src/store/chunk-store.ts";
import { BudgetTimeoutError } from "../../src/util/byte-budget.ts";
import { ClockDriftError } from "../../src/util/hlc.ts";
import { MessageTooLargeError, StreamStalledError } from "../../src/net/frames.ts";
import { createLogger, type LogLevel } from "../../src/util/log.ts";

function capture() {
  const lines: Array<[LogLevel, string]> = [];
  return { lines, log: createLogger("t", (level, line) => void lines.push([level, line]), "debug") };
}

describe("the error family", () => {
  test("every code has an HTTP status; S3 differs only where AWS does", () => {
    for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) {
      for (const api of ["native", "s3"] as const) {
        const s = httpStatus(code, api);
        expect(`${code} ${api}: ${Number.isInteger(s) && s >= 400 && s < 600}`).toBe(`${code} ${api}: true`);
      }
    }
    expect([httpStatus("SlowDown"), httpStatus("SlowDown", "s3")]).toEqual([429, 503]);
    expect([httpStatus("RequestTimeout"), httpStatus("RequestTimeout", "s3")]).toEqual([408, 400]);
    expect(isErrorCode("NoSuchKey")).toBe(true);
    expect(isErrorCode("toString")).toBe(false);
  });

  test("every error class is a MeshError whose status comes from the table", () => {
    const errors: MeshError[] = [
      new ClockDriftError(61_000, 60_000),
      new BudgetTimeoutError("no memory"),
      new MessageTooLargeError("too big"),
      new StreamStalledError("stalled"),
      new BadDigestError("mismatch", { expected: "a", actual: "b" }),
      new S3AuthError("SignatureDoesNotMatch", "bad signature"),
      new ChunkCorruptError("c".repeat(64), null),
      new InvalidChunkIdError("x"),
      new ConfigError("bad flag"),
      new QuorumError("no quorum"),
      new SlowDownError("slow", 3),
      new RequestTimeoutError("late"),
    ];
    for (const e of errors) {
      expect(e).toBeInstanceOf(MeshError);
      expect(e.status).toBe(httpStatus(e.code));
    }
    expect(new SlowDownError("slow", 3).headers).toEqual({ "retry-after": "3" });
    expect(new S3AuthError("SignatureDoesNotMatch", "x").status).toBe(403);
  });

  test("a peer's error code is believed only if it is one of ours, and its status is ours", () => {
    const known = new RemoteError("NoSuchKey", "gone");
    expect([known.code, known.status, known.message]).toEqual(["NoSuchKey", 404, "gone"]);
    const unknown = new RemoteError("Whatever", "odd");
    expect([unknown.code, unknown.status, unknown.message]).toEqual(["InternalError", 500, "Whatever: odd"]);
  });
});

describe("each API's error function", () => {
  const request = (method = "GET", path = "/b/k?X-Amz-Signature=s1gnature-value") => new Request(`http://localhost${path}`, { method });

  test("native: JSON {error: {code, message}}, the error's headers, x-request-id", async () => {
    const { log } = capture();
    const req = request();
    const r = nativeErrors(log).respond(new MeshError("InvalidRange", "no", { headers: { "content-range": "bytes */5" } }), req);
    expect(r.status).toBe(416);
    expect(r.headers.get("content-range")).toBe("bytes */5");
    expect(r.headers.get("x-request-id")).toBe(requestIdOf(req));
    expect(await r.json()).toEqual({ error: { code: "InvalidRange", message: "no" } });
    const slow = nativeErrors(log).respond(new SlowDownError("slow", 4), req);
    expect([slow.status, slow.headers.get("retry-after")]).toEqual([429, "4"]);
  });

  test("S3: XML with the request id in the body and x-amz-request-id; SlowDown is 503; HEAD has no body", async () => {
    const { log } = capture();
    const req = request();
    const r = s3Errors(log).respond(new SlowDownError("slow", 2), req);
    expect([r.status, r.headers.get("retry-after"), r.headers.get("content-type")]).toEqual([503, "2", "application/xml"]);
    const id = r.headers.get("x-amz-request-id")!;
    expect(id).toBe(requestIdOf(req));
    const xml = await r.text();
    expect(xml).toContain("<Code>SlowDown</Code>");
    expect(xml).toContain(`<RequestId>${id}</RequestId>`);
    expect(xml).toContain("<Resource>/b/k</Resource>");
    expect(xml).not.toContain("s1gnature-value");
    const head = s3Errors(log).respond(new MeshError("NoSuchKey", "gone"), request("HEAD"));
    expect([head.status, await head.text()]).toEqual([404, ""]);
    const timeout = s3Errors(log).respond(new RequestTimeoutError("late"), req);
    expect(timeout.status).toBe(400);
  });

  test("a 5xx is logged with its request id, the path and never the query; an unexpected error with its stack and no internals for the client", async () => {
    const { lines, log } = capture();
    const req = request("PUT");
    const r = nativeErrors(log).respond(new TypeError("x is undefined"), req);
    expect(r.status).toBe(500);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("InternalError");
    expect(body.error.message).not.toContain("undefined");
    const id = r.headers.get("x-request-id")!;
    expect(lines).toHaveLength(1);
    expect(lines[0][0]).toBe("error");
    expect(lines[0][1]).toContain(id);
    expect(lines[0][1]).toContain("PUT /b/k");
    expect(lines[0][1]).toContain("TypeError: x is undefined");
    expect(lines[0][1]).not.toContain("s1gnature-value");
    // A refusal the peer chose is a warning; shedding load is info; a 4xx is not logged.
    nativeErrors(log).respond(new QuorumError("no quorum"), request());
    s3Errors(log).respond(new SlowDownError("slow"), request());
    nativeErrors(log).respond(new MeshError("NoSuchKey", "gone"), request());
    expect(lines.slice(1).map(([level]) => level)).toEqual(["warn", "info"]);
  });
});
