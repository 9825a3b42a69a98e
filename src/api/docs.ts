// The native API's description: the OpenAPI document at /openapi.json, generated from the
// routes' schemas by the Elysia OpenAPI plugin, and a browsable reference at /docs. The
// reference is Swagger UI served from this peer (the plugin's default loads it from a CDN,
// which a mesh on a private network cannot reach).
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";

/** Where the document and the reference are served. */
export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";

const BUNDLE = `${DOCS_PATH}/swagger-ui-bundle.js`;
const STYLES = `${DOCS_PATH}/swagger-ui.css`;

/** A file of the swagger-ui-dist package, as a cacheable response. */
function asset(file: string, contentType: string): () => Response {
  const path = Bun.resolveSync(`swagger-ui-dist/${file}`, import.meta.dir);
  return () => new Response(Bun.file(path), { headers: { "content-type": contentType, "cache-control": "public, max-age=86400" } });
}

/** The plugin serving /openapi.json, /docs and the reference's two files. */
export function apiDocs(version: string) {
  return new Elysia({ name: "api-docs" })
    .get(BUNDLE, asset("swagger-ui-bundle.js", "text/javascript; charset=utf-8"), { detail: { hide: true } })
    .get(STYLES, asset("swagger-ui.css", "text/css; charset=utf-8"), { detail: { hide: true } })
    .use(
      openapi({
        path: DOCS_PATH,
        specPath: OPENAPI_PATH,
        provider: "swagger-ui",
        swagger: { cdn: BUNDLE, theme: STYLES, version },
        documentation: {
          info: {
            title: "meshstore native API",
            version,
            description:
              "The curl-friendly JSON API of one meshstore peer. Errors are `{error: {code, message}}`; every response carries `x-request-id`. Send `Authorization: Bearer <token>` where a route shows a lock.",
          },
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
        },
      }),
    );
}
