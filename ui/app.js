// The meshstore dashboard: one module, no build step, nothing loaded from elsewhere. It
// signs in with a native bearer token (kept in sessionStorage), polls this peer every
// 2 s (/cluster/status, /cluster/peers, /cluster/events, /buckets) and each member's own
// /cluster/status for its capacity, and drives the native API for buckets, objects and
// access keys. Every value from the server is set as text, never as HTML.

const POLL_MS = 2000;
/** Samples kept for the replication sparklines (3 minutes at 2 s). */
const HISTORY = 90;
/** How often bucket object counts are refreshed (a listing each: they may lag). */
const COUNT_EVERY_MS = 10_000;
const TOKEN_KEY = "meshstore.token";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) ?? "";
let isAdmin = false;
let timer;
let lastSeq = 0;
const history = [];
const bucketCounts = new Map();
let countsAt = 0;
/** What the object browser shows: a bucket and a prefix. */
const browse = { bucket: "", prefix: "" };

// ---------- helpers ----------

/** An element with attributes (`on*` ones as listeners) and children (strings as text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "className") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function bytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 2) return "now";
  if (s < 120) return `${s.toFixed(0)} s ago`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min ago`;
  return new Date(ms).toLocaleString();
}

function duration(seconds) {
  if (typeof seconds !== "number") return "—";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const short = (id) => (id ? id.slice(-8) : "");
/** A key or prefix as a path piece: every byte escaped but the slashes. */
const keyPath = (key) => encodeURIComponent(key).replace(/%2F/g, "/");

function showError(err) {
  $("error").textContent = err ? `${err.message ?? err}` : "";
}

