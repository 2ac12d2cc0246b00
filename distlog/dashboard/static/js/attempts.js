// The attempts of a run (preempted, requeued, restarted) on one time axis.
import { h } from "./dom.js";
import * as fmt from "./fmt.js";

// "lr 0.1 -> 0.001, ..." of an attempt that changed params an earlier one stored ("" if none)
export function paramsChanged(a) {
  return Object.entries(a.params_changed || {}).map(([k, v]) => `${k} ${v[0]} -> ${v[1]}`).join(", ");
}

export function attemptsTab(run) {
  const atts = run.attempts;
  const now = Date.now() / 1000;
  const t0 = Math.min(...atts.map((a) => a.started ?? now));
  const t1 = Math.max(...atts.map((a) => a.ended ?? now), t0 + 1);
  const span = t1 - t0;
  const box = h("div", { class: "timeline", id: "timeline" });
  for (const a of atts) {
    const s = a.started ?? t0, e = a.ended ?? now;
    const label = `attempt ${a.attempt} · ${a.status || "?"} · ${a.world_size ?? "?"} rank(s) · ${fmt.duration(e - s)}` +
      (a.resume_step !== null && a.resume_step !== undefined ? ` · resumed at step ${a.resume_step}` : "");
    box.append(h("div", { class: "tl-row" }, h("div", { class: `tl-bar bg-${a.status || "unknown"}`, title: label, text: label,
      "data-attempt": a.attempt, style: { left: `${(100 * (s - t0)) / span}%`, width: `${Math.max(0.5, (100 * (e - s)) / span)}%` } })));
  }
  // the axis' own span in the middle, said as such: a lone "1.0s" under a 0.1 s attempt read
  // as that attempt's duration (each bar names its own)
  box.append(h("div", { class: "tl-axis" }, h("span", { text: fmt.time(t0) }),
    h("span", { class: "tl-span", text: `axis: ${fmt.duration(span)}` }), h("span", { text: fmt.time(t1) })));
  const table = h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ...["attempt", "status", "started", "ended", "world", "hosts", "resume step", "params changed", "error"].map((c) => h("th", { text: c })))));
  const tb = h("tbody");
  for (const a of atts) tb.append(h("tr", {}, h("td", { text: a.attempt }), h("td", {}, fmt.statusBadge(h, a.status || "unknown")),
    h("td", { text: fmt.time(a.started) }), h("td", { text: fmt.time(a.ended) }), h("td", { text: fmt.value(a.world_size) }),
    h("td", { text: (a.hosts || []).join(", ") }), h("td", { text: fmt.value(a.resume_step) }),
    h("td", { class: "params-changed", text: paramsChanged(a) }),
    h("td", { text: a.error ? `${a.error.type || ""}: ${a.error.message || ""}` : "" })));
  table.append(tb);
  return h("div", {}, box, h("h4", { text: "Attempts" }), h("div", { class: "table-wrap" }, table));
}
