// Page chrome shared by every page: error banner, breadcrumbs, the live badge.
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

export function setLive(on) { $("#live-badge").hidden = !on; }
