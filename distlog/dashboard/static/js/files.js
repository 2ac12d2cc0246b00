// The files of a run: a gallery of images, the table (with versions), and a preview —
// images inline, video and audio players (range requests), text and JSON as text, download.
import { ApiError, get, url } from "./api.js";
import { clear, h } from "./dom.js";
import * as fmt from "./fmt.js";
import { setParams } from "./url.js";

const TEXT_MAX = 256 * 1024;
const isText = (m, name) => /^text\/|json|yaml|csv|xml/.test(m) || /\.(txt|md|log|json|ya?ml|csv|py|sh|cfg|ini|toml)$/i.test(name);

// a text file's first TEXT_MAX bytes; a failed answer (the bytes gone from the store: 404, the
// store failing: 502) is an ApiError with the server's reason, as api.js gives for JSON reads
async function textOf(href, max = TEXT_MAX) {
  const res = await fetch(href, { credentials: "same-origin", headers: { Range: `bytes=0-${max - 1}` } });
  if (res.ok) return res.text();
  let reason = `${res.status} ${res.statusText}`;
  try { const body = await res.json(); if (body && body.error) reason = `${body.error} (HTTP ${res.status})`; } catch (e) { /* not JSON */ }
  throw new ApiError(res.status, reason);
}

export async function filesTab(body, run, params) {
  const res = await get("files", { run: run.path });
  const byPath = new Map();
  for (const f of res.files) {
    if (!byPath.has(f.path)) byPath.set(f.path, []);
    byPath.get(f.path).push(f);
  }
  for (const list of byPath.values()) list.sort((a, b) => a.version - b.version || a.rank - b.rank);
  if (!byPath.size) { body.append(h("div", { class: "empty", text: "This run saved no files." })); return {}; }
  const preview = h("div", { class: "preview card", id: "file-preview" }, h("p", { class: "muted", text: "Pick a file." }));
  const gallery = h("div", { class: "gallery", id: "gallery" });
  const table = h("table", { class: "grid", id: "files-table" },
    h("thead", {}, h("tr", {}, ...["path", "versions", "size", "type", "step", "rank"].map((c) => h("th", { text: c })))));
  const tbody = h("tbody");
  table.append(tbody);
  // the rank travels too: several ranks may save one name (the same version number each)
  const src = (f, extra = {}) => url("file", { run: run.path, path: f.path, version: f.version, rank: f.rank, ...extra });
  // why an image or a player did not load its bytes (an element says no why): the first byte
  // asked for again gives the server's reason, or the bytes came and the browser cannot play them
  const whyNot = (f) => (f.size ? textOf(src(f), 1) : Promise.resolve())
    .then(() => new Error("this browser cannot decode it"), (e) => e);
  // newest version, lowest rank of it (what the API gives without a rank)
  const latest = (versions) => {
    const v = versions[versions.length - 1].version;
    return versions.find((r) => r.version === v);
  };

  // a file the user picks is the view (reload, Back and a copied link show it again), and
  // the version picked of it (none in the URL: its newest)
  function pick(path, version, rank) {
    setParams("run", { file: path, version, file_rank: rank });
    show(path, version, rank);
  }

  function show(path, version, rank) {
    const versions = byPath.get(path);
    // (a link's rank that saved no such version: the version from the rank that did)
    const f = versions.find((v) => v.version === version && (rank === undefined || v.rank === rank))
      || versions.find((v) => v.version === version) || latest(versions);
    for (const tr of tbody.children) tr.classList.toggle("sel", tr.dataset.path === path);
    clear(preview);
    const manyRanks = new Set(versions.map((v) => v.rank)).size > 1;
    const vsel = h("select", { onchange: () => { const [v, r] = vsel.value.split(":").map(Number); pick(path, v, r); } },
      ...versions.map((v) => h("option", { value: `${v.version}:${v.rank}`, selected: v === f,
        text: `version ${v.version}` + (manyRanks ? ` · rank ${v.rank}` : "") })));
    preview.append(h("h3", { text: f.path }), h("div", { class: "toolbar" }, vsel,
      h("span", { class: "muted", text: `${fmt.bytes(f.size)} · ${f.media_type} · rank ${f.rank} · step ${fmt.value(f.step)} · ${fmt.time(f.time)}` }),
      h("a", { href: src(f, { download: 1 }), text: "download", download: f.name })));
    const m = f.media_type || "";
    // what the preview says in place of el when the file cannot be shown: the server's reason
    const problem = (el, why) => el.replaceWith(h("p", { class: "preview-error", id: "preview-error", role: "alert",
      text: `Could not show ${f.path}: ${why}. Try the download link, or check that the store still holds this run's files.` }));
    const media = (el) => { el.addEventListener("error", () => whyNot(f).then((e) => problem(el, e.message))); return el; };
    if (m.startsWith("image/")) preview.append(media(h("img", { src: src(f), alt: f.path, id: "preview-image" })));
    else if (m.startsWith("video/")) preview.append(media(h("video", { src: src(f), controls: true, preload: "metadata" })));
    else if (m.startsWith("audio/")) preview.append(media(h("audio", { src: src(f), controls: true, preload: "metadata" })));
    else if (isText(m, f.name)) {
      const pre = h("pre", { class: "text", id: "preview-text", text: "loading…" });
      preview.append(pre);
      // (an empty file has no byte 0 to ask for: the server answers a range of it 416)
      (f.size ? textOf(src(f)) : Promise.resolve("")).then((t) => {
        if (/json/.test(m)) { try { t = JSON.stringify(JSON.parse(t), null, 2); } catch (e) { /* shown as is */ } }
        pre.textContent = t + (f.size > TEXT_MAX ? `\n… (${fmt.bytes(f.size)} in all: download to see everything)` : "");
      }).catch((e) => problem(pre, e.message)); // (never the error's body as if it were the file's text)
    } else preview.append(h("p", { class: "muted", text: "No preview for this type; download it." }));
  }

  for (const [path, versions] of byPath) {
    const f = latest(versions);
    const ranks = [...new Set(versions.map((v) => v.rank))].sort((a, b) => a - b);
    tbody.append(h("tr", { "data-path": path, onclick: () => pick(path) },
      h("td", {}, h("a", { href: "#", text: path, onclick: (e) => e.preventDefault() })), h("td", { class: "num", text: new Set(versions.map((v) => v.version)).size }),
      h("td", { class: "num", text: fmt.bytes(f.size) }), h("td", { text: f.media_type }),
      h("td", { class: "num", text: fmt.value(f.step) }), h("td", { class: "num", text: ranks.join(", ") })));
    // an image: one figure per rank that saved its newest version
    for (const g of versions.filter((v) => v.version === f.version)) {
      if (!(g.media_type || "").startsWith("image/") || gallery.children.length >= 48) continue;
      const caption = ranks.length > 1 ? `${path} · rank ${g.rank}` : path;
      // a thumbnail whose bytes did not load says why in its place (no broken-image icon); the
      // server's whole reason is in its title and, clicked, in the preview
      const img = h("img", { src: src(g), alt: caption, loading: "lazy", onerror: () => whyNot(g).then((e) => {
        fig.title = `${caption}: ${e.message}`;
        img.replaceWith(h("p", { class: "thumb-error", text: e.status === 404
          ? "Cannot show it: its bytes are not in the store (HTTP 404). Click for the server's reason."
          : `Cannot show it: ${e.message}` }));
      }) });
      const fig = h("figure", { onclick: () => pick(path, g.version, g.rank), title: caption }, img, h("figcaption", { text: caption }));
      gallery.append(fig);
    }
  }
  if (gallery.children.length) body.append(gallery);
  body.append(h("div", { class: "files" }, h("div", { class: "table-wrap" }, table), preview));
  const want = params.get("file");
  const num = (k) => (params.get(k) === null || params.get(k) === "" ? undefined : Number(params.get(k)));
  if (want && byPath.has(want)) show(want, num("version"), num("file_rank"));
  else show(byPath.keys().next().value);
  return {};
}
