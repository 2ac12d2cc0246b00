// Histograms over steps as a heat map (x: logged step, y: value, shade: count), like
// TensorBoard's distributions; the newest one as bars below it.
import { get } from "./api.js";
import { h } from "./dom.js";

export function histogramCard(run, key) {
  const canvas = h("canvas", { class: "hist", width: 900, height: 220 });
  const note = h("span", { class: "sub" });
  const card = h("div", { class: "card", "data-hist": key }, h("h3", {}, key, note), canvas);
  get("histogram", { run, key }).then((hg) => {
    note.textContent = `${hg.rows} histograms · steps ${hg.step[0]}–${hg.step[hg.step.length - 1]}`;
    const dpr = window.devicePixelRatio || 1; // draw at the displayed size: no stretched text
    canvas.width = Math.round((canvas.clientWidth || 600) * dpr);
    canvas.height = Math.round(220 * dpr);
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    const W = canvas.width / dpr, H = canvas.height / dpr, n = hg.step.length;
    let lo = Infinity, hi = -Infinity, cmax = 0;
    hg.edges.forEach((e) => { lo = Math.min(lo, e[0]); hi = Math.max(hi, e[e.length - 1]); });
    hg.counts.forEach((c) => c.forEach((v) => { cmax = Math.max(cmax, v || 0); }));
    const y = (v) => H - 14 - ((v - lo) / (hi - lo || 1)) * (H - 24);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    for (let i = 0; i < n; i++) {
      const x0 = 40 + (i * (W - 44)) / n, w = Math.max(1, (W - 44) / n);
      const e = hg.edges[i], c = hg.counts[i];
      for (let j = 0; j < c.length; j++) {
        const a = cmax ? (c[j] || 0) / cmax : 0;
        if (!a) continue;
        ctx.fillStyle = `rgba(47,111,219,${0.08 + 0.92 * a})`;
        ctx.fillRect(x0, y(e[j + 1]), w, Math.max(1, y(e[j]) - y(e[j + 1])));
      }
    }
    ctx.fillStyle = "#6b7385"; ctx.font = "11px system-ui";
    ctx.fillText(String(+hi.toPrecision(4)), 2, 12); ctx.fillText(String(+lo.toPrecision(4)), 2, H - 16);
    ctx.fillText(`step ${hg.step[0]}`, 40, H - 2); ctx.fillText(`step ${hg.step[n - 1]}`, W - 80, H - 2);
  }).catch((e) => { note.textContent = e.message; });
  return card;
}
