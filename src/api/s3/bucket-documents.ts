// S3's Put/Get/Delete of a bucket setting kept as one XML document (`?encryption`, `?tagging`
// on a bucket, `?cors`, `?lifecycle`; src/objects/bucket-settings.ts): PUT replaces the whole
// document and needs owner rights, GET answers it or the setting's own "no such" error and
// needs read, DELETE removes it (owner). Each setting brings its parser and its body.
import type { MeshError } from "../../errors.ts";
import type { BucketSettingValues } from "../../objects/bucket-settings.ts";
import { requireAccess, type S3Request } from "./context.ts";
import { requestBody, smallBody } from "./request.ts";
import { xmlResponse } from "./xml.ts";

type Handler = (r: S3Request) => Promise<Response>;

/** How one setting reads and writes as S3 XML. */
export interface BucketDocument<K extends keyof BucketSettingValues> {
  setting: K;
  /** The root element of the document. */
  root: string;
  /** Largest body PUT reads. */
  maxBytes: number;
  /** The setting a PUT's body gives (null: none, as an empty tag set removes a bucket's tags), or a 4xx. */
  parse(xml: string): BucketSettingValues[K] | null;
  /** The document GET answers. */
  body(value: BucketSettingValues[K]): Record<string, unknown>;
  /** GET's error when the bucket has no such setting. */
  missing(): MeshError;
  /** PUT's status: S3 answers 200 to some and 204 to others. */
  putStatus: 200 | 204;
}

/** The three handlers of one setting. */
export function bucketDocument<K extends keyof BucketSettingValues>(doc: BucketDocument<K>): { put: Handler; get: Handler; delete: Handler } {
  return {
    async put(r) {
      await requireAccess(r, "owner");
      const value = doc.parse(await smallBody(requestBody(r.request, r.caller), doc.maxBytes));
      await r.services.objects.settings[doc.setting].set(r.bucket, value);
      return new Response(null, { status: doc.putStatus });
    },
    async get(r) {
      await requireAccess(r, "read");
      const value = await r.services.objects.settings[doc.setting].get(r.bucket, { signal: r.request.signal });
      if (!value) throw doc.missing();
      return xmlResponse(doc.root, doc.body(value));
    },
    async delete(r) {
      await requireAccess(r, "owner");
      await r.services.objects.settings[doc.setting].set(r.bucket, null);
      return new Response(null, { status: 204 });
    },
  };
}
