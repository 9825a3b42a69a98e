// checkRemoteSpec and createBackend (src/remotes/factory.ts): every bad body is a 400
// InvalidArgument naming its fault and never echoing a secret; a good one splits into a public
// spec (credential names only) and the secrets; createBackend builds the adapter of each type.
import { expect, test } from "bun:test";
import { MeshError } from "../../src/errors.ts";
import { checkRemoteSpec, createBackend } from "../../src/remotes/factory.ts";

const SECRET = "very-secret-value-0123456789";

/** The error a body gets; fails if it passes. */
function refusal(body: unknown): MeshError {
  try {
    checkRemoteSpec(body);
  } catch (err) {
    if (!(err instanceof MeshError)) throw err;
    return err;
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

test("good bodies split into a public spec and secrets, and build the adapter of their type", () => {
  const cases: { type: string; endpoint: string; credentials?: Record<string, string>; [field: string]: unknown }[] = [
    { type: "http", endpoint: "https://origin.example/static" },
    { type: "s3", endpoint: "http://127.0.0.1:9000", bucket: "b", region: "eu-west-1", credentials: { accessKeyId: "AK", secretAccessKey: SECRET } },
    { type: "azure", endpoint: "http://127.0.0.1:10000/devstoreaccount1", container: "c", credentials: { accountName: "devstoreaccount1", accountKey: SECRET } },
    { type: "azure", endpoint: "https://acct.blob.core.windows.net", container: "c", credentials: { sasToken: SECRET } },
    { type: "gcs", endpoint: "https://storage.googleapis.com", bucket: "b", credentials: { clientEmail: "a@b.iam", privateKey: SECRET } },
    { type: "gcs", endpoint: "http://127.0.0.1:4443", bucket: "b" },
    { type: "swift", endpoint: "http://127.0.0.1:8080/auth/v1.0", container: "c", timeoutMs: 2_000, credentials: { user: "test:tester", key: SECRET } },
    { type: "swift", endpoint: "http://127.0.0.1:8080/v1/AUTH_test", container: "c", credentials: { token: SECRET } },
  ];
  for (const body of cases) {
    const { spec, secrets } = checkRemoteSpec(body);
    expect(JSON.stringify(spec)).not.toContain(SECRET);
    expect(spec.credentials).toEqual(Object.keys(body.credentials ?? {}).sort());
    expect(secrets).toEqual(body.credentials ?? {});
    const backend = createBackend(spec, secrets);
    expect(backend.type).toBe(body.type as typeof backend.type);
    expect(backend.capabilities).toEqual(body.type === "http" ? { write: false, list: false } : { write: true, list: true });
  }
});

test("bad bodies are 400 InvalidArgument naming the fault, without echoing a secret", () => {
  const s3 = { type: "s3", endpoint: "http://127.0.0.1:9000", bucket: "b", credentials: { accessKeyId: "AK", secretAccessKey: SECRET } };
  const cases: [unknown, string][] = [
    [null, "JSON object"],
    [[], "JSON object"],
    [{ ...s3, type: "ftp" }, "type is one of"],
    [{ ...s3, extra: 1 }, 'no field "extra"'],
    [{ ...s3, endpoint: 42 }, "endpoint is an http(s) URL"],
    [{ ...s3, endpoint: "not a url" }, "not a URL"],
    [{ ...s3, endpoint: "file:///etc/passwd" }, "http(s) URL"],
    [{ ...s3, endpoint: `http://u:${SECRET}@127.0.0.1:9000` }, "must not carry a user"],
    [{ ...s3, endpoint: `http://127.0.0.1:9000/?sig=${SECRET}` }, "must not carry a query"],
    [{ ...s3, bucket: undefined }, "needs bucket"],
    [{ ...s3, container: "c" }, "takes no container"],
    [{ ...s3, bucket: "../x" }, "bucket is"],
    [{ ...s3, region: "EU WEST" }, "region is"],
    [{ type: "gcs", endpoint: "http://h", bucket: "b", region: "x" }, "takes no region"],
    [{ ...s3, timeoutMs: 5 }, "timeoutMs"],
    [{ ...s3, credentials: "x" }, "credentials is an object"],
    [{ ...s3, credentials: { accessKeyId: "AK" } }, "needs credentials accessKeyId and secretAccessKey"],
    [{ ...s3, credentials: { accessKeyId: "AK", secretAccessKey: 7 } }, "credentials.secretAccessKey is a string"],
    [{ ...s3, credentials: { accessKeyId: "AK", secretAccessKey: "x".repeat(20_000) } }, "credentials.secretAccessKey is a string"],
    [{ ...s3, credentials: { accessKeyId: "AK", secretAccessKey: SECRET, password: SECRET } }, 'no credential "password"'],
    [{ type: "swift", endpoint: "http://h/auth/v1.0", container: "c", credentials: { user: "u" } }, "needs credentials user and key, or token"],
    [{ type: "azure", endpoint: "http://h", container: "c" }, "needs credentials accountName and accountKey, or sasToken"],
    [{ type: "http", endpoint: "http://h", credentials: { key: SECRET } }, 'no credential "key"'],
  ];
  for (const [body, want] of cases) {
    const err = refusal(body);
    expect(err.code).toBe("InvalidArgument");
    expect(err.status).toBe(400);
    expect(err.message).toContain(want);
    expect(err.message).not.toContain(SECRET);
  }
});
