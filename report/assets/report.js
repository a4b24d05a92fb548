"use strict";
// FRD-UVAD report: draws the tables and curves of the inline JSON (#report-data); no network, no library.
// URL hash: "#open=N" opens the first N rows; "#selftest" sorts by every column, opens every row, waits for every
// image and writes what it saw into the element #selftest (the tests read it with headless Chromium).
const ERRORS = [];
window.addEventListener("error", (e) => ERRORS.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => ERRORS.push("unhandled rejection: " + e.reason));
const consoleError = console.error.bind(console);
console.error = (...args) => { ERRORS.push(args.join(" ")); consoleError(...args); };

const DATA = JSON.parse(document.getElementById("report-data").textContent);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const SVGNS = "http://www.w3.org/2000/svg";

// ---- small helpers ----
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c);
  return node;
}
function svgEl(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function fmt(v, digits = 4) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %"; }
function clock(s) {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = (s % 60).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}
function unpack(p) {  // see report/data.py pack(): uint16 levels, little-endian, base64
  const bin = atob(p.q), out = new Float32Array(p.n), scale = (p.hi - p.lo) / 65535;
  for (let i = 0; i < p.n; i++) out[i] = p.lo + (bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8)) * scale;
  return out;
}
function niceTicks(lo, hi, count = 5) {
  const span = hi - lo || 1, raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push(+t.toPrecision(12));
  return out;
}
function hashParam(name) {
  const m = location.hash.slice(1).split("&").map((p) => p.split("=")).find(([k]) => k === name);
  return m ? (m[1] === undefined ? true : decodeURIComponent(m[1])) : null;
}

