// Checksums of multipart uploads, as S3 keeps them. An upload created with an algorithm
// (and a type: COMPOSITE, or FULL_OBJECT for the CRCs) keeps each part's checksum, the
// client's when it sent one (verified on the way in) or else computed here; Complete
// checks the part checksums the client lists and keeps the object's: the checksum of the
// part checksums ("<base64>-<parts>") or, FULL_OBJECT, the part CRCs combined into the CRC
// of the whole. Every multipart object also keeps its part sizes, so ?partNumber=N and
// GetObjectAttributes can name parts.
import { BadDigestError, BadRequestError } from "../errors.ts";
import type { ObjectIntegrity } from "../metadata/types.ts";
import { compositeChecksum, fullObjectChecksum, measure, multipartTypes, type ChecksumAlgorithm, type ChecksumType } from "./checksums.ts";

/** An upload's checksum settings, chosen at CreateMultipartUpload. */
export interface UploadChecksum {
  algorithm: ChecksumAlgorithm;
  type: ChecksumType;
}

/** The checksum an UploadPart request carried: its algorithm when named up front, its verified value once the body is read. */
export interface SentChecksum {
  declared?: ChecksumAlgorithm;
  checksum(): { algorithm: ChecksumAlgorithm; value: string } | undefined;
}

/** What Complete's request says of checksums: per part (by algorithm) and, optionally, of the whole object. */
export interface CompleteChecksums {
  /** Checksum<ALG> fields of each listed part, in the order listed. */
  parts: Array<Partial<Record<ChecksumAlgorithm, string>>>;
  /** x-amz-checksum-<alg> of the whole object, if sent. */
  object?: { algorithm: ChecksumAlgorithm; value: string };
  /** x-amz-checksum-type, if sent. */
  type?: string;
}

/** The settings of a new upload; InvalidRequest for a type S3 does not allow with the algorithm. */
export function uploadChecksum(algorithm: ChecksumAlgorithm | undefined, type: string | undefined): UploadChecksum | undefined {
  if (!algorithm) {
    if (type) throw new BadRequestError("The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.", "InvalidRequest");
    return undefined;
  }
  const allowed = multipartTypes(algorithm);
  const chosen = (type ?? allowed[0]).toUpperCase();
  if (!(allowed as string[]).includes(chosen)) {
    throw new BadRequestError(`The ${chosen} checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`, "InvalidRequest");
  }
  return { algorithm, type: chosen as ChecksumType };
}

const mismatch = (want: ChecksumAlgorithm, got: ChecksumAlgorithm) =>
  new BadRequestError(`Checksum Type mismatch occurred, expected checksum Type: ${want.toLowerCase()}, actual checksum Type: ${got.toLowerCase()}`, "InvalidRequest");

/**
 * How a part's body is stored and its checksum found: the client's (same algorithm as the
 * upload, else InvalidRequest before any byte is read) or computed as the bytes pass.
 * `value()` is read once the body has been stored.
 */
export function partChecksum(
  upload: UploadChecksum | undefined,
  body: ReadableStream<Uint8Array> | null,
  sent: SentChecksum | undefined,
): { body: ReadableStream<Uint8Array> | null; value(): string | undefined } {
  if (!upload) return { body, value: () => undefined };
  const want = upload.algorithm;
  if (sent?.declared && sent.declared !== want) throw mismatch(want, sent.declared);
  if (sent?.declared) {
    return {
      body,
      value: () => {
        const c = sent.checksum();
        return c?.algorithm === want ? c.value : undefined;
      },
    };
  }
  const measured = measure(body ?? new ReadableStream({ start: (c) => c.close() }), want);
  return {
    body: measured.stream,
    value: () => {
      // A trailer not announced up front names its algorithm only at the end.
      const c = sent?.checksum();
      if (c && c.algorithm !== want) throw mismatch(want, c.algorithm);
      return measured.value();
    },
  };
}

/**
 * The object's integrity record for Complete: part sizes, and with an algorithm the part
 * checksums and the object's checksum. Checks what the client listed against what each
 * part stored (InvalidPart), that a COMPOSITE upload's request lists every part's checksum
 * (InvalidRequest), and a whole-object checksum or type sent in headers (BadDigest / InvalidRequest).
 */
export async function completeIntegrity(
  upload: UploadChecksum | undefined,
  chosen: Array<{ partNumber: number; size: number; checksum?: string }>,
  sent: CompleteChecksums | undefined,
): Promise<ObjectIntegrity> {
  const parts = chosen.map((p) => ({ size: p.size, ...(upload && p.checksum ? { checksum: p.checksum } : {}) }));
  if (!upload) {
    if (sent?.object || sent?.type) throw new BadRequestError("The upload was created without a checksum algorithm: the complete request cannot carry one.", "InvalidRequest");
    return { parts };
  }
  const alg = upload.algorithm;
  if (sent?.type && sent.type.toUpperCase() !== upload.type) {
    throw new BadRequestError(`The upload was created using the ${upload.type} checksum mode. The complete request must use the same checksum mode.`, "InvalidRequest");
  }
  chosen.forEach((p, i) => {
    const listed = sent?.parts[i] ?? {};
    const other = (Object.keys(listed) as ChecksumAlgorithm[]).find((a) => a !== alg);
    if (other) throw mismatch(alg, other);
    const value = listed[alg];
    if (value === undefined) {
      if (upload.type === "COMPOSITE") {
        throw new BadRequestError(`The upload was created using a ${alg.toLowerCase()} checksum. The complete request must include the checksum for each part. It was missing for part ${p.partNumber} in the request.`, "InvalidRequest");
      }
      return;
    }
    if (value !== p.checksum) {
      throw new BadRequestError(`One or more of the specified parts could not be found. The part may not have been uploaded, or the specified checksum may not match the part's checksum. (part ${p.partNumber})`, "InvalidPart");
    }
  });
  if (parts.some((p) => p.checksum === undefined)) {
    // A part stored before its upload kept checksums cannot be combined; keep the layout alone.
    return { parts };
  }
  const value =
    upload.type === "COMPOSITE"
      ? await compositeChecksum(alg, parts.map((p) => p.checksum!))
      : fullObjectChecksum(alg, parts.map((p) => ({ checksum: p.checksum!, size: p.size })));
  if (sent?.object) {
    const given = sent.object;
    if (given.algorithm !== alg) throw mismatch(alg, given.algorithm);
    if (given.value !== value && `${given.value}-${parts.length}` !== value) {
      throw new BadDigestError(`The ${alg} you specified did not match the calculated checksum.`);
    }
  }
  return { checksum: { algorithm: alg, type: upload.type, value }, parts };
}
