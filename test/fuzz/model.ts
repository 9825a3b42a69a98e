// A model of the two HTTP APIs for the fuzzer: fast-check arbitraries that build requests
// from the routes, names and parameters the peer knows, bent in the ways clients and
// attackers bend them (odd bucket names and keys, `..`, valid and invalid percent-encoding,
// S3's query parameters with odd values, Range variants, lengths that lie, bad credentials,
// Host variants, random and XML-ish bodies). About half the S3 requests are signed with a
// real key so that the deeper code paths run, not only the authentication refusal.
import fc from "fast-check";

/** What the model needs to know about the mesh under test. */
export interface FuzzWorld {
  /** Buckets the fuzzing key owns (created before), one it owns but that does not exist yet, and one it may only read. */
  ownBuckets: string[];
  newBucket: string;
  knownBucket: string;
  knownKeys: string[];
  /** A multipart upload started before, so that part and complete requests reach the upload. */
  uploadKey: string;
  uploadId: string;
  /** The fuzzing key's native token (Authorization: Bearer ...). */
  token: string;
}

/** One generated request, before it is written on the wire. */
export interface FuzzCase {
  api: "native" | "s3";
  /** S3 only: sign with the fuzzing key (SigV4). */
  signed: boolean;
  method: string;
  /** Raw path (already percent-encoded as it should appear on the wire). */
  path: string;
  rawQuery: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
  /** How Content-Length relates to the body: exact, larger (then the client half-closes), smaller, or none (chunked framing). */
  length: "exact" | "over" | "under" | "chunked" | "omit";
  /** What to put in the Host header ("ok": the real one). */
  host: "ok" | "none" | string;
  /** absolute-form request target instead of origin-form. */
  absolute: boolean;
}

const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const weighted = <T>(...xs: Array<[number, fc.Arbitrary<T>]>) => fc.oneof(...xs.map(([weight, arbitrary]) => ({ weight, arbitrary })));

/** A string of random code points (incl. astral and controls), percent-encoded as a client would. */
const unicodeText = fc.string({ unit: "binary", maxLength: 12 });
const encoded = (s: string) => encodeURIComponent(s);

/** Bucket names: the real ones, invalid ones, dot segments, bad percent-encodings. */
function bucketArb(w: FuzzWorld): fc.Arbitrary<string> {
  return weighted(
    [8, pick(...w.ownBuckets)],
    [2, pick(w.newBucket, w.knownBucket)],
    [4, pick("", "ab", "A_B", "..", ".", "%2e%2e", "%FF%FF%FF", "%zz", "%", "%E0%A4%A", "x".repeat(64), "192.168.1.1", "a..b", "-ab", "ab-", "xn--bcher-kva", "%C3%BC%C3%BC%C3%BC", "%00ab", "fz%2Da")],
    [1, unicodeText.map(encoded)],
  );
}

/** One key segment: plain, unicode, dot segments, encoded slashes and NULs, invalid escapes. */
const keySegment = weighted(
  [6, pick("k", "obj", "a.txt", "dir", "x%20y", "a+b", "~", "k1", "k2")],
  [3, pick("..", ".", "%2e%2e", "%2E", "%2F", "%00", "%FF", "%zz", "%", "%C0%AF", "%ED%A0%80", "%F0%9F%98%80", "%25", "%3F", "%23", "")],
  [1, pick(" ", "ü", "#", "a?b", "\\", "\t")],
  [2, unicodeText.map(encoded)],
  [1, pick("a".repeat(1100), "%E2%82%AC".repeat(400))],
);
const keyArb = fc.array(keySegment, { minLength: 1, maxLength: 4 }).map((xs) => xs.join("/"));

/** Query values S3 treats as counts, tokens and markers, with odd ones. */
const oddNumber = pick("0", "1", "2", "-1", "1000", "1001", "10000", "10001", "1e3", "0x10", "abc", "", "99999999999999999999", "1.5", " 5", "%FF", "NaN");
const oddText = weighted([6, pick("", "a", "k", "dir/", "/", "%FF%FE", "%zz", "%00", "%C3%BC", "x".repeat(2000))], [2, unicodeText.map(encoded)], [1, pick("ü", " ", "a b", "\"")]);

