// Settings page: zones and lines drawn on the live frame, MQTT and the rest of the site configuration.
// Every URL is relative to the page, so it works at / on a laptop and under the camera's reverse-proxy
// prefix (…/api/ui/settings.html). A token, when changes need one, comes from …#token=SECRET.
"use strict";
const $ = (id) => document.getElementById(id);
// the page is served at <root>/api/ui/settings.html, so the API is "../"; with a <base> at the app's
// root (as the status page gets under /api/ui/), it is "api/"
const UNDER_API = !document.querySelector("base") && /\/api\/ui\/[^/]*$/.test(location.pathname);
const API = UNDER_API ? "../" : "api/";
const ROOT = UNDER_API ? "../../" : "";
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SNAP = 10;  // pixels: a click this close to the first corner closes a zone
let token = new URLSearchParams(location.hash.slice(1)).get("token") || sessionStorage.getItem("vigil-token");

const state = {
  effective: null,   // GET api/config: the running configuration (secrets redacted)
  siteDoc: null,     // GET api/config/site
  shapes: [],        // zones and lines being edited: {kind, name, from, ...geometry, labels, loitering_time}
  geometryEdited: false,
  selected: null,    // a shape
  mode: "idle",      // idle | zone | line
  draft: [],         // points of the shape being drawn
  hover: null,       // the pointer, normalised, while drawing
  drag: null,        // {shape, index (vertex) | -1 (whole), start, orig}
  canChange: true,
  baseline: "",      // the body as loaded: anything else is an unsaved change
};

// ---- HTTP ------------------------------------------------------------------------------------

function headers(extra = {}) { return token ? { ...extra, Authorization: "Bearer " + token } : extra; }

async function call(method, path, body, type = "application/json") {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": type }), cache: "no-store" };
  if (body !== undefined) init.body = type === "application/json" ? JSON.stringify(body) : body;
  const r = await fetch(API + path, init);
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  return { status: r.status, ok: r.ok, data };
}

function problem(r) {
  const d = r.data && r.data.detail !== undefined ? r.data.detail : r.data;
  if (typeof d === "string") return "HTTP " + r.status + ": " + d;
  return "HTTP " + r.status;
}

// ---- the config tree -------------------------------------------------------------------------

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

function getPath(tree, key) {
  let v = tree;
  for (const part of key.split(".")) {
    if (v === null || typeof v !== "object" || !(part in v)) return undefined;
    v = v[part];
  }
  return v;
}

function setPath(tree, key, value) {
  const parts = key.split(".");
  let v = tree;
  for (const part of parts.slice(0, -1)) {
    if (v[part] === null || typeof v[part] !== "object") v[part] = {};
    v = v[part];
  }
  v[parts[parts.length - 1]] = value;
}

function fields() { return [...document.querySelectorAll("#form [data-key]")]; }

function readField(el) {
  if (el.type === "checkbox") return el.checked;
  const t = el.dataset.type, s = el.value.trim();
  if (t === "int" || t === "float") return s === "" ? null : Number(s);
  if (t === "optional") return s === "" ? null : s;
  return s;
}

function writeField(el, v) {
  if (el.dataset.secret) { el.value = ""; return; }  // write-only: never shown
  if (el.type === "checkbox") el.checked = !!v;
  else el.value = v === null || v === undefined ? "" : String(v);
}

function parseLabels(text) { return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean); }

// The site tree to send: the stored one, with every field the page changed and the zones and lines.
function siteBody() {
  const body = clone(state.siteDoc.site) || {};
  const site = state.siteDoc.site || {};
  for (const el of fields()) {
    const key = el.dataset.key;
    if (el.dataset.secret) {
      if (el.dataset.clear === "1") setPath(body, key, "");
      else if (el.value !== "") setPath(body, key, el.value);
      continue;
    }
    const v = readField(el), was = getPath(state.effective, key);
    // a key the site file does not set stays unset while it shows the running value
    if (getPath(site, key) !== undefined || JSON.stringify(v) !== JSON.stringify(was ?? null)) setPath(body, key, v);
  }
  if (state.geometryEdited || site.zones !== undefined || site.lines !== undefined) {
    body.zones = {}; body.lines = {};
    for (const s of state.shapes) {
      const kind = s.kind === "zone" ? "zones" : "lines";
      // what the site file says of it (or, for one from the image's defaults, all the running one says),
      // then what the page edits; a default left as it is stays unwritten
      const mine = (site[kind] || {})[s.from];
      const out = clone(s.from ? mine || getPath(state.effective, kind + "." + s.from) || {} : {});
      if (s.kind === "zone") {
        out.polygon = s.polygon.map(round);
        if (s.loitering_time || "loitering_time" in out) out.loitering_time = s.loitering_time;
      } else { out.start = round(s.start); out.end = round(s.end); }
      if (s.labels.length || "labels" in out) out.labels = s.labels;
      body[kind][s.name] = out;
    }
  }
  return body;
}

