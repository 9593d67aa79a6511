// Settings page: the site configuration loaded, edited, checked and saved; MQTT tested; export and
// import. The zone and line editor on the live frame is settings-draw.js.
// Every URL is relative to the page, so it works at / on a laptop and under the camera's reverse-proxy
// prefix (…/api/ui/settings.html). A token, when changes need one, comes from …#token=SECRET.
"use strict";
// the page is served at <root>/api/ui/settings.html, so the API is "../"; with a <base> at the app's
// root (as the status page gets under /api/ui/), it is "api/"
const UNDER_API = !document.querySelector("base") && /\/api\/ui\/[^/]*$/.test(location.pathname);
const API = UNDER_API ? "../" : "api/";
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
  // labels as the site file says them (a group such as "vehicle", not the members it stands for)
  const saidLabels = (kind, name, running) => getPath(state.siteDoc.site, kind + "." + name + ".labels") || running || [];
  for (const [name, z] of Object.entries(state.effective.zones || {})) {
    state.shapes.push({ kind: "zone", name, from: name, polygon: z.polygon.map((p) => [...p]),
                        labels: saidLabels("zones", name, z.labels), loitering_time: z.loitering_time || 0 });
  }
  for (const [name, l] of Object.entries(state.effective.lines || {})) {
    state.shapes.push({ kind: "line", name, from: name, start: [...l.start], end: [...l.end],
                        labels: saidLabels("lines", name, l.labels) });
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

// the picture without the server's own zones and lines: the editor draws the ones being edited
const refreshFrame = liveFrame(API + "latest.jpg?h=540&quality=75&zones=false&lines=false", () => headers(),
  (img, first) => { if (first) render(); });

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
    let msg = (d.msg || "").replace(/^Value error, /, "");
    if (key && msg.startsWith(key + ": ")) msg = msg.slice(key.length + 2);
    if (!target) { general.push((key ? key + ": " : "") + msg); continue; }
    target.dataset.invalid = "1";
    let err = target.classList && target.classList.contains("card") ? target.querySelector(".err") : null;
    if (!err) {
      err = target.parentElement.querySelector(".err");
      if (!err) { err = document.createElement("small"); err.className = "err"; target.parentElement.appendChild(err); }
    }
    err.dataset.errFor = key;
    // within a zone's or line's card, say which of its keys (the field's own message needs no name)
    const rest = key.slice(target.dataset.key.length + 1);
    err.textContent = (err.textContent ? err.textContent + "; " : "") + (rest ? rest + ": " : "") + msg;
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
  const tokenField = document.querySelector('[data-key="api.token"]');
  const newToken = tokenField.dataset.clear === "1" ? "" : tokenField.value;
  const r = await call("PUT", "config", siteBody());
  $("review").hidden = true;
  if (r.status === 422) { showErrors(r.data.detail); message("not saved: see the errors", false); return; }
  if (!r.ok) { message("save: " + problem(r), false); return; }
  if (newToken !== "" || tokenField.dataset.clear === "1") {
    // the API token just set (or cleared) is the one this page uses from now on: no lock-out
    token = newToken || null;
    if (token) sessionStorage.setItem("vigil-token", token); else sessionStorage.removeItem("vigil-token");
  }
  await load();
  await loadAccess();
  // the server's own note, e.g. "saved; applied at the next start" for the API's own settings
  message("saved: " + describeApply(r.data.apply, r.data.overridden) + (r.data.note ? " · " + r.data.note : "") + (r.data.applied_in_ms !== undefined ? " (" + Math.round(r.data.applied_in_ms) + " ms)" : ""), true);
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
  $("docs-link").href = API + "docs";  // under api/: reachable through the camera's proxy too
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
