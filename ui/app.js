// The meshstore dashboard: one module, no build step, nothing loaded from elsewhere. It
// signs in with a native bearer token, or an access key whose token it derives as the
// server does (kept in sessionStorage), polls this peer every 2 s (/cluster/status,
// /cluster/peers, /cluster/events, /buckets, /metrics; /uploads while its panel is on
// screen, every 10 s otherwise) and each member's own /cluster/status for its capacity,
// and drives the native API for buckets, objects, multipart uploads, drains and access
// keys, and searches a bucket by metadata (GET /buckets/{b}/query, a page at a time). Every
// value from the server is set as text, never as HTML.

const POLL_MS = 2000;
/** Samples kept for the replication sparklines (3 minutes at 2 s). */
const HISTORY = 90;
/** How often bucket object counts are refreshed (a listing each: they may lag). */
const COUNT_EVERY_MS = 10_000;
const TOKEN_KEY = "meshstore.token";
/** Request-rate history kept for the traffic sparklines (5 minutes at 2 s). */
const TRAFFIC_HISTORY = 150;
const MiB = 1024 * 1024;
/** Files larger than this go up as a multipart upload, in parts sent side by side. */
const MULTIPART_OVER = 8 * MiB;
/** The smallest part S3 and meshstore accept (but the last). */
const MIN_PART = 5 * MiB;
const PARALLEL_PARTS = 3;
/** Upload records the panel shows (the server reads at most a page of 100 rows for them). */
const UPLOADS_SHOWN = 20;
/** How often the uploads panel is refreshed while it is off screen. */
const UPLOADS_OFFSCREEN_MS = 10_000;
/** How often an upload from this page reads its own record while it runs. */
const OWN_RECORD_MS = 1000;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) ?? "";
let isAdmin = false;
let timer;
let lastSeq = 0;
const history = [];
/** Samples of this peer's request counters: {t, apis: {api: {count, errors, buckets: [[le, n]]}}}. */
const traffic = [];
const bucketCounts = new Map();
let countsAt = 0;
/** What the object browser shows: a bucket and a prefix. */
const browse = { bucket: "", prefix: "" };
/** The uploads panel: on screen or not, when it was last read, the read under way. */
const uploadsPanel = { visible: false, at: 0, loading: null };

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
    let code;
    try {
      const e = (await res.json()).error;
      code = e.code;
      message = e.message ?? message;
    } catch {}
    const err = new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${message}`);
    err.status = res.status;
    // The server's own code and message, for panels that show them as they are.
    err.code = code;
    err.detail = message;
    throw err;
  }
  if (res.status === 204) return null;
  return res.json();
}

// ---------- sign in ----------

/** The native token of an access key, as the server derives it (src/auth/access-keys.ts nativeToken). */
async function tokenOfAccessKey(accessKeyId, secret) {
  if (!crypto.subtle) throw new Error("Signing in with an access key needs https or a page on localhost; paste the native token instead.");
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode("meshstore native token v1")));
  const b64url = btoa(String.fromCharCode(...mac)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `mst_${accessKeyId}_${b64url}`;
}

async function signInWithKey(event) {
  event.preventDefault();
  try {
    await signIn(await tokenOfAccessKey($("access-key-id").value.trim(), $("secret-access-key").value.trim()));
  } catch (err) {
    $("signin-error").textContent = `${err.message ?? err}`;
  }
  $("secret-access-key").value = "";
}

async function signIn(candidate) {
  token = candidate;
  try {
    await api("/buckets");
  } catch (err) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin-error").textContent = err.status === 401 ? "Those credentials are not valid." : `${err.message}`;
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
  $("traffic-section").hidden = true;
  traffic.length = 0;
  lastSeq = 0;
  $("events").replaceChildren();
  $("uploads").tBodies[0].replaceChildren();
  uploadsPanel.at = 0;
  clearSearch();
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
  const [status, peers, events, buckets, metrics] = await Promise.allSettled([
    fetch("/cluster/status", { signal: AbortSignal.timeout(POLL_MS) }).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`status ${r.status}`)))),
    api("/cluster/peers"),
    isAdmin ? api(`/cluster/events?after=${lastSeq}`) : Promise.resolve(null),
    api("/buckets"),
    // Open to admins, or to everyone with --metrics-public; anyone else does without the traffic table.
    fetch("/metrics", { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(POLL_MS) }).then((r) => (r.ok ? r.text() : null)),
  ]);
  // Not awaited: a listing slowed by a dying replica must not hold up the rest of the page.
  if (uploadsDue()) void loadUploads();
  if (buckets.status === "rejected" && buckets.reason.status === 401) return signOut();
  const st = status.status === "fulfilled" ? status.value : null;
  const view = peers.status === "fulfilled" ? peers.value : null;
  renderBanner(st, view);
  if (view) await renderPeers(view, st);
  if (st) renderReplication(st);
  if (events.status === "fulfilled" && events.value) renderEvents(events.value);
  if (buckets.status === "fulfilled") await renderBuckets(buckets.value.buckets);
  if (metrics.status === "fulfilled" && metrics.value !== null) renderTraffic(metrics.value);
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

const percent = (f) => (typeof f === "number" && Number.isFinite(f) ? `${(f * 100).toFixed(f < 0.1 ? 1 : 0)} %` : "—");

async function renderPeers(view, st) {
  const members = [view.self, ...view.peers];
  const statuses = await Promise.all(members.map((m) => memberStatus(m, st, view.self.id)));
  // Each member's share of the key space (the fraction of keys it keeps a copy of), from the ring this peer places by.
  const shares = new Map((st?.ring?.owners ?? []).map((o) => [o.id, o.share]));
  const rows = members.map((m, i) => {
    const s = statuses[i];
    const self = m.id === view.self.id;
    const disk = s?.storage?.diskTotalBytes ? bytes(s.storage.diskFreeBytes) : "—";
    const draining = Boolean(m.draining ?? s?.draining);
    return el(
      "tr",
      { "data-peer": m.id, "data-state": m.state, "data-draining": draining ? "true" : undefined },
      el("td", { className: "mono", title: m.id }, short(m.id), self ? " (this peer)" : ""),
      el("td", { className: "addrs" }, (m.addrs ?? []).join(" ") || "—"),
      el("td", { className: `state state-${m.state}` }, m.state, draining ? " (draining)" : ""),
      el("td", {}, self ? "now" : ago(m.lastSeenMs)),
      el("td", {}, m.http ? el("a", { href: `${m.http}/ui/`, target: "_blank", rel: "noopener" }, m.http) : "—"),
      el("td", { className: "num" }, s ? duration(s.uptimeSeconds) : "—"),
      el("td", {}, s?.version ?? "—"),
      el("td", { className: "num" }, s ? s.storage?.chunks ?? "—" : "—"),
      el("td", { className: "num" }, s ? bytes(s.storage?.bytes) : "—"),
      el("td", { className: "num" }, disk),
      // A member missing from the ring (draining, or dead past the repair delay) owns nothing.
      el("td", { className: "num" }, percent(st?.ring ? (shares.get(m.id) ?? 0) : undefined)),
      el("td", {}, drainButton(m, draining, self)),
    );
  });
  $("peers").tBodies[0].replaceChildren(...rows);
  renderCapacity(members, statuses, shares, st);
}

/** Drain (or cancel the drain of) a live member: admins only, on any member through this peer. */
function drainButton(m, draining, self) {
  if (!isAdmin || m.state !== "alive") return "";
  const cancel = draining;
  return el("button", { className: `link${cancel ? "" : " danger"}`, "data-action": cancel ? "cancel-drain" : "drain", onclick: () => drainMember(m.id, self, cancel) }, cancel ? "Cancel drain" : "Drain");
}

async function drainMember(id, self, cancel) {
  const what = self ? "this peer" : `peer ${short(id)}`;
  if (!cancel && !confirm(`Hand everything on ${what} to the others? It keeps serving until you stop it.`)) return;
  try {
    const r = await api(self ? "/cluster/drain" : `/cluster/members/${encodeURIComponent(id)}/drain`, { method: cancel ? "DELETE" : "POST" });
    showError(null);
    $("drain-status").textContent = cancel
      ? `${what}: drain cancelled; it keeps its copies and counts again.`
      : r.safeToStop
        ? `${what} holds nothing the mesh lacks: safe to stop.`
        : `${what} is draining${r.reason ? `, but cannot finish: ${r.reason}` : ": its data is moving to the other peers."}`;
    await poll();
  } catch (err) {
    showError(err);
  }
}

/** Capacity per member (disk used and free, chunk bytes, ring share) and for the whole mesh. */
function renderCapacity(members, statuses, shares, st) {
  const W = 260;
  const H = 14;
  let used = 0;
  let free = 0;
  let total = 0;
  const bars = members.map((m, i) => {
    const s = statuses[i];
    const d = s?.storage;
    if (d) {
      used += d.bytes ?? 0;
      free += d.diskFreeBytes ?? 0;
      total += d.diskTotalBytes ?? 0;
    }
    const chart = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `disk of ${short(m.id)}` });
    chart.append(svg("rect", { x: 0, y: 0, width: W, height: H, class: "disk" }));
    if (d?.diskTotalBytes) {
      const usedFrac = 1 - d.diskFreeBytes / d.diskTotalBytes;
      chart.append(svg("rect", { x: 0, y: 0, width: (usedFrac * W).toFixed(1), height: H, class: "disk-used" }));
      chart.append(svg("rect", { x: 0, y: 0, width: Math.max(1, (d.bytes / d.diskTotalBytes) * W).toFixed(1), height: H, class: "chunks" }));
    }
    const label = d?.diskTotalBytes
      ? `${bytes(d.bytes)} in chunks, ${bytes(d.diskTotalBytes - d.diskFreeBytes)} of ${bytes(d.diskTotalBytes)} disk used, ring share ${percent(st?.ring ? (shares.get(m.id) ?? 0) : undefined)}`
      : "no answer";
    return el("div", { className: "bar", "data-peer": m.id }, el("span", { className: "mono" }, short(m.id)), chart, el("span", { className: "muted" }, label));
  });
  $("ownership").replaceChildren(...bars);
  const reached = statuses.filter(Boolean).length;
  $("capacity").textContent =
    `The mesh (the ${reached} member(s) that answered): ${bytes(used)} in chunks, ${bytes(free)} free of ${bytes(total)} on their disks` +
    ` (members sharing a disk count it once each); rf ${st?.rf ?? "?"}, quorum ${st?.quorum ? `r ${st.quorum.r} / w ${st.quorum.w} of ${st.quorum.members}` : "?"}.`;
}

/** A sparkline of `values` (newest at the right edge, `slots` samples wide). */
function sparkline(values, slots, label, W = 180, H = 36) {
  const max = Math.max(1e-9, ...values);
  const x = (i) => W - ((values.length - 1 - i) / (slots - 1)) * W;
  const points = values.map((v, i) => `${x(i).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`).join(" ");
  const chart = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  chart.append(svg("polyline", { points }));
  return chart;
}

let lastRepair;
function renderReplication(st) {
  // The repair rate: bytes repaired per second since the last sample.
  const now = { t: Date.now(), bytes: st.repair?.bytesRepaired ?? 0 };
  const rate = lastRepair && now.t > lastRepair.t ? Math.max(0, (now.bytes - lastRepair.bytes) / ((now.t - lastRepair.t) / 1000)) : 0;
  lastRepair = now;
  history.push({
    "under-replicated chunks": st.underReplicated?.chunks ?? 0,
    "under-replicated shards": st.underReplicated?.shards ?? 0,
    "repair queue": st.repair?.queue ?? 0,
    "repair rate": rate,
    "scrub: corrupt found": st.scrub?.corruptFound ?? 0,
    "bad replicas": st.badReplicas?.length ?? 0,
  });
  while (history.length > HISTORY) history.shift();
  const series = Object.keys(history[0]);
  const scrub = st.scrub ?? {};
  const scrubWorker = st.workers?.scrub?.state ?? "?";
  $("replication").replaceChildren(
    ...series.map((name) => {
      const values = history.map((h) => h[name]);
      const now = values.at(-1);
      return el("div", { className: "spark", "data-series": name }, el("span", {}, `${name}: `, el("b", {}, name === "repair rate" ? `${bytes(now)}/s` : now)), sparkline(values, HISTORY, name));
    }),
    el(
      "p",
      { className: "muted", id: "scrub-state" },
      `Scrub: ${scrubWorker}; last pass ${scrub.lastFinishedMs ? `finished ${ago(scrub.lastFinishedMs)}` : "not finished yet"}; ${scrub.chunksChecked ?? 0} chunk(s) checked, ${scrub.corruptFound ?? 0} corrupt found, ${scrub.restored ?? 0} restored. Repair worker: ${st.workers?.repair?.state ?? "?"}, ${bytes(st.repair?.bytesRepaired ?? 0)} repaired since start.`,
    ),
  );
}

// ---------- requests (from /metrics) ----------

/** Request counts and latency buckets by API, from the Prometheus text of this peer. */
function parseRequestMetrics(text) {
  const apis = {};
  const of = (api) => (apis[api] ??= { count: 0, errors: 0, buckets: new Map() });
  for (const line of text.split("\n")) {
    const total = line.startsWith("meshstore_requests_total{");
    const bucket = !total && line.startsWith("meshstore_request_duration_seconds_bucket{");
    if (!total && !bucket) continue;
    const close = line.lastIndexOf("}");
    const labels = {};
    for (const m of line.slice(line.indexOf("{") + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    const value = Number(line.slice(close + 1).trim().split(" ")[0]);
    if (!labels.api || !Number.isFinite(value)) continue;
    const a = of(labels.api);
    if (total) {
      a.count += value;
      if (labels.code?.startsWith("5")) a.errors += value;
    } else {
      const le = labels.le === "+Inf" ? Infinity : Number(labels.le);
      a.buckets.set(le, (a.buckets.get(le) ?? 0) + value);
    }
  }
  return apis;
}

/** The q-quantile of the requests between two cumulative histograms, interpolated inside its bucket (as Prometheus does). */
function quantile(q, then, now) {
  const les = [...now.keys()].sort((a, b) => a - b);
  const counts = les.map((le) => (now.get(le) ?? 0) - (then?.get(le) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (counts[i] >= rank) {
      if (les[i] === Infinity) return les[i - 1] ?? null;
      const lower = i === 0 ? 0 : les[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      const inBucket = counts[i] - below;
      return inBucket > 0 ? lower + (les[i] - lower) * ((rank - below) / inBucket) : les[i];
    }
  }
  return null;
}

/** The newest sample at least `ms` older than the last one (or the oldest there is). */
function sampleBefore(ms) {
  const last = traffic.at(-1);
  for (let i = traffic.length - 2; i >= 0; i--) if (last.t - traffic[i].t >= ms) return traffic[i];
  return traffic.length > 1 ? traffic[0] : null;
}

const latency = (s) => (s === null ? "—" : s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms` : `${s.toFixed(2)} s`);

