// Every rank of a run: where each one is (its heartbeat: host, pid, alive or not, last step,
// inside a flush for how long) beside its telemetry (the straggler report's row), and one
// telemetry field over the run's flushes — a rank whose line sits above the others is the
// straggler. The charted field is in the URL (tfield=).
import { get } from "./api.js";
import { clear, h } from "./dom.js";
import * as fmt from "./fmt.js";
import { plotAxes, plotSeries } from "./chart.js";
import { setParams } from "./url.js";

const BAND_FILL = "rgba(47,111,219,0.16)";
const REFRESH_MS = 5000; // a live run's ranks are read again at most this often

// the report's columns, as a person reads them, and how each value is shown
const COLUMNS = {
  step_time_median: ["step time", "s", "median seconds per step between flushes"],
  wait_median: ["wait in flush", "s", "median time waited in a flush for the other ranks"],
  wait_total: ["wait total", "s", "time waited in flushes, all told"],
  slowest_share: ["slowest in", "%", "share of flushes in which this rank was the last to arrive"],
  cpu_median: ["CPU", "cpu", "median CPU use of the process (100% = one core)"],
  rss_peak: ["RSS peak", "B", "largest resident memory of the process"],
  gpu_peak: ["GPU peak", "B", "largest GPU memory allocated"],
  gpu_reserved_peak: ["GPU reserved", "B", "largest GPU memory reserved by the caching allocator"],
  gpu_util_median: ["GPU util", "cpu", "median GPU utilisation"],
};
const FIELD_NAMES = {
  step_time: "step time (s)", wait: "wait in flush (s)", interval: "time between flushes (s)",
  wait_prev: "wait of the previous flush (s)", cpu_percent: "CPU %", rss: "RSS (bytes)",
  gpu_allocated: "GPU allocated (bytes)", gpu_reserved: "GPU reserved (bytes)", gpu_peak: "GPU peak (bytes)",
  gpu_util: "GPU util %",
};

function seconds(v) {
  if (v === null || v === undefined) return "–";
  if (v === 0) return "0";
  if (v >= 60) return fmt.duration(v);
  if (v >= 1) return `${+v.toPrecision(3)} s`;
  if (v >= 1e-3) return `${+(v * 1e3).toPrecision(3)} ms`;
  return `${+(v * 1e6).toPrecision(3)} µs`;
}

function shown(kind, v) {
  if (v === null || v === undefined) return "–";
  if (kind === "s") return seconds(v);
  if (kind === "%") return `${Math.round(v * 100)}%`;
  if (kind === "cpu") return `${+v.toPrecision(3)}%`;
  if (kind === "B") return fmt.bytes(v);
  return fmt.value(v);
}

function health(row) {
  const cls = { alive: "ok", completed: "ok", "waiting in flush": "wait", "heartbeats stopped": "wait",
    "process gone": "bad", failed: "bad", "no heartbeat": "none", "not in last attempt": "none" }[row.health] || "wait";
  return h("span", { class: `badge rank-health health-${cls}`, text: row.health, title: row.line });
}

// "12.3 s ago" of a heartbeat, from the page's clock at paint time (repainted every few seconds)
const ago = (t) => (t === undefined || t === null ? "–" : `${seconds(Math.max(0, Date.now() / 1000 - t))} ago`);

function table(res) {
  const tel = res.telemetry;
  const cols = tel ? tel.columns : [];
  const head = [["rank"], ["health", "from the rank's heartbeat; hover a badge for its whole record"], ["host"], ["pid"],
    ["step", "last step at its heartbeat"], ["flushes"], ["heartbeat", "when it last beat"],
    ...cols.map((c) => [(COLUMNS[c] || [c])[0], (COLUMNS[c] || [])[2]]), ["last log line"]];
  const tb = h("tbody");
  for (const r of res.ranks) {
    const t = r.telemetry || {};
    const tr = h("tr", { "data-rank": r.rank, class: tel && tel.straggler === r.rank ? "slowest" : "" },
      h("td", { text: r.rank }), h("td", {}, health(r)), h("td", { text: r.host ?? "–" }), h("td", { text: r.pid ?? "–" }),
      h("td", { text: fmt.value(r.step) }), h("td", { text: fmt.value(r.flushes) }),
      h("td", { class: "beat-age", "data-time": r.beat_time ?? null, text: ago(r.beat_time), title: r.line }),
      ...cols.map((c) => h("td", { class: "num", text: shown((COLUMNS[c] || [])[1], t[c]) })),
      h("td", { class: "log-line", text: r.last_log || "", title: r.last_log || "" }));
    tb.append(tr);
  }
  return h("div", { class: "table-wrap" }, h("table", { class: "grid", id: "ranks-table" },
    h("thead", {}, h("tr", {}, ...head.map(([c, title]) => h("th", { text: c, title: title || "" })))), tb));
}

// a y axis' ticks in the field's unit, as the table shows it (seconds as ms/µs, bytes as MiB)
const UNIT = { step_time: "s", wait: "s", interval: "s", wait_prev: "s", rss: "B", gpu_allocated: "B",
  gpu_reserved: "B", gpu_peak: "B", cpu_percent: "cpu", gpu_util: "cpu" };

