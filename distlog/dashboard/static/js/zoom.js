// A page's chart zoom: one x range for every chart of the page (they share the x axis), kept
// in the URL as zoom=LO-HI (e.g. zoom=100-2500, zoom=-5--2.5) with the rest of the view
// (history.replaceState, see url.js), so a reload, Back and a copied link show the same range.
// A value that is no range is dropped from the URL; a range stays as given (a link to a live
// run's range it has not reached yet still holds), and a chart with no row in it shows its
// whole data (it does not decide for the others: one chart's sparse rows must not cut it).

const NUM = "[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:e[-+]?\\d+)?";
const RANGE = new RegExp(`^\\s*(${NUM})\\s*[-~:,]\\s*(${NUM})\\s*$`, "i");

// "100-2500" -> {x0: 100, x1: 2500}; reversed ends are swapped; anything else -> null
export function parseZoom(text) {
  if (typeof text !== "string" || !text) return null;
  const m = RANGE.exec(text);
  if (!m) return null;
  let x0 = Number(m[1]), x1 = Number(m[2]);
  if (!Number.isFinite(x0) || !Number.isFinite(x1) || x0 === x1) return null;
  if (x0 > x1) [x0, x1] = [x1, x0];
  return { x0, x1 };
}

// the ends rounded to a thousandth of the range's width (finer than a pixel), so the URL
// stays short; integers for any range of 1000 or wider
export function roundZoom(x0, x1) {
  if (x0 > x1) [x0, x1] = [x1, x0];
  const digits = Math.min(12, Math.max(0, Math.ceil(3 - Math.log10(x1 - x0))));
  const r = (v) => Number(v.toFixed(digits));
  const a = r(x0), b = r(x1);
  return a < b ? { x0: a, x1: b } : { x0, x1 };
}

const text = (v) => { // the shortest that reads back the same; no exponent (1e-7: 0.0000001)
  let s = String(v);
  if (/e/i.test(s) && Math.abs(v) < 1e21) s = v.toFixed(20).replace(/\.?0+$/, "");
  return s === "-0" ? "0" : s;
};
export const formatZoom = (z) => (z ? `${text(z.x0)}-${text(z.x1)}` : null);

// the x extent of columns (nulls skipped): [lo, hi] or null
export function extent(...columns) {
  let lo = Infinity, hi = -Infinity;
  for (const xs of columns) for (const v of xs || []) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

// the part of z inside [lo, hi]; null when none of it is (or only one point)
export function clampZoom(z, ext) {
  if (!z || !ext) return null;
  const x0 = Math.max(z.x0, ext[0]), x1 = Math.min(z.x1, ext[1]);
  return x0 < x1 ? { x0, x1 } : null;
}

// The zoom shared by a page's charts. ``write(text|null)`` puts it in the URL; a chart
// registers {follow(range), unzoom()} and asks ``shown(ext)`` which range to show when it is
// drawn (a chart drawn after the zoom was set: scrolled into view, drawn again).
export class PageZoom {
  constructor(urlText, write) {
    this.range = parseZoom(urlText);
    this.write = write;
    this.charts = new Set();
    // malformed: not kept in the URL either; "200-100" or "100.0-200" reads "100-200"
    if (urlText && urlText !== this.text()) write(this.text());
  }

  text() { return formatZoom(this.range); }

  // the range a chart whose data spans ext shows: the page's, on every chart alike (synced),
  // or null (its whole data) for a chart with no row in it
  shown(ext) {
    return this.range && clampZoom(this.range, ext) ? this.range : null;
  }

  // a drag on one chart: every chart shows the range
  set(x0, x1) {
    this.range = roundZoom(x0, x1);
    this.write(this.text());
    for (const c of this.charts) c.follow(this.range);
  }

  // double-click on any chart, or the x axis changed: every chart shows its whole data
  clear({ silent = false } = {}) {
    const had = this.range !== null;
    this.range = null;
    if (had || !silent) this.write(null);
    if (!silent) for (const c of this.charts) c.unzoom();
  }
}