/** A call to this peer's native API with the token; the JSON answer, or null for 204. */
async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } });
  if (!res.ok) {
    let message = res.statusText;
    try {
      message = (await res.json()).error.message;
    } catch {}
    const err = new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${message}`);
    err.status = res.status;
    throw err;
  }
  if (res.status === 204) return null;
  return res.json();
}

// ---------- sign in ----------

async function signIn(candidate) {
  token = candidate;
  try {
    await api("/buckets");
  } catch (err) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin-error").textContent = err.status === 401 ? "That token is not valid." : `${err.message}`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await api("/admin/keys");
    isAdmin = true;
  } catch {
    isAdmin = false;
  }
  $("signin-error").textContent = "";
  $("signin").hidden = true;
  $("main").hidden = false;
  $("sign-out").hidden = false;
  $("keys-section").hidden = !isAdmin;
  $("events-section").hidden = !isAdmin;
  lastSeq = 0;
  $("events").replaceChildren();
  await poll();
  if (isAdmin) await refreshKeys();
}

function signOut() {
  clearTimeout(timer);
  token = "";
  isAdmin = false;
  sessionStorage.removeItem(TOKEN_KEY);
  $("main").hidden = true;
  $("sign-out").hidden = true;
  $("signin").hidden = false;
}

// ---------- polling ----------

async function poll() {
  clearTimeout(timer);
  try {
    await refresh();
  } catch (err) {
    showError(err);
  }
  if (token && !$("main").hidden) timer = setTimeout(() => void poll(), POLL_MS);
}

async function refresh() {
  const [status, peers, events, buckets] = await Promise.allSettled([
    fetch("/cluster/status", { signal: AbortSignal.timeout(POLL_MS) }).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`status ${r.status}`)))),
    api("/cluster/peers"),
    isAdmin ? api(`/cluster/events?after=${lastSeq}`) : Promise.resolve(null),
    api("/buckets"),
  ]);
  if (buckets.status === "rejected" && buckets.reason.status === 401) return signOut();
  const st = status.status === "fulfilled" ? status.value : null;
  const view = peers.status === "fulfilled" ? peers.value : null;
  renderBanner(st, view);
  if (view) await renderPeers(view, st);
  if (st) renderReplication(st);
  if (events.status === "fulfilled" && events.value) renderEvents(events.value);
  if (buckets.status === "fulfilled") await renderBuckets(buckets.value.buckets);
  const failed = [status, peers, events, buckets].find((r) => r.status === "rejected");
  showError(failed?.reason);
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function renderBanner(st, view) {
  const banner = $("banner");
  let health;
  let why;
  if (!st || !view) {
    health = "unavailable";
    why = "this peer does not answer";
  } else {
    const members = [view.self, ...view.peers];
    const down = members.filter((m) => m.state === "suspect" || m.state === "dead");
    const alive = members.filter((m) => m.state === "alive").length;
    const under = (st.underReplicated?.chunks ?? 0) + (st.underReplicated?.shards ?? 0);
    if (st.quorum && alive < st.quorum.w) {
      health = "unavailable";
      why = `${alive} member(s) alive: writes need ${st.quorum.w}`;
    } else if (down.length || under > 0) {
      health = "degraded";
      why = [down.length ? `${down.map((m) => `${short(m.id)} ${m.state}`).join(", ")}` : "", under ? `${under} under-replicated` : ""].filter(Boolean).join("; ");
    } else {
      health = "healthy";
      why = `${members.length} member(s) alive, everything replicated`;
    }
  }
  banner.dataset.health = health;
  banner.textContent = `${health.toUpperCase()}: ${why}`;
  $("self-id").textContent = view ? `peer ${short(view.self.id)}` : "";
}

/** Each member's own /cluster/status (read across origins), for its capacity. */
async function memberStatus(m, selfStatus, selfId) {
  if (m.id === selfId) return selfStatus;
  if (m.state !== "alive" || !m.http) return null;
  try {
    const res = await fetch(`${m.http}/cluster/status`, { signal: AbortSignal.timeout(1500) });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

async function renderPeers(view, st) {
  const members = [view.self, ...view.peers];
  const statuses = await Promise.all(members.map((m) => memberStatus(m, st, view.self.id)));
  let used = 0;
  const rows = members.map((m, i) => {
    const s = statuses[i];
    if (s) used += s.storage?.bytes ?? 0;
    const self = m.id === view.self.id;
    const drain = isAdmin && self ? el("button", { className: "link", onclick: () => drainSelf() }, st?.draining ? "draining…" : "Drain") : "";
    return el(
      "tr",
      { "data-peer": m.id, "data-state": m.state },
      el("td", { className: "mono", title: m.id }, short(m.id), self ? " (this peer)" : ""),
      el("td", { className: "addrs" }, (m.addrs ?? []).join(" ") || "—"),
      el("td", { className: `state state-${m.state}` }, m.state),
      el("td", {}, self ? "now" : ago(m.lastSeenMs)),
      el("td", {}, m.http ? el("a", { href: `${m.http}/ui/`, target: "_blank", rel: "noopener" }, m.http) : "—"),
      el("td", { className: "num" }, s ? duration(s.uptimeSeconds) : "—"),
      el("td", { className: "num" }, s ? s.storage?.chunks ?? "—" : "—"),
      el("td", { className: "num" }, s ? bytes(s.storage?.bytes) : "—"),
      el("td", {}, drain),
    );
  });
  $("peers").tBodies[0].replaceChildren(...rows);
  const reached = statuses.filter(Boolean).length;
  $("capacity").textContent = `Stored on the ${reached} member(s) that answered: ${bytes(used)} in chunks (rf ${st?.rf ?? "?"}; quorum ${st?.quorum ? `r ${st.quorum.r} / w ${st.quorum.w} of ${st.quorum.members}` : "?"}).`;
}

async function drainSelf() {
  if (!confirm("Hand everything on this peer to the others? It keeps serving until you stop it.")) return;
  try {
    const r = await api("/cluster/drain", { method: "POST" });
    showError(null);
    $("capacity").textContent = r.safeToStop ? "This peer holds nothing any more: safe to stop." : "Draining: the data is moving to the other peers.";
  } catch (err) {
    showError(err);
  }
}

function renderReplication(st) {
  history.push({
    "under-replicated chunks": st.underReplicated?.chunks ?? 0,
    "under-replicated shards": st.underReplicated?.shards ?? 0,
    "repair queue": st.repair?.queue ?? 0,
    "bytes repaired": st.repair?.bytesRepaired ?? 0,
    "scrub: corrupt found": st.scrub?.corruptFound ?? 0,
    "bad replicas": st.badReplicas?.length ?? 0,
  });
  while (history.length > HISTORY) history.shift();
  const series = Object.keys(history[0]);
  const W = 180;
  const H = 36;
  $("replication").replaceChildren(
    ...series.map((name) => {
      const values = history.map((h) => h[name]);
      const max = Math.max(1, ...values);
      // The newest sample at the right edge, older ones to its left.
      const x = (i) => W - ((values.length - 1 - i) / (HISTORY - 1)) * W;
      const points = values.map((v, i) => `${x(i).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`).join(" ");
      const chart = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": name });
      const line = svg("polyline", { points });
      chart.append(line);
      const now = values.at(-1);
      return el("div", { className: "spark", "data-series": name }, el("span", {}, `${name}: `, el("b", {}, name === "bytes repaired" ? bytes(now) : now)), chart);
    }),
  );
}

function renderEvents(feed) {
  lastSeq = feed.lastSeq;
  const list = $("events");
  for (const e of feed.events) {
    list.prepend(el("li", { "data-type": e.type, "data-peer": e.peer }, `${new Date(e.timeMs).toLocaleTimeString()} `, el("b", {}, e.type), ` ${e.detail}`));
  }
  while (list.children.length > 200) list.lastElementChild.remove();
}

// ---------- buckets and objects ----------

async function countObjects(bucket) {
  let count = 0;
  let size = 0;
  let cursor = "";
  // At most 10 pages: past that the count is shown as a lower bound.
  for (let page = 0; page < 10; page++) {
    const r = await api(`/buckets/${bucket}/objects?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    count += r.objects.length;
    size += r.objects.reduce((n, o) => n + o.size, 0);
    if (!r.nextCursor) return { count: `${count}`, size };
    cursor = r.nextCursor;
  }
  return { count: `${count}+`, size };
}