function renderTraffic(text) {
  traffic.push({ t: Date.now(), apis: parseRequestMetrics(text) });
  while (traffic.length > TRAFFIC_HISTORY + 1) traffic.shift();
  $("traffic-section").hidden = false;
  const last = traffic.at(-1);
  const recent = sampleBefore(10_000);
  const minute = sampleBefore(60_000);
  const rows = Object.keys(last.apis)
    .sort()
    .map((api) => {
      const a = last.apis[api];
      const r = recent?.apis[api];
      const secs = recent ? (last.t - recent.t) / 1000 : 0;
      const reqs = r && secs > 0 ? (a.count - r.count) / secs : null;
      const errs = r && secs > 0 ? (a.errors - r.errors) / secs : null;
      // Requests per second between each pair of samples, for the sparkline.
      const perSample = [];
      for (let i = 1; i < traffic.length; i++) {
        const [p, n] = [traffic[i - 1], traffic[i]];
        perSample.push(p.apis[api] && n.apis[api] ? Math.max(0, (n.apis[api].count - p.apis[api].count) / ((n.t - p.t) / 1000)) : 0);
      }
      const rate = (x) => (x === null ? "—" : x.toFixed(x < 10 ? 1 : 0));
      return el(
        "tr",
        { "data-api": api },
        el("td", {}, api),
        el("td", { className: "num", "data-figure": "rate" }, rate(reqs)),
        el("td", { className: "num" }, rate(errs)),
        el("td", { className: "num" }, reqs ? percent(errs / reqs) : "—"),
        el("td", { className: "num", "data-figure": "p50" }, latency(minute ? quantile(0.5, minute.apis[api]?.buckets, a.buckets) : null)),
        el("td", { className: "num", "data-figure": "p99" }, latency(minute ? quantile(0.99, minute.apis[api]?.buckets, a.buckets) : null)),
        el("td", {}, sparkline(perSample, TRAFFIC_HISTORY, `${api} requests per second`, 240, 30)),
      );
    });
  $("traffic").tBodies[0].replaceChildren(...rows);
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
  renderSearchBuckets(buckets);
}

