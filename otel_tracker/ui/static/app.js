// otel-tracker ui: the runs, one run, and a comparison, kept live over one WebSocket.
// Every string from a run (names, params, errors, log lines) goes into the page as
// text (textContent, text nodes), never as HTML; the server's CSP forbids inline script.
"use strict";
(() => {
  const app = document.getElementById("app");
  const conn = document.getElementById("connection");
  const state = { rows: new Map(), charts: {}, page: null };
  window.otelTracker = state; // for tests and the curious: the data the page shows

  // -- helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style") Object.assign(node.style, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }
  const runHref = (id) => "/run/" + encodeURIComponent(id);
  const fileHref = (id, rel) =>
    "/files/" + encodeURIComponent(id) + "/" + rel.split("/").map(encodeURIComponent).join("/");
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return "-";
    if (s < 10) return s.toFixed(1) + "s";
    if (s < 60) return Math.round(s) + "s";
    const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (m < 60) return m + "m " + String(Math.round(s % 60)).padStart(2, "0") + "s";
    if (h < 24) return h + "h " + String(m % 60).padStart(2, "0") + "m";
    return d + "d " + String(h % 24).padStart(2, "0") + "h";
  }
  function when(iso) {
    if (!iso) return "-";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }
  function num(v) {
    if (typeof v !== "number" || !isFinite(v)) return v === null || v === undefined ? "-" : String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return String(Math.round(v * 1000) / 1000);
  }
  function bytes(v) {
    if (typeof v !== "number" || !isFinite(v)) return "-";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + " " + units[i];
  }
  const statusCell = (status) => el("span", { class: "status status-" + status, text: status });
  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error((await response.text()) || response.statusText);
    return response.json();
  }
  function fail(message) {
    app.replaceChildren(el("h1", { text: "Cannot show this" }), el("p", { class: "problem", text: message }),
      el("p", {}, el("a", { href: "/", text: "all runs" })));
  }

  // -- the live connection -----------------------------------------------------------------
  const live = { ws: null, watch: null, handler: null, opened: 0 };
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    live.ws = ws;
    ws.onopen = () => {
      conn.textContent = "live";
      conn.className = "conn live";
      live.opened += 1;
      if (live.opened > 1) route(); // reconnected: what was missed is loaded again
      else if (live.watch) ws.send(JSON.stringify(live.watch));
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (live.handler) live.handler(message);
    };
    ws.onclose = () => {
      conn.textContent = "reconnecting…";
      conn.className = "conn down";
      setTimeout(connect, 1000);
    };
  }
  function watch(message, handler) {
    live.watch = message;
    live.handler = handler;
    if (live.ws && live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify(message));
  }

  // -- runs ---------------------------------------------------------------------------------
  const STATUSES = ["running", "completed", "failed", "cancelled", "aborted", "stuck"];
  const PAGE = 50;
  function globRe(pattern) {
    const escaped = pattern.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + escaped + "$");
  }
  function rowMatches(row, params) {
    const status = params.get("status");
    if (status && !status.split(",").includes(row.status)) return false;
    for (const key of ["name", "scenario"]) {
      const pattern = params.get(key);
      if (pattern && !globRe(pattern).test(String(row[key]))) return false;
    }
    const q = (params.get("q") || "").trim().toLowerCase();
    if (q) {
      const hay = [row.run_id, row.name, row.scenario, row.current_step, row.status].join(" ").toLowerCase();
      if (!hay.includes(q)) return false;
    }
    return !params.get("since"); // a since filter: the server decides (new runs are newer anyway)
  }
  function progressCell(row) {
    if (!row.step_line) return el("td", { class: "muted", text: row.last_completed_step || "" });
    const p = row.progress;
    const kids = [el("div", { class: "step-line", text: row.step_line })];
    if (p && p.total) {
      const pct = Math.max(0, Math.min(100, (100 * p.completed) / p.total));
      kids.push(el("div", { class: "bar", title: p.completed + "/" + p.total }, el("span", { style: { width: pct + "%" } })));
    }
    if (row.resources) kids.push(el("div", { class: "muted resources", text: row.resources }));
    return el("td", {}, kids);
  }
  function runRow(row) {
    const scores = (row.scores || []).map((s) => s.name + " " + num(s.value)).join(", ");
    const dur = row.duration_s !== null && row.duration_s !== undefined ? row.duration_s : row.elapsed_s;
    return el("tr", { "data-run": row.run_id },
      el("td", {}, el("input", { type: "checkbox", class: "pick", value: row.run_id, "aria-label": "compare " + row.run_id })),
      el("td", {}, el("a", { href: runHref(row.run_id), text: row.run_id })),
      el("td", { class: "name", text: row.name }),
      el("td", { text: row.scenario || "" }),
      el("td", { class: "status-cell", title: row.status_reason || "" }, statusCell(row.status)),
      progressCell(row),
      el("td", { text: when(row.started_at) }),
      el("td", { class: "num", text: duration(dur) }),
      el("td", { text: scores }));
  }
  async function runsPage() {
    const params = new URLSearchParams(location.search);
    const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
    state.page = "runs";
    state.rows = new Map();
    const form = el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); apply(); } });
    const field = (label, input) => el("label", {}, label, input);
    const statusSelect = el("select", { name: "status" }, el("option", { value: "", text: "any" }),
      STATUSES.map((s) => el("option", { value: s, text: s, selected: params.get("status") === s })));
    const inputs = {
      status: statusSelect,
      name: el("input", { name: "name", placeholder: "train*", value: params.get("name") || "" }),
      scenario: el("input", { name: "scenario", value: params.get("scenario") || "" }),
      since: el("input", { name: "since", placeholder: "24h, 2026-12-01", value: params.get("since") || "" }),
      q: el("input", { name: "q", type: "search", placeholder: "search", value: params.get("q") || "" }),
    };
    const compareButton = el("button", { type: "button", onclick: () => {
      const ids = [...app.querySelectorAll("input.pick:checked")].map((i) => i.value);
      if (ids.length >= 2) { history.pushState(null, "", "/compare?" + ids.map((i) => "run=" + encodeURIComponent(i)).join("&")); route(); }
    }, text: "Compare selected" });
    form.append(field("status", inputs.status), field("name", inputs.name), field("scenario", inputs.scenario),
      field("since", inputs.since), field("search", inputs.q), el("button", { type: "submit", text: "Filter" }), compareButton);
    function apply(newOffset) {
      const next = new URLSearchParams();
      for (const [key, input] of Object.entries(inputs)) if (input.value) next.set(key, input.value);
      if (newOffset) next.set("offset", String(newOffset));
      history.replaceState(null, "", "/" + (next.toString() ? "?" + next : ""));
      runsPage();
    }
    statusSelect.addEventListener("change", () => apply());
    const body = el("tbody");
    const table = el("table", { id: "runs" }, el("thead", {}, el("tr", {},
      ["", "run", "name", "scenario", "status", "progress", "started", "duration", "scores"].map((h) => el("th", { text: h })))), body);
    const info = el("p", { class: "muted" });
    const problems = el("div");
    const pager = el("div", { class: "pager" });
    app.replaceChildren(el("h1", { text: "Runs" }), form, problems, table, pager, info);
    let data;
    try {
      const query = new URLSearchParams(params);
      query.set("limit", String(PAGE));
      data = await getJSON("/api/runs?" + query);
    } catch (error) { fail(String(error.message || error)); return; }
    for (const row of data.runs) { state.rows.set(row.run_id, row); body.append(runRow(row)); }
    problems.replaceChildren(...(data.problems || []).map((p) => el("div", { class: "problem", text: p })));
    info.textContent = data.runs.length ? data.total_runs + " runs under the root" : "No runs match.";
    if (offset > 0) pager.append(el("button", { text: "← newer", onclick: () => apply(Math.max(0, offset - PAGE)) }));
    if (data.more) pager.append(el("button", { text: "older →", onclick: () => apply(offset + PAGE) }));
    state.runsReady = true;
    watch({ watch: "runs" }, (message) => {
      if (message.type === "run") {
        const row = message.row;
        const existing = body.querySelector('tr[data-run="' + CSS.escape(row.run_id) + '"]');
        if (existing) {
          const checked = existing.querySelector("input.pick").checked;
          const fresh = runRow(row);
          fresh.querySelector("input.pick").checked = checked;
          existing.replaceWith(fresh);
          state.rows.set(row.run_id, row);
        } else if (offset === 0 && rowMatches(row, params)) {
          const after = [...body.children].find((tr) => tr.dataset.run < row.run_id);
          body.insertBefore(runRow(row), after || null);
          state.rows.set(row.run_id, row);
          while (body.children.length > PAGE) { state.rows.delete(body.lastChild.dataset.run); body.lastChild.remove(); }
          info.textContent = "";
        }
      } else if (message.type === "removed") {
        const existing = body.querySelector('tr[data-run="' + CSS.escape(message.run_id) + '"]');
        if (existing) existing.remove();
        state.rows.delete(message.run_id);
      }
    });
  }

  // -- charts --------------------------------------------------------------------------------
  function axisValues(unit) {
    if (unit === "ratio") return (u, vals) => vals.map((v) => (v === null ? "" : Math.round(v * 100) + "%"));
    if (unit === "bytes") return (u, vals) => vals.map((v) => (v === null ? "" : bytes(v)));
    return (u, vals) => vals.map((v) => (v === null ? "" : num(v)));
  }
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"];
  function makeChart(container, chart, times, markers, timeAxis) {
    const width = Math.max(320, container.clientWidth || 560);
    const opts = {
      width, height: 200, legend: { live: true },
      scales: { x: { time: timeAxis } },
      axes: [{}, { values: axisValues(chart.unit), size: 84 }],
      series: [{}].concat(chart.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))),
      hooks: { draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = "rgba(100,116,139,0.6)";
        ctx.setLineDash([4, 4]);
        for (const m of markers()) {
          const x = u.valToPos(m, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        }
        ctx.restore();
      }] },
    };
    const data = [times.slice()].concat(chart.series.map((s) => s.values.slice()));
    return new uPlot(opts, data, container);
  }

  // -- one run ---------------------------------------------------------------------------------
  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v))]));
  }
  function flatParams(params, prefix, out) {
    for (const [key, value] of Object.entries(params || {})) {
      if (value && typeof value === "object" && !Array.isArray(value)) flatParams(value, prefix + key + ".", out);
      else out.push([prefix + key, typeof value === "string" ? value : JSON.stringify(value)]);
    }
    return out;
  }
  function timeline(report, now) {
    const t0 = Date.parse(report.started_at) / 1000;
    const rows = [];
    const walk = (steps, depth) => {
      for (const s of steps) {
        const start = s.started_at ? Date.parse(s.started_at) / 1000 : null;
        let dur = s.duration_s;
        if (s.status === "running" && start !== null) dur = Math.max(0, now - start);
        rows.push({ s, depth, start, dur });
        walk(s.substeps || [], depth + 1);
      }
    };
    walk(report.steps || [], 0);
    let end = t0 + (report.duration_s || 0);
    for (const r of rows) if (r.start !== null && r.dur !== null) end = Math.max(end, r.start + r.dur);
    const span = Math.max(end - t0, 1e-3);
    const box = el("div", { class: "timeline", id: "timeline" });
    for (const r of rows) {
      const s = r.s;
      const note = s.error ? " – " + s.error : s.skip_reason ? " – skipped: " + s.skip_reason : "";
      const label = el("div", { class: "tl-label", title: s.name + note, style: { paddingLeft: r.depth * 14 + "px" } }, s.name);
      const track = el("div", { class: "tl-track" });
      if (r.start !== null && r.dur !== null && isFinite(t0)) {
        const left = (100 * (r.start - t0)) / span, width = (100 * r.dur) / span;
        track.append(el("div", { class: "tl-bar " + s.status, title: s.name + ": " + s.status + ", " + duration(r.dur) + note,
          style: { left: Math.max(0, left) + "%", width: Math.max(0.2, width) + "%" } }));
      } else {
        track.append(el("span", { class: "muted", text: s.status + note, style: { fontSize: "11px", paddingLeft: "4px" } }));
      }
      box.append(el("div", { class: "tl-row", "data-step": s.name, "data-status": s.status }, label, track));
    }
    return box;
  }
  function stepMarkers(report) {
    const out = [];
    const walk = (steps) => { for (const s of steps) { if (s.started_at) out.push(Date.parse(s.started_at) / 1000); walk(s.substeps || []); } };
    walk(report.steps || []);
    return out;
  }
  async function runPage(runId) {
    state.page = "run";
    state.charts = {};
    let report;
    try { report = await getJSON("/api/runs/" + encodeURIComponent(runId)); } catch (error) { fail(String(error.message || error)); return; }
    state.report = report;
    runId = report.run_id; // "latest" or a prefix in the URL: the pushes name the full id
    const header = el("div"), tl = el("div"), steps = el("div"), charts = el("div", { class: "charts" }), rest = el("div");
    const logs = {};
    const title = el("h1", {}, report.name + (report.scenario ? " / " + report.scenario : "") + " ", statusCell(report.status));
    app.replaceChildren(title, header, el("h2", { text: "Steps" }), tl, steps, el("h2", { text: "Resources" }), charts, rest,
      el("div", { id: "logs" }));
    const liveLine = el("span", { id: "live-line" });
    function renderHeader(r) {
      liveLine.textContent = (r.row && r.row.step_line) || "";
      title.replaceChildren(r.name + (r.scenario ? " / " + r.scenario : "") + " ", statusCell(r.status));
      const exit = [r.exit_code !== null && r.exit_code !== undefined ? "exit code " + r.exit_code : "", r.signal || ""].filter(Boolean).join(", ");
      header.replaceChildren(kv([
        ["run", r.run_id], ["status", r.status + (r.status_reason ? " (" + r.status_reason + ")" : "") + (exit ? ", " + exit : "")],
        ["live", r.row && r.row.step_line ? liveLine : null], ["started", when(r.started_at)], ["ended", r.ended_at ? when(r.ended_at) : null],
        ["duration", duration(r.duration_s)], ["error", r.error ? (r.error.type || "") + ": " + (r.error.message || "") : null],
        ["command", r.command ? (Array.isArray(r.command) ? r.command.join(" ") : r.command) : null],
        ["host", r.host], ["git", r.git ? [r.git.commit, r.git.branch, r.git.dirty ? "dirty" : ""].filter(Boolean).join(" ") : null],
        ["trace id", r.trace_id],
      ]), el("h2", { text: "Params" }), kv(flatParams(r.params, "", [])));
      tl.replaceChildren(timeline(r, Date.now() / 1000));
      const stepRows = [];
      const walk = (list, depth) => { for (const s of list) { stepRows.push([s, depth]); walk(s.substeps || [], depth + 1); } };
      walk(r.steps || [], 0);
      steps.replaceChildren(el("table", { id: "steps" }, el("thead", {}, el("tr", {}, ["step", "status", "started", "duration", "progress", "rate/s", "note"].map((h) => el("th", { text: h })))),
        el("tbody", {}, stepRows.map(([s, depth]) => el("tr", {},
          el("td", { style: { paddingLeft: 8 + depth * 14 + "px" }, text: s.name }), el("td", {}, statusCell(s.status)),
          el("td", { text: when(s.started_at) }), el("td", { class: "num", text: duration(s.duration_s) }),
          el("td", { text: s.total ? s.completed + "/" + s.total + (s.unit ? " " + s.unit : "") : s.completed ? String(s.completed) : "-" }),
          el("td", { class: "num", text: s.rate_per_s ? num(s.rate_per_s) : "-" }),
          el("td", { text: s.error || (s.skip_reason ? "skipped: " + s.skip_reason : "") }))))));
      const parts = [];
      const scores = Object.entries(r.scores || {});
      if (scores.length) parts.push(el("h2", { text: "Scores" }), el("table", {}, el("tbody", {}, scores.map(([k, s]) =>
        el("tr", {}, el("td", { text: k }), el("td", { text: "latest " + num(s.latest) }), el("td", { text: "best " + num(s.best) + (s.direction ? " (" + s.direction + ")" : "") }))))));
      const metrics = Object.entries((r.metrics && r.metrics.keys) || {});
      if (metrics.length) parts.push(el("h2", { text: "Metrics" }), el("table", { id: "metrics" }, el("thead", {}, el("tr", {}, ["key", "last", "min", "max", "best", "points", "from"].map((h) => el("th", { text: h })))),
        el("tbody", {}, metrics.map(([k, m]) => el("tr", {}, el("td", { text: k }), ...[m.last, m.min, m.max, m.best].map((v) => el("td", { class: "num", text: num(v) })), el("td", { class: "num", text: String(m.count) }),
          // a key read from TensorBoard or W&B files names them; the run's own say nothing
          el("td", { class: "muted", text: typeof m.source === "string" ? m.source.replace(/^tensorboard:/, "TensorBoard ").replace(/^wandb:/, "W&B ") : "" }))))));
      if ((r.processes || []).length) parts.push(el("h2", { text: "Processes" }), el("table", { id: "processes" },
        el("thead", {}, el("tr", {}, ["pid", "name", "CPU time", "share", "RSS max", "alive"].map((h) => el("th", { text: h })))),
        el("tbody", {}, r.processes.map((p) => el("tr", {}, el("td", { text: p.pid }), el("td", { text: p.name }),
          el("td", { class: "num", text: duration(p.cpu_time_s) }), el("td", { class: "num", text: typeof p.cpu_share === "number" ? Math.round(p.cpu_share * 100) + "%" : "-" }),
          el("td", { class: "num", text: bytes(p.rss_max_bytes) }), el("td", { text: p.alive ? "yes" : "no" }))))));
      const analysis = r.analysis || {};
      const recs = analysis.recommendations || [];
      if (recs.length || analysis.baseline) {
        parts.push(el("h2", { text: "Recommendations" }));
        if (analysis.baseline) parts.push(el("p", { class: "muted", text: analysis.baseline.note || ("baseline " + (analysis.baseline.key || "") + " revision " + (analysis.baseline.revision || "")) }));
        for (const rec of recs) parts.push(el("div", { class: "rec" }, el("strong", { text: rec.severity + ": " }), rec.detected,
          el("div", { class: "muted", text: "why: " + rec.why }), el("div", { text: "do: " + rec.action }),
          el("div", { class: "muted", text: "evidence: " + JSON.stringify(rec.evidence) })));
        if (!recs.length) parts.push(el("p", { class: "muted", text: "no anomalies detected" }));
      }
      if ((r.warnings || []).length) parts.push(el("h2", { text: "Warnings" }), el("ul", {}, r.warnings.map((w) => el("li", { class: "warning", text: w }))));
      if ((r.artifacts || []).length) parts.push(el("h2", { text: "Artifacts" }), el("table", { id: "artifacts" }, el("tbody", {}, r.artifacts.map((a) =>
        el("tr", {}, el("td", { text: a.step || "" }), el("td", { text: (a.kind || "") + (a.best === true ? " (best)" : "") + (typeof a.pruned_at === "string" ? " (pruned " + a.pruned_at.slice(0, 10) + ")" : "") }),
          el("td", {}, a.href && !a.pruned_at ? el("a", { href: fileHref(r.run_dir_name || r.run_id, a.href), text: a.path }) : a.path),
          el("td", { class: "num", text: bytes(a.size_bytes) }))))));
      rest.replaceChildren(...parts);
    }
    renderHeader(report);
    const logBox = app.querySelector("#logs");
    const showLog = (name) => {
      // only `run --` and pipeline files keep the command's output (logs/*.log)
      if (!logBox.firstChild) logBox.append(el("h2", { text: "Logs" }));
      if (!logs[name]) {
        logs[name] = el("pre", { class: "log", id: "log-" + name });
        logBox.append(el("h3", { text: name }), logs[name]);
      }
      return logs[name];
    };
    for (const name of report.logs || []) showLog(name);
    let markers = stepMarkers(report);
    let timer = null;
    const refetch = (withAnalysis) => {
      if (timer) return;
      timer = setTimeout(async () => {
        timer = null;
        const previous = report;
        // a live run's analysis is computed once, at the end (the server caches it)
        try { report = await getJSON("/api/runs/" + encodeURIComponent(runId) + (withAnalysis ? "" : "?analysis=0")); } catch { return; }
        if (!report.analysis) report.analysis = previous.analysis;
        state.report = report;
        markers = stepMarkers(report);
        renderHeader(report);
        for (const c of Object.values(state.charts)) c.redraw(false);
      }, 300);
    };
    const tick = setInterval(() => { if (state.page !== "run") clearInterval(tick); else if (report.status === "running") tl.replaceChildren(timeline(report, Date.now() / 1000)); }, 1000);
    let times = [];
    let chartDefs = {};
    let lastRow = report.row || {};
    watch({ watch: "run", run_id: runId }, (message) => {
      if ((message.run_id || (message.row && message.row.run_id)) !== runId) return;
      if (message.type === "charts") {
        times = message.t;
        chartDefs = message.charts;
        charts.replaceChildren();
        state.charts = {};
        for (const [key, chart] of Object.entries(chartDefs)) {
          const box = el("div", { class: "chart", id: "chart-" + key }, el("h3", { text: chart.title }));
          charts.append(box);
          state.charts[key] = makeChart(box, chart, times, () => markers, true);
        }
        if (!Object.keys(chartDefs).length) charts.append(el("p", { class: "muted", text: "No resource samples yet." }));
      } else if (message.type === "samples") {
        let rebuild = false;
        for (const sample of message.samples) {
          for (const key of Object.keys(sample.values)) {
            if (!Object.values(chartDefs).some((c) => c.series.some((s) => s.key === key))) rebuild = true;
          }
        }
        if (rebuild) { watch({ watch: "run", run_id: runId }, live.handler); return; } // a new series: charts again
        for (const sample of message.samples) {
          times.push(sample.t);
          for (const chart of Object.values(chartDefs)) for (const s of chart.series) s.values.push(sample.values[s.key] ?? null);
        }
        for (const [key, chart] of Object.entries(chartDefs)) {
          const plot = state.charts[key];
          if (plot) plot.setData([times.slice()].concat(chart.series.map((s) => s.values.slice())));
        }
      } else if (message.type === "log") {
        const pre = showLog(message.name);
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = message.first ? message.text : (pre.textContent + message.text).slice(-200000);
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      } else if (message.type === "run") {
        const row = message.row;
        const key = (r) => [r.status, r.current_step, r.steps_completed, r.progress && r.progress.completed].join("|");
        liveLine.textContent = row.step_line || "";
        if (key(row) !== key(lastRow)) refetch(!["running", "stuck"].includes(row.status));
        lastRow = row;
      }
    });
  }

  // -- compare ---------------------------------------------------------------------------------
  async function comparePage() {
    state.page = "compare";
    state.charts = {};
    const ids = new URLSearchParams(location.search).getAll("run");
    let data;
    try { data = await getJSON("/api/compare?" + ids.map((i) => "run=" + encodeURIComponent(i)).join("&")); } catch (error) { fail(String(error.message || error)); return; }
    state.comparison = data;
    const head = el("tr", {}, el("th"), data.runs.map((r) => el("th", {}, el("a", { href: runHref(r.run_id), text: r.run_id }))));
    const table = el("table", { id: "compare" }, el("thead", {}, head), el("tbody", {}, data.table.map(([label, cells]) =>
      el("tr", {}, el("th", { text: label }), cells.map((c) => el("td", { text: c }))))));
    const durations = el("div", { id: "step-durations" });
    const longest = Math.max(1e-9, ...Object.values(data.steps).flat().filter((v) => typeof v === "number"));
    for (const [step, values] of Object.entries(data.steps)) {
      durations.append(el("h3", { text: step }));
      values.forEach((v, i) => {
        const base = data.baselines[i] && data.baselines[i].steps ? data.baselines[i].steps[step] : null;
        durations.append(el("div", {}, el("span", { class: "dur-bar", style: { width: typeof v === "number" ? Math.max(1, (300 * v) / longest) + "px" : "0", background: COLORS[i % COLORS.length] } }),
          data.runs[i].run_id + ": " + duration(v) + (typeof base === "number" ? " (baseline " + duration(base) + ")" : "")));
      });
    }
    const charts = el("div", { class: "charts" });
    app.replaceChildren(el("h1", { text: "Compare " + data.runs.length + " runs" }), table,
      el("h2", { text: "Step durations" }), durations, el("h2", { text: "Resources (seconds since each run started)" }), charts);
    if (data.params_same && Object.keys(data.params_same).length)
      table.after(el("p", { class: "muted", text: "same params: " + Object.entries(data.params_same).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ") }));
    const kinds = new Set();
    for (const t of Object.values(data.telemetry)) for (const k of Object.keys(t.charts)) kinds.add(k);
    for (const kind of kinds) {
      // one curve per run, of the same series in every run (the first one any run has),
      // aligned at each run's start
      const perRun = data.runs.map((r) => data.telemetry[r.run_id]);
      const first = perRun.find((t) => t.charts[kind]).charts[kind];
      const series = first.series[0];
      const valuesOf = (t) => {
        const found = t.charts[kind] && t.charts[kind].series.find((s) => s.key === series.key);
        return found ? found.values : t.t.map(() => null);
      };
      const joined = uPlot.join(perRun.map((t) => [t.t, valuesOf(t)]));
      const box = el("div", { class: "chart", id: "chart-" + kind }, el("h3", { text: first.title + " – " + series.label }));
      charts.append(box);
      const chart = { unit: first.unit, series: data.runs.map((r, i) => ({ label: r.run_id, values: joined[i + 1] })) };
      state.charts[kind] = makeChart(box, chart, joined[0], () => [], false);
    }
    watch({ watch: "runs", run_ids: [] }, (message) => {
      if (message.type === "run" && ids.includes(message.row.run_id)) {
        const cell = table.querySelector("tbody tr:nth-child(2) td:nth-child(" + (ids.indexOf(message.row.run_id) + 2) + ")");
        if (cell) cell.textContent = message.row.status;
      }
    });
  }

  // -- routing ---------------------------------------------------------------------------------
  function route() {
    const path = location.pathname;
    if (path.startsWith("/run/")) return runPage(decodeURIComponent(path.slice(5)));
    if (path === "/compare") return comparePage();
    return runsPage();
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a");
    if (!link || link.target || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/files/")) return;
    event.preventDefault();
    history.pushState(null, "", url.pathname + url.search);
    route();
  });
  window.addEventListener("popstate", route);
  route();
  connect();
})();
