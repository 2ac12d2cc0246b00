// A page's view state in its URL (#/page?k=v): written with history.replaceState, so Back,
// reload and a shared link give the same view, and no hashchange re-renders the page.
// ``onPage``: the page writing it (nothing is written once the user is on another one).
export const VIEW_CHANGED = "distlog:view"; // a window event after each setParams

export function setParams(onPage, values) {
  const raw = location.hash.replace(/^#\/?/, "");
  const [page, query] = raw.split("?");
  if ((page || "runs") !== onPage) return; // (the user went to another page meanwhile)
  const p = new URLSearchParams(query || "");
  for (const [k, v] of Object.entries(values)) {
    p.delete(k);
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else if (v === true) p.set(k, "1");
    else if (v !== undefined && v !== null && v !== "" && v !== false) p.set(k, String(v));
  }
  const q = p.toString();
  history.replaceState(history.state, "", `#/${page || ""}${q ? "?" + q : ""}`);
  window.dispatchEvent(new Event(VIEW_CHANGED)); // (links built from the view follow it: a run's tabs)
}