async function openBucket(bucket, prefix) {
  browse.bucket = bucket;
  browse.prefix = prefix;
  $("browser").hidden = false;
  $("browse-bucket").textContent = bucket;
  $("details").hidden = true;
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
          el("button", { className: "link", onclick: () => showDetails(bucket, o.key) }, "Details"),
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

/** Response headers worth showing as an object's metadata (user metadata comes as x-meta-*). */
const SHOWN_HEADERS = ["content-type", "content-length", "etag", "last-modified", "cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

/** An object's metadata (a HEAD) and where its copies are (the locate view). */
async function showDetails(bucket, key) {
  try {
    const head = await fetch(`/buckets/${bucket}/objects/${keyPath(key)}`, { method: "HEAD", headers: { authorization: `Bearer ${token}` } });
    if (!head.ok) throw new Error(`HEAD ${key}: ${head.status}`);
    const meta = [...head.headers].filter(([name]) => SHOWN_HEADERS.includes(name) || name.startsWith("x-meta-")).map(([name, value]) => `  ${name}: ${value}`);
    const loc = await api(`/cluster/locate/${bucket}/${keyPath(key)}`);
    const lines = [
      `${loc.bucket}/${loc.key}: ${bytes(loc.size)}, etag ${loc.etag}${loc.inline ? " (kept inline in the index)" : ""}`,
      "metadata:",
      ...meta.sort(),
      `index shard ${loc.shard.id}: replicas ${loc.shard.replicas.map(short).join(", ")}; held by ${loc.shard.holders.map(short).join(", ")}`,
      ...loc.chunks.map((c, i) => `chunk ${i} ${c.id.slice(0, 16)}… ${bytes(c.size)}: expected on ${c.expected.map(short).join(", ")}; held by ${c.holders.map(short).join(", ") || "nobody"}`),
    ];
    $("details").textContent = lines.join("\n");
    $("details").dataset.key = key;
    $("details").hidden = false;
  } catch (err) {
    showError(err);
  }
}

/** PUT `body` to `path` with progress reports (fetch cannot report upload progress); the parsed JSON answer. */
function putWithProgress(path, body, contentType, onProgress, headers = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", path);
    xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.setRequestHeader("content-type", contentType);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(body.size);
        resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
      } else {
        let message = xhr.statusText;
        try {
          message = JSON.parse(xhr.responseText).error.message;
        } catch {}
        reject(new Error(`${xhr.status} ${message}`));
      }
    };
    xhr.onerror = () => reject(new Error("no answer"));
    xhr.send(body);
  });
}

