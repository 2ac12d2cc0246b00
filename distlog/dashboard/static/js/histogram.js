// Histograms over steps as a heat map (x: logged step, y: value, shade: count), like
// TensorBoard's distributions; below it one step's histogram as bars (the newest; a click on
// the heat map picks another step).
import { get } from "./api.js";
import { h } from "./dom.js";

const AXIS = "#6b7385";
const num = (v) => String(+(+v).toPrecision(4));

// a canvas drawn at its displayed size (no stretched text); returns its 2-D context and size
function sized(canvas, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round((canvas.clientWidth || 600) * dpr);
  canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width / dpr, height);
  ctx.font = "11px system-ui";
  return [ctx, canvas.width / dpr, height];
}

// A card of one key's histograms: { el, rows (the histograms read: null until the first read
// answers), failed (the error of the last read, null once one answers), busy (a read in
// flight), refresh() (read them again: a live run logged more, or the last read failed) }. A
// step clicked stays picked across a refresh; else the newest is shown. A read that fails is
// said in the card (what was drawn before stays) until one succeeds.
export function histogramCard(run, key) {
  const canvas = h("canvas", { class: "hist", width: 900, height: 220, title: "click a step to show its histogram below" });
  const bars = h("canvas", { class: "hist-bars", width: 900, height: 140 });
  const note = h("span", { class: "sub" });
  const picked = h("div", { class: "sub hist-picked" });
  const problem = h("div", { class: "chart-error", role: "alert", hidden: true }); // (under the title)
  const card = h("div", { class: "card", "data-hist": key }, h("h3", {}, key, note), problem, canvas, picked, bars);
  const self = { el: card, rows: null, failed: null, busy: false, refresh: read };
  card.__card = self; // (as a chart's element holds its chart)
  let hg = null, n = 0, lo = 0, hi = 0, cmax = 0, colW = 1, chosen = null, seq = 0; // chosen: a step clicked

  function paint(sel) { // the heat map, the step shown below outlined
    const [ctx, W, H] = sized(canvas, 220);
    const y = (v) => H - 14 - ((v - lo) / (hi - lo || 1)) * (H - 24);
    colW = (W - 44) / n;
    for (let i = 0; i < n; i++) {
      const x0 = 40 + i * colW, w = Math.max(1, colW);
      const e = hg.edges[i], c = hg.counts[i];
      for (let j = 0; j < c.length; j++) {
        const a = cmax ? (c[j] || 0) / cmax : 0;
        if (!a) continue;
        ctx.fillStyle = `rgba(47,111,219,${0.08 + 0.92 * a})`;
        ctx.fillRect(x0, y(e[j + 1]), w, Math.max(1, y(e[j]) - y(e[j + 1])));
      }
    }
    if (n > 1) {
      ctx.strokeStyle = "#e8590c"; ctx.lineWidth = 1.5;
      ctx.strokeRect(40 + sel * colW + 0.75, 9.75, Math.max(1, colW) - 1.5, H - 23.5);
    }
    ctx.fillStyle = AXIS;
    ctx.fillText(num(hi), 2, 12); ctx.fillText(num(lo), 2, H - 16);
    ctx.fillText(`step ${hg.step[0]}`, 40, H - 2);
    if (n > 1) { ctx.textAlign = "right"; ctx.fillText(`step ${hg.step[n - 1]}`, W - 4, H - 2); }
  }

  function show(i) { // one step's counts as bars over its own bin edges
    paint(i);
    const e = hg.edges[i], c = hg.counts[i];
    const total = c.reduce((a, v) => a + (v || 0), 0), top = c.reduce((a, v) => Math.max(a, v || 0), 0); // (no spread: any bin count)
    card.dataset.step = hg.step[i];
    picked.textContent = `step ${hg.step[i]}: ${total} values in ${c.length} bins, at most ${top} in one`;
    const [b, BW, BH] = sized(bars, 140);
    const x = (v) => 40 + ((v - e[0]) / (e[e.length - 1] - e[0] || 1)) * (BW - 48);
    for (let j = 0; j < c.length; j++) {
      if (!c[j]) continue;
      const hgt = top ? (c[j] / top) * (BH - 30) : 0;
      b.fillStyle = "rgba(47,111,219,0.75)";
      b.fillRect(x(e[j]) + 0.5, BH - 16 - hgt, Math.max(1, x(e[j + 1]) - x(e[j]) - 1), hgt);
    }
    b.fillStyle = AXIS;
    b.fillText(String(top), 2, 12); b.fillText("0", 2, BH - 16);
    b.fillText(num(e[0]), 40, BH - 2);
    b.textAlign = "right"; b.fillText(num(e[e.length - 1]), BW - 8, BH - 2);
  }

  function draw(res) {
    hg = res; n = hg.step.length; self.rows = hg.rows;
    note.textContent = n === 1 ? `1 histogram · step ${hg.step[0]}`
      : `${hg.rows} histograms · steps ${hg.step[0]}–${hg.step[n - 1]}${hg.rows > n ? ` (${n} shown)` : ""}`;
    lo = Infinity; hi = -Infinity; cmax = 0;
    hg.edges.forEach((e) => { lo = Math.min(lo, e[0]); hi = Math.max(hi, e[e.length - 1]); });
    hg.counts.forEach((c) => c.forEach((v) => { cmax = Math.max(cmax, v || 0); }));
    const i = chosen === null ? -1 : hg.step.indexOf(chosen);
    show(i < 0 ? n - 1 : i);
  }

  // (reads overlap when a poll asks again before the last answered: the latest one is drawn)
  function read() {
    const my = ++seq;
    self.busy = true;
    return get("histogram", { run, key }).then((res) => {
      if (my !== seq) return;
      self.failed = null; problem.hidden = true; problem.textContent = ""; delete card.dataset.error;
      draw(res);
    }, (e) => {
      if (my !== seq) return;
      self.failed = e; card.dataset.error = e.message;
      problem.textContent = `Could not read the histograms: ${e.message}. ` +
        (hg ? "The card shows what was read before; it is read again" : "Read again") + " at the next update.";
      problem.hidden = false;
    }).finally(() => { if (my === seq) self.busy = false; });
  }

  canvas.addEventListener("click", (ev) => {
    if (!hg) return;
    const r = canvas.getBoundingClientRect();
    const i = Math.min(n - 1, Math.max(0, Math.floor((ev.clientX - r.left - 40) / colW)));
    chosen = i === n - 1 ? null : hg.step[i]; // the newest: it follows new steps
    show(i);
  });
  read();
  return self;
}
