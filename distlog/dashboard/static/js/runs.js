// The runs table: every run under the root with its params; filter, sort, pick to compare.
import { get } from "./api.js";
import { clear, h } from "./dom.js";
import * as fmt from "./fmt.js";
import { Poller } from "./live.js";
import { setCrumbs, setLive } from "./ui.js";
import { setParams } from "./url.js";

const BASE = [
  ["status", (r) => r.status], ["experiment", (r) => r.experiment], ["run_id", (r) => r.run_id],
  ["started", (r) => r.started], ["duration", (r) => r.duration], ["last_step", (r) => r.last_step],
  ["world_size", (r) => r.world_size], ["attempts", (r) => r.attempts], ["tags", (r) => r.tags.join(",")],
];

// "lr>0.01 status:running tag:baseline seed=1 text": every term must hold
export function parseFilter(text) {
  const terms = [];
  for (const tok of text.trim().split(/\s+/).filter(Boolean)) {
    let m;
    if ((m = tok.match(/^(status|tag|exp|experiment|is):(.+)$/i))) terms.push({ kind: m[1].toLowerCase(), value: m[2].toLowerCase() });
    else if ((m = tok.match(/^([^=<>!]+)(!=|>=|<=|=|>|<)(.*)$/))) terms.push({ kind: "param", key: m[1], op: m[2], value: m[3] });
    else terms.push({ kind: "text", value: tok.toLowerCase() });
  }
  return terms;
}

// a run's param as a value to sort and filter by: a float param that is not finite is sent
// as its text ("nan", "inf", "-inf", JSON has no such number) and named in the row's
// ``nonfinite``: it is that number here, and a text param "nan" stays text
const NONFINITE = { nan: NaN, inf: Infinity, "-inf": -Infinity };
export const paramValue = (r, k) => (r.nonfinite && k in r.nonfinite ? NONFINITE[r.nonfinite[k]] : r.params[k]);
// a metric column's value (each run's last value of the key: sent as text when not finite)
const metricValue = (r, k) => {
  const v = (r.metrics || {})[k];
  return typeof v === "string" && v in NONFINITE ? NONFINITE[v] : v;
};
const METRIC = "metric:"; // a metric column's name among the columns (sort=metric:train/loss)
const IS_NAN = new Set(["nan", "inf", "nonfinite"]); // is:nan, is:inf: the runs with a NaN/inf badge

