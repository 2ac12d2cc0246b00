// One metric chart on uPlot: the mean line, the min–max band across ranks, per-rank lines,
// smoothing, log scale, x by step or time. The server sends at most ~4 points per pixel
// (M4: spikes survive); zooming fetches the visible range at full resolution; live polls
// fetch only the rows after those held. Smoothing is computed by the server over the whole
// series (the EMA of the kept points alone would be another line) and sent as "smooth".
import { get } from "./api.js";
import { h } from "./dom.js";
import { color, legend, ticks, time as fmtTime } from "./fmt.js";
import { clampZoom, extent } from "./zoom.js";

const BAND_FILL = "rgba(47,111,219,0.16)";

// what a run's charts and the compare page's share: the axes (the y axis as wide as its
// widest tick label, at least 60 px), the cursor (drag zooms, double-click resets) and the
// legend's values (``plotSeries``)
const measure = document.createElement("canvas").getContext("2d");

function axisWidth(u, vals, i) {
  if (!vals) return 60;
  const a = u.axes[i];
  measure.font = Array.isArray(a.font) ? a.font[0] : a.font;
  const text = Math.max(0, ...vals.map((v) => measure.measureText(String(v ?? "")).width));
  return Math.max(60, Math.ceil(text + a.ticks.size + a.gap + 3));
}

// wall-time ticks in the 24-hour form the rest of the pages use ("18:12:55", with the date
// where the axis spans days), not uPlot's "12/4/26 6:12pm"
function timeTicks(u, splits) {
  const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
  return splits.map((t) => {
    if (t == null) return null;
    const full = fmtTime(t);
    return span >= 86400 ? full.slice(5, 16) : span >= 600 ? full.slice(11, 16) : full.slice(11);
  });
}

export function plotAxes(time = false) {
  return [{ stroke: "#6b7385", grid: { stroke: "#eef0f4" }, ...(time ? { values: timeTicks } : {}) },
    { stroke: "#6b7385", grid: { stroke: "#eef0f4" }, size: axisWidth, values: ticks }];
}

export function plotCursor(reset) {
  return { drag: { x: true, y: false, setScale: false }, bind: { dblclick: () => () => { reset(); return null; } } };
}

// every series' legend value (``legend`` unless it has its own), and where the cursor took it
// from a row at another x than the one the legend's header shows (a series with no row at
// that step: uPlot reads its nearest row), that row's x after it: "1.978 (at 9)", so no value
// reads as another step's
export function plotSeries(series) {
  return [series[0], ...series.slice(1).map((s) => {
    const own = s.value || ((u, v) => legend(v));
    return { ...s, value: (u, v, si, i) => {
      const text = own(u, v, si, i), xs = u.data[0], at = u.cursor.idx;
      // (a nearest row that is NaN/inf says its step too: "NaN (at 199)", not a NaN here)
      if (i == null || at == null || xs[i] === xs[at] || ((v === null || v === undefined) && text === "--")) return text;
      return `${text} (at ${u.scales.x.time ? new Date(xs[i] * 1000).toLocaleTimeString() : legend(xs[i])})`;
    } };
  })];
}

export function ema(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) { out[i] = null; continue; }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

function sortedByX(cols, x) {
  const xs = cols[x];
  let ok = true;
  for (let i = 1; i < xs.length && ok; i++) if (xs[i] < xs[i - 1]) ok = false;
  if (ok) return cols;
  const idx = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b] || a - b);
  const out = {};
  for (const [k, v] of Object.entries(cols)) out[k] = idx.map((i) => v[i]);
  return out;
}

