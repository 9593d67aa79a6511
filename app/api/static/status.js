// Live status page: polls the API with relative URLs (so it works behind a reverse proxy prefix).
// A token, when the API requires one for reads, is taken from the page address: …/#token=SECRET
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};

async function getJson(path) {
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok && r.status !== 503) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
function fmt(v, digits = 1) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

const refreshFrame = liveFrame("api/latest.jpg?h=480&quality=70", () => headers,
  (img) => { img.dataset.width = String(img.naturalWidth); });

async function refreshStats() {
  try {
    const s = await getJson("api/stats");
    $("device").textContent = s.device_id;
    $("camera_fps").textContent = fmt(s.camera_fps);
    $("process_fps").textContent = fmt(s.process_fps);
    $("skipped_fps").textContent = fmt(s.skipped_fps);
    const run = s.model_run_ms || {}, frame = s.frame_detect_ms || {};
    $("model_run").textContent = fmt(run.p50) + " / " + fmt(run.p95) + " ms";
    $("frame_detect").textContent = fmt(frame.p50) + " / " + fmt(frame.p95) + " ms (" + fmt(s.model_runs_per_frame, 2)
      + " runs per frame, " + Math.round(100 * s.frame_coverage) + " % of the frame)";
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
    // one row per place: its total, then each label's count (a zero is kept, hidden, so a label's
    // element stays put as counts come and go)
    const add = (where, per) => {
      const tr = body.insertRow(); tr.dataset.key = where;
      cell(tr, where); cell(tr, per.all ?? 0);
      const td = document.createElement("td");
      for (const [label, n] of Object.entries(per)) {
        if (label === "all") continue;
        const span = document.createElement("span");
        span.className = "count"; span.dataset.key = where + "/" + label; span.hidden = !n;
        span.textContent = label + " " + n;
        td.appendChild(span);
      }
      tr.appendChild(td);
    };
    add("frame", c.counts);
    for (const [zone, per] of Object.entries(c.zones)) add(zone, per);
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
    // while the source is not ok the picture is the last frame that came: greyed, and said so
    const src = h.components.source, stale = !!src && src.status !== "ok";
    $("frame").dataset.stale = stale ? "1" : "0";
    const note = $("frame-stale");
    note.hidden = !stale;
    note.textContent = stale ? "source " + src.status + ": " + src.detail + " (showing the last frame that came)" : "";
  } catch (e) { const b = $("health"); b.textContent = "unreachable"; b.dataset.status = "failing"; }
}

// Thumbnails of the objects in the recent events, by object id: fetched (with the token) when an
// object's newest event changes, since its best view may have improved; dropped once off the list.
const thumbs = new Map();

function thumbnail(a, seq) {
  let t = thumbs.get(a.id);
  if (!t) { t = { seq: -1, url: null }; thumbs.set(a.id, t); }
  if (a.has_snapshot && seq > t.seq) {
    t.seq = seq;
    fetch("api/events/" + encodeURIComponent(a.id) + "/snapshot.jpg?crop=1&h=96", { headers, cache: "no-store" })
      .then((r) => (r.ok ? r.blob() : null))
      .then((b) => {
        if (!b) return;
        if (t.url) URL.revokeObjectURL(t.url);
        t.url = URL.createObjectURL(b); t.loaded = false;
        for (const img of document.querySelectorAll('img.thumb[data-id="' + a.id + '"]')) show(img, t.url, a.label);
      })
      .catch(() => {});
  }
  const img = document.createElement("img");
  // no alt text until there is a picture: an object without a snapshot shows the plain grey tile,
  // not the browser's broken-image sign
  img.className = "thumb"; img.dataset.id = a.id; img.alt = "";
  img.onload = () => { img.dataset.loaded = "1"; t.loaded = t.url !== null; };
  if (t.url) { show(img, t.url, a.label); if (t.loaded) img.dataset.loaded = "1"; }
  return img;
}

function show(img, url, label) { img.src = url; img.alt = label; }

async function refreshEvents() {
  try {
    const ev = await getJson("api/events?limit=15");
    const ol = $("events");
    ol.replaceChildren();
    const newest = new Map();
    for (const e of ev) newest.set(e.after.id, e.seq);
    for (const e of ev.reverse()) {
      const li = document.createElement("li");
      const a = e.after;
      li.dataset.type = e.type;
      li.appendChild(thumbnail(a, newest.get(a.id)));
      const text = document.createElement("div");
      const head = document.createElement("div");
      const time = document.createElement("time");
      time.textContent = new Date(a.frame_time * 1000).toLocaleTimeString();
      head.append(time, " " + e.type + " " + a.label + " #" + a.track_id
        + (e.changes && e.changes.length ? " (" + e.changes.join(", ") + ")" : ""));
      text.appendChild(head);
      const zones = a.entered_zones || [];
      const lines = (a.lines_crossed || []).map((c) => c.line + " " + c.direction);
      if (zones.length || lines.length) {
        const where = document.createElement("div");
        where.className = "where";
        where.textContent = [zones.length ? "zones: " + zones.join(", ") : "",
                             lines.length ? "lines: " + lines.join(", ") : ""].filter(Boolean).join(" · ");
        text.appendChild(where);
      }
      li.appendChild(text);
      ol.appendChild(li);
    }
    for (const id of [...thumbs.keys()]) {
      if (!newest.has(id)) { const t = thumbs.get(id); if (t.url) URL.revokeObjectURL(t.url); thumbs.delete(id); }
    }
  } catch (e) { /* keep the last list */ }
}

function tick() { refreshFrame(); refreshStats(); refreshCounts(); refreshHealth(); refreshEvents(); }
tick();
setInterval(tick, 1000);
