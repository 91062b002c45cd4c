// The cache admin dashboard: polls the admin API and draws what it answers.
// Every string from the server goes into the page through textContent, never parsed as HTML:
// namespaces and tags are chosen by the application's users. The token lives in this tab's
// sessionStorage and travels in the Authorization header only.
"use strict";

const TOKEN_KEY = "fastapi-cachekit-admin-token";
const SVG = "http://www.w3.org/2000/svg";
const CHART = { width: 640, height: 180, left: 40, right: 10, top: 10, bottom: 24 };

let token = sessionStorage.getItem(TOKEN_KEY);
let timer = null;
const samples = new Map(); // sample time -> [hits, misses], merged over the workers' answers
let samplesOf = null; // the worker whose samples these are, when totals are per process
const recent = new Map(); // "pid:seq" -> invalidation, merged likewise

const $ = (id) => document.getElementById(id);

function show(id, visible) {
  $(id).hidden = !visible;
}

function say(id, text) {
  $(id).textContent = text;
  show(id, Boolean(text));
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin", // an app that guards the router with its own cookie auth
    cache: "no-store",
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch (_) {
    payload = null;
  }
  const challenge = response.headers.get("WWW-Authenticate") || "";
  return { status: response.status, ok: response.ok, payload, bearer: /^bearer/i.test(challenge) };
}

function detail(answer) {
  const text = answer.payload && answer.payload.detail;
  if (typeof text === "string") return text;
  return text ? JSON.stringify(text) : "HTTP " + answer.status;
}

// --- refusals --------------------------------------------------------------------------

function clearBoard() {
  show("board", false);
  show("refresh", false);
  for (const id of ["namespaces", "tags", "recent", "chart"]) $(id).replaceChildren();
  samples.clear();
  recent.clear();
  $("updated").textContent = "No data.";
}

function refused(answer) {
  clearBoard();
  const hadToken = Boolean(token);
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  show("forget", false);
  if (answer.bearer) {
    // The router's token guard: ask for the token (again).
    say("problem", hadToken ? "The admin token was refused: " + detail(answer) : "");
    show("login", true);
    $("token").focus();
  } else {
    say("problem", "Refused by the application (HTTP " + answer.status + "): " + detail(answer));
  }
}

// --- polling ---------------------------------------------------------------------------

async function poll() {
  clearTimeout(timer);
  let answer;
  try {
    answer = await api("GET", "dashboard/data");
  } catch (error) {
    say("problem", "The server did not answer: " + error.message);
    timer = setTimeout(poll, 5000);
    return;
  }
  if (answer.status === 401 || answer.status === 403) {
    refused(answer);
    return;
  }
  if (!answer.ok) {
    say("problem", "The data could not be read: " + detail(answer));
    timer = setTimeout(poll, 5000);
    return;
  }
  say("problem", "");
  show("login", false);
  show("board", true);
  show("refresh", true);
  show("forget", Boolean(token));
  render(answer.payload);
  timer = setTimeout(poll, answer.payload.refresh_seconds * 1000);
}

// --- rendering -------------------------------------------------------------------------

const integer = new Intl.NumberFormat();