function round(p) { return [Math.round(p[0] * 10000) / 10000, Math.round(p[1] * 10000) / 10000]; }

function markDirty() {
  const dirty = JSON.stringify(siteBody()) !== state.baseline;
  const d = $("dirty");
  d.dataset.dirty = dirty ? "1" : "0";
  d.textContent = dirty ? "unsaved changes" : "no unsaved changes";
}

// ---- load / revert ---------------------------------------------------------------------------

async function load() {
  const [eff, site] = await Promise.all([call("GET", "config"), call("GET", "config/site")]);
  if (!eff.ok) throw new Error("config: " + problem(eff));
  state.effective = eff.data;
  state.siteDoc = site.ok ? site.data : { site: {}, secrets_set: [], file: null, error: "config/site: " + problem(site) };
  state.siteDoc.site = state.siteDoc.site || {};
  $("device").textContent = state.effective.device_id || "";
  const secrets = state.siteDoc.secrets_set || [];
  for (const el of fields()) {
    writeField(el, getPath(state.effective, el.dataset.key));
    if (el.dataset.secret) {
      const stored = secrets.includes(el.dataset.key);
      el.dataset.clear = "0";
      el.placeholder = stored ? "stored (type to replace)" : "none";
      el.nextElementSibling.hidden = !stored;
    }
  }
  state.shapes = [];
  for (const [name, z] of Object.entries(state.effective.zones || {})) {
    state.shapes.push({ kind: "zone", name, from: name, polygon: z.polygon.map((p) => [...p]), labels: z.labels || [],
                        loitering_time: z.loitering_time || 0 });
  }
  for (const [name, l] of Object.entries(state.effective.lines || {})) {
    state.shapes.push({ kind: "line", name, from: name, start: [...l.start], end: [...l.end], labels: l.labels || [] });
  }
  state.geometryEdited = false;
  state.selected = null;
  setMode("idle");
  clearErrors();
  $("review").hidden = true;
  if (state.siteDoc.error) showErrors([{ loc: "", msg: state.siteDoc.error }]);
  state.baseline = JSON.stringify(siteBody());
  renderCards();
  render();
  markDirty();
}

async function loadAccess() {
  const r = await call("GET", "access");
  // without /api/access (an older app) the first write tells
  const a = r.ok ? r.data : { can_change: true, how: "unknown", token_required: false, admin_url: null };
  state.canChange = !!a.can_change;
  document.body.dataset.readonly = a.can_change ? "0" : "1";
  const badge = $("access");
  badge.textContent = a.can_change ? "can change" + (r.ok ? " (" + a.how + ")" : "") : "read only";
  badge.dataset.status = a.can_change ? "ok" : "degraded";
  $("readonly").hidden = a.can_change;
  const link = $("admin-link");
  link.hidden = !a.admin_url;
  if (a.admin_url) link.href = a.admin_url + (a.admin_url.endsWith("/") ? "settings.html" : "");
  $("token-ask").hidden = !a.token_required;
  $("token-or").textContent = a.admin_url ? "Or enter" : "Enter";
  $("readonly-why").textContent = a.admin_url ? "Settings change on the camera's admin page (a camera administrator)."
    : a.token_required ? "Changes need the API token." : "This address does not accept changes (see api.token).";
  if (!a.can_change) $("hint").textContent = ""; else setMode(state.mode);
  for (const el of document.querySelectorAll("#form input, .edit, .cards input, .cards button")) {
    el.disabled = !a.can_change;
  }
}

// ---- the frame -------------------------------------------------------------------------------

