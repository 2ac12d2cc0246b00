// One run: overview (info, params tree, notes), charts, logs, files, attempts.
import { get } from "./api.js";
import { clear, h } from "./dom.js";
import * as fmt from "./fmt.js";
import { Poller } from "./live.js";
import { setCrumbs, setLive } from "./ui.js";
import { VIEW_CHANGED } from "./url.js";
import { chartsTab } from "./charts_tab.js";
import { logsTab } from "./logs.js";
import { filesTab } from "./files.js";
import { attemptsTab, paramsChanged } from "./attempts.js";
import { ranksTab } from "./ranks.js";

const TABS = [["overview", "Overview"], ["charts", "Charts"], ["logs", "Logs"], ["files", "Files"], ["ranks", "Ranks"],
  ["attempts", "Attempts"]];
// Each tab keeps its view in the run page's URL under names of its own, so a tab link keeps
// every tab's (Charts -> Logs -> Charts shows the charts as they were, as Back would):
//   charts: x, logy, smooth, ranks, keys, zoom    logs: rank, level, grep, i
//   files: file, version, file_rank               ranks: tfield    (overview, attempts: none)
// A name read by one tab must not be written by another (x= is the charts' axis).
function tabHref(path, id) {
  const [page, query] = location.hash.replace(/^#\/?/, "").split("?");
  const q = new URLSearchParams(page === "run" ? query || "" : "");
  if (q.get("path") !== path) return `#/run?${new URLSearchParams({ path, tab: id })}`;
  q.set("tab", id);
  return `#/run?${q}`;
}

export function paramsTree(obj) {
  const root = h("div", { class: "tree" });
  const walk = (o, into) => {
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        const d = h("details", { open: true }, h("summary", {}, h("span", { class: "k", text: k })));
        walk(v, d);
        into.append(d);
      } else {
        into.append(h("div", { class: "leaf" }, h("span", { class: "k", text: k }), " = ",
          h("span", { class: "v", text: fmt.value(v) })));
      }
    }
  };
  walk(obj, root);
  if (!Object.keys(obj).length) root.append(h("p", { class: "muted", text: "no params" }));
  return root;
}

function runInfo(run) {
  const r = run.row, info = run.info;
  const kv = [["status", fmt.statusBadge(h, r.status)], ["experiment", r.experiment], ["run id", r.run_id],
    ["url", run.url], ["started", fmt.time(r.started)], ["ended", fmt.time(r.ended)], ["duration", fmt.duration(r.duration)],
    ["last step", fmt.value(r.last_step)], ["world size", fmt.value(r.world_size)], ["attempts", r.attempts],
    ["hosts", (info.hosts || []).join(", ")], ["launcher", info.launcher || "–"], ["tags", (info.tags || []).join(", ") || "–"],
    ["python", info.python || "–"], ["torch", info.torch || "–"], ["argv", (info.argv || []).join(" ") || "–"],
    ["git", info.git ? fmt.value(info.git) : "–"]];
  // a run id run again with another config: its rows mix both (which attempt changed what)
  const changed = (run.attempts || []).filter((a) => a.params_changed).map((a) => `attempt ${a.attempt}: ${paramsChanged(a)}`);
  if (changed.length) kv.push(["params changed", h("span", { class: "params-changed", id: "params-changed",
    text: `${changed.join("; ")} — rows of earlier attempts were written with the earlier values` })]);
  // (a multi-line cause, gloo's or a rank's list, keeps its lines)
  if (info.error) kv.push(["error", h("span", { class: "error-text", text: `${info.error.type || ""}: ${info.error.message || ""}` })]);
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of kv) dl.append(h("dt", { text: k }), h("dd", {}, v));
  const left = h("div", { id: "run-info" }, h("h4", { text: "Run" }), dl);
  if (run.readme) left.append(h("h4", { text: "Notes (README.md)" }), h("pre", { class: "text", text: run.readme }));
  return left;
}

function overview(run) {
  return h("div", { class: "cols" }, runInfo(run), h("div", {}, h("h4", { text: "Params" }), paramsTree(run.params)));
}

