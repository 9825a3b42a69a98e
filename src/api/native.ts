// The native HTTP API (curl-friendly JSON). Routes read the peer through a narrow
// interface so that they can be tested with `app.handle(new Request(...))`.
import { Elysia } from "elysia";
import { toErrorResponse } from "./errors.ts";

/** What the native API needs from the peer. */
export interface ClusterView {
  readonly peerId: string;
  peers(): unknown;
  status(): unknown;
}

/** Build the native API app for one peer. */
export function createNativeApi(view: ClusterView) {
  return new Elysia()
    .onError(({ code, error }) => toErrorResponse(code, error))
    .get("/health", () => ({ status: "ok", peerId: view.peerId }))
    .get("/cluster/peers", () => view.peers())
    .get("/cluster/status", () => view.status());
}
