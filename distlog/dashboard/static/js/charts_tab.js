// The charts of one run: every key, grouped by its prefix, drawn when scrolled into view.
import { h } from "./dom.js";
import { MetricChart } from "./chart.js";
import { histogramCard } from "./histogram.js";
import { KeyFilter } from "./ui.js";
import { setParams } from "./url.js";
import { PageZoom } from "./zoom.js";

export async function chartsTab(body, run, params) {
  const opts = { x: params.get("x") || "step", logy: params.get("logy") === "1",
    smooth: Number(params.get("smooth") || 0), perRank: params.get("ranks") === "1" };
  // one x range for every chart (zoom=LO-HI, on the x axis above): a drag on any chart zooms
  // them all, a double-click on any shows them whole
  const zoom = new PageZoom(params.get("zoom"), (text) => setParams("run", { zoom: text }));
  window.distlog.zoom = zoom;
  const keep = () => setParams("run", { x: opts.x === "step" ? null : opts.x, logy: opts.logy,
    smooth: opts.smooth || null, ranks: opts.perRank, keys: keyFilter.value, zoom: zoom.text() });
  const ranksOf = (key) => Object.entries(run.rank_keys).filter(([, ks]) => ks.includes(key)).map(([r]) => Number(r));
  // where an attempt after the first began (epoch s): on a wall-time axis the lines stop
  // there, not drawn across the time between a killed attempt and its resume
  const breaks = (run.attempts || []).slice(1).map((a) => a.started).filter((t) => t != null);
  const allKeys = [...new Set([...run.keys, ...Object.values(run.rank_keys).flat()])].sort();
  const charts = [];
  const grid = h("div", {});
  const visible = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const c = e.target.__chart;
      visible.unobserve(e.target);
      if (c && !c.loaded) { c.loaded = true; c.refresh(); }
    }
  }, { rootMargin: "300px" });

  // the URL follows each key; the grid is laid out again once typing rests (not for a pattern
  // that is no regex: what the last valid one showed stays, and the box says why)
  const keyFilter = new KeyFilter("key-filter", params.get("keys") || "", { typed: () => keep(), apply: () => layout(), wait: 200 });
  const xSel = h("select", { id: "x-axis", onchange: () => { // a range of steps is no range of times
    opts.x = xSel.value; zoom.clear({ silent: true }); keep(); reload(); } },
    h("option", { value: "step", text: "x: step", selected: opts.x === "step" }),
    h("option", { value: "time", text: "x: wall time", selected: opts.x === "time" }));
  const logBox = h("input", { type: "checkbox", id: "log-y", checked: opts.logy, onchange: () => { opts.logy = logBox.checked; keep(); redraw(); } });
  const rankBox = h("input", { type: "checkbox", id: "per-rank", checked: opts.perRank, onchange: () => { opts.perRank = rankBox.checked; keep(); noteRanks(); reload(); } });
  // "per rank" draws the series ranks logged themselves (log() on each rank); a run with none
  // says so, rather than the box doing nothing visible
  const rankNote = h("span", { id: "per-rank-note", class: "muted", hidden: true,
    text: "no rank logged its own series: a collected metric is one row per flush over every rank (its band spans the ranks' min to max)" });
  const noteRanks = () => { rankNote.hidden = !opts.perRank || charts.some((c) => c.ranks && c.ranks.length); };
  const smooth = h("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: opts.smooth,
    oninput: () => { // the server smooths the whole series: read again once the slider rests
      opts.smooth = Number(smooth.value); smoothLabel.textContent = opts.smooth.toFixed(2); keep();
      clearTimeout(smoothWait); smoothWait = setTimeout(reload, 150);
    } });
  let smoothWait = null;
  const smoothLabel = h("span", { class: "muted", text: opts.smooth.toFixed(2) });
  body.append(h("div", { class: "toolbar" }, keyFilter.el, xSel, h("label", {}, logBox, "log y"),
    h("label", { title: "each rank's own series (values a rank logged itself)" }, rankBox, "per rank"),
    h("label", {}, "smoothing", smooth, smoothLabel), rankNote), grid);

  for (const key of allKeys) {
    const c = new MetricChart({ run: run.path, key, opts, ranks: ranksOf(key), main: run.keys.includes(key), pageZoom: zoom, breaks });
    c.el.__chart = c;
    charts.push(c);
  }
  // each histogram card kept for the tab: a layout (the key filter typed) moves it instead of
  // reading it again (one the filter leaves out is hidden); a live run's are read again when the
  // poll counts other rows than a shown card holds (one filtered out: once it is shown again),
  // and a card whose last read failed at every poll until one answers (a server that was
  // restarted, a commit record torn for a moment), whether the run is live or not
  const histCards = new Map();
  const histCard = (key) => histCards.get(key) || histCards.set(key, histogramCard(run.path, key)).get(key);
  let histRows = {}; // rank 0's histograms per key, as the last poll counted them
  function freshen(key) {
    const card = histCards.get(key), n = histRows[key];
    if (!card || !card.el.isConnected || card.el.hidden || card.busy) return;
    if (card.failed) { card.refresh(); return; }
    if (n === undefined || card.rows === null || n === card.rows || n === card.asked) return;
    card.asked = n; // (asked once per count: a read still in flight is not asked again)
    card.refresh();
  }
  function layout() {
    grid.replaceChildren();
    grid.className = "charts";
    const groups = new Map();
    for (const c of charts) {
      if (!keyFilter.test(c.key)) continue;
      const g = c.key.includes("/") ? c.key.slice(0, c.key.lastIndexOf("/")) : "";
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(c);
    }
    for (const [g, cs] of groups) { // one grid: a section title spans the row, charts flow
      if (groups.size > 1) grid.append(h("h4", { class: "section", text: g || "metrics" }));
      for (const c of cs) { grid.append(c.el); if (!c.loaded) visible.observe(c.el); }
    }
    const unreadable = (run.damaged || []).some((m) => /\.commit\.json is damaged/.test(m));
    if (!charts.length) grid.append(h("div", { class: "empty section", text: unreadable
      ? "Its series cannot be read: a commit record is damaged (named above)." : "This run has no committed metrics yet." }));
    else if (!groups.size && !run.histograms.some((key) => keyFilter.test(key))) {
      grid.append(h("div", { class: "empty section", id: "no-key-matches",
        text: `No metric or histogram key matches the filter (${charts.length + run.histograms.length} keys).` }));
    }
    if (run.histograms.some((key) => keyFilter.test(key))) grid.append(h("h4", { class: "section", text: "histograms" }));
    for (const key of run.histograms) {
      const shown = keyFilter.test(key);
      if (!shown && !histCards.has(key)) continue; // (none is read while filtered out)
      const card = histCard(key);
      card.el.hidden = !shown; // one read before stays drawn, hidden: shown again without a read
      grid.append(card.el);
      freshen(key);
    }
  }
  const reload = () => charts.filter((c) => c.loaded).forEach((c) => c.refresh());
  const redraw = () => charts.filter((c) => c.loaded && c.parts.length).forEach((c) => c.draw(true));
  layout();
  noteRanks();
  const ro = new ResizeObserver(() => charts.forEach((c) => c.resize()));
  ro.observe(grid);
  return {
    async poll(st) {
      // (a chart whose new rows cannot be read says so in its place; the others go on)
      for (const c of charts) if (c.loaded && c.parts.length) await c.poll(st.lengths).catch((e) => c.fail(e));
      const known = new Set(allKeys);
      const fresh = Object.values(st.lengths).flatMap((m) => Object.keys(m)).filter((k) => !known.has(k));
      if (fresh.length) { // a key logged for the first time while the page is open
        for (const key of [...new Set(fresh)].sort()) {
          allKeys.push(key);
          const c = new MetricChart({ run: run.path, key, opts, main: key in (st.lengths["0"] || {}), pageZoom: zoom, breaks,
            ranks: Object.entries(st.lengths).filter(([r, m]) => r !== "0" && key in m).map(([r]) => Number(r)) });
          c.el.__chart = c;
          charts.push(c);
        }
        layout();
        noteRanks();
      }
      histRows = st.histograms || {};
      const newHists = Object.keys(histRows).filter((k) => !run.histograms.includes(k));
      if (newHists.length) { run.histograms = [...run.histograms, ...newHists].sort(); layout(); } // (a first histogram of a key)
      for (const key of run.histograms) freshen(key);
    },
    dispose() { clearTimeout(smoothWait); keyFilter.stop(); visible.disconnect(); ro.disconnect(); charts.forEach((c) => c.dispose()); },
  };
}