/** A large file as a multipart upload: parts of at least 5 MiB, a few at a time, then completed (aborted on failure); `uploadToken` names its record. */
async function uploadMultipart(bucket, key, file, onProgress, uploadToken) {
  const type = file.type || "application/octet-stream";
  const q = `key=${encodeURIComponent(key)}`;
  const { uploadId } = await api(`/buckets/${bucket}/multipart?${q}`, { method: "POST", headers: { "content-type": type, "x-upload-token": uploadToken } });
  const base = `/buckets/${bucket}/multipart/${encodeURIComponent(uploadId)}`;
  const partSize = Math.max(MIN_PART, Math.ceil(file.size / 10_000));
  const count = Math.ceil(file.size / partSize);
  const sent = new Array(count).fill(0);
  const parts = new Array(count);
  let next = 0;
  const sender = async () => {
    while (next < count) {
      const i = next++;
      const body = file.slice(i * partSize, Math.min(file.size, (i + 1) * partSize));
      const part = await putWithProgress(`${base}/parts/${i + 1}?${q}`, body, type, (n) => {
        sent[i] = n;
        onProgress(sent.reduce((a, b) => a + b, 0));
      });
      parts[i] = { partNumber: i + 1, etag: part.etag };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, count) }, sender));
    return await api(`${base}/complete?${q}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ parts }) });
  } catch (err) {
    await api(`${base}?${q}`, { method: "DELETE" }).catch(() => {});
    throw err;
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file || !browse.bucket) return;
  const bucket = browse.bucket;
  const key = browse.prefix + file.name;
  const bar = $("upload-progress");
  const status = $("upload-status");
  const multipart = file.size > MULTIPART_OVER;
  const uploadToken = newUploadToken();
  bar.hidden = false;
  bar.value = 0;
  delete status.dataset.done;
  status.dataset.token = uploadToken;
  status.textContent = `uploading ${key}${multipart ? " in parts" : ""}…`;
  $("upload-record").textContent = "";
  const onProgress = (n) => (bar.value = file.size ? Math.min(1, n / file.size) : 1);
  // The bar is what the browser has sent; the record, read now and then, is what the mesh has received.
  const watcher = setInterval(() => void showOwnRecord(uploadToken), OWN_RECORD_MS);
  try {
    if (multipart) await uploadMultipart(bucket, key, file, onProgress, uploadToken);
    else await putWithProgress(`/buckets/${bucket}/objects/${keyPath(key)}`, file, file.type || "application/octet-stream", onProgress, { "x-upload-token": uploadToken });
    bar.value = 1;
    status.textContent = `uploaded ${key} (${bytes(file.size)}${multipart ? `, multipart` : ""})`;
    status.dataset.done = key;
    bucketCounts.delete(bucket);
    await listObjects();
  } catch (err) {
    status.textContent = `upload failed: ${err.message ?? err}`;
  } finally {
    clearInterval(watcher);
  }
  await showOwnRecord(uploadToken, true);
  void loadUploads();
}

// ---------- upload records ----------

/** A token for an upload from this page, in the server's alphabet (8 to 64 of A-Z a-z 0-9 _ -). */
function newUploadToken() {
  const raw = crypto.getRandomValues(new Uint8Array(12));
  return `ui-${btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_")}`;
}

/** Whether the panel is due a refresh: each poll while on screen, now and then when not. */
function uploadsDue() {
  const every = uploadsPanel.visible && !document.hidden ? POLL_MS / 2 : UPLOADS_OFFSCREEN_MS;
  return Date.now() - uploadsPanel.at >= every;
}

/** Read and show the newest records (one read at a time). */
function loadUploads() {
  if (uploadsPanel.loading) return uploadsPanel.loading;
  uploadsPanel.at = Date.now();
  uploadsPanel.loading = api(`/uploads?limit=${UPLOADS_SHOWN}`, { signal: AbortSignal.timeout(5000) })
    .then(
      (r) => renderUploads(r.uploads),
      (err) => {
        if (token) $("uploads-error").textContent = `Upload records could not be read: ${err.message ?? err}`;
      },
    )
    .finally(() => (uploadsPanel.loading = null));
  return uploadsPanel.loading;
}

/** How far an upload got: a fraction when its size is known (a success is whole), else null. */
function uploadFraction(u) {
  if (u.state === "success") return 1;
  return typeof u.size === "number" && u.size > 0 ? Math.min(1, u.bytesReceived / u.size) : null;
}

/** Bytes per second from start to end (or to now while it runs), or null before any time has passed. */
function uploadRate(u, now) {
  const seconds = ((u.finishedMs ?? now) - u.startedMs) / 1000;
  return seconds > 0 ? u.bytesReceived / seconds : null;
}

function renderUploads(list) {
  $("uploads-error").textContent = "";
  const now = Date.now();
  const rows = list.map((u) => {
    const frac = uploadFraction(u);
    const rate = uploadRate(u, now);
    const took = u.finishedMs ? `took ${duration((u.finishedMs - u.startedMs) / 1000)}` : undefined;
    return el(
      "tr",
      { "data-token": u.token, "data-state": u.state },
      el("td", { className: "mono" }, u.token),
      el("td", { className: "mono key" }, `${u.bucket}/${u.key}`),
      el("td", { className: "nowrap" }, el("span", { className: `badge badge-${u.state}` }, u.state), u.uploadId ? el("span", { className: "muted" }, " multipart") : ""),
      el("td", { className: "num nowrap" }, bytes(u.bytesReceived), typeof u.size === "number" && u.size !== u.bytesReceived ? ` of ${bytes(u.size)}` : ""),
      el("td", { className: "nowrap" }, frac !== null ? [el("progress", { max: 1, value: frac }), ` ${percent(frac)}`] : u.state === "inprogress" ? el("progress", { title: "size not known yet" }) : "—"),
      el("td", { className: "num nowrap" }, rate === null ? "—" : `${bytes(rate)}/s`),
      el("td", { className: "nowrap", title: took }, u.state === "inprogress" ? `started ${ago(u.startedMs)}` : `${u.state === "success" ? "done" : "failed"} ${ago(u.finishedMs)}`),
      el("td", { className: "error" }, u.error ?? ""),
    );
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 8, className: "muted" }, "No uploads in the last 24 hours.")));
  $("uploads").tBodies[0].replaceChildren(...rows);
}