function s3QueryArb(w: FuzzWorld): fc.Arbitrary<string> {
  const param = weighted<string>(
    [3, pick("uploads", "delete", "location", "versioning", "versions", "x-id=PutObject", "list-type=2", "encoding-type=url", "fetch-owner=true")],
    [1, pick("acl", "policy", "tagging", "cors", "list-type=1", "list-type=x", "encoding-type=zz")],
    [3, fc.tuple(pick("uploadId"), weighted([3, fc.constant(w.uploadId)], [1, oddText])).map(([k, v]) => `${k}=${v}`)],
    [3, fc.tuple(pick("partNumber", "max-keys", "max-uploads", "max-parts", "part-number-marker"), oddNumber).map(([k, v]) => `${k}=${v}`)],
    [3, fc.tuple(pick("prefix", "delimiter", "marker", "start-after", "continuation-token", "key-marker", "upload-id-marker", "versionId", "response-content-type", "response-content-disposition"), oddText).map(([k, v]) => `${k}=${v}`)],
    [1, pick("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Credential=%2F%2F%2F", "X-Amz-Signature=00", "X-Amz-Date=2020", "X-Amz-Expires=-1", "&&", "=", "a=b=c", "%FF=1", "uploads&uploadId=x", "%zz")],
  );
  return fc.array(param, { maxLength: 3 }).map((xs) => xs.join("&"));
}

const rangeArb = pick("bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-2", "bytes=0-99999999999", "bytes=99999999999999999999-", "bytes=abc", "bytes=0-1,3-4", "chars=0-1", "bytes=", "bytes=--1", "bytes= 1-2", "bytes=1-2 ", "bytes=1.5-2");

function s3HeaderArb(w: FuzzWorld): fc.Arbitrary<Array<[string, string]>> {
  const header = weighted<[string, string]>(
    [3, rangeArb.map((v) => ["range", v])],
    [2, fc.tuple(pick(`/${w.knownBucket}/${w.knownKeys[0]}`, `${w.knownBucket}/${w.knownKeys[1]}`, `/${w.ownBuckets[0]}/k`, "/", "", "%FF", "/a", `/${w.knownBucket}/${w.knownKeys[0]}?versionId=1`, `/${w.knownBucket}/nope`), fc.constant("x-amz-copy-source")).map(([v, k]) => [k, v])],
    [1, pick<[string, string]>(["x-amz-copy-source-range", "bytes=0-1"], ["x-amz-copy-source-range", "bytes=9-1"], ["x-amz-metadata-directive", "REPLACE"], ["x-amz-metadata-directive", "bogus"])],
    [2, fc.tuple(weighted([5, pick("x-amz-meta-a", "x-amz-meta-", "x-amz-meta-long")], [1, pick("x-amz-meta-ü", "x-amz-meta-a b")]), oddText).map(([k, v]) => [k, v])],
    [2, pick<[string, string]>(["content-md5", "x"], ["content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="], ["x-amz-checksum-crc32", "AAAAAA=="], ["x-amz-checksum-sha256", "!"], ["x-amz-checksum-crc32c", ""], ["x-amz-sdk-checksum-algorithm", "CRC32"], ["x-amz-trailer", "x-amz-checksum-crc32"])],
    [2, pick<[string, string]>(["content-encoding", "aws-chunked"], ["x-amz-decoded-content-length", "5"], ["x-amz-decoded-content-length", "-1"], ["x-amz-decoded-content-length", "99999999999"], ["content-type", "application/xml"], ["expect", "100-continue"], ["x-amz-storage-class", "GLACIER"], ["x-amz-acl", "public-read"], ["if-match", '"x"'], ["if-none-match", "*"], ["x-amz-date", "garbage"])],
    // Browser POST uploads and CORS: a form's enclosure type, and what a browser adds to its requests.
    [2, pick<[string, string]>(["content-type", `multipart/form-data; boundary=${FORM_BOUNDARY}`], ["content-type", "multipart/form-data"], ["content-type", "multipart/form-data; boundary="], ["origin", "https://a.test"], ["access-control-request-method", "PUT"], ["access-control-request-headers", "x-a, , ,"], ["x-amz-tagging", "a=1&a=2&%ZZ"])],
  );
  return fc.array(header, { maxLength: 4 });
}