// ``cols`` (sorted by ``x``) with a row of no value at each of ``breaks`` that falls between
// two rows, on the wall-time axis only: the line and band stop there (uPlot draws a gap at a
// null) instead of crossing the time no attempt ran
function withBreaks(cols, x, breaks) {
  if (x !== "time" || !breaks || !breaks.length) return cols;
  const xs = cols[x];
  const at = []; // [row index, x of the gap]
  for (const b of [...breaks].sort((p, q) => p - q)) {
    let lo = 0, hi = xs.length; // the first row at or after b
    while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < b) lo = mid + 1; else hi = mid; }
    if (lo > 0 && lo < xs.length && (!at.length || at[at.length - 1][0] !== lo)) at.push([lo, (xs[lo - 1] + xs[lo]) / 2]);
  }
  if (!at.length) return cols;
  const out = {};
  for (const [k, v] of Object.entries(cols)) {
    if (!Array.isArray(v)) { out[k] = v; continue; }
    const copy = v.slice();
    for (let j = at.length - 1; j >= 0; j--) copy.splice(at[j][0], 0, k === x ? at[j][1] : null);
    out[k] = copy;
  }
  return out;
}

const positive = (arr) => arr.map((v) => (v === null || v <= 0 ? null : v));
// the points a log axis does not draw (values <= 0)
export const countBelow = (arr) => arr.reduce((n, v) => (v !== null && v !== undefined && v <= 0 ? n + 1 : n), 0);

// a series' rows whose value is NaN, inf or -inf (the server's "nonfinite" column), by their x
export function markMap(cols, x = "step") {
  const marks = new Map();
  if (cols.nonfinite) cols.nonfinite.forEach((m, j) => { if (m) marks.set(cols[x][j], m); });
  return marks;
}

export class MetricChart {
  // ctx: { run, key, opts: {x, logy, smooth, perRank}, ranks: [r>0 having the key],
  //        pageZoom: the page's PageZoom (zoom.js), or none: this chart zooms alone }
  constructor(ctx) {
    Object.assign(this, ctx);
    this.parts = [];      // [{rank, rows, cols}] the overview, rank 0 first
    this.zoom = null;     // {x, x0, x1, parts} while zoomed in (x: the axis it is a range of)
    this.u = null;
    this.seq = 0;         // the latest load(): an answer to an earlier one is dropped
    this.zseq = 0;        // the latest zoomTo() or reset
    this.note = h("span", { class: "sub" });
    this.box = h("div", { class: "chart-box" });
    this.problem = h("p", { class: "chart-error", role: "alert", hidden: true }); // a read that failed
    this.el = h("div", { class: "card chart", "data-key": this.key },
      h("h3", { title: this.key }, this.key, this.note), this.problem, this.box);
    window.distlog.charts[this.key] = this;
    if (this.pageZoom) this.pageZoom.charts.add(this);
  }

  // the x extent of the whole series held (the overview), on the axis shown
  extent() { return extent(...this.parts.map((p) => p.cols[this.opts.x])); }

  // zoom: a drag names the range for the whole page when the chart is on one (every chart
  // follows, and the URL says it); alone, only this chart
  select(x0, x1) { if (this.pageZoom) this.pageZoom.set(x0, x1); else this.zoomShown(x0, x1); }
  unselect() { if (this.pageZoom) this.pageZoom.clear(); else this.resetZoom(); }
  unzoom() { this.resetZoom(); }
  // another chart's drag: the same range here, if this chart is drawn and has rows in it (one
  // not drawn yet takes the page's range when it is)
  follow(z) {
    if (!this.u || !this.parts.length) return;
    if (clampZoom(z, this.extent())) this.zoomShown(z.x0, z.x1);
    else if (this.zoom) this.resetZoom();
  }

  // load() and zoomTo() for the page (scrolled into view, an option changed, a drag): a read
  // that fails is said in the chart's title, not left an unhandled rejection; the answer to a
  // later read (drawn, or its own failure) is not overwritten by an earlier one's failure
  refresh() {
    const seq = this.seq + 1; // (the number load() takes at once)
    return this.load().catch((e) => { if (seq === this.seq) this.fail(e); });
  }

