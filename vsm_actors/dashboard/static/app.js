// The vsm dashboard page: polls /api/tree every second and, when the ledger moved (its `seq`),
// refreshes the other panels. Everything is drawn with the DOM (text only, never innerHTML, so
// ledger text cannot inject markup) and plots as inline SVG: no library, no request elsewhere.
"use strict";

const POLL_MS = 1000;
const PLOT_EVERY_MS = 10000; // a plot reads every trace: refreshed far less often than the tree,
// and never more often than ten times what the last one took (seconds on a ledger of millions)
const PAGE = 50;
const SVG = "http://www.w3.org/2000/svg";

const state = {
  seq: null, offset: 0, q: "", status: "", directive: null, trial: null,
  plotKind: "fitness", plotAt: 0, plotSeq: null, plotEvery: PLOT_EVERY_MS, timer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function get(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `${url}: HTTP ${response.status}`);
  return data;
}

const num = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"));
function cost(value) {
  if (value === null || value === undefined) return "-";
  if (value === 0) return "0";
  if (Math.abs(value) >= 100) return value.toFixed(2);
  return Math.abs(value) >= 0.01 ? value.toFixed(4) : value.toFixed(6);
}
const time = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-");
function statusClass(status) {
  if (!status || status === "running") return "running";
  return ["Failed", "Rejected", "NeedsHuman"].includes(status) ? "failed" : "ok";
}

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
  $("live").textContent = error ? "disconnected" : "live";
  $("live").className = error ? "live down" : "live";
}

// -- organization ----------------------------------------------------------------------------

function renderTree(data) {
  $("ledger").textContent = data.ledger;
  const g = data.genome;
  $("genome").textContent = g ? `${g.name} v${g.version} (${g.id})` : "";
  const d = data.directives, t = data.totals;
  $("cards").replaceChildren(...[
    ["nodes", num(data.nodes.length)], ["directives", num(d.total)], ["in flight", num(d.in_flight)],
    ["completed", num(d.completed)], ["failed", num(d.failed)], ["tasks", num(t.tasks)],
    ["tokens", num(t.tokens)], ["cost", cost(t.cost)], ["events", num(data.events)],
  ].map(([label, value]) => el("div", { class: "card", "data-card": label },
    el("span", { class: "value" }, value), el("span", { class: "label" }, label))));
  $("changes").replaceChildren(...(g ? g.changed_since_boot : []).map((c) => el("li", {}, c)));
  $("no-genome").hidden = !!g;
  document.body.dataset.nodes = String(data.nodes.length);
  document.body.dataset.seq = String(data.seq);
  $("tree").querySelector("tbody").replaceChildren(...data.nodes.map((n) => el("tr",
    { class: `node ${n.kind}`, "data-node-id": n.node_id },
    el("td", { class: "name", "data-depth": Math.min(n.depth, 12) },
      el("span", { class: "glyph" }, n.kind === "leaf" ? "●" : "◆"), " ", n.name,
      n.name !== n.node_id ? el("span", { class: "muted" }, ` ${n.node_id}`) : null),
    el("td", {}, n.kind === "leaf" && n.operation ? `leaf · ${n.operation}` : n.kind),
    el("td", { class: `state ${n.state.split(" ")[0]}` }, n.state),
    el("td", {}, n.lifecycle),
    el("td", { class: "num" }, num(n.tasks)),
    el("td", { class: `num ${n.failures ? "failed" : ""}` }, num(n.failures)),
    el("td", { class: "num" }, num(n.tokens)),
    el("td", { class: "num" }, cost(n.cost)),
    el("td", { class: "num" }, num(n.queue)))));
}

// -- directives and timeline -----------------------------------------------------------------

async function refreshDirectives() {
  const params = new URLSearchParams({ q: state.q, status: state.status, limit: PAGE, offset: state.offset });
  const data = await get(`/api/directives?${params}`);
  const last = Math.min(data.offset + data.rows.length, data.matched);
  $("directive-count").textContent = data.matched
    ? `${num(data.offset + 1)}–${num(last)} of ${num(data.matched)}${data.matched !== data.total ? ` (${num(data.total)} in all)` : ""}`
    : (data.total ? "no directive matches" : "no directives yet");
  $("newer").disabled = data.offset === 0;
  $("older").disabled = last >= data.matched;
  $("directive-table").querySelector("tbody").replaceChildren(...data.rows.map((r) => el("tr", {
    class: `directive ${r.id === state.directive ? "selected" : ""}`, "data-directive-id": r.id, tabindex: "0",
    onclick: () => selectDirective(r.id),
    onkeydown: (e) => { if (e.key === "Enter") selectDirective(r.id); },
  },
  el("td", { class: "id", title: r.id }, r.short_id),
  el("td", {}, r.title || "-"),
  el("td", {}, r.task_class || "-"),
  el("td", { class: `status ${statusClass(r.status)}` }, r.status),
  el("td", {}, time(r.accepted_at)),
  el("td", { class: "num" }, r.duration_ms === null ? "-" : num(Math.round(r.duration_ms))),
  el("td", { class: "num" }, num(r.tasks)),
  el("td", { class: "error-text", title: r.error || "" }, r.error || ""))));
}