function chart(box, res) {
  const c = res.chart;
  if (!c) return null;
  const drawn = c.series.some((s) => s.values.some((v) => v !== null));
  if (!c.xs.length || !drawn) {
    box.append(h("p", { class: "muted", text: c.xs.length ? "no value to draw yet (an attempt's first flush has no step time: its interval includes start-up)" : "no flush recorded yet" }));
    return null;
  }
  const data = [c.xs];
  const series = [{ label: c.x }];
  const bands = [];
  if (c.band) {
    data.push(c.band.min, c.band.max);
    series.push({ label: "min", stroke: "transparent", points: { show: false }, width: 0 },
      { label: "max", stroke: "transparent", points: { show: false }, width: 0 });
    bands.push({ series: [2, 1], fill: BAND_FILL });
  }
  const straggler = res.telemetry ? res.telemetry.straggler : null;
  const unit = UNIT[res.field];
  c.series.forEach((s) => {
    data.push(s.values);
    const hot = s.rank !== null && s.rank === straggler;
    series.push({ label: s.label, stroke: s.rank === null ? "#333" : fmt.color(s.rank), width: hot ? 2.5 : 1.5,
      points: { show: c.xs.length < 60 }, spanGaps: false, value: (u, v) => (v === null || v === undefined ? "--" : shown(unit, v)) });
  });
  const axes = plotAxes(c.x === "time");
  if (unit) axes[1] = { ...axes[1], values: (u, vals) => vals.map((v) => (v === null || v === undefined ? "" : shown(unit, v))) };
  // from 0: ranks a few per cent apart are drawn a few per cent apart (a range fitted to the
  // lines made noise between alike ranks look like a straggler)
  return new uPlot({
    width: Math.max(400, box.clientWidth || 900), height: 260, series: plotSeries(series), bands, axes,
    scales: { x: { time: c.x === "time" }, y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.08 : 1] } },
    legend: { live: true },
  }, data, box);
}

export async function ranksTab(body, run, params) {
  let field = params.get("tfield") || "step_time";
  const wrap = h("div", { id: "ranks" });
  body.append(wrap);
  let plot = null, last = 0, gone = false, once = false;
  const paint = (res) => {
    if (plot) { plot.destroy(); plot = null; }
    clear(wrap);
    const beats = res.ranks.filter((r) => r.health !== "no heartbeat" && r.health !== "not in last attempt").length;
    const summary = res.telemetry ? res.telemetry.summary : res.why_none;
    // a hang first: who waits in which flush, and where those not in it are
    if (res.hang) wrap.append(h("div", { class: "ranks-hang", id: "ranks-hang", role: "status" }, h("b", { text: "Waiting: " }), res.hang));
    if (res.note) wrap.append(h("p", { class: "ranks-note", id: "ranks-note", text: res.note }));
    wrap.append(h("p", { class: "ranks-summary", id: "ranks-summary", text: summary }));
    if (res.lag) wrap.append(h("p", { class: "muted", id: "ranks-lag", text: res.lag }));
    if (!beats && res.ranks.length) wrap.append(h("p", { class: "muted", text: "no rank wrote a heartbeat (heartbeat_interval=0)" }));
    wrap.append(table(res));
    if (res.fields.length) {
      const select = h("select", { id: "ranks-field" }, ...res.fields.map((f) => h("option", { value: f, text: FIELD_NAMES[f] || f, selected: f === res.field })));
      select.addEventListener("change", async () => {
        field = select.value;
        setParams("run", { tfield: field === "step_time" ? null : field });
        await load();
      });
      const c = res.chart || {};
      const note = c.per_point > 1.01 ? `each point the mean of ~${Math.round(c.per_point)} flushes` : "";
      const box = h("div", { class: "ranks-chart card", id: "ranks-chart" });
      const rows = c.flushes === undefined ? "" : `${c.flushes} flush${c.flushes === 1 ? "" : "es"} recorded`;
      wrap.append(h("div", { class: "ranks-controls" }, h("label", {}, "field ", select),
        h("span", { class: "muted", text: [rows, note, c.x === "time" ? "x: wall time (the steps went back: a resumed run)" : "", res.field_error || ""].filter(Boolean).join(" · ") })), box);
      plot = chart(box, res);
    }
  };
  const load = async () => {
    const res = await get("ranks", { run: run.path, field });
    if (gone || !wrap.isConnected) return;
    last = Date.now();
    paint(res);
  };
  await load();
  // the heartbeat ages move on between reads (a finished run is read once)
  const tick = setInterval(() => { for (const td of wrap.querySelectorAll("td.beat-age[data-time]")) td.textContent = ago(+td.dataset.time); }, 2000);
  return {
    dispose() { gone = true; clearInterval(tick); if (plot) plot.destroy(); },
    // a live run's ranks every REFRESH_MS, and once more when it ends (their last records)
    poll: async (st) => {
      const live = st.status === "running";
      if (!(live || once) || (live && Date.now() - last < REFRESH_MS)) return;
      once = live;
      await load();
    },
  };
}