  zoomShown(x0, x1) {
    const zseq = this.zseq + 1; // (the number zoomTo() takes at once)
    return this.zoomTo(x0, x1).catch((e) => { if (zseq === this.zseq) this.fail(e); });
  }

  fail(e) {
    this.el.dataset.error = e.message;
    this.problem.hidden = false;
    this.problem.textContent = `Could not read the series: ${e.message}. ` +
      (this.u ? "The chart shows what was read before; reload the page to try again." : "Reload the page to try again.");
  }

  width() { return Math.max(200, Math.floor(this.box.clientWidth || this.el.clientWidth || 420)); }

  // rank 0's table (the reduced series) unless the key is only in ranks' own tables
  wantedRanks() {
    if (this.main === false) return this.ranks;
    return [0, ...(this.opts.perRank ? this.ranks : [])];
  }

  async fetchPart(rank, extra = {}) {
    const smooth = this.opts.smooth || undefined;
    const s = await get("series", { run: this.run, key: this.key, rank: rank || undefined,
      width: this.width(), x: this.opts.x, smooth, ...extra });
    return { rank, rows: s.rows, generation: s.generation, downsampled: s.downsampled, cols: s.columns, smooth,
      skipped: s.skipped || 0, nonfinite: s.nonfinite_rows || 0 };
  }

  // the whole series again (first load, re-downsampling, a rewind); a zoom the user chose is
  // kept: its range is read again and stays on screen (not once x is another axis: a range of
  // steps is no range of times)
  // Loads overlap when the slider or an option moves while one is in flight: only the latest
  // one's answer is drawn (an earlier one, answered late, holds the old options' rows).
  async load() {
    const seq = ++this.seq;
    if (this.zoom && this.zoom.x !== this.opts.x) this.zoom = null;
    const parts = await Promise.all(this.wantedRanks().map((r) => this.fetchPart(r)));
    if (seq !== this.seq) return;
    this.parts = parts;
    // the page's zoom (the URL's, or a drag on another chart) on a chart drawn after it was
    // set; a range none of whose rows this chart holds leaves it whole
    const pz = !this.zoom && this.pageZoom && this.pageZoom.shown(this.extent());
    if (pz) this.zoom = { x: this.opts.x, x0: pz.x0, x1: pz.x1, parts: null };
    const z = this.zoom;
    if (!z) { this.draw(true); return; }
    const zparts = await Promise.all(this.wantedRanks().map((r) => this.fetchPart(r, { x0: z.x0, x1: z.x1 })));
    if (seq !== this.seq || this.zoom !== z) return; // read again, reset or zoomed elsewhere meanwhile
    z.parts = zparts;
    this.draw(false);
  }

  // live: append rows committed since the last fetch (lengths: {rank: {key: rows}}); a series
  // that shrank, or whose rows the server read again (another generation: a resumed attempt
  // rewound it), is loaded again instead
  async poll(lengths) {
    let grew = false;
    const seq = this.seq; // a load() since: its rows replace these, the answer is dropped
    for (const p of this.parts) {
      const n = (lengths[String(p.rank)] || {})[this.key] || 0;
      if (n === p.rows || !n) continue; // none now: reloaded once it has rows again
      if (n < p.rows) { await this.load(); return; }
      const s = await get("series", { run: this.run, key: this.key, rank: p.rank || undefined,
        width: this.width(), x: this.opts.x, smooth: p.smooth, start: p.rows });
      if (seq !== this.seq) return;
      if (s.generation !== p.generation) { await this.load(); return; }
      // another set of columns (a min–max band appeared or went): the held rows have none of
      // it, so appending would misalign the columns; read the whole series again
      // ("nonfinite" comes only with rows that have such a value: filled with nulls)
      const names = (cols) => Object.keys(cols).filter((c) => c !== "nonfinite").sort().join();
      if (names(p.cols) !== names(s.columns)) { await this.load(); return; }
      const held = p.cols.step.length, added = s.columns.step.length;
      if (p.cols.nonfinite || s.columns.nonfinite) {
        p.cols.nonfinite = (p.cols.nonfinite || new Array(held).fill(null))
          .concat(s.columns.nonfinite || new Array(added).fill(null));
      }
      for (const [c, v] of Object.entries(s.columns)) if (c !== "nonfinite") p.cols[c] = (p.cols[c] || []).concat(v);
      p.rows = s.rows;
      p.skipped = (p.skipped || 0) + (s.skipped || 0);
      p.nonfinite = (p.nonfinite || 0) + (s.nonfinite_rows || 0);
      grew = true;
      if (p.cols.step.length > 8 * this.width()) { await this.load(); return; } // re-downsample
    }
    if (grew && !this.zoom) this.draw(true); // the x range follows the new rows
    else if (grew) this.describe(); // zoomed: the user's range stays; the counts follow
  }

