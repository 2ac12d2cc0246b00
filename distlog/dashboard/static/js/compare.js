// Several runs: every metric overlaid (one colour per run), or grouped by a param with the
// mean across the group's runs (seeds) and a ± std band.
import { get } from "./api.js";
import { clear, h } from "./dom.js";
import { countBelow, markMap, plotAxes, plotCursor, plotSeries } from "./chart.js";
import { PALETTE, color, legend as legendValue, param, value as fmtValue } from "./fmt.js";
import { Poller } from "./live.js";
import { KeyFilter, setCrumbs } from "./ui.js";
import { setParams } from "./url.js";
import { PageZoom, clampZoom, extent } from "./zoom.js";

// zoom: the page's PageZoom: a drag on any chart zooms every chart (same steps), a
// double-click on any shows them whole; the range is in the URL (zoom=LO-HI)
function plot(box, data, series, bands, opts, zoom) {
  series = plotSeries([{ label: opts.x, ...series[0] }, ...series.slice(1)]); // (x: "step", not uPlot's "Value")
  const u = new uPlot({ width: Math.max(300, box.clientWidth || 420), height: 240, series, bands,
    legend: { show: true }, // grouped: each group's mean ± std at the cursor (its band rows hidden below)
    scales: { x: { time: opts.x === "time" }, y: opts.logy ? { distr: 3 } : {} },
    axes: plotAxes(opts.x === "time"),
    cursor: plotCursor(() => zoom.clear()),
    hooks: { setSelect: [(u) => {
      if (u.select.width < 3) return;
      const x0 = u.posToVal(u.select.left, "x"), x1 = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({ left: 0, width: 0 }, false);
      zoom.set(x0, x1);
    }] } }, data, box);
  // a band's −std/+std series: no legend row of their own (the mean's row gives mean ± std)
  u.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
    if (i && /std$/.test(series[i].label || "")) row.style.display = "none";
  });
  return u;
}

// A plot holds its overview (p.over: every run's series downsampled to the chart's width, or
// the groups' bands over all steps) and, zoomed, the rows of the range read again at full
// resolution (p.zoom: {x0, x1, data}), as a run's charts do: the server reads the range
// (x0/x1) and downsamples only what is in it. Until those rows come, the overview is shown
// at the range.
const BIN_CAP = 8192; // the server's most bins (MAX_WIDTH)

const NOT_SET = "(not set)"; // the group of runs without the param

// the title's word on the runs' NaN/inf: rows that are NaN/inf (gaps in their lines), and
// rows whose statistics left such values out (their lines look healthy there)
function partsNote(parts) {
  const bad = parts.filter((p) => p.bad).map((p) => `${p.run} (${p.bad} row${p.bad === 1 ? "" : "s"})`);
  const skipped = parts.filter((p) => p.skipped).map((p) => `${p.run} (${p.skipped})`);
  return [bad.length ? `NaN/inf values: ${bad.join(", ")}` : "",
    skipped.length ? `NaN/inf left out of the statistics: ${skipped.join(", ")}` : ""].filter(Boolean).join(" · ");
}