/** The record of this page's upload `uploadToken`, shown beside the form (`final`: also when it is missing). */
async function showOwnRecord(uploadToken, final = false) {
  const line = $("upload-record");
  let text;
  let state;
  try {
    const u = await api(`/uploads/${encodeURIComponent(uploadToken)}`);
    const frac = uploadFraction(u);
    state = u.state;
    text = `token ${u.token}: ${u.state}, the mesh has ${bytes(u.bytesReceived)}${frac !== null ? ` (${percent(frac)})` : ""}${u.error ? `: ${u.error}` : ""}`;
  } catch (err) {
    // A small upload has no record until it ends; a running one none until it has run a while.
    if (err.status !== 404 || final) text = `token ${uploadToken}: ${err.status === 404 ? "no record" : err.message}`;
  }
  // Another upload may have started since this one asked.
  if (text === undefined || $("upload-status").dataset.token !== uploadToken) return;
  line.textContent = text;
  if (state) line.dataset.state = state;
  else delete line.dataset.state;
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

// ---------- search ----------

/** Fields every object has, which queries may use with no schema. */
const SYSTEM_FIELDS = ["key", "size", "lastModified", "contentType", "etag"];
/** The search shown: its bucket and parameters, the cursor "More" reads on with, and the run it belongs to (a newer search retires older answers). */
const search = { bucket: "", params: null, cursor: null, shown: 0, run: 0 };

/** The bucket picker follows the bucket list; the choice stays while its bucket exists. */
function renderSearchBuckets(buckets) {
  const pick = $("search-bucket");
  const names = buckets.map((b) => b.name);
  if (names.join("/") === [...pick.options].map((o) => o.value).join("/")) return;
  const chosen = pick.value;
  pick.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(chosen)) pick.value = chosen;
  if (pick.value !== chosen) void showSchema();
}