async function renderBuckets(buckets) {
  if (Date.now() - countsAt > COUNT_EVERY_MS || buckets.some((b) => !bucketCounts.has(b.name))) {
    countsAt = Date.now();
    await Promise.all(buckets.map(async (b) => bucketCounts.set(b.name, await countObjects(b.name).catch(() => ({ count: "?", size: NaN })))));
  }
  const rows = buckets.map((b) => {
    const c = bucketCounts.get(b.name);
    return el(
      "tr",
      { "data-bucket": b.name },
      el("td", {}, el("button", { className: "link", onclick: () => openBucket(b.name, "") }, b.name)),
      el("td", { className: "num" }, c?.count ?? "…"),
      el("td", { className: "num" }, bytes(c?.size)),
      el("td", {}, new Date(b.createdMs).toLocaleString()),
    );
  });
  $("buckets").tBodies[0].replaceChildren(...rows);
}

async function openBucket(bucket, prefix) {
  browse.bucket = bucket;
  browse.prefix = prefix;
  $("browser").hidden = false;
  $("browse-bucket").textContent = bucket;
  $("locate").hidden = true;
  const pieces = prefix.split("/").filter(Boolean);
  $("crumbs").replaceChildren(
    el("button", { className: "link", onclick: () => openBucket(bucket, "") }, `${bucket}/`),
    ...pieces.map((p, i) => el("button", { className: "link", onclick: () => openBucket(bucket, `${pieces.slice(0, i + 1).join("/")}/`) }, `${p}/`)),
  );
  await listObjects();
}

async function listObjects() {
  const { bucket, prefix } = browse;
  try {
    const r = await api(`/buckets/${bucket}/objects?delimiter=/&limit=1000&prefix=${encodeURIComponent(prefix)}`);
    const folders = r.prefixes.map((p) =>
      el("tr", { "data-prefix": p }, el("td", {}, el("button", { className: "link", onclick: () => openBucket(bucket, p) }, `📁 ${p.slice(prefix.length)}`)), el("td", {}), el("td", {}), el("td", {})),
    );
    const files = r.objects.map((o) =>
      el(
        "tr",
        { "data-key": o.key },
        el("td", { className: "mono" }, o.key.slice(prefix.length)),
        el("td", { className: "num" }, bytes(o.size)),
        el("td", {}, new Date(o.lastModified).toLocaleString()),
        el(
          "td",
          {},
          el("button", { className: "link", onclick: () => download(bucket, o.key) }, "Download"),
          el("button", { className: "link", onclick: () => locateObject(bucket, o.key) }, "Locate"),
          el("button", { className: "link danger", onclick: () => deleteObject(bucket, o.key) }, "Delete"),
        ),
      ),
    );
    $("objects").tBodies[0].replaceChildren(...folders, ...files);
    if (r.nextCursor) $("objects").tBodies[0].append(el("tr", {}, el("td", { colspan: 4, className: "muted" }, "… more objects (the first 1000 are shown)")));
  } catch (err) {
    showError(err);
  }
}

