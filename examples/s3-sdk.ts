// One peer in this process, driven with the AWS SDK: create a bucket, upload with the
// multipart uploader, list, read back, presign a GET.  Run: bun examples/s3-sdk.ts
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { newAccessKeyId, newSecret } from "../src/auth/access-keys.ts";
import { startPeer } from "../src/index.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-s3-example-"));
const admin = { accessKeyId: newAccessKeyId(), secretAccessKey: newSecret() };
const peer = await startPeer({ dataDir: root, p2pListen: ["/ip4/127.0.0.1/tcp/0"], http: { host: "127.0.0.1", port: 0 }, s3: { host: "127.0.0.1", port: 0 }, admin });
try {
  const s3 = new S3Client({ endpoint: peer.s3Url, region: "us-east-1", forcePathStyle: true, credentials: admin });
  await s3.send(new CreateBucketCommand({ Bucket: "example" }));
  const body = new Uint8Array(12 * 1024 * 1024).map((_, i) => i % 251);
  const up = await new Upload({ client: s3, params: { Bucket: "example", Key: "data/big.bin", Body: body, ContentType: "application/x-example" }, partSize: 5 * 1024 * 1024 }).done();
  console.log(`uploaded data/big.bin in parts, ETag ${up.ETag}`);
  const list = await s3.send(new ListObjectsV2Command({ Bucket: "example", Prefix: "data/" }));
  console.log(`listed: ${list.Contents?.map((o) => `${o.Key} (${o.Size} B)`).join(", ")}`);
  const got = await s3.send(new GetObjectCommand({ Bucket: "example", Key: "data/big.bin", Range: "bytes=0-9" }));
  console.log(`first 10 bytes: ${Array.from(await got.Body!.transformToByteArray()).join(",")}`);
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "example", Key: "data/big.bin" }), { expiresIn: 60 });
  console.log(`presigned GET with plain fetch: ${(await fetch(url)).status}`);
} finally {
  await peer.stop();
  rmSync(root, { recursive: true, force: true });
}