// a value as a number: numbers, and text typed in a filter that reads as one ("nan", "inf",
// "-inf" too); null for anything else (None, other text, objects)
export function numeric(v) {
  if (typeof v === "number") return v;
  if (typeof v !== "string" || v.trim() === "") return null;
  const t = v.trim().toLowerCase();
  if (t === "nan") return NaN;
  if (/^[+-]?inf(inity)?$/.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
  const n = Number(t);
  return Number.isNaN(n) ? null : n;
}

function cmp(a, op, b) {
  if (op === "=" || op === "!=") {
    const na = numeric(a), nb = numeric(b);
    const eq = (na !== null && nb !== null && (na === nb || (Number.isNaN(na) && Number.isNaN(nb)))) || String(a) === b;
    return op === "=" ? eq : !eq;
  }
  // ordering: a number typed matches only numbers (inf too; NaN never); text is compared as
  // text only with text
  const nb = numeric(b), na = numeric(a);
  let x, y;
  if (nb !== null) {
    if (na === null || Number.isNaN(na)) return false;
    x = na; y = nb;
  } else {
    if (a === null || a === undefined || na !== null) return false;
    x = String(a); y = b;
  }
  switch (op) {
    case ">": return x > y; case "<": return x < y; case ">=": return x >= y; case "<=": return x <= y;
  }
  return false;
}

export function matches(run, terms) {
  for (const t of terms) {
    if (t.kind === "status" && run.status.toLowerCase() !== t.value) return false;
    if (t.kind === "tag" && !run.tags.some((g) => g.toLowerCase() === t.value)) return false;
    // is:nan (is:inf): the runs whose metrics went NaN/inf (their badge); another is: matches none
    if (t.kind === "is" && !(IS_NAN.has(t.value) && Object.keys(run.nonfinite_from || {}).length)) return false;
    if ((t.kind === "exp" || t.kind === "experiment") && !run.experiment.toLowerCase().includes(t.value)) return false;
    if (t.kind === "text" && !(run.path.toLowerCase().includes(t.value) || run.tags.join(" ").toLowerCase().includes(t.value))) return false;
    if (t.kind === "param") {
      const v = t.key in run.params ? paramValue(run, t.key) : run.metrics && t.key in run.metrics
        ? metricValue(run, t.key) : run[t.key];
      if (v === undefined || !cmp(typeof v === "object" && v !== null ? JSON.stringify(v) : v, t.op, t.value)) return false;
    }
  }
  return true;
}

// hovering a run's link asks for its metadata: the server starts reading its series then, so
// the charts are often ready by the time the click lands
const warmed = new Set();
function warm(path) {
  if (warmed.has(path)) return;
  warmed.add(path);
  get("run", { run: path }).catch(() => warmed.delete(path));
}

// NaN sorts with the missing values, last either way; infinities sort as numbers (text
// such as a tag "nan" is text); the one order of distlog/query/order.py (compare --sort, table(sort=)): numbers, booleans,
// text, then NaN, then no value; descending reverses the first three groups only
const NUMBER = 0, BOOL = 1, TEXT = 2, NAN = 3, MISSING = 4;
function sortKey(v) {
  if (v === null || v === undefined) return [MISSING, 0];
  if (typeof v === "number" && Number.isNaN(v)) return [NAN, 0];
  if (typeof v === "number") return [NUMBER, v];
  if (typeof v === "boolean") return [BOOL, v ? 1 : 0];
  return [TEXT, typeof v === "object" ? JSON.stringify(v) : String(v)];
}

// two strings as Python orders str, by code point: JavaScript's < compares UTF-16 code units,
// which puts a character above U+FFFF (a surrogate pair, 0xD800-0xDFFF) before U+E000-U+FFFF
function textOrder(a, b) {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  const x = a.charCodeAt(i), y = b.charCodeAt(i);
  const sx = x >= 0xd800 && x <= 0xdfff, sy = y >= 0xd800 && y <= 0xdfff;
  if (sx !== sy) return sx ? 1 : -1; // (the pair's code point is above every single unit's)
  return x - y;
}

function compareKeys(a, b, desc) {
  let r;
  if (a[0] !== b[0]) r = a[0] - b[0];
  else if (a[0] >= NAN || a[1] === b[1]) return 0; // (ties keep their order: the sort is stable)
  else r = a[0] === TEXT ? Math.sign(textOrder(a[1], b[1])) : a[1] < b[1] ? -1 : 1;
  return desc && a[0] < NAN && b[0] < NAN ? -r : r;
}

export async function runsPage(view, params) {
  setCrumbs({ text: "runs" });
  // metric columns: each run's last value of a key, read by the server for the keys asked
  const metrics = params.getAll("metric");
  const data = await get("runs", { fresh: 1, metric: metrics }); // (a run started seconds ago is in it)
  if (!view.isConnected) return {}; // (the user went on while it was read: nothing of it is shown)
  const state = { data, sort: params.get("sort") || "started", desc: params.get("asc") !== "1", metrics,
    selected: new Set(params.getAll("sel")), filter: params.get("q") || "", allParams: params.get("all") === "1" };
  const info = h("span", { class: "muted" });
  const compareBtn = h("button", { class: "primary", id: "compare-selected", text: "Compare selected", disabled: true, onclick: () => {
    const q = new URLSearchParams();
    for (const p of state.selected) q.append("run", p);
    location.hash = `#/compare?${q}`;
  } });
  // the selection may hold runs the filter hides now: the button counts them, and one click
  // clears it (a compare of runs nobody sees ticked surprised a sweep's review)
  const clearSel = h("button", { id: "clear-selection", text: "clear selection", hidden: true, onclick: () => {
    state.selected.clear();
    render();
  } });
  const allShown = h("input", { type: "checkbox", id: "select-shown", title: "select every run shown", onchange: () => {
    const shown = state.shown || [];
    const every = shown.length && shown.every((r) => state.selected.has(r.path));
    for (const r of shown) every ? state.selected.delete(r.path) : state.selected.add(r.path);
    render();
  } });
  function selectionChanged() {
    const shown = new Set((state.shown || []).map((r) => r.path));
    const n = state.selected.size, unseen = [...state.selected].filter((p) => !shown.has(p)).length;
    compareBtn.disabled = n < 1;
    compareBtn.textContent = n ? `Compare selected (${n}${unseen ? `, ${unseen} not shown` : ""})` : "Compare selected";
    clearSel.hidden = !n;
    const ticked = (state.shown || []).filter((r) => state.selected.has(r.path)).length;
    allShown.checked = !!ticked && ticked === shown.size;
    allShown.indeterminate = !!ticked && ticked < shown.size;
    allShown.disabled = !shown.size;
    setParams("runs", { sel: [...state.selected] });
  }
  const filter = h("input", { type: "search", id: "runs-filter", value: state.filter,
    placeholder: "filter: lr>0.01 status:running is:nan tag:baseline seed=1 mnist", oninput: () => { state.filter = filter.value; render(); } });
  const allBox = h("input", { type: "checkbox", checked: state.allParams,
    onchange: () => { state.allParams = allBox.checked; render(); } });
  const table = h("table", { class: "grid", id: "runs-table" });
  // a metric column is added from the keys the runs have (at most 8; its header's × removes it)
  const addMetric = h("select", { id: "add-metric", onchange: () => {
    if (addMetric.value) setMetrics([...state.metrics, addMetric.value]);
  } });
  function metricOptions() {
    const left = (state.data.metric_keys || []).filter((k) => !state.metrics.includes(k));
    addMetric.replaceChildren(h("option", { value: "", text: "+ metric column (last value)" }),
      ...left.map((k) => h("option", { value: k, text: k })));
    addMetric.disabled = !left.length || state.metrics.length >= 8;
  }
  async function setMetrics(keys) {
    state.metrics = keys;
    setParams("runs", { metric: keys });
    const data = await get("runs", { metric: keys });
    if (gone) return;
    state.data = data;
    render();
  }
  view.append(h("div", { class: "toolbar" }, filter, h("label", {}, allBox, "all params"), addMetric, compareBtn, clearSel, info),
    h("div", { class: "table-wrap runs-wrap" }, table));

  function paramKeys(runs) {
    const keys = state.data.param_keys;
    if (state.allParams || runs.length < 2) return keys;
    const text = (v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : JSON.stringify(v ?? null));
    return keys.filter((k) => new Set(runs.map((r) => text(paramValue(r, k)))).size > 1);
  }

  const metricText = (v) => (v === undefined || v === null ? "–" : fmt.value(v));

  function render() {
    const t0 = performance.now();
    setParams("runs", { q: state.filter, sel: [...state.selected], sort: state.sort === "started" ? null : state.sort,
      asc: !state.desc, all: state.allParams ? 1 : null });
    const runs = state.data.runs;
    const terms = parseFilter(state.filter);
    const shown = runs.filter((r) => matches(r, terms));
    const pkeys = paramKeys(runs);
    const getter = (col) => BASE.find(([c]) => c === col)?.[1] ||
      (col.startsWith(METRIC) ? (r) => metricValue(r, col.slice(METRIC.length)) : (r) => paramValue(r, col));
    const g = getter(state.sort);
    const keyed = new Map(shown.map((r) => [r, sortKey(g(r))]));
    shown.sort((a, b) => compareKeys(keyed.get(a), keyed.get(b), state.desc));
    clear(table);
    state.shown = shown;
    const head = h("tr", {}, h("th", { class: "select-all" }, allShown));
    const base = BASE.map(([c]) => c);
    const mcols = state.metrics.map((k) => METRIC + k);
    for (const [i, col] of [...base, ...mcols, ...pkeys].entries()) {
      const cls = state.sort === col ? (state.desc ? "sorted-desc" : "sorted-asc") : "";
      // built-in columns read as words; a param key is shown as it is spelled
      const isMetric = i >= base.length && i < base.length + mcols.length;
      const label = i < base.length ? col.replaceAll("_", " ") : isMetric ? `${col.slice(METRIC.length)} (last)` : col;
      const th = h("th", { class: cls, text: label, "data-col": col, onclick: () => {
        if (state.sort === col) state.desc = !state.desc; else { state.sort = col; state.desc = false; }
        render();
      } });
      if (isMetric) {
        th.append(h("button", { class: "remove-metric", title: "remove this column", text: "×", onclick: (e) => {
          e.stopPropagation();
          if (state.sort === col) state.sort = "started";
          setMetrics(state.metrics.filter((k) => METRIC + k !== col));
        } }));
      }
      head.append(th);
    }
    table.append(h("thead", {}, head));
    const body = document.createDocumentFragment();
    for (const r of shown) {
      const box = h("input", { type: "checkbox", checked: state.selected.has(r.path), onchange: () => {
        box.checked ? state.selected.add(r.path) : state.selected.delete(r.path);
        selectionChanged();
      } });
      const link = h("a", { href: `#/run?path=${encodeURIComponent(r.path)}`, text: r.run_id, class: "run-link",
        onmouseenter: () => warm(r.path) });
      const badge = fmt.statusBadge(h, r.status);
      if (r.failure) badge.title = r.failure; // (why it failed: its first cause)
      const tr = h("tr", { "data-path": r.path }, h("td", {}, box), h("td", { class: "status" }, badge, fmt.nonfiniteBadge(h, r.nonfinite_from)),
        h("td", { text: r.experiment }), h("td", {}, link), h("td", { text: fmt.time(r.started) }),
        h("td", { class: "num duration", text: fmt.duration(r.duration) }), h("td", { class: "num last-step", text: fmt.value(r.last_step) }),
        h("td", { class: "num", text: fmt.value(r.world_size) }), h("td", { class: "num", text: r.attempts }),
        h("td", { text: r.tags.join(", ") }));
      for (const k of state.metrics) {
        const v = metricValue(r, k);
        tr.append(h("td", { class: "num metric", text: metricText(v) }));
      }
      for (const k of pkeys) tr.append(h("td", { class: typeof paramValue(r, k) === "number" ? "num" : "", text: fmt.value(r.params[k]) }));
      body.append(tr);
    }
    table.append(h("tbody", {}, body));
    selectionChanged();
    // a filter term naming no param and no column matches nothing: said, with what there is
    const cols = new Set([...BASE.map(([c]) => c), ...(state.data.param_keys || []), ...state.metrics]);
    const unknown = terms.filter((t) => t.kind === "param" && !cols.has(t.key)).map((t) => t.key);
    const badIs = terms.filter((t) => t.kind === "is" && !IS_NAN.has(t.value)).map((t) => ` — "is:${t.value}" matches no run: the filter knows is:nan`);
    const metricKeys = new Set(state.data.metric_keys || []);
    // nothing shown: what a person may have meant (a filter's terms must all hold; a param's
    // text is matched as written)
    const hints = [];
    if (!shown.length && runs.length) {
      if (terms.some((t) => t.kind === "text" && t.value === "or")) {
        hints.push(" — every term must hold (there is no OR): filter one value at a time");
      }
      for (const t of terms.filter((t) => t.kind === "param" && t.op === "=" && cols.has(t.key))) {
        const held = [...new Set(runs.map((r) => paramValue(r, t.key)).filter((v) => typeof v === "string"))];
        const near = held.find((v) => v !== t.value && v.toLowerCase() === t.value.toLowerCase());
        if (near !== undefined) hints.push(` — ${t.key} is matched as written: runs hold "${near}"`);
      }
    }
    info.textContent = `${shown.length} of ${runs.length} runs` + (runs.length ? "" : " — nothing logged under this root yet") +
      unknown.map((k) => (metricKeys.has(k) ? ` — "${k}" is a metric: add it as a column (+ metric column) to filter by it`
        : ` — no param, metric or column "${k}"`)).join("") + badIs.join("") +
      Object.entries(state.data.unknown_metrics || {}).map(([k, near]) => ` — no run has the metric "${k}"${near}`).join("") +
      hints.join("");
    metricOptions();
    window.distlog.runsRendered = { ms: performance.now() - t0, rows: shown.length, at: performance.now() };
  }
  render();
  setLive(state.data.runs.some((r) => r.status === "running"));
  // a poll re-renders only when the runs changed: rebuilding a thousand rows every 5 s lost a
  // person's text selection, hover and the rows' nodes. "now" (the server's clock) always
  // differs, and so do a running run's duration (to now), last step and metric columns: those
  // cells are updated in place — unless the table is sorted or filtered by what moved
  let gone = false;
  const live = (r) => (r.status === "running" ? { ...r, duration: null, last_step: null, metrics: null } : r);
  const stable = (d) => JSON.stringify([d.param_keys, d.runs.map(live)]);
  const moved = (a, b) => a.last_step !== b.last_step || JSON.stringify(a.metrics) !== JSON.stringify(b.metrics);
  const poller = new Poller(async () => {
    if (document.activeElement === filter && filter.value !== state.filter) return;
    const data = await get("runs", { metric: state.metrics });
    if (gone) return; // (the page was left meanwhile: no render, no live badge of its runs)
    let changed = stable(data) !== stable(state.data);
    const before = new Map(state.data.runs.map((r) => [r.path, r]));
    const ordered = ["duration", "last_step"].includes(state.sort) || state.sort.startsWith(METRIC) || state.filter.trim();
    if (!changed && ordered) changed = data.runs.some((r) => r.status === "running" && moved(r, before.get(r.path)));
    state.data = data;
    if (!changed) {
      for (const r of data.runs) {
        const row = r.status === "running" && table.querySelector(`tr[data-path="${CSS.escape(r.path)}"]`);
        if (!row) continue;
        row.querySelector("td.duration").textContent = fmt.duration(r.duration);
        row.querySelector("td.last-step").textContent = fmt.value(r.last_step);
        row.querySelectorAll("td.metric").forEach((td, i) => { td.textContent = metricText(metricValue(r, state.metrics[i])); });
      }
      return;
    }
    render();
    setLive(state.data.runs.some((r) => r.status === "running"));
  }, 5000).start();
  return { dispose: () => { gone = true; poller.stop(); } };
}
