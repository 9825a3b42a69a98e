// Decoder for S3's `aws-chunked` upload framing (x-amz-content-sha256: STREAMING-*).
//   signed:   <hex-size>;chunk-signature=<sig>\r\n<data>\r\n ... 0;chunk-signature=<sig>\r\n[trailers]\r\n
//   unsigned: <hex-size>\r\n<data>\r\n ... 0\r\n[name:value\r\n ...]\r\n
// Signed chunks are verified before any of their bytes are passed on; trailing
// checksums can only be checked at the end, so a consumer must treat an errored
// stream as a failed upload and discard what it received.
import { BadDigestError } from "../../errors.ts";
import { CHECKSUM_ALGORITHMS, hasher, type Hasher } from "../../objects/checksums.ts";
import { EMPTY_SHA256, S3AuthError, constantTimeEqualHex, hmac, sha256Hex, type VerifiedRequest } from "./sigv4.ts";

/** Largest signed chunk accepted: a signed chunk is buffered whole until its signature is checked. */
export const MAX_SIGNED_CHUNK = 16 * 1024 * 1024;
const MAX_LINE = 4096;

const malformed = (msg: string) => new S3AuthError("InvalidRequest", `malformed aws-chunked body: ${msg}`);

// ---------------------------------------------------------------------------
// Checksums (incremental), named as in x-amz-checksum-<name> (src/objects/checksums.ts)

/** The trailing checksums this decoder can verify, by x-amz-checksum-<name>. */
export const CHECKSUMS: Record<string, () => Hasher> = Object.fromEntries(CHECKSUM_ALGORITHMS.map((alg) => [alg.toLowerCase(), () => hasher(alg)]));

// ---------------------------------------------------------------------------
// Byte reader over a stream: lines and bounded reads, holding at most one read's leftovers.

class ByteReader {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private done = false;
  private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void> };
  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** Read once more from the source and append; false at end of stream. */
  private async fill(): Promise<boolean> {
    if (this.done) return false;
    let value: Uint8Array | undefined;
    do {
      const next = await this.reader.read();
      if (next.done || !next.value) {
        this.done = true;
        return false;
      }
      value = next.value;
    } while (value.length === 0); // skip empty reads so callers always make progress
    const rest = this.buf.subarray(this.pos);
    if (rest.length === 0) this.buf = value;
    else {
      const joined = new Uint8Array(rest.length + value.length);
      joined.set(rest);
      joined.set(value, rest.length);
      this.buf = joined;
    }
    this.pos = 0;
    return true;
  }

  /** The next CRLF-terminated line without its CRLF, or null at a clean end of stream. */
  async line(): Promise<string | null> {
    let scanned = 0; // bytes after pos already searched without finding CRLF
    for (;;) {
      // Resume one byte back in case the last read ended between CR and LF.
      for (let i = this.pos + Math.max(0, scanned - 1); i + 1 < this.buf.length; i++) {
        if (this.buf[i] === 13 && this.buf[i + 1] === 10) {
          const text = new TextDecoder().decode(this.buf.subarray(this.pos, i));
          this.pos = i + 2;
          return text;
        }
      }
      scanned = this.buf.length - this.pos;
      if (scanned > MAX_LINE) throw malformed("line too long");
      if (!(await this.fill())) {
        if (scanned === 0) return null;
        throw malformed("truncated line");
      }
    }
  }

  /** Up to `max` bytes (at least 1), or null at end of stream. */
  async some(max: number): Promise<Uint8Array | null> {
    if (this.pos >= this.buf.length && !(await this.fill())) return null;
    const n = Math.min(max, this.buf.length - this.pos);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Exactly `n` bytes, copied into one buffer; throws if the stream ends first. */
  async exact(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    for (let got = 0; got < n; ) {
      const part = await this.some(n - got);
      if (!part) throw malformed("truncated chunk");
      out.set(part, got);
      got += part.length;
    }
    return out;
  }

  /** Expect a CRLF next. */
  async crlf(): Promise<void> {
    const b = await this.exact(2);
    if (b[0] !== 13 || b[1] !== 10) throw malformed("chunk data not followed by CRLF");
  }

  cancel(reason?: unknown): Promise<void> {
    return this.reader.cancel(reason);
  }
}