/** The chosen bucket's fields under the form, and as suggestions for the sort field. */
async function showSchema() {
  const bucket = $("search-bucket").value;
  let fields = {};
  let text = "";
  if (bucket) {
    try {
      const s = await api(`/buckets/${encodeURIComponent(bucket)}/schema`);
      fields = s.fields;
      const list = Object.entries(fields).map(([n, f]) => `${n} (${f.type}${f.state === "ready" ? "" : ", building"})`);
      text = `Fields of ${bucket}: ${list.join(", ") || "none"}; and always ${SYSTEM_FIELDS.join(", ")}.${s.state === "building" ? ` Indexing: ${s.progress.peersReady} of ${s.progress.peers} peers ready.` : ""}`;
    } catch (err) {
      text = err.code === "NoSuchSchema" ? `${bucket} has no search schema (PUT /buckets/${bucket}/schema): queries may use ${SYSTEM_FIELDS.join(", ")}.` : "";
    }
  }
  if ($("search-bucket").value !== bucket) return;
  $("search-schema").textContent = text;
  // Sort suggestions: contentType and etag are conditions only, keywords have no single value.
  const sortable = [...Object.keys(fields).filter((f) => fields[f].type !== "keywords"), "key", "size", "lastModified"];
  $("search-fields").replaceChildren(...sortable.map((n) => el("option", { value: n })));
}

