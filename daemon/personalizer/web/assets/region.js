// The region over the live view: the part of the picture the model looks at (`region`, as
// fractions of the frame). It is drawn over the live view; "Choose region" lets the maker draw,
// move and resize it with a finger or the mouse (pointer events), and "Use this region" sends
// it. The model sees the region padded with black to a square, never cut or stretched (the
// daemon's rule, model/region.py), and without a region the centre square of the picture.

import { $ } from "./util.js";
import { command, page } from "./board.js";

const MIN_SIDE = 0.05; // fractions: smaller boxes are a slip of the finger (the daemon allows 0.02)
const START = [0.25, 0.25, 0.5, 0.5]; // the first box offered when there is none yet
const WORDS = {
  none: "The model looks at the centre square of the picture (dashed). Choose a region to make it look at one part, such as a door or a parking spot.",
  set: "The model looks only at the marked box, padded with black to a square: never cut or stretched.",
  editing: "Drag to draw a box; drag inside it to move it, or a corner to resize it. The model will see the box padded with black to a square: never cut or stretched.",
};

const editor = { editing: false, draft: null, drag: null };

const clamp = (v, low, high) => Math.min(Math.max(v, low), high);
const round = (v) => Math.round(v * 10000) / 10000;

function current() {
  return page.status ? page.status.region : null;
}

// The centre square of a frame of this aspect ratio, as a region (what the model sees then).
function centreSquare() {
  const view = $("view");
  const ratio = view.clientWidth / view.clientHeight || 4 / 3;
  return ratio >= 1 ? [(1 - 1 / ratio) / 2, 0, 1 / ratio, 1] : [0, (1 - ratio) / 2, 1, ratio];
}

function place(box, [x, y, w, h]) {
  box.style.left = `${x * 100}%`;
  box.style.top = `${y * 100}%`;
  box.style.width = `${w * 100}%`;
  box.style.height = `${h * 100}%`;
  box.dataset.region = [x, y, w, h].map(round).join(",");
}

export function renderRegion() {
  const box = $("region-box");
  const region = editor.editing ? editor.draft : current();
  box.hidden = false;
  box.classList.toggle("centre", !region);
  place(box, region || centreSquare());
  $("region-layer").classList.toggle("editing", editor.editing);
  $("region-edit").hidden = editor.editing;
  $("region-save").hidden = !editor.editing;
  $("region-cancel").hidden = !editor.editing;
  $("region-clear").hidden = editor.editing || !current();
  $("region-text").textContent = WORDS[editor.editing ? "editing" : current() ? "set" : "none"];
  const usable = page.commands.has("region");
  $("region-edit").disabled = !usable;
}

// Where a pointer is, as fractions of the live view.
function fraction(event) {
  const r = $("region-layer").getBoundingClientRect();
  return [clamp((event.clientX - r.left) / r.width, 0, 1), clamp((event.clientY - r.top) / r.height, 0, 1)];
}

// A box from two corners, kept inside the picture and at least MIN_SIDE on each side.
function spanning([ax, ay], [bx, by]) {
  let x = Math.min(ax, bx), y = Math.min(ay, by);
  let w = Math.abs(bx - ax), h = Math.abs(by - ay);
  w = Math.max(w, MIN_SIDE); h = Math.max(h, MIN_SIDE);
  x = clamp(x, 0, 1 - w); y = clamp(y, 0, 1 - h);
  return [x, y, w, h];
}

function inside([px, py], [x, y, w, h]) {
  return px >= x && px <= x + w && py >= y && py <= y + h;
}

// What a press starts: a corner's resize (the opposite corner stays), a move, or a new box.
function startDrag(event) {
  const at = fraction(event);
  const [x, y, w, h] = editor.draft;
  const corner = event.target.dataset && event.target.dataset.corner;
  if (corner) {
    const fixed = [corner.includes("w") ? x + w : x, corner.includes("n") ? y + h : y];
    return { kind: "resize", fixed };
  }
  if (inside(at, editor.draft)) return { kind: "move", from: at, start: [x, y, w, h] };
  return { kind: "draw", fixed: at };
}

function follow(drag, at) {
  if (drag.kind === "move") {
    const [x, y, w, h] = drag.start;
    return [clamp(x + at[0] - drag.from[0], 0, 1 - w), clamp(y + at[1] - drag.from[1], 0, 1 - h), w, h];
  }
  return spanning(drag.fixed, at);
}

function onDown(event) {
  if (!editor.editing || event.button > 0) return;
  event.preventDefault();
  editor.drag = startDrag(event);
  $("region-layer").setPointerCapture(event.pointerId);
}

function onMove(event) {
  if (!editor.drag) return;
  event.preventDefault();
  editor.draft = follow(editor.drag, fraction(event));
  renderRegion();
}

function onUp() {
  editor.drag = null;
}

function edit() {
  editor.editing = true;
  editor.draft = current() ? [...current()] : [...START];
  renderRegion();
}

function stopEditing() {
  editor.editing = false;
  editor.drag = null;
  renderRegion();
}

async function send(region) {
  const result = await command("region", { region });
  if (!result.ok) return;
  stopEditing();
}

function save() {
  const [x, y, w, h] = editor.draft.map(round);
  // Rounded, a box at the edge may reach past 1 by a hair; the daemon refuses that.
  send([x, y, Math.min(w, round(1 - x)), Math.min(h, round(1 - y))]);
}

// The live view's shape follows the camera's, so the region's fractions are the picture's.
export function fitView(width, height) {
  if (!width || !height) return;
  const view = $("view");
  const ratio = `${width} / ${height}`;
  if (view.style.aspectRatio !== ratio) {
    view.style.aspectRatio = ratio;
    renderRegion();
  }
}

export function initRegion() {
  const layer = $("region-layer");
  layer.addEventListener("pointerdown", onDown);
  layer.addEventListener("pointermove", onMove);
  layer.addEventListener("pointerup", onUp);
  layer.addEventListener("pointercancel", onUp);
  $("region-edit").addEventListener("click", edit);
  $("region-cancel").addEventListener("click", stopEditing);
  $("region-save").addEventListener("click", save);
  $("region-clear").addEventListener("click", () => send(null));
  window.addEventListener("resize", () => { if (!editor.editing) renderRegion(); });
  renderRegion();
}