export async function runPage(view, params) {
  const path = params.get("path") || "";
  const tab = params.get("tab") || "charts";
  const run = await get("run", { run: path });
  if (!view.isConnected) return {}; // (the user went on while it was read: nothing of it is shown)
  setCrumbs({ text: "runs", href: "#/" }, { text: run.row.experiment }, { text: run.row.run_id });
  const badge = fmt.statusBadge(h, run.row.status);
  badge.id = "run-status";
  const tabs = h("nav", { class: "tabs" });
  for (const [id, label] of TABS) {
    tabs.append(h("a", { href: tabHref(path, id), text: label, class: tab === id ? "active" : "", "data-tab": id }));
  }
  // the links follow the view as the tab on screen writes it (setParams: an option, a zoom)
  const relink = () => { for (const a of tabs.querySelectorAll("a[data-tab]")) a.href = tabHref(path, a.dataset.tab); };
  window.addEventListener(VIEW_CHANGED, relink);
  const body = h("div", { id: "tab-body" });
  // the metrics that went NaN/inf: a badge beside the status and a note (the first few; all
  // in its title), painted again as a live run's polls say more
  const nfBadge = h("span", { class: "badge nonfinite-badge", text: "NaN/inf", hidden: true });
  const nfNote = h("p", { class: "nonfinite-note", id: "run-nonfinite", hidden: true });
  let nfShown = "";
  const paintNonfinite = (from) => {
    const items = fmt.nonfiniteItems(from), text = items.join(", ");
    if (text === nfShown) return;
    nfShown = text;
    nfBadge.hidden = nfNote.hidden = !items.length;
    nfBadge.title = nfNote.title = `NaN/inf values: ${text}`;
    const most = 4;
    nfNote.textContent = `NaN/inf values: ${items.slice(0, most).join(", ")}` + (items.length > most ? ` (+${items.length - most} more)` : "");
  };
  paintNonfinite(run.row.nonfinite_from);
  view.append(h("h2", {}, run.path, badge, nfBadge), nfNote);
  // a torn record: which file and why, on every tab; the rest of the run is shown as usual
  if (run.damaged && run.damaged.length) {
    view.append(h("div", { class: "damaged-note", id: "run-damaged", role: "status" },
      h("b", { text: "This run is damaged." }), ...run.damaged.map((m) => h("p", { text: m }))));
  }
  view.append(tabs, body);
  let page = { dispose() {}, poll: async () => {} };
  if (tab === "overview") body.append(overview(run));
  else if (tab === "charts") page = await chartsTab(body, run, params);
  else if (tab === "logs") page = await logsTab(body, run, params);
  else if (tab === "files") page = await filesTab(body, run, params);
  else if (tab === "ranks") page = await ranksTab(body, run, params);
  else if (tab === "attempts") body.append(attemptsTab(run));
  let gone = false, poller = { stop() {} };
  const dispose = () => { gone = true; window.removeEventListener(VIEW_CHANGED, relink); poller.stop(); page.dispose && page.dispose(); };
  // the tab's first read answered after the user went on: route() disposes the page unseen
  if (!view.isConnected) return { dispose };
  let running = run.row.status === "running";
  setLive(running);
  // a poll in flight when the page is left is dropped: it must not light another page's live badge
  poller = new Poller(async () => {
    const st = await get("status", { run: path });
    if (gone) return;
    if (st.status !== badge.textContent) {
      badge.textContent = st.status;
      badge.className = `badge status-${st.status}`;
    }
    paintNonfinite(st.nonfinite_from);
    const was = running;
    running = st.status === "running";
    setLive(running);
    if (tab === "overview" && (was || running)) { // duration, last step, ended: read again
      const info = body.querySelector("#run-info");
      const fresh = await get("run", { run: path });
      if (gone) return;
      if (info && info.isConnected) info.replaceWith(runInfo(fresh));
    }
    if (page.poll) await page.poll(st);
  }, 1500).start();
  relink();
  return { dispose };
}