function clearSearch() {
  search.run++;
  $("search-results").tBodies[0].replaceChildren();
  $("search-more").hidden = true;
  $("search-status").textContent = "";
  showSearchError(null);
}

/** A query's error as the server gave it (code and message), with a caret under the fault of a text query. */
function showSearchError(err, q = "") {
  const box = $("search-error");
  const caret = $("search-caret");
  box.hidden = !err;
  caret.hidden = true;
  if (!err) return;
  box.textContent = err.code ? `${err.code}: ${err.detail}` : `${err.message ?? err}`;
  const at = err.code === "InvalidQuery" ? /at position (\d+)/.exec(err.detail ?? "") : null;
  if (at) {
    caret.textContent = `${q}\n${" ".repeat(Number(at[1]))}^`;
    caret.hidden = false;
  }
}

async function runSearch(event) {
  event.preventDefault();
  clearSearch();
  const params = new URLSearchParams({ q: $("search-q").value.trim(), limit: $("search-limit").value });
  const sort = $("search-sort").value.trim();
  const order = $("search-order").value;
  if (sort || order === "desc") {
    params.set("sort", sort || "key");
    params.set("order", order);
  }
  Object.assign(search, { bucket: $("search-bucket").value, params, cursor: null, shown: 0 });
  await searchPage(search.run);
}