let frameUrl = null;
async function refreshFrame() {
  try {
    // the picture without the server's own zones and lines: the editor draws the ones being edited
    const r = await fetch(API + "latest.jpg?h=540&quality=75&zones=false&lines=false", { headers: headers(), cache: "no-store" });
    if (r.status === 404) { $("frame-note").textContent = "waiting for the first frame…"; return; }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const url = URL.createObjectURL(await r.blob());
    const img = $("frame");
    img.onload = () => {
      const first = img.dataset.loaded !== "1";
      img.dataset.loaded = "1";
      if (frameUrl) URL.revokeObjectURL(frameUrl);
      frameUrl = url;
      if (first) render();
    };
    img.src = url;
    $("frame-note").textContent = "";
  } catch (e) { $("frame-note").textContent = "frame: " + e.message; }
}

// ---- drawing ---------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function size() { const r = $("overlay").getBoundingClientRect(); return [r.width || 1, r.height || 1]; }
function px(p) { const [w, h] = size(); return [p[0] * w, p[1] * h]; }
function norm(ev) {
  const r = $("overlay").getBoundingClientRect();
  const c = (v) => Math.min(1, Math.max(0, v));
  return [c((ev.clientX - r.left) / r.width), c((ev.clientY - r.top) / r.height)];
}

function render() {
  const g = $("shapes");
  g.replaceChildren();
  for (const s of state.shapes) {
    const sel = s === state.selected;
    const grp = el("g", { class: "shape " + s.kind + (sel ? " selected" : ""), "data-name": s.name }, g);
    if (s.kind === "zone") {
      const pts = s.polygon.map((p) => px(p).join(",")).join(" ");
      const poly = el("polygon", { points: pts, class: "body" }, grp);
      poly.addEventListener("pointerdown", (ev) => startDrag(ev, s, -1));
      const c = centroid(s.polygon.map(px));
      el("text", { x: c[0], y: c[1], class: "tag", "text-anchor": "middle" }, grp).textContent = s.name;
      s.polygon.forEach((p, i) => handle(grp, s, i, px(p)));
    } else {
      const a = px(s.start), b = px(s.end);
      const hit = el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "hit" }, grp);
      el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "body" }, grp);
      hit.addEventListener("pointerdown", (ev) => startDrag(ev, s, -1));
      // the arrow points to the side an 'in' crossing goes to: right-hand walking start → end
      const m = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], d = [b[0] - a[0], b[1] - a[1]];
      const len = Math.hypot(d[0], d[1]) || 1, n = [-d[1] / len, d[0] / len];
      el("line", { x1: m[0], y1: m[1], x2: m[0] + n[0] * 30, y2: m[1] + n[1] * 30, class: "arrow",
                   "marker-end": "url(#arrow)" }, grp);
      el("text", { x: m[0] + n[0] * 42, y: m[1] + n[1] * 42 + 4, class: "tag dir" }, grp).textContent = "in";
      el("text", { x: a[0] + 6, y: a[1] - 6, class: "tag" }, grp).textContent = s.name;
      handle(grp, s, 0, a);
      handle(grp, s, 1, b);
    }
  }
  renderDraft();
}

function handle(grp, s, i, p) {
  const c = el("circle", { cx: p[0], cy: p[1], r: 6, class: "handle", "data-index": i }, grp);
  c.addEventListener("pointerdown", (ev) => startDrag(ev, s, i));
}

function centroid(pts) {
  const n = pts.length;
  return [pts.reduce((a, p) => a + p[0], 0) / n, pts.reduce((a, p) => a + p[1], 0) / n];
}

function renderDraft() {
  const g = $("draft");
  g.replaceChildren();
  if (state.mode === "idle" || !state.draft.length) return;
  const pts = [...state.draft, ...(state.hover ? [state.hover] : [])].map(px);
  el("polyline", { points: pts.map((p) => p.join(",")).join(" "), class: "draft " + state.mode }, g);
  state.draft.forEach((p, i) => el("circle", { cx: px(p)[0], cy: px(p)[1], r: i === 0 ? 7 : 5, class: "handle draft" }, g));
}

function setMode(mode) {
  state.mode = mode;
  state.draft = [];
  state.hover = null;
  const drawing = mode !== "idle";
  $("finish").hidden = mode !== "zone";
  $("cancel").hidden = !drawing;
  $("stage").dataset.mode = mode;
  $("hint").textContent = mode === "zone" ? "Click the zone's corners; click the first one (or Finish) to close it."
    : mode === "line" ? "Click where the line starts, then where it ends."
    : "Drag a corner or an end to move it, a shape to move it whole.";
  renderDraft();
}

