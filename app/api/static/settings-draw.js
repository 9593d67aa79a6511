// Settings page, the editor of zones and lines on the live frame: an SVG over the picture, corners and
// ends dragged with the mouse, shapes drawn point by point, one card per zone and line for its name,
// labels and loitering time. The shapes live in `state` (settings.js), in normalised coordinates.
"use strict";
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SNAP = 10;  // pixels: a click this close to the first corner closes a zone

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
