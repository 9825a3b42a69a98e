// S3's one error function: the XML error document S3 sends (Code, Message, Resource,
// RequestId), with the request id in `x-amz-request-id` too.
import type { Logger } from "../../util/log.ts";
import { errorResponder, type ApiErrors } from "../errors.ts";
import { pathOf } from "../request-target.ts";
import { xmlText } from "./xml.ts";

/** The S3 API's errors. */
export function s3Errors(log: Logger): ApiErrors {
  return errorResponder(
    {
      api: "s3",
      requestIdHeader: "x-amz-request-id",
      contentType: "application/xml",
      body: (err, requestId, request) => xmlText({ Error: { Code: err.code, Message: err.message, Resource: request ? pathOf(request.url) : "/", RequestId: requestId } }),
    },
    log,
  );
}