function freeName(prefix) {
  for (let i = 1; ; i++) if (!state.shapes.some((s) => s.name === prefix + i)) return prefix + i;
}

function addShape(s) {
  state.shapes.push(s);
  state.geometryEdited = true;
  state.selected = s;
  setMode("idle");
  renderCards();
  render();
  markDirty();
  const input = document.querySelector('.card[data-name="' + s.name + '"] input.name');
  if (input) input.focus();
}

function finishZone() {
  if (state.draft.length < 3) { $("hint").textContent = "A zone needs at least 3 corners."; return; }
  addShape({ kind: "zone", name: freeName("zone_"), from: null, polygon: state.draft, labels: [], loitering_time: 0 });
}

function onStageDown(ev) {
  if (!state.canChange || ev.button !== 0) return;
  const p = norm(ev);
  if (state.mode === "zone") {
    if (state.draft.length >= 3) {
      const a = px(state.draft[0]), b = px(p);
      if (Math.hypot(a[0] - b[0], a[1] - b[1]) <= SNAP) { finishZone(); return; }
    }
    state.draft.push(p);
    renderDraft();
  } else if (state.mode === "line") {
    state.draft.push(p);
    if (state.draft.length === 2) {
      const [a, b] = state.draft;
      if (Math.hypot(a[0] - b[0], a[1] - b[1]) < 0.01) { state.draft.pop(); return; }
      addShape({ kind: "line", name: freeName("line_"), from: null, start: a, end: b, labels: [] });
    } else renderDraft();
  } else if (ev.target === $("overlay") || ev.target === $("frame")) {
    state.selected = null;
    render(); renderCards();
  }
}

function startDrag(ev, s, index) {
  if (state.mode !== "idle") return;  // while drawing, clicks add points
  ev.stopPropagation();
  ev.preventDefault();
  state.selected = s;
  if (state.canChange) {
    state.drag = { shape: s, index, start: norm(ev), orig: clone(s.kind === "zone" ? s.polygon : [s.start, s.end]) };
    $("overlay").setPointerCapture(ev.pointerId);
  }
  render(); renderCards();
}

function onMove(ev) {
  if (state.mode !== "idle") {
    if (state.draft.length) { state.hover = norm(ev); renderDraft(); }
    return;
  }
  const d = state.drag;
  if (!d) return;
  const p = norm(ev), s = d.shape;
  let pts;
  if (d.index >= 0) {
    pts = clone(d.orig);
    pts[d.index] = p;
  } else {  // the whole shape, kept inside the picture
    let dx = p[0] - d.start[0], dy = p[1] - d.start[1];
    const xs = d.orig.map((q) => q[0]), ys = d.orig.map((q) => q[1]);
    dx = Math.min(Math.max(dx, -Math.min(...xs)), 1 - Math.max(...xs));
    dy = Math.min(Math.max(dy, -Math.min(...ys)), 1 - Math.max(...ys));
    pts = d.orig.map((q) => [q[0] + dx, q[1] + dy]);
  }
  if (s.kind === "zone") s.polygon = pts; else [s.start, s.end] = pts;
  state.geometryEdited = true;
  render();
}

function onUp() {
  if (state.drag) { state.drag = null; markDirty(); }
}

// ---- the zone and line cards -----------------------------------------------------------------

function renderCards() {
  for (const kind of ["zone", "line"]) {
    const box = $(kind + "s");
    box.replaceChildren();
    const list = state.shapes.filter((s) => s.kind === kind);
    if (!list.length) {
      const p = document.createElement("p");
      p.className = "note empty";
      p.textContent = kind === "zone" ? "No zones: “+ Zone” draws one." : "No lines: “+ Line” draws one.";
      box.appendChild(p);
    }
    for (const s of list) box.appendChild(card(s));
  }
  for (const e of document.querySelectorAll(".cards input, .cards button")) e.disabled = !state.canChange;
}