  data(parts) {
    const x = this.opts.x;
    const sorted = parts.map((p) => withBreaks(sortedByX(p.cols, x), x, this.breaks));
    const smooth = this.opts.smooth;
    // the server's EMA of the whole series; the points' own EMA only until a reload with
    // this weight answers (the slider moved)
    const smoothed = (p, c) => (p.smooth === smooth && c.smooth ? c.smooth : ema(c.value, smooth));
    // log y draws only values above 0: how many were not drawn (the title says so)
    const fix = this.opts.logy ? positive : (a) => a;
    // (of the value lines: the min–max band's are not counted)
    const line = (a) => { if (this.opts.logy) this.belowLog += countBelow(a); return fix(a); };
    this.belowLog = 0;
    const series = [{ label: x }];
    const bands = [];
    let data;
    this.marks = null;
    this.skipped = null;
    if (sorted.length === 1) {
      const c = sorted[0];
      data = [c[x]];
      const hasBand = c.min && c.max;
      if (hasBand) {
        data.push(fix(c.min), fix(c.max));
        series.push({ label: "min", stroke: "transparent", points: { show: false }, width: 0 },
          { label: "max", stroke: "transparent", points: { show: false }, width: 0 });
        bands.push({ series: [2, 1], fill: BAND_FILL });
      }
      const label = parts[0].rank ? `rank ${parts[0].rank}` : "value";
      data.push(line(c.value));
      // a row whose value is no number reads "NaN", "inf" or "-inf" (a gap in the line; "--"
      // is a step with no row). The marks of the rows drawn now: a zoom or a live poll only
      // gives the plot new data (same labels), so a closure over these rows' marks would
      // name other rows
      this.marks = c.nonfinite;
      const self = this;
      series.push({ label: smooth ? `${label} (raw)` : label, stroke: smooth ? "rgba(47,111,219,0.3)" : color(0),
        width: smooth ? 1 : 1.5, spanGaps: false, points: { show: c[x].length < 60 },
        value: (u, v, si, i) => (self.marks && i != null && self.marks[i] ? self.marks[i] : legend(v)) });
      if (smooth) {
        data.push(fix(smoothed(parts[0], c)));
        series.push({ label: `${label} (smoothed)`, stroke: color(0), width: 2, points: { show: false } });
      }
      this.skippedMarks(data, series, c, fix);
    } else {
      const tables = sorted.map((c, i) => [c[x], smooth ? smoothed(parts[i], c) : c.value]);
      const first = sorted[0];
      if (first.min && first.max) tables.unshift([first[x], first.min], [first[x], first.max]);
      const joined = uPlot.join(tables);
      data = [joined[0]];
      let idx = 1;
      if (first.min && first.max) {
        data.push(fix(joined[1]), fix(joined[2]));
        series.push({ label: "min", stroke: "transparent", points: { show: false } },
          { label: "max", stroke: "transparent", points: { show: false } });
        bands.push({ series: [2, 1], fill: BAND_FILL });
        idx = 3;
      }
      // a rank's NaN is null (a gap, as on the single line); a step only other ranks have is
      // undefined after the join (uPlot draws across it: the rank's own rows are joined)
      // a rank's NaN/inf named in the legend, found by its x (the join moved its rows); kept
      // per draw, as the single line's marks are
      this.rankMarks = sorted.map((c) => (smooth ? new Map() : markMap(c, x)));
      const self = this;
      // the reduced series' rows whose statistics left out NaN/inf values (at its own x: the
      // join keeps every x of every part, so its points are placed by x)
      if (!parts[0].rank && sorted[0].skipped) {
        const at = new Map(sorted[0][x].map((v, j) => [v, j]));
        this.skippedMarks(data, series, sorted[0], fix, joined[0].map((v) => (at.has(v) ? at.get(v) : -1)));
      }
      sorted.forEach((c, i) => {
        const vals = joined[idx + i];
        data.push(line(vals));
        series.push({ label: `rank ${parts[i].rank}`, stroke: color(parts[i].rank), width: 1.5, spanGaps: false,
          points: { show: false },
          value: (u, v, si, j) => {
            const marks = self.rankMarks[i], at = j == null ? undefined : u.data[0][j];
            return v == null && marks && marks.has(at) ? marks.get(at) : legend(v);
          } });
      });
    }
    return { data, series, bands };
  }

