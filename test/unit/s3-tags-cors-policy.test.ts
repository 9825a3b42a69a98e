// The pure parts of S3 tagging, CORS and browser POST uploads: tag parsing in both forms
// (x-amz-tagging and the Tagging document) with S3's limits and error codes, CORS
// configuration checks and rule matching, and POST policy decoding, signature and
// condition checks (eq, starts-with, content-length-range, the object form, extra fields,
// expiration) with the answers S3 gives.
import { describe, expect, test } from "bun:test";
import { MeshError } from "../../src/errors.ts";
import { corsHeaders, matchRule, parseCorsXml, requestedHeaders, wildcardMatch } from "../../src/api/s3/cors-rules.ts";
import { checkPolicy, lengthRange, parsePolicy, policySignatureValid, postCredential } from "../../src/api/s3/post-policy.ts";
import { hmac, signingKey } from "../../src/api/s3/sigv4.ts";
import { parseTaggingHeader, parseTaggingXml, taggingCountHeader, taggingHeader } from "../../src/api/s3/tags.ts";

/** "CODE: message" of what `f` throws, or "ok". */
function outcome(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (err) {
    if (err instanceof MeshError) return `${err.code}: ${err.message}`;
    throw err;
  }
}
const codeOf = (f: () => unknown) => outcome(f).split(":")[0];

const tagging = (pairs: Array<[string, string]>) => `<Tagging><TagSet>${pairs.map(([k, v]) => `<Tag><Key>${k}</Key><Value>${v}</Value></Tag>`).join("")}</TagSet></Tagging>`;

describe("tags", () => {
  test("x-amz-tagging: URL query form, + and %20 as spaces, empty values, UTF-8", () => {
    expect(parseTaggingHeader("a=1&b=two+words&c=&d&%C3%BC=%C3%A9%20x")).toEqual({ a: "1", b: "two words", c: "", d: "", ü: "é x" });
    expect(parseTaggingHeader("")).toEqual({});
    expect(codeOf(() => parseTaggingHeader("a=%ZZ"))).toBe("InvalidTag");
    expect(codeOf(() => parseTaggingHeader("a=1&a=2"))).toBe("InvalidTag");
    expect(parseTaggingHeader(taggingHeader({ "k k": "v/=+@" }))).toEqual({ "k k": "v/=+@" });
    // AWS's tag characters: letters, digits, white space and + - = . _ : / @ (so no "&" or "€").
    expect(codeOf(() => parseTaggingHeader("k=a%26b"))).toBe("InvalidTag");
    expect(codeOf(() => parseTaggingHeader("k=%E2%82%AC"))).toBe("InvalidTag");
  });

  test("the Tagging document: entities decoded, an empty TagSet, malformed documents", () => {
    expect(parseTaggingXml(tagging([["a&#x2F;b", "&#64;x"]]), "object")).toEqual({ "a/b": "@x" });
    expect(parseTaggingXml("<Tagging><TagSet/></Tagging>", "object")).toEqual({});
    expect(parseTaggingXml(tagging([["k", ""]]), "object")).toEqual({ k: "" });
    expect(codeOf(() => parseTaggingXml("<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>", "object"))).toBe("MalformedXML");
    expect(codeOf(() => parseTaggingXml("<Tagging><TagSet>", "object"))).toBe("MalformedXML");
    expect(codeOf(() => parseTaggingXml('<!DOCTYPE x [<!ENTITY a "b">]><Tagging/>', "object"))).toBe("MalformedXML");
  });

  test("S3's limits and error codes: counts per object and bucket, lengths in characters, duplicates, aws:, characters", () => {
    const n = (count: number) => Array.from({ length: count }, (_, i): [string, string] => [`k${i}`, "v"]);
    expect(outcome(() => parseTaggingXml(tagging(n(10)), "object"))).toBe("ok");
    expect(outcome(() => parseTaggingXml(tagging(n(11)), "object"))).toBe("BadRequest: Object tags cannot be greater than 10");
    expect(outcome(() => parseTaggingXml(tagging(n(50)), "bucket"))).toBe("ok");
    expect(codeOf(() => parseTaggingXml(tagging(n(51)), "bucket"))).toBe("InvalidTag");
    // Characters, not bytes or UTF-16 units: 128 astral letters are a valid key, 129 are not.
    expect(outcome(() => parseTaggingHeader(`${"𝒜".repeat(128)}=${"é".repeat(256)}`))).toBe("ok");
    expect(outcome(() => parseTaggingHeader(`${"𝒜".repeat(129)}=v`))).toBe("InvalidTag: The TagKey you have provided is too long, max 128");
    expect(outcome(() => parseTaggingHeader(`k=${"é".repeat(257)}`))).toBe("InvalidTag: The TagValue you have provided is too long, max 256");
    expect(outcome(() => parseTaggingHeader("AWS:name=v"))).toBe("InvalidTag: System tags cannot be added/updated by requester");
    expect(outcome(() => parseTaggingHeader("=v"))).toBe("InvalidTag: The TagKey you have provided is invalid");
    expect(codeOf(() => parseTaggingHeader("k=%3Cscript%3E"))).toBe("InvalidTag");
    expect(codeOf(() => parseTaggingHeader("k%00=v"))).toBe("InvalidTag");
    expect(outcome(() => parseTaggingHeader("k=a+-=._:/@ 9"))).toBe("ok");
  });

  test("x-amz-tagging-count only when there are tags", () => {
    expect(taggingCountHeader({ a: "1", b: "2" })).toEqual({ "x-amz-tagging-count": "2" });
    expect(taggingCountHeader({})).toEqual({});
    expect(taggingCountHeader(undefined)).toEqual({});
  });
});