/** Authorization values an unsigned request carries instead of a signature. */
const badS3Auth = pick<string | undefined>(
  undefined,
  "",
  "AWS4-HMAC-SHA256",
  "AWS4-HMAC-SHA256 Credential=",
  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
  "AWS4-HMAC-SHA256 Credential=MKTESTADMIN000000001/20990101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0".repeat(64),
  "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/g, SignedHeaders=, Signature=",
  "AWS AKID:sig",
  "Bearer x",
  "Basic Zm9vOmJhcg==",
  "AWS4-HMAC-SHA256 Credential=%FF/%zz, SignedHeaders=host, Signature=zz",
);

/** The boundary of the fuzzed multipart/form-data bodies (browser POST uploads). */
const FORM_BOUNDARY = "fzB0und";

/** A multipart/form-data body with these fields in order (values as given, unchecked). */
function formBody(parts: Array<[string, string, string?]>, close = true): string {
  const part = ([name, value, filename]: [string, string, string?]) =>
    `--${FORM_BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? "" : `; filename="${filename}"`}\r\n\r\n${value}\r\n`;
  return parts.map(part).join("") + (close ? `--${FORM_BOUNDARY}--\r\n` : "");
}

/** Bodies: none, random bytes, XML-ish snippets (well-formed and not), JSON for the native API. */
function bodyArb(w: FuzzWorld): fc.Arbitrary<Uint8Array> {
  const text = (s: string) => new TextEncoder().encode(s);
  const xmlKey = weighted([3, pick(...w.knownKeys.map((k) => `k-${k}`), "k", "a/b", "&amp;", "&#34;", "&#0;", "&#xD800;", "&bogus;", "<", "]]>")], [1, unicodeText]);
  const deleteDoc = fc.tuple(fc.array(xmlKey, { minLength: 0, maxLength: 5 }), fc.boolean()).map(([keys, quiet]) =>
    text(`<Delete>${quiet ? "<Quiet>true</Quiet>" : ""}${keys.map((k) => `<Object><Key>${k}</Key></Object>`).join("")}</Delete>`),
  );
  const completeDoc = fc.array(fc.tuple(oddNumber, pick('"x"', "", '"d41d8cd98f00b204e9800998ecf8427e"', "<")), { maxLength: 4 }).map((parts) =>
    text(`<CompleteMultipartUpload>${parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`).join("")}</CompleteMultipartUpload>`),
  );
  const hostileXml = pick(
    `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>`,
    `<!DOCTYPE x SYSTEM "file:///etc/passwd"><Delete/>`,
    "<Delete>" + "<a>".repeat(5000) + "</a>".repeat(5000) + "</Delete>",
    "<Delete><Object><Key>k</Key></Object>",
    "<Delete><Object><Key>k</Object></Key></Delete>",
    "<?xml version='1.0' encoding='UTF-16'?><Delete/>",
    "<Delete><Object><Key><![CDATA[x]]></Key></Object></Delete>",
    "<CompleteMultipartUpload></CompleteMultipartUpload>",
    `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>k</Key><VersionId>v</VersionId></Object></Delete>`,
    "<" + "x".repeat(3000),
  ).map(text);
  const json = pick(`{}`, `{"parts":[{"partNumber":1,"etag":"d41d8cd98f00b204e9800998ecf8427e"}]}`, `{"parts":[{"partNumber":1e9,"etag":1}]}`, `{"name":"x"}`, `{"admin":true}`, `{"buckets":{"fz-a":"owner"}}`, `{"buckets":{"x":"root"}}`, `[]`, `null`, `"x"`, `{"buckets":null}`, `{`, `{"name":${"[".repeat(5000)}`).map(text);
  const policy = (doc: string) => Buffer.from(doc).toString("base64");
  const forms = pick(
    formBody([["key", "k/${filename}"], ["file", "hello", "a.txt"]]),
    formBody([["key", "k"], ["policy", policy(`{"expiration":"2099-01-01T00:00:00Z","conditions":[["content-length-range",0,1]]}`)], ["x-amz-algorithm", "AWS4-HMAC-SHA256"], ["x-amz-credential", "MKTESTADMIN000000001/20990101/us-east-1/s3/aws4_request"], ["x-amz-date", "20990101T000000Z"], ["x-amz-signature", "0".repeat(64)], ["file", "xx", "f"]]),
    formBody([["key", "k"], ["policy", "%%%"], ["x-amz-signature", "zz"], ["file", "x", "f"]]),
    formBody([["key", "k"], ["policy", policy(`{"expiration":1,"conditions":{}}`)], ["file", "x"]]),
    formBody([["key", "k"], ["tagging", "<Tagging><TagSet><Tag><Key>aws:x</Key></Tag>"], ["file", "x", ""]]),
    formBody([["key", "k"], ["x".repeat(30_000), "v"], ["file", "x", "f"]]),
    formBody([["key", "k"], ["file", "no end", "f"]], false),
    formBody([["key", "k"]]),
    `--${FORM_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\ncut off mid-file`,
    `--${FORM_BOUNDARY}\r\n\r\n\r\n--${FORM_BOUNDARY}--`,
  ).map(text);
  return weighted<Uint8Array>(
    [6, fc.constant(new Uint8Array(0))],
    [2, forms],
    [4, fc.uint8Array({ maxLength: 3000 })],
    [3, deleteDoc],
    [2, completeDoc],
    [2, hostileXml],
    [2, json],
    [1, fc.integer({ min: 0, max: 300_000 }).map((n) => new Uint8Array(n).fill(60))],
  );
}

const hostArb: fc.Arbitrary<FuzzCase["host"]> = weighted([12, fc.constant("ok")], [1, pick("none", "", "a:b", "%00", "x:99999", "[::1]:1", "ü", "a b", "x:", "x:0", "[zz]")]);
const lengthArb: fc.Arbitrary<FuzzCase["length"]> = weighted([10, fc.constant("exact")], [1, pick("over", "under", "chunked", "omit")]);
const oddMethod = pick("OPTIONS", "PATCH", "TRACE", "CONNECT", "FOO", "get", "M-SEARCH", "PROPFIND");

/** A query with each parameter once (a signer cannot sign a repeated one, so it would only test the signature check). */
function firstOfEach(rawQuery: string): string {
  const seen = new Set<string>();
  return rawQuery
    .split("&")
    .filter((p) => {
      const k = p.split("=")[0];
      if (!p || seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .join("&");
}

function s3CaseArb(w: FuzzWorld): fc.Arbitrary<FuzzCase> {
  const s3Path = weighted(
    [1, fc.constant("/")],
    [3, bucketArb(w).map((b) => `/${b}`)],
    [6, fc.tuple(bucketArb(w), weighted([4, keyArb], [1, fc.constant(w.uploadKey)], [1, pick(...w.knownKeys)])).map(([b, k]) => `/${b}/${k}`)],
    [1, pick("//", "/./", "/../", "/%2F", "/fz-a//k", "/fz-a/k?", "/fz-a/k#frag")],
  );
  return fc.record({
    api: fc.constant("s3" as const),
    signed: fc.boolean(),
    method: weighted([10, pick("GET", "PUT", "POST", "DELETE", "HEAD")], [1, oddMethod]),
    path: s3Path,
    rawQuery: s3QueryArb(w),
    headers: fc.tuple(s3HeaderArb(w), badS3Auth).map(([hs, auth]) => (auth === undefined ? hs : [...hs, ["authorization", auth] as [string, string]])),
    body: bodyArb(w),
    length: lengthArb,
    host: hostArb,
    absolute: weighted([15, fc.constant(false)], [1, fc.constant(true)]),
  }).map((c) => (c.signed ? { ...c, rawQuery: firstOfEach(c.rawQuery), headers: c.headers.filter(([k]) => k !== "authorization") } : c));
}

function nativeCaseArb(w: FuzzWorld): fc.Arbitrary<FuzzCase> {
  const b = bucketArb(w);
  const nativePath = weighted<string>(
    [2, pick("/health", "/cluster/peers", "/cluster/status", "/cluster/drain", "/buckets", "/admin/keys", "/", "/nope", "/health/", "//health", "/buckets/")],
    [1, fc.tuple(pick("/admin/keys/", "/admin/members/"), oddText).map(([p, v]) => p + v)],
    [3, b.map((x) => `/buckets/${x}`)],
    [2, b.map((x) => `/buckets/${x}/objects`)],
    [7, fc.tuple(b, weighted([4, keyArb], [1, pick(...w.knownKeys)])).map(([x, k]) => `/buckets/${x}/objects/${k}`)],
    [1, fc.tuple(b, keyArb).map(([x, k]) => `/cluster/locate/${x}/${k}`)],
    [2, fc.tuple(b, pick("", `/${w.uploadId}`, `/${w.uploadId}/complete`, `/${w.uploadId}/parts/1`, `/${w.uploadId}/parts/0`, `/${w.uploadId}/parts/99999`, "/x/parts/1", "/%FF")).map(([x, rest]) => `/buckets/${x}/multipart${rest}`)],
  );
  const queryValue = weighted<string>([1, oddNumber], [1, oddText], [1, fc.constant(w.uploadKey)]);
  const query = fc.array(fc.tuple(pick("limit", "cursor", "prefix", "delimiter", "key", "x"), queryValue).map(([k, v]) => `${k}=${v}`), { maxLength: 3 }).map((xs) => xs.join("&"));
  const header = weighted<[string, string]>(
    [3, rangeArb.map((v) => ["range", v])],
    [2, fc.tuple(pick("x-meta-a", "x-meta-", "x-meta-ü", "content-type", "content-disposition", "cache-control"), oddText).map(([k, v]) => [k, v])],
    [1, pick<[string, string]>(["expect", "100-continue"], ["transfer-encoding", "gzip"], ["content-encoding", "gzip"], ["if-none-match", "*"])],
  );
  const auth = weighted<string | undefined>([8, fc.constant(`Bearer ${w.token}`)], [3, pick(undefined, "", "Bearer", "Bearer x", "Bearer " + w.token.slice(0, -1) + "0", "Bearer " + "a".repeat(5000), "Basic Zm9vOmJhcg==", "bearer " + w.token, `Bearer ${w.token} x`)]);
  return fc.record({
    api: fc.constant("native" as const),
    signed: fc.constant(false),
    method: weighted([10, pick("GET", "PUT", "POST", "DELETE", "HEAD")], [1, oddMethod]),
    path: nativePath,
    rawQuery: query,
    headers: fc.tuple(fc.array(header, { maxLength: 3 }), auth).map(([hs, a]) => (a === undefined ? hs : [...hs, ["authorization", a] as [string, string]])),
    body: bodyArb(w),
    length: lengthArb,
    host: hostArb,
    absolute: weighted([15, fc.constant(false)], [1, fc.constant(true)]),
    uploadKeyFirst: fc.boolean(),
  }).map(({ uploadKeyFirst, ...c }) => (uploadKeyFirst && c.path.includes("/multipart") ? { ...c, rawQuery: `key=${w.uploadKey}&${c.rawQuery}` } : c));
}

/** A request to either API. */
export function caseArb(w: FuzzWorld): fc.Arbitrary<FuzzCase> {
  return fc.oneof(nativeCaseArb(w), s3CaseArb(w));
}