  // red points where a row's statistics left out NaN/inf values (a flush window where one
  // value went NaN: its mean is a number and the line looks healthy), and how many in the
  // legend. ``own``: rows of the joined x axis, each its index in ``c`` (-1: none)
  skippedMarks(data, series, c, fix, own = null) {
    if (!c.skipped) return;
    const counts = own ? own.map((j) => (j < 0 ? 0 : c.skipped[j])) : c.skipped;
    const ys = own ? own.map((j) => (j < 0 ? null : c.value[j])) : c.value;
    this.skipped = counts;
    const self = this;
    data.push(fix(ys.map((v, j) => (counts[j] > 0 ? v : null))));
    series.push({ label: "NaN/inf left out", stroke: "#c62828", width: 0,
      paths: () => null, points: { show: true, size: 8, stroke: "#c62828", fill: "#c62828" },
      value: (u, v, si, i) => (self.skipped && i != null && self.skipped[i] ? `${self.skipped[i]} value(s)` : "–") });
  }

  draw(resetScales) {
    const zoomed = this.zoom && this.zoom.parts; // (null while the zoomed rows are read)
    const parts = zoomed ? this.zoom.parts : this.parts;
    if (!parts.length || !parts[0].cols.step.length) { this.note.textContent = "no rows yet"; return; }
    // rows read for another x axis (log y ticked while the read for the new axis is in
    // flight): that read draws them once it answers
    if (parts.some((p) => !p.cols[this.opts.x])) return;
    const { data, series, bands } = this.data(parts);
    const sig = JSON.stringify([series.map((s) => s.label), this.opts.logy, this.opts.x]);
    if (this.u && sig === this.sig) {
      this.u.setData(data, resetScales);
    } else {
      if (this.u) this.u.destroy();
      this.sig = sig;
      this.u = new uPlot(this.options(series, bands), data, this.box);
    }
    // zoomed: exactly the chosen range (the rows read stop inside it; a new plot, as after
    // log y, would fit the axis to them)
    if (zoomed) this.u.setScale("x", { min: this.zoom.x0, max: this.zoom.x1 });
    this.el.dataset.points = String(data[0].length);
    this.el.dataset.series = String(series.length - 1);
    this.describe();
    const hooks = window.distlog;
    hooks.drawn = (hooks.drawn || 0) + 1;
    hooks.firstDraw = hooks.firstDraw || {};
    if (!(this.key in hooks.firstDraw)) hooks.firstDraw[this.key] = performance.now(); // for the benchmark
  }

