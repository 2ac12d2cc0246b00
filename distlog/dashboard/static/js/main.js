// The router: #/ (runs), #/run?path=..&tab=.., #/compare?run=..&run=..
import { get } from "./api.js";
import { $ } from "./dom.js";
import { polled, setCrumbs, setLive, showError } from "./ui.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { comparePage } from "./compare.js";

const hooks = (window.distlog = window.distlog || { charts: {}, pages: 0 });
let current = null; // { dispose() } of the page on screen
// each route() is numbered: a page whose first read answers after the user went on (Back,
// Forward, another run, a tab) is disposed, not shown; its view is a #view no longer on screen
let routes = 0;
const RUN_RETRY_S = 3; // a run page whose run is not there (404) looks for it again this often

function parse() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [page, query] = raw.split("?");
  return { page: page || "runs", params: new URLSearchParams(query || "") };
}

async function route() {
  const my = ++routes;
  if (current && current.dispose) current.dispose();
  current = null;
  showError(null);
  polled(null);
  setLive(false);
  hooks.charts = {};
  setCrumbs({ href: "#/", text: "runs" }); // (the page sets its own: a page that fails to open keeps no other page's)
  const { page, params } = parse();
  // a new #view each time: what a page still being read paints goes into its own, detached
  const old = $("#view"), view = old.cloneNode(false);
  old.replaceWith(view);
  let shown = null;
  try {
    if (page === "run") shown = await runPage(view, params);
    else if (page === "compare") shown = await comparePage(view, params);
    else shown = await runsPage(view, params);
  } catch (e) {
    if (my !== routes) return; // (the page left: its error is not the one on screen)
    if (page === "run" && e.status === 404) {
      // a link opened before its run started (or a run not there yet on a slow store): looked
      // for again, as the runs table finds runs as they start, until the user goes elsewhere
      showError(new Error(`${e.message} — looking again every ${RUN_RETRY_S} s (a run appears here once its job starts)`));
      setTimeout(() => { if (my === routes) route(); }, RUN_RETRY_S * 1000);
    } else {
      showError(e);
      console.error(e);
    }
  }
  if (my !== routes) { if (shown && shown.dispose) shown.dispose(); return; }
  current = shown;
  hooks.pages++;
}

window.addEventListener("hashchange", route);
get("meta").then((m) => { $("#root-url").textContent = m.root; hooks.meta = m; }).catch(showError);
route();
