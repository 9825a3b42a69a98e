// The web dashboard's files (the repository's ui/ folder), served at /ui by every peer.
// Only the files named here are served, whatever the path asks for, so no path can reach
// anything else on disk; each has its content type, and the page may load nothing from
// anywhere but this peer (its data calls may reach the other peers' /cluster/status).
import path from "node:path";
import { MeshError } from "../errors.ts";

/** The repository's ui/ folder. */
export const UI_DIR = path.resolve(import.meta.dir, "../../ui");

/** Every file the dashboard has, with its content type. */
const FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

/** What the browser may do with the dashboard's pages. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/** The dashboard file at `name` (the path after /ui/; empty for the page itself), or 404. */
export async function dashboardFile(name: string): Promise<Response> {
  const file = name === "" ? "index.html" : name;
  const type = Object.hasOwn(FILES, file) ? FILES[file] : undefined;
  if (!type) throw new MeshError("NotFound", "no such dashboard file");
  const body = Bun.file(path.join(UI_DIR, file));
  if (!(await body.exists())) throw new MeshError("NotFound", "no such dashboard file");
  return new Response(body, { headers: { "content-type": type, ...SECURITY_HEADERS } });
}
