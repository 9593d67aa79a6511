// Live status page: polls the API with relative URLs (so it works behind a reverse proxy prefix).
// A token, when the API requires one for reads, is taken from the page address: …/#token=SECRET
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);
let frameUrl = null;

async function getJson(path) {
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok && r.status !== 503) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
function fmt(v, digits = 1) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

async function refreshFrame() {
  try {
    const r = await fetch("api/latest.jpg?h=480&quality=70", { headers, cache: "no-store" });
    if (r.status === 404) { $("frame-note").textContent = "waiting for the first frame…"; return; }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const url = URL.createObjectURL(await r.blob());
    const img = $("frame");
    img.onload = () => {
      img.dataset.loaded = "1";
      img.dataset.width = String(img.naturalWidth);
      if (frameUrl) URL.revokeObjectURL(frameUrl);
      frameUrl = url;
    };
    img.src = url;
    $("frame-note").textContent = "";
  } catch (e) { $("frame-note").textContent = "frame: " + e.message; }
}

async function refreshStats() {
  try {
    const s = await getJson("api/stats");
    $("device").textContent = s.device_id;
    $("camera_fps").textContent = fmt(s.camera_fps);
    $("process_fps").textContent = fmt(s.process_fps);
    $("skipped_fps").textContent = fmt(s.skipped_fps);
    const run = s.model_run_ms || {}, frame = s.frame_detect_ms || {};
    $("model_run").textContent = fmt(run.p50) + " / " + fmt(run.p95) + " ms";
    $("frame_detect").textContent = fmt(frame.p50) + " / " + fmt(frame.p95) + " ms (" + s.model_runs_per_frame + " run"
      + (s.model_runs_per_frame === 1 ? "" : "s") + ")";
    $("present").textContent = s.objects.present;
    const m = s.mqtt;
    $("mqtt").textContent = !m.enabled ? "disabled"
      : (m.connected ? "connected" : "not connected") + ", " + m.queued + " queued, " + m.sent + " sent";
  } catch (e) { $("mqtt").textContent = "stats: " + e.message; }
}

async function refreshCounts() {
  try {
    const c = await getJson("api/counts");
    const body = $("counts").tBodies[0];
    body.replaceChildren();
    const add = (where, label, n) => { const tr = body.insertRow(); cell(tr, where); cell(tr, label); cell(tr, n); tr.dataset.key = where + "/" + label; };
    for (const [label, n] of Object.entries(c.counts)) add("frame", label, n);
    for (const [zone, per] of Object.entries(c.zones)) for (const [label, n] of Object.entries(per)) add(zone, label, n);
    const lines = $("lines").tBodies[0];
    lines.replaceChildren();
    for (const [name, v] of Object.entries(c.lines)) {
      const tr = lines.insertRow(); tr.dataset.key = name;
      cell(tr, name); cell(tr, v.in); cell(tr, v.out); cell(tr, new Date(v.since * 1000).toLocaleTimeString());
    }
    document.body.dataset.counts = "1";
  } catch (e) { /* shown by the health badge */ }
}

async function refreshHealth() {
  try {
    const h = await getJson("api/health");
    const b = $("health");
    b.textContent = h.status; b.dataset.status = h.status;
    const ul = $("components");
    ul.replaceChildren();
    for (const [name, c] of Object.entries(h.components)) {
      const li = document.createElement("li");
      li.textContent = name + ": " + c.status + " (" + c.detail + ")";
      ul.appendChild(li);
    }
  } catch (e) { const b = $("health"); b.textContent = "unreachable"; b.dataset.status = "failing"; }
}

async function refreshEvents() {
  try {
    const ev = await getJson("api/events?limit=15");
    const ol = $("events");
    ol.replaceChildren();
    for (const e of ev.reverse()) {
      const li = document.createElement("li");
      const a = e.after;
      const extra = e.changes && e.changes.length ? " (" + e.changes.join(", ") + ")" : "";
      li.textContent = e.type + " " + a.label + " #" + a.track_id + extra;
      ol.appendChild(li);
    }
  } catch (e) { /* keep the last list */ }
}

function tick() { refreshFrame(); refreshStats(); refreshCounts(); refreshHealth(); refreshEvents(); }
tick();
setInterval(tick, 1000);