function card(s) {
  const div = document.createElement("div");
  div.className = "card" + (s === state.selected ? " selected" : "");
  div.dataset.name = s.name;
  div.dataset.key = (s.kind === "zone" ? "zones." : "lines.") + s.name;
  div.addEventListener("click", () => { if (state.selected !== s) { state.selected = s; render(); markSelected(); } });
  const input = (label, cls, value, attrs, onchange) => {
    const l = document.createElement("label");
    l.textContent = label + " ";
    const i = document.createElement("input");
    i.className = cls; i.value = value;
    Object.assign(i, attrs);
    i.addEventListener("change", () => { onchange(i); markDirty(); });
    l.appendChild(i);
    div.appendChild(l);
    return i;
  };
  input("name", "name", s.name, { pattern: NAME.source, required: true, size: 14, title: "letters, digits, _ and -" }, (i) => {
    const v = i.value.trim();
    if (!NAME.test(v) || state.shapes.some((o) => o !== s && o.name === v && o.kind === s.kind)) {
      i.setCustomValidity(NAME.test(v) ? "another one has this name" : "letters, digits, _ and - only");
      i.reportValidity();
      return;
    }
    i.setCustomValidity("");
    s.name = v; state.geometryEdited = true;
    div.dataset.name = v; div.dataset.key = (s.kind === "zone" ? "zones." : "lines.") + v;
    render();
  });
  input("labels", "labels", s.labels.join(", "), { placeholder: "every label", size: 16 }, (i) => {
    s.labels = parseLabels(i.value); state.geometryEdited = true;
  });
  if (s.kind === "zone") {
    input("loitering after, s", "loitering", String(s.loitering_time), { type: "number", min: 0, step: 1, title: "0: off" },
      (i) => { s.loitering_time = Number(i.value) || 0; state.geometryEdited = true; });
  } else {
    const flip = document.createElement("button");
    flip.type = "button"; flip.className = "flip"; flip.textContent = "⇄ flip direction";
    flip.title = "swap the ends: 'in' becomes 'out'";
    flip.addEventListener("click", () => { [s.start, s.end] = [s.end, s.start]; state.geometryEdited = true; render(); markDirty(); });
    div.appendChild(flip);
  }
  const del = document.createElement("button");
  del.type = "button"; del.className = "delete"; del.textContent = "delete";
  del.addEventListener("click", (ev) => { ev.stopPropagation(); removeShape(s); });
  div.appendChild(del);
  const err = document.createElement("small");
  err.className = "err"; err.dataset.errFor = div.dataset.key;
  div.appendChild(err);
  return div;
}

function removeShape(s) {
  state.shapes = state.shapes.filter((o) => o !== s);
  if (state.selected === s) state.selected = null;
  state.geometryEdited = true;
  renderCards(); render(); markDirty();
}

function markSelected() {
  for (const c of document.querySelectorAll(".card")) {
    c.classList.toggle("selected", !!state.selected && c.dataset.key.endsWith("." + state.selected.name)
                                   && c.parentElement.id === state.selected.kind + "s");
  }
}

// ---- errors and messages ---------------------------------------------------------------------

function clearErrors() {
  for (const e of document.querySelectorAll(".err")) e.textContent = "";
  for (const e of document.querySelectorAll("[data-invalid]")) delete e.dataset.invalid;
  $("general-errors").hidden = true;
  $("general-errors").replaceChildren();
}

function loc(l) {
  if (Array.isArray(l)) return l.filter((p) => p !== "body").join(".");
  return String(l || "");
}

// 422 answers: each message beside the field (or zone/line card) it names, the rest in one box
function showErrors(detail) {
  const targets = new Map();
  for (const f of fields()) targets.set(f.dataset.key, f);
  for (const c of document.querySelectorAll(".card")) targets.set(c.dataset.key, c);
  const general = [];
  for (const d of detail) {
    const key = loc(d.loc);
    let parts = key.split("."), target = null;
    while (parts.length && !target) { target = targets.get(parts.join(".")); parts = parts.slice(0, -1); }
    const msg = (d.msg || "").replace(/^Value error, /, "");
    if (!target) { general.push((key ? key + ": " : "") + msg); continue; }
    target.dataset.invalid = "1";
    let err = target.classList && target.classList.contains("card") ? target.querySelector(".err") : null;
    if (!err) {
      err = target.parentElement.querySelector(".err");
      if (!err) { err = document.createElement("small"); err.className = "err"; target.parentElement.appendChild(err); }
    }
    err.dataset.errFor = key;
    err.textContent = (err.textContent ? err.textContent + "; " : "") + (key.split(".").pop() !== target.dataset.key?.split(".").pop() ? key + ": " : "") + msg;
  }
  const box = $("general-errors");
  if (general.length) {
    box.hidden = false;
    for (const g of general) { const p = document.createElement("p"); p.textContent = g; box.appendChild(p); }
  }
}

