// What both APIs do around an upload: name it (the client's x-upload-token, the token a
// multipart upload was started with, or a new one), count its body, and record how it
// ended. A record that cannot be written never fails the upload (service.ts).
import type { Multipart } from "../objects/multipart.ts";
import { newUploadToken, requestedToken } from "./records.ts";
import type { UploadSession } from "./service.ts";

/** The token of a new upload: the client's (validated, 400 if malformed) or a new one. */
export function tokenFor(request: Request): string {
  return requestedToken(request.headers) ?? newUploadToken();
}

/**
 * The token of a multipart upload's part, completion or abort: the one the upload was
 * started with, whatever the request says (a client must not steer its parts into another
 * upload's record), else the client's (an upload started before records existed).
 */
export async function multipartToken(request: Request, multipart: Pick<Multipart, "requireUpload">, bucket: string, key: string, uploadId: string): Promise<string | undefined> {
  const asked = requestedToken(request.headers);
  return (await multipart.requireUpload(bucket, key, uploadId)).uploadToken ?? asked;
}

/** Records an upload's success: handed to the upload, which writes it beside its last index write. */
export type Alongside = (stored: { size: number }) => Promise<void>;

/**
 * Run an upload of `body` under `session`: the body it reads is counted, and its end is
 * recorded before this settles, beside the upload's own last write if `run` hands
 * `alongside` on (a PUT's manifest), else after it.
 */
export async function tracked<T>(session: UploadSession | undefined, body: ReadableStream<Uint8Array> | null, request: Request, run: (body: ReadableStream<Uint8Array> | null, alongside?: Alongside) => Promise<T>, sizeOf: (result: T) => number): Promise<T> {
  if (!session) return run(body);
  let recorded = false;
  const alongside: Alongside = (stored) => {
    recorded = true;
    return session.succeed(stored.size);
  };
  let result: T;
  try {
    result = await run(session.watch(body), alongside);
  } catch (err) {
    await session.fail(err, request.signal.aborted);
    throw err;
  }
  if (!recorded) await session.succeed(sizeOf(result));
  return result;
}
