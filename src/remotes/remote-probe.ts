// POST /admin/remotes/{name}/test: is a remote usable as defined? A remote that can write is
// asked to put, read back, list and delete a probe object (`.meshstore-probe-<random>`); a
// read-only one (http) to read what it can (a HEAD of its root; a list if it lists). Each step
// is timed and answered on its own, and a remote that fails is an answer (ok: false), never
// an error of the route: the point is to see where it fails. Messages are the adapters'
// OriginError texts (no secrets, no full URLs) or a generic line.
import { randomBytes } from "node:crypto";
import { MeshError } from "../errors.ts";
import type { RemoteBackend } from "./backend.ts";

/** One step of a probe. */
export interface ProbeStep {
  step: "put" | "get" | "list" | "delete" | "head";
  ok: boolean;
  ms: number;
  error?: string;
}

/** A probe's answer: ok when every step was. */
export interface ProbeResult {
  ok: boolean;
  steps: ProbeStep[];
}

/** How long one step may take. */
const STEP_TIMEOUT_MS = 10_000;
const PROBE_BODY = "meshstore probe\n";

/** Run the probe against `backend`; `signal` is the request's. */
export async function probeRemote(backend: RemoteBackend, signal?: AbortSignal, stepTimeoutMs = STEP_TIMEOUT_MS): Promise<ProbeResult> {
  const steps: ProbeStep[] = [];
  const key = `.meshstore-probe-${randomBytes(8).toString("hex")}`;
  const step = async (name: ProbeStep["step"], fn: (signal: AbortSignal) => Promise<void>): Promise<boolean> => {
    const t0 = performance.now();
    const s = signal ? AbortSignal.any([signal, AbortSignal.timeout(stepTimeoutMs)]) : AbortSignal.timeout(stepTimeoutMs);
    try {
      await fn(s);
      steps.push({ step: name, ok: true, ms: Math.round(performance.now() - t0) });
      return true;
    } catch (err) {
      signal?.throwIfAborted();
      const why = s.aborted ? `no answer within ${stepTimeoutMs} ms` : err instanceof MeshError ? err.message : "the remote failed";
      steps.push({ step: name, ok: false, ms: Math.round(performance.now() - t0), error: why.slice(0, 300) });
      return false;
    }
  };

  if (backend.capabilities.write && backend.put && backend.delete) {
    const put = backend.put;
    const del = backend.delete;
    const stored = await step("put", async (s) => void (await put(key, new TextEncoder().encode(PROBE_BODY), { meta: {}, contentType: "text/plain" }, { signal: s })));
    if (stored) {
      await step("get", async (s) => {
        const got = await backend.get(key, { signal: s });
        if (got === null || typeof got === "string") throw new MeshError("OriginError", "the probe object was not found after it was written");
        const text = await new Response(got.body).text();
        if (text !== PROBE_BODY) throw new MeshError("OriginError", "the probe object read back differs from what was written");
      });
    }
    if (backend.list) await listStep(backend, stored ? key : "", step);
    if (stored) await step("delete", (s) => del(key, { signal: s }));
  } else {
    // Read-only: the root answering at all (even 404) shows the remote reachable.
    await step("head", async (s) => void (await backend.head("", { signal: s })));
    if (backend.list) await listStep(backend, "", step);
  }
  return { ok: steps.every((s) => s.ok), steps };
}

async function listStep(backend: RemoteBackend, key: string, step: (name: ProbeStep["step"], fn: (s: AbortSignal) => Promise<void>) => Promise<boolean>) {
  const list = backend.list;
  if (!list) return;
  await step("list", async (s) => {
    const page = await list(key, null, { limit: 10, signal: s });
    if (key && !page.objects.some((o) => o.key === key)) throw new MeshError("OriginError", "the probe object is missing from the remote's listing");
  });
}
