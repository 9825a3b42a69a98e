// A hand-written SVG of the scaling runs: small PUT ops/s against peers, list page p50
// against bucket size (log scale), and heartbeat messages per peer per second against peers.
//   bun bench/svg.ts [bench/results.json] [bench/scaling.svg]   (re-render from a results file)

export interface ScalingData {
  title: string;
  smallPut: Array<{ peers: number; opsPerSec: number }>;
  list: Array<{ objects: number; p50ms: number }>;
  heartbeat?: Array<{ peers: number; perPeerPerSec: number }>;
}

const W = 360;
const H = 260;
const M = { l: 56, r: 16, t: 36, b: 44 };
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const fmt = (n: number) => (n >= 1000 ? `${+(n / 1000).toFixed(1)}k` : `${+n.toFixed(1)}`);

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(x0: number, title: string, xLabel: string, yLabel: string, pts: Array<[number, number]>, xs: { log: boolean }): string {
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const out: string[] = [`<g transform="translate(${x0},0)">`, `<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>`];
  if (pts.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text></g>`);
    return out.join("\n");
  }
  const xv = pts.map((p) => (xs.log ? Math.log10(p[0]) : p[0]));
  let xmin = Math.min(...xv);
  let xmax = Math.max(...xv);
  if (xmin === xmax) {
    xmin -= 1;
    xmax += 1;
  }
  const ymax = niceMax(Math.max(...pts.map((p) => p[1])) * 1.1);
  const X = (v: number) => M.l + ((v - xmin) / (xmax - xmin)) * pw;
  const Y = (v: number) => M.t + ph - (v / ymax) * ph;
  out.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    out.push(`<line x1="${M.l}" x2="${M.l + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/><text x="${M.l - 4}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  pts.forEach((p, i) => out.push(`<text x="${X(xv[i])}" y="${M.t + ph + 16}" text-anchor="middle">${fmt(p[0])}</text>`));
  out.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${pts.map((p, i) => `${X(xv[i]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ")}"/>`);
  pts.forEach((p, i) => out.push(`<circle cx="${X(xv[i]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3.5" fill="#1f77b4"/><text x="${X(xv[i]).toFixed(1)}" y="${(Y(p[1]) - 8).toFixed(1)}" text-anchor="middle" fill="#1f77b4">${fmt(p[1])}</text>`));
  out.push(`<text x="${M.l + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(14,${M.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  out.push("</g>");
  return out.join("\n");
}

export function renderScaling(d: ScalingData): string {
  const put = [...d.smallPut].sort((a, b) => a.peers - b.peers).map((p) => [p.peers, p.opsPerSec] as [number, number]);
  const list = [...d.list].sort((a, b) => a.objects - b.objects).map((p) => [p.objects, p.p50ms] as [number, number]);
  const beats = [...(d.heartbeat ?? [])].sort((a, b) => a.peers - b.peers).map((p) => [p.peers, p.perPeerPerSec] as [number, number]);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H + 24}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${1.5 * W}" y="${H + 16}" text-anchor="middle" fill="#555">${esc(d.title)}</text>`,
    panel(0, "small PUT (4 KiB, 64 in flight)", "peers", "ops/s", put, { log: false }),
    panel(W, "1,000-key list page", "objects in bucket (log)", "p50 ms", list, { log: true }),
    panel(2 * W, "heartbeat messages per peer", "peers", "messages/s", beats, { log: false }),
    "</svg>",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const src = process.argv[2] ?? "bench/results.json";
  const dst = process.argv[3] ?? "bench/scaling.svg";
  const r = await Bun.file(src).json();
  await Bun.write(dst, renderScaling({ title: `${r.mode} run, ${r.date}, ${r.cpu}`, smallPut: r.scaling.smallPut, list: r.scaling.list, heartbeat: r.scaling.heartbeat }));
  console.log(`wrote ${dst}`);
}
