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
// the header, with the time updates stopped (`since`: when the poll that failed was sent, for
// one still waiting), until a poll succeeds; a new page starts clear
export function polled(err, since = new Date()) {
  const note = $("#contact");
  if (!err) { live.failing = null; note.hidden = true; note.textContent = ""; paintLive(); stale(null); return; }
  if (!live.failing) live.failing = { since };
  const at = live.failing.since.toTimeString().slice(0, 8);
  stale(at);
  note.textContent = err instanceof Unreachable ? `lost contact with the server since ${at}, retrying`
    : `updates failing since ${at}: ${err.message}; retrying`;
  note.title = err instanceof Unreachable ? `${err.message}. This page shows what it read before ${at}.` : err.message;
  note.hidden = false;
  paintLive();
}

// the page's run statuses ("running", ...) are what the server said last: while the polls
// fail they are greyed, with the time they are of (a run may have ended meanwhile)
// (a badge's own title, a failed run's cause or a rank's heartbeat record, is kept aside
// while the stale one shows, and given back: removing every title lost those for good)
function stale(at) {
  for (const b of document.querySelectorAll("#view .badge[class*='status-']")) {
    b.classList.toggle("stale", !!at);
    if (at) {
      if (!("ownTitle" in b.dataset)) b.dataset.ownTitle = b.title || "";
      b.title = `status as of ${at}: no update since`;
    } else if ("ownTitle" in b.dataset) {
      if (b.dataset.ownTitle) b.title = b.dataset.ownTitle; else b.removeAttribute("title");
      delete b.dataset.ownTitle;
    }
  }
}

// A key filter typed by a person (a regex, case-insensitive): `re` is the last valid pattern's
// (null: every key) and `apply()` runs once typing rests, only for a valid pattern; an invalid
// one is said beside the box, with the browser's reason, and what is shown stays as it was.
// `typed()` runs at each key (the URL follows the text as typed).
export class KeyFilter {
  constructor(id, value, { typed, apply, wait }) {
    this.re = null;
    this.shown = ""; // the pattern `re` is of
    this.input = h("input", { type: "search", id, placeholder: "filter keys (regex)", value, oninput: () => {
      typed(); clearTimeout(this.timer);
      this.timer = setTimeout(() => { if (this.check()) apply(); }, wait);
    } });
    this.note = h("span", { class: "filter-error", id: `${id}-error`, role: "alert", hidden: true });
    this.el = h("span", { class: "key-filter" }, this.input, this.note);
    this.check();
  }
  get value() { return this.input.value; }
  test(key) { return !this.re || this.re.test(key); }
  check() {
    const text = this.input.value;
    let re;
    try { re = text ? new RegExp(text, "i") : null; } catch (e) {
      this.note.textContent = `Not a valid pattern (${e.message}): still showing ${this.shown ? `the keys matching "${this.shown}"` : "every key"}. ` +
        "Fix the pattern, or put \\ before ( ) [ ] * + ? to match the character itself.";
      this.note.hidden = false;
      return false;
    }
    this.re = re; this.shown = text;
    this.note.hidden = true; this.note.textContent = "";
    return true;
  }
  stop() { clearTimeout(this.timer); }
}