export async function comparePage(view, params) {
  let runs = [...new Set(params.getAll("run"))];
  setCrumbs({ text: "runs", href: "#/" }, { text: `compare ${runs.length} runs` });
  if (!runs.length) { view.append(h("div", { class: "empty", text: "Pick runs in the runs table, then Compare." })); return {}; }
  const meta = await get("keys", { run: runs });
  if (!view.isConnected) return {}; // (the user went on while it was read: nothing of it is shown)
  // a link naming a run deleted or renamed since: the others are drawn, and the page says so
  const unknown = meta.unknown || [];
  runs = runs.filter((r) => !unknown.includes(r));
  // a run without the param differs from one that set it to None (JSON null)
  const varying = [...new Set(Object.values(meta.params).flatMap(Object.keys))].filter((k) =>
    new Set(runs.map((r) => (k in (meta.params[r] || {}) ? JSON.stringify(meta.params[r][k]) : "missing"))).size > 1).sort();
  const opts = { x: "step", logy: params.get("logy") === "1", smooth: Number(params.get("smooth") || 0),
    group: params.get("group") || "" };
  // runs whose lines are hidden (hide=<run> for each, as run= names it)
  const hidden = new Set(params.getAll("hide").filter((r) => runs.includes(r)));
  // the view in the URL: Back, a reload and a copied link draw the same charts
  const zoom = new PageZoom(params.get("zoom"), (text) => setParams("compare", { zoom: text }));
  const quiet = (done) => done.catch((e) => console.warn("zoom failed", e)); // (the overview stays, at the range)
  zoom.charts = { [Symbol.iterator]: () => plots.map((p) => ({ follow: (z) => quiet(showZoom(p, z)),
    unzoom: () => quiet(showZoom(p, null)) }))[Symbol.iterator]() };
  const keep = () => setParams("compare", { group: opts.group, logy: opts.logy, smooth: opts.smooth || null,
    keys: keyFilter.value, zoom: zoom.text(), hide: runs.filter((r) => hidden.has(r)) });
  // a colour per run: the palette's while it lasts, else evenly spread hues (a sweep of 60 runs
  // drew every 13th run in the first run's colour)
  const runColor = (i) => (runs.length <= PALETTE.length ? color(i) : `hsl(${Math.round((i * 137.508) % 360)}, 70%, 42%)`);
  const legend = h("div", { class: "legend-runs", id: "compare-legend" });
  runs.forEach((r, i) => legend.append(h("a", { class: "rank-chip", href: `#/run?path=${encodeURIComponent(r)}` },
    h("span", { class: "swatch", style: { background: runColor(i) } }), r,
    ...(meta.damaged && meta.damaged[r] ? [h("span", { class: "sub run-damaged", text: ` (${meta.damaged[r].join("; ")})` })] : []))));
  const group = h("select", { id: "group-by", onchange: () => { opts.group = group.value; keep(); drawAll(); } },
    h("option", { value: "", text: "overlay runs" }), ...varying.map((k) => h("option", { value: k, text: `group by ${k} (mean ± std)` })));
  group.value = opts.group;
  // the key filter (keys=, as on a run's charts) is in the URL at each key; the charts are
  // drawn again (every one read anew) once typing rests, not at every key
  // drawn again (every one read anew) once typing rests, not at every key; a pattern that is no
  // regex draws nothing again: the charts of the last valid one stay, and the box says why
  const keyFilter = new KeyFilter("compare-keys", params.get("keys") || "", { typed: () => keep(), apply: () => drawAll(), wait: 300 });
  const logBox = h("input", { type: "checkbox", checked: opts.logy, onchange: () => { opts.logy = logBox.checked; keep(); drawAll(); } });
  const smooth = h("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: opts.smooth,
    oninput: () => { smoothLabel.textContent = Number(smooth.value).toFixed(2); },
    onchange: () => { opts.smooth = Number(smooth.value); keep(); drawAll(); } });
  const smoothLabel = h("span", { class: "muted", id: "smoothing-value", text: opts.smooth.toFixed(2) }); // as on a run's charts
  const grid = h("div", { class: "charts", id: "compare-charts" });
  if (unknown.length) {
    legend.append(h("span", { class: "rank-chip run-damaged", id: "compare-unknown",
      text: `not under this root (deleted or renamed?): ${unknown.join(", ")}` }));
  }
  const toolbar = h("div", { class: "toolbar" }, group, keyFilter.el, h("label", {}, logBox, "log y"),
    h("label", {}, "smoothing", smooth, smoothLabel));
  view.append(legend, toolbar);
  const plots = [];
  const boxes = new Map(); // run -> its row's show box
  const table = runsTable();
  if (table) {
    // the table names every run in its colour: the chips stay (below the toolbar, the view's
    // first element visible) only to say what is wrong with some (a damaged record, a run no
    // longer under the root)
    toolbar.after(legend);
    view.append(table);
    const chipsNeeded = unknown.length || Object.keys(meta.damaged || {}).length;
    if (!chipsNeeded) legend.classList.add("in-table");
  }
  view.append(grid);
  window.distlog.compare = { plots, zoom };

  // The runs compared, one row each in its line's colour: the params that differ between them
  // (a sweep's), and a box that shows or hides the run's line in every chart (hide= in the
  // URL); a row under the pointer brings its run's line forward in every chart (the others
  // dimmed). Overlaid runs only: grouped charts draw groups, not runs.
  function runsTable() {
    if (runs.length < 2) return null;
    boxes.clear();
    const shownCols = varying.slice(0, 16);
    const head = h("tr", {}, h("th", { title: "show the run's line" }, "show"), h("th", {}, "run"), h("th", {}, "status"),
      ...shownCols.map((k) => h("th", { title: k }, k)));
    const rows = runs.map((r, i) => {
      const p = meta.params[r] || {};
      const box = h("input", { type: "checkbox", checked: !hidden.has(r), "aria-label": `show ${r}`,
        onchange: () => { if (box.checked) hidden.delete(r); else hidden.add(r); keep(); showRuns(); } });
      boxes.set(r, box);
      return h("tr", { "data-run": r, onmouseenter: () => focusRun(i), onmouseleave: () => focusRun(null) },
        h("td", {}, box),
        h("td", {}, h("span", { class: "swatch", style: { background: runColor(i) } }), " ",
          h("a", { href: `#/run?path=${encodeURIComponent(r)}`, text: r })),
        h("td", { text: meta.status[r] || "" }),
        ...shownCols.map((k) => h("td", { class: typeof p[k] === "number" ? "num" : "", text: k in p ? fmtValue(p[k]) : "–" })));
    });
    const more = varying.length > shownCols.length ? ` (${shownCols.length} of ${varying.length} shown)` : "";
    const caption = h("div", { class: "sub" }, varying.length ? `params that differ between these runs${more}` :
      "these runs have the same params", h("span", { class: "grouped-note", text:
        " · grouped: the bands are of every run; show and hide the lines when the runs are overlaid" }));
    return h("div", { class: "table-wrap", id: "compare-runs-wrap" }, caption,
      h("table", { class: "grid", id: "compare-runs" }, h("thead", {}, head), h("tbody", {}, ...rows)));
  }
  // the runs' series in an overlaid chart: run i is series 1 + its position in the chart's runs
  function seriesOf(p, i) {
    const j = p.runs ? p.runs.indexOf(runs[i]) : -1;
    return j < 0 ? null : j + 1;
  }
  function focusRun(i) {
    if (opts.group || (i !== null && hidden.has(runs[i]))) return; // (a hidden line: nothing to bring forward)
    for (const p of plots) {
      const si = i === null ? null : seriesOf(p, i);
      if (i !== null && si === null) continue;
      p.u.setSeries(si, { focus: true });
    }
  }
  // (showing: the lines set by the boxes; a click on a chart's legend entry is a box's click)
  let showing = false;
  function showRuns(only) {
    if (opts.group) return;
    showing = true;
    try {
      for (const p of only ? [only] : plots) {
        runs.forEach((r, i) => {
          const si = seriesOf(p, i);
          if (si !== null && p.u.series[si].show === hidden.has(r)) p.u.setSeries(si, { show: !hidden.has(r) });
        });
      }
    } finally {
      showing = false;
    }
  }
  function legendToggled(p, si, o) {
    if (showing || o.show == null || opts.group || !p.runs) return;
    const r = p.runs[si - 1];
    if (r === undefined) return;
    if (o.show) hidden.delete(r); else hidden.add(r);
    const box = boxes.get(r);
    if (box) box.checked = o.show;
    keep();
    showRuns();
  }

  // the range of the plot's overview (a zoomed plot's u.data holds only the range)
  const overExtent = (p) => extent(p.over[0]);

  // a plot shows the page's range when its overview has rows in it, else all of its rows
  function showZoom(p, range) {
    const z = range && clampZoom(range, overExtent(p)) ? range : null;
    const had = p.zoomed;
    p.zoomed = !!z;
    if (!z) { if (had || p.zoom) zoomOut(p); else p.zseq++; return Promise.resolve(); }
    if (!p.zoom) p.u.setScale("x", { min: z.x0, max: z.x1 }); // at once; sharper when the rows come
    return zoomIn(p, z);
  }

  // the rows of the range, every run's (or every group's), at full resolution
  async function zoomIn(p, z) {
    const my = gen, seq = ++p.zseq;
    const data = await (opts.group ? zoomedBands(p, z) : zoomedOverlay(p, z));
    if (my !== gen || seq !== p.zseq) return; // drawn again, reset or zoomed elsewhere meanwhile
    p.zoom = { x0: z.x0, x1: z.x1, data };
    p.u.setData(data, false);
    p.u.setScale("x", { min: z.x0, max: z.x1 }); // exactly the range (its rows reach one step past it)
    p.card.dataset.zoom = `${z.x0}-${z.x1}`;
  }

  // a log axis draws only values above 0: a chart with none is blank, and says why; one
  // with some says how many points it leaves out (the lines: a group's mean, not its band)
  function logNote(p) {
    const lines = opts.group ? p.over.filter((_, i) => i && i % 3 === 0) : p.over.slice(1);
    const blank = opts.logy && !lines.some((c) => c.some((v) => v > 0));
    const below = opts.logy && !blank ? lines.reduce((n, c) => n + countBelow(c), 0) : 0;
    if (p.parts) p.skipped = partsNote(p.parts);
    if (p.note) p.note.textContent = [blank ? "log y: no value above 0 to draw" : "",
      below ? `log y: ${below} point${below === 1 ? "" : "s"} ≤ 0 not drawn` : "", p.skipped || ""].filter(Boolean).join(" · ");
  }

  function zoomOut(p) {
    p.zseq++; // a zoom still being read is not shown
    p.zoom = null;
    delete p.card.dataset.zoom;
    p.u.setData(p.over, true); // (also when only the scale was zoomed: back to the whole data)
  }

  // a live update of the overview: drawn at once unless zoomed (the range's rows are read again)
  // (a plot with no rows in the range yet may have some now: it zooms then)
  async function update(p, over, rangeMayChange) {
    p.over = over;
    logNote(p);
    if (!zoom.range) { p.u.setData(over, true); return; }
    if (p.zoomed) { if (rangeMayChange) await zoomIn(p, zoom.range); return; }
    p.u.setData(over, true);
    await showZoom(p, zoom.range);
  }
  // every drawAll() (an option changed) is a new generation of charts: an answer asked for an
  // earlier one (its smoothing, its grouping) is dropped instead of drawn or appended
  let gen = 0;

  // smoothed: the server's EMA of each whole series ("smooth"), not of the points sent
  const cols = () => (opts.smooth ? ["step", "value", "smooth"] : ["step", "value"]);
  const overlayData = (parts) => {
    const joined = uPlot.join(parts.map((p) => [p.cols.step, opts.smooth ? p.cols.smooth : p.cols.value]));
    return [joined[0], ...parts.map((_, j) => joined[j + 1])];
  };

  async function overlay(key, box, my) {
    const width = box.clientWidth || 420;
    const res = await get("compare", { run: runs, key, width, smooth: opts.smooth || undefined });
    // drawn again meanwhile (another smoothing): these rows may lack the smoothed column, and
    // a chart of them would be drawn (uPlot draws in a microtask) before drawAll drops it
    if (my !== gen) return null;
    const have = res.series.map((s, i) => [s, i]).filter(([s]) => !s.missing);
    const parts = have.map(([s]) => ({ run: s.run, rows: s.rows, generation: s.generation, cols: s.columns,
      skipped: s.skipped || 0, bad: s.nonfinite_rows || 0, marks: markMap(s.columns) }));
    // a run's NaN is null: a gap (steps only other runs have are undefined: drawn across),
    // named "NaN", "inf" or "-inf" in the legend, found by its step (the join moved its rows;
    // zoomed, the range's rows are marked too); "--" is a step with no row
    // smoothed: the lines (and the legend's numbers) are the EMA, and say so
    const series = [{}, ...have.map(([s, i], j) => ({ label: opts.smooth ? `${s.run} (smoothed)` : s.run, stroke: runColor(i),
      width: 1.5, spanGaps: false, points: { show: false },
      value: (u, v, si, k) => {
        const at = k == null ? undefined : u.data[0][k], m = parts[j].marks;
        return v == null && m.has(at) ? m.get(at) : legendValue(v);
      } }))];
    const over = overlayData(parts);
    return { u: plot(box, over, series, [], opts, zoom), over, key, runs: parts.map((p) => p.run), parts, width, zseq: 0,
      skipped: partsNote(parts) };
  }

  // every run's rows of the range (one row either side), downsampled only when the range has
  // more than 4 rows a pixel; a run with none there has an empty part (its series stays)
  async function zoomedOverlay(p, z) {
    const res = await get("compare", { run: p.runs, key: p.key, width: p.width, smooth: opts.smooth || undefined,
      x0: z.x0, x1: z.x1 });
    const by = new Map(res.series.filter((s) => !s.missing).map((s) => [s.run, s.columns]));
    for (const part of p.parts) { // (the range's rows at full resolution: their NaN/inf too)
      const cols = by.get(part.run);
      if (cols) for (const [x, m] of markMap(cols)) part.marks.set(x, m);
    }
    const none = { step: [], value: [], smooth: [] };
    return overlayData(p.runs.map((run) => ({ cols: by.get(run) || none })));
  }

  // live: runs still being written add their new rows (overlay) or refresh the bands (grouped).
  // Every run is read again now and then (every 8th poll, 16 s; window.distlog.recheckPolls:
  // tests use less), running or not: one that ended when the page opened may be resumed (a
  // requeued job's next attempt) or appended to (an evaluation after training)
  let polls = 0;
  // per run: its lengths when a poll last took them in (a poll that fails or is overtaken by
  // a redraw leaves them, so the next one reads the same change again)
  const seen = {};
  async function poll() {
    const every = (window.distlog && window.distlog.recheckPolls) || 8;
    const all = ++polls % every === 0;
    const checked = runs.filter((r) => all || meta.status[r] === "running");
    if (!checked.length) return;
    const lengths = {}, now = {};
    for (const r of checked) {
      const st = await get("status", { run: r });
      meta.status[r] = st.status;
      now[r] = JSON.stringify(st.lengths["0"] || {});
      if (now[r] !== seen[r]) lengths[r] = st.lengths["0"] || {};
    }
    if (await follow(lengths)) Object.assign(seen, now);
  }

  // the charts take in the runs' new lengths: whether they all did (not overtaken by a redraw)
  async function follow(lengths) {
    const my = gen;
    for (const p of [...plots]) {
      if (my !== gen) return false;
      if (opts.group) {
        if (Object.values(lengths).some((l) => p.key in l)) await refreshBands(p, my);
        continue;
      }
      let grew = false, inRange = false;
      const x1 = zoom.range ? zoom.range.x1 : Infinity;
      for (const part of p.parts || []) {
        const n = (lengths[part.run] || {})[p.key] || 0;
        if (n === part.rows || !n) continue;
        const smooth = opts.smooth || undefined;
        let s = n > part.rows ? await get("series", { run: part.run, key: p.key, width: p.width, smooth, start: part.rows }) : null;
        if (my !== gen) return false; // the charts were drawn again meanwhile (another smoothing)
        const last = part.cols.step.length ? part.cols.step[part.cols.step.length - 1] : -Infinity;
        if (s && s.generation === part.generation) {
          if (last <= x1) inRange = true; // its new rows may be in the zoomed range (or the row after it)
          for (const c of cols()) part.cols[c] = part.cols[c].concat(s.columns[c]);
          part.skipped += s.skipped || 0;
          part.bad += s.nonfinite_rows || 0;
          for (const [x, m] of markMap(s.columns)) part.marks.set(x, m);
        } else { // shrank or read again (a resumed attempt rewound it): replace the rows held
          s = await get("series", { run: part.run, key: p.key, width: p.width, smooth });
          if (my !== gen) return false;
          for (const c of cols()) part.cols[c] = s.columns[c];
          part.generation = s.generation;
          part.skipped = s.skipped || 0;
          part.bad = s.nonfinite_rows || 0;
          part.marks = markMap(s.columns);
          inRange = true;
        }
        part.rows = s.rows;
        grew = true;
      }
      if (grew) await update(p, overlayData(p.parts), inRange);
    }
    return my === gen;
  }

  // smoothed: the server smooths each run's whole series before binning (as one run's own
  // chart is smoothed), so mean and std are of the smoothed series; nothing is smoothed here
  function bandData(groups) {
    const tables = [];
    for (const g of groups) {
      const lo = g.mean.map((m, i) => (m === null ? null : m - (g.std[i] || 0)));
      const hi = g.mean.map((m, i) => (m === null ? null : m + (g.std[i] || 0)));
      tables.push([g.step, lo], [g.step, hi], [g.step, g.mean]);
    }
    return uPlot.join(tables);
  }

  const fetchBands = (key, box) => get("bands", { run: runs, key, group_by: opts.group,
    bins: Math.min(600, box.clientWidth || 420), smooth: opts.smooth || undefined });

  async function refreshBands(p, my) {
    const res = await fetchBands(p.key, p.box);
    // another number of groups (a run's first row of the key): drawn with the next options
    // change; the plot keeps the groups it has series for (the zoom's rows are put in them)
    if (my !== gen || res.groups.length !== p.groups.length) return;
    p.groups = res.groups;
    p.counts = bandCounts(res.groups);
    showGroups(res.groups, res.left_out);
    await update(p, bandData(res.groups), true);
  }

  // the bands of the range: each run's rows there, binned over the range alone (a bin per
  // step while the range has fewer steps than 4 a pixel), in the overview's series: a group
  // with no rows in the range is empty there
  async function zoomedBands(p, z) {
    const res = await get("bands", { run: runs, key: p.key, group_by: opts.group,
      bins: Math.min(BIN_CAP, 4 * (p.box.clientWidth || 420)), smooth: opts.smooth || undefined, x0: z.x0, x1: z.x1 });
    const by = new Map(res.groups.map((g) => [groupValue(g), g]));
    const none = { step: [], mean: [], std: [], runs: [], nonfinite: [] };
    const zoomed = p.groups.map((g) => by.get(groupValue(g)) || none);
    p.zoomCounts = bandCounts(zoomed);
    return bandData(zoomed);
  }

  // one colour per group for the whole page, keyed by the group's value as shown: a chart
  // where some group has no rows must not shift the others' colours
  let groupColors = new Map(); // label -> {i, runs}
  function groupSlot(label) {
    if (!groupColors.has(label)) groupColors.set(label, { i: groupColors.size, runs: 0, size: 0, nonfinite: 0 });
    return groupColors.get(label);
  }
  // runs a chart's bands left out (a damaged record: its group or its series unknown), named
  // under the groups with the server's reason: a band must not silently be of fewer runs
  let leftOut = new Map(); // run -> why
  function seedGroups() { // the runs' own values, in the runs' order, so colours do not depend on which chart answers first
    groupColors = new Map();
    leftOut = new Map();
    if (!opts.group) return;
    for (const r of runs) { // (a group's size: its runs, also one NaN at every step)
      const p = meta.params[r] || {};
      groupSlot(opts.group in p ? param(p[opts.group]) : NOT_SET).size += 1;
    }
  }

  // a group of runs without the param is not the group that set it to null
  const groupValue = (g) => ((g.missing || []).includes(opts.group) ? NOT_SET : param(g.group[opts.group]));
  // per group: step -> {runs, nonfinite} of its bins
  const bandCounts = (groups) => groups.map((g) =>
    new Map(g.step.map((x, j) => [x, { runs: g.runs[j], nonfinite: (g.nonfinite || [])[j] || 0 }])));
  const nRuns = (n) => `${n} run${n === 1 ? "" : "s"}`;

  async function grouped(key, box, my) {
    const res = await fetchBands(key, box);
    if (my !== gen) return null; // (its groups must not reach the chips either)
    const series = [{}], bands = [];
    // per group, by step: how many runs the mean is of, and how many had NaN/inf there (left
    // out of it): the overview's bins, or zoomed the range's (p.zoomCounts)
    const self = { counts: bandCounts(res.groups), zoomCounts: null };
    res.groups.forEach((g, i) => {
      const slot = groupSlot(groupValue(g));
      const label = `${opts.group}=${groupValue(g)} (${nRuns(slot.size || Math.max(...g.runs))})`;
      const c = color(slot.i);
      series.push({ label: `${label} −std`, stroke: "transparent", points: { show: false }, spanGaps: true },
        { label: `${label} +std`, stroke: "transparent", points: { show: false }, spanGaps: true },
        { label, stroke: c, width: 2, points: { show: false }, spanGaps: true,
          // (the +std series is the one before: mean + std)
          value: (u, v, si, j) => {
            const counts = (self.zoom && self.zoomCounts) || self.counts;
            const at = j == null ? undefined : counts[i] && counts[i].get(u.data[0][j]);
            const nf = at ? at.nonfinite : 0;
            if (v == null) return nf ? `NaN/inf in ${nRuns(nf)}` : "--";
            return `${legendValue(v)} ± ${legendValue(u.data[si - 1][j] - v)}` +
              (at ? ` (of ${nRuns(at.runs)}${nf ? `; ${nf} NaN/inf left out` : ""})` : "");
          } });
      bands.push({ series: [3 * i + 2, 3 * i + 1], fill: c + "33" });
    });
    showGroups(res.groups, res.left_out);
    const over = bandData(res.groups);
    return Object.assign(self, { u: plot(box, over, series, bands, opts, zoom), over, key, groups: res.groups, box, zseq: 0 });
  }

  const groupLegend = h("div", { class: "legend-runs", id: "group-legend" });
  legend.after(groupLegend);
  function showGroups(groups, left = []) { // every group any chart has shown, each in its page-wide colour
    for (const { run, why } of left) if (!leftOut.has(run)) leftOut.set(run, why);
    for (const g of groups) {
      const slot = groupSlot(groupValue(g));
      slot.runs = Math.max(slot.runs, ...g.runs);
      // (where a group's runs end at different steps: runs with a row there, NaN/inf or not)
      const some = g.runs.map((n, j) => n + ((g.nonfinite || [])[j] || 0)).filter((n) => n > 0);
      if (some.length) slot.fewest = Math.min(slot.fewest ?? Infinity, ...some);
      slot.nonfinite = Math.max(slot.nonfinite, ...(g.nonfinite || [0]));
      slot.shown = true;
    }
    clear(groupLegend);
    for (const [label, slot] of groupColors) {
      if (!slot.shown) continue;
      groupLegend.append(h("span", { class: "rank-chip", "data-group": label },
        h("span", { class: "swatch", style: { background: color(slot.i) } }),
        `${opts.group} = ${label} · mean ± std of ${nRuns(slot.size || slot.runs)}` +
        (slot.fewest < (slot.size || slot.runs) ? ` (as few as ${slot.fewest} where the others have no rows)` : "") +
        (slot.nonfinite ? ` · NaN/inf left out (up to ${nRuns(slot.nonfinite)} at a step)` : "")));
    }
    for (const [run, why] of leftOut) {
      groupLegend.append(h("span", { class: "rank-chip run-damaged", "data-left-out": run },
        `${run}: left out of the bands (${why})`));
    }
  }

  function drawAll() {
    const my = ++gen;
    legend.hidden = !!opts.group;
    groupLegend.hidden = !opts.group;
    if (table) table.classList.toggle("grouped", !!opts.group);
    plots.splice(0).forEach((p) => p.u && p.u.destroy());
    clear(grid);
    seedGroups();
    clear(groupLegend);
    if (meta.keys.length && !meta.keys.some((key) => keyFilter.test(key))) {
      grid.append(h("div", { class: "empty", id: "no-key-matches",
        text: `No metric key of these runs matches the filter (${meta.keys.length} keys).` }));
    }
    for (const key of meta.keys) {
      if (!keyFilter.test(key)) continue;
      const box = h("div", { class: "chart-box" });
      const note = h("span", { class: "sub" });
      const card = h("div", { class: "card chart", "data-key": key }, h("h3", {}, key, note), box);
      grid.append(card);
      (opts.group ? grouped(key, box, my) : overlay(key, box, my)).then((p) => {
        if (my !== gen) { if (p) p.u.destroy(); return; } // drawn again meanwhile: not on the page
        p.card = card;
        p.note = note;
        logNote(p);
        plots.push(p);
        showRuns(p);
        p.u.hooks.setSeries = [...(p.u.hooks.setSeries || []), (u, si, o) => legendToggled(p, si, o)];
        quiet(showZoom(p, zoom.shown(overExtent(p)))); // (the first one drawn checks the URL's range)
        card.dataset.series = String(p.u.series.length - 1);
      }).catch((e) => box.append(h("p", { class: "muted", text: e.message })));
    }
  }
  drawAll();
  const poller = new Poller(poll, 2000).start();
  return { dispose: () => { gen++; keyFilter.stop(); poller.stop(); plots.forEach((p) => p.u && p.u.destroy()); } };
}