async function download(bucket, key) {
  try {
    const res = await fetch(`/buckets/${bucket}/objects/${keyPath(key)}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`download: ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: key.split("/").pop() || "object" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    showError(err);
  }
}

async function deleteObject(bucket, key) {
  if (!confirm(`Delete ${key}?`)) return;
  try {
    await api(`/buckets/${bucket}/objects/${keyPath(key)}`, { method: "DELETE" });
    bucketCounts.delete(bucket);
    await listObjects();
  } catch (err) {
    showError(err);
  }
}

async function locateObject(bucket, key) {
  try {
    const loc = await api(`/cluster/locate/${bucket}/${keyPath(key)}`);
    const lines = [
      `${loc.bucket}/${loc.key}: ${bytes(loc.size)}, etag ${loc.etag}${loc.inline ? " (kept inline in the index)" : ""}`,
      `index shard ${loc.shard.id}: replicas ${loc.shard.replicas.map(short).join(", ")}; held by ${loc.shard.holders.map(short).join(", ")}`,
      ...loc.chunks.map((c, i) => `chunk ${i} ${c.id.slice(0, 16)}… ${bytes(c.size)}: expected on ${c.expected.map(short).join(", ")}; held by ${c.holders.map(short).join(", ") || "nobody"}`),
    ];
    $("locate").textContent = lines.join("\n");
    $("locate").hidden = false;
  } catch (err) {
    showError(err);
  }
}

function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file || !browse.bucket) return;
  const key = browse.prefix + file.name;
  const bar = $("upload-progress");
  const status = $("upload-status");
  bar.hidden = false;
  bar.value = 0;
  status.textContent = `uploading ${key}…`;
  const xhr = new XMLHttpRequest();
  xhr.open("PUT", `/buckets/${browse.bucket}/objects/${keyPath(key)}`);
  xhr.setRequestHeader("authorization", `Bearer ${token}`);
  xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = e.loaded / e.total;
  };
  xhr.onload = () => {
    if (xhr.status === 200) {
      bar.value = 1;
      status.textContent = `uploaded ${key} (${bytes(file.size)})`;
      status.dataset.done = key;
      bucketCounts.delete(browse.bucket);
      void listObjects();
    } else {
      status.textContent = `upload failed: ${xhr.status} ${xhr.responseText.slice(0, 200)}`;
    }
  };
  xhr.onerror = () => (status.textContent = "upload failed: no answer");
  xhr.send(file);
}

async function createBucket(event) {
  event.preventDefault();
  const name = $("bucket-name").value.trim();
  try {
    await api(`/buckets/${encodeURIComponent(name)}`, { method: "PUT" });
    $("bucket-name").value = "";
    await poll();
  } catch (err) {
    showError(err);
  }
}

// ---------- access keys ----------

async function refreshKeys() {
  try {
    const { keys } = await api("/admin/keys");
    const rows = keys.map((k) =>
      el(
        "tr",
        { "data-key-id": k.accessKeyId },
        el("td", { className: "mono" }, k.accessKeyId),
        el("td", {}, k.name ?? ""),
        el("td", {}, k.admin ? "yes" : ""),
        el("td", {}, Object.entries(k.buckets).map(([b, p]) => `${b}: ${p}`).join(", ")),
        el("td", {}, new Date(k.createdMs).toLocaleString()),
        el("td", {}, el("button", { className: "link danger", onclick: () => revokeKey(k.accessKeyId) }, "Revoke")),
      ),
    );
    $("keys").tBodies[0].replaceChildren(...rows);
  } catch (err) {
    showError(err);
  }
}

async function createKey(event) {
  event.preventDefault();
  const buckets = {};
  for (const grant of $("key-buckets").value.split(",").map((g) => g.trim()).filter(Boolean)) {
    const [b, p] = grant.split("=").map((s) => s.trim());
    buckets[b] = p || "read";
  }
  const spec = { name: $("key-name").value.trim() || undefined, admin: $("key-admin").checked, buckets };
  try {
    const k = await api("/admin/keys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(spec) });
    const box = $("new-key");
    box.replaceChildren(
      el("p", {}, el("b", {}, "Shown once: copy these now."), " "),
      el("div", {}, "Access key: ", el("code", {}, k.accessKeyId)),
      el("div", {}, "S3 secret: ", el("code", { id: "new-key-secret" }, k.secretAccessKey)),
      el("div", {}, "Native token: ", el("code", {}, k.token)),
      el("button", { onclick: () => ((box.hidden = true), box.replaceChildren()) }, "I have copied them"),
    );
    box.dataset.keyId = k.accessKeyId;
    box.hidden = false;
    $("key-form").reset();
    await refreshKeys();
  } catch (err) {
    showError(err);
  }
}

async function revokeKey(id) {
  if (!confirm(`Revoke ${id}? Every peer refuses it at once.`)) return;
  try {
    await api(`/admin/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
    // A secret shown once for a key that is gone now is of no use: hide it.
    if ($("new-key").dataset.keyId === id) $("new-key").hidden = true;
    await refreshKeys();
  } catch (err) {
    showError(err);
  }
}

// ---------- start ----------

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void signIn($("token").value.trim());
});
$("sign-out").addEventListener("click", signOut);
$("upload-form").addEventListener("submit", upload);
$("bucket-form").addEventListener("submit", createBucket);
$("key-form").addEventListener("submit", createKey);
if (token) void signIn(token);