function selectDirective(id) {
  state.directive = id;
  for (const row of document.querySelectorAll("tr.directive")) {
    row.classList.toggle("selected", row.dataset.directiveId === id);
  }
  refreshTimeline().catch(showError);
}

async function refreshTimeline() {
  if (!state.directive) return;
  const data = await get(`/api/directives/${encodeURIComponent(state.directive)}/timeline`);
  const box = $("timeline");
  box.hidden = false;
  const row = data.directive || {};
  const head = el("h3", {}, `Timeline of ${row.short_id || data.directive_id} `,
    el("span", { class: "muted" }, data.title ? `“${data.title}” ` : ""),
    el("span", { class: `status ${statusClass(row.status)}` }, row.status || ""),
    el("button", { type: "button", class: "close", onclick: () => { state.directive = null; box.hidden = true; } }, "×"));
  const width = 900, label = 260, rowH = 22, span = Math.max(data.span_ms, 1);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${data.intervals.length * rowH + 24}`, class: "gantt",
    role: "img", "aria-label": "timeline" });
  data.intervals.forEach((iv, i) => {
    const y = i * rowH + 4, scale = (width - label - 10) / span;
    const name = `${"  ".repeat(iv.depth)}${iv.node_id}${iv.short_task_id ? ` · ${iv.short_task_id}` : ""}`;
    chart.append(svg("text", { x: 4 + iv.depth * 10, y: y + 14, class: "gantt-label" }, name));
    const bar = svg("rect", { x: label + iv.offset_ms * scale, y, height: rowH - 6, rx: 3,
      width: Math.max(iv.duration_ms * scale, 2), class: `bar ${statusClass(iv.status)}` });
    bar.append(svg("title", {}, `${iv.node_id} ${iv.status} ${Math.round(iv.duration_ms)} ms` +
      (iv.tokens !== null ? ` · ${iv.tokens} tokens` : "") + (iv.error ? ` · ${iv.error}` : "")));
    chart.append(bar);
  });
  chart.append(svg("text", { x: label, y: data.intervals.length * rowH + 18, class: "axis" }, "0 ms"));
  chart.append(svg("text", { x: width - 4, y: data.intervals.length * rowH + 18, class: "axis end" },
    `${num(Math.round(data.span_ms))} ms`));
  const errors = data.failures.map((f) => el("li", { class: "failed" },
    `${f.node_id || f.received_by || "?"}: ${f.error}`));
  box.replaceChildren(head, data.intervals.length ? chart : el("p", { class: "muted" }, "No routes recorded yet."),
    errors.length ? el("ul", { class: "failures" }, errors) : "");
}

// -- trials ----------------------------------------------------------------------------------

async function refreshTrials() {
  const data = await get("/api/trials");
  $("no-trials").hidden = data.trials.length > 0;
  $("trial-table").hidden = data.trials.length === 0;
  $("trial-table").querySelector("tbody").replaceChildren(...data.trials.map((t) => el("tr", {
    class: `trial ${t.trial_id === state.trial ? "selected" : ""}`, "data-trial-id": t.trial_id, tabindex: "0",
    onclick: () => selectTrial(t.trial_id),
  },
  el("td", { class: "id", title: t.trial_id }, t.short_id), el("td", {}, t.status), el("td", {}, t.mode),
  el("td", {}, `${t.base_genome_id} → ${t.candidate_genome_id}`), el("td", { class: "num" }, num(t.routed_tasks)),
  el("td", { class: "num" }, num(t.tokens)), el("td", { class: "num" }, t.score.toFixed(3)),
  el("td", {}, t.decision || "-"), el("td", {}, t.reason || t.hypothesis))));
  if (state.trial) await refreshTrial();
}

function selectTrial(id) {
  state.trial = id;
  refreshTrials().catch(showError);
}

async function refreshTrial() {
  const t = await get(`/api/trials/${encodeURIComponent(state.trial)}`);
  const diff = t.diff === null
    ? el("p", { class: "muted" }, `no snapshot of ${t.missing_snapshots.join(", ")}: no diff`)
    : el("ul", { class: "diff" }, t.diff.length ? t.diff.map((c) => el("li", { class: c.change }, c.text))
      : [el("li", {}, "no differences")]);
  const objectives = t.objectives
    ? el("table", { class: "objectives" }, el("tbody", {}, Object.entries(t.objectives).map(([k, v]) =>
      el("tr", {}, el("th", {}, k.replaceAll("_", " ")), el("td", { class: "num" }, num(v))))))
    : el("p", { class: "muted" }, "not evaluated by selection");
  $("trial-detail").hidden = false;
  $("trial-detail").replaceChildren(
    el("h3", {}, `Trial ${t.short_id} `, el("span", { class: "muted" }, `${t.status} · ${t.mode} · ${t.source}`)),
    el("p", {}, t.hypothesis),
    el("div", { class: "columns" },
      el("div", {}, el("h4", {}, "Genome diff"), diff),
      el("div", {}, el("h4", {}, "Objectives"), objectives,
        t.selection ? el("p", { class: "muted" }, `selection score ${t.selection.score} · ${t.selection.policy}`) : "")),
    el("h4", {}, "Gene"), el("pre", {}, JSON.stringify(t.patch, null, 2)));
}

// -- plots -----------------------------------------------------------------------------------

async function refreshPlot(force) {
  const due = Date.now() - state.plotAt >= state.plotEvery && state.plotSeq !== state.seq;
  if (!force && !due) return;
  const started = Date.now();
  state.plotAt = started;
  state.plotSeq = state.seq;
  const data = await get(state.plotKind === "fitness" ? "/api/fitness" : `/api/plot/${state.plotKind}`);
  state.plotEvery = Math.max(PLOT_EVERY_MS, 10 * (Date.now() - started));
  $("plot").replaceChildren(data.x.length ? drawPlot(data) : el("p", { class: "muted" }, "No task traces yet."));
}

function drawPlot(data) {
  const W = 900, H = 320, L = 60, R = 20, T = 30, B = 45;
  const ys = Object.values(data.lines).flat();
  let lo = Math.min(0, ...ys), hi = Math.max(...ys, lo + 1);
  const x0 = Math.min(...data.x), x1 = Math.max(...data.x, x0 + 1);
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => H - B - ((y - lo) / (hi - lo)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img", "aria-label": data.title });
  chart.append(svg("text", { x: W / 2, y: 18, class: "title" }, data.title));
  chart.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis-line" }));
  chart.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis-line" }));
  for (const y of [lo, (lo + hi) / 2, hi]) {
    chart.append(svg("text", { x: L - 6, y: py(y) + 4, class: "axis end" }, Number(y.toFixed(2)).toString()));
  }
  for (const x of [x0, x1]) chart.append(svg("text", { x: px(x), y: H - B + 16, class: "axis mid" }, String(x)));
  chart.append(svg("text", { x: W / 2, y: H - 8, class: "axis mid" }, data.x_label));
  Object.entries(data.lines).forEach(([name, values], i) => {
    const points = values.map((y, j) => `${px(data.x[j])},${py(y)}`).join(" ");
    chart.append(svg("polyline", { points, class: `series s${i % 4}` }));
    if (values.length < 60) {
      values.forEach((y, j) => chart.append(svg("circle", { cx: px(data.x[j]), cy: py(y), r: 3, class: `dot s${i % 4}` })));
    }
    chart.append(svg("text", { x: W - R - 4, y: T + 14 * (i + 1), class: `legend end s${i % 4}` }, name));
  });
  for (const mark of data.marks) {
    chart.append(svg("line", { x1: px(mark.x), y1: T, x2: px(mark.x), y2: H - B, class: "mark" }));
    chart.append(svg("text", { x: px(mark.x) + 4, y: T + 10, class: "mark-label" }, mark.label));
  }
  return chart;
}

// -- the loop --------------------------------------------------------------------------------

async function poll() {
  try {
    const tree = await get("/api/tree");
    renderTree(tree);
    if (tree.seq !== state.seq) {
      state.seq = tree.seq;
      await Promise.all([refreshDirectives(), refreshTrials(), refreshTimeline()]);
    }
    await refreshPlot(false);
    showError(null);
  } catch (error) {
    showError(error);
  }
  state.timer = setTimeout(poll, POLL_MS);
}

function wire() {
  let debounce = null;
  $("q").addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.q = $("q").value; state.offset = 0; refreshDirectives().catch(showError); }, 200);
  });
  $("status").addEventListener("change", () => {
    state.status = $("status").value; state.offset = 0; refreshDirectives().catch(showError);
  });
  $("directive-search").addEventListener("submit", (e) => e.preventDefault());
  $("newer").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); refreshDirectives().catch(showError); });
  $("older").addEventListener("click", () => { state.offset += PAGE; refreshDirectives().catch(showError); });
  $("plot-kind").addEventListener("change", () => { state.plotKind = $("plot-kind").value; refreshPlot(true).catch(showError); });
  poll();
}

document.addEventListener("DOMContentLoaded", wire);