// ---------------------------------------------------------------------------
// Decoding

type Streaming = Extract<VerifiedRequest["payload"], { kind: "streaming-signed" | "streaming-unsigned-trailer" }>;

/** Parse a chunk header line "hex-size[;ext=val...]" into its size and chunk-signature (if any). */
function parseChunkHeader(line: string): { size: number; signature?: string } {
  const [sizeHex, ...exts] = line.split(";");
  if (!/^[0-9a-fA-F]{1,8}$/.test(sizeHex)) throw malformed(`bad chunk size '${sizeHex.slice(0, 20)}'`);
  const sig = exts.find((e) => e.startsWith("chunk-signature="))?.slice("chunk-signature=".length);
  return { size: parseInt(sizeHex, 16), signature: sig };
}

/** The checksums to run: none without trailers, those announced by x-amz-trailer, else every one we know (the trailer names it only at the end). */
function checksumsFor(payload: Streaming, trailer?: string): { sums: Map<string, Hasher>; announced?: string[] } {
  const withTrailers = payload.kind !== "streaming-signed" || payload.trailer;
  const announced = withTrailers ? trailer?.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean) : undefined;
  const wanted = !withTrailers ? [] : (announced ?? Object.keys(CHECKSUMS).map((n) => `x-amz-checksum-${n}`));
  const sums = new Map<string, Hasher>();
  for (const name of wanted) {
    const make = name.startsWith("x-amz-checksum-") ? CHECKSUMS[name.slice("x-amz-checksum-".length)] : undefined;
    if (!make) throw new S3AuthError("InvalidRequest", `unsupported trailer '${name}'`);
    sums.set(name, make());
  }
  return { sums, announced };
}

