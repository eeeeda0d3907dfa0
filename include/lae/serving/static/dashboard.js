// The LAE dashboard: reads the query API (relative URLs, see dashboard.html) and draws with
// plotly.js. Each chart div gets data-points = the number of points drawn (tests read it).
"use strict";

const API = "../v1/";
const SOURCE_STYLE = {
  batch: { name: "batch", color: "#1f77b4" },
  rt: { name: "realtime", color: "#ff7f0e" },
};
const RANGES = {
  "6h": [6 * 3600e3, "minute"], "24h": [24 * 3600e3, "minute"],
  "48h": [48 * 3600e3, "minute"], "7d": [7 * 24 * 3600e3, "hour"],
};
const LAYOUT = { margin: { t: 36, r: 16, b: 40, l: 56 }, legend: { orientation: "h" } };
const CONFIG = { displaylogo: false, responsive: true };

async function getJson(path) {
  const response = await fetch(API + path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

function draw(id, traces, layout) {
  const points = traces.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
  Plotly.react(id, traces, { ...LAYOUT, ...layout }, CONFIG);
  document.getElementById(id).dataset.points = String(points);
}

// W as a vertical line with a label; nothing when W is outside the shown range.
function wMarker(w, from, to) {
  if (!w || w < from || w > to) return { shapes: [], annotations: [] };
  return {
    shapes: [{ type: "line", xref: "x", yref: "paper", x0: w, x1: w, y0: 0, y1: 1,
               line: { color: "#444", dash: "dot", width: 1.5 } }],
    annotations: [{ x: w, y: 1, xref: "x", yref: "paper", text: "W", showarrow: false,
                    yanchor: "bottom" }],
  };
}

function bySource(points, field, label, dash) {
  return Object.entries(SOURCE_STYLE).map(([source, style]) => {
    const mine = points.filter((p) => p.source === source);
    return {
      type: "scatter", mode: "lines+markers", marker: { size: 3 },
      name: `${label} (${style.name})`, line: { color: style.color, dash },
      x: mine.map((p) => p.start), y: mine.map((p) => p[field]),
    };
  }).filter((t) => t.x.length > 0);
}

async function drawMetrics(service, rangeKey) {
  const [span, granularity] = RANGES[rangeKey];
  const unit = granularity === "minute" ? 60e3 : 3600e3;
  const to = new Date(Math.ceil(Date.now() / unit) * unit);
  const from = new Date(to.getTime() - span);
  const q = new URLSearchParams({ service, granularity, from: from.toISOString(), to: to.toISOString() });
  const m = await getJson(`metrics?${q}`);
  const mark = wMarker(m.w, m.from, m.to);
  draw("chart-requests",
       [...bySource(m.points, "requests", "requests", "solid"),
        ...bySource(m.points, "errors", "errors (5xx)", "dot")],
       { title: { text: `${service}: requests and errors per ${granularity}` }, ...mark });
  draw("chart-latency",
       [{ type: "scatter", mode: "lines", name: "p95", x: m.points.map((p) => p.start), y: m.points.map((p) => p.p95_ms) },
        { type: "scatter", mode: "lines", name: "p99", x: m.points.map((p) => p.start), y: m.points.map((p) => p.p99_ms) }],
       { title: { text: "latency p95 / p99 (ms)" }, ...mark });
  draw("chart-users",
       [{ type: "bar", name: "unique users", x: m.points.map((p) => p.start), y: m.points.map((p) => p.unique_users),
          marker: { color: m.points.map((p) => (SOURCE_STYLE[p.source] || { color: "#999" }).color) } }],
       { title: { text: `unique users per ${granularity} (blue batch, orange realtime)` }, ...mark });
  return m;
}

function fact(text, bad) {
  const div = document.createElement("div");
  div.textContent = text;
  if (bad) div.className = "bad";
  return div;
}

async function drawHealth() {
  const h = await getJson("health");
  const facts = document.getElementById("facts");
  facts.replaceChildren(fact(`W (batch complete until): ${h.w || "none yet"}`, !h.w));
  for (const s of h.stream) {
    facts.append(fact(`stream ${s.query_name}: heartbeat ${s.heartbeat_age_s} s ago, lag ${s.lag}`,
                      s.heartbeat_age_s === null || s.heartbeat_age_s > 300));
  }
  if (h.stream.length === 0) facts.append(fact("stream: no heartbeat", true));
  const a = h.last_archive_run;
  facts.append(fact(a && a.at ? `last archive run: ${a.at}` : `last archive run: ${a && a.error ? a.error : "none"}`, !(a && a.at)));
  draw("chart-stream",
       [{ type: "bar", name: "heartbeat age (s)", x: h.stream.map((s) => s.query_name), y: h.stream.map((s) => s.heartbeat_age_s) },
        { type: "bar", name: "lag (messages)", x: h.stream.map((s) => s.query_name), y: h.stream.map((s) => s.lag), yaxis: "y2" }],
       { title: { text: "stream freshness and lag" }, barmode: "group",
         yaxis2: { overlaying: "y", side: "right", title: { text: "lag" } } });
}

async function drawDrift() {
  const d = (await getJson("drift?days=14")).drift;
  const services = [...new Set(d.map((r) => r.service))].sort();
  draw("chart-drift",
       services.map((s) => {
         const rows = d.filter((r) => r.service === s);
         return { type: "bar", name: s, x: rows.map((r) => r.day), y: rows.map((r) => 100 * r.rel_diff),
                  customdata: rows.map((r) => [r.batch_requests, r.rt_requests, r.late_events]),
                  hovertemplate: "%{y:.3f}% (batch %{customdata[0]}, rt %{customdata[1]}, late %{customdata[2]})" };
       }),
       { title: { text: "batch vs realtime drift per day (%)" }, barmode: "group" });
}

async function drawAlerts() {
  const rows = (await getJson("alerts?limit=15")).alerts;
  const body = document.querySelector("#alerts tbody");
  body.replaceChildren(...rows.map((a) => {
    const tr = document.createElement("tr");
    for (const [text, cls] of [[a.ts, ""], [a.severity, `sev-${a.severity}`], [a.title, ""],
                               [JSON.stringify(a.details || {}), ""]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  }));
}

// The service list is read again on every refresh, not only when the page opens: a service
// whose first rows arrive after that (or after the API's few-seconds cache of the list) shows
// up in an open page. A ?service= not listed yet is selected as soon as it is.
let wantedService = null;

async function loadServices() {
  const select = document.getElementById("service");
  const services = (await getJson("services")).services;
  const shown = [...select.options].map((o) => o.value);
  if (services.length !== shown.length || services.some((s, i) => s !== shown[i])) {
    const current = select.value;
    select.replaceChildren(...services.map((s) => new Option(s, s)));
    if (services.includes(current)) select.value = current;
  }
  if (wantedService && services.includes(wantedService)) {
    select.value = wantedService;
    wantedService = null;
  }
}

async function refresh() {
  const status = document.getElementById("status");
  status.textContent = "loading…";
  let listError = null;
  try {
    await loadServices();
  } catch (e) {
    listError = e;  // keep the list shown so far; reported with the panels' errors below
  }
  const service = document.getElementById("service").value;
  const jobs = [drawHealth(), drawDrift(), drawAlerts()];
  if (listError) jobs.push(Promise.reject(listError));
  if (service) jobs.push(drawMetrics(service, document.getElementById("range").value));
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  status.textContent = failed.length ? `errors: ${failed.join("; ")}` : `updated ${new Date().toISOString()}`;
  document.body.dataset.loaded = "true";
}

async function init() {
  const params = new URLSearchParams(location.search);
  const select = document.getElementById("service");
  wantedService = params.get("service");
  if (params.get("range") in RANGES) document.getElementById("range").value = params.get("range");
  document.getElementById("controls").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  select.addEventListener("change", refresh);
  document.getElementById("range").addEventListener("change", refresh);
  await refresh();
  setInterval(refresh, 60e3);
}

init().catch((e) => { document.getElementById("status").textContent = `error: ${e.message}`; });