// ---- charts (inline SVG) ----
// series: {name, color, y (array), x (array) or x0/dx, steps (each value held until the next x), dash}
function chart(o) {
  const W = o.width || 560, H = o.height || 240, m = {l: 50, r: 14, t: 12, b: 36};
  const root = svgEl("svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H});
  const [x0, x1, y0, y1] = [o.xmin, o.xmax, o.ymin, o.ymax];
  const sx = (x) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const sy = (y) => H - m.b - ((y - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  for (const t of niceTicks(y0, y1, 4)) {
    root.append(svgEl("line", {class: "grid", x1: m.l, x2: W - m.r, y1: sy(t), y2: sy(t)}));
    const label = svgEl("text", {x: m.l - 5, y: sy(t) + 4, "text-anchor": "end"});
    label.textContent = o.yfmt ? o.yfmt(t) : t;
    root.append(label);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    root.append(svgEl("line", {class: "axis", x1: sx(t), x2: sx(t), y1: H - m.b, y2: H - m.b + 4}));
    const label = svgEl("text", {x: sx(t), y: H - m.b + 16, "text-anchor": "middle"});
    label.textContent = o.xfmt ? o.xfmt(t) : t;
    root.append(label);
  }
  for (const [a, b, color, title] of o.spans || []) {
    const r = svgEl("rect", {x: sx(a), y: m.t, width: Math.max(1, sx(b) - sx(a)), height: H - m.t - m.b,
                              fill: color || "#d62728", "fill-opacity": 0.16});
    if (title) { const t = svgEl("title"); t.textContent = title; r.append(t); }
    root.append(r);
  }
  root.append(svgEl("line", {class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b}));
  root.append(svgEl("line", {class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b}));
  if (o.diagonal) root.append(svgEl("line", {x1: sx(x0), y1: sy(y0), x2: sx(x1), y2: sy(y1), stroke: "#bbb",
                                             "stroke-dasharray": "4 3"}));
  for (const h of o.hlines || []) {
    root.append(svgEl("line", {x1: m.l, x2: W - m.r, y1: sy(h.y), y2: sy(h.y), stroke: h.color || "#777",
                               "stroke-dasharray": "5 3"}));
  }
  for (const v of o.vlines || []) {
    root.append(svgEl("line", {x1: sx(v.x), x2: sx(v.x), y1: m.t, y2: H - m.b, stroke: v.color || "#777",
                               "stroke-dasharray": "3 3"}));
  }
  o.series.forEach((s, k) => {
    const xs = (i) => (s.x ? s.x[i] : s.x0 + i * s.dx);
    const parts = [];
    for (let i = 0; i < s.y.length; i++) {
      if (s.y[i] === null || s.y[i] === undefined) continue;
      const px = sx(xs(i)).toFixed(1), py = sy(s.y[i]).toFixed(1);
      parts.push((parts.length ? "L" : "M") + px + " " + py);
      if (s.steps) parts.push("L" + sx(s.x ? (s.x[i + 1] ?? s.end) : xs(i + 1)).toFixed(1) + " " + py);
    }
    const path = svgEl("path", {class: "series", d: parts.join(""), stroke: s.color || COLORS[k % COLORS.length]});
    if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
    root.append(path);
  });
  for (const mk of o.markers || []) {
    const c = svgEl("circle", {cx: sx(mk.x), cy: sy(mk.y), r: 3.5, fill: mk.color || "#000"});
    if (mk.title) { const t = svgEl("title"); t.textContent = mk.title; c.append(t); }
    if (mk.onclick) { c.style.cursor = "pointer"; c.addEventListener("click", mk.onclick); }
    root.append(c);
  }
  if (o.xlabel) { const t = svgEl("text", {x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle"});
    t.textContent = o.xlabel; root.append(t); }
  if (o.ylabel) { const t = svgEl("text", {x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
                                           transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`});
    t.textContent = o.ylabel; root.append(t); }
  if (o.onclick) {
    root.style.cursor = "pointer";
    root.addEventListener("click", (e) => {
      const box = root.getBoundingClientRect(), px = ((e.clientX - box.left) / box.width) * W;
      o.onclick(x0 + ((px - m.l) / (W - m.l - m.r)) * (x1 - x0));
    });
  }
  return root;
}
function legend(items) {
  return el("div", {class: "legend"}, items.map(([name, color, dash]) =>
    el("span", {}, el("i", {style: `background:${color};${dash ? "opacity:.6" : ""}`}), name)));
}
function box(title, ...children) { return el("div", {class: "chart-box"}, el("h3", {text: title}), ...children); }
function spark(values, width = 160, height = 28, threshold = null) {
  const s = svgEl("svg", {class: "spark", width, height, viewBox: `0 0 ${width} ${height}`});
  let lo = 0, hi = 1;
  for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const n = Math.max(values.length, 1), parts = [];
  for (let i = 0; i < values.length; i++) {
    const y = (height - 2 - ((values[i] - lo) / (hi - lo || 1)) * (height - 4)).toFixed(1);
    parts.push((i ? "L" : "M") + ((i / n) * width).toFixed(1) + " " + y + "L" + (((i + 1) / n) * width).toFixed(1) + " " + y);
  }
  if (threshold !== null) {
    const y = height - 2 - ((threshold - lo) / (hi - lo || 1)) * (height - 4);
    s.append(svgEl("line", {x1: 0, x2: width, y1: y, y2: y, stroke: "#bbb", "stroke-dasharray": "3 2"}));
  }
  s.append(svgEl("path", {d: parts.join(""), fill: "none", stroke: COLORS[0], "stroke-width": 1}));
  return s;
}
function infoList(pairs) {
  return el("dl", {class: "info"}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [el("dt", {text: k}), el("dd", {}, v)]));
}

// ---- sortable table with lazy cells and detail rows ----
// columns: {key, label, title, num, get(row) -> sort value, cell(row) -> node|string, first: "asc"|"desc", lazy}
function table(columns, rows, opts) {
  const thead = el("thead"), tbody = el("tbody");
  const node = el("table", {class: "sortable", id: opts.id}, thead, tbody);
  const trs = rows.map((row, i) => {
    const tr = el("tr", {class: "row", "data-key": row.key});
    tr.cells_ = columns.map((c) => {
      const td = el("td", {class: c.num ? "num" : null});
      if (!c.lazy) td.append(c.cell ? c.cell(row) : String(c.get(row) ?? "–"));
      tr.append(td);
      return td;
    });
    tr.row = row; tr.index = i; tr.lazyDone = false; tr.detail = null;
    tr.addEventListener("click", (e) => { if (!e.target.closest("a")) toggle(tr); });
    return tr;
  });
  const state = {key: null, dir: null};
  const ths = columns.map((c) => {
    const th = el("th", {class: c.num ? "num" : null, title: c.title || null, "data-key": c.key, text: c.label});
    th.addEventListener("click", () => sort(c.key, state.key === c.key ? (state.dir === "asc" ? "desc" : "asc")
                                                                        : (c.first || "asc")));
    return th;
  });
  thead.append(el("tr", {}, ths));
  function renderLazy(tr) {
    if (tr.lazyDone) return;
    tr.lazyDone = true;
    columns.forEach((c, k) => { if (c.lazy) tr.cells_[k].append(c.cell(tr.row)); });
  }
  const observer = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) { renderLazy(e.target); observer.unobserve(e.target); }
  }, {rootMargin: "400px"}) : null;
  function toggle(tr, open) {
    const want = open === undefined ? !tr.classList.contains("open") : open;
    tr.classList.toggle("open", want);
    if (want && !tr.detail) {
      tr.detail = el("tr", {class: "detail"}, el("td", {colspan: columns.length}, opts.detail(tr.row)));
    }
    if (want) tr.after(tr.detail); else if (tr.detail) tr.detail.remove();
  }
  function sort(key, dir) {
    const c = columns.find((col) => col.key === key), sign = dir === "asc" ? 1 : -1;
    const value = (tr) => c.get(tr.row);
    const sorted = [...trs].sort((a, b) => {
      const va = value(a), vb = value(b);
      const na = va === null || va === undefined || Number.isNaN(va), nb = vb === null || vb === undefined || Number.isNaN(vb);
      if (na || nb) return na === nb ? a.index - b.index : (na ? 1 : -1);  // no value: last either way
      if (va < vb) return -sign;
      if (va > vb) return sign;
      return a.index - b.index;
    });
    for (const tr of sorted) { tbody.append(tr); if (tr.detail && tr.classList.contains("open")) tbody.append(tr.detail); }
    state.key = key; state.dir = dir;
    ths.forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
    ths[columns.indexOf(c)].classList.add("sorted-" + dir);
  }
  for (const tr of trs) { tbody.append(tr); if (observer) observer.observe(tr); else renderLazy(tr); }
  if (opts.sort) sort(opts.sort[0], opts.sort[1]);
  const count = el("span", {class: "count"});
  const filter = el("input", {type: "search", placeholder: "filter by name", "aria-label": "filter by name"});
  filter.addEventListener("input", () => {
    const needle = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const tr of trs) {
      const hide = needle !== "" && !String(tr.row.key).toLowerCase().includes(needle);
      tr.hidden = hide;
      if (tr.detail) tr.detail.hidden = hide;
      shown += hide ? 0 : 1;
    }
    count.textContent = needle ? `${shown} of ${trs.length} shown` : "";
  });
  const wrapped = el("div", {}, trs.length > 10 ? el("div", {class: "filter"}, filter, count) : null, node);
  const order = () => [...tbody.querySelectorAll("tr.row")].map((tr) => tr.getAttribute("data-key"));
  return {node: wrapped, columns, state, order, ths,
          renderAll: () => trs.forEach(renderLazy),
          open: (n) => [...tbody.querySelectorAll("tr.row")].slice(0, n).forEach((tr) => { renderLazy(tr); toggle(tr, true); })};
}

// ---- evaluation: one or more checkpoints on a test set ----
function evaluationPage(main) {
  const cks = DATA.checkpoints, videos = DATA.videos, fps = DATA.frames_per_snippet;
  const info = DATA.info || {};
  main.append(infoList(Object.entries(info)));
  const frames = videos.reduce((a, v) => a + v.frames, 0);
  const anomalousFrames = videos.reduce((a, v) => a + v.gt_share * v.frames, 0);
  const withAnomaly = videos.filter((v) => v.gt_share > 0).length;
  const first = cks[0].metrics;
  const cards = el("div", {class: "cards"});
  const card = (value, label) => cards.append(el("div", {class: "card"}, el("div", {class: "value", text: value}),
                                                el("div", {class: "label", text: label})));
  if (first.auc_all !== undefined) card(fmt(first.auc_all), `frame AUC (${cks[0].name})`);
  if (first.ap !== undefined) card(fmt(first.ap), `AP (${cks[0].name})`);
  card(String(videos.length), `videos, ${withAnomaly} with an anomaly`);
  card(frames.toLocaleString("en"), `frames, ${pct(anomalousFrames / frames)} anomalous`);
  const below = videos.filter((v) => v.auc[0] !== null && v.auc[0] < 0.5).length;
  card(String(below), "anomalous videos with AUC below 0.5");
  main.append(cards);

  main.append(el("h2", {text: "Metrics"}));
  const mt = el("table", {class: "metrics"});
  mt.append(el("tr", {}, el("th", {text: "metric"}), cks.map((c) => el("th", {class: "num"}, c.name,
    c.label_free === null || c.label_free === undefined ? null : el("div", {},
      el("span", {class: c.label_free ? "pill" : "pill warn",
                  text: c.label_free ? "chosen without test labels" : "best on test: chosen with test labels"})))),
    el("th", {text: "what it means"})));
  for (const [key, name, meaning] of DATA.meanings) {
    if (!cks.some((c) => c.metrics[key] !== undefined)) continue;
    mt.append(el("tr", {}, el("td", {text: name}), cks.map((c) => el("td", {class: "num", text: fmt(c.metrics[key])})),
                 el("td", {class: "meaning", text: meaning})));
  }
  main.append(mt);

  main.append(el("h2", {text: "Curves, all test frames"}));
  const names = cks.map((c, k) => [c.name, COLORS[k % COLORS.length]]);
  const roc = chart({xmin: 0, xmax: 1, ymin: 0, ymax: 1, width: 420, height: 360, diagonal: true,
                     xlabel: "false positive rate", ylabel: "true positive rate",
                     series: cks.map((c, k) => ({name: c.name, x: c.roc.x, y: c.roc.y, color: COLORS[k % COLORS.length]}))});
  const prev = anomalousFrames / frames;
  const pr = chart({xmin: 0, xmax: 1, ymin: 0, ymax: 1, width: 420, height: 360, xlabel: "recall", ylabel: "precision",
                    hlines: [{y: prev}],
                    series: cks.map((c, k) => ({name: c.name, x: c.pr.x, y: c.pr.y, color: COLORS[k % COLORS.length]}))});
  main.append(el("div", {class: "charts"},
    box("ROC (dashed: chance)", roc, legend(cks.map((c, k) => [`${c.name}: AUC ${fmt(c.metrics.auc_all)}`, names[k][1]]))),
    box(`Precision-recall (dashed: anomalous share ${pct(prev)})`, pr,
        legend(cks.map((c, k) => [`${c.name}: AP ${fmt(c.metrics.ap)}`, names[k][1]])))));

  main.append(el("h2", {text: "Videos, worst first"}));
  main.append(el("p", {class: "note", text: "Worst first (#): videos holding an anomaly by their frame AUC, lowest " +
    "first, then normal videos by their highest score (false alarms), then videos anomalous throughout by their " +
    "highest score, lowest first (missed). Click a column to sort by it, a row to see its scores over the " +
    "ground truth (shaded)."}));
  const columns = [
    {key: "worst", label: "#", num: true, get: (v) => v.worst, title: "worst-first rank"},
    {key: "name", label: "video", get: (v) => v.name},
    {key: "frames", label: "frames", num: true, get: (v) => v.frames, first: "desc",
     cell: (v) => v.frames.toLocaleString("en")},
    {key: "gt_share", label: "anomalous", num: true, get: (v) => v.gt_share, first: "desc", cell: (v) => pct(v.gt_share),
     title: "share of the video's frames labelled anomalous"},
  ];
  cks.forEach((c, k) => {
    const suffix = cks.length > 1 ? ` ${c.name}` : "";
    columns.push({key: `auc_${k}`, label: "AUC" + suffix, num: true, get: (v) => v.auc[k],
                  title: "frame AUC inside the video (– for a video with a single class)",
                  cell: (v) => el("span", {class: v.auc[k] !== null && v.auc[k] < 0.5 ? "bad" : null, text: fmt(v.auc[k])})});
    columns.push({key: `max_${k}`, label: "max score" + suffix, num: true, get: (v) => v.max[k], first: "desc",
                  cell: (v) => el("span", {class: v.gt_share === 0 && v.max[k] >= DATA.threshold ? "bad" : null,
                                           text: fmt(v.max[k], 3)})});
  });
  columns.push({key: "curve", label: "scores", lazy: true, get: (v) => v.max[0], first: "desc",
                cell: (v) => spark(unpack(v.scores[0]), 160, 28, DATA.threshold)});
  const rows = videos.map((v) => ({...v, key: v.name}));
  const detail = (v) => {
    const series = v.scores.map((p, k) => ({name: cks[k].name, y: unpack(p), x0: 0, dx: v.step * fps, steps: true,
                                              color: COLORS[k % COLORS.length]}));
    series.forEach((s) => { s.end = v.frames; });
    const c = chart({xmin: 0, xmax: v.frames, ymin: 0, ymax: 1, width: 900, height: 230, xlabel: "frame",
                     ylabel: "anomaly score", series, hlines: [{y: DATA.threshold}],
                     spans: v.spans.map(([a, b]) => [a, b, "#d62728", `ground truth: frames ${a}–${b}`])});
    return el("div", {}, c, legend([...cks.map((ck, k) => [`${ck.name}: AUC ${fmt(v.auc[k])}, max ${fmt(v.max[k], 3)}`,
                                                          COLORS[k % COLORS.length]]),
                                    ["ground truth", "rgba(214,39,40,.3)"], [`threshold ${DATA.threshold}`, "#777", true]]),
                  v.step > 1 ? el("p", {class: "note", text: `each point is the highest of ${v.step} snippets`}) : null);
  };
  const t = table(columns, rows, {id: "videos", sort: ["worst", "asc"], detail});
  main.append(t.node);
  return t;
}

// ---- scored videos ----
function videosPage(main) {
  const vids = DATA.videos, rules = DATA.rules || {};
  const seconds = vids.reduce((a, v) => a + v.seconds, 0), events = vids.reduce((a, v) => a + v.events.length, 0);
  const cards = el("div", {class: "cards"});
  const card = (value, label) => cards.append(el("div", {class: "card"}, el("div", {class: "value", text: value}),
                                                el("div", {class: "label", text: label})));
  card(String(vids.length), "videos scored");
  card(clock(seconds), "of video");
  card(String(events), `events, in ${vids.filter((v) => v.events.length).length} videos`);
  main.append(cards);
  main.append(infoList([["threshold", String(rules.threshold)], ["events merged across gaps under", `${rules.min_gap} s`],
                        ["events shorter than this dropped", `${rules.min_length} s`]]));
  main.append(el("h2", {text: "Videos, highest score first"}));
  main.append(el("p", {class: "note", text: "Click a row for its timeline, events, frames and files; click an " +
    "event, a thumbnail or the timeline to play the video from there (when this browser can play the file)."}));
  const columns = [
    {key: "name", label: "video", get: (v) => v.name},
    {key: "seconds", label: "length", num: true, get: (v) => v.seconds, first: "desc", cell: (v) => clock(v.seconds)},
    {key: "events", label: "events", num: true, get: (v) => v.events.length, first: "desc"},
    {key: "max", label: "max score", num: true, get: (v) => v.max, first: "desc",
     cell: (v) => el("span", {class: v.max >= rules.threshold ? "bad" : null, text: fmt(v.max, 3)})},
    {key: "max_time", label: "at", num: true, get: (v) => v.max_time, cell: (v) => clock(v.max_time)},
    {key: "curve", label: "scores", lazy: true, get: (v) => v.max, first: "desc",
     cell: (v) => spark(unpack(v.scores), 200, 28, rules.threshold)},
    {key: "peak", label: "peak frame", lazy: true, get: (v) => v.thumbs.length, first: "desc",
     cell: (v) => {
       if (!v.thumbs.length) return "";
       const best = v.thumbs.reduce((a, b) => (Math.abs(b.t - v.max_time) < Math.abs(a.t - v.max_time) ? b : a));
       return el("img", {class: "row-thumb", src: best.src, alt: `frame at ${clock(best.t)}`});
     }},
  ];
  const rows = vids.map((v) => ({...v, key: v.name}));
  const t = table(columns, rows, {id: "videos", sort: ["max", "desc"], detail: videoDetail});
  main.append(t.node);
  return t;
}
function videoDetail(v) {
  const rules = DATA.rules || {}, fps = DATA.frames_per_snippet;
  let player = null;
  const seek = (time) => {
    if (!player) return;
    const go = () => { player.currentTime = Math.max(0, time); const p = player.play(); if (p) p.catch(() => {}); };
    if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, {once: true});
  };
  const y = unpack(v.scores), dt = (v.step * fps) / v.fps;
  const timeline = chart({xmin: 0, xmax: Math.max(v.seconds, 1e-3), ymin: 0, ymax: 1, width: 720, height: 210,
    xlabel: "time (s)", ylabel: "anomaly score", hlines: [{y: rules.threshold}],
    series: [{name: "score", y, x0: 0, dx: dt, steps: true, end: v.seconds}],
    spans: v.events.map((e) => [e.start, e.end, "#d62728", `event ${clock(e.start)} – ${clock(e.end)}, peak ${fmt(e.peak_score, 3)}`]),
    markers: v.events.map((e) => ({x: e.peak_time, y: e.peak_score, color: "#d62728", title: `peak ${fmt(e.peak_score, 3)} at ${clock(e.peak_time)}`,
                                   onclick: () => seek(e.start)})),
    onclick: (time) => seek(time)});
  const thumbs = el("div", {class: "thumbs"}, v.thumbs.map((th) =>
    el("figure", {class: "thumb", title: "play from here", onclick: () => seek(th.t)},
       el("img", {src: th.src, alt: `frame at ${clock(th.t)}`}), el("figcaption", {text: clock(th.t)}))));
  const events = el("table", {class: "events"},
    el("tr", {}, ["#", "start", "end", "length", "peak", "peak at"].map((h) => el("th", {class: h === "#" ? null : "num", text: h}))),
    v.events.map((e, i) => el("tr", {class: "row", title: "play from the event's start", style: "cursor:pointer",
                                     onclick: () => seek(e.start)},
      el("td", {text: String(i + 1)}), el("td", {class: "num", text: clock(e.start)}), el("td", {class: "num", text: clock(e.end)}),
      el("td", {class: "num", text: (e.end - e.start).toFixed(1) + " s"}), el("td", {class: "num", text: fmt(e.peak_score, 3)}),
      el("td", {class: "num", text: clock(e.peak_time)}))));
  const labels = {"scores.csv": "scores.csv", "events.json": "events.json", "timeline.png": "timeline.png",
                  "annotated": "annotated copy"};
  const links = el("div", {class: "links"}, Object.entries(v.links).map(([k, href]) =>
    el("a", {href, target: "_blank", text: labels[k] || k})));
  const side = el("div", {});
  if (v.src) {
    player = el("video", {controls: "", preload: "metadata"});
    const note = el("p", {class: "note"});
    const setSource = (href, mime) => {
      player.src = href;
      note.textContent = mime && !player.canPlayType(mime) ? `This browser may not play ${mime} files: open the file instead.` : "";
    };
    player.addEventListener("error", () => { note.textContent = "This browser cannot play this file here: open it with a video player."; });
    setSource(v.src, v.mime);
    side.append(player, note);
    if (v.links.annotated) {
      const btn = el("button", {type: "button", text: "show the annotated copy"});
      btn.addEventListener("click", () => {
        const annotated = player.getAttribute("src") !== v.links.annotated;
        setSource(annotated ? v.links.annotated : v.src, annotated ? "" : v.mime);
        btn.textContent = annotated ? "show the original" : "show the annotated copy";
      });
      side.append(btn);
    }
    side.append(el("p", {class: "note"}, "file: ", el("a", {href: v.src, target: "_blank", text: v.video})));
  } else {
    side.append(el("p", {class: "note", text: `${v.video}: a live source, no file to play`}));
  }
  return el("div", {class: "detail-grid"},
    el("div", {}, timeline, v.thumbs.length ? thumbs : el("p", {class: "note", text: "no event: no thumbnail"}),
       v.events.length ? events : el("p", {class: "note", text: `no score reached the threshold ${rules.threshold}`}),
       v.stopped ? el("p", {class: "bad", text: `stopped early: ${v.stopped}`}) : null, links),
    side);
}

// ---- training run ----
function trainingPage(main) {
  const h = DATA.history, s = DATA.settings || {}, key = DATA.select;
  const iters = h.map((r) => r.iteration), has = (k) => h.some((r) => r[k] !== undefined && r[k] !== null);
  const shown = ["dataset_name", "feature_size", "max_epoch", "max_iters", "max_seqlen", "lr", "aux", "recipe", "lab",
                 "cross_clip", "Vitblock_num", "select_metric", "output_dir"];
  main.append(infoList(shown.filter((k) => k in s).map((k) => [k, String(s[k])])));
  main.append(el("details", {class: "settings"}, el("summary", {text: "every setting"}),
                 infoList(Object.entries(s).map(([k, v]) => [k, String(v)]))));
  const cards = el("div", {class: "cards"});
  const card = (value, label) => cards.append(el("div", {class: "card"}, el("div", {class: "value", text: value}),
                                                el("div", {class: "label", text: label})));
  const last = h[h.length - 1] || {};
  card(String(h.length), "snapshots");
  card(String(last.iteration ?? "–"), `iterations (epoch ${last.epoch ?? "–"})`);
  let best = null;
  if (has(key)) {
    best = h.reduce((a, r) => (r[key] !== null && (a === null || r[key] > a[key]) ? r : a), null);
    card(fmt(best[key]), `best test ${key} (iteration ${best.iteration}), chosen with test labels`);
    card(fmt(last[key]), `last test ${key} (iteration ${last.iteration})`);
  } else {
    main.append(el("p", {class: "note", text: "No test set: nothing was evaluated; the curves show the losses and the pseudo labels."}));
  }
  main.append(cards);
  if (!h.length) return null;
  const xmin = Math.min(...iters), xmax = Math.max(...iters, xmin + 1);
  const lines = (keys, o) => {
    const present = keys.filter(has);
    const ys = present.flatMap((k) => h.map((r) => r[k]).filter((v) => v !== null && v !== undefined));
    let ymin = o.ymin ?? Math.min(...ys), ymax = o.ymax ?? Math.max(...ys);
    if (ymax - ymin < 1e-9) { ymin -= 0.5; ymax += 0.5; }
    const series = present.map((k, i) => ({name: k, x: iters, y: h.map((r) => (o.map ? o.map(r, k) : r[k])),
                                           color: COLORS[i % COLORS.length]}));
    return box(o.title, chart({xmin, xmax, ymin, ymax, width: 560, height: 240, xlabel: "iteration",
                               ylabel: o.ylabel, series, vlines: o.vlines,
                               markers: series.flatMap((se) => se.y.map((y, i) => ({x: iters[i], y, color: se.color,
                                 title: `${se.name} ${fmt(y)} at iteration ${iters[i]}`})).filter((mk) => mk.y !== null && mk.y !== undefined))}),
               legend(series.map((se) => [se.name, se.color])));
  };
  main.append(el("h2", {text: "Learning curves"}));
  const boxes = [lines(["loss", "Lre", "Ldi", "Ls"], {title: "losses (means since the snapshot before)", ylabel: "loss"})];
  const share = (r, k) => (r[k] === null || r[k] === undefined || !r.labels_total ? null : r[k] / r.labels_total);
  boxes.push(lines(["pseudo_labels", "recon_labels", "aux_labels"], {title: "snippets labelled anomalous, share of those seen",
    ylabel: "share", ymin: 0, map: share}));
  if (has("pseudo_precision")) boxes.push(lines(["pseudo_precision", "pseudo_recall"], {title: "pseudo labels against the true training labels",
    ylabel: "", ymin: 0, ymax: 1}));
  const tested = ["auc_all", "ap", "auc_abn", "auc_abn_video"].filter(has);
  if (tested.length) boxes.push(lines(tested, {title: "test metrics per evaluation", ylabel: "", vlines: best ? [{x: best.iteration, color: "#2ca02c"}] : []}));
  if (has("bank_size") && h.some((r) => r.bank_size)) boxes.push(lines(["bank_size"], {title: "latent anomaly bank", ylabel: "samples"}));
  main.append(el("div", {class: "charts"}, boxes));
  main.append(el("h2", {text: "Snapshots"}));
  const keys = ["iteration", "epoch", "loss", "Lre", "Ldi", "Ls", "pseudo_labels", "recon_labels", "aux_labels",
                "auc_all", "auc_abn", "far_all", "eer", "ap"].filter(has);
  const columns = keys.map((k) => ({key: k, label: k, num: true, get: (r) => r[k], first: k === "iteration" ? "asc" : "desc",
    cell: (r) => (Number.isInteger(r[k]) ? String(r[k]) : fmt(r[k]))}));
  const t = table(columns, h.map((r) => ({...r, key: String(r.iteration)})), {id: "snapshots", sort: ["iteration", "asc"],
    detail: (r) => infoList(Object.entries(r).filter(([k]) => k !== "key").map(([k, v]) => [k, typeof v === "number" && !Number.isInteger(v) ? fmt(v, 6) : String(v)]))});
  main.append(t.node);
  return t;
}

// ---- self-test (headless browser) ----
async function selftest(t) {
  const result = {kind: DATA.kind, rows: 0, sorts: {}};
  if (t) {
    result.rows = t.order().length;
    result.initial = t.order();
    for (const c of t.columns) {
      t.ths[t.columns.indexOf(c)].click();
      result.sorts[c.key] = {dir: t.state.dir, order: t.order()};
      t.ths[t.columns.indexOf(c)].click();
      result.sorts[c.key].dir2 = t.state.dir;
      result.sorts[c.key].order2 = t.order();
    }
    t.renderAll();
    t.open(result.rows);
  }
  const images = [...document.images];
  await Promise.all(images.map((img) => (img.complete ? null : new Promise((r) => {
    img.addEventListener("load", r); img.addEventListener("error", r);
  }))));
  result.images = {total: images.length, loaded: images.filter((i) => i.complete && i.naturalWidth > 0).length};
  result.charts = document.querySelectorAll("svg.chart").length;
  result.curves = document.querySelectorAll("svg.chart path.series").length;
  result.videos = document.querySelectorAll("video").length;
  result.errors = ERRORS.slice();
  document.body.append(el("pre", {id: "selftest", text: JSON.stringify(result)}));
}

function start() {
  const main = document.getElementById("main");
  document.getElementById("generated").textContent = `written ${DATA.generated} by FRD-UVAD`;
  const pages = {evaluation: evaluationPage, videos: videosPage, training: trainingPage};
  const t = pages[DATA.kind](main);
  const open = hashParam("open");
  if (t && open) t.open(Number(open) || 1);
  if (hashParam("selftest")) {
    selftest(t).catch((e) => {
      ERRORS.push(String(e && e.stack || e));
      document.body.append(el("pre", {id: "selftest", text: JSON.stringify({kind: DATA.kind, errors: ERRORS})}));
    });
  }
}
try { start(); } catch (e) { ERRORS.push(String(e && e.stack || e)); throw e; }
