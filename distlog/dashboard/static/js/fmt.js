// Formatting and colours shared by the pages.
export const PALETTE = ["#2f6fdb", "#e5533d", "#1e9e5a", "#9a4fd1", "#d88a0b", "#0b9fb0", "#d6408f",
  "#6b7a1f", "#7a5230", "#3c4fa0", "#a83232", "#23806b"];
export const color = (i) => PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];

export function time(t) {
  if (t === null || t === undefined) return "–";
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function clock(t) {
  const d = new Date(t * 1000);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
  if (d) return `${d}d ${h % 24}h`;
  if (h) return `${h}h ${m % 60}m`;
  return `${m}m ${Math.round(s % 60)}s`;
}

export function value(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    // six significant digits, no trailing zeros: 3e-4 reads "3e-4" (it read "3.000e-4"), and
    // lr 1.2345e-4 is told from 1.2346e-4 (four digits were kept)
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? Number(v.toPrecision(6)).toExponential() : String(+v.toPrecision(6));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// a param's value as a person reads it next to others: null is the None a run set (not '–',
// which the pages show where there is no value at all)
export const param = (v) => (v === null ? "None" : value(v));

// a chart legend's value: uPlot's default keeps three decimals, so a learning rate of 2.5e-5
// read "0" and 0.0015 read "0.002"; small numbers in exponent form, others to six digits
// (from a million up, the whole number with up to three decimals, as uPlot shows it)
export function legend(v) {
  if (v === null || v === undefined) return "--";
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && a < 1e-3) return Number(v.toPrecision(5)).toExponential();
  if (a < 1e6) return String(Number(v.toPrecision(6)));
  return v.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

// a y axis' tick labels: uPlot passes null for a tick it leaves unlabelled (a log axis'
// minor ticks), which is no value to show ('--' is the legend's mark for that). From a
// million up in exponent form ("1.5e6": the legend's "1,500,000" is wider than an axis), with
// as many digits as tell the ticks apart (a counter near 1e9 that moves by tens)
export function ticks(u, vals) {
  const big = vals.some((v) => v !== null && v !== undefined && Math.abs(v) >= 1e6);
  if (!big) return vals.map((v) => (v === null || v === undefined ? "" : legend(v)));
  const shown = vals.filter((v) => v !== null && v !== undefined);
  for (let digits = 2; ; digits++) {
    const text = (v) => (v === null || v === undefined ? ""
      : Math.abs(v) < 1e6 ? legend(v) : Number(v.toPrecision(digits)).toExponential().replace("e+", "e"));
    if (digits >= 15 || new Set(shown.map(text)).size === new Set(shown).size) return vals.map(text);
  }
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const u = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
}

export function statusBadge(h, status) {
  return h("span", { class: `badge status-${status}`, text: status });
}

// the metrics whose value went NaN or ±inf, from their first such step (``nonfinite_from``:
// a run that diverged looks "completed" otherwise), first to go first
export function nonfiniteItems(from) {
  return Object.entries(from || {}).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
    .map(([k, step]) => `${k} from step ${step}`);
}

// a badge beside the status of such a run, naming them (null: none)
export function nonfiniteBadge(h, from) {
  const items = nonfiniteItems(from);
  if (!items.length) return null;
  return h("span", { class: "badge nonfinite-badge", text: "NaN/inf", title: `NaN/inf values: ${items.join(", ")}` });
}
