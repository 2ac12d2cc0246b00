// Page chrome shared by every page: error banner, breadcrumbs, the live badge, the notice of
// background refreshes that fail.
import { Unreachable } from "./api.js";
import { $, clear, h } from "./dom.js";

export function showError(err) {
  const b = $("#banner");
  if (!err) { b.hidden = true; b.textContent = ""; return; }
  b.hidden = false;
  b.textContent = err.message || String(err);
}

export function setCrumbs(...items) {
  const c = clear($("#crumbs"));
  items.forEach((it, i) => {
    if (i) c.append(h("span", { text: "/" }));
    c.append(it.href ? h("a", { href: it.href, text: it.text }) : h("b", { text: it.text }));
  });
}

// "live" is claimed only while the page's polls answer: a page whose updates fail is no live view
const live = { on: false, failing: null }; // failing: {since: Date} from the first failed poll
const paintLive = () => { $("#live-badge").hidden = !live.on || !!live.failing; };
export function setLive(on) { live.on = on; paintLive(); }

// each background poll's outcome (err: null when it succeeded): a failure is said, small, in
// the header, with the time updates stopped, until a poll succeeds; a new page starts clear
export function polled(err) {
  const note = $("#contact");
  if (!err) { live.failing = null; note.hidden = true; note.textContent = ""; paintLive(); return; }
  if (!live.failing) live.failing = { since: new Date() };
  const at = live.failing.since.toTimeString().slice(0, 8);
  note.textContent = err instanceof Unreachable ? `lost contact with the server since ${at}, retrying`
    : `updates failing since ${at}: ${err.message}; retrying`;
  note.title = err instanceof Unreachable ? `${err.message}. This page shows what it read before ${at}.` : err.message;
  note.hidden = false;
  paintLive();
}