  // the title's counts and the data-* attributes tests read (also after a live poll that
  // drew nothing: zoomed, the plot keeps the user's range)
  describe() {
    const p0 = this.parts[0];
    if (!p0) return;
    const xs = p0.cols.step, z = this.zoom && this.zoom.parts ? this.zoom : null;
    delete this.el.dataset.error;
    this.problem.hidden = true;
    this.el.dataset.lastStep = String(xs[xs.length - 1]);
    this.el.dataset.rows = String(p0.rows);
    if (z) this.el.dataset.zoom = `${z.x0}-${z.x1}`;
    else delete this.el.dataset.zoom;
    // a log axis draws only values above 0: one with none is blank, and says why
    const blank = this.opts.logy && this.u && !this.u.data.slice(1).some((c) => c.some((v) => v > 0));
    const below = !blank && this.opts.logy ? this.belowLog || 0 : 0;
    const skipped = p0.rank ? 0 : p0.skipped || 0;
    const bad = z && z.parts ? z.parts[0].nonfinite || 0 : p0.nonfinite || 0; // (rows of the range, zoomed)
    this.el.dataset.skipped = String(skipped);
    this.el.dataset.nonfinite = String(bad);
    const plural = (n, what) => `${n.toLocaleString()} ${what}${n === 1 ? "" : "s"}`;
    this.note.textContent = `${p0.rows.toLocaleString()} rows` + (p0.downsampled && !z ? " · downsampled" : "") +
      (z ? " · zoomed (double-click to reset)" : "") + (blank ? " · log y: no value above 0 to draw" : "") +
      (below ? ` · log y: ${plural(below, "point")} ≤ 0 not drawn` : "") +
      (bad ? ` · ${plural(bad, "row")} NaN/inf (gaps)` : "") +
      (skipped ? ` · ${plural(skipped, "NaN/inf value")} left out of the statistics (red points)` : "");
  }

  options(series, bands) {
    const self = this;
    return {
      width: this.width(), height: 220, series: plotSeries(series), bands,
      scales: { x: { time: this.opts.x === "time" }, y: this.opts.logy ? { distr: 3 } : {} },
      axes: plotAxes(this.opts.x === "time"),
      legend: { live: true },
      cursor: plotCursor(() => self.unselect()),
      hooks: { setSelect: [(u) => {
        if (u.select.width < 3) return;
        const x0 = u.posToVal(u.select.left, "x"), x1 = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, width: 0 }, false);
        self.select(x0, x1);
      }] },
    };
  }

  async zoomTo(x0, x1) {
    const x = this.opts.x, seq = this.seq, zseq = ++this.zseq;
    const parts = await Promise.all(this.wantedRanks().map((r) => this.fetchPart(r, { x0, x1 })));
    if (this.opts.x !== x || zseq !== this.zseq) return; // the axis changed, or reset or zoomed again
    if (seq !== this.seq) return this.zoomTo(x0, x1); // options changed (smoothing): read it again
    this.zoom = { x, x0, x1, parts };
    this.draw(false);
  }

  resetZoom() {
    this.zseq++; // a zoom still being read is not shown
    if (!this.zoom) { this.u && this.u.setData(this.u.data, true); return; }
    this.zoom = null;
    this.draw(true);
  }

  resize() { if (this.u) this.u.setSize({ width: this.width(), height: 220 }); }

  values() { // for tests and debugging: what the chart holds, by series label
    const out = { x: this.u ? Array.from(this.u.data[0]) : [] };
    if (this.u) this.u.series.forEach((s, i) => { if (i) out[s.label] = Array.from(this.u.data[i]); });
    return out;
  }

  dispose() {
    this.seq++; this.zseq++; // a series or a zoom still being read is not drawn (in a page left)
    if (this.pageZoom) this.pageZoom.charts.delete(this);
    if (this.u) this.u.destroy();
    this.u = null;
  }
}
