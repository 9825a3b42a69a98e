// S3 presigned GET URLs (SigV4 query signing) with @smithy/signature-v4, the AWS SDK's own
// signer; the mesh's S3 API verifies them. Only an access key and its secret can sign: a
// native token cannot.
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

type SourceData = string | ArrayBuffer | ArrayBufferView;

const toBuffer = (d: SourceData) => (typeof d === "string" ? Buffer.from(d, "utf8") : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d));

/** node:crypto's SHA-256 and HMAC in the shape the signer wants. */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret ? createHmac("sha256", toBuffer(secret)) : createHash("sha256");
  }
  update(data: SourceData): void {
    this.h.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

/** S3's encoding of a key's path segments (encodeURIComponent plus the five it leaves). */
const s3Encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (ch) => "%" + ch.charCodeAt(0).toString(16).toUpperCase());

/** A presigned GET URL for `bucket/key` on the S3 endpoint `s3Url`, valid `expiresIn` seconds (at most 7 days). */
export async function presignGet(s3Url: string, creds: { accessKeyId: string; secretAccessKey: string }, bucket: string, key: string, expiresIn: number, now = new Date()): Promise<string> {
  const u = new URL(s3Url);
  const signer = new SignatureV4({ credentials: creds, region: "us-east-1", service: "s3", sha256: Sha256, uriEscapePath: false });
  const rawPath = `/${s3Encode(bucket)}/${key.split("/").map(s3Encode).join("/")}`;
  const signed = await signer.presign(
    { method: "GET", protocol: u.protocol, hostname: u.hostname, port: u.port ? Number(u.port) : undefined, path: rawPath, headers: { host: u.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, query: {} },
    { expiresIn, signingDate: now },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${s3Encode(k)}=${s3Encode(String(v))}`)
    .join("&");
  return `${u.protocol}//${u.host}${rawPath}?${query}`;
}
