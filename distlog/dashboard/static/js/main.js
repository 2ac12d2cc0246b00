// The router: #/ (runs), #/run?path=..&tab=.., #/compare?run=..&run=..
import { get } from "./api.js";
import { $, clear } from "./dom.js";
import { setLive, showError } from "./ui.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { comparePage } from "./compare.js";

const hooks = (window.distlog = window.distlog || { charts: {}, pages: 0 });
let current = null; // { dispose() } of the page on screen

function parse() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [page, query] = raw.split("?");
  return { page: page || "runs", params: new URLSearchParams(query || "") };
}

async function route() {
  if (current && current.dispose) current.dispose();
  current = null;
  showError(null);
  setLive(false);
  hooks.charts = {};
  const { page, params } = parse();
  const view = clear($("#view"));
  try {
    if (page === "run") current = await runPage(view, params);
    else if (page === "compare") current = await comparePage(view, params);
    else current = await runsPage(view, params);
  } catch (e) {
    showError(e);
    console.error(e);
  }
  hooks.pages++;
}

window.addEventListener("hashchange", route);
get("meta").then((m) => { $("#root-url").textContent = m.root; hooks.meta = m; }).catch(showError);
route();
