// The S3-compatible API. Until its operations land, every request gets S3's own
// NotImplemented error document, so that S3 tools fail clearly instead of hanging.
import { Elysia } from "elysia";

/** An S3 error document. */
export function s3Error(status: number, code: string, message: string, resource = ""): Response {
  const esc = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${esc(message)}</Message><Resource>${esc(resource)}</Resource></Error>`;
  return new Response(xml, { status, headers: { "content-type": "application/xml" } });
}

/** Build the S3 app for one peer. */
export function createS3Api() {
  return new Elysia().all("*", ({ request }) =>
    s3Error(501, "NotImplemented", "this S3 operation is not implemented yet", new URL(request.url).pathname),
  );
}