async function* decode(
  r: ByteReader,
  payload: Streaming,
  { sums, announced }: ReturnType<typeof checksumsFor>,
  decodedLength?: number,
  onChecksum?: (name: string, value: string) => void,
): AsyncGenerator<Uint8Array> {
  const signed = payload.kind === "streaming-signed" ? payload : null;
  let total = 0;
  // Every decoded byte goes through here: checksums, and the length check as early as possible.
  const feed = (data: Uint8Array) => {
    total += data.length;
    if (decodedLength !== undefined && total > decodedLength) throw malformed(`more than x-amz-decoded-content-length (${decodedLength}) bytes`);
    for (const s of sums.values()) s.update(data);
  };

  let previous = signed?.seedSignature ?? "";
  for (;;) {
    const header = await r.line();
    if (header === null) throw malformed("body ended before the final zero-length chunk");
    const { size, signature } = parseChunkHeader(header);

    if (signed) {
      if (!signature || !/^[0-9a-f]{64}$/i.test(signature)) throw malformed("missing chunk-signature");
      if (size > MAX_SIGNED_CHUNK) throw malformed(`chunk of ${size} bytes exceeds ${MAX_SIGNED_CHUNK}`);
      const data = size > 0 ? await r.exact(size) : new Uint8Array(0);
      const toSign = ["AWS4-HMAC-SHA256-PAYLOAD", signed.amzDate, signed.scope, previous, EMPTY_SHA256, sha256Hex(data)].join("\n");
      const expected = Buffer.from(hmac(signed.signingKey, toSign)).toString("hex");
      if (!constantTimeEqualHex(expected, signature)) throw new S3AuthError("SignatureDoesNotMatch", "chunk signature does not match");
      previous = expected;
      if (size === 0) break;
      await r.crlf();
      feed(data);
      yield data;
    } else {
      if (size === 0) break;
      // Unsigned: nothing to verify per chunk, so pass bytes through as they arrive.
      for (let left = size; left > 0; ) {
        const part = await r.some(left);
        if (!part) throw malformed("truncated chunk");
        left -= part.length;
        feed(part);
        yield part;
      }
      await r.crlf();
    }
  }

  // Trailer section: "name:value" lines up to an empty line. A missing final CRLF is tolerated (some SDKs end right after "0\r\n").
  const trailers: [string, string][] = [];
  let trailerSignature: string | undefined;
  for (;;) {
    const line = await r.line();
    if (line === null || line === "") break;
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("bad trailer line");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature") trailerSignature = value;
    else trailers.push([name, value]);
    if (trailers.length > 16) throw malformed("too many trailers");
  }
  if (await r.some(1)) throw malformed("data after the end of the body");

  if (signed?.trailer) {
    if (!trailerSignature) throw malformed("missing x-amz-trailer-signature");
    const canonical = trailers.map(([n, v]) => `${n}:${v}\n`).join("");
    const toSign = ["AWS4-HMAC-SHA256-TRAILER", signed.amzDate, signed.scope, previous, sha256Hex(canonical)].join("\n");
    const expected = Buffer.from(hmac(signed.signingKey, toSign)).toString("hex");
    if (!constantTimeEqualHex(expected, trailerSignature)) throw new S3AuthError("SignatureDoesNotMatch", "trailer signature does not match");
  } else if (signed && (trailers.length > 0 || trailerSignature)) {
    throw malformed("trailers are not allowed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  }

  if (decodedLength !== undefined && total !== decodedLength) {
    throw malformed(`decoded ${total} bytes but x-amz-decoded-content-length is ${decodedLength}`);
  }
  for (const name of announced ?? []) {
    if (!trailers.some(([n]) => n === name)) throw malformed(`announced trailer '${name}' is missing`);
  }
  for (const [name, value] of trailers) {
    if (!name.startsWith("x-amz-checksum-")) continue;
    const sum = sums.get(name);
    if (!sum) throw new S3AuthError("InvalidRequest", `unsupported or unannounced trailer '${name}'`);
    const got = Buffer.from(await sum.digest()).toString("base64");
    if (got !== value) throw new BadDigestError(`The ${name.slice("x-amz-checksum-".length).toUpperCase()} you specified did not match the calculated checksum.`);
    onChecksum?.(name, value);
  }
}

/** Decode an `aws-chunked` body (Content-Encoding: aws-chunked / x-amz-content-sha256: STREAMING-...), verifying each chunk signature when the payload is streaming-signed, and trailing checksums (x-amz-checksum-crc32 / crc32c / crc64nvme / sha1 / sha256 trailers, x-amz-trailer-signature) when present. Streams: memory bounded by one chunk, output is the decoded payload. Throws S3AuthError("SignatureDoesNotMatch") on a bad chunk signature, S3AuthError("InvalidRequest") on malformed framing, and a BadDigestError (code "BadDigest") when a trailing checksum does not match. `trailer` is the request's x-amz-trailer header, if any: it limits which checksums are computed and must all arrive. `onChecksum` hears each trailing checksum once verified, before the stream ends (the upload keeps it). */
export function decodeAwsChunked(
  body: ReadableStream<Uint8Array>,
  payload: VerifiedRequest["payload"],
  opts: { decodedLength?: number; trailer?: string; onChecksum?: (name: string, value: string) => void } = {},
): ReadableStream<Uint8Array> {
  if (payload.kind !== "streaming-signed" && payload.kind !== "streaming-unsigned-trailer") {
    throw new S3AuthError("InvalidRequest", `aws-chunked encoding needs a STREAMING-* x-amz-content-sha256, not ${payload.kind}`);
  }
  const checksums = checksumsFor(payload, opts.trailer); // throws now on an unsupported x-amz-trailer
  const reader = new ByteReader(body);
  const chunks = decode(reader, payload, checksums, opts.decodedLength, opts.onChecksum);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (err) {
        controller.error(err);
        await reader.cancel(err).catch(() => {});
      }
    },
    async cancel(reason) {
      await chunks.return(undefined);
      await reader.cancel(reason).catch(() => {});
    },
  });
}