/** `k=v` pieces of an object's metadata, each its own span. */
const metaSpans = (meta) => Object.entries(meta).map(([k, v]) => el("span", {}, `${k}=${v}`));

/** The next page of the search shown, appended to its rows. */
async function searchPage(run) {
  const params = new URLSearchParams(search.params);
  if (search.cursor) params.set("cursor", search.cursor);
  const table = $("search-results");
  $("search-more").hidden = true;
  $("search-status").textContent = "searching…";
  delete table.dataset.done;
  try {
    const r = await api(`/buckets/${encodeURIComponent(search.bucket)}/query?${params}`);
    if (run !== search.run) return;
    const rows = r.objects.map((o) =>
      el(
        "tr",
        { "data-key": o.key },
        el("td", { className: "mono" }, o.key),
        el("td", { className: "num" }, bytes(o.size)),
        el("td", {}, new Date(o.lastModified).toLocaleString()),
        el("td", { className: "meta" }, metaSpans(o.meta)),
      ),
    );
    table.tBodies[0].append(...rows);
    search.cursor = r.nextCursor;
    search.shown += r.objects.length;
    $("search-more").hidden = !r.nextCursor;
    $("search-status").textContent = `${search.shown} object(s)${r.nextCursor ? ", more match" : ""}`;
    table.dataset.done = String(search.shown);
  } catch (err) {
    if (run !== search.run) return;
    $("search-status").textContent = "";
    showSearchError(err, params.get("q"));
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
$("signin-key-form").addEventListener("submit", signInWithKey);
$("sign-out").addEventListener("click", signOut);
$("upload-form").addEventListener("submit", upload);
$("bucket-form").addEventListener("submit", createBucket);
$("key-form").addEventListener("submit", createKey);
$("search-form").addEventListener("submit", runSearch);
$("search-more").addEventListener("click", () => void searchPage(search.run));
$("search-bucket").addEventListener("change", () => void showSchema());
// The uploads panel reads its records while it is on screen, and at once when it comes into view.
new IntersectionObserver((entries) => {
  uploadsPanel.visible = entries.some((e) => e.isIntersecting);
  if (token && !$("main").hidden && uploadsDue()) void loadUploads();
}).observe($("uploads-section"));
if (token) void signIn(token);