function bytes(n) {
  if (n === null || n === undefined) return "unknown";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

function render(data) {
  const stats = data.stats;
  $("hit-rate").textContent = (stats.hit_rate * 100).toFixed(1) + " %";
  $("hits").textContent = integer.format(stats.total_hits);
  $("misses").textContent = integer.format(stats.total_misses);
  $("entries").textContent = integer.format(stats.total_entries);
  $("bytes").textContent = bytes(stats.memory_usage_bytes);
  $("pending").textContent = integer.format(stats.pending_invalidations);
  $("errors").textContent = integer.format(stats.errors);
  $("breaker").textContent = data.breaker ? data.breaker.state : "no Redis";
  $("updated").textContent = "Updated " + clock(data.at) + " by worker " + data.pid + ".";
  drawChart(data);
  labelTable("namespaces", data.namespaces);
  labelTable("tags", data.tags);
  let note = "";
  if (data.namespaces === null) note = "This backend cannot count entries per namespace and tag.";
  else if (!data.labels_complete) note = "More labels exist than were counted: the largest of those counted are shown.";
  $("labels-note").textContent = note;
  recentTable(data);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

function labelTable(id, labels) {
  const rows = (labels || []).map((label) => row([label.name, integer.format(label.entries)]));
  if (labels && !rows.length) rows.push(row(["none", ""]));
  $(id).replaceChildren(...rows);
}

function recentTable(data) {
  for (const item of data.recent) recent.set(item.pid + ":" + item.seq, item);
  const items = [...recent.values()].sort((a, b) => b.at - a.at).slice(0, 50);
  recent.clear();
  for (const item of items) recent.set(item.pid + ":" + item.seq, item);
  const rows = items.map((item) =>
    row([clock(item.at), item.kind, item.namespace || "", integer.format(item.count), String(item.pid)])
  );
  if (!rows.length) rows.push(row(["none yet", "", "", "", ""]));
  $("recent").replaceChildren(...rows);
  const since = data.watching_since ? clock(data.watching_since) : "now";
  $("recent-note").textContent = "Heard by each worker since it was first asked for this page (worker " + data.pid + ": since " + since + ").";
}

// --- the chart: hit ratio between consecutive samples of the totals -------------------

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function ratios(data) {
  const oldest = data.at - data.history_minutes * 60;
  if (!data.shared_totals && samplesOf !== data.pid) samples.clear(); // not comparable
  samplesOf = data.pid;
  for (const sample of data.history) samples.set(sample.at, [sample.hits, sample.misses]);
  for (const at of samples.keys()) if (at < oldest) samples.delete(at);
  const times = [...samples.keys()].sort((a, b) => a - b);
  // The axis spans the samples there are (a minute at least), up to the configured window.
  const start = Math.min(times.length ? times[0] : data.at, data.at - 60);
  const points = []; // [time, ratio], or null for a gap (no traffic, or totals that fell)
  for (let i = 1; i < times.length; i += 1) {
    const [h0, m0] = samples.get(times[i - 1]);
    const [h1, m1] = samples.get(times[i]);
    const hits = h1 - h0;
    const reads = hits + (m1 - m0);
    points.push(hits < 0 || m1 < m0 || reads === 0 ? null : [times[i], hits / reads]);
  }
  return { start, points };
}

function drawChart(data) {
  const { start, points } = ratios(data);
  const c = CHART;
  const x = (t) => c.left + ((t - start) / (data.at - start || 1)) * (c.width - c.left - c.right);
  const y = (r) => c.top + (1 - r) * (c.height - c.top - c.bottom);
  const parts = [];
  for (const r of [0, 0.5, 1]) {
    parts.push(svg("line", { class: "grid", x1: c.left, x2: c.width - c.right, y1: y(r), y2: y(r) }));
    parts.push(svg("text", { class: "axis", x: 4, y: y(r) + 4 }, r * 100 + "%"));
  }
  parts.push(svg("text", { class: "axis", x: c.left, y: c.height - 6 }, clock(start)));
  parts.push(svg("text", { class: "axis", x: c.width - c.right - 60, y: c.height - 6 }, clock(data.at)));
  let line = [];
  const flush = () => {
    if (line.length > 1) parts.push(svg("polyline", { class: "ratio", points: line.join(" ") }));
    line = [];
  };
  let drawn = 0;
  for (const point of points) {
    if (point === null) {
      flush();
      continue;
    }
    const [px, py] = [x(point[0]).toFixed(1), y(point[1]).toFixed(1)];
    line.push(px + "," + py);
    parts.push(svg("circle", { class: "point", cx: px, cy: py, r: 3 }));
    drawn += 1;
  }
  flush();
  $("chart").replaceChildren(...parts);
  $("chart-minutes").textContent = String(data.history_minutes);
  $("chart-note").textContent = drawn
    ? "Each point: hits / reads since the previous sample (one every " + data.refresh_seconds + " s at most)."
    : "No reads between samples yet.";
}

// --- actions ---------------------------------------------------------------------------

async function act(describe, method, path, body) {
  const answer = await api(method, path, body);
  if (answer.status === 401 || answer.status === 403) {
    refused(answer);
    return;
  }
  $("action-result").textContent = answer.ok
    ? describe + ": " + removed(answer.payload.removed) + " removed."
    : describe + " refused: " + detail(answer);
  await poll();
}

function onSubmit(id, handler) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault(); // nothing is ever sent by the browser's own form submission
    handler();
  });
}

function removed(count) {
  return integer.format(count) + (count === 1 ? " entry" : " entries");
}

function confirmQuery(id) {
  return $(id).checked ? "?confirm=true" : "";
}

onSubmit("login-form", () => {
  token = $("token").value;
  $("token").value = "";
  sessionStorage.setItem(TOKEN_KEY, token);
  poll();
});

onSubmit("tag-form", () => {
  const tag = $("tag").value;
  act("Tag " + JSON.stringify(tag), "POST", "invalidate/tags", { tags: [tag] });
});

onSubmit("namespace-form", () => {
  const namespace = $("namespace").value;
  const path = "namespaces/" + encodeURIComponent(namespace) + confirmQuery("namespace-confirm");
  act("Namespace " + JSON.stringify(namespace), "DELETE", path);
});

onSubmit("pattern-form", () => {
  const pattern = $("pattern").value;
  const namespace = $("pattern-namespace").value || null;
  const path = "invalidate/pattern" + confirmQuery("pattern-confirm");
  act("Pattern " + JSON.stringify(pattern), "POST", path, { pattern, namespace });
});

onSubmit("cleanup-form", () => act("Cleanup", "POST", "cleanup"));

$("refresh").addEventListener("click", () => poll());
$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  clearTimeout(timer);
  clearBoard();
  show("forget", false);
  show("login", true);
});

poll();