function message(text, ok) { const m = $("message"); m.textContent = text; m.dataset.ok = ok ? "1" : "0"; }

// a value as a person reads it: a zone's corners counted, a point as (x, y), other objects key by key
function describe(v) {
  if (v === null || v === undefined) return "–";
  if (Array.isArray(v)) {
    if (v.length === 2 && v.every((n) => typeof n === "number")) return "(" + v.map((n) => +n.toFixed(3)).join(", ") + ")";
    return v.length && v.every((p) => Array.isArray(p)) ? v.length + " corners" : "[" + v.map(describe).join(", ") + "]";
  }
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => k + " " + describe(x)).join(", ");
  return String(v);
}

function describeApply(a, overridden) {
  if (!a) return "";
  const part = (k, say) => (a[k] && a[k].length ? say + ": " + a[k].join(", ") : "");
  const how = [part("live", "applied live"), part("reconnect", "reconnects"), part("restart", "restarts the pipeline")]
    .filter(Boolean).join(" · ") || "nothing to apply";
  // a key set by a command-line flag (or another higher layer) keeps that value while Vigil runs
  return how + (overridden && overridden.length ? " · kept as a start-up flag sets it: " + overridden.join(", ") : "");
}

// ---- check, save, revert, test, files, export, import ----------------------------------------

async function review() {
  clearErrors();
  const r = await call("POST", "config/check", siteBody());
  if (r.status === 422) { showErrors(Array.isArray(r.data.detail) ? r.data.detail : [{ loc: "", msg: String(r.data.detail) }]); message("not saved: see the errors", false); return; }
  if (!r.ok) { message("check: " + problem(r), false); return; }
  const ul = $("changes");
  ul.replaceChildren();
  for (const c of r.data.changes) {
    const li = document.createElement("li");
    li.dataset.key = c.key;
    const secret = fields().some((f) => f.dataset.secret && f.dataset.key === c.key);
    const show = (v) => (secret ? "(secret)" : describe(v));
    li.textContent = c.key + ": " + (c.from === null || c.from === undefined ? "added " + show(c.to)
      : c.to === null || c.to === undefined ? "removed" : show(c.from) + " → " + show(c.to));
    ul.appendChild(li);
  }
  if (!r.data.changes.length) { const li = document.createElement("li"); li.textContent = "nothing changes"; ul.appendChild(li); }
  $("apply").textContent = describeApply(r.data.apply, r.data.overridden);
  $("review").hidden = false;
  $("review").scrollIntoView({ block: "nearest" });
}

async function save() {
  clearErrors();
  const r = await call("PUT", "config", siteBody());
  $("review").hidden = true;
  if (r.status === 422) { showErrors(r.data.detail); message("not saved: see the errors", false); return; }
  if (!r.ok) { message("save: " + problem(r), false); return; }
  await load();
  message("saved: " + describeApply(r.data.apply, r.data.overridden) + (r.data.applied_in_ms !== undefined ? " (" + Math.round(r.data.applied_in_ms) + " ms)" : ""), true);
}

function mqttSection() {
  const m = {};
  for (const f of fields()) {
    const key = f.dataset.key;
    if (!key.startsWith("mqtt.")) continue;
    if (f.dataset.secret) { if (f.value !== "") setPath(m, key.slice(5), f.value); continue; }
    setPath(m, key.slice(5), readField(f));
  }
  return m;
}

async function testMqtt() {
  const out = $("mqtt-result");
  out.textContent = "connecting…"; out.dataset.ok = "";
  const r = await call("POST", "config/test-mqtt", mqttSection());
  if (r.status === 422) { showErrors(r.data.detail.map((d) => ({ ...d, loc: "mqtt." + loc(d.loc) }))); out.textContent = "check the fields"; out.dataset.ok = "0"; return; }
  if (!r.ok) { out.textContent = problem(r); out.dataset.ok = "0"; return; }
  out.dataset.ok = r.data.ok ? "1" : "0";
  out.dataset.result = r.data.result;
  out.textContent = r.data.result + (r.data.detail ? ": " + r.data.detail : "");
}

async function uploadCa(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  const name = file.name.replace(/[^A-Za-z0-9_.-]/g, "_");
  const r = await call("PUT", "config/files/" + encodeURIComponent(name), await file.text(), "application/x-pem-file");
  ev.target.value = "";
  if (!r.ok) { showErrors([{ loc: "mqtt.tls.ca_file", msg: problem(r) }]); return; }
  const f = document.querySelector('[data-key="mqtt.tls.ca_file"]');
  f.value = r.data.path;
  document.querySelector('[data-key="mqtt.tls.enabled"]').checked = true;
  markDirty();
}

