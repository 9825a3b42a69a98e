// Listing resume points as clients see them: the next key, base64url-encoded, so a cursor
// (native API) or continuation token (S3) is opaque and safe in a URL. Shared by both APIs.
import { BadRequestError } from "../errors.ts";

/** The opaque form of a resume key. */
export function encodeCursor(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

/** The resume key inside a cursor; throws InvalidArgument with `message` if it is not one we made. */
export function decodeCursor(cursor: string, message: string): string {
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  if (!cursor || encodeCursor(key) !== cursor) throw new BadRequestError(message, "InvalidArgument");
  return key;
}
