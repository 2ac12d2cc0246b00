// Every rank's log merged by time: colour per rank, level filter, regex search, jump to step,
// load earlier, live tail. Messages are text nodes: a log line is never HTML.
import { get } from "./api.js";
import { clear, h } from "./dom.js";
import { clock, color } from "./fmt.js";
import { setParams } from "./url.js";

const PAGE = 500;
const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

export async function logsTab(body, run, params) {
  // the ranks shown, from the URL: rank=R for each (rank=none: no rank ticked); none given: all
  const asked = params.getAll("rank");
  const shown = asked.length ? run.log_ranks.filter((r) => asked.includes(String(r))) : run.log_ranks;
  // seq: the view's number; a request answered after the view changed (a filter typed on,
  // a box ticked while it was read) is dropped, not painted over the newer answer. held: the
  // number of the view whose records are held (seq while its first read is in flight: 'Load
  // earlier' and the tail wait for it; asked of the old records, they would leave a hole)
  const state = { records: [], ids: new Set(), ranks: new Set(shown), more: false, lag: 1, error: null, seq: 0, held: 0 };
  const rankBoxes = run.log_ranks.map((r) => {
    const box = h("input", { type: "checkbox", checked: state.ranks.has(r), "data-rank": r, onchange: () => {
      box.checked ? state.ranks.add(r) : state.ranks.delete(r); reload(); } });
    return h("label", { class: "rank-chip" }, box, h("span", { class: "swatch", style: { background: color(r) } }), `rank ${r}`);
  });
  const level = h("select", { id: "log-level", onchange: () => reload() },
    h("option", { value: "", text: "all levels" }), ...LEVELS.map((l) => h("option", { value: l, text: `≥ ${l}` })));
  level.value = params.get("level") || "";
  const grep = h("input", { type: "search", id: "log-grep", placeholder: "regex", value: params.get("grep") || "" });
  let t = null;
  grep.addEventListener("input", () => { clearTimeout(t); t = setTimeout(reload, 300); });
  const icase = h("input", { type: "checkbox", id: "log-icase", checked: params.get("i") === "1", onchange: () => reload() });
  const step = h("input", { type: "number", id: "log-step", placeholder: "step", style: { width: "90px" } });
  const jump = h("button", { text: "Jump to step", onclick: () => jumpTo() });
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: run.row.status === "running" });
  const count = h("span", { class: "muted", id: "log-count" });
  const earlier = h("button", { text: "Load earlier", onclick: () => loadEarlier() });
  const list = h("div", { class: "logs", id: "log-list" });
  body.append(h("div", { class: "toolbar" }, ...rankBoxes, level, grep, h("label", {}, icase, "ignore case"),
    step, jump, h("label", {}, follow, "live tail"), earlier, count), list);

  const filters = () => ({ run: run.path, rank: state.ranks.size === run.log_ranks.length ? undefined : [...state.ranks],
    level: level.value, grep: grep.value, i: icase.checked ? 1 : undefined });

  function row(r) {
    const msg = h("span", { class: "msg", text: r.message });
    if (r.fields) { // a traceback is read as lines below the message (as distlog logs --fields prints it)
      const { traceback, ...rest } = r.fields;
      const tb = typeof traceback === "string" ? traceback : null; // (any other value stays in the JSON)
      if (tb === null && traceback !== undefined) rest.traceback = traceback;
      if (Object.keys(rest).length) msg.append(h("span", { class: "fields", text: "  " + JSON.stringify(rest) }));
      if (tb !== null) msg.append(h("span", { class: "fields", text: "\n" + tb.replace(/\n+$/, "") }));
    }
    return h("div", { class: "logline", "data-rank": r.rank, "data-level": r.level, "data-step": r.step ?? "" },
      h("span", { class: "t", text: clock(r.t), title: new Date(r.t * 1000).toISOString() }),
      h("span", { text: `r${r.rank}`, style: { color: color(r.rank) } }),
      h("span", { class: `lv-${r.level}`, text: r.level }),
      h("span", { class: "t", text: r.step === null ? "" : `s${r.step}` }), msg);
  }

  function paint(scrollToEnd) {
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 30;
    clear(list);
    const frag = document.createDocumentFragment();
    for (const r of state.records) frag.append(row(r));
    list.append(frag);
    if (state.error) list.append(h("div", { class: "logline error", id: "log-error" }, h("span", { class: "msg", text: state.error })));
    else if (!state.records.length) list.append(h("div", { class: "logline" }, h("span", { class: "msg", text: "no records match" })));
    count.textContent = state.error ? "filter not applied" : `${state.records.length} records${state.more ? " (more earlier)" : ""}`;
    earlier.disabled = !state.more;
    if (scrollToEnd || atEnd) list.scrollTop = list.scrollHeight;
  }

  function take(records) {
    for (const r of records) if (!state.ids.has(r.id)) { state.ids.add(r.id); state.records.push(r); }
    state.records.sort((a, b) => a.t - b.t || a.rank - b.rank);
  }

  async function reload() {
    const seq = ++state.seq;
    state.error = null;
    // the filter is the view: Back, a reload and a copied link show these lines again
    const ranks = state.ranks.size === run.log_ranks.length ? null : state.ranks.size ? [...state.ranks].sort((a, b) => a - b) : ["none"];
    setParams("run", { level: level.value, grep: grep.value, i: icase.checked, rank: ranks });
    if (!state.ranks.size) { state.records = []; state.ids = new Set(); state.held = seq; paint(true); return; }
    let res;
    try {
      res = await get("logs", { ...filters(), tail: PAGE });
    } catch (e) { // a filter the server refuses (a bad regular expression): say so, show none
      refused(seq, e);
      return;
    }
    if (seq !== state.seq) return;
    state.records = []; state.ids = new Set(); state.more = res.more; state.lag = res.lag; state.held = seq;
    take(res.records);
    paint(true);
  }

  // a request the server refuses (a regex typed but not yet applied, a step that is no
  // integer): its reason is shown where the records were, and the view is none
  function refused(seq, e) {
    if (seq !== state.seq) return; // (a newer view is on screen or being read)
    state.records = []; state.ids = new Set(); state.more = false; state.error = e.message; state.held = seq;
    paint(true);
  }

  async function loadEarlier() {
    if (!state.records.length || state.held !== state.seq) return; // (another view is being read)
    const seq = state.seq;
    let res;
    try {
      res = await get("logs", { ...filters(), tail: PAGE, until: state.records[0].t });
    } catch (e) { refused(seq, e); return; }
    if (seq !== state.seq) return;
    state.more = res.more;
    const h0 = list.scrollHeight;
    take(res.records);
    paint(false);
    list.scrollTop = list.scrollHeight - h0;
  }

  async function jumpTo() {
    if (step.value === "") return;
    const seq = ++state.seq;
    let res;
    try {
      res = await get("logs", { ...filters(), from_step: step.value, limit: PAGE });
    } catch (e) { refused(seq, new Error(`Jump to step ${step.value}: ${e.message}`)); return; }
    if (seq !== state.seq) return;
    state.records = []; state.ids = new Set(); state.more = true; state.held = seq; state.error = null;
    follow.checked = false;
    take(res.records);
    paint(false);
    list.scrollTop = 0;
    const first = list.querySelector(".logline");
    if (first) first.classList.add("hit");
  }

  await reload();
  return {
    async poll() {
      if (!follow.checked || !state.ranks.size || state.error || state.held !== state.seq) return;
      const newest = state.records.length ? state.records[state.records.length - 1].t : 0;
      const since = newest ? newest - state.lag : undefined;
      const before = state.records.length, seq = state.seq;
      // the last PAGE records since then; when more came, page backwards (until: the oldest
      // record of the page, inclusive; the ids drop what is held) until none is left out
      let res = await get("logs", { ...filters(), tail: PAGE, since });
      if (seq !== state.seq) return; // (the view changed meanwhile: its own reload paints)
      take(res.records);
      if (since === undefined && res.more) state.more = true; // nothing held: earlier ones stay a click away
      while (res.more && since !== undefined && res.records.length) {
        const oldest = res.records[0].t, n = state.records.length;
        res = await get("logs", { ...filters(), tail: PAGE, since, until: oldest });
        if (seq !== state.seq) return;
        take(res.records);
        if (state.records.length === n && res.records.length && res.records[0].t === oldest) break; // a page of one instant
      }
      if (state.records.length !== before) paint(false);
    },
    dispose() { clearTimeout(t); },
  };
}