async function exportYaml() {
  const r = await fetch(API + "config/export", { headers: headers(), cache: "no-store" });
  if (!r.ok) { message("export: HTTP " + r.status, false); return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  a.download = "vigil-" + (state.effective.device_id || "site") + ".yaml";
  document.body.appendChild(a); a.click(); a.remove();
  message("exported " + a.download + " (secrets left out)", true);
}

let importFile = null;
function pickImport(ev) {
  importFile = ev.target.files[0] || null;
  ev.target.value = "";
  if (!importFile) return;
  $("import-name").textContent = importFile.name;
  $("import-confirm").hidden = false;
}

async function doImport() {
  $("import-confirm").hidden = true;
  clearErrors();
  const r = await call("POST", "config/import", await importFile.text(), "application/yaml");
  if (r.status === 422) { showErrors(Array.isArray(r.data.detail) ? r.data.detail : [{ loc: "", msg: String(r.data.detail) }]); message("not imported: see the errors", false); return; }
  if (!r.ok) { message("import: " + problem(r), false); return; }
  await load();
  message("imported " + importFile.name + ": " + describeApply(r.data.apply, r.data.overridden), true);
}

async function revert() {
  await load();
  message("reverted to the saved configuration", true);
}

// ---- wiring ----------------------------------------------------------------------------------

function guard(fn) {
  return async (...args) => { try { await fn(...args); } catch (e) { message(String(e.message || e), false); } };
}

function init() {
  $("docs-link").href = ROOT + "docs";
  const stage = $("overlay");
  stage.addEventListener("pointerdown", onStageDown);
  stage.addEventListener("pointermove", onMove);
  stage.addEventListener("pointerup", onUp);
  stage.addEventListener("pointercancel", onUp);
  stage.addEventListener("dblclick", () => { if (state.mode === "zone") finishZone(); });
  new ResizeObserver(() => render()).observe(stage);
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT") return;
    if (ev.key === "Escape") setMode("idle");
    else if (ev.key === "Enter" && state.mode === "zone") finishZone();
    else if (ev.key === "Delete" && state.selected && state.canChange && state.mode === "idle") removeShape(state.selected);
  });
  window.addEventListener("beforeunload", (ev) => { if ($("dirty").dataset.dirty === "1") ev.preventDefault(); });
  $("add-zone").addEventListener("click", () => { state.selected = null; setMode("zone"); render(); });
  $("add-line").addEventListener("click", () => { state.selected = null; setMode("line"); render(); });
  $("finish").addEventListener("click", finishZone);
  $("cancel").addEventListener("click", () => setMode("idle"));
  $("form").addEventListener("input", (ev) => {
    if (ev.target.dataset.secret) ev.target.dataset.clear = "0";
    markDirty();
  });
  for (const b of document.querySelectorAll(".clear-secret")) {
    b.addEventListener("click", () => {
      const input = b.previousElementSibling;
      input.value = ""; input.dataset.clear = "1"; input.placeholder = "cleared when saved";
      markDirty();
    });
  }
  $("save").addEventListener("click", guard(review));
  $("confirm-save").addEventListener("click", guard(save));
  $("review-back").addEventListener("click", () => { $("review").hidden = true; });
  $("revert").addEventListener("click", guard(revert));
  $("test-mqtt").addEventListener("click", guard(testMqtt));
  $("ca-upload").addEventListener("change", guard(uploadCa));
  $("export").addEventListener("click", guard(exportYaml));
  $("import").addEventListener("change", pickImport);
  $("import-go").addEventListener("click", guard(doImport));
  $("import-cancel").addEventListener("click", () => { $("import-confirm").hidden = true; });
  $("token-use").addEventListener("click", guard(async () => {
    token = $("token-input").value.trim() || null;
    if (token) sessionStorage.setItem("vigil-token", token); else sessionStorage.removeItem("vigil-token");
    await loadAccess();
  }));
  guard(async () => {
    await load();
    await loadAccess();
    document.body.dataset.ready = "1";
  })();
  refreshFrame();
  setInterval(() => { if (!document.hidden) refreshFrame(); }, 1000);  // a hidden tab costs the camera nothing
}

init();