describe("CORS rules", () => {
  const doc = (rules: string) => `<CORSConfiguration>${rules}</CORSConfiguration>`;
  const rule = (body: string) => `<CORSRule>${body}</CORSRule>`;

  test("a configuration parses to rules; S3's refusals", () => {
    const rules = parseCorsXml(
      doc(
        rule("<ID>one</ID><AllowedOrigin>https://a.test</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>30</MaxAgeSeconds>") +
          rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>"),
      ),
    );
    expect(rules).toEqual([
      { id: "one", origins: ["https://a.test"], methods: ["GET", "PUT"], headers: ["*"], expose: ["ETag"], maxAgeSeconds: 30 },
      { origins: ["*"], methods: ["HEAD"], headers: [], expose: [] },
    ]);
    expect(outcome(() => parseCorsXml(doc(rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"))))).toBe("InvalidRequest: Found unsupported HTTP method in CORS config. Unsupported method is PATCH");
    expect(codeOf(() => parseCorsXml(doc(rule("<AllowedOrigin>http://*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"))))).toBe("InvalidRequest");
    expect(codeOf(() => parseCorsXml(doc(rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>**</AllowedHeader>"))))).toBe("InvalidRequest");
    expect(codeOf(() => parseCorsXml(doc(rule("<AllowedMethod>GET</AllowedMethod>"))))).toBe("MalformedXML");
    expect(codeOf(() => parseCorsXml(doc("")))).toBe("MalformedXML");
    expect(codeOf(() => parseCorsXml(doc(rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds>"))))).toBe("MalformedXML");
    const many = rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>");
    expect(parseCorsXml(doc(many.repeat(100))).length).toBe(100);
    expect(codeOf(() => parseCorsXml(doc(many.repeat(101))))).toBe("MalformedXML");
  });

  test("matching: one wildcard anywhere, the first rule that allows origin, method and every requested header", () => {
    expect([wildcardMatch("https://*.a.test", "https://x.a.test"), wildcardMatch("https://*.a.test", "https://a.test"), wildcardMatch("*", ""), wildcardMatch("x-amz-*", "x-amz-date")]).toEqual([true, false, true, true]);
    const rules = parseCorsXml(
      doc(
        rule("<AllowedOrigin>https://*.a.test</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedHeader>Content-Type</AllowedHeader><AllowedHeader>x-amz-*</AllowedHeader>") +
          rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>5</MaxAgeSeconds>"),
      ),
    );
    const put = { origin: "https://x.a.test", method: "PUT", headers: requestedHeaders("Content-Type, X-Amz-Date") };
    expect(matchRule(rules, put)).toBe(rules[0]);
    expect(matchRule(rules, { ...put, headers: ["x-other"] })).toBeUndefined();
    expect(matchRule(rules, { origin: "https://evil.test", method: "PUT" })).toBeUndefined();
    expect(matchRule(rules, { origin: "https://evil.test", method: "GET" })).toBe(rules[1]);
    expect(corsHeaders(rules[0], put)).toMatchObject({ "access-control-allow-origin": "https://x.a.test", "access-control-allow-credentials": "true", "access-control-allow-headers": "content-type, x-amz-date" });
    expect(corsHeaders(rules[1], { origin: "https://evil.test", method: "GET" })).toEqual({
      "access-control-allow-origin": "*",
      "access-control-allow-methods": "GET",
      "access-control-expose-headers": "ETag",
      "access-control-max-age": "5",
      vary: "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    });
    expect(requestedHeaders(null)).toEqual([]);
  });
});

describe("POST policy", () => {
  const NOW = Date.parse("2026-05-01T12:00:00Z");
  const encode = (doc: unknown) => Buffer.from(JSON.stringify(doc)).toString("base64");
  const policy = (conditions: unknown[], expiration = "2026-05-01T13:00:00Z") => parsePolicy(encode({ expiration, conditions }));
  const fields = (o: Record<string, string>) => new Map(Object.entries(o));

  test("decoding: the object form, eq, starts-with and content-length-range; malformed policies are InvalidPolicyDocument", () => {
    expect(policy([{ bucket: "b" }, ["eq", "$Key", "k"], ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, "10"]]).conditions).toEqual([
      { kind: "eq", field: "bucket", value: "b" },
      { kind: "eq", field: "key", value: "k" },
      { kind: "starts-with", field: "content-type", value: "image/" },
      { kind: "content-length-range", min: 1, max: 10 },
    ]);
    for (const bad of ["%%%", encode([]), encode({ conditions: [] }), encode({ expiration: "soon", conditions: [] }), encode({ expiration: "2026-05-01T13:00:00Z" })]) {
      expect(codeOf(() => parsePolicy(bad))).toBe("InvalidPolicyDocument");
    }
    for (const c of [["eq", "key", "k"], ["like", "$key", "k"], ["content-length-range", 5, 1], ["content-length-range", -1, 1], ["eq", "$key"], { key: 1 }, "key"]) {
      expect(`${JSON.stringify(c)} ${codeOf(() => policy([c]))}`).toBe(`${JSON.stringify(c)} InvalidPolicyDocument`);
    }
  });

  test("conditions hold or are refused as S3 words it; field names compare without case; every field must be named", () => {
    const p = policy([{ bucket: "b" }, ["starts-with", "$key", "up/"], ["eq", "$Content-Type", "text/plain"], ["starts-with", "$x-amz-meta-who", ""], ["content-length-range", 0, 100]]);
    const ok = fields({ bucket: "b", key: "up/a.txt", "content-type": "text/plain", "x-amz-meta-who": "me", policy: "p", "x-amz-signature": "s", "x-ignore-me": "1" });
    expect(outcome(() => checkPolicy(p, ok, NOW))).toBe("ok");
    expect(outcome(() => checkPolicy(p, new Map([...ok, ["key", "down/a.txt"]]), NOW))).toBe('AccessDenied: Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "up/"]');
    expect(outcome(() => checkPolicy(p, new Map([...ok, ["content-type", "text/html"]]), NOW))).toBe('AccessDenied: Invalid according to Policy: Policy Condition failed: ["eq", "$content-type", "text/plain"]');
    expect(outcome(() => checkPolicy(p, new Map([...ok, ["bucket", "other"]]), NOW))).toBe('AccessDenied: Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "b"]');
    expect(outcome(() => checkPolicy(p, new Map([...ok, ["x-amz-meta-extra", "1"]]), NOW))).toBe("AccessDenied: Invalid according to Policy: Extra input fields: x-amz-meta-extra");
    // A condition on a field the form lacks compares with "".
    expect(codeOf(() => checkPolicy(policy([["eq", "$acl", "private"]]), fields({}), NOW))).toBe("AccessDenied");
    expect(outcome(() => checkPolicy(p, ok, Date.parse("2026-05-01T13:00:00Z")))).toBe("AccessDenied: Invalid according to Policy: Policy expired.");
    expect(lengthRange(p)).toEqual({ min: 0, max: 100 });
    expect(lengthRange(policy([["content-length-range", 0, 100], ["content-length-range", 10, 1000]]))).toEqual({ min: 10, max: 100 });
    expect(lengthRange(policy([]))).toBeUndefined();
  });

  test("the credential fields and the signature: HMAC of the base64 policy under the credential's signing key", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const form = fields({ "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": "AKIDEXAMPLE0000000/20260501/eu-west-1/s3/aws4_request", "x-amz-date": "20260501T120000Z" });
    const cred = postCredential(form);
    expect(cred).toEqual({ accessKeyId: "AKIDEXAMPLE0000000", date: "20260501", region: "eu-west-1" });
    const text = encode({ expiration: "2026-05-01T13:00:00Z", conditions: [] });
    const good = Buffer.from(hmac(signingKey(secret, "20260501", "eu-west-1", "s3"), text)).toString("hex");
    expect(policySignatureValid(text, good, secret, cred)).toBe(true);
    expect(policySignatureValid(text, good, secret + "x", cred)).toBe(false);
    expect(policySignatureValid(text + "=", good, secret, cred)).toBe(false);
    expect(policySignatureValid(text, good, secret, { ...cred, region: "us-east-1" })).toBe(false);
    expect(codeOf(() => postCredential(new Map([...form, ["x-amz-algorithm", "AWS4-ECDSA-P256-SHA256"]])))).toBe("InvalidArgument");
    expect(codeOf(() => postCredential(new Map([...form, ["x-amz-date", "20260502T120000Z"]])))).toBe("InvalidArgument");
    expect(codeOf(() => postCredential(new Map([...form, ["x-amz-credential", "AKID/20260501/eu-west-1/ec2/aws4_request"]])))).toBe("InvalidArgument");
    expect(codeOf(() => postCredential(fields({ "x-amz-algorithm": "AWS4-HMAC-SHA256" })))).toBe("InvalidArgument");
  });
});
